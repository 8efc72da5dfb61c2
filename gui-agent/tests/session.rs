//! Clipboard, launching, reconnection and Xwayland, with real clients.

mod common;

use std::time::Duration;

use common::{Harness, Options, TIMEOUT, eventually};
use corral_protocol::{
    AgentMessage, ClipboardPayload, GuiMessage, LaunchRequest, Serial, StateRequest,
};

/// Pumps the GUI channel until `done` holds for what was received.
fn eventually_with(harness: &mut Harness, what: &str, mut done: impl FnMut(&Harness) -> bool) {
    let deadline = std::time::Instant::now() + TIMEOUT;
    while !done(harness) {
        assert!(std::time::Instant::now() < deadline, "timed out: {what}");
        harness.pump(Duration::from_millis(20));
    }
}

#[test]
fn clipboard_request_reads_what_wl_copy_put_there() {
    let mut harness = Harness::start();
    // Nothing copied yet: the answer is empty, with the request's serial.
    harness.send(GuiMessage::ClipboardRequest { serial: Serial(6) });
    harness.wait_for(
        "empty",
        |m| matches!(m, AgentMessage::ClipboardEmpty { serial } if *serial == Serial(6)),
    );

    let status = harness
        .client_command("wl-copy", &["hello from the qube"])
        .status()
        .unwrap();
    assert!(status.success());
    // wl-copy forks a server that owns the selection; ask until it is there.
    let mut serial = 7;
    let text = loop {
        harness.send(GuiMessage::ClipboardRequest {
            serial: Serial(serial),
        });
        let reply = harness.wait_for("clipboard reply", |m| {
            matches!(m, AgentMessage::ClipboardData { serial: s, .. } | AgentMessage::ClipboardEmpty { serial: s } if s.0 == serial)
        });
        if let AgentMessage::ClipboardData {
            payload: ClipboardPayload::Text(text),
            ..
        } = reply
        {
            break text;
        }
        assert!(serial < 100, "wl-copy's selection never appeared");
        serial += 1;
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(text, "hello from the qube");
}

#[test]
fn clipboard_paste_is_what_apps_paste() {
    let mut harness = Harness::start();
    harness.send(GuiMessage::ClipboardPaste {
        payload: ClipboardPayload::text("pasted from another qube"),
    });
    harness.pump(Duration::from_millis(100));
    let output = harness
        .client_command("wl-paste", &["--no-newline"])
        .stdout(std::process::Stdio::piped())
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "pasted from another qube"
    );
    // The GUI domain asking back gets the same data.
    harness.send(GuiMessage::ClipboardRequest { serial: Serial(9) });
    let reply = harness.wait_for(
        "reply",
        |m| matches!(m, AgentMessage::ClipboardData { serial, .. } if *serial == Serial(9)),
    );
    assert_eq!(
        reply,
        AgentMessage::ClipboardData {
            serial: Serial(9),
            payload: ClipboardPayload::text("pasted from another qube")
        }
    );
}

#[test]
fn app_list_and_launch_by_id_and_by_command() {
    let data = tempfile::tempdir().unwrap();
    let apps = data.path().join("applications");
    std::fs::create_dir_all(&apps).unwrap();
    let marker_dir = tempfile::tempdir().unwrap();
    let marker = marker_dir.path().join("launched");
    std::fs::write(
        apps.join("corral-test.desktop"),
        format!(
            "[Desktop Entry]\nType=Application\nName=Corral \u{202E}Test\nIcon=utilities-terminal\nExec=sh -c \"echo $WAYLAND_DISPLAY > {}\" %U\n",
            marker.display()
        ),
    )
    .unwrap();
    std::fs::write(
        apps.join("hidden.desktop"),
        "[Desktop Entry]\nType=Application\nName=Hidden\nExec=true\nNoDisplay=true\n",
    )
    .unwrap();
    let mut harness = Harness::start_with(Options {
        env: vec![
            ("XDG_DATA_DIRS".into(), data.path().display().to_string()),
            (
                "XDG_DATA_HOME".into(),
                marker_dir.path().display().to_string(),
            ),
        ],
        ..Default::default()
    });
    harness.send(GuiMessage::ListApps);
    let AgentMessage::AppList { apps } =
        harness.wait_for("app list", |m| matches!(m, AgentMessage::AppList { .. }))
    else {
        unreachable!()
    };
    assert_eq!(apps.len(), 1, "{apps:?}");
    assert_eq!(apps[0].id.as_str(), "corral-test.desktop");
    assert_eq!(apps[0].name.as_str(), "Corral Test");
    assert_eq!(apps[0].icon.as_str(), "utilities-terminal");

    harness.send(GuiMessage::Launch {
        request: LaunchRequest::App("corral-test.desktop".into()),
    });
    eventually("the app ran with the agent's display", TIMEOUT, || {
        std::fs::read_to_string(&marker).is_ok_and(|s| s.trim() == "wayland-test")
    });

    harness.send(GuiMessage::Launch {
        request: LaunchRequest::Command(vec!["weston-simple-shm".into()]),
    });
    harness.wait_for_window("simple-shm");
}

