//! Lock before suspend, end to end: a real `corral` talks to a stand-in for logind on a private
//! `dbus-daemon` (Debian package `dbus-daemon`), given to it as the system bus. The stand-in
//! owns `org.freedesktop.login1`, answers `Inhibit` with one end of a socketpair (so the test
//! sees when `corral` closes the inhibitor) and `GetSessionByPID` with a session path, and
//! emits `PrepareForSleep` and the session's `Lock`.
//!
//! One test in this binary: it points `DBUS_SYSTEM_BUS_ADDRESS` at the private bus for the
//! `corral` processes it starts.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Corral, TempDir, skip, test_agent_command};
use corral::ipc::Request;
use corral::lock::LockInfo;
use dbus::blocking::Connection;
use dbus::channel::{MatchingReceiver, Sender};
use dbus::message::MatchRule;

const SESSION_PATH: &str = "/org/freedesktop/login1/session/corral_test";

/// What the stand-in saw.
#[derive(Default)]
struct Seen {
    /// The test's ends of the inhibitors handed out, in order.
    inhibitors: Vec<UnixStream>,
    session_queries: usize,
}

enum Emit {
    PrepareForSleep(bool),
    SessionLock,
    Stop,
}

/// A private bus with a logind stand-in on it.
struct FakeLogind {
    daemon: Child,
    address: String,
    seen: Arc<Mutex<Seen>>,
    emit: mpsc::Sender<Emit>,
    thread: Option<std::thread::JoinHandle<()>>,
    _dir: TempDir,
}

