//! Qube connections: one [`QubeConnection`] per agent channel.
//!
//! The only way a qube reaches the compositor is a [`GuiConnection`] from `corral-protocol`:
//! decoded, validated, session-checked messages plus read-only pool mappings. The compositor
//! never parses Wayland from a qube (decision 1). The qube's identity (name, label, colour) is
//! attached here, when the channel is created, from the caller's trusted records (decision 2);
//! no message can change it.
//!
//! Each connection is served by two calloop sources on duplicates of the channel's fd: one
//! readable source, always armed, and one writable source, armed only while output is queued.
//! One wake-up handles at most [`MESSAGES_PER_WAKEUP`] messages, so a chatty qube cannot starve
//! the others or the frame clock. Any [`ConnectionError`] cuts that qube off (see
//! `State::cut_off`).

mod dev;
mod handle;

pub use dev::{
    DevAgent, DevListenSpec, DevQubeSpec, agent_command_line, listen_dev_qube, spawn_gui_app,
};

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use corral_domains::QubeName;
use corral_protocol::channel::unix::UnixTransport;
use corral_protocol::channel::{ConnectionError, GuiConnection, PoolMemory, StreamLimits};
use corral_protocol::session::SessionLimits;
use corral_protocol::{
    BufferLayout, OptionalSize, PoolId, Rect as WireRect, SanitizedText, Serial, WindowId,
    WindowStates,
};
use smithay::backend::renderer::element::Id;
use smithay::backend::renderer::element::memory::MemoryRenderBuffer;
use smithay::backend::renderer::pixman::PixmanTexture;
use smithay::backend::renderer::utils::DamageBag;
use smithay::reexports::calloop::RegistrationToken;
use smithay::utils::Buffer as BufferCoords;

use crate::labels::{Label, Rgb};
use crate::layout::WinId;

/// Most messages handled from one qube per wake-up.
pub const MESSAGES_PER_WAKEUP: usize = 256;

/// Identifies a connection for the life of the compositor (never reused).
pub type ConnId = u64;

/// Who is at the other end of a channel, from the compositor's own records. Never from the
/// agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QubeIdentity {
    pub name: QubeName,
    pub label: Label,
}

impl QubeIdentity {
    /// The colour the label is drawn in: the theme's (and config's) for this label name.
    pub fn colour(&self) -> Rgb {
        crate::config::theme::look().label_colour(&self.label)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowKind {
    Toplevel,
    Popup { parent: WindowId },
}

/// The committed buffer of a window: where its pixels are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommittedBuffer {
    pub pool: PoolId,
    pub layout: BufferLayout,
}

/// Renderer-side copies or views of a window's content. Kept with the window so that the
/// rule below is local to this module: a zero-copy texture into a pool is dropped whenever that
/// pool's mapping goes away.
#[derive(Debug)]
pub struct ContentCache {
    /// The render element id of the content (stable for the window's life).
    pub id: Id,
    /// A Pixman image reading the pool in place (`PoolMemory::as_ptr`).
    pub pixman: Option<PixmanTexture>,
    /// A copy of the buffer, updated from damaged regions (GLES, or unaligned memory).
    pub memory: Option<MemoryRenderBuffer>,
    /// Size of `memory`: the visible part of the buffer when it was made.
    pub memory_size: (i32, i32),
    /// Damage not yet copied into `memory`, in buffer pixels.
    pub upload_damage: Vec<WireRect>,
    /// The whole buffer must be copied again (new buffer).
    pub upload_all: bool,
}

impl ContentCache {
    fn new() -> Self {
        ContentCache {
            id: Id::new(),
            pixman: None,
            memory: None,
            memory_size: (0, 0),
            upload_damage: Vec::new(),
            upload_all: true,
        }
    }

    pub fn clear(&mut self) {
        self.pixman = None;
        self.memory = None;
        self.upload_damage.clear();
        self.upload_all = true;
    }
}

/// One window of a qube, as the compositor keeps it.
#[derive(Debug)]
pub struct QubeWindow {
    pub win: WinId,
    pub id: WindowId,
    pub kind: WindowKind,
    /// Sanitised by the decoder; still the qube's words, shown only after the trusted prefix.
    pub untrusted_title: SanitizedText,
    pub untrusted_app_id: SanitizedText,
    pub pending_buffer: Option<CommittedBuffer>,
    pub pending_damage: Vec<WireRect>,
    pub current: Option<CommittedBuffer>,
    /// Damage of committed content, for the damage tracker.
    pub damage: DamageBag<i32, BufferCoords>,
    pub cache: ContentCache,
    /// A commit waits for the next presented frame to get its `frame_done`.
    pub frame_done_pending: bool,
    /// Bumped on every change of the decoration (title, focus, attention).
    pub decoration_commit: usize,
    /// Last configure sent: serial, size, states.
    pub last_configure: Option<(Serial, OptionalSize, WindowStates)>,
    pub acked_serial: Option<Serial>,
    /// Set to false when the window goes away (focus targets check it).
    pub alive: Arc<AtomicBool>,
}

impl QubeWindow {
    fn new(win: WinId, id: WindowId, kind: WindowKind) -> Self {
        QubeWindow {
            win,
            id,
            kind,
            untrusted_title: SanitizedText::default(),
            untrusted_app_id: SanitizedText::default(),
            pending_buffer: None,
            pending_damage: Vec::new(),
            current: None,
            damage: DamageBag::new(16),
            cache: ContentCache::new(),
            frame_done_pending: false,
            decoration_commit: 0,
            last_configure: None,
            acked_serial: None,
            alive: Arc::new(AtomicBool::new(true)),
        }
    }
}

impl Drop for QubeWindow {
    fn drop(&mut self) {
        self.alive.store(false, Ordering::Release);
    }
}

/// One agent channel with the qube's trusted identity.
#[derive(Debug)]
pub struct QubeConnection {
    pub id: ConnId,
    pub identity: QubeIdentity,
    /// Windows are declared before the connection so that textures into pools are dropped
    /// before the pools are unmapped, whatever happens.
    pub windows: HashMap<WindowId, QubeWindow>,
    pub conn: GuiConnection<UnixTransport>,
    pub established: bool,
    pub keymap_sent: bool,
    pub next_serial: u32,
    pub read_token: Option<RegistrationToken>,
    pub write_token: Option<RegistrationToken>,
    pub write_armed: bool,
    /// Messages may still be buffered inside the connection (the budget ran out).
    pub more_to_read: bool,
    /// A send failed (the queue is full): the qube is being cut off from the event loop.
    pub send_failed: bool,
    pub agent: Option<DevAgent>,
}

impl QubeConnection {
    /// Wraps the GUI domain's end of a fresh channel for the qube `identity`.
    pub fn new(id: ConnId, identity: QubeIdentity, socket: UnixStream) -> std::io::Result<Self> {
        Self::with_limits(id, identity, socket, SessionLimits::default())
    }

