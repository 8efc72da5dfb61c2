//! The GUI channel of decision 2, through the library API the compositor will embed: a process
//! started in a qube gets one end of a socketpair as fd 3; the caller gets the other end with
//! the qube's name and label from the store.

use std::io::{BufRead, BufReader, Write};
use std::sync::Arc;
use std::time::Duration;

use corral_domains::backend::PowerState;
use corral_domains::manager::{Manager, Paths};
use corral_domains::sandbox::SandboxBackend;

#[test]
fn spawn_with_channel_hands_back_our_end_with_the_qubes_identity() {
    assert!(
        std::process::Command::new("bwrap")
            .arg("--version")
            .output()
            .is_ok(),
        "bwrap required"
    );
    let dir = std::env::temp_dir().join(format!("corral-t-channel-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let paths = Paths {
        data: dir.join("data"),
        runtime: dir.join("run"),
    };
    let backend = Arc::new(SandboxBackend::new(&paths.runtime).unwrap());
    let mgr = Arc::new(Manager::open(paths, backend).unwrap());
    mgr.create("host", "templatevm", None, "black", None)
        .unwrap();
    mgr.create("work", "appvm", Some("host"), "blue", None)
        .unwrap();

    // The qube is started on demand; the "agent" talks only through fd 3.
    let agent = [
        "sh".to_owned(),
        "-c".to_owned(),
        "echo hello from $(hostname) fds=$CORRAL_FDS >&3; read x <&3; echo got $x >&3".to_owned(),
    ];
    let mut ch = mgr.spawn_with_channel("work", &agent).unwrap();
    assert_eq!(ch.qube.as_str(), "work");
    assert_eq!(ch.label.name, "blue");
    assert_eq!(ch.label.index, 6);
    assert_eq!(ch.label.color, "#3465a4");
    ch.stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut r = BufReader::new(ch.stream.try_clone().unwrap());
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    // Whatever the agent says about itself, the identity above came from the store.
    assert_eq!(line, "hello from work fds=1\n");
    ch.stream.write_all(b"ping\n").unwrap();
    line.clear();
    r.read_line(&mut line).unwrap();
    assert_eq!(line, "got ping\n");
    // The agent's exit (a crash would look the same) is seen by the caller; the qube stays up
    // and a new agent can be started.
    assert!(ch.child.wait().unwrap().success());
    line.clear();
    assert_eq!(
        r.read_line(&mut line).unwrap(),
        0,
        "channel closes when the agent exits"
    );
    assert_eq!(mgr.backend().state(&ch.qube), PowerState::Running);
    let mut again = mgr
        .spawn_with_channel("work", &["sh".into(), "-c".into(), "echo again >&3".into()])
        .unwrap();
    let mut s = String::new();
    BufReader::new(&again.stream).read_line(&mut s).unwrap();
    assert_eq!(s, "again\n");
    again.child.wait().unwrap();

    mgr.stop_all();
    assert_eq!(mgr.backend().state(&ch.qube), PowerState::Halted);
    drop(mgr);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// With a GUI hook set (as the compositor sets it), every start of a qube starts the agent
/// (bound read-only from the host) with its channel, and the channel reaches the hook with the
/// store's identity; `run` commands get the agent's `WAYLAND_DISPLAY` and a private
/// `XDG_RUNTIME_DIR`, and wait for the agent's socket.
#[test]
fn a_gui_hook_gets_an_agent_channel_for_every_started_qube() {
    use corral_domains::backend::Stdio3;
    use corral_domains::manager::{AgentChannel, GuiHook, QUBE_WAYLAND_DISPLAY};
    use corral_domains::sandbox::{AGENT_IN_QUBE, QUBE_RUNTIME_DIR};
    use std::io::Read;

    let python = std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        python,
        "python3 required (the fake agent opens a Unix socket)"
    );
    let dir = std::env::temp_dir().join(format!("corral-t-gui-hook-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // A stand-in for corral-agent: says who it thinks it is on fd 3, opens the Wayland socket a
    // moment later (so `run` has to wait for it), and lives until the channel closes.
    let agent = dir.join("fake-agent");
    std::fs::write(
        &agent,
        "#!/bin/sh\n\
         echo \"agent $* in $(hostname) rt=$XDG_RUNTIME_DIR fds=$CORRAL_FDS\" >&3\n\
         exec python3 -c 'import socket, os, time\n\
time.sleep(0.3)\n\
s = socket.socket(socket.AF_UNIX)\n\
s.bind(os.environ[\"XDG_RUNTIME_DIR\"] + \"/wayland-0\")\n\
s.listen()\n\
while os.read(3, 100): pass\n'\n",
    )
    .unwrap();
    std::fs::set_permissions(&agent, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let paths = Paths {
        data: dir.join("data"),
        runtime: dir.join("run"),
    };
    let backend = Arc::new(
        SandboxBackend::new(&paths.runtime)
            .unwrap()
            .with_agent(agent),
    );
    let mgr = Arc::new(Manager::open(paths, backend).unwrap());
    let (tx, rx) = std::sync::mpsc::channel::<AgentChannel>();
    let tx = std::sync::Mutex::new(tx);
    mgr.set_gui(GuiHook {
        agent_argv: vec![AGENT_IN_QUBE.into(), "--gui-fd".into(), "3".into()],
        runtime_dir: QUBE_RUNTIME_DIR.into(),
        wayland_display: QUBE_WAYLAND_DISPLAY.into(),
        deliver: Box::new(move |ch| tx.lock().unwrap().send(ch).unwrap()),
        failed: Box::new(|qube, why| panic!("{qube}: the agent did not start: {why}")),
    })
    .unwrap();
    mgr.create("host", "templatevm", None, "black", None)
        .unwrap();
    mgr.create("work", "appvm", Some("host"), "blue", None)
        .unwrap();

    mgr.start("work").unwrap();
    let ch = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!((ch.qube.as_str(), ch.label.name.as_str()), ("work", "blue"));
    assert_eq!(ch.label.color, "#3465a4");
    ch.stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut line = String::new();
    BufReader::new(&ch.stream).read_line(&mut line).unwrap();
    assert_eq!(line, "agent --gui-fd 3 in work rt=/run/user/1000 fds=1\n");

    // A command waits for the agent's socket and gets its environment; the runtime dir is
    // private to the user and the agent binary read-only.
    let (mut out, w) = std::io::pipe().unwrap();
    let cmd = "echo $WAYLAND_DISPLAY $XDG_RUNTIME_DIR; stat -c %a:%u /run/user/1000; \
               ls /run/user/1000; echo x > /run/corral/corral-agent 2>/dev/null || echo ro";
    let mut child = mgr
        .run(
            "work",
            &["sh".into(), "-c".into(), cmd.into()],
            Stdio3 {
                stdin: None,
                stdout: Some(w.into()),
                stderr: None,
            },
            Vec::new(),
        )
        .unwrap();
    let mut text = String::new();
    out.read_to_string(&mut text).unwrap();
    child.wait().unwrap();
    assert_eq!(text, "wayland-0 /run/user/1000\n700:1000\nwayland-0\nro\n");

    // The qube stops: the agent dies and the channel closes.
    mgr.shutdown("work", true, Duration::from_secs(10)).unwrap();
    let mut rest = Vec::new();
    (&ch.stream).read_to_end(&mut rest).unwrap();
    // Started again (here through run's on-demand start): a new agent, a new channel.
    let (_out, w) = std::io::pipe().unwrap();
    let mut c = mgr
        .run(
            "work",
            &["true".into()],
            Stdio3 {
                stdin: None,
                stdout: Some(w.into()),
                stderr: None,
            },
            Vec::new(),
        )
        .unwrap();
    c.wait().unwrap();
    let again = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(again.qube.as_str(), "work");
    mgr.stop_all();
    drop(mgr);
    std::fs::remove_dir_all(&dir).unwrap();
}
