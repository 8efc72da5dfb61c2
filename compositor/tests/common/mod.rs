//! Test fixtures: a real `corral` process on the headless backend, real agent processes over
//! real socketpairs, and the IPC client.
//!
//! The agents are this test binary itself, started again by the compositor through
//! `--dev-agent-command` with the `test_agent_entry` test selected: see [`agent`]. Every
//! process is killed when its guard drops, and every wait is bounded.

#![allow(dead_code)]

pub mod agent;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use corral::ipc::{NotificationInfo, QubeInfo, Request, WindowInfo, client};

/// Longest wait for anything.
pub const TIMEOUT: Duration = Duration::from_secs(15);

/// A temporary directory removed on drop.
#[derive(Debug)]
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "corral-test-{tag}-{}-{}",
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

/// A running compositor. Killed (with its agents, which die with it) on drop.
#[derive(Debug)]
pub struct Corral {
    pub child: Child,
    pub socket: PathBuf,
    pub dir: TempDir,
    pub log: PathBuf,
}

impl Drop for Corral {
    /// SIGTERM first: the compositor stops cleanly, and its embedded domain manager stops the
    /// qubes it started (a SIGKILL would leave their sandboxes running, orphaned). SIGKILL
    /// after 20 s (a qube's apps get the manager's shutdown timeout).
    fn drop(&mut self) {
        let pid = rustix::process::Pid::from_child(&self.child);
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A binary built next to `corral` (`corralctl`, `corral-agent`).
pub fn beside_corral(name: &str) -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_corral")).with_file_name(name)
}

/// The command line that makes the compositor start this test binary as an agent.
pub fn test_agent_command() -> String {
    let exe = std::env::current_exe().unwrap();
    format!(
        "env CORRAL_TEST_AGENT_FD={{fd}} CORRAL_TEST_AGENT_QUBE={{name}} '{}' test_agent_entry --exact --nocapture --quiet",
        exe.display()
    )
}

impl Corral {
    /// Starts `corral --backend headless` with the test agent for each `NAME:LABEL`.
    pub fn start(tag: &str, sizes: &[&str], qubes: &[&str]) -> Corral {
        Corral::start_with(tag, sizes, qubes, &test_agent_command(), &[])
    }

    pub fn start_with(
        tag: &str,
        sizes: &[&str],
        qubes: &[&str],
        agent_command: &str,
        extra: &[&str],
    ) -> Corral {
        let dir = TempDir::new(tag);
        let socket = dir.0.join("ipc.sock");
        let log = dir.0.join("corral.log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_corral"));
        cmd.arg("--backend").arg("headless");
        for s in sizes {
            cmd.arg("--size").arg(s);
        }
        for q in qubes {
            cmd.arg("--dev-qube").arg(q);
        }
        cmd.arg("--dev-agent-command").arg(agent_command);
        cmd.arg("--ipc-socket").arg(&socket);
        cmd.args(extra);
        cmd.env("CORRAL_TEST_AGENT_LOG_DIR", &dir.0);
        // A private runtime directory (Wayland sockets of agents and GUI-domain apps).
        let runtime = dir.0.join("runtime");
        std::fs::create_dir_all(&runtime).unwrap();
        std::fs::set_permissions(
            &runtime,
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .unwrap();
        cmd.env("XDG_RUNTIME_DIR", &runtime);
        // Private qube data (the domain manager is embedded by default) and no config but the
        // built-in default, whatever the machine has in ~/.config or /etc.
        cmd.env("XDG_DATA_HOME", dir.0.join("data"));
        cmd.env_remove("CORRAL_DATA_DIR");
        cmd.env_remove("CORRAL_RUNTIME_DIR");
        cmd.env("XDG_CONFIG_HOME", dir.0.join("config"));
        cmd.env("RUST_LOG", "corral=debug");
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        let child = cmd.spawn().expect("starting corral");
        let corral = Corral {
            child,
            socket,
            dir,
            log,
        };
        corral.wait_for("the IPC socket", || {
            client::request(&corral.socket, &Request::Outputs).ok()
        });
        corral
    }

    /// Waits for the embedded domain manager's admin socket.
    pub fn wait_admin_socket(&self) {
        let socket = self.dir.0.join("runtime/corral/admin.sock");
        self.wait_for("the admin socket", || socket.exists().then_some(()));
    }

