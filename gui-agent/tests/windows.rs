//! Windows, pixels, configure, popups, frame pacing, input and robustness, with a tiny
//! in-process Wayland client (exact pixels) and real clients from Debian.

mod common;

use std::time::Duration;

use common::{Harness, Options, TIMEOUT, eventually};
use corral_protocol::{
    AgentMessage, CursorShape, FixedPoint, GuiMessage, OptionalSize, Serial, WindowId, WindowStates,
};
use wayland_protocols::wp::cursor_shape::v1::client::wp_cursor_shape_device_v1;

const BLUE: u32 = 0xFF33_6699;
const RED: u32 = 0xFFCC_0000;
const GREEN: u32 = 0xFF73_D216;

fn toplevel_with_content(
    harness: &mut Harness,
    title: &str,
) -> (common::client::TestClient, WindowId) {
    let mut client = harness.connect_client();
    client.create_toplevel(title, "org.corral.test");
    let sanitized = corral_protocol::SanitizedText::sanitize(title, 256);
    let id = harness.wait_for_window(sanitized.as_str());
    (client, id)
}

#[test]
fn toplevel_arrives_with_title_app_id_hints_and_its_pixels() {
    let mut harness = Harness::start();
    let (mut client, id) = toplevel_with_content(&mut harness, "Test \u{202E}window");
    let seen = harness.windows[&id].clone();
    assert_eq!(seen.title, "Test window", "the bidi override is stripped");
    assert_eq!(seen.app_id, "org.corral.test");
    assert_eq!(seen.min_size, Some((50, 40)));
    assert_eq!(harness.buffer_size(id), (200, 100));
    // Map comes after the first content.
    let commit_at = harness
        .messages
        .iter()
        .position(|m| matches!(m, AgentMessage::Commit { window, .. } if *window == id))
        .unwrap();
    let map_at = harness
        .messages
        .iter()
        .position(|m| matches!(m, AgentMessage::Map { window } if *window == id))
        .unwrap();
    assert!(
        commit_at < map_at,
        "map before content: {:?}",
        harness.messages
    );
    assert_eq!(harness.pixel(id, 0, 0), BLUE);
    assert_eq!(harness.pixel(id, 199, 99), BLUE);

    // A subsurface is composited into the same window.
    harness.send(GuiMessage::FrameDone {
        window: id,
        timestamp_ns: 0,
    });
    client.add_subsurface((10, 20), (30, 15), RED);
    harness.wait_for(
        "commit",
        |m| matches!(m, AgentMessage::Commit { window, .. } if *window == id),
    );
    assert_eq!(harness.pixel(id, 10, 20), RED);
    assert_eq!(harness.pixel(id, 39, 34), RED);
    assert_eq!(harness.pixel(id, 40, 35), BLUE);

    // Only damaged rectangles are re-rendered and announced: the client attaches an all-green
    // buffer but declares a 10x10 square changed, so only that square turns green.
    harness.send(GuiMessage::FrameDone {
        window: id,
        timestamp_ns: 0,
    });
    client.redraw_damaged(GREEN, (100, 50, 10, 10));
    let damage = harness.wait_for(
        "damage",
        |m| matches!(m, AgentMessage::Damage { window, .. } if *window == id),
    );
    harness.wait_for(
        "commit",
        |m| matches!(m, AgentMessage::Commit { window, .. } if *window == id),
    );
    let AgentMessage::Damage { rects, .. } = damage else {
        unreachable!()
    };
    let announced: Vec<_> = rects
        .iter()
        .map(|r| (r.x(), r.y(), r.width(), r.height()))
        .collect();
    assert_eq!(announced, vec![(100, 50, 10, 10)]);
    assert_eq!(harness.pixel(id, 100, 50), GREEN);
    assert_eq!(harness.pixel(id, 109, 59), GREEN);
    assert_eq!(harness.pixel(id, 110, 60), BLUE);
    assert_eq!(harness.pixel(id, 0, 0), BLUE);
}

#[test]
fn inline_pixels_reach_a_gui_without_fd_passing() {
    let mut harness = Harness::start_with(Options {
        inline_pixels: true,
        ..Default::default()
    });
    let (mut client, id) = toplevel_with_content(&mut harness, "inline");
    assert_eq!(harness.pixel(id, 5, 5), BLUE);
    harness.send(GuiMessage::FrameDone {
        window: id,
        timestamp_ns: 0,
    });
    client.redraw(GREEN);
    harness.wait_for(
        "second commit",
        |m| matches!(m, AgentMessage::Commit { window, .. } if *window == id),
    );
    assert_eq!(harness.pixel(id, 150, 80), GREEN);
}

