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
