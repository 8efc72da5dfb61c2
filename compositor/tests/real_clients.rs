//! Real Wayland clients (`weston-simple-shm`, `foot`) in qubes, through the real `corral-agent`,
//! on the headless compositor. Skipped with a message when `corral-agent` (built by
//! `cargo test --workspace`) or the clients are missing.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{Corral, assert_frame_border};

#[test]
fn test_agent_entry() {
    common::agent::main_if_agent();
}

fn on_path(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(program))
        .find(|p| p.is_file())
}

/// The agent command for real clients, or why the test cannot run here.
fn agent_command(apps: &[&str]) -> Result<String, String> {
    let agent = Path::new(env!("CARGO_BIN_EXE_corral")).with_file_name("corral-agent");
    if !agent.is_file() {
        return Err(format!("{} is not built", agent.display()));
    }
    let mut command = format!("'{}' --gui-fd {{fd}}", agent.display());
    for app in apps {
        if on_path(app).is_none() {
            return Err(format!("{app} is not installed"));
        }
        command.push_str(&format!(" --exec {app}"));
    }
    Ok(command)
}

fn start(tag: &str, qubes: &[&str], apps: &[&str]) -> Option<(Corral, common::TempDir)> {
    let command = match agent_command(apps) {
        Ok(c) => c,
        Err(why) => {
            common::skip(&why);
            return None;
        }
    };
    // Each agent opens its Wayland socket in XDG_RUNTIME_DIR: a private one for this test.
    let runtime = common::TempDir::new(&format!("{tag}-runtime"));
    std::fs::set_permissions(
        &runtime.0,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    let dir = runtime.0.to_str().unwrap().to_owned();
    let corral = Corral::start_with(
        tag,
        &["1600x900"],
        qubes,
        &format!("env XDG_RUNTIME_DIR={dir} {command}"),
        &[],
    );
    Some((corral, runtime))
}

fn wait_app(corral: &Corral, qube: &str, title: &str) -> corral::ipc::WindowInfo {
    corral.wait_for(&format!("{title} in {qube}"), || {
        corral
            .windows()
            .into_iter()
            .find(|w| w.qube == qube && w.title.contains(title) && w.has_content && w.visible)
    })
}

#[test]
fn weston_simple_shm_and_foot_in_two_qubes() {
    let Some((corral, _runtime)) = start(
        "apps",
        &["work:blue", "personal:yellow"],
        &["weston-simple-shm"],
    ) else {
        return;
    };
    let shm = wait_app(&corral, "work", "simple-shm");
    let other = wait_app(&corral, "personal", "simple-shm");
    assert_eq!(shm.display_title, "[work] simple-shm");
    // Let a few frames through, then check the frames and that real content is shown.
    std::thread::sleep(Duration::from_millis(300));
    let image = corral.screenshot("weston-simple-shm");
    assert_frame_border(&image, &shm, 4, 0x3465a4);
    assert_frame_border(&image, &other, 4, 0xedd400);
    let content = image.pixels(shm.x, shm.y, shm.width, shm.height);
    let distinct: std::collections::HashSet<u32> = content.iter().copied().collect();
    assert!(
        distinct.len() > 50,
        "simple-shm's pattern is not on screen ({} colours)",
        distinct.len()
    );
}

#[test]
fn typing_reaches_only_the_focused_qubes_terminal() {
    let Some((corral, _runtime)) = start("foot", &["work:blue", "personal:yellow"], &["foot"])
    else {
        return;
    };
    let work = wait_app(&corral, "work", "foot");
    let personal = wait_app(&corral, "personal", "foot");
    let apart = |a: &corral::ipc::WindowInfo, b: &corral::ipc::WindowInfo| {
        a.frame.x + a.frame.width <= b.frame.x || b.frame.x + b.frame.width <= a.frame.x
    };
    assert!(
        apart(&work, &personal),
        "the terminals overlap: {work:?} {personal:?}"
    );
    let settle = || std::thread::sleep(Duration::from_millis(400));
    corral.focus(work.id);
    settle();
    let content = |image: &common::Image, w: &corral::ipc::WindowInfo| {
        image.pixels(w.x, w.y, w.width, w.height)
    };
    let before = corral.screenshot("foot-before-typing");
    for key in ["x", "y", "z", "z", "y", "x"] {
        corral.key(key);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while content(&corral.screenshot("foot-after-typing"), &work) == content(&before, &work) {
        assert!(
            Instant::now() < deadline,
            "the focused terminal never showed the typed text"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Give a stray key every chance to show up in the other qube's terminal.
    settle();
    let after = corral.screenshot("foot-after-typing");
    assert!(
        content(&before, &personal) == content(&after, &personal),
        "personal's terminal changed while work had focus"
    );
    assert_frame_border(&after, &work, 4, 0x3465a4);
    assert_frame_border(&after, &personal, 4, 0xedd400);
}

#[test]
fn a_gui_domain_terminal_is_framed_black_and_typing_stays_out_of_qubes() {
    if on_path("foot").is_none() {
        common::skip("foot is not installed");
        return;
    }
    let corral = Corral::start_with(
        "gui-domain",
        &["1600x900"],
        &["work:blue"],
        &common::test_agent_command(),
        &["--gui-socket", "--gui-exec", "foot"],
    );
    let qube = corral.wait_window("work");
    let terminal = wait_app(&corral, "corral", "foot");
    assert_eq!(terminal.display_title, "[corral] foot");
    assert_eq!(
        (terminal.label.as_str(), terminal.colour.as_str()),
        ("black", "#000000")
    );
    corral.focus(terminal.id);
    std::thread::sleep(Duration::from_millis(300));
    let content = |image: &common::Image| image.pixels(terminal.x, terminal.y, 200, 60);
    let before = corral.screenshot("gui-domain-foot-before");
    corral.key("x");
    let deadline = Instant::now() + Duration::from_secs(10);
    let after = loop {
        let shot = corral.screenshot("gui-domain-foot");
        if content(&shot) != content(&before) {
            break shot;
        }
        assert!(
            Instant::now() < deadline,
            "the GUI-domain terminal never showed the key"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_frame_border(&after, &terminal, 4, 0x000000);
    assert_frame_border(&after, &qube, 4, 0x3465a4);
    // The qube saw no key at all.
    assert!(
        !corral
            .agent_log("work")
            .iter()
            .any(|l| l.starts_with("Key"))
    );
}