#[test]
fn configure_size_and_states_reach_the_client_and_its_ack_comes_back() {
    let mut harness = Harness::start();
    let (mut client, id) = toplevel_with_content(&mut harness, "configure");
    harness.send(GuiMessage::Configure {
        window: id,
        serial: Serial(4242),
        size: OptionalSize::new(320, 240).unwrap(),
        states: WindowStates::ACTIVATED | WindowStates::MAXIMIZED,
    });
    client.wait_for("the GUI's configure", |s| s.configured_size == (320, 240));
    assert!(client.state.activated);
    client.ack_and_draw();
    harness.wait_for("ack", |m| {
        matches!(m, AgentMessage::AckConfigure { window, serial } if *window == id && *serial == Serial(4242))
    });
    harness.wait_for("attach of the new size", |m| {
        matches!(m, AgentMessage::Attach { window, layout, .. }
            if *window == id && layout.size().width() == 320 && layout.size().height() == 240)
    });
    harness.wait_for(
        "commit",
        |m| matches!(m, AgentMessage::Commit { window, .. } if *window == id),
    );
    assert_eq!(harness.pixel(id, 319, 239), BLUE);
    // The old pool is destroyed once the new one is attached.
    harness.wait_for("old pool destroyed", |m| {
        matches!(m, AgentMessage::PoolDestroy { .. })
    });
}

#[test]
fn frame_callbacks_are_paced_by_frame_done() {
    let mut harness = Harness::start();
    let (mut client, id) = toplevel_with_content(&mut harness, "pacing");
    client.state.animate = true;
    // Without FrameDone the client gets no frame callback, so it draws nothing more.
    for _ in 0..10 {
        client.roundtrip();
        harness.pump(Duration::from_millis(30));
    }
    assert_eq!(client.state.frames_received, 0);
    assert_eq!(harness.windows[&id].commits, 1);
    // Each FrameDone releases exactly one frame.
    for n in 1..=3 {
        harness.send(GuiMessage::FrameDone {
            window: id,
            timestamp_ns: 0,
        });
        client.wait_for("a frame callback", |s| s.frames_received == n);
        harness.wait_for(
            "the next commit",
            |m| matches!(m, AgentMessage::Commit { window, .. } if *window == id),
        );
    }
    for _ in 0..5 {
        client.roundtrip();
        harness.pump(Duration::from_millis(20));
    }
    assert_eq!(client.state.frames_received, 3);
    assert_eq!(harness.windows[&id].commits, 4);
}

#[test]
fn popup_arrives_with_its_parent_position_and_pixels_and_close_dismisses_it() {
    let mut harness = Harness::start();
    let (mut client, parent) = toplevel_with_content(&mut harness, "with popup");
    client.open_popup((20, 30), (60, 40), GREEN);
    let created = harness.wait_for("create popup", |m| {
        matches!(m, AgentMessage::CreatePopup { .. })
    });
    let AgentMessage::CreatePopup {
        window: popup,
        parent: said_parent,
        position,
        size,
    } = created
    else {
        unreachable!()
    };
    assert_eq!(said_parent, parent);
    assert_eq!((position.x(), position.y()), (20, 30));
    assert_eq!((size.width(), size.height()), (60, 40));
    harness.wait_for(
        "popup mapped",
        |m| matches!(m, AgentMessage::Map { window } if *window == popup),
    );
    assert_eq!(harness.pixel(popup, 59, 39), GREEN);

    // A popup near the output's edge is flipped or slid to stay on the output.
    let mut edge_client = harness.connect_client();
    edge_client.create_toplevel("edge", "edge");
    harness.wait_for_window("edge");
    edge_client.open_popup((1270, 790), (100, 100), GREEN);
    let created = harness.wait_for("edge popup", |m| {
        matches!(m, AgentMessage::CreatePopup { .. })
    });
    let AgentMessage::CreatePopup { position, .. } = created else {
        unreachable!()
    };
    assert!(
        position.x() + 100 <= 1280 && position.y() + 100 <= 800,
        "constrained to the 1280x800 output: {position:?}"
    );

    harness.send(GuiMessage::Close { window: popup });
    client.wait_for("popup_done", |s| s.popup_done);
}

