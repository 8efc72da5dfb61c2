//! The channel to the GUI domain: connecting, the handshake, non-blocking reads and writes on
//! the event loop, and reconnecting.
//!
//! The socket is registered with calloop as a `Generic` source for reading; a second source
//! waits for writability only while output is queued. Nothing here blocks: a peer that stops
//! reading fills the bounded queue, which counts as a lost link.
//!
//! When the link is lost, apps keep running. With `--connect` the agent retries with backoff;
//! after the new `Welcome` every window's remote state is forgotten and synced again, so the
//! GUI domain gets every window, its title and its full content.

use std::io::{self, IoSlice};
use std::os::fd::{BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use smithay::reexports::calloop::generic::Generic;
use smithay::reexports::calloop::timer::{TimeoutAction, Timer};
use smithay::reexports::calloop::{Interest, Mode, PostAction, RegistrationToken};
use tracing::{debug, info, warn};

use corral_protocol::channel::stream::StreamTransport;
use corral_protocol::channel::unix::{UnixTransport, adopt_inherited};
use corral_protocol::channel::{
    AgentConnection, ConnectionError, StreamLimits, Transport, inline_writes,
};
use corral_protocol::{
    AgentMessage, Capabilities, Compression, GuiMessage, PoolBacking, PoolId, Rect, Serial,
};

use corral_protocol::session::{AgentSession, SessionLimits};

use crate::cli::Endpoint;
use crate::render::WindowBuffer;
use crate::state::AgentState;

/// First and longest wait between reconnection attempts.
const RECONNECT_FIRST: Duration = Duration::from_millis(100);
const RECONNECT_MAX: Duration = Duration::from_secs(5);

/// The transports the agent can speak over a Unix socket.
#[derive(Debug)]
pub enum AgentTransport {
    /// Memfd pools passed with SCM_RIGHTS.
    Unix(UnixTransport),
    /// No fd passing: pixels inline (the vsock path).
    Stream(StreamTransport<UnixStream>),
}

impl Transport for AgentTransport {
    fn send(&mut self, bufs: &[IoSlice<'_>], fds: &[BorrowedFd<'_>]) -> io::Result<usize> {
        match self {
            AgentTransport::Unix(t) => t.send(bufs, fds),
            AgentTransport::Stream(t) => t.send(bufs, fds),
        }
    }
    fn recv(&mut self, buf: &mut [u8], fds: &mut Vec<OwnedFd>) -> io::Result<usize> {
        match self {
            AgentTransport::Unix(t) => t.recv(buf, fds),
            AgentTransport::Stream(t) => t.recv(buf, fds),
        }
    }
    fn can_pass_fds(&self) -> bool {
        match self {
            AgentTransport::Unix(t) => t.can_pass_fds(),
            AgentTransport::Stream(t) => t.can_pass_fds(),
        }
    }
    fn poll_fd(&self) -> BorrowedFd<'_> {
        match self {
            AgentTransport::Unix(t) => t.poll_fd(),
            AgentTransport::Stream(t) => t.poll_fd(),
        }
    }
    fn capabilities(&self) -> corral_protocol::Capabilities {
        match self {
            AgentTransport::Unix(t) => t.capabilities(),
            AgentTransport::Stream(t) => t.capabilities(),
        }
    }
}

/// How pixels reach the GUI domain on the current connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PixelPath {
    Memfd,
    Inline(Compression),
}

#[derive(Debug)]
pub struct GuiLink {
    endpoint: Endpoint,
    force_inline: bool,
    conn: Option<AgentConnection<AgentTransport>>,
    /// Set once `Welcome` arrived on the current connection.
    pixel_path: Option<PixelPath>,
    /// The GUI domain's session rules, applied to every message before it is sent. What the
    /// GUI domain would refuse (a window past the qube's budget, say) is kept back here, so one
    /// app that floods cannot get every window of the qube cut off.
    mirror: Option<AgentSession>,
    /// Why the current connection broke; handled after the current callback.
    broken: Option<String>,
    read_source: Option<RegistrationToken>,
    write_source: Option<RegistrationToken>,
    /// Sources of a dead connection, removed outside their own callbacks.
    stale_sources: Vec<RegistrationToken>,
    /// Bumped on every new connection so callbacks of old sources can tell they are stale.
    generation: u64,
    backoff: Duration,
    reconnect_scheduled: bool,
    last_pool: u32,
    last_commit: u32,
    /// The inherited fd is used once; later connections are impossible.
    inherited_used: bool,
    /// The socket of [`Endpoint::Embedded`], until it is used.
    pub embedded_socket: Option<UnixStream>,
}