    /// `corralctl ARGS` against this corral's embedded domain manager, found with no flags
    /// under its `XDG_RUNTIME_DIR`.
    pub fn try_ctl(&self, args: &[&str]) -> std::process::Output {
        Command::new(beside_corral("corralctl"))
            .env("XDG_RUNTIME_DIR", self.dir.0.join("runtime"))
            .env_remove("CORRAL_ADMIN_SOCKET")
            .env_remove("CORRAL_RUNTIME_DIR")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// [`Corral::try_ctl`], asserting success; its stdout.
    pub fn ctl(&self, args: &[&str]) -> String {
        let o = self.try_ctl(args);
        assert!(
            o.status.success(),
            "corralctl {args:?} failed ({}): {}",
            o.status,
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    }

    /// A `host` template (empty root: the host's /usr, read-only) and an AppVM `name` on it.
    pub fn create_host_and(&self, name: &str, label: &str) {
        self.ctl(&[
            "create",
            "host",
            "--class",
            "templatevm",
            "--label",
            "black",
        ]);
        self.ctl(&["create", name, "--template", "host", "--label", label]);
    }

    /// Polls `f` until it returns `Some`, for at most [`TIMEOUT`].
    pub fn wait_for<T>(&self, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(v) = f() {
                return v;
            }
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                let tail: String = log
                    .lines()
                    .rev()
                    .take(40)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect::<Vec<_>>()
                    .join("\n");
                panic!("timed out waiting for {what}; corral's log ends with:\n{tail}");
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    pub fn request(&self, request: &Request) -> anyhow::Result<serde_json::Value> {
        client::request(&self.socket, request)
    }

    pub fn windows(&self) -> Vec<WindowInfo> {
        client::windows(&self.socket).expect("windows")
    }

    pub fn qubes(&self) -> Vec<QubeInfo> {
        serde_json::from_value(self.request(&Request::Qubes).unwrap()).unwrap()
    }

    pub fn notifications(&self) -> Vec<NotificationInfo> {
        serde_json::from_value(self.request(&Request::Notifications).unwrap()).unwrap()
    }

    /// Waits until `qube` has a toplevel with content on screen, and returns it.
    pub fn wait_window(&self, qube: &str) -> WindowInfo {
        self.wait_for(&format!("a window of {qube}"), || {
            self.windows()
                .into_iter()
                .find(|w| w.qube == qube && w.kind == "toplevel" && w.has_content && w.visible)
        })
    }

    pub fn key(&self, combo: &str) {
        self.key_action(combo, corral::ipc::KeyAction::Tap);
    }

    pub fn key_action(&self, combo: &str, action: corral::ipc::KeyAction) {
        self.request(&Request::Key {
            combo: combo.into(),
            action,
        })
        .unwrap();
    }

    pub fn focus(&self, id: u64) {
        self.request(&Request::Focus { id }).unwrap();
    }

    pub fn pointer(&self, x: f64, y: f64, click: bool) {
        self.request(&Request::Pointer {
            x,
            y,
            click: click.then_some(0x110),
        })
        .unwrap();
    }

    /// A screenshot, decoded; also kept under `target/corral-screenshots/NAME.png` for people.
    pub fn screenshot(&self, name: &str) -> Image {
        let path = self.dir.0.join(format!("{name}.png"));
        self.request(&Request::Screenshot { path: path.clone() })
            .unwrap();
        let image = Image::load(&path);
        let keep = screenshot_dir().join(format!("{name}.png"));
        let _ = std::fs::copy(&path, keep);
        image
    }

    /// The lines the test agent of `qube` logged (one per message received).
    pub fn agent_log(&self, qube: &str) -> Vec<String> {
        std::fs::read_to_string(self.dir.0.join(format!("{qube}.agent.log")))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

pub fn screenshot_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/debug/deps/<test> → target/corral-screenshots
    let target = exe
        .ancestors()
        .nth(3)
        .map(Path::to_path_buf)
        .unwrap_or_else(std::env::temp_dir);
    let dir = target.join("corral-screenshots");
    let _ = std::fs::create_dir_all(&dir);
    dir
}

/// An RGBA image.
#[derive(Debug)]
pub struct Image {
    pub width: u32,
    pub height: u32,
    pub rgba: Vec<u8>,
}

impl Image {
    pub fn load(path: &Path) -> Image {
        let decoder =
            png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!(info.color_type, png::ColorType::Rgba);
        buf.truncate(info.buffer_size());
        Image {
            width: info.width,
            height: info.height,
            rgba: buf,
        }
    }

    /// The pixel at (x, y) as 0xRRGGBB.
    pub fn rgb(&self, x: i32, y: i32) -> u32 {
        assert!(
            x >= 0 && y >= 0 && (x as u32) < self.width && (y as u32) < self.height,
            "({x}, {y}) is off the image"
        );
        let i = ((y as u32 * self.width + x as u32) * 4) as usize;
        (u32::from(self.rgba[i]) << 16)
            | (u32::from(self.rgba[i + 1]) << 8)
            | u32::from(self.rgba[i + 2])
    }

    /// Every pixel of the rectangle, as 0xRRGGBB.
    pub fn pixels(&self, x: i32, y: i32, w: i32, h: i32) -> Vec<u32> {
        let mut out = Vec::new();
        for yy in y..y + h {
            for xx in x..x + w {
                out.push(self.rgb(xx, yy));
            }
        }
        out
    }

    /// Asserts that every pixel of the rectangle is `colour`.
    pub fn assert_all(&self, what: &str, (x, y, w, h): (i32, i32, i32, i32), colour: u32) {
        for yy in y..y + h {
            for xx in x..x + w {
                let got = self.rgb(xx, yy);
                assert_eq!(
                    got, colour,
                    "{what}: pixel ({xx}, {yy}) is #{got:06x}, expected #{colour:06x}"
                );
            }
        }
    }
}

/// Parses `#rrggbb`.
pub fn hex(colour: &str) -> u32 {
    u32::from_str_radix(colour.trim_start_matches('#'), 16).unwrap()
}

/// Checks the four border strips of a window's frame: exactly `colour`.
pub fn assert_frame_border(image: &Image, w: &WindowInfo, border: i32, colour: u32) {
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

/// A test that cannot run here (a binary not built, a package not installed) says so and
/// returns; under CI (`CI` set, as `.ci/run` runs) it fails instead, so nothing CI relies on can
/// pass by being skipped.
pub fn skip(why: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("cannot run under CI: {why}");
    }
    eprintln!("skipped: {why}");
}
