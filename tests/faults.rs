//! Fault tests: an agent killed with SIGKILL mid-frame; the compositor killed and started again
//! while the qubes' agents keep running. The store-crash tests of the domain manager live in
//! `domains/tests/store_crash.rs` (see docs/security-tests.md).

use std::time::Duration;

use corral_e2e::fixture::*;

/// The entry point of the agent processes (does nothing when run as a test).
#[test]
fn e2e_agent_entry() {
    corral_e2e::agent_main_if_agent();
}

fn have(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

#[test]
fn an_agent_killed_mid_frame_takes_only_its_windows() {
    if !have("weston-simple-shm") {
        skip("weston-simple-shm is not installed (package weston)");
        return;
    }
    let desk = Desk::start_with(
        "kill9",
        Setup {
            qubes: &["good:blue", "real:green"],
            ..Setup::default()
        },
    );
    let good_before = desk.wait_window("good");
    desk.focus(good_before.id);
    let real = desk.wait_window("real");
    assert_eq!(real.display_title, "[real] simple-shm");
    let pid = desk
        .qubes()
        .into_iter()
        .find(|q| q.name == "real")
        .and_then(|q| q.agent_pid)
        .expect("the real agent's pid");
    // weston-simple-shm redraws every frame, so its agent is always in the middle of one: let
    // it draw a few more, then SIGKILL it.
    std::thread::sleep(Duration::from_millis(200));
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(pid as i32).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    desk.wait_for("real's windows to go", || {
        desk.windows_of("real").is_empty().then_some(())
    });
    assert!(!desk.qubes().iter().any(|q| q.name == "real"));
    // Nothing else changed: the bystander's window is where it was, still focused, and nobody
    // was told anything (a qube that dies is not a violation).
    let good_after = desk.wait_window("good");
    assert_eq!(good_after.frame, good_before.frame);
    assert_eq!(good_after.id, good_before.id);
    assert!(good_after.focused);
    assert!(
        desk.notifications().is_empty(),
        "{:?}",
        desk.notifications()
    );
    let image = desk.bystander_ok();
    // No trace of the dead window: nothing green (its label) is left on screen.
    assert_eq!(image.count((0, 0, SCREEN.0, SCREEN.1), 0x73d216), 0);
}

/// Agent processes started by the test; killed and reaped on drop.
struct Agents(Vec<std::process::Child>);

impl Drop for Agents {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[test]
fn after_a_compositor_restart_every_window_comes_back() {
    if !have("weston-simple-shm") {
        skip("weston-simple-shm is not installed (package weston)");
        return;
    }
    let bins = bin_dir();
    let dir = TempDir::new("restart-agents");
    let runtime = dir.0.join("runtime");
    std::fs::create_dir_all(&runtime).unwrap();
    std::fs::set_permissions(
        &runtime,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    let work_sock = dir.0.join("work.sock");
    let personal_sock = dir.0.join("personal.sock");
    let listen = [
        format!("work:blue:{}", work_sock.display()),
        format!("personal:yellow:{}", personal_sock.display()),
    ];
    let args: Vec<&str> = listen
        .iter()
        .flat_map(|l| ["--dev-listen", l.as_str()])
        .collect();
    let start = |tag: &str| {
        Desk::start_with(
            tag,
            Setup {
                qubes: &[],
                args: &args,
                ..Setup::default()
            },
        )
    };
    let first = start("restart-1");
    // The agents run on their own (as in a qube), not as children of the compositor.
    let mut agents = Agents(Vec::new());
    for (sock, title) in [(&work_sock, "work"), (&personal_sock, "personal")] {
        let child = std::process::Command::new(bins.join("corral-agent"))
            .arg("--connect")
            .arg(sock)
            .args(["--socket-name", &format!("wayland-{title}")])
            .args(["--exec", "weston-simple-shm"])
            .env("XDG_RUNTIME_DIR", &runtime)
            .env_remove("WAYLAND_DISPLAY")
            .env_remove("DISPLAY")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(dir.0.join(format!("{title}.agent.log"))).unwrap())
            .spawn()
            .unwrap();
        agents.0.push(child);
    }
    let check = |desk: &Desk, name: &str| {
        let mut shown = Vec::new();
        for (qube, colour) in [("work", 0x3465a4), ("personal", 0xedd400)] {
            let w = desk.wait_window(qube);
            assert_eq!(w.display_title, format!("[{qube}] simple-shm"));
            desk.focus(w.id);
            let w = desk.wait_window(qube);
            // The client's content, not the neutral fill of a window without content.
            desk.wait_for(&format!("{qube}'s content"), || {
                let image = desk.screenshot(&format!("{name}-{qube}"));
                assert_frame(&image, &w, BORDER, colour);
                let grey = image.count((w.x, w.y, w.width, w.height), NEUTRAL_FILL);
                (grey * 10 < (w.width * w.height) as usize).then_some(())
            });
            shown.push((w.title.clone(), w.width, w.height));
        }
        shown
    };
    let before = check(&first, "before");
    // The compositor dies without warning.
    let mut first = first;
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    // The agents and their apps keep running while there is no compositor.
    std::thread::sleep(Duration::from_millis(300));
    for agent in &mut agents.0 {
        assert!(
            agent.try_wait().unwrap().is_none(),
            "an agent exited with the compositor"
        );
    }
    let second = start("restart-2");
    let after = check(&second, "after");
    assert_eq!(before, after);
    // The socket serves one channel at a time: a second connection for work, while its agent
    // is connected, is closed at once (a qube cannot open parallel channels).
    let mut extra = std::os::unix::net::UnixStream::connect(&work_sock).unwrap();
    extra
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut byte = [0u8; 1];
    assert_eq!(std::io::Read::read(&mut extra, &mut byte).unwrap(), 0);
    assert_eq!(
        second.qubes().iter().filter(|q| q.name == "work").count(),
        1
    );
    assert!(
        second.notifications().is_empty(),
        "{:?}",
        second.notifications()
    );
    drop(first);
}
