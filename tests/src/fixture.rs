//! A real `corral` on the headless backend with a bystander and hostile qubes, the IPC calls the
//! cases use, and the checks every case ends with.

use std::collections::HashMap;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use corral::ipc::{KeyAction, NotificationInfo, QubeInfo, Request, WindowInfo, client};

use crate::good;
use crate::hostile::Hostile;
use crate::image::Image;

/// Longest wait for anything.
pub const TIMEOUT: Duration = Duration::from_secs(20);
/// Window border width (`--border` default).
pub const BORDER: i32 = 4;
/// Title bar height.
pub const TITLE: i32 = 24;
/// The bystander's label colour (blue).
pub const GOOD_COLOUR: u32 = 0x3465a4;
/// The hostile qube's label colour (red).
pub const EVIL_COLOUR: u32 = 0xcc0000;
/// The grey the compositor fills a window's interior with under its content.
pub const NEUTRAL_FILL: u32 = 0x808080;
/// Output size of every case.
pub const SCREEN: (i32, i32) = (1280, 800);

/// The directory holding `corral` and `corral-agent`, built once per test process.
///
/// A test of another package cannot name `corral`'s binary with `CARGO_BIN_EXE_*`, so the
/// suite asks cargo (the one running the tests, `$CARGO`) to build it into the same target
/// directory; cargo does nothing when it is up to date. Without `$CARGO` (a test binary run by
/// hand) the binaries next to the test's target directory are used as they are.
pub fn bin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let exe = std::env::current_exe().unwrap();
        // target/<profile>/deps/<test> → target/<profile>
        let profile_dir = exe.parent().and_then(Path::parent).unwrap().to_path_buf();
        if let Some(cargo) = std::env::var_os("CARGO")
            && std::env::var_os("CORRAL_E2E_NO_BUILD").is_none()
        {
            let target = profile_dir.parent().unwrap();
            let mut cmd = Command::new(cargo);
            cmd.args([
                "build",
                "--quiet",
                "-p",
                "corral",
                "--bin",
                "corral",
                "-p",
                "corral-agent",
                "--bin",
                "corral-agent",
            ])
            .env("CARGO_TARGET_DIR", target);
            if profile_dir.file_name().is_some_and(|n| n == "release") {
                cmd.arg("--release");
            }
            let status = cmd.status().expect("running cargo build");
            // Outside CI a failed build (a tree being edited) falls back to the binaries
            // already there, with a warning; under CI it is an error.
            if !status.success() {
                assert!(
                    std::env::var_os("CI").is_none(),
                    "cargo build of corral failed"
                );
                eprintln!("warning: cargo build of corral failed; using the binaries there");
            }
        }
        assert!(
            profile_dir.join("corral").is_file(),
            "{} has no corral binary: run `cargo build -p corral -p corral-agent` first",
            profile_dir.display()
        );
        profile_dir
    })
}

/// Where screenshots are kept for people: `target/corral-screenshots/`.
pub fn screenshot_dir() -> PathBuf {
    let dir = bin_dir()
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(std::env::temp_dir)
        .join("corral-screenshots");
    let _ = std::fs::create_dir_all(&dir);
    dir
}

/// A temporary directory removed on drop.
#[derive(Debug)]
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "corral-e2e-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What to start.
#[derive(Debug, Clone)]
pub struct Setup<'a> {
    /// `NAME:LABEL` of each qube; names starting with `good` are bystanders, `real…` run the
    /// real `corral-agent` with `weston-simple-shm`, every other one is played by the test
    /// ([`Desk::hostile`]).
    pub qubes: &'a [&'a str],
    /// More flags for `corral`.
    pub args: &'a [&'a str],
    /// More environment for `corral`.
    pub env: &'a [(&'a str, &'a str)],
    /// The agent command template; default: this test binary as bystander or relay.
    pub agent_command: Option<String>,
}

impl Default for Setup<'_> {
    fn default() -> Self {
        Setup {
            qubes: &["good:blue", "evil:red"],
            args: &[],
            env: &[],
            agent_command: None,
        }
    }
}

