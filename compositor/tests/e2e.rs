//! End to end on the headless backend: a real `corral` process, real agent processes on real
//! socketpairs (this binary re-run as a protocol agent, see `common/agent.rs`), screenshots
//! decoded and checked pixel by pixel.

mod common;

use common::agent::{self, HEIGHT, POPUP_H, POPUP_W, SQUARE, WIDTH};
use common::{Corral, assert_frame_border, hex};
use corral::labels::{DARK_TEXT, LIGHT_TEXT, Label};
use corral::panel::PANEL_HEIGHT;

const BORDER: i32 = 4;
const TITLE: i32 = 24;

/// The entry point of the agent processes (does nothing when run as a test).
#[test]
fn test_agent_entry() {
    agent::main_if_agent();
}

/// Pixels of the title bar that have the text colour (exactly, or within a few steps where
/// a glyph edge blends).
fn text_pixels(image: &common::Image, w: &corral::ipc::WindowInfo, colour: u32) -> usize {
    let near = |p: u32| {
        (0..3).all(|i| {
            let (a, b) = ((p >> (8 * i)) & 0xff, (colour >> (8 * i)) & 0xff);
            a.abs_diff(b) <= 8
        })
    };
    image
        .pixels(w.frame.x + BORDER, w.frame.y + BORDER, w.width, TITLE)
        .into_iter()
        .filter(|p| near(*p))
        .count()
}

#[test]
fn two_qubes_side_by_side_in_their_label_colours() {
    let corral = Corral::start("two", &["1600x900"], &["work:blue", "personal:yellow"]);
    let work = corral.wait_window("work");
    let personal = corral.wait_window("personal");
    // Side by side, not overlapping, identities from the channel.
    assert!(
        work.frame.x + work.frame.width <= personal.frame.x
            || personal.frame.x + personal.frame.width <= work.frame.x
    );
    assert_eq!(
        (work.label.as_str(), work.colour.as_str()),
        ("blue", "#3465a4")
    );
    assert_eq!(
        (personal.label.as_str(), personal.colour.as_str()),
        ("yellow", "#edd400")
    );
    assert_eq!(work.display_title, "[work] Test window");
    assert_eq!(work.app_id, "work:org.corral.TestAgent");
    assert_eq!((work.width, work.height), (WIDTH as i32, HEIGHT as i32));
    assert_eq!(work.output_name.as_deref(), Some("headless-1"));
    assert_eq!(work.workspace, 1);

    let image = corral.screenshot("two-qubes");
    assert_eq!((image.width, image.height), (1600, 900));
    for (w, qube) in [(&work, "work"), (&personal, "personal")] {
        let label = Label::parse(&w.label).unwrap();
        assert_frame_border(&image, w, BORDER, hex(&w.colour));
        // The title bar: label colour with text in the readable colour for it.
        let text = label.text_colour();
        let text_hex = hex(&text.hex());
        assert!(
            text_pixels(&image, w, text_hex) > 30,
            "{qube}: no title text of colour {} in the title bar",
            text.hex()
        );
        // Content: what the agent drew, where it drew it.
        let (bg, square, _) = agent::colours(qube);
        image.assert_all(
            &format!("{qube} background"),
            (w.x + 40, w.y + 40, 100, 100),
            bg,
        );
        image.assert_all(
            &format!("{qube} square"),
            (
                w.x + SQUARE.0 as i32,
                w.y + SQUARE.1 as i32,
                SQUARE.2 as i32,
                SQUARE.2 as i32,
            ),
            square,
        );
    }
    // Dark text on yellow, light text on blue.
    assert_eq!(Label::parse("yellow").unwrap().text_colour(), DARK_TEXT);
    assert_eq!(Label::parse("blue").unwrap().text_colour(), LIGHT_TEXT);
    assert!(text_pixels(&image, &personal, hex(&LIGHT_TEXT.hex())) < 5);
}

