//! Message framing over a [`Transport`], and the two ends of a connection.
//!
//! Everything here is non-blocking and bounded:
//! - reading never buffers more than the current frame (whose length [`check_header`] allowed
//!   before any of its body was read) plus one read-ahead chunk, and grows only with bytes that
//!   actually arrived;
//! - file descriptors that no message has claimed are capped at [`MAX_PENDING_FDS`];
//! - the outgoing queue has a byte limit: a peer that stops reading makes [`SendError::QueueFull`]
//!   appear, and the GUI domain cuts that qube off instead of buffering without end.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::io::{self, IoSlice};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Instant;

use thiserror::Error;

use super::Transport;
use super::pool::{PoolError, PoolMapper, PoolMemory, SharedMemfd, StandardPoolMapper};
use crate::codec::{self, Direction, Header, check_header};
use crate::error::DecodeError;
use crate::limits::{HEADER_BYTES, MAX_INLINE_PIXEL_BYTES, MAX_PENDING_FDS, MAX_REASON_BYTES};
use crate::message::{AgentMessage, GuiMessage};
use crate::session::{AgentSession, Applied, SessionLimits, SessionViolation};
use crate::text::SanitizedText;
use crate::types::{
    BufferLayout, Capabilities, Compression, InlinePixels, PixelFormat, PoolBacking, PoolId, Rect,
    Version, VersionMismatch, negotiate_version,
};

/// Read-ahead beyond the current frame, and the largest single read.
const READ_CHUNK: usize = 64 * 1024;
const MAX_READ: usize = 1024 * 1024;
/// Receive storage kept between frames (an inline pixel write is at most about 4.2 MiB).
const KEEP_RECEIVE_STORAGE: usize = 5 * 1024 * 1024;
/// Most frames gathered into one `sendmsg`.
const MAX_GATHER: usize = 64;

/// A message type that can travel in one direction.
pub trait WireMessage: Sized + fmt::Debug {
    const DIRECTION: Direction;
    fn encode(&self, out: &mut Vec<u8>);
    fn decode(msg_type: u32, untrusted_body: &[u8]) -> Result<Self, DecodeError>;
}

impl WireMessage for AgentMessage {
    const DIRECTION: Direction = Direction::AgentToGui;
    fn encode(&self, out: &mut Vec<u8>) {
        codec::encode_agent(self, out);
    }
    fn decode(msg_type: u32, untrusted_body: &[u8]) -> Result<Self, DecodeError> {
        codec::decode_agent(msg_type, untrusted_body)
    }
}

impl WireMessage for GuiMessage {
    const DIRECTION: Direction = Direction::GuiToAgent;
    fn encode(&self, out: &mut Vec<u8>) {
        codec::encode_gui(self, out);
    }
    fn decode(msg_type: u32, untrusted_body: &[u8]) -> Result<Self, DecodeError> {
        codec::decode_gui(msg_type, untrusted_body)
    }
}

/// Why a message could not be queued.
#[derive(Debug, Error)]
pub enum SendError {
    #[error("the peer is not reading: {queued} bytes queued, limit {limit}")]
    QueueFull { queued: usize, limit: usize },
    #[error("this channel cannot pass file descriptors")]
    FdsUnsupported,
    #[error("refusing to send a message the receiver would reject: {0}")]
    Invalid(DecodeError),
}

