//! The qube's notification server: `org.freedesktop.Notifications` on the qube's D-Bus session
//! bus, forwarded to the GUI domain as `notify` / `close_notification` (docs/protocol.md section
//! 12.5), so a qube's notifications show on Corral's desktop framed in the qube's label colour.
//!
//! The D-Bus side runs on its own thread with a blocking libdbus connection (the `dbus` crate,
//! which the compositor already uses; four methods and one signal do not need an object
//! framework). It hands each notification to the agent's event loop through a bounded calloop
//! channel with `try_send`, so a flood of notifications never blocks the thread, the loop or the
//! GUI link: what does not fit is dropped. Closings reported by the GUI domain go back to the
//! thread through a bounded channel and become `NotificationClosed` signals.
//!
//! What is forwarded: the summary and body as plain text (markup is not interpreted; the GUI
//! domain shows text), sanitised and cut to the protocol's limits, and the `urgency` hint.
//! Icons, actions, sounds, other hints and `expire_timeout` are accepted and ignored; the GUI
//! domain decides how long a toast stays.
//!
//! The bus: `DBUS_SESSION_BUS_ADDRESS` if the agent has one; else a bus already listening at
//! `$XDG_RUNTIME_DIR/bus` (where systemd's user bus lives); else the agent starts
//! `dbus-daemon --session --address=unix:path=$XDG_RUNTIME_DIR/bus --nofork --print-address`
//! and stops it when it exits. Apps the agent launches get `DBUS_SESSION_BUS_ADDRESS`; others
//! find the bus at `$XDG_RUNTIME_DIR/bus`, which libdbus and GLib look at when the variable is
//! unset.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use corral_protocol::limits::{MAX_NOTIFICATION_BODY_BYTES, MAX_NOTIFICATION_SUMMARY_BYTES};
use corral_protocol::{
    AgentMessage, Capabilities, CloseReason, NotificationId, SanitizedText, Urgency,
};
use dbus::Message;
use dbus::arg::{PropMap, RefArg};
use dbus::blocking::LocalConnection;
use dbus::channel::Channel;
use smithay::reexports::calloop::channel::{Event as ChannelEvent, SyncSender, sync_channel};
use tracing::{debug, info, warn};

use crate::state::AgentState;

/// The well-known name and object of the freedesktop notification service.
const BUS_NAME: &str = "org.freedesktop.Notifications";
const OBJECT_PATH: &str = "/org/freedesktop/Notifications";
const INTERFACE: &str = "org.freedesktop.Notifications";
/// Notifications waiting for the agent's loop; more are dropped (the loop is busy, and the GUI
/// domain would show only a few of them anyway).
const EVENT_QUEUE: usize = 64;
/// Close notices waiting for the D-Bus thread.
const CLOSED_QUEUE: usize = 64;
/// How often the D-Bus thread looks for close notices when the bus is quiet.
const POLL: Duration = Duration::from_millis(100);
/// Longest wait for a `dbus-daemon` the agent started to print its address.
const DAEMON_START: Duration = Duration::from_secs(5);

const INTROSPECTION: &str = r#"<!DOCTYPE node PUBLIC "-//freedesktop//DTD D-BUS Object Introspection 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd">
<node>
  <interface name="org.freedesktop.Notifications">
    <method name="GetCapabilities"><arg direction="out" type="as"/></method>
    <method name="Notify">
      <arg direction="in" type="s" name="app_name"/>
      <arg direction="in" type="u" name="replaces_id"/>
      <arg direction="in" type="s" name="app_icon"/>
      <arg direction="in" type="s" name="summary"/>
      <arg direction="in" type="s" name="body"/>
      <arg direction="in" type="as" name="actions"/>
      <arg direction="in" type="a{sv}" name="hints"/>
      <arg direction="in" type="i" name="expire_timeout"/>
      <arg direction="out" type="u" name="id"/>
    </method>
    <method name="CloseNotification"><arg direction="in" type="u" name="id"/></method>
    <method name="GetServerInformation">
      <arg direction="out" type="s" name="name"/>
      <arg direction="out" type="s" name="vendor"/>
      <arg direction="out" type="s" name="version"/>
      <arg direction="out" type="s" name="spec_version"/>
    </method>
    <signal name="NotificationClosed"><arg type="u" name="id"/><arg type="u" name="reason"/></signal>
  </interface>
  <interface name="org.freedesktop.DBus.Introspectable">
    <method name="Introspect"><arg direction="out" type="s"/></method>
  </interface>
</node>"#;

/// What the D-Bus thread tells the agent's loop.
#[derive(Debug)]
enum Event {
    Notify {
        id: NotificationId,
        urgency: Urgency,
        summary: SanitizedText,
        body: SanitizedText,
    },
    Close {
        id: NotificationId,
    },
    /// The service could not start or stopped, with the reason.
    Stopped(String),
}