#[test]
fn a_title_claiming_another_identity_keeps_the_real_qube_and_colour() {
    let corral = Corral::start("liar", &["1280x800"], &["liar:red"]);
    let w = corral.wait_window("liar");
    assert_eq!(w.qube, "liar");
    assert_eq!(w.title, agent::title("liar"));
    assert!(
        w.display_title.starts_with("[liar] [dom0]"),
        "{}",
        w.display_title
    );
    assert_eq!(w.colour, "#cc0000");
    let image = corral.screenshot("liar");
    assert_frame_border(&image, &w, BORDER, 0xcc0000);
    // The title bar is red, not dom0's black.
    assert_eq!(
        image.rgb(
            w.frame.x + w.frame.width - BORDER - 2,
            w.frame.y + BORDER + 2
        ),
        0xcc0000
    );
}

#[test]
fn a_popup_gets_a_border_in_the_label_colour() {
    let corral = Corral::start("popup", &["1280x800"], &["popper:green"]);
    let top = corral.wait_window("popper");
    let popup = corral.wait_for("the popup", || {
        corral
            .windows()
            .into_iter()
            .find(|w| w.kind == "popup" && w.has_content && w.visible)
    });
    assert_eq!(popup.qube, "popper");
    assert_eq!(popup.parent, Some(top.id));
    assert_eq!((popup.x, popup.y), (top.x + 50, top.y + 50));
    assert_eq!(
        (popup.width, popup.height),
        (POPUP_W as i32, POPUP_H as i32)
    );
    let image = corral.screenshot("popup");
    assert_frame_border(&image, &popup, 2, 0x73d216);
    let (_, _, colour) = agent::colours("popper");
    image.assert_all(
        "popup content",
        (popup.x, popup.y, popup.width, popup.height),
        colour,
    );
}

#[test]
fn keys_go_only_to_the_focused_qube() {
    let corral = Corral::start("keys", &["1600x900"], &["work:blue", "personal:yellow"]);
    let work = corral.wait_window("work");
    let personal = corral.wait_window("personal");
    // Nothing is focused until the user says so.
    assert!(!work.focused && !personal.focused);
    corral.key("a");
    corral.focus(work.id);
    corral.key("a");
    // A reserved shortcut: consumed, press and release.
    corral.key("ctrl+shift+c");
    corral.key("super+x");
    corral.wait_for("work's key events", || {
        let log = corral.agent_log("work");
        log.iter().any(|l| l == "Key 1 30 0").then_some(())
    });
    // Focus moves by the user's click on the other window's title bar.
    let title_y = f64::from(personal.frame.y + BORDER + 5);
    corral.pointer(f64::from(personal.x + 100), title_y, true);
    corral.key("b");
    corral.wait_for("personal's key events", || {
        corral
            .agent_log("personal")
            .iter()
            .any(|l| l == "Key 1 48 0")
            .then_some(())
    });
    // work's agent is another process: its keyboard_leave may be logged a moment later.
    corral.wait_for("work's keyboard_leave", || {
        corral
            .agent_log("work")
            .iter()
            .any(|l| l == "KeyboardLeave 1")
            .then_some(())
    });
    let work_log = corral.agent_log("work");
    let personal_log = corral.agent_log("personal");
    let keys = |log: &[String]| {
        log.iter()
            .filter(|l| l.starts_with("Key "))
            .cloned()
            .collect::<Vec<_>>()
    };
    // work saw a (30) and the modifiers of the copy shortcut, never c (46), x (45) or b (48).
    let work_keys = keys(&work_log);
    assert!(
        work_keys.contains(&"Key 1 30 1".to_string()),
        "{work_keys:?}"
    );
    assert!(
        work_keys.contains(&"Key 1 29 1".to_string()),
        "{work_keys:?}"
    );
    for forbidden in [46, 45, 48, 125] {
        assert!(
            !work_keys
                .iter()
                .any(|k| k.starts_with(&format!("Key 1 {forbidden} "))),
            "work saw key {forbidden}: {work_keys:?}"
        );
    }
    // personal saw only b, after it got focus.
    assert_eq!(keys(&personal_log), vec!["Key 1 48 1", "Key 1 48 0"]);
    // The keymap came once, before the first keyboard_enter.
    for log in [&work_log, &personal_log] {
        assert_eq!(log.iter().filter(|l| *l == "keymap").count(), 1, "{log:?}");
        let keymap = log.iter().position(|l| l == "keymap").unwrap();
        let enter = log
            .iter()
            .position(|l| l.starts_with("KeyboardEnter"))
            .unwrap();
        assert!(keymap < enter);
    }
    assert!(work_log.iter().any(|l| l == "KeyboardLeave 1"));
    // Activated state follows focus.
    assert!(
        personal_log
            .iter()
            .any(|l| l.starts_with("Configure 1 0 0 1")),
        "{personal_log:?}"
    );
    let windows = corral.windows();
    assert!(
        windows
            .iter()
            .find(|w| w.qube == "personal")
            .unwrap()
            .focused
    );
    assert!(!windows.iter().find(|w| w.qube == "work").unwrap().focused);
    // The reserved shortcut did its own work: a copy from the focused qube.
    corral.wait_for("the copy's notification", || {
        corral
            .notifications()
            .iter()
            .any(|n| n.headline.starts_with("Copied ") && n.headline.ends_with(" from work"))
            .then_some(())
    });
}