/// Why a connection ended.
#[derive(Debug, Error)]
pub enum ConnectionError {
    #[error("the other side closed the connection")]
    Closed,
    #[error("I/O error on the channel: {0}")]
    Io(#[from] io::Error),
    #[error("protocol violation: {0}")]
    Decode(#[from] DecodeError),
    #[error("protocol violation: {0}")]
    Session(#[from] SessionViolation),
    #[error("protocol violation: {0}")]
    Pool(#[from] PoolError),
    #[error(
        "protocol violation: more than {MAX_PENDING_FDS} file descriptors sent that no message claimed"
    )]
    TooManyFds,
    #[error("{0}")]
    VersionMismatch(#[from] VersionMismatch),
    #[error("the other side said goodbye: {0}")]
    Goodbye(SanitizedText),
    #[error(transparent)]
    Send(#[from] SendError),
}

impl ConnectionError {
    /// True if the peer broke the protocol (as opposed to closing or an I/O failure).
    pub fn is_violation(&self) -> bool {
        matches!(
            self,
            ConnectionError::Decode(_) | ConnectionError::Session(_) | ConnectionError::TooManyFds
        ) || matches!(self, ConnectionError::Pool(e) if e.is_violation())
            || matches!(self, ConnectionError::Io(e) if e.kind() == io::ErrorKind::InvalidData)
    }
}

/// Limits of one stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamLimits {
    /// Most bytes waiting to be sent before [`SendError::QueueFull`].
    pub max_queued_bytes: usize,
}

impl Default for StreamLimits {
    fn default() -> Self {
        StreamLimits {
            max_queued_bytes: 64 * 1024 * 1024,
        }
    }
}

#[derive(Debug)]
struct OutFrame {
    bytes: Vec<u8>,
    sent: usize,
    /// Sent with the first byte of this frame; dropped once that byte is out.
    fd: Option<OwnedFd>,
}

/// Frames of `In` arriving and frames of `Out` leaving over one transport.
#[derive(Debug)]
pub struct MessageStream<T, In, Out> {
    transport: T,
    /// Receive storage. Bytes `in_start..in_end` are received and not yet decoded; the rest is
    /// zeroed space for the next read. It grows (and is zeroed) only when a frame needs more
    /// room, so a peer that trickles bytes costs no more than the bytes themselves.
    inbuf: Vec<u8>,
    in_start: usize,
    in_end: usize,
    pending_header: Option<Header>,
    fds: VecDeque<OwnedFd>,
    out: VecDeque<OutFrame>,
    queued_bytes: usize,
    limits: StreamLimits,
    _direction: std::marker::PhantomData<(In, Out)>,
}

impl<T: Transport, In: WireMessage, Out: WireMessage> MessageStream<T, In, Out> {
    pub fn new(transport: T, limits: StreamLimits) -> Self {
        MessageStream {
            transport,
            inbuf: Vec::new(),
            in_start: 0,
            in_end: 0,
            pending_header: None,
            fds: VecDeque::new(),
            out: VecDeque::new(),
            queued_bytes: 0,
            limits,
            _direction: std::marker::PhantomData,
        }
    }

    pub fn transport(&self) -> &T {
        &self.transport
    }

    pub fn poll_fd(&self) -> BorrowedFd<'_> {
        self.transport.poll_fd()
    }

    /// Bytes buffered for the frame being received (for accounting and tests).
    pub fn buffered_bytes(&self) -> usize {
        self.in_end - self.in_start
    }

    /// Bytes of receive storage held (received bytes plus zeroed room for the next read).
    pub fn storage_bytes(&self) -> usize {
        self.inbuf.len()
    }

    /// Bytes waiting to be sent.
    pub fn queued_bytes(&self) -> usize {
        self.queued_bytes
    }

    /// Whether there is output waiting for the socket to become writable.
    pub fn wants_write(&self) -> bool {
        !self.out.is_empty()
    }

    /// Blocks up to `timeout` until there is something to do: the transport is readable, or,
    /// while output is queued, writable. Returns false on timeout. For simple loops (tools,
    /// tests); an event loop registers [`MessageStream::poll_fd`] with the same interests. Waiting
    /// for readability alone while output is queued can deadlock: both sides end up waiting to
    /// read while one of them still has bytes to write.
    pub fn wait_ready(&self, timeout: std::time::Duration) -> io::Result<bool> {
        use rustix::event::{PollFd, PollFlags, Timespec, poll};
        let mut interest = PollFlags::IN;
        if self.wants_write() {
            interest |= PollFlags::OUT;
        }
        let fd = self.transport.poll_fd();
        let mut fds = [PollFd::new(&fd, interest)];
        let ts = Timespec {
            tv_sec: timeout.as_secs().try_into().unwrap_or(i64::MAX),
            tv_nsec: timeout.subsec_nanos().into(),
        };
        loop {
            match poll(&mut fds, Some(&ts)) {
                Ok(n) => return Ok(n > 0),
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Takes the oldest received file descriptor that no message has claimed yet.
    pub fn take_fd(&mut self) -> Option<OwnedFd> {
        self.fds.pop_front()
    }

    /// Returns the next complete message, `Ok(None)` if the transport has no more bytes now.
    /// Call again until it returns `Ok(None)`, then wait for the transport's fd to be readable.
    pub fn receive(&mut self) -> Result<Option<In>, ConnectionError> {
        loop {
            if let Some(msg) = self.try_decode()? {
                return Ok(Some(msg));
            }
            let buffered = self.buffered_bytes();
            let needed = match self.pending_header {
                Some(h) => HEADER_BYTES + h.body_len - buffered,
                None => HEADER_BYTES - buffered,
            };
            if self.in_start > 0 {
                self.inbuf.copy_within(self.in_start..self.in_end, 0);
                self.in_end -= self.in_start;
                self.in_start = 0;
            }
            let want = needed.clamp(READ_CHUNK, MAX_READ);
            if self.inbuf.len() < self.in_end + want {
                // Bounded: `needed` never exceeds the current frame, which check_header allowed.
                self.inbuf.resize(self.in_end + want, 0);
            }
            let mut new_fds = Vec::new();
            let result = self.transport.recv(
                &mut self.inbuf[self.in_end..self.in_end + want],
                &mut new_fds,
            );
            self.fds.extend(new_fds);
            if self.fds.len() > MAX_PENDING_FDS {
                return Err(ConnectionError::TooManyFds);
            }
            match result {
                Ok(0) => return Err(ConnectionError::Closed),
                Ok(n) => self.in_end += n.min(want),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn try_decode(&mut self) -> Result<Option<In>, ConnectionError> {
        let available = &self.inbuf[self.in_start..self.in_end];
        let header = match self.pending_header {
            Some(h) => h,
            None => {
                let Some(untrusted_header) = available.get(..HEADER_BYTES) else {
                    return Ok(None);
                };
                let mut raw = [0u8; HEADER_BYTES];
                raw.copy_from_slice(untrusted_header);
                let h = check_header(In::DIRECTION, raw)?;
                self.pending_header = Some(h);
                h
            }
        };
        let total = HEADER_BYTES + header.body_len;
        let Some(frame) = available.get(..total) else {
            return Ok(None);
        };
        let msg = In::decode(header.msg_type, &frame[HEADER_BYTES..])?;
        self.pending_header = None;
        self.in_start += total;
        if self.in_start == self.in_end {
            self.in_start = 0;
            self.in_end = 0;
            // Give back the room a large frame (a clipboard) needed; keep enough for inline
            // pixel writes, which come every frame on channels without shared memory.
            if self.inbuf.len() > KEEP_RECEIVE_STORAGE {
                self.inbuf = Vec::new();
            }
        }
        Ok(Some(msg))
    }

    /// Queues a message. Nothing is written until [`MessageStream::flush`].
    pub fn send(&mut self, msg: &Out) -> Result<(), SendError> {
        self.enqueue(msg, None)
    }

    /// Queues a message whose first byte carries `fd`.
    pub fn send_with_fd(&mut self, msg: &Out, fd: OwnedFd) -> Result<(), SendError> {
        if !self.transport.can_pass_fds() {
            return Err(SendError::FdsUnsupported);
        }
        self.enqueue(msg, Some(fd))
    }

    fn enqueue(&mut self, msg: &Out, fd: Option<OwnedFd>) -> Result<(), SendError> {
        let mut bytes = Vec::new();
        msg.encode(&mut bytes);
        // A value built past a field's limit (a long vector, a text sanitised with a larger
        // limit) would make the receiver cut this connection: refuse it here instead.
        let mut header = [0u8; HEADER_BYTES];
        header.copy_from_slice(&bytes[..HEADER_BYTES]);
        check_header(Out::DIRECTION, header).map_err(SendError::Invalid)?;
        if self.queued_bytes + bytes.len() > self.limits.max_queued_bytes {
            return Err(SendError::QueueFull {
                queued: self.queued_bytes,
                limit: self.limits.max_queued_bytes,
            });
        }
        self.queued_bytes += bytes.len();
        self.out.push_back(OutFrame { bytes, sent: 0, fd });
        Ok(())
    }

    /// Writes queued messages until done (`Ok(true)`) or the transport would block (`Ok(false)`).
    pub fn flush(&mut self) -> Result<bool, ConnectionError> {
        while !self.out.is_empty() {
            let (written, fd_sent) = {
                let mut slices = Vec::with_capacity(MAX_GATHER);
                let mut fds: Vec<BorrowedFd<'_>> = Vec::new();
                for (i, frame) in self.out.iter().take(MAX_GATHER).enumerate() {
                    let fd_pending = frame.sent == 0 && frame.fd.is_some();
                    if i > 0 && fd_pending {
                        // A descriptor must ride on its own frame's first byte: stop here.
                        break;
                    }
                    if let (true, Some(fd)) = (fd_pending, frame.fd.as_ref()) {
                        fds.push(fd.as_fd());
                    }
                    slices.push(IoSlice::new(&frame.bytes[frame.sent..]));
                }
                match self.transport.send(&slices, &fds) {
                    Ok(n) => (n, !fds.is_empty()),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e.into()),
                }
            };
            if written == 0 {
                return Err(ConnectionError::Closed);
            }
            if fd_sent && let Some(front) = self.out.front_mut() {
                front.fd = None;
            }
            let mut left = written;
            while left > 0 {
                let Some(front) = self.out.front_mut() else {
                    break;
                };
                let take = left.min(front.bytes.len() - front.sent);
                front.sent += take;
                left -= take;
                if front.sent == front.bytes.len() {
                    self.queued_bytes -= front.bytes.len();
                    self.out.pop_front();
                }
            }
        }
        Ok(true)
    }
}

/// What the GUI domain got from an agent, after every check.
#[derive(Debug)]
pub struct Received {
    pub message: AgentMessage,
    pub applied: Applied,
}

/// The GUI domain's end of one agent connection.
///
/// It decodes, enforces the session rules, maps pools and applies inline writes, so the
/// compositor sees only messages that passed everything. The qube's identity is *not* here: the
/// compositor attaches it to this connection when it creates the channel (decision 2).
#[derive(Debug)]
pub struct GuiConnection<T> {
    stream: MessageStream<T, AgentMessage, GuiMessage>,
    session: AgentSession,
    mapper: Box<dyn PoolMapper>,
    pools: HashMap<PoolId, Box<dyn PoolMemory>>,
}

impl<T: Transport> GuiConnection<T> {
    pub fn new(transport: T, limits: SessionLimits, stream_limits: StreamLimits) -> Self {
        let capabilities = transport.capabilities();
        Self::with_mapper(
            transport,
            limits,
            stream_limits,
            capabilities,
            Box::new(StandardPoolMapper),
        )
    }

    /// For channels with their own pool memory (Xen grants).
    pub fn with_mapper(
        transport: T,
        limits: SessionLimits,
        stream_limits: StreamLimits,
        capabilities: Capabilities,
        mapper: Box<dyn PoolMapper>,
    ) -> Self {
        GuiConnection {
            stream: MessageStream::new(transport, stream_limits),
            session: AgentSession::new(limits, capabilities),
            mapper,
            pools: HashMap::new(),
        }
    }

    pub fn session(&self) -> &AgentSession {
        &self.session
    }

    pub fn stream(&self) -> &MessageStream<T, AgentMessage, GuiMessage> {
        &self.stream
    }

    pub fn pool(&self, pool: PoolId) -> Option<&dyn PoolMemory> {
        self.pools.get(&pool).map(|p| p.as_ref())
    }

    /// The next message that passed every check, `Ok(None)` when nothing more has arrived.
    /// Any error ends the connection; [`ConnectionError::is_violation`] says whether to tell
    /// the user that the qube misbehaved.
    ///
    /// A `pool_destroy` has already unmapped the pool when it is returned: a caller that reads
    /// pools in place (through [`PoolMemory::as_ptr`]) must drop every view into that pool while
    /// handling the message, before it renders again.
    pub fn receive(&mut self, now: Instant) -> Result<Option<Received>, ConnectionError> {
        let Some(message) = self.stream.receive()? else {
            return Ok(None);
        };
        let applied = match self.session.apply(&message, now) {
            Ok(applied) => applied,
            Err(SessionViolation::Version(mismatch)) => {
                // Refuse cleanly: tell the agent why before closing.
                let reason = SanitizedText::sanitize(&mismatch.to_string(), MAX_REASON_BYTES);
                let _ = self.stream.send(&GuiMessage::Goodbye { reason });
                let _ = self.stream.flush();
                return Err(ConnectionError::VersionMismatch(mismatch));
            }
            Err(violation) => return Err(violation.into()),
        };
        match &message {
            AgentMessage::PoolCreate {
                pool,
                size,
                backing,
            } => {
                let fd = match backing {
                    PoolBacking::MemFd => Some(self.stream.take_fd().ok_or(PoolError::MissingFd)?),
                    _ => None,
                };
                let memory = self.mapper.map_pool(*pool, *size, backing, fd)?;
                self.pools.insert(*pool, memory);
            }
            AgentMessage::PoolWrite { pool, pixels, .. } => {
                let memory = self
                    .pools
                    .get_mut(pool)
                    .ok_or(PoolError::NotInline(*pool))?;
                memory.write_inline(pixels)?;
            }
            AgentMessage::PoolDestroy { pool } => {
                self.pools.remove(pool);
                self.stream
                    .send(&GuiMessage::PoolReleased { pool: *pool })
                    .map_err(ConnectionError::Send)?;
            }
            AgentMessage::Goodbye { reason } => {
                return Err(ConnectionError::Goodbye(reason.clone()));
            }
            _ => {}
        }
        Ok(Some(Received { message, applied }))
    }

    pub fn send(&mut self, msg: &GuiMessage) -> Result<(), SendError> {
        self.stream.send(msg)
    }

    pub fn flush(&mut self) -> Result<bool, ConnectionError> {
        self.stream.flush()
    }
}

/// The agent's end of the connection.
#[derive(Debug)]
pub struct AgentConnection<T> {
    stream: MessageStream<T, GuiMessage, AgentMessage>,
    negotiated: Option<(Version, Capabilities)>,
}

impl<T: Transport> AgentConnection<T> {
    pub fn new(transport: T, stream_limits: StreamLimits) -> Self {
        AgentConnection {
            stream: MessageStream::new(transport, stream_limits),
            negotiated: None,
        }
    }

    /// Capabilities the agent can use on this transport.
    pub fn offered_capabilities(&self) -> Capabilities {
        self.stream.transport().capabilities()
    }

    /// Queues the hello. Call first.
    pub fn send_hello(&mut self) -> Result<(), SendError> {
        let capabilities = self.offered_capabilities();
        self.stream.send(&AgentMessage::Hello {
            version: Version::CURRENT,
            capabilities,
        })
    }

    /// The negotiated version and capabilities once `Welcome` arrived.
    pub fn negotiated(&self) -> Option<(Version, Capabilities)> {
        self.negotiated
    }

    pub fn stream(&self) -> &MessageStream<T, GuiMessage, AgentMessage> {
        &self.stream
    }

    /// The next message from the GUI domain. `Welcome` is checked and recorded; `Goodbye`
    /// ends the connection with the GUI domain's reason.
    pub fn receive(&mut self) -> Result<Option<GuiMessage>, ConnectionError> {
        let Some(msg) = self.stream.receive()? else {
            return Ok(None);
        };
        match &msg {
            GuiMessage::Welcome { .. } if self.negotiated.is_some() => {
                return Err(DecodeError::invalid("welcome", "sent a second time").into());
            }
            GuiMessage::Welcome {
                version,
                capabilities,
                ..
            } => {
                let version = negotiate_version(Version::CURRENT, *version)?;
                self.negotiated = Some((version, *capabilities & self.offered_capabilities()));
            }
            GuiMessage::Goodbye { reason } => return Err(ConnectionError::Goodbye(reason.clone())),
            _ => {}
        }
        Ok(Some(msg))
    }

    pub fn send(&mut self, msg: &AgentMessage) -> Result<(), SendError> {
        self.stream.send(msg)
    }

    /// Announces a memfd pool and passes its descriptor.
    pub fn send_memfd_pool(
        &mut self,
        pool: PoolId,
        memory: &SharedMemfd,
    ) -> Result<(), ConnectionError> {
        let fd = memory.fd()?;
        self.stream.send_with_fd(
            &AgentMessage::PoolCreate {
                pool,
                size: memory.bytes().len() as u64,
                backing: PoolBacking::MemFd,
            },
            fd,
        )?;
        Ok(())
    }

    pub fn flush(&mut self) -> Result<bool, ConnectionError> {
        self.stream.flush()
    }
}

/// Builds the `pool_write` messages that carry the damaged parts of a buffer inline.
///
/// `pool_bytes` is the agent's own copy of the whole pool; `layout` is where the buffer lies in
/// it. Each rectangle is clipped to the buffer and split into writes of at most
/// [`MAX_INLINE_PIXEL_BYTES`].
pub fn inline_writes(
    pool: PoolId,
    pool_bytes: &[u8],
    layout: BufferLayout,
    damage: &[Rect],
    compression: Compression,
) -> Result<Vec<AgentMessage>, DecodeError> {
    let bpp = PixelFormat::BYTES_PER_PIXEL as usize;
    let mut messages = Vec::new();
    for rect in damage {
        let Some(rect) = rect.clamp_to(layout.size().width(), layout.size().height()) else {
            continue;
        };
        let row_bytes = rect.width() as usize * bpp;
        let rows_per_write = (MAX_INLINE_PIXEL_BYTES / row_bytes).max(1);
        let mut row = 0usize;
        while row < rect.height() as usize {
            let rows = rows_per_write.min(rect.height() as usize - row);
            let first_offset = layout.offset() as usize
                + (rect.y() as usize + row) * layout.stride() as usize
                + rect.x() as usize * bpp;
            let mut data = Vec::with_capacity(rows * row_bytes);
            for r in 0..rows {
                let start = first_offset + r * layout.stride() as usize;
                let src = pool_bytes.get(start..start + row_bytes).ok_or_else(|| {
                    DecodeError::invalid(
                        "inline pixels",
                        "damage lies outside the agent's pool copy",
                    )
                })?;
                data.extend_from_slice(src);
            }
            messages.push(AgentMessage::PoolWrite {
                pool,
                pixels: InlinePixels::new(
                    first_offset as u64,
                    layout.stride(),
                    crate::wire::len_u32(row_bytes),
                    crate::wire::len_u32(rows),
                    data,
                )?,
                compression,
            });
            row += rows;
        }
    }
    Ok(messages)
}