impl GuiLink {
    pub fn new(endpoint: Endpoint, force_inline: bool) -> Self {
        GuiLink {
            endpoint,
            force_inline,
            conn: None,
            pixel_path: None,
            mirror: None,
            broken: None,
            read_source: None,
            write_source: None,
            stale_sources: Vec::new(),
            generation: 0,
            backoff: RECONNECT_FIRST,
            reconnect_scheduled: false,
            last_pool: 0,
            last_commit: 0,
            inherited_used: false,
            embedded_socket: None,
        }
    }

    /// The capabilities both sides agreed on, on a live connection after `Welcome`; empty
    /// otherwise.
    pub fn negotiated_capabilities(&self) -> Capabilities {
        if !self.is_ready() {
            return Capabilities::empty();
        }
        self.conn
            .as_ref()
            .and_then(|c| c.negotiated())
            .map_or(Capabilities::empty(), |(_, caps)| caps)
    }

    /// The handshake is done: windows may be announced and pixels sent.
    pub fn is_ready(&self) -> bool {
        self.conn.is_some() && self.pixel_path.is_some() && self.broken.is_none()
    }

    /// Queues a message if the link is up; otherwise it is dropped (the state it carries is
    /// re-sent after the next handshake).
    pub fn send(&mut self, message: &AgentMessage) {
        if self.broken.is_some() {
            return;
        }
        let Some(conn) = self.conn.as_mut() else {
            return;
        };
        if let Some(mirror) = self.mirror.as_mut()
            && let Err(refusal) = mirror.apply(message, Instant::now())
        {
            warn!(message = message.name(), %refusal, "not sent: the GUI domain would refuse it");
            return;
        }
        if let Err(err) = conn.send(message) {
            self.broken = Some(format!("could not queue {}: {err}", message.name()));
        }
    }

    /// Starts checking outgoing messages against the GUI domain's rules for this connection:
    /// the same handshake the GUI domain saw, the same budgets (its defaults; the message rate
    /// is the GUI domain's to police, not something the agent can hold back).
    fn start_mirror(&mut self, gui_capabilities: Capabilities, offered: Capabilities) {
        let limits = SessionLimits {
            max_messages_per_second: u32::MAX,
            message_burst: u32::MAX,
            ..SessionLimits::default()
        };
        let mut mirror = AgentSession::new(limits, gui_capabilities);
        let hello = AgentMessage::Hello {
            version: corral_protocol::Version::CURRENT,
            capabilities: offered,
        };
        self.mirror = mirror
            .apply(&hello, Instant::now())
            .is_ok()
            .then_some(mirror);
    }

    pub fn next_pool_id(&mut self) -> PoolId {
        self.last_pool = self.last_pool.wrapping_add(1).max(1);
        PoolId::new(self.last_pool).unwrap_or_else(|_| unreachable!("never 0"))
    }

    pub fn next_commit_serial(&mut self) -> Serial {
        self.last_commit = self.last_commit.wrapping_add(1);
        Serial(self.last_commit)
    }

    /// Announces a window's new pool. Returns false if the link cannot take it.
    pub fn announce_pool(&mut self, buffer: &WindowBuffer) -> bool {
        if !self.is_ready() {
            return false;
        }
        let Some(conn) = self.conn.as_mut() else {
            return false;
        };
        if let Some(mirror) = self.mirror.as_mut() {
            let create = AgentMessage::PoolCreate {
                pool: buffer.pool,
                size: buffer.memfd().bytes().len() as u64,
                backing: match self.pixel_path {
                    Some(PixelPath::Memfd) => PoolBacking::MemFd,
                    _ => PoolBacking::Inline,
                },
            };
            if let Err(refusal) = mirror.apply(&create, Instant::now()) {
                warn!(%refusal, "pool not announced: the GUI domain would refuse it");
                return false;
            }
        }
        match self.pixel_path {
            Some(PixelPath::Memfd) => {
                if let Err(err) = conn.send_memfd_pool(buffer.pool, buffer.memfd()) {
                    self.broken = Some(format!("could not send a pool: {err}"));
                    return false;
                }
            }
            Some(PixelPath::Inline(_)) => {
                let create = AgentMessage::PoolCreate {
                    pool: buffer.pool,
                    size: buffer.memfd().bytes().len() as u64,
                    backing: PoolBacking::Inline,
                };
                // Already checked against the mirror above.
                if let Err(err) = conn.send(&create) {
                    self.broken = Some(format!("could not queue a pool: {err}"));
                    return false;
                }
            }
            None => return false,
        }
        true
    }