impl FakeLogind {
    fn start() -> Option<FakeLogind> {
        if !std::path::Path::new("/usr/bin/dbus-daemon").exists() {
            skip("dbus-daemon is not installed (Debian package dbus-daemon)");
            return None;
        }
        let dir = TempDir::new("logind-bus");
        let mut daemon = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--print-address"])
            .arg(format!(
                "--address=unix:path={}",
                dir.0.join("bus").display()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting dbus-daemon");
        let mut line = String::new();
        BufReader::new(daemon.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let address = line.trim().to_owned();
        assert!(address.starts_with("unix:"), "dbus-daemon said {line:?}");
        let conn = Connection::new_address(&address).expect("connecting to the private bus");
        conn.request_name("org.freedesktop.login1", false, true, true)
            .expect("owning org.freedesktop.login1");
        let seen = Arc::new(Mutex::new(Seen::default()));
        let (emit, commands) = mpsc::channel();
        let served = seen.clone();
        let thread = std::thread::spawn(move || serve(conn, served, commands));
        Some(FakeLogind {
            daemon,
            address,
            seen,
            emit,
            thread: Some(thread),
            _dir: dir,
        })
    }

    fn inhibitors(&self) -> usize {
        self.seen.lock().unwrap().inhibitors.len()
    }

    /// Whether the `i`th inhibitor was closed by its holder.
    fn released(&self, i: usize) -> bool {
        let seen = self.seen.lock().unwrap();
        let mut end = &seen.inhibitors[i];
        end.set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let mut byte = [0u8; 1];
        matches!(end.read(&mut byte), Ok(0))
    }
}

impl Drop for FakeLogind {
    fn drop(&mut self) {
        let _ = self.emit.send(Emit::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}

fn serve(conn: Connection, seen: Arc<Mutex<Seen>>, commands: mpsc::Receiver<Emit>) {
    let answers = seen.clone();
    conn.start_receive(
        MatchRule::new_method_call(),
        Box::new(move |msg, conn| {
            let member = msg.member().map(|m| m.to_string()).unwrap_or_default();
            let reply = match member.as_str() {
                "Inhibit" => {
                    let (theirs, ours) = UnixStream::pair().unwrap();
                    answers.lock().unwrap().inhibitors.push(ours);
                    msg.method_return().append1(OwnedFd::from(theirs))
                }
                "GetSessionByPID" => {
                    answers.lock().unwrap().session_queries += 1;
                    msg.method_return()
                        .append1(dbus::Path::new(SESSION_PATH).unwrap())
                }
                _ => msg.error(
                    &"org.freedesktop.DBus.Error.UnknownMethod".into(),
                    c"not in this stand-in",
                ),
            };
            let _ = conn.send(reply);
            true
        }),
    );
    loop {
        let _ = conn.process(Duration::from_millis(20));
        match commands.try_recv() {
            Ok(Emit::PrepareForSleep(start)) => {
                let signal = dbus::Message::new_signal(
                    "/org/freedesktop/login1",
                    "org.freedesktop.login1.Manager",
                    "PrepareForSleep",
                )
                .unwrap()
                .append1(start);
                let _ = conn.send(signal);
            }
            Ok(Emit::SessionLock) => {
                let signal = dbus::Message::new_signal(
                    SESSION_PATH,
                    "org.freedesktop.login1.Session",
                    "Lock",
                )
                .unwrap();
                let _ = conn.send(signal);
            }
            Ok(Emit::Stop) | Err(mpsc::TryRecvError::Disconnected) => return,
            Err(mpsc::TryRecvError::Empty) => {}
        }
    }
}

fn lock_state(corral: &Corral) -> LockInfo {
    serde_json::from_value(corral.request(&Request::LockState).unwrap()).unwrap()
}

#[test]
fn the_screen_locks_before_suspend_and_on_loginds_lock() {
    let Some(logind) = FakeLogind::start() else {
        return;
    };
    // SAFETY: the only test in this binary; no other thread of this process reads or writes the
    // environment while it runs (the corral processes get a copy when spawned).
    unsafe { std::env::set_var("DBUS_SYSTEM_BUS_ADDRESS", &logind.address) };

    let corral = Corral::start_with(
        "lock-logind",
        &["1024x768"],
        &[],
        &test_agent_command(),
        &[],
    );
    corral.wait_for("corral's sleep inhibitor", || {
        (logind.inhibitors() == 1).then_some(())
    });
    assert!(!lock_state(&corral).locked);
    assert!(
        !logind.released(0),
        "the inhibitor was closed before any suspend"
    );

    // Suspend: corral locks, draws, and only then closes the inhibitor.
    logind.emit.send(Emit::PrepareForSleep(true)).unwrap();
    corral.wait_for("the inhibitor's release", || {
        logind.released(0).then_some(())
    });
    assert!(
        lock_state(&corral).locked,
        "the inhibitor was released before locking"
    );
    let shot = corral.screenshot("lock-before-suspend");
    let fill = corral::lock::ui::LOCK_BACKGROUND;
    let fill = (u32::from(fill.r) << 16) | (u32::from(fill.g) << 8) | u32::from(fill.b);
    assert_eq!(shot.rgb(3, 3), fill);
    // Resume: a new inhibitor for the next suspend.
    logind.emit.send(Emit::PrepareForSleep(false)).unwrap();
    corral.wait_for("a new inhibitor after resume", || {
        (logind.inhibitors() == 2).then_some(())
    });
    assert!(lock_state(&corral).locked);
    drop(corral);

    // `loginctl lock-session`: logind's Lock signal on this session's path.
    let corral = Corral::start_with(
        "lock-logind-2",
        &["1024x768"],
        &[],
        &test_agent_command(),
        &[],
    );
    corral.wait_for("the second corral's inhibitor", || {
        (logind.inhibitors() == 3).then_some(())
    });
    // A resume signal round trip shows its signal handlers are in place.
    logind.emit.send(Emit::PrepareForSleep(false)).unwrap();
    corral.wait_for("its handlers", || (logind.inhibitors() == 4).then_some(()));
    assert!(!lock_state(&corral).locked);
    assert_eq!(logind.seen.lock().unwrap().session_queries, 2);
    logind.emit.send(Emit::SessionLock).unwrap();
    corral.wait_for("the lock on logind's Lock", || {
        lock_state(&corral).locked.then_some(())
    });
}
