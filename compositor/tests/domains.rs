//! The domain manager embedded in the compositor (`corral --domains`), with real processes:
//! a headless `corral` owning the qube store and the admin socket, `corralctl` with no flags
//! (only `XDG_RUNTIME_DIR`, as in a session), real bubblewrap qubes, the real `corral-agent`
//! started by the manager in each qube it starts, and `weston-simple-shm` in the qube.
//!
//! Needs root or unprivileged user namespaces, `bwrap`, `weston-simple-shm`, and `corralctl`
//! and `corral-agent` built next to `corral` (`cargo build --workspace`); without them the
//! tests say why and return, except under CI (`CI` set), where they fail.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{Corral, TempDir, assert_frame_border};
use corral::ipc::WindowInfo;

#[test]
fn test_agent_entry() {
    common::agent::main_if_agent();
}

const BLUE: u32 = 0x3465a4;
const RED: u32 = 0xcc0000;

/// A headless `corral --domains` with its own data and runtime directories. Dropping it sends
/// SIGTERM (the compositor stops every qube on its way out), waits, then kills.
struct Session {
    corral: Corral,
    data: PathBuf,
}

fn beside_corral(name: &str) -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_corral")).with_file_name(name)
}

/// Why these tests cannot run here, if they cannot.
fn missing() -> Option<String> {
    for bin in ["corralctl", "corral-agent"] {
        if !beside_corral(bin).is_file() {
            return Some(format!(
                "{} is not built (cargo build --workspace)",
                beside_corral(bin).display()
            ));
        }
    }
    for (program, arg) in [("bwrap", "--version"), ("weston-simple-shm", "--help")] {
        if Command::new(program)
            .arg(arg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_err()
        {
            return Some(format!("{program} is not installed"));
        }
    }
    None
}

impl Session {
    fn start(tag: &str, data: &Path) -> Option<Session> {
        if let Some(why) = missing() {
            common::skip(&why);
            return None;
        }
        let data_arg = data.to_str().unwrap().to_owned();
        let corral = Corral::start_with(
            tag,
            &["1600x900"],
            &[],
            &common::test_agent_command(),
            &["--domains", "--domains-data", &data_arg],
        );
        let s = Session {
            corral,
            data: data.to_owned(),
        };
        // The admin socket is bound after the IPC socket; wait for it.
        s.corral.wait_for("the admin socket", || {
            s.ctl(&["ls"]).status.success().then_some(())
        });
        Some(s)
    }

    /// `corralctl ARGS` with no socket flag: it finds the admin socket under XDG_RUNTIME_DIR.
    fn ctl(&self, args: &[&str]) -> Output {
        self.corral.try_ctl(args)
    }

    fn ok(&self, args: &[&str]) -> String {
        self.corral.ctl(args)
    }

    /// `corral msg windows --json`, through the real CLI.
    fn msg_windows(&self) -> Vec<WindowInfo> {
        let o = Command::new(env!("CARGO_BIN_EXE_corral"))
            .arg("msg")
            .arg("--socket")
            .arg(&self.corral.socket)
            .args(["windows", "--json"])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice(&o.stdout).unwrap()
    }

    fn wait_window(&self, what: &str, f: impl Fn(&WindowInfo) -> bool) -> WindowInfo {
        self.corral.wait_for(what, || {
            self.msg_windows()
                .into_iter()
                .find(|w| f(w) && w.kind == "toplevel" && w.has_content && w.visible)
        })
    }

    fn wait_no_window(&self, what: &str, f: impl Fn(&WindowInfo) -> bool) {
        self.corral
            .wait_for(what, || (!self.msg_windows().iter().any(&f)).then_some(()));
    }

    /// A `host` template (the host's /usr, read-only) and an AppVM on it.
    fn host_and(&self, name: &str, label: &str) {
        self.corral.create_host_and(name, label);
    }
}

/// Checks the window shows simple-shm's pattern inside a frame of exactly `colour`.
fn assert_framed_content(s: &Session, w: &WindowInfo, colour: u32, shot: &str) {
    // Let a few frames through.
    std::thread::sleep(Duration::from_millis(200));
    let image = s.corral.screenshot(shot);
    assert_frame_border(&image, w, 4, colour);
    let distinct: std::collections::HashSet<u32> = image
        .pixels(w.x, w.y, w.width, w.height)
        .into_iter()
        .collect();
    assert!(
        distinct.len() > 50,
        "simple-shm's pattern is not on screen ({} colours)",
        distinct.len()
    );
}

#[test]
fn corralctl_run_shows_the_window_framed_in_the_qubes_colour_until_shutdown() {
    let data = TempDir::new("domains-run-data");
    let Some(s) = Session::start("domains-run", &data.0) else {
        return;
    };
    s.host_and("work", "blue");
    // Returns at once; the app runs on in the qube (as qvm-run without -p).
    s.ok(&["run", "work", "weston-simple-shm"]);
    let w = s.wait_window("weston-simple-shm in work", |w| w.qube == "work");
    assert_eq!(
        (w.label.as_str(), w.colour.as_str()),
        ("blue", "#3465a4"),
        "{w:?}"
    );
    assert_eq!(w.display_title, "[work] simple-shm");
    assert_framed_content(&s, &w, BLUE, "domains-run-work");
    // The compositor lists the qube's channel with the store's identity.
    let qubes = s.corral.qubes();
    assert!(
        qubes.iter().any(|q| q.name == "work" && q.label == "blue"),
        "{qubes:?}"
    );

    // A label change in the store applies to the next start; the running channel keeps its
    // identity (it was attached when the channel was made).
    s.ok(&["shutdown", "work", "--wait"]);
    s.wait_no_window("work's windows to go after shutdown", |w| w.qube == "work");
    assert!(
        s.ok(&["ls"])
            .lines()
            .any(|l| l.starts_with("work") && l.contains("Halted"))
    );

    s.ok(&["prefs", "work", "label", "red"]);
    s.ok(&["run", "work", "weston-simple-shm"]);
    let w = s.wait_window("weston-simple-shm in work, now red", |w| w.qube == "work");
    assert_eq!(w.label, "red");
    assert_framed_content(&s, &w, RED, "domains-run-work-red");
    assert!(s.data.join("corral.json").is_file());
}

#[test]
fn an_agent_that_dies_in_a_running_qube_is_reported_but_a_shutdown_is_not() {
    let data = TempDir::new("domains-crash-data");
    let Some(s) = Session::start("domains-crash", &data.0) else {
        return;
    };
    s.host_and("work", "blue");
    s.ok(&["run", "work", "weston-simple-shm"]);
    s.wait_window("weston-simple-shm in work", |w| w.qube == "work");
    let stopped = |s: &Session| {
        s.corral
            .notifications()
            .iter()
            .filter(|n| n.headline == "[work]'s GUI agent stopped")
            .count()
    };
    // A shutdown closes the agent's channel too, but it is not a crash.
    s.ok(&["shutdown", "work", "--wait"]);
    s.wait_no_window("work's windows to go after shutdown", |w| w.qube == "work");
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(stopped(&s), 0, "a shutdown was reported as a crash");

    // The agent dies inside the running qube; the qube and its app go on running.
    s.ok(&["run", "work", "weston-simple-shm"]);
    s.wait_window("weston-simple-shm in work again", |w| w.qube == "work");
    s.ok(&["run", "-p", "work", "pkill", "-KILL", "-x", "corral-agent"]);
    s.wait_no_window("work's windows to go with its agent", |w| w.qube == "work");
    s.corral.wait_for("the crashed-agent toast", || {
        (stopped(&s) == 1).then_some(())
    });
    assert!(
        s.ok(&["ls"])
            .lines()
            .any(|l| l.starts_with("work") && l.contains("Running"))
    );
}

#[test]
fn a_disposable_is_framed_in_its_templates_colour_and_goes_with_its_command() {
    let data = TempDir::new("domains-disp-data");
    let Some(s) = Session::start("domains-disp", &data.0) else {
        return;
    };
    s.host_and("dvm", "red");
    s.ok(&["prefs", "dvm", "template_for_dispvms", "True"]);
    s.ok(&["run", "--dispvm=dvm", "weston-simple-shm"]);
    let w = s.wait_window("weston-simple-shm in a disposable", |w| {
        w.qube.starts_with("disp")
    });
    assert_eq!(w.label, "red", "{w:?}");
    assert_framed_content(&s, &w, RED, "domains-dispvm");
    let disp = w.qube.clone();
    assert!(
        s.ok(&["ls"])
            .lines()
            .any(|l| l.starts_with(&disp) && l.contains("DispVM"))
    );

    // Kill the app inside the disposable: the disposable is destroyed, its window goes. (Not
    // `-p`: the kill ends the disposable, and the kill command with it.)
    s.ok(&["run", &disp, "kill $(pidof weston-simple-shm)"]);
    s.wait_no_window("the disposable's window to go", |w| w.qube == disp);
    s.corral.wait_for("the disposable to be removed", || {
        (!s.ok(&["ls"]).contains(&disp)).then_some(())
    });
}

/// `corral msg …` through the real CLI: its stdout, asserting success.
fn msg(s: &Session, args: &[&str]) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_corral"))
        .arg("msg")
        .arg("--socket")
        .arg(&s.corral.socket)
        .args(args)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "corral msg {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

#[test]
fn the_desktop_lists_a_stopped_qubes_apps_and_launching_one_frames_its_window() {
    if !Path::new("/usr/share/applications/foot.desktop").exists() {
        common::skip("foot is not installed");
        return;
    }
    let data = TempDir::new("domains-launch-data");
    let Some(s) = Session::start("domains-launch", &data.0) else {
        return;
    };
    s.host_and("work", "blue");
    let apps: Vec<serde_json::Value> = serde_json::from_str(&msg(&s, &["apps", "--json"])).unwrap();
    let work = apps
        .iter()
        .find(|q| q["name"] == "work")
        .expect("work is listed");
    assert_eq!(work["state"], "Halted");
    assert_eq!(work["colour"], "#3465a4");
    assert!(
        work["apps"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["id"] == "foot"),
        "{work}"
    );
    assert!(
        !apps.iter().any(|q| q["class"] == "AdminVM"),
        "the GUI domain is not a launch target"
    );
    let text = msg(&s, &["apps", "work"]);
    assert!(text.starts_with("work (AppVM, blue, Halted)"), "{text}");

    // Launching starts the stopped qube, then the app, whose window is framed in its colour.
    msg(&s, &["launch", "work", "foot"]);
    let w = s.wait_window("foot launched in work", |w| w.qube == "work");
    assert_eq!(
        (w.label.as_str(), w.app_id.as_str()),
        ("blue", "work:foot"),
        "{w:?}"
    );
    std::thread::sleep(Duration::from_millis(200));
    let image = s.corral.screenshot("domains-launch");
    assert_frame_border(&image, &w, 4, BLUE);

    // An unknown app is refused with a reason, and no qube is started for it.
    let o = Command::new(env!("CARGO_BIN_EXE_corral"))
        .arg("msg")
        .arg("--socket")
        .arg(&s.corral.socket)
        .args(["launch", "work", "no-such-app"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("work has no application no-such-app"), "{err}");
}

#[test]
fn autostart_qubes_start_with_the_session_and_stop_with_it() {
    let data = TempDir::new("domains-autostart-data");
    {
        let Some(s) = Session::start("domains-autostart-1", &data.0) else {
            return;
        };
        s.host_and("work", "blue");
        s.ok(&["prefs", "work", "autostart", "True"]);
        // A second autostart qube that cannot start: its template's root volume is gone.
        let volumes = || -> Vec<PathBuf> {
            let mut v: Vec<PathBuf> = std::fs::read_dir(data.0.join("volumes"))
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            v.sort();
            v
        };
        let before = volumes();
        s.ok(&[
            "create",
            "gone",
            "--class",
            "templatevm",
            "--label",
            "black",
        ]);
        let gone = volumes()
            .into_iter()
            .find(|v| !before.contains(v))
            .expect("the template's volumes");
        s.ok(&["create", "broken", "--template", "gone", "--label", "red"]);
        s.ok(&["prefs", "broken", "autostart", "True"]);
        std::fs::remove_dir_all(gone.join("root")).unwrap();
        assert!(s.corral.qubes().is_empty());
    }
    let s = Session::start("domains-autostart-2", &data.0).expect("ran once already");
    // The one that failed says so on the desktop, not only in the journal.
    let toast = s.corral.wait_for("a toast about broken's autostart", || {
        s.corral
            .notifications()
            .into_iter()
            .find(|n| n.headline.contains("[broken]: autostart failed"))
    });
    assert!(
        toast.detail.contains("root volume") && toast.detail.contains("is missing"),
        "the reason names what is missing: {}",
        toast.detail
    );
    // Nobody asked: the qube starts with the session and its agent's channel is registered.
    s.corral.wait_for("work's agent to connect", || {
        s.corral.qubes().into_iter().find(|q| q.name == "work")
    });
    assert!(
        s.ok(&["ls"])
            .lines()
            .any(|l| l.starts_with("work") && l.contains("Running"))
    );
    // The qube runs GUI apps right away (a running qube: no start).
    s.ok(&["run", "work", "weston-simple-shm"]);
    let w = s.wait_window("weston-simple-shm in work", |w| w.qube == "work");
    assert_framed_content(&s, &w, BLUE, "domains-autostart");
}

/// Time from `corralctl run …` to the app's first frame on screen, as the issue asks:
/// `cargo test -p corral --test domains --release -- --ignored --nocapture first_frame`
/// (or `domains/scripts/bench-first-frame.sh`). `CORRAL_BENCH_N` runs per case (default 15).
///
/// The clock starts just before `corralctl` is spawned. "Mapped" is when the compositor's IPC
/// (the request behind `corral msg windows --json`, polled every millisecond) first reports a
/// visible toplevel of the qube with content; "confirmed" is when the first screenshot request
/// whose image shows simple-shm's pattern inside the frame was made (the image is the scene at
/// the request; encoding and writing the PNG are not counted).
#[test]
#[ignore = "benchmark; run with --ignored --nocapture"]
fn first_frame_benchmark() {
    let n: usize = std::env::var("CORRAL_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(15);
    let data = TempDir::new("domains-bench-data");
    let Some(s) = Session::start("domains-bench", &data.0) else {
        return;
    };
    s.host_and("work", "blue");
    s.ok(&[
        "create",
        "dvm",
        "--class",
        "appvm",
        "--template",
        "host",
        "--label",
        "red",
    ]);
    s.ok(&["prefs", "dvm", "template_for_dispvms", "True"]);

    let first_frame = |args: &[&str], pick: &dyn Fn(&WindowInfo) -> bool| {
        let t0 = Instant::now();
        s.ok(args);
        let w = loop {
            assert!(t0.elapsed() < common::TIMEOUT, "no window for {args:?}");
            if let Some(w) = corral::ipc::client::windows(&s.corral.socket)
                .unwrap()
                .into_iter()
                .find(|w| pick(w) && w.kind == "toplevel" && w.has_content && w.visible)
            {
                break w;
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        let mapped = t0.elapsed();
        let confirmed = loop {
            assert!(t0.elapsed() < common::TIMEOUT, "no content for {args:?}");
            // The screenshot shows the scene as of its request.
            let asked = t0.elapsed();
            let image = s.corral.screenshot("domains-bench");
            let inside: std::collections::HashSet<u32> = image
                .pixels(w.x, w.y, w.width, w.height)
                .into_iter()
                .collect();
            if inside.len() > 50 {
                break asked;
            }
        };
        (w, mapped, confirmed)
    };
    let report = |what: &str, mut mapped: Vec<Duration>, mut confirmed: Vec<Duration>| {
        let stats = |v: &mut Vec<Duration>| {
            v.sort();
            let ms = |d: Duration| d.as_secs_f64() * 1000.0;
            let mean = v.iter().map(|d| ms(*d)).sum::<f64>() / v.len() as f64;
            format!(
                "median {:6.1} ms  mean {:6.1}  min {:6.1}  max {:6.1}",
                ms(v[v.len() / 2]),
                mean,
                ms(v[0]),
                ms(v[v.len() - 1])
            )
        };
        println!("{what:<34} mapped:    {}", stats(&mut mapped));
        println!(
            "{:<34} confirmed: {}  (n={})",
            "",
            stats(&mut confirmed),
            confirmed.len()
        );
    };
    let kill_app = |qube: &str| {
        s.ok(&["run", qube, "kill $(pidof weston-simple-shm)"]);
        s.wait_no_window("the window to go", |w| w.qube == qube);
    };

    // A halted qube: start (overlay, sandbox, agent) included.
    let (mut mapped, mut confirmed) = (Vec::new(), Vec::new());
    for _ in 0..n {
        let (_, m, c) = first_frame(&["run", "work", "weston-simple-shm"], &|w| w.qube == "work");
        mapped.push(m);
        confirmed.push(c);
        s.ok(&["shutdown", "work", "--wait"]);
        s.wait_no_window("work's window to go", |w| w.qube == "work");
    }
    report("run work (halted qube)", mapped, confirmed);

    // A running qube whose agent is up.
    s.ok(&["start", "work"]);
    s.corral.wait_for("work's agent", || {
        s.corral
            .qubes()
            .into_iter()
            .find(|q| q.name == "work" && q.established)
    });
    let (mut mapped, mut confirmed) = (Vec::new(), Vec::new());
    for _ in 0..n {
        let (_, m, c) = first_frame(&["run", "work", "weston-simple-shm"], &|w| w.qube == "work");
        mapped.push(m);
        confirmed.push(c);
        kill_app("work");
    }
    report("run work (running qube)", mapped, confirmed);
    s.ok(&["shutdown", "work", "--wait"]);

    // A fresh disposable each time.
    let (mut mapped, mut confirmed) = (Vec::new(), Vec::new());
    for _ in 0..n {
        let (w, m, c) = first_frame(&["run", "--dispvm=dvm", "weston-simple-shm"], &|w| {
            w.qube.starts_with("disp")
        });
        mapped.push(m);
        confirmed.push(c);
        kill_app(&w.qube);
        s.corral.wait_for("the disposable to be removed", || {
            (!s.ok(&["ls"]).contains(&w.qube)).then_some(())
        });
    }
    report("run --dispvm=dvm (new disposable)", mapped, confirmed);
}