    /// On channels without shared memory, copies the damaged rectangles into the GUI
    /// domain's copy of the pool. With memfds the GUI domain already sees them.
    pub fn send_pixels(&mut self, buffer: &WindowBuffer, damage: &[Rect]) {
        let Some(PixelPath::Inline(compression)) = self.pixel_path else {
            return;
        };
        match inline_writes(
            buffer.pool,
            buffer.memfd().bytes(),
            buffer.layout(),
            damage,
            compression,
        ) {
            Ok(messages) => {
                for message in &messages {
                    self.send(message);
                }
            }
            Err(err) => warn!(%err, "could not build inline pixel writes"),
        }
    }

    /// The connection's socket, to register with the event loop.
    fn poll_fd(&self) -> Option<OwnedFd> {
        self.conn
            .as_ref()
            .and_then(|c| c.stream().poll_fd().try_clone_to_owned().ok())
    }
}

impl AgentState {
    /// Opens the channel named on the command line and says hello.
    pub fn link_connect(&mut self) -> Result<(), String> {
        let socket = match &self.link.endpoint {
            Endpoint::InheritedFd(fd) => {
                if self.link.inherited_used {
                    return Err("the inherited GUI channel is gone and cannot be replaced".into());
                }
                self.link.inherited_used = true;
                adopt_inherited(*fd).map_err(|e| format!("adopting --gui-fd {fd}: {e}"))?
            }
            Endpoint::Connect(path) => connect_socket(path)?,
            Endpoint::Embedded => self
                .link
                .embedded_socket
                .take()
                .ok_or("the embedded GUI channel is gone")?,
        };
        let transport = if self.link.force_inline {
            socket
                .set_nonblocking(true)
                .map_err(|e| format!("making the GUI channel non-blocking: {e}"))?;
            AgentTransport::Stream(StreamTransport::new(socket))
        } else {
            AgentTransport::Unix(
                UnixTransport::new(socket)
                    .map_err(|e| format!("making the GUI channel non-blocking: {e}"))?,
            )
        };
        let mut conn = AgentConnection::new(transport, StreamLimits::default());
        conn.send_hello()
            .map_err(|e| format!("queueing hello: {e}"))?;
        self.link.conn = Some(conn);
        self.link.pixel_path = None;
        self.link.mirror = None;
        self.link.broken = None;
        self.link.generation += 1;
        self.link.last_pool = 0;
        let generation = self.link.generation;
        let fd = self
            .link
            .poll_fd()
            .ok_or("could not duplicate the GUI channel's descriptor")?;
        let token = self
            .loop_handle
            .insert_source(
                Generic::new(fd, Interest::READ, Mode::Level),
                move |_, _, state: &mut AgentState| {
                    if state.link.generation != generation {
                        return Ok(PostAction::Remove);
                    }
                    state.on_gui_readable();
                    Ok(PostAction::Continue)
                },
            )
            .map_err(|e| format!("registering the GUI channel: {e}"))?;
        self.link.read_source = Some(token);
        info!("GUI channel open; hello sent");
        Ok(())
    }

    /// Reads and handles every complete message from the GUI domain.
    fn on_gui_readable(&mut self) {
        loop {
            if self.link.broken.is_some() {
                return;
            }
            let Some(conn) = self.link.conn.as_mut() else {
                return;
            };
            match conn.receive() {
                Ok(Some(message)) => self.apply_gui_message(message),
                Ok(None) => return,
                Err(err) => {
                    self.link.broken = Some(describe_connection_error(&err));
                    return;
                }
            }
        }
    }

    /// Acts on one message from the GUI domain (or from the embedded stand-in).
    pub(crate) fn apply_gui_message(&mut self, message: GuiMessage) {
        debug!(message = message.name(), "from GUI");
        match message {
            GuiMessage::Welcome {
                version,
                outputs,
                capabilities: gui_capabilities,
            } => {
                let offered = self
                    .link
                    .conn
                    .as_ref()
                    .map(|c| c.offered_capabilities())
                    .unwrap_or(Capabilities::empty());
                let negotiated = self
                    .link
                    .conn
                    .as_ref()
                    .and_then(|c| c.negotiated())
                    .map(|(_, caps)| caps)
                    .unwrap_or(Capabilities::empty());
                let can_pass_fds = self
                    .link
                    .conn
                    .as_ref()
                    .is_some_and(|c| c.stream().transport().can_pass_fds());
                let path = if negotiated.contains(Capabilities::MEMFD_POOLS) && can_pass_fds {
                    PixelPath::Memfd
                } else if negotiated.contains(Capabilities::LZ4) {
                    PixelPath::Inline(Compression::Lz4)
                } else {
                    PixelPath::Inline(Compression::None)
                };
                info!(%version, ?path, outputs = outputs.len(), "GUI domain welcomed the agent");
                self.link.start_mirror(gui_capabilities, offered);
                self.outputs.apply(&self.display_handle, &outputs);
                self.link.pixel_path = Some(path);
                self.link.backoff = RECONNECT_FIRST;
                self.resync_all_windows();
                self.start_notifications(negotiated);
            }
            GuiMessage::Goodbye { .. } => {}
            GuiMessage::OutputsChanged { outputs } => {
                self.outputs.apply(&self.display_handle, &outputs);
                for window in self.windows.values_mut() {
                    window.dirty = true;
                }
            }
            GuiMessage::Ping { serial } => self.link.send(&AgentMessage::Pong { serial }),
            GuiMessage::PoolReleased { .. } => {
                // The agent dropped its side of a pool when it replaced it; nothing to free.
            }
            GuiMessage::FrameDone { window, .. } => self.frame_done(window),
            GuiMessage::ListApps => {
                let apps = self.launcher.list_apps();
                self.link.send(&AgentMessage::AppList { apps });
            }
            GuiMessage::Launch { request } => self.launch(request),
            GuiMessage::ClipboardRequest { serial } => self.clipboard_request(serial),
            GuiMessage::ClipboardPaste { payload } => self.clipboard_paste(payload),
            GuiMessage::NotificationClosed { id, reason } => self.notification_closed(id, reason),
            input => self.handle_gui_input(input),
        }
    }