#[test]
fn pointer_events_arrive_in_content_coordinates() {
    let corral = Corral::start("pointer", &["1280x800"], &["work:blue"]);
    let w = corral.wait_window("work");
    corral.pointer(f64::from(w.x + 15), f64::from(w.y + 25), true);
    corral.wait_for("the click", || {
        corral
            .agent_log("work")
            .iter()
            .any(|l| l == "PointerButton 1 272 0")
            .then_some(())
    });
    let log = corral.agent_log("work");
    assert!(log.contains(&"PointerEnter 1 15 25".to_string()), "{log:?}");
    assert!(
        log.contains(&"PointerButton 1 272 1".to_string()),
        "{log:?}"
    );
    // The click focused the window.
    assert!(corral.windows()[0].focused);
    // A click on the frame goes to nobody but the compositor.
    let before = log
        .iter()
        .filter(|l| l.starts_with("PointerButton"))
        .count();
    corral.pointer(f64::from(w.frame.x + 1), f64::from(w.frame.y + 100), true);
    corral.key("a");
    corral.wait_for("the key after the frame click", || {
        corral
            .agent_log("work")
            .iter()
            .any(|l| l == "Key 1 30 0")
            .then_some(())
    });
    let after = corral
        .agent_log("work")
        .iter()
        .filter(|l| l.starts_with("PointerButton"))
        .count();
    assert_eq!(before, after);
}

#[test]
fn an_attention_request_does_not_move_focus() {
    let corral = Corral::start("attention", &["1600x900"], &["work:blue", "needy:purple"]);
    let work = corral.wait_window("work");
    let needy = corral.wait_window("needy");
    corral.focus(work.id);
    // Moving the pointer over needy (no click) makes it ask for attention.
    corral.pointer(f64::from(needy.x + 50), f64::from(needy.y + 50), false);
    let marked = corral.wait_for("the attention mark", || {
        corral
            .windows()
            .into_iter()
            .find(|w| w.qube == "needy" && w.attention)
    });
    assert!(!marked.focused);
    let windows = corral.windows();
    assert!(windows.iter().find(|w| w.qube == "work").unwrap().focused);
    assert!(
        !corral
            .agent_log("needy")
            .iter()
            .any(|l| l.starts_with("KeyboardEnter"))
    );
    let image = corral.screenshot("attention");
    // Its border keeps the exact label colour while the title bar pulses.
    assert_frame_border(&image, &marked, BORDER, 0x75507b);
    // Focusing it (a user action) clears the mark.
    corral.focus(needy.id);
    let w = corral
        .windows()
        .into_iter()
        .find(|w| w.qube == "needy")
        .unwrap();
    assert!(w.focused && !w.attention);
}