    /// As [`QubeConnection::new`], with the qube's limits from the config.
    pub fn with_limits(
        id: ConnId,
        identity: QubeIdentity,
        socket: UnixStream,
        limits: SessionLimits,
    ) -> std::io::Result<Self> {
        let transport = UnixTransport::new(socket)?;
        Ok(QubeConnection {
            id,
            identity,
            windows: HashMap::new(),
            conn: GuiConnection::new(transport, limits, stream_limits()),
            established: false,
            keymap_sent: false,
            next_serial: 1,
            read_token: None,
            write_token: None,
            write_armed: false,
            more_to_read: false,
            send_failed: false,
            agent: None,
        })
    }

    /// Duplicates of the channel's fd for the event loop (read and write sources).
    pub fn poll_fds(&self) -> std::io::Result<(OwnedFd, OwnedFd)> {
        let socket = self.conn.stream().transport().socket();
        Ok((socket.try_clone()?.into(), socket.try_clone()?.into()))
    }

    pub fn pool(&self, pool: PoolId) -> Option<&dyn PoolMemory> {
        self.conn.pool(pool)
    }

    pub fn serial(&mut self) -> Serial {
        let s = Serial(self.next_serial);
        self.next_serial = self.next_serial.wrapping_add(1);
        s
    }

    /// Forgets every renderer view into `pool` (its mapping is gone).
    pub fn forget_pool(&mut self, pool: PoolId) {
        for w in self.windows.values_mut() {
            if w.current.is_some_and(|c| c.pool == pool) {
                w.cache.clear();
                w.current = None;
            }
        }
    }
}

/// The environment variable that lowers the outgoing queue limit per qube (bytes), for tests
/// of a qube that stops reading: filling the default 64 MiB with small messages would take
/// minutes. It can only lower the limit, never raise it.
pub const MAX_QUEUED_BYTES_ENV: &str = "CORRAL_MAX_QUEUED_BYTES";

fn stream_limits() -> StreamLimits {
    let default = StreamLimits::default();
    let max_queued_bytes = std::env::var(MAX_QUEUED_BYTES_ENV)
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .map_or(default.max_queued_bytes, |v| {
            v.clamp(4096, default.max_queued_bytes)
        });
    StreamLimits { max_queued_bytes }
}

/// Every qube connection and the window numbering shared by all of them.
#[derive(Debug, Default)]
pub struct Qubes {
    pub conns: HashMap<ConnId, QubeConnection>,
    next_conn: ConnId,
    next_win: WinId,
    /// Compositor window → its connection and the agent's window id.
    pub windows: HashMap<WinId, (ConnId, WindowId)>,
}

impl Qubes {
    pub fn next_conn_id(&mut self) -> ConnId {
        self.next_conn += 1;
        self.next_conn
    }

    pub fn alloc_win(&mut self) -> WinId {
        self.next_win += 1;
        self.next_win
    }

    pub fn window(&self, win: WinId) -> Option<(&QubeConnection, &QubeWindow)> {
        let (conn, id) = self.windows.get(&win)?;
        let c = self.conns.get(conn)?;
        Some((c, c.windows.get(id)?))
    }

    pub fn window_mut(&mut self, win: WinId) -> Option<(&mut QubeConnection, WindowId)> {
        let (conn, id) = *self.windows.get(&win)?;
        let c = self.conns.get_mut(&conn)?;
        c.windows.contains_key(&id).then_some((c, id))
    }

    pub fn identity_of(&self, win: WinId) -> Option<&QubeIdentity> {
        self.window(win).map(|(c, _)| &c.identity)
    }

    /// Finds the compositor window of an agent's window id on a connection.
    pub fn win_of(&self, conn: ConnId, id: WindowId) -> Option<WinId> {
        self.conns.get(&conn)?.windows.get(&id).map(|w| w.win)
    }
}

/// Why a connection ended, for the log and the notification.
pub fn describe_end(error: &ConnectionError) -> (bool, String) {
    (error.is_violation(), error.to_string())
}