/// A running compositor with its qubes. Killed (with its agents, which die with it) on drop.
#[derive(Debug)]
pub struct Desk {
    pub child: Child,
    pub socket: PathBuf,
    pub dir: TempDir,
    pub log: PathBuf,
    pub tag: String,
    hostiles: HashMap<String, Hostile>,
}

impl Drop for Desk {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The agent command that makes the compositor start this test binary as an agent.
pub fn agent_command() -> String {
    let exe = std::env::current_exe().unwrap();
    format!(
        "env CORRAL_E2E_FD={{fd}} CORRAL_E2E_QUBE={{name}} '{}' e2e_agent_entry --exact --nocapture --quiet",
        exe.display()
    )
}

impl Desk {
    /// The default case: a bystander `good` (blue) and a hostile `evil` (red), already
    /// connected (the hostile one has not said `hello` yet).
    pub fn start(tag: &str) -> Desk {
        Desk::start_with(tag, Setup::default())
    }

    pub fn start_with(tag: &str, setup: Setup<'_>) -> Desk {
        let bins = bin_dir();
        let dir = TempDir::new(tag);
        let listener = UnixListener::bind(dir.0.join(crate::relay::SOCKET)).unwrap();
        let socket = dir.0.join("ipc.sock");
        let log = dir.0.join("corral.log");
        let mut cmd = Command::new(bins.join("corral"));
        cmd.args(["--backend", "headless", "--size"])
            .arg(format!("{}x{}", SCREEN.0, SCREEN.1));
        for q in setup.qubes {
            cmd.arg("--dev-qube").arg(q);
        }
        cmd.arg("--dev-agent-command")
            .arg(setup.agent_command.clone().unwrap_or_else(agent_command));
        cmd.arg("--ipc-socket").arg(&socket);
        cmd.args(setup.args);
        cmd.env("CORRAL_E2E_DIR", &dir.0);
        let runtime = dir.0.join("runtime");
        std::fs::create_dir_all(&runtime).unwrap();
        std::fs::set_permissions(
            &runtime,
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .unwrap();
        cmd.env("XDG_RUNTIME_DIR", &runtime);
        // Development qubes only: no embedded domain manager, and no config but the built-in
        // default, whatever the machine has in ~/.config or /etc.
        cmd.arg("--no-domains");
        cmd.env("XDG_CONFIG_HOME", dir.0.join("config"));
        cmd.env("RUST_LOG", "corral=debug");
        for (k, v) in setup.env {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        let child = cmd.spawn().expect("starting corral");
        let mut desk = Desk {
            child,
            socket,
            dir,
            log,
            tag: tag.to_owned(),
            hostiles: HashMap::new(),
        };
        desk.wait_for("the IPC socket", || {
            client::request(&desk.socket, &Request::Outputs).ok()
        });
        let hostile_count = setup
            .qubes
            .iter()
            .filter(|q| !q.starts_with("good") && !q.starts_with("real"))
            .count();
        if setup.agent_command.is_none() {
            for _ in 0..hostile_count {
                let (name, sock) = crate::relay::accept(&listener, TIMEOUT)
                    .unwrap_or_else(|e| panic!("{}: {e}", desk.log_tail()));
                desk.hostiles.insert(name.clone(), Hostile::new(name, sock));
            }
        }
        desk
    }

    /// The hostile qube `name`, for the test to play.
    pub fn hostile(&mut self, name: &str) -> Hostile {
        self.hostiles
            .remove(name)
            .unwrap_or_else(|| panic!("no hostile qube {name}"))
    }

    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Polls `f` until it returns `Some`, for at most [`TIMEOUT`].
    pub fn wait_for<T>(&self, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(v) = f() {
                return v;
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out waiting for {what}; corral's log ends with:\n{}",
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn request(&self, request: &Request) -> anyhow::Result<serde_json::Value> {
        client::request(&self.socket, request)
    }

    pub fn windows(&self) -> Vec<WindowInfo> {
        client::windows(&self.socket).expect("windows")
    }

    pub fn windows_of(&self, qube: &str) -> Vec<WindowInfo> {
        self.windows()
            .into_iter()
            .filter(|w| w.qube == qube)
            .collect()
    }

    pub fn qubes(&self) -> Vec<QubeInfo> {
        serde_json::from_value(self.request(&Request::Qubes).unwrap()).unwrap()
    }

    pub fn notifications(&self) -> Vec<NotificationInfo> {
        serde_json::from_value(self.request(&Request::Notifications).unwrap()).unwrap()
    }

    pub fn clipboard(&self) -> serde_json::Value {
        self.request(&Request::Clipboard).unwrap()
    }

    pub fn key(&self, combo: &str) {
        self.request(&Request::Key {
            combo: combo.into(),
            action: KeyAction::Tap,
        })
        .unwrap();
    }

    pub fn key_action(&self, combo: &str, action: KeyAction) {
        self.request(&Request::Key {
            combo: combo.into(),
            action,
        })
        .unwrap();
    }

    pub fn focus(&self, id: u64) {
        self.request(&Request::Focus { id }).unwrap();
    }

    pub fn pointer(&self, x: i32, y: i32, click: bool) {
        self.request(&Request::Pointer {
            x: f64::from(x),
            y: f64::from(y),
            click: click.then_some(0x110),
        })
        .unwrap();
    }

    /// A screenshot, decoded; also kept as `target/corral-screenshots/e2e-<tag>-NAME.png`.
    pub fn screenshot(&self, name: &str) -> Image {
        let path = self.dir.0.join(format!("{name}.png"));
        self.request(&Request::Screenshot { path: path.clone() })
            .unwrap();
        let image = Image::load(&path);
        let keep = screenshot_dir().join(format!("e2e-{}-{name}.png", self.tag));
        let _ = std::fs::copy(&path, keep);
        image
    }

    /// The lines a bystander logged, one per message it received.
    pub fn good_log(&self, qube: &str) -> Vec<String> {
        std::fs::read_to_string(self.dir.0.join(format!("{qube}.log")))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn count_in_log(&self, qube: &str, line: &str) -> usize {
        self.good_log(qube).iter().filter(|l| *l == line).count()
    }

    /// Waits until `qube` has a toplevel with content on screen, and returns it.
    pub fn wait_window(&self, qube: &str) -> WindowInfo {
        self.wait_for(&format!("a window of {qube}"), || {
            self.windows()
                .into_iter()
                .find(|w| w.qube == qube && w.kind == "toplevel" && w.has_content && w.visible)
        })
    }

    /// Waits for the notification that `qube` was cut off for breaking the protocol, whose
    /// detail contains `why`; then checks that the qube and all its windows are gone.
    pub fn wait_cut_off(&self, qube: &str, why: &str) -> NotificationInfo {
        let headline = format!("[{qube}] was cut off");
        let note = self.wait_for(&format!("{qube} to be cut off ({why})"), || {
            self.notifications()
                .into_iter()
                .find(|n| n.headline.contains(&headline))
        });
        assert!(
            note.detail.to_lowercase().contains(&why.to_lowercase()),
            "{qube} was cut off for another reason: {note:?}"
        );
        assert!(
            self.windows_of(qube).is_empty(),
            "{qube}'s windows are still there"
        );
        assert!(
            !self.qubes().iter().any(|q| q.name == qube),
            "{qube} is still connected"
        );
        note
    }

    /// Asserts that `qube` is still connected and nobody was told it broke the rules.
    pub fn assert_connected(&self, qube: &str) {
        assert!(
            self.qubes().iter().any(|q| q.name == qube),
            "{qube} was disconnected; log:\n{}",
            self.log_tail()
        );
        let headline = format!("[{qube}] was cut off");
        assert!(
            !self
                .notifications()
                .iter()
                .any(|n| n.headline.contains(&headline)),
            "{qube} was cut off"
        );
    }

    /// The check every case ends with: the bystander `good` still renders (its frames keep
    /// being presented, and a screenshot shows its exact frame and content once it is focused)
    /// and still receives input (a key typed while it is focused arrives). Returns the
    /// screenshot, taken with the bystander focused and raised.
    pub fn bystander_ok(&self) -> Image {
        let qube = "good";
        let w = self.wait_window(qube);
        let frames = |d: &Desk| d.count_in_log(qube, "FrameDone 1");
        let before = frames(self);
        self.wait_for("the bystander's next frames", || {
            (frames(self) >= before + 3).then_some(())
        });
        self.focus(w.id);
        let keys_before = self.count_in_log(qube, "Key 1 37 0");
        self.key("k");
        self.wait_for("the bystander's key", || {
            (self.count_in_log(qube, "Key 1 37 0") > keys_before).then_some(())
        });
        let w = self.wait_window(qube);
        assert!(w.focused, "the bystander did not get focus: {w:?}");
        let image = self.screenshot("bystander");
        assert_frame(&image, &w, BORDER, GOOD_COLOUR);
        image.assert_all(
            "bystander content",
            (w.x + 40, w.y + 40, 100, 100),
            good::BG,
        );
        image.assert_all(
            "bystander square",
            (w.x + 10, w.y + 10, 20, 20),
            good::SQUARE,
        );
        assert_eq!(w.display_title, format!("[{qube}] {}", good::TITLE));
        image
    }

    /// The compositor's resident memory in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }

    /// The compositor is still running (not crashed, not killed by a signal).
    pub fn assert_alive(&mut self) {
        assert!(
            self.child.try_wait().unwrap().is_none(),
            "corral exited; log:\n{}",
            self.log_tail()
        );
    }
}

/// Checks the four border strips of a window's frame: exactly `colour`.
pub fn assert_frame(image: &Image, w: &WindowInfo, border: i32, colour: u32) {
    let f = w.frame;
    image.assert_all("top border", (f.x, f.y, f.width, border), colour);
    image.assert_all(
        "bottom border",
        (f.x, f.y + f.height - border, f.width, border),
        colour,
    );
    image.assert_all("left border", (f.x, f.y, border, f.height), colour);
    image.assert_all(
        "right border",
        (f.x + f.width - border, f.y, border, f.height),
        colour,
    );
}

/// The panel along the top of the output, in the trusted layer.
pub const PANEL: (i32, i32, i32, i32) = (0, 0, SCREEN.0, corral::panel::PANEL_HEIGHT);
/// The rectangle of the first toast on the trusted layer (top-right of the work area, below
/// the panel).
pub const TOAST: (i32, i32, i32, i32) = (SCREEN.0 - 12 - 640, PANEL.3 + 12, 640, 52);

/// Like [`assert_frame`], for the pixels of the frame outside the rectangles `except` (what
/// may rightly be drawn above it: the trusted layer).
pub fn assert_frame_except(
    image: &Image,
    w: &WindowInfo,
    border: i32,
    colour: u32,
    except: &[(i32, i32, i32, i32)],
) {
    let f = w.frame;
    let inside = |x: i32, y: i32| {
        except
            .iter()
            .any(|e| x >= e.0 && x < e.0 + e.2 && y >= e.1 && y < e.1 + e.3)
    };
    let on_screen =
        |x: i32, y: i32| x >= 0 && y >= 0 && (x as u32) < image.width && (y as u32) < image.height;
    for y in f.y..f.y + f.height {
        for x in f.x..f.x + f.width {
            let on_border = x < f.x + border
                || x >= f.x + f.width - border
                || y < f.y + border
                || y >= f.y + f.height - border;
            if on_border && on_screen(x, y) && !inside(x, y) {
                let got = image.rgb(x, y);
                assert_eq!(got, colour, "frame pixel ({x}, {y}) is #{got:06x}");
            }
        }
    }
}

/// A test that cannot run here says so and returns; under CI (`CI` set) it fails instead.
pub fn skip(why: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("cannot run under CI: {why}");
    }
    eprintln!("skipped: {why}");
}