#[test]
fn a_killed_agent_takes_only_its_own_windows() {
    let corral = Corral::start("kill", &["1600x900"], &["work:blue", "personal:yellow"]);
    corral.wait_window("work");
    let personal = corral.wait_window("personal");
    let pid = corral
        .qubes()
        .into_iter()
        .find(|q| q.name == "work")
        .and_then(|q| q.agent_pid)
        .unwrap();
    let _ = rustix::process::kill_process(
        rustix::process::Pid::from_raw(pid as i32).unwrap(),
        rustix::process::Signal::KILL,
    );
    corral.wait_for("work's windows to go", || {
        (!corral.windows().iter().any(|w| w.qube == "work")).then_some(())
    });
    // personal keeps rendering: its frames keep being presented.
    let frames = |log: Vec<String>| log.iter().filter(|l| l.starts_with("FrameDone")).count();
    let before = frames(corral.agent_log("personal"));
    corral.wait_for("personal's next frames", || {
        (frames(corral.agent_log("personal")) > before + 5).then_some(())
    });
    let image = corral.screenshot("after-kill");
    assert_frame_border(&image, &personal, BORDER, 0xedd400);
    // A qube that just went away is not a violation: no notification.
    assert!(corral.notifications().is_empty());
}

#[test]
fn a_hostile_agent_is_cut_off_with_a_notification() {
    let corral = Corral::start("hostile", &["1600x900"], &["work:blue", "hostile:orange"]);
    let work = corral.wait_window("work");
    corral.wait_for("hostile to be cut off", || {
        corral
            .notifications()
            .into_iter()
            .find(|n| n.headline.contains("[hostile] was cut off"))
    });
    let notes = corral.notifications();
    assert!(
        notes[0].detail.contains("window 99 does not exist"),
        "{notes:?}"
    );
    assert_eq!(notes[0].colour, "#f57900");
    assert!(!corral.windows().iter().any(|w| w.qube == "hostile"));
    assert!(!corral.qubes().iter().any(|q| q.name == "hostile"));
    let frames = |log: Vec<String>| log.iter().filter(|l| l.starts_with("FrameDone")).count();
    let before = frames(corral.agent_log("work"));
    corral.wait_for("work's next frames", || {
        (frames(corral.agent_log("work")) > before + 5).then_some(())
    });
    let image = corral.screenshot("hostile-cut-off");
    assert_frame_border(&image, &work, BORDER, 0x3465a4);
    // The toast is drawn on the trusted layer: its stripe carries hostile's label colour.
    // (Toasts stack below the panel.)
    let stripe = image.pixels(1600 - 12 - 640 + 3, PANEL_HEIGHT + 12 + 20, 4, 4);
    assert!(stripe.iter().all(|p| *p == 0xf57900), "{stripe:x?}");
}

#[test]
fn a_window_mapped_before_content_shows_its_frame_around_a_neutral_fill() {
    let corral = Corral::start("slow", &["1280x800"], &["slow:gray"]);
    let w = corral.wait_for("slow's window", || {
        corral
            .windows()
            .into_iter()
            .find(|w| w.qube == "slow" && w.visible)
    });
    assert!(!w.has_content);
    let image = corral.screenshot("mapped-before-content");
    assert_frame_border(&image, &w, BORDER, 0x555555);
    image.assert_all("neutral fill", (w.x, w.y, w.width, w.height), 0x808080);
}

#[test]
fn several_outputs_side_by_side() {
    let corral = Corral::start("outputs", &["800x600", "640x480"], &["work:blue"]);
    let outputs: Vec<corral::ipc::OutputDesc> =
        serde_json::from_value(corral.request(&corral::ipc::Request::Outputs).unwrap()).unwrap();
    assert_eq!(outputs.len(), 2);
    assert_eq!((outputs[1].x, outputs[1].width), (800, 640));
    corral.wait_window("work");
    let image = corral.screenshot("two-outputs");
    assert_eq!((image.width, image.height), (1440, 600));
}