    /// Forgets what the GUI domain knew (a new connection knows nothing) and marks every
    /// window for announcement, with its metadata and its full content.
    fn resync_all_windows(&mut self) {
        for window in self.windows.values_mut() {
            window.remote = Default::default();
            window.dirty = true;
        }
    }

    /// Flushes output, registers for writability while output is pending, and handles a
    /// broken link. Called once per loop iteration.
    pub fn link_housekeeping(&mut self) {
        for token in self.link.stale_sources.drain(..) {
            self.loop_handle.remove(token);
        }
        if self.link.broken.is_none()
            && let Some(conn) = self.link.conn.as_mut()
        {
            match conn.flush() {
                Ok(true) => {
                    if let Some(token) = self.link.write_source.take() {
                        self.loop_handle.remove(token);
                    }
                }
                Ok(false) => {
                    if self.link.write_source.is_none()
                        && let Some(fd) = self.link.poll_fd()
                    {
                        let generation = self.link.generation;
                        // Only wakes the loop; the flush happens in this function, which runs
                        // after every dispatch.
                        self.link.write_source = self
                            .loop_handle
                            .insert_source(
                                Generic::new(fd, Interest::WRITE, Mode::Level),
                                move |_, _, state: &mut AgentState| {
                                    if state.link.generation != generation {
                                        return Ok(PostAction::Remove);
                                    }
                                    Ok(PostAction::Continue)
                                },
                            )
                            .ok();
                    }
                }
                Err(err) => self.link.broken = Some(describe_connection_error(&err)),
            }
        }
        if let Some(reason) = self.link.broken.take() {
            self.link_lost(reason);
        }
    }

    fn link_lost(&mut self, reason: String) {
        warn!(%reason, "GUI channel lost; apps keep running");
        self.link.conn = None;
        self.link.pixel_path = None;
        self.link.generation += 1;
        if let Some(token) = self.link.read_source.take() {
            self.link.stale_sources.push(token);
        }
        if let Some(token) = self.link.write_source.take() {
            self.link.stale_sources.push(token);
        }
        self.resync_all_windows();
        self.clipboard.cancel_reads();
        match self.link.endpoint {
            Endpoint::InheritedFd(_) | Endpoint::Embedded => {
                self.stop_with_error(format!("the GUI channel closed: {reason}"));
            }
            Endpoint::Connect(_) => self.schedule_reconnect(),
        }
    }

    pub fn schedule_reconnect(&mut self) {
        if self.link.reconnect_scheduled {
            return;
        }
        self.link.reconnect_scheduled = true;
        let delay = self.link.backoff;
        self.link.backoff = (self.link.backoff * 2).min(RECONNECT_MAX);
        debug!(?delay, "reconnecting later");
        let inserted = self.loop_handle.insert_source(
            Timer::from_deadline(Instant::now() + delay),
            |_, _, state: &mut AgentState| {
                state.link.reconnect_scheduled = false;
                if let Err(reason) = state.link_connect() {
                    debug!(%reason, "reconnecting failed");
                    state.schedule_reconnect();
                }
                TimeoutAction::Drop
            },
        );
        if inserted.is_err() {
            self.stop_with_error("could not schedule a reconnection".into());
        }
    }
}

fn connect_socket(path: &PathBuf) -> Result<UnixStream, String> {
    UnixStream::connect(path).map_err(|e| format!("connecting to {}: {e}", path.display()))
}

fn describe_connection_error(err: &ConnectionError) -> String {
    if err.is_violation() {
        format!("the GUI domain broke the protocol: {err}")
    } else {
        err.to_string()
    }
}