#[test]
fn pointer_and_keys_reach_exactly_the_surface_meant() {
    let mut harness = Harness::start();
    let (mut client, id) = toplevel_with_content(&mut harness, "input");
    client.use_seat();
    harness.send(GuiMessage::PointerEnter {
        window: id,
        position: FixedPoint::from_f64(12.5, 7.25).unwrap(),
    });
    harness.send(GuiMessage::PointerButton {
        window: id,
        time_ms: 1,
        button: 0x110,
        pressed: true,
    });
    harness.send(GuiMessage::PointerButton {
        window: id,
        time_ms: 2,
        button: 0x110,
        pressed: false,
    });
    client.wait_for("pointer events", |s| s.buttons.len() == 2);
    assert_eq!(client.state.pointer_positions[0], (12.5, 7.25));
    assert_eq!(client.state.buttons, vec![(0x110, true), (0x110, false)]);

    harness.send(GuiMessage::KeyboardEnter {
        window: id,
        pressed_keys: vec![],
    });
    for (code, pressed) in [(30, true), (30, false)] {
        harness.send(GuiMessage::Key {
            window: id,
            time_ms: 3,
            keycode: code,
            pressed,
        });
    }
    client.wait_for("keys", |s| s.keys.len() == 2);
    assert!(client.state.keyboard_entered);
    assert_eq!(client.state.keys, vec![(30, true), (30, false)]);

    // Messages naming windows the agent never created are ignored, not fatal.
    let bogus = WindowId::new(999).unwrap();
    harness.send(GuiMessage::Key {
        window: bogus,
        time_ms: 4,
        keycode: 30,
        pressed: true,
    });
    harness.send(GuiMessage::Close { window: bogus });
    harness.send(GuiMessage::FrameDone {
        window: bogus,
        timestamp_ns: 0,
    });
    harness.send(GuiMessage::Ping { serial: Serial(5) });
    harness.wait_for(
        "pong",
        |m| matches!(m, AgentMessage::Pong { serial } if *serial == Serial(5)),
    );
    client.roundtrip();
    assert_eq!(client.state.keys.len(), 2);
    assert!(harness.agent_alive());
}

#[test]
fn an_app_opening_more_windows_than_the_qube_may_have_does_not_get_the_qube_cut_off() {
    let budget = corral_protocol::session::SessionLimits::default().max_windows;
    let mut harness = Harness::start();
    let mut client = harness.connect_client();
    for n in 0..budget + 20 {
        client.create_toplevel(&format!("flood {n}"), "org.corral.flood");
    }
    // The harness panics on any channel error: the GUI side never sees a violation. Exactly
    // the budget's worth of windows reached it; the rest stayed in the qube.
    harness.pump(Duration::from_millis(500));
    assert_eq!(harness.windows.len(), budget);
    // The qube still works: a window of another app appears once a flood window is gone.
    let first = *harness.windows.keys().min().unwrap();
    drop(client);
    harness.wait_for(
        "the flood's windows destroyed",
        |m| matches!(m, AgentMessage::DestroyWindow { window } if *window == first),
    );
    let (_other, id) = toplevel_with_content(&mut harness, "after the flood");
    assert!(harness.windows[&id].mapped);
    assert!(harness.agent_alive());
}

#[test]
fn cursor_shapes_reach_the_gui_from_the_fixed_set() {
    let mut harness = Harness::start();
    let (mut client, id) = toplevel_with_content(&mut harness, "cursor");
    client.use_seat();
    harness.send(GuiMessage::PointerEnter {
        window: id,
        position: FixedPoint::from_f64(5.0, 5.0).unwrap(),
    });
    client.wait_for("pointer enter", |s| s.pointer_enter_serial.is_some());
    client.set_cursor_shape(wp_cursor_shape_device_v1::Shape::Text);
    harness.wait_for("a text cursor", |m| {
        matches!(m, AgentMessage::SetCursor { window, shape } if *window == id && *shape == CursorShape::Text)
    });
    client.set_cursor_shape(wp_cursor_shape_device_v1::Shape::NwseResize);
    harness.wait_for(
        "a resize cursor",
        |m| matches!(m, AgentMessage::SetCursor { shape, .. } if *shape == CursorShape::NwseResize),
    );
}

#[test]
fn an_activation_request_becomes_an_attention_request_not_focus() {
    let mut harness = Harness::start();
    let (mut client, id) = toplevel_with_content(&mut harness, "activate me");
    client.use_seat();
    client.request_activation();
    harness.wait_for(
        "an attention request",
        |m| matches!(m, AgentMessage::RequestAttention { window } if *window == id),
    );
    // The agent never focuses anything itself: the client got no keyboard enter.
    client.roundtrip();
    assert!(!client.state.keyboard_entered);
}

#[test]
fn caps_lock_turned_on_elsewhere_reaches_the_focused_client() {
    let mut harness = Harness::start();
    let (mut client, id) = toplevel_with_content(&mut harness, "locks");
    client.use_seat();
    harness.send(GuiMessage::KeyboardEnter {
        window: id,
        pressed_keys: vec![],
    });
    client.wait_for("keyboard enter", |s| s.keyboard_entered);
    assert_eq!(client.state.mods_locked & 0b10, 0, "Caps Lock starts off");
    // The user pressed Caps Lock while another qube had focus: the GUI domain tells this one
    // the locked mask (Lock is real modifier 1).
    harness.send(GuiMessage::Modifiers {
        window: id,
        depressed: 0,
        latched: 0,
        locked: 0b10,
        group: 0,
    });
    client.wait_for("caps lock", |s| s.mods_locked & 0b10 != 0);
    assert!(client.state.keyboard_entered);
    harness.send(GuiMessage::Modifiers {
        window: id,
        depressed: 0,
        latched: 0,
        locked: 0,
        group: 0,
    });
    client.wait_for("caps lock off", |s| s.mods_locked & 0b10 == 0);
}

