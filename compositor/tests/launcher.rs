//! The launcher, end to end on the headless backend: the real shortcut opens it over a qube's
//! focused window, typing searches every qube's applications (read by the embedded domain
//! manager from the templates), Enter starts the chosen app in its stopped qube (a real
//! bubblewrap qube with the real agent), and the window appears framed in the qube's colour.
//! None of what was typed reaches the qube that had the keyboard.

mod common;

use std::path::Path;
use std::process::Command;

use common::{
    Corral, TempDir, agent, assert_frame_border, beside_corral, skip, test_agent_command,
};
use corral::ipc::{LauncherAction, Request};
use corral::launcher::Launcher;
use corral::layout::Rect;

/// The entry point of the agent processes (does nothing when run as a test).
#[test]
fn test_agent_entry() {
    agent::main_if_agent();
}

fn missing() -> Option<String> {
    for bin in ["corralctl", "corral-agent"] {
        if !beside_corral(bin).is_file() {
            return Some(format!("{bin} is not built (cargo build --workspace)"));
        }
    }
    if Command::new("bwrap").arg("--version").output().is_err() {
        return Some("bwrap is not installed".into());
    }
    if !Path::new("/usr/share/applications/foot.desktop").exists() {
        return Some("foot is not installed".into());
    }
    None
}

fn launcher_state(corral: &Corral) -> serde_json::Value {
    corral
        .request(&Request::Launcher {
            action: LauncherAction::State,
        })
        .unwrap()
}

const KEY_LINES: [&str; 2] = ["Key ", "Modifiers"];

#[test]
fn the_launcher_finds_an_app_and_starts_it_in_its_stopped_qube_framed() {
    if let Some(why) = missing() {
        skip(&why);
        return;
    }
    let data = TempDir::new("launcher-data");
    let data_arg = data.0.to_str().unwrap().to_owned();
    let corral = Corral::start_with(
        "launcher",
        &["1600x900"],
        &["personal:yellow"],
        &test_agent_command(),
        &["--domains", "--domains-data", &data_arg],
    );
    corral.wait_admin_socket();
    corral.create_host_and("work", "blue");

    // A qube window has the keyboard.
    let personal = corral.wait_window("personal");
    corral.focus(personal.id);
    corral.key("a");
    corral.wait_for("personal's key", || {
        corral
            .agent_log("personal")
            .iter()
            .any(|l| l.starts_with("Key "))
            .then_some(())
    });

    // The launcher's shortcut (keybindings.launcher, Super+Space by default) takes it away.
    corral.key("super+space");
    let rows = corral.wait_for("the launcher's list", || {
        let state = launcher_state(&corral);
        let rows = state["rows"].as_array()?.clone();
        (state["open"] == true && !rows.is_empty()).then_some(rows)
    });
    assert!(
        rows.iter().any(|r| r == "[work] Terminal"),
        "work's terminal is offered: {rows:?}"
    );
    assert!(
        !rows
            .iter()
            .any(|r| r.as_str().unwrap().starts_with("[dom0]")),
        "{rows:?}"
    );
    let leave = corral.wait_for("personal's keyboard_leave", || {
        let log = corral.agent_log("personal");
        log.iter()
            .rposition(|l| l.starts_with("KeyboardLeave"))
            .map(|_| log.len())
    });

    for ch in "work foot".chars() {
        let key = if ch == ' ' {
            "space".to_owned()
        } else {
            ch.to_string()
        };
        corral.key(&key);
    }
    let state = launcher_state(&corral);
    assert_eq!(state["query"], "work foot");
    assert_eq!(state["selected"], "[work] Terminal", "{state}");
    assert!(
        state["rows"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r.as_str().unwrap().starts_with("[work]")),
        "every search word must match: {state}"
    );

    // Drawn in the trusted layer, in front of the qube window, with work's colour beside the
    // selected row.
    let image = corral.screenshot("launcher-open");
    let rect = Launcher::rect_on(Rect::new(0, 0, 1600, 900));
    let (sx, sy) = (rect.x + 8 + 6 + 8, rect.y + 8 + 40 + 7 + 8);
    assert_eq!(
        image.rgb(sx, sy),
        0x3465a4,
        "work's label colour in the list"
    );
    assert_eq!(
        image.rgb(rect.x, rect.y + rect.h / 2),
        0x888a85,
        "the launcher's edge"
    );

    // Enter launches: work starts, foot's window appears framed in blue.
    corral.key("Return");
    let w = corral.wait_for("foot in work", || {
        corral
            .windows()
            .into_iter()
            .find(|w| w.qube == "work" && w.kind == "toplevel" && w.has_content && w.visible)
    });
    assert_eq!((w.label.as_str(), w.app_id.as_str()), ("blue", "work:foot"));
    assert_eq!(launcher_state(&corral)["open"], false);
    std::thread::sleep(std::time::Duration::from_millis(200));
    let image = corral.screenshot("launcher-launched");
    assert_frame_border(&image, &w, 4, 0x3465a4);

    // Nothing typed into the launcher reached the qube that had the keyboard (until it got the
    // keyboard back, when the launcher closed: then it hears the modifiers state, as on any
    // focus change).
    let typed: Vec<String> = corral
        .agent_log("personal")
        .into_iter()
        .skip(leave)
        .take_while(|l| !l.starts_with("KeyboardEnter"))
        .filter(|l| KEY_LINES.iter().any(|p| l.starts_with(p)))
        .collect();
    assert!(typed.is_empty(), "keys leaked to personal: {typed:?}");
}

#[test]
fn escape_closes_the_launcher_and_gives_the_keyboard_back() {
    let corral = Corral::start("launcher-escape", &["1600x900"], &["work:blue"]);
    let work = corral.wait_window("work");
    corral.focus(work.id);
    corral.key("super+space");
    corral.wait_for("the launcher", || {
        (launcher_state(&corral)["open"] == true).then_some(())
    });
    corral.key("x");
    corral.key("Escape");
    corral.wait_for("the launcher to close", || {
        (launcher_state(&corral)["open"] == false).then_some(())
    });
    let before = corral.agent_log("work").len();
    corral.key("b");
    corral.wait_for("work's key after the launcher closed", || {
        corral
            .agent_log("work")
            .iter()
            .skip(before)
            .any(|l| l.starts_with("Key "))
            .then_some(())
    });
}