/// The running service, owned by [`AgentState`].
#[derive(Debug)]
pub struct NotificationService {
    closed: mpsc::SyncSender<(NotificationId, CloseReason)>,
    /// The bus address apps should use, once known.
    pub address: Option<String>,
    /// A `dbus-daemon` this agent started; stopped with the agent.
    daemon: Arc<Mutex<Option<Child>>>,
}

impl Drop for NotificationService {
    fn drop(&mut self) {
        if let Ok(mut daemon) = self.daemon.lock()
            && let Some(mut child) = daemon.take()
        {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The session bus the agent uses, or `None` if it must start one at `$XDG_RUNTIME_DIR/bus`.
fn existing_bus(runtime_dir: Option<&Path>) -> Result<Option<String>, String> {
    if let Some(address) = std::env::var_os("DBUS_SESSION_BUS_ADDRESS")
        && !address.is_empty()
    {
        return Ok(Some(address.to_string_lossy().into_owned()));
    }
    let Some(runtime_dir) = runtime_dir else {
        return Err("neither DBUS_SESSION_BUS_ADDRESS nor XDG_RUNTIME_DIR is set".into());
    };
    let socket = runtime_dir.join("bus");
    if socket.exists() {
        if std::os::unix::net::UnixStream::connect(&socket).is_ok() {
            return Ok(Some(format!("unix:path={}", socket.display())));
        }
        // A socket nobody listens on (left by a bus that died): ours to replace.
        std::fs::remove_file(&socket)
            .map_err(|e| format!("removing the stale {}: {e}", socket.display()))?;
    }
    Ok(None)
}

/// Starts `dbus-daemon` for the qube's session at `$XDG_RUNTIME_DIR/bus`; returns its address
/// as it printed it.
fn start_daemon(runtime_dir: &Path, slot: &Mutex<Option<Child>>) -> Result<String, String> {
    let address = format!("unix:path={}", runtime_dir.join("bus").display());
    // The address it prints (with the bus's guid) is what clients use.
    let mut command = Command::new("dbus-daemon");
    command
        .args(["--session", "--nofork", "--print-address"])
        .arg(format!("--address={address}"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: the closure runs in the child between fork and exec, where only
        // async-signal-safe calls are allowed; prctl(PR_SET_PDEATHSIG) is one system call that
        // allocates nothing. The bus then goes when this thread (which lives as long as the
        // agent) goes, even if the agent is killed and never runs its Drop.
        unsafe {
            command.pre_exec(|| {
                rustix::process::set_parent_process_death_signal(Some(
                    rustix::process::Signal::TERM,
                ))
                .map_err(std::io::Error::from)
            });
        }
    }
    let mut child = command
        .spawn()
        .map_err(|e| format!("starting dbus-daemon: {e}"))?;
    let stdout = child.stdout.take();
    if let Ok(mut s) = slot.lock() {
        *s = Some(child);
    }
    let stdout = stdout.ok_or("dbus-daemon has no stdout")?;
    // The daemon prints its address once it listens. Read it on a helper thread so that a
    // daemon that hangs cannot hold this thread forever.
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let result = BufReader::new(stdout).read_line(&mut line).map(|_| line);
        let _ = tx.send(result);
    });
    match rx.recv_timeout(DAEMON_START) {
        Ok(Ok(line)) if !line.trim().is_empty() => Ok(line.trim().to_owned()),
        Ok(Ok(_)) => Err("dbus-daemon exited without printing its address".into()),
        Ok(Err(e)) => Err(format!("reading dbus-daemon's address: {e}")),
        Err(_) => Err(format!(
            "dbus-daemon printed no address within {DAEMON_START:?}"
        )),
    }
}

/// Urgency from the `urgency` hint (a byte: 0 low, 1 normal, 2 critical); normal otherwise.
fn urgency_of(hints: &PropMap) -> Urgency {
    hints
        .get("urgency")
        .and_then(|v| v.0.as_u64())
        .and_then(|u| u8::try_from(u).ok())
        .and_then(|u| Urgency::from_wire(u).ok())
        .unwrap_or_default()
}

/// The D-Bus side: owns the bus name and answers calls until the bus goes away.
struct Server {
    conn: LocalConnection,
    events: SyncSender<Event>,
    next_id: u32,
    /// A notification the agent's queue had no room for: its app is told it closed, right
    /// after the reply that gave it its id (at most one per call, drained after each).
    dropped: Option<NotificationId>,
}

impl Server {
    fn answer(&mut self, msg: &Message) -> Option<Message> {
        let interface = msg.interface();
        let member = msg.member()?;
        match (interface.as_deref(), &*member) {
            (Some("org.freedesktop.DBus.Introspectable") | None, "Introspect") => {
                Some(msg.method_return().append1(INTROSPECTION))
            }
            (Some(INTERFACE) | None, "GetCapabilities") => {
                // Plain text only: no body-markup, actions, icons or sounds.
                Some(msg.method_return().append1(vec!["body".to_owned()]))
            }
            (Some(INTERFACE) | None, "GetServerInformation") => Some(
                msg.method_return()
                    .append3("Corral", "Corral", env!("CARGO_PKG_VERSION"))
                    .append1("1.2"),
            ),
            (Some(INTERFACE) | None, "Notify") => Some(self.notify(msg)),
            (Some(INTERFACE) | None, "CloseNotification") => {
                let Ok(raw) = msg.read1::<u32>() else {
                    return Some(invalid_args(msg));
                };
                if let Ok(id) = NotificationId::new(raw) {
                    self.forward(Event::Close { id });
                }
                Some(msg.method_return())
            }
            _ => dbus::channel::default_reply(msg),
        }
    }

    fn notify(&mut self, msg: &Message) -> Message {
        type Args = (
            String,
            u32,
            String,
            String,
            String,
            Vec<String>,
            PropMap,
            i32,
        );
        let Ok((
            _app,
            replaces_id,
            _icon,
            untrusted_summary,
            untrusted_body,
            _actions,
            hints,
            _timeout,
        )) = msg.read_all::<Args>()
        else {
            return invalid_args(msg);
        };
        // A replaced id must be one we gave out; anything else gets a new one.
        let id = match NotificationId::new(replaces_id) {
            Ok(id) if replaces_id <= self.next_id => id,
            _ => {
                self.next_id = self.next_id.checked_add(1).unwrap_or(1);
                NotificationId::new(self.next_id).unwrap_or_else(|_| unreachable!("never 0"))
            }
        };
        // The GUI domain sanitises again; doing it here sends exactly what will be shown and
        // keeps every message within the protocol's limits.
        self.forward(Event::Notify {
            id,
            urgency: urgency_of(&hints),
            summary: SanitizedText::sanitize(&untrusted_summary, MAX_NOTIFICATION_SUMMARY_BYTES),
            body: SanitizedText::sanitize(&untrusted_body, MAX_NOTIFICATION_BODY_BYTES),
        });
        msg.method_return().append1(id.get())
    }

    fn forward(&mut self, event: Event) {
        if let Err(e) = self.events.try_send(event) {
            debug!("notification dropped: the agent's queue is full");
            if let mpsc::TrySendError::Full(Event::Notify { id, .. }) = e {
                self.dropped = Some(id);
            }
        }
    }

    fn closed(&self, id: NotificationId, reason: CloseReason) {
        match Message::new_signal(OBJECT_PATH, INTERFACE, "NotificationClosed") {
            Ok(signal) => {
                let _ = self
                    .conn
                    .channel()
                    .send(signal.append2(id.get(), reason.to_wire()));
            }
            Err(e) => warn!(%e, "building NotificationClosed"),
        }
    }
}

fn invalid_args(msg: &Message) -> Message {
    msg.error(
        &"org.freedesktop.DBus.Error.InvalidArgs".into(),
        c"unexpected arguments",
    )
}

/// The thread's body: connect, own the name, serve.
fn serve(
    runtime_dir: Option<PathBuf>,
    daemon: Arc<Mutex<Option<Child>>>,
    events: SyncSender<Event>,
    closed: mpsc::Receiver<(NotificationId, CloseReason)>,
    address_tx: mpsc::Sender<String>,
) -> Result<(), String> {
    let address = match existing_bus(runtime_dir.as_deref())? {
        Some(address) => address,
        None => {
            let dir = runtime_dir.ok_or("XDG_RUNTIME_DIR is not set")?;
            let address = start_daemon(&dir, &daemon)?;
            info!(%address, "started a D-Bus session bus for the qube");
            address
        }
    };
    let mut channel =
        Channel::open_private(&address).map_err(|e| format!("connecting to {address}: {e}"))?;
    channel
        .register()
        .map_err(|e| format!("registering on {address}: {e}"))?;
    let conn = LocalConnection::from(channel);
    use dbus::blocking::stdintf::org_freedesktop_dbus::RequestNameReply;
    match conn.request_name(BUS_NAME, false, false, true) {
        Ok(RequestNameReply::PrimaryOwner | RequestNameReply::AlreadyOwner) => {}
        Ok(other) => {
            return Err(format!(
                "another notification server owns {BUS_NAME} ({other:?}); leaving it be"
            ));
        }
        Err(e) => return Err(format!("requesting {BUS_NAME}: {e}")),
    }
    let _ = address_tx.send(address.clone());
    info!(%address, "serving {BUS_NAME}");
    let mut server = Server {
        conn,
        events,
        next_id: 0,
        dropped: None,
    };
    loop {
        match server.conn.channel().blocking_pop_message(POLL) {
            Ok(Some(msg)) => {
                if msg.msg_type() == dbus::MessageType::MethodCall
                    && let Some(reply) = server.answer(&msg)
                {
                    let _ = server.conn.channel().send(reply);
                    // After the reply, so the app knows the id the signal names (an app
                    // waiting for its notification to close must not wait forever).
                    if let Some(id) = server.dropped.take() {
                        server.closed(id, CloseReason::Undefined);
                    }
                }
            }
            Ok(None) => {}
            Err(e) => return Err(format!("the session bus went away: {e}")),
        }
        loop {
            match closed.try_recv() {
                Ok((id, reason)) => server.closed(id, reason),
                Err(mpsc::TryRecvError::Empty) => break,
                // The agent is going away.
                Err(mpsc::TryRecvError::Disconnected) => return Ok(()),
            }
        }
    }
}

impl AgentState {
    /// Starts the notification service once the GUI domain agreed to notifications; once per
    /// agent (it outlives reconnections of the GUI link).
    pub(crate) fn start_notifications(&mut self, negotiated: Capabilities) {
        if !self.notifications_wanted
            || self.notifications.is_some()
            || !negotiated.contains(Capabilities::NOTIFICATIONS)
        {
            return;
        }
        let (events_tx, events_rx) = sync_channel::<Event>(EVENT_QUEUE);
        let (closed_tx, closed_rx) = mpsc::sync_channel(CLOSED_QUEUE);
        let (address_tx, address_rx) = mpsc::channel();
        let daemon = Arc::new(Mutex::new(None));
        let inserted =
            self.loop_handle
                .insert_source(events_rx, |event, _, state: &mut AgentState| {
                    if let ChannelEvent::Msg(event) = event {
                        state.on_notification_event(event);
                    }
                });
        if let Err(e) = inserted {
            warn!(%e, "notifications: could not register with the event loop");
            return;
        }
        let runtime_dir = std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from);
        let thread_daemon = daemon.clone();
        let stopped = events_tx.clone();
        let spawned = std::thread::Builder::new()
            .name("notifications".into())
            .spawn(move || {
                if let Err(reason) =
                    serve(runtime_dir, thread_daemon, events_tx, closed_rx, address_tx)
                {
                    let _ = stopped.try_send(Event::Stopped(reason));
                }
            });
        if let Err(e) = spawned {
            warn!(%e, "notifications: could not start the D-Bus thread");
            return;
        }
        self.notifications = Some(NotificationService {
            closed: closed_tx,
            address: None,
            daemon,
        });
        self.notification_address = Some(address_rx);
    }

    fn on_notification_event(&mut self, event: Event) {
        self.poll_notification_address();
        let negotiated = self.link.negotiated_capabilities();
        match event {
            Event::Notify {
                id,
                urgency,
                summary,
                body,
            } => {
                if negotiated.contains(Capabilities::NOTIFICATIONS) {
                    self.link.send(&AgentMessage::Notify {
                        id,
                        urgency,
                        summary,
                        body,
                    });
                } else {
                    // The link is down or the GUI domain does not take notifications now.
                    self.notification_closed(id, CloseReason::Undefined);
                }
            }
            Event::Close { id } => {
                if negotiated.contains(Capabilities::NOTIFICATIONS) {
                    self.link.send(&AgentMessage::CloseNotification { id });
                }
            }
            Event::Stopped(reason) => {
                warn!(%reason, "the notification service stopped; apps' notifications are not shown");
            }
        }
    }

    /// Learns the bus address once the D-Bus thread has it (for the apps the agent starts).
    pub(crate) fn poll_notification_address(&mut self) {
        if let Some(rx) = &self.notification_address
            && let Ok(address) = rx.try_recv()
        {
            if let Some(service) = self.notifications.as_mut() {
                service.address = Some(address);
            }
            self.notification_address = None;
        }
    }

    /// The GUI domain no longer shows notification `id`: the app is told by the signal.
    pub(crate) fn notification_closed(&mut self, id: NotificationId, reason: CloseReason) {
        if let Some(service) = &self.notifications
            && service.closed.try_send((id, reason)).is_err()
        {
            debug!("NotificationClosed dropped: the D-Bus thread is behind");
        }
    }

    /// `DBUS_SESSION_BUS_ADDRESS` for apps the agent starts, when it serves notifications.
    pub(crate) fn session_bus_address(&self) -> Option<String> {
        self.notifications.as_ref().and_then(|s| s.address.clone())
    }
}
