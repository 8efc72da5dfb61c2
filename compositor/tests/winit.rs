//! The winit backend (GLES, nested) under Xvfb, when Xvfb is installed (scripts/install-deps.sh
//! installs it). Skipped with a message otherwise: the winit path must at least build everywhere.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{TempDir, assert_frame_border, test_agent_command};

#[test]
fn test_agent_entry() {
    common::agent::main_if_agent();
}

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn find_xvfb() -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join("Xvfb"))
        .find(|p| p.is_file())
}

#[test]
fn winit_backend_runs_nested_in_xvfb() {
    let Some(xvfb) = find_xvfb() else {
        common::skip("Xvfb is not installed");
        return;
    };
    let display = 90 + std::process::id() % 400;
    let _xvfb = Kill(
        Command::new(xvfb)
            .args([
                format!(":{display}").as_str(),
                "-screen",
                "0",
                "1400x900x24",
                "-nolisten",
                "tcp",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let x_socket = format!("/tmp/.X11-unix/X{display}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !Path::new(&x_socket).exists() {
        assert!(Instant::now() < deadline, "Xvfb did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let dir = TempDir::new("winit");
    let socket = dir.0.join("ipc.sock");
    let log = dir.0.join("corral.log");
    let _corral = Kill(
        Command::new(env!("CARGO_BIN_EXE_corral"))
            .args(["--dev-qube", "work:blue", "--allow-input-injection"])
            .arg("--dev-agent-command")
            .arg(test_agent_command())
            .arg("--ipc-socket")
            .arg(&socket)
            .env("DISPLAY", format!(":{display}"))
            .env_remove("WAYLAND_DISPLAY")
            .env("CORRAL_TEST_AGENT_LOG_DIR", &dir.0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let window = loop {
        if let Ok(windows) = corral::ipc::client::windows(&socket)
            && let Some(w) = windows.into_iter().find(|w| w.has_content && w.visible)
        {
            break w;
        }
        if Instant::now() > deadline {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.contains("opening a nested window") {
                common::skip(&format!("no GLES under Xvfb here:\n{text}"));
                return;
            }
            panic!("no window on the winit backend; corral's log:\n{text}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let outputs: Vec<corral::ipc::OutputDesc> = serde_json::from_value(
        corral::ipc::client::request(&socket, &corral::ipc::Request::Outputs).unwrap(),
    )
    .unwrap();
    assert_eq!(outputs[0].name, "winit");
    let path = dir.0.join("winit.png");
    corral::ipc::client::request(
        &socket,
        &corral::ipc::Request::Screenshot { path: path.clone() },
    )
    .unwrap();
    let image = common::Image::load(&path);
    let _ = std::fs::copy(&path, common::screenshot_dir().join("winit.png"));
    assert_frame_border(&image, &window, 4, 0x3465a4);
    let (bg, _, _) = common::agent::colours("work");
    image.assert_all("content", (window.x + 40, window.y + 40, 50, 50), bg);
    // Input injection was allowed explicitly.
    corral::ipc::client::request(&socket, &corral::ipc::Request::Focus { id: window.id }).unwrap();
    corral::ipc::client::request(
        &socket,
        &corral::ipc::Request::Key {
            combo: "a".into(),
            action: corral::ipc::KeyAction::Tap,
        },
    )
    .unwrap();
}
