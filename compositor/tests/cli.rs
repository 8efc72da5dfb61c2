//! The command line: help texts, clear errors, `corral msg` against a live instance, and the
//! protocol crate's own demo agent as a `--dev-qube` agent.

mod common;

use std::process::Command;

use common::{Corral, TempDir};

#[test]
fn test_agent_entry() {
    common::agent::main_if_agent();
}

fn corral(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_corral"))
        .args(args)
        .env_remove("CORRAL_SOCKET")
        .output()
        .unwrap();
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

#[test]
fn help_texts_explain_the_flags_and_commands() {
    let (ok, help) = corral(&["--help"]);
    assert!(ok);
    for word in [
        "--backend",
        "--size",
        "--dev-qube",
        "--dev-agent-command",
        "--ipc-socket",
        "msg",
    ] {
        assert!(help.contains(word), "corral --help lacks {word}:\n{help}");
    }
    let (ok, help) = corral(&["msg", "--help"]);
    assert!(ok);
    for word in [
        "windows",
        "screenshot",
        "focus",
        "close",
        "key",
        "pointer",
        "--socket",
    ] {
        assert!(
            help.contains(word),
            "corral msg --help lacks {word}:\n{help}"
        );
    }
}

#[test]
fn errors_are_clear() {
    let (ok, text) = corral(&["msg", "--socket", "/nonexistent/corral.sock", "windows"]);
    assert!(!ok);
    assert!(
        text.contains("cannot reach corral at /nonexistent/corral.sock"),
        "{text}"
    );
    let (ok, text) = corral(&["--backend", "headless", "--dev-qube", "dom0:black"]);
    assert!(!ok);
    assert!(text.contains("reserved"), "{text}");
    let (ok, text) = corral(&["--backend", "headless", "--dev-qube", "work:pink"]);
    assert!(!ok);
    assert!(text.contains("unknown label"), "{text}");
    let (ok, text) = corral(&["--backend", "headless", "--size", "10x10"]);
    assert!(!ok);
    assert!(text.contains("between 64 and 16384"), "{text}");
}

#[test]
fn msg_reports_windows_as_json_and_refuses_a_second_instance_on_the_same_socket() {
    let instance = Corral::start("msg", &["1280x800"], &["work:green"]);
    instance.wait_window("work");
    let socket = instance.socket.to_str().unwrap().to_owned();
    let (ok, text) = corral(&["msg", "--socket", &socket, "windows", "--json"]);
    assert!(ok, "{text}");
    let windows: serde_json::Value = serde_json::from_str(&text).unwrap();
    let w = &windows[0];
    for key in [
        "id",
        "qube",
        "label",
        "colour",
        "title",
        "app_id",
        "x",
        "y",
        "width",
        "height",
        "focused",
        "output",
        "workspace",
    ] {
        assert!(w.get(key).is_some(), "windows --json lacks {key}: {w}");
    }
    assert_eq!(w["qube"], "work");
    assert_eq!(w["colour"], "#73d216");
    let (ok, text) = corral(&["msg", "--socket", &socket, "windows"]);
    assert!(ok && text.contains("[work] Test window"), "{text}");
    let dir = TempDir::new("shot");
    let file = dir.0.join("shot.png");
    let (ok, text) = corral(&[
        "msg",
        "--socket",
        &socket,
        "screenshot",
        file.to_str().unwrap(),
    ]);
    assert!(ok, "{text}");
    assert_eq!(common::Image::load(&file).width, 1280);
    let (ok, text) = corral(&["msg", "--socket", &socket, "focus", "999"]);
    assert!(!ok && text.contains("there is no window 999"), "{text}");
    let (ok, text) = corral(&["msg", "--socket", &socket, "key", "hyper+a"]);
    assert!(!ok && text.contains("unknown modifier"), "{text}");
    // The socket is private.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&instance.socket)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    // A second compositor does not steal a live socket.
    let (ok, text) = corral(&["--backend", "headless", "--ipc-socket", &socket]);
    assert!(!ok && text.contains("another corral is serving"), "{text}");
}

#[test]
fn the_protocol_demo_agent_works_as_a_dev_qube_agent() {
    // corral-channel-demo is built by `cargo test --workspace` (protocol's tests); skip when a
    // narrower build did not make it.
    let exe =
        std::path::Path::new(env!("CARGO_BIN_EXE_corral")).with_file_name("corral-channel-demo");
    if !exe.is_file() {
        common::skip(&format!("{} is not built", exe.display()));
        return;
    }
    let command = format!("'{}' agent --gui-fd {{fd}} --frames 1000000", exe.display());
    let instance = Corral::start_with(
        "demo",
        &["1600x900"],
        &["work:blue", "personal:yellow"],
        &command,
        &[],
    );
    let work = instance.wait_window("work");
    let personal = instance.wait_window("personal");
    assert_eq!(work.display_title, "[work] Channel demo");
    assert_eq!((personal.width, personal.height), (640, 480));
    let image = instance.screenshot("channel-demo");
    common::assert_frame_border(&image, &work, 4, 0x3465a4);
    common::assert_frame_border(&image, &personal, 4, 0xedd400);
}
