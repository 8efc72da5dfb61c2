//! A qube's desktop notifications on Corral's desktop, with real components end to end: a
//! headless `corral --domains`, real bubblewrap qubes started by the embedded domain manager,
//! the real `corral-agent` in each (serving org.freedesktop.Notifications on a D-Bus session bus
//! it starts with the real `dbus-daemon`), and the real `notify-send` (libnotify) run in the qube
//! with `corralctl run`. What is checked comes from the compositor's IPC (`notifications`) and
//! from the pixels of a real PNG screenshot.
//!
//! Needs root or unprivileged user namespaces, `bwrap`, `dbus-daemon`, `notify-send` (Debian
//! `libnotify-bin`), and `corralctl` and `corral-agent` built next to `corral`
//! (`cargo build --workspace`); without them the tests say why and return, except under CI
//! (`CI` set), where they fail.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{Corral, Image, TempDir};
use corral::ipc::NotificationInfo;

#[test]
fn test_agent_entry() {
    common::agent::main_if_agent();
}

const BLUE: u32 = 0x3465a4;
const YELLOW: u32 = 0xedd400;
/// Width of the label-coloured frame of a qube's toast (`notify::QUBE_FRAME`).
const FRAME: i32 = corral::notify::QUBE_FRAME;

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
    for (program, arg) in [
        ("bwrap", "--version"),
        ("dbus-daemon", "--version"),
        ("notify-send", "--version"),
    ] {
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

/// A headless `corral --domains` with its own data (SIGTERM on drop, so qubes stop cleanly:
/// `Corral`'s drop).
struct Session {
    corral: Corral,
    _data: TempDir,
}

impl Session {
    fn start(tag: &str) -> Option<Session> {
        if let Some(why) = missing() {
            common::skip(&why);
            return None;
        }
        let data = TempDir::new(&format!("{tag}-data"));
        let data_arg = data.0.to_str().unwrap().to_owned();
        let corral = Corral::start_with(
            tag,
            &["1600x900"],
            &[],
            &common::test_agent_command(),
            &["--domains", "--domains-data", &data_arg],
        );
        let s = Session {
            corral,
            _data: data,
        };
        s.corral.wait_for("the admin socket", || {
            s.ctl(&["ls"]).status.success().then_some(())
        });
        s.ok(&[
            "create",
            "host",
            "--class",
            "templatevm",
            "--label",
            "black",
        ]);
        Some(s)
    }

    fn ctl(&self, args: &[&str]) -> Output {
        self.corral.try_ctl(args)
    }

    fn ok(&self, args: &[&str]) -> String {
        self.corral.ctl(args)
    }

    fn appvm(&self, name: &str, label: &str) {
        self.ok(&[
            "create",
            name,
            "--class",
            "appvm",
            "--template",
            "host",
            "--label",
            label,
        ]);
    }

    /// `notify-send ARGS` in `qube`, through the qube's real session bus. The first call starts
    /// the qube; until its agent serves notifications, notify-send fails and is tried again.
    fn notify_send(&self, qube: &str, args: &[&str]) {
        let mut argv = vec!["run", "-p", qube, "notify-send"];
        argv.extend_from_slice(args);
        let deadline = Instant::now() + common::TIMEOUT;
        loop {
            let o = self.ctl(&argv);
            if o.status.success() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "notify-send in {qube} kept failing: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn wait_toast(&self, what: &str, f: impl Fn(&NotificationInfo) -> bool) -> NotificationInfo {
        self.corral.wait_for(what, || {
            self.corral.notifications().into_iter().find(|n| f(n))
        })
    }
}

/// Asserts the toast at `n.rect` has a frame of [`FRAME`] pixels, all exactly `colour`.
fn assert_toast_frame(image: &Image, n: &NotificationInfo, colour: u32) {
    let r = n.rect.as_ref().expect("a shown toast has a rect");
    image.assert_all("toast frame, top", (r.x, r.y, r.width, FRAME), colour);
    image.assert_all(
        "toast frame, bottom",
        (r.x, r.y + r.height - FRAME, r.width, FRAME),
        colour,
    );
    image.assert_all("toast frame, left", (r.x, r.y, FRAME, r.height), colour);
    image.assert_all(
        "toast frame, right",
        (r.x + r.width - FRAME, r.y, FRAME, r.height),
        colour,
    );
}

/// Pixels of the tag (the qube's name on its label colour) that are not the label colour: the
/// name's letters, drawn by the compositor.
fn name_tag_ink(image: &Image, n: &NotificationInfo, colour: u32) -> usize {
    let r = n.rect.as_ref().unwrap();
    image
        .pixels(r.x + FRAME, r.y + FRAME, 24, 20)
        .into_iter()
        .filter(|p| *p != colour)
        .count()
}

#[test]
fn notify_send_in_a_qube_shows_a_toast_framed_in_its_label_with_its_name() {
    let Some(s) = Session::start("notify-two") else {
        return;
    };
    s.appvm("work", "blue");
    s.appvm("personal", "yellow");
    s.notify_send("work", &["Build finished", "All 42 tests passed"]);
    s.notify_send("personal", &["-u", "critical", "Backup", "Done at 12:00"]);
    let work = s.wait_toast("work's notification", |n| {
        n.source == "qube" && n.qube.as_deref() == Some("work")
    });
    let personal = s.wait_toast("personal's notification", |n| {
        n.source == "qube" && n.qube.as_deref() == Some("personal")
    });
    assert_eq!(
        (
            work.headline.as_str(),
            work.detail.as_str(),
            work.colour.as_str()
        ),
        ("Build finished", "All 42 tests passed", "#3465a4"),
        "{work:?}"
    );
    assert_eq!(work.urgency.as_deref(), Some("normal"));
    assert_eq!(
        (personal.headline.as_str(), personal.colour.as_str()),
        ("Backup", "#edd400"),
        "{personal:?}"
    );
    assert_eq!(personal.urgency.as_deref(), Some("critical"));

    let image = s.corral.screenshot("notifications-two-qubes");
    assert_toast_frame(&image, &work, BLUE);
    assert_toast_frame(&image, &personal, YELLOW);
    // The name is written in the tag, in the text colour for the label, not left blank.
    assert!(
        name_tag_ink(&image, &work, BLUE) > 10,
        "no name in work's tag"
    );
    assert!(
        name_tag_ink(&image, &personal, YELLOW) > 10,
        "no name in personal's tag"
    );
    // Inside the frame the toast is not a label-coloured box (the qube cannot paint it).
    let r = work.rect.as_ref().unwrap();
    let inner = image.pixels(
        r.x + r.width / 2,
        r.y + FRAME,
        r.width / 2 - FRAME,
        r.height - 2 * FRAME,
    );
    assert!(
        inner.iter().filter(|p| **p == BLUE).count() < inner.len() / 10,
        "the inside of work's toast is label-coloured"
    );
}

#[test]
fn hostile_notifications_are_sanitised_bounded_and_a_flood_is_capped() {
    let Some(s) = Session::start("notify-hostile") else {
        return;
    };
    s.appvm("evil", "red");
    // A summary that tries to reverse what follows the trusted name and to colour the terminal,
    // and a body far over the limit, with control characters and a bidi isolate.
    let summary = "\u{202e}]metsys[\u{2066} \u{1b}[31mUpdate\u{7}\u{200b} required";
    let body = format!("{}\u{2028}tail\u{1}\u{feff}", "A".repeat(20_000));
    s.notify_send("evil", &[summary, &body]);
    let shown = s.wait_toast("evil's notification", |n| n.qube.as_deref() == Some("evil"));
    assert_eq!(shown.headline, "]metsys[ [31mUpdate required", "{shown:?}");
    assert!(
        !shown
            .headline
            .chars()
            .chain(shown.detail.chars())
            .any(|c| c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200b}' | '\u{feff}')),
        "{shown:?}"
    );
    assert!(shown.detail.len() <= corral_protocol::limits::MAX_NOTIFICATION_BODY_BYTES);
    assert!(shown.detail.starts_with("AAAA"), "{}", &shown.detail[..16]);
    let image = s.corral.screenshot("notifications-hostile");
    assert_toast_frame(&image, &shown, 0xcc0000);

    // A flood from one process in the qube: 40 notifications as fast as it can.
    let o = s.ctl(&[
        "run",
        "-p",
        "evil",
        "sh",
        "-c",
        "i=0; while [ $i -lt 40 ]; do notify-send \"spam $i\" x; i=$((i+1)); done",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let warning = s.wait_toast("the too-many-notifications warning", |n| {
        n.source == "system" && n.headline.contains("evil") && n.headline.contains("too many")
    });
    let toasts = s.corral.notifications();
    let from_evil = toasts
        .iter()
        .filter(|n| n.qube.as_deref() == Some("evil"))
        .count();
    assert!(
        from_evil <= corral::notify::QUBE_TOASTS_PER_QUBE,
        "{from_evil} toasts from evil: {toasts:?}"
    );
    assert_eq!(
        toasts
            .iter()
            .filter(|n| n.source == "system" && n.headline.contains("too many"))
            .count(),
        1,
        "one warning per flood: {toasts:?}"
    );
    // The app is told when its notification goes (NotificationClosed, from the GUI domain's
    // notification_closed): `notify-send --wait` returns only on that signal. Here the GUI
    // drops it (evil is at its limit) or, on a slow machine, lets it expire.
    let o = s.ctl(&[
        "run",
        "-p",
        "evil",
        "timeout",
        "30",
        "notify-send",
        "--wait",
        "one too many",
        "x",
    ]);
    assert!(
        o.status.success(),
        "notify-send --wait got no NotificationClosed ({}): {}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    // The system's warning is not framed like a qube's toast: its top edge is not red.
    let image = s.corral.screenshot("notifications-flood");
    let r = warning.rect.as_ref().unwrap();
    let top = image.pixels(r.x, r.y, r.width, 1);
    assert!(
        top.iter().all(|p| *p != 0xcc0000),
        "the system's toast has a label-coloured edge"
    );
}