#[test]
fn after_a_gui_restart_every_window_is_announced_again_with_its_content() {
    let mut harness = Harness::start_with(Options {
        connect: true,
        ..Default::default()
    });
    let mut client = harness.connect_client();
    client.create_toplevel("survives restarts", "org.corral.test");
    let first = harness.wait_for_window("survives restarts");
    client.open_popup((5, 5), (30, 20), 0xFF00_FF00);
    harness.wait_for(
        "popup",
        |m| matches!(m, AgentMessage::Map { window } if *window != first),
    );

    // The compositor goes away; the app does not notice and keeps working.
    harness.drop_gui();
    client.roundtrip();
    harness.accept(false);
    harness.handshake();
    let again = harness.wait_for_window("survives restarts");
    assert_eq!(harness.windows[&again].app_id, "org.corral.test");
    assert_eq!(harness.pixel(again, 10, 10), 0xFF33_6699);
    eventually_with(&mut harness, "popup re-announced", |h| {
        h.windows
            .values()
            .any(|w| w.parent == Some(again) && w.mapped)
    });
    let popup = harness
        .windows
        .iter()
        .find(|(_, w)| w.parent == Some(again))
        .map(|(id, _)| *id)
        .expect("the popup comes back with its parent");
    assert_eq!(harness.windows[&popup].popup_position, Some((5, 5)));
    assert_eq!(harness.pixel(popup, 1, 1), 0xFF00_FF00);

    // And the app's later frames reach the new GUI.
    harness.send(GuiMessage::FrameDone {
        window: again,
        timestamp_ns: 0,
    });
    client.wait_for("frame", |s| s.frames_received >= 1);
    client.redraw(0xFFCC_0000);
    harness.wait_for(
        "new content",
        |m| matches!(m, AgentMessage::Commit { window, .. } if *window == again),
    );
    assert_eq!(harness.pixel(again, 10, 10), 0xFFCC_0000);
}

#[test]
fn the_agent_exits_when_its_inherited_channel_closes() {
    let mut harness = Harness::start();
    harness.drop_gui();
    eventually("agent exit", TIMEOUT, || !harness.agent_alive());
}

#[test]
fn fullscreen_and_maximise_requests_go_to_the_gui_which_decides() {
    let mut harness = Harness::start();
    harness.spawn_client("foot", &["--title", "wants-fullscreen", "--fullscreen"]);
    let id = harness.wait_for_window("wants-fullscreen");
    let found = harness.messages.iter().any(|m| {
        matches!(m, AgentMessage::RequestState { window, request: StateRequest::Fullscreen } if *window == id)
    });
    if !found {
        harness.wait_for("fullscreen request", |m| {
            matches!(m, AgentMessage::RequestState { window, request: StateRequest::Fullscreen } if *window == id)
        });
    }
}

#[test]
fn xterm_runs_through_xwayland() {
    let mut harness = Harness::start_with(Options {
        xwayland: true,
        ..Default::default()
    });
    harness.send(GuiMessage::Launch {
        request: LaunchRequest::Command(vec![
            "xterm".into(),
            "-T".into(),
            "x11-term".into(),
            "-bg".into(),
            "rgb:10/20/30".into(),
        ]),
    });
    let id = harness.wait_for_window("x11-term");
    let (w, h) = harness.buffer_size(id);
    assert!(w > 100 && h > 100, "{w}x{h}");
    // xterm's background colour fills the window's corner.
    harness.send(GuiMessage::FrameDone {
        window: id,
        timestamp_ns: 0,
    });
    harness.pump(Duration::from_millis(200));
    assert_eq!(harness.pixel(id, w - 1, h - 1) & 0x00FF_FFFF, 0x0010_2030);

    harness.send(GuiMessage::Close { window: id });
    harness.wait_for(
        "xterm's window goes away",
        |m| matches!(m, AgentMessage::DestroyWindow { window } if *window == id),
    );

    // Keys typed on the GUI side reach an X11 app.
    let out = harness.runtime_dir().join("x11-typed.txt");
    let script = format!("read line; echo \"$line\" > {}", out.display());
    harness.send(GuiMessage::Launch {
        request: LaunchRequest::Command(vec![
            "xterm".into(),
            "-T".into(),
            "x11-input".into(),
            "-e".into(),
            "sh".into(),
            "-c".into(),
            script,
        ]),
    });
    let id = harness.wait_for_window("x11-input");
    harness.send(GuiMessage::KeyboardEnter {
        window: id,
        pressed_keys: vec![],
    });
    // The X input focus travels on the window manager's X connection and the keys on
    // Xwayland's Wayland connection; as with any X11 window manager, keys typed in the same
    // instant as the focus change may arrive first. A person types later than that.
    harness.pump(Duration::from_millis(300));
    for c in "hi\n".chars() {
        for pressed in [true, false] {
            harness.send(GuiMessage::Key {
                window: id,
                time_ms: 0,
                keycode: common::evdev_key(c),
                pressed,
            });
        }
        harness.pump(Duration::from_millis(10));
    }
    eventually("xterm wrote the typed line", TIMEOUT, || {
        std::fs::read_to_string(&out).is_ok_and(|s| s == "hi\n")
    });
}
