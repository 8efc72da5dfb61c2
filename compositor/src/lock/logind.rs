//! Locking before suspend and on `loginctl lock-session`, through logind on the system bus
//! (`org.freedesktop.login1`, the `dbus` crate over libdbus).
//!
//! A thread holds the D-Bus connection (blocking calls never touch the event loop):
//! - it takes a `delay` inhibitor for `sleep` and hands its file descriptor to the loop; logind
//!   then waits (up to its `InhibitDelayMaxSec`) before suspending until that descriptor is
//!   closed;
//! - on `PrepareForSleep(true)` the loop locks, draws one locked frame on every output, and only
//!   then closes the descriptor, so the machine never sleeps (and wakes) showing a qube; on
//!   `PrepareForSleep(false)` (resumed) the thread takes a new inhibitor;
//! - on the `Lock` signal of this process's logind session the loop locks.
//!
//! Without a system bus or logind (a container, CI) the thread logs that and ends; everything
//! else works as before. `--no-logind` does not start it.

use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use dbus::blocking::Connection;
use dbus::message::MatchRule;
use smithay::reexports::calloop::LoopHandle;
use smithay::reexports::calloop::channel::{self, Sender};

use super::LockReason;
use crate::state::State;

const LOGIN1: &str = "org.freedesktop.login1";
const LOGIN1_PATH: &str = "/org/freedesktop/login1";
const MANAGER: &str = "org.freedesktop.login1.Manager";
const SESSION: &str = "org.freedesktop.login1.Session";
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// What the logind thread tells the loop.
#[derive(Debug)]
pub enum LogindEvent {
    /// A delay inhibitor for sleep: close it to let a suspend go on.
    Inhibitor(OwnedFd),
    /// The system is about to sleep (`true`) or has resumed (`false`).
    PrepareForSleep(bool),
    /// logind asks this session to lock.
    Lock,
}

/// Starts the logind thread and the loop's side of it.
pub fn start(handle: &LoopHandle<'static, State>) -> anyhow::Result<()> {
    let (tx, rx) = channel::channel::<LogindEvent>();
    handle
        .insert_source(rx, |event, _, state: &mut State| {
            if let channel::Event::Msg(event) = event {
                state.logind_event(event);
            }
        })
        .map_err(|e| anyhow::anyhow!("registering the logind channel: {e}"))?;
    std::thread::Builder::new()
        .name("corral-logind".into())
        .spawn(move || {
            if let Err(e) = serve(&tx) {
                tracing::info!(
                    "logind is not reachable ({e}); the screen will not lock by itself before suspend"
                );
            }
        })?;
    Ok(())
}

/// Takes a delay inhibitor for sleep.
fn take_inhibitor(conn: &Connection) -> Result<OwnedFd, dbus::Error> {
    let manager = conn.with_proxy(LOGIN1, LOGIN1_PATH, CALL_TIMEOUT);
    let (fd,): (OwnedFd,) = manager.method_call(
        MANAGER,
        "Inhibit",
        (
            "sleep",
            "corral",
            "Lock the screen before the system sleeps",
            "delay",
        ),
    )?;
    Ok(fd)
}

fn serve(tx: &Sender<LogindEvent>) -> Result<(), dbus::Error> {
    let conn = Connection::new_system()?;
    let fd = take_inhibitor(&conn)?;
    if tx.send(LogindEvent::Inhibitor(fd)).is_err() {
        return Ok(());
    }
    let sleep_tx = tx.clone();
    conn.add_match(
        MatchRule::new_signal(MANAGER, "PrepareForSleep")
            .with_sender(LOGIN1)
            .with_path(LOGIN1_PATH),
        move |(start,): (bool,), conn: &Connection, _| {
            let _ = sleep_tx.send(LogindEvent::PrepareForSleep(start));
            if !start {
                // Resumed: hold off the next suspend again.
                match take_inhibitor(conn) {
                    Ok(fd) => {
                        let _ = sleep_tx.send(LogindEvent::Inhibitor(fd));
                    }
                    Err(e) => tracing::warn!("taking a new sleep inhibitor: {e}"),
                }
            }
            true
        },
    )?;
    let manager = conn.with_proxy(LOGIN1, LOGIN1_PATH, CALL_TIMEOUT);
    let session: Result<(dbus::Path<'static>,), _> =
        manager.method_call(MANAGER, "GetSessionByPID", (std::process::id(),));
    match session {
        Ok((path,)) => {
            let lock_tx = tx.clone();
            conn.add_match(
                MatchRule::new_signal(SESSION, "Lock")
                    .with_sender(LOGIN1)
                    .with_path(path),
                move |(): (), _: &Connection, _| {
                    let _ = lock_tx.send(LogindEvent::Lock);
                    true
                },
            )?;
        }
        Err(e) => {
            tracing::info!("not in a logind session ({e}); loginctl lock-session will not lock")
        }
    }
    loop {
        conn.process(Duration::from_secs(3600))?;
    }
}

/// How long a suspend may wait for the locked frame to reach every monitor (logind's own
/// limit for delay inhibitors, InhibitDelayMaxSec, is 5 s by default).
const SLEEP_LOCK_WAIT: Duration = Duration::from_millis(1500);

impl State {
    /// Lets a pending suspend go on (closes the sleep inhibitor) once the locked frame is on
    /// every monitor, or when [`SLEEP_LOCK_WAIT`] is over.
    pub(crate) fn sleep_release_tick(&mut self) {
        let Some(deadline) = self.lock.sleep_release_deadline else {
            return;
        };
        let shown = self.locked_frame_on_every_output();
        if !shown && Instant::now() < deadline {
            return;
        }
        self.lock.sleep_release_deadline = None;
        self.lock.sleep_inhibitor = None;
        if shown {
            tracing::info!("locked before sleep; released the sleep inhibitor");
        } else {
            tracing::warn!(
                "the locked frame did not reach every monitor in time; released the sleep \
                 inhibitor anyway"
            );
        }
    }

    fn logind_event(&mut self, event: LogindEvent) {
        match event {
            LogindEvent::Inhibitor(fd) => self.lock.sleep_inhibitor = Some(fd),
            LogindEvent::PrepareForSleep(true) => {
                self.lock(LockReason::Suspend);
                // Draw the locked frame now; the suspend goes on once it is on every monitor
                // (on udev: at the page flip that shows it), so nothing unlocked can be on a
                // screen at resume. At most SLEEP_LOCK_WAIT: logind would go on anyway.
                self.render();
                self.lock.sleep_release_deadline = Some(Instant::now() + SLEEP_LOCK_WAIT);
                self.sleep_release_tick();
            }
            LogindEvent::PrepareForSleep(false) => self.lock.sleep_release_deadline = None,
            LogindEvent::Lock => self.lock(LockReason::Logind),
        }
    }
}
