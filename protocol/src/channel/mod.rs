//! Channels: an ordered message stream between an agent and the GUI domain, plus a way to share
//! pixel memory.
//!
//! - [`Transport`] moves bytes (and, where the transport can, file descriptors). Implementations:
//!   [`unix::UnixTransport`] (socketpair end, memfds by SCM_RIGHTS), [`stream::StreamTransport`]
//!   (any byte stream without fd passing: vsock, or a Unix socket standing in for it), and the
//!   Xen vchan transport behind the `xen` feature.
//! - [`PoolMemory`] is pixel memory the GUI domain reads: a read-only mapping of a sealed memfd,
//!   a local buffer filled by inline writes, or mapped Xen grants.
//! - [`MessageStream`] frames messages over a transport with non-blocking I/O and bounded
//!   queues; [`GuiConnection`] and [`AgentConnection`] are the two ends built on it.

use std::fmt;
use std::io::{self, IoSlice};
use std::os::fd::{BorrowedFd, OwnedFd};

use crate::types::Capabilities;

mod connection;
pub mod pool;
pub mod stream;
pub mod unix;
#[cfg(feature = "vsock")]
pub mod vsock;
#[cfg(feature = "xen")]
pub mod xen;

pub use connection::{
    AgentConnection, ConnectionError, GuiConnection, MessageStream, Received, SendError,
    StreamLimits, WireMessage, inline_writes,
};
pub use pool::{PoolError, PoolMapper, PoolMemory, StandardPoolMapper};

/// A reliable, ordered byte stream to the peer, used non-blocking.
///
/// `send` and `recv` must never block: with nothing to do they return
/// [`io::ErrorKind::WouldBlock`]. The connection above polls [`Transport::poll_fd`] for
/// readability (calloop or `poll(2)`) before calling `recv` again.
pub trait Transport: fmt::Debug {
    /// Sends a prefix of the concatenation of `bufs`. If `fds` is not empty, they travel with
    /// the first byte sent by this call; a transport that cannot pass fds returns an error of
    /// kind [`io::ErrorKind::Unsupported`] instead of dropping them.
    fn send(&mut self, bufs: &[IoSlice<'_>], fds: &[BorrowedFd<'_>]) -> io::Result<usize>;

    /// Receives up to `buf.len()` bytes. File descriptors that arrive are appended to `fds`.
    /// `Ok(0)` means the peer closed the stream.
    fn recv(&mut self, buf: &mut [u8], fds: &mut Vec<OwnedFd>) -> io::Result<usize>;

    /// Whether file descriptors can travel on this transport (memfd pools need it).
    fn can_pass_fds(&self) -> bool;

    /// The descriptor to wait on for readability.
    fn poll_fd(&self) -> BorrowedFd<'_>;

    /// The capabilities a side can use on this transport: both ends offer these in the
    /// handshake. Every transport carries inline (optionally LZ4) pixels, PNG clipboard data and
    /// notifications;
    /// memfd pools need fd passing; transports with their own shared memory (Xen grants) add it.
    fn capabilities(&self) -> Capabilities {
        let mut caps = Capabilities::INLINE_PIXELS
            | Capabilities::LZ4
            | Capabilities::CLIPBOARD_PNG
            | Capabilities::NOTIFICATIONS;
        if self.can_pass_fds() {
            caps |= Capabilities::MEMFD_POOLS;
        }
        caps
    }
}