#[test]
fn windows_move_maximise_minimise_and_close() {
    let corral = Corral::start("wm", &["1280x800"], &["work:blue"]);
    let w = corral.wait_window("work");
    corral.focus(w.id);
    corral.key("super+ctrl+Right");
    let moved = corral.windows()[0].clone();
    assert_eq!(moved.frame.x, w.frame.x + 32);
    corral.key("super+Up");
    let max = corral.windows()[0].clone();
    assert!(max.maximized);
    assert_eq!(
        (max.frame.x, max.frame.y, max.frame.width, max.frame.height),
        (0, PANEL_HEIGHT, 1280, 800 - PANEL_HEIGHT),
        "maximised into the output below the panel"
    );
    corral.wait_for("the maximised configure", || {
        corral
            .agent_log("work")
            .iter()
            .any(|l| {
                l.starts_with(&format!(
                    "Configure 1 {} {} 3",
                    1280 - 2 * BORDER,
                    800 - PANEL_HEIGHT - TITLE - 2 * BORDER
                ))
            })
            .then_some(())
    });
    corral.key("super+Up");
    assert!(!corral.windows()[0].maximized);
    corral.key("super+Down");
    let min = corral.windows()[0].clone();
    assert!(min.minimized && !min.focused && !min.visible);
    corral.key("alt+Tab");
    assert!(corral.windows()[0].focused);
    corral.key("super+q");
    corral.wait_for("the window to close", || {
        corral.windows().is_empty().then_some(())
    });
}

#[test]
fn workspaces_hide_and_show_windows() {
    let corral = Corral::start("ws", &["1280x800"], &["work:blue"]);
    let w = corral.wait_window("work");
    corral.focus(w.id);
    corral.key("super+shift+2");
    let moved = corral.windows()[0].clone();
    assert_eq!(moved.workspace, 2);
    assert!(!moved.visible && !moved.focused);
    corral.key("super+2");
    assert!(corral.windows()[0].visible);
}

#[test]
fn keys_held_across_a_focus_change_are_released_toward_the_old_window() {
    use corral::ipc::KeyAction;
    let corral = Corral::start("qsb104", &["1600x900"], &["work:blue", "personal:yellow"]);
    let work = corral.wait_window("work");
    let personal = corral.wait_window("personal");
    corral.focus(work.id);
    corral.key_action("shift+a", KeyAction::Press);
    // Focus moves while shift and a are held (QSB-104).
    corral.focus(personal.id);
    corral.key_action("shift+a", KeyAction::Release);
    corral.key("b");
    corral.wait_for("personal's b", || {
        corral
            .agent_log("personal")
            .iter()
            .any(|l| l == "Key 1 48 0")
            .then_some(())
    });
    // Each agent is its own process writing its own log: wait for work's too.
    corral.wait_for("work's keyboard leave", || {
        corral
            .agent_log("work")
            .iter()
            .any(|l| l == "KeyboardLeave 1")
            .then_some(())
    });
    let work_log = corral.agent_log("work");
    // work got its releases before it lost the keyboard, and nothing after.
    let leave = work_log
        .iter()
        .position(|l| l == "KeyboardLeave 1")
        .unwrap();
    assert!(
        work_log[..leave].contains(&"Key 1 30 0".to_string()),
        "{work_log:?}"
    );
    assert!(
        work_log[..leave].contains(&"Key 1 42 0".to_string()),
        "{work_log:?}"
    );
    assert!(
        !work_log[leave..].iter().any(|l| l.starts_with("Key ")),
        "{work_log:?}"
    );
    // personal entered with no keys held and never saw a release of a or shift.
    let personal_log = corral.agent_log("personal");
    let keys: Vec<&String> = personal_log
        .iter()
        .filter(|l| l.starts_with("Key"))
        .collect();
    assert_eq!(keys, vec!["KeyboardEnter 1 []", "Key 1 48 1", "Key 1 48 0"]);
}