#[test]
fn weston_simple_shm_draws_animates_and_exits_on_close() {
    let mut harness = Harness::start();
    let pid = harness.spawn_client("weston-simple-shm", &[]);
    let id = harness.wait_for_window("simple-shm");
    // simple-shm draws opaque XRGB pixels with a pattern: the centre is never transparent.
    let (w, h) = harness.buffer_size(id);
    assert_eq!((w, h), (250, 250));
    assert_eq!(harness.pixel(id, w / 2, h / 2) >> 24, 0xFF);
    for _ in 0..3 {
        harness.send(GuiMessage::FrameDone {
            window: id,
            timestamp_ns: 0,
        });
        harness.wait_for(
            "animation frame",
            |m| matches!(m, AgentMessage::Commit { window, .. } if *window == id),
        );
    }
    harness.send(GuiMessage::Close { window: id });
    harness.wait_for(
        "destroy",
        |m| matches!(m, AgentMessage::DestroyWindow { window } if *window == id),
    );
    eventually("simple-shm exits after close", TIMEOUT, || {
        harness.client_exited(pid)
    });
}

#[test]
fn a_client_killed_or_sending_garbage_does_not_disturb_the_agent_or_others() {
    let mut harness = Harness::start();
    let victim = harness.spawn_client("weston-simple-shm", &[]);
    let victim_window = harness.wait_for_window("simple-shm");
    let (mut survivor, survivor_window) = toplevel_with_content(&mut harness, "survivor");

    harness.kill_client(victim);
    harness.wait_for(
        "the killed client's window is destroyed",
        |m| matches!(m, AgentMessage::DestroyWindow { window } if *window == victim_window),
    );

    // A client speaking garbage is disconnected by the agent.
    {
        use std::io::Write;
        let mut garbage = std::os::unix::net::UnixStream::connect(
            harness.runtime_dir().join(&harness.socket_name),
        )
        .unwrap();
        garbage.write_all(&[0xAB; 4096]).unwrap();
    }

    harness.send(GuiMessage::FrameDone {
        window: survivor_window,
        timestamp_ns: 0,
    });
    survivor.wait_for("frame", |s| s.frames_received == 1);
    survivor.redraw(RED);
    harness.wait_for(
        "survivor commit",
        |m| matches!(m, AgentMessage::Commit { window, .. } if *window == survivor_window),
    );
    assert_eq!(harness.pixel(survivor_window, 1, 1), RED);
    assert!(harness.agent_alive());
}

#[test]
fn foot_receives_typed_text() {
    let mut harness = Harness::start();
    let out = harness.runtime_dir().join("typed.txt");
    let script = format!("read line; echo \"$line\" > {}", out.display());
    harness.spawn_client("foot", &["--title", "foot-test", "sh", "-c", &script]);
    let id = harness.wait_for_window("foot-test");
    harness.send(GuiMessage::KeyboardEnter {
        window: id,
        pressed_keys: vec![],
    });
    for c in "hello\n".chars() {
        let keycode = common::evdev_key(c);
        for pressed in [true, false] {
            harness.send(GuiMessage::Key {
                window: id,
                time_ms: 0,
                keycode,
                pressed,
            });
        }
        // foot renders each keystroke; let it breathe.
        harness.send(GuiMessage::FrameDone {
            window: id,
            timestamp_ns: 0,
        });
        harness.pump(Duration::from_millis(10));
    }
    eventually("foot wrote the typed line", TIMEOUT, || {
        std::fs::read_to_string(&out).is_ok_and(|s| s == "hello\n")
    });
}

#[test]
fn gtk3_app_window_appears_with_its_title() {
    let mut harness = Harness::start();
    harness.spawn_client("gtk3-widget-factory", &[]);
    // GTK names the window after the program until the app sets a title.
    let id = harness.wait_for_window("gtk3-widget-factory");
    let (w, h) = harness.buffer_size(id);
    assert!(w > 200 && h > 200, "{w}x{h}");
    assert_eq!(harness.windows[&id].app_id, "gtk3-widget-factory");
    // GTK draws a real, opaque widget: its middle is not transparent.
    assert_eq!(harness.pixel(id, w / 2, h / 2) >> 24, 0xFF);
}
