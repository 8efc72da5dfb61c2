//! The hostile qube, played by the test process on the channel the relay handed over: it writes
//! frames byte by byte ([`crate::wire`]), passes descriptors as it likes, reads what the GUI
//! domain sends (decoded with the reference decoder, only to look at it), or stops reading.

use std::io::{IoSlice, Read, Write};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use corral_protocol::GuiMessage;
use corral_protocol::channel::pool::SharedMemfd;
use rustix::fs::{MemfdFlags, SealFlags};
use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags, sendmsg};

use crate::wire;

/// Capabilities a `unix` agent asks for: MEMFD_POOLS | INLINE_PIXELS | LZ4 | CLIPBOARD_PNG.
pub const CAPS: u32 = 0x17;
/// Version 1.0.
pub const V1_0: u32 = 0x0001_0000;

/// One hostile connection.
#[derive(Debug)]
pub struct Hostile {
    pub qube: String,
    pub sock: UnixStream,
    rx: Vec<u8>,
    /// Everything the GUI domain sent so far, in order.
    pub received: Vec<GuiMessage>,
    /// The GUI domain closed the channel.
    pub closed: bool,
}

impl Hostile {
    pub fn new(qube: String, sock: UnixStream) -> Hostile {
        sock.set_write_timeout(Some(Duration::from_secs(10))).ok();
        Hostile {
            qube,
            sock,
            rx: Vec::new(),
            received: Vec::new(),
            closed: false,
        }
    }

    /// Writes bytes as they are. An error means the GUI domain closed the channel (it cut us
    /// off); most cases ignore it and look at the outcome instead.
    pub fn raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.sock.write_all(bytes)
    }

    /// Writes `bytes` with descriptors attached to their first byte (`SCM_RIGHTS`).
    pub fn raw_with_fds(&mut self, bytes: &[u8], fds: &[BorrowedFd<'_>]) -> std::io::Result<()> {
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(16))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        assert!(control.push(SendAncillaryMessage::ScmRights(fds)));
        let sent = sendmsg(
            &self.sock,
            &[IoSlice::new(bytes)],
            &mut control,
            SendFlags::NOSIGNAL,
        )?;
        self.sock.write_all(&bytes[sent..])
    }

    /// `hello` 1.0, then waits for `welcome`.
    pub fn hello(&mut self) {
        self.raw(&wire::hello(V1_0, CAPS)).unwrap();
        assert!(
            self.wait_for(Duration::from_secs(10), |m| matches!(
                m,
                GuiMessage::Welcome { .. }
            )),
            "{}: no welcome",
            self.qube
        );
    }

    /// Reads whatever has arrived within `timeout` (at least one poll), decoding frames.
    pub fn pump(&mut self, timeout: Duration) {
        if self.closed {
            return;
        }
        let deadline = Instant::now() + timeout;
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            self.sock
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .ok();
            match self.sock.read(&mut buf) {
                Ok(0) => {
                    self.closed = true;
                    break;
                }
                Ok(n) => {
                    self.rx.extend_from_slice(&buf[..n]);
                    while let Some((msg, used)) = corral_protocol::codec::decode_gui_frame(&self.rx)
                        .expect("the GUI domain sent a malformed message")
                    {
                        self.rx.drain(..used);
                        self.received.push(msg);
                    }
                    // Keep reading what is already there, without waiting again.
                    if Instant::now() >= deadline {
                        self.sock
                            .set_read_timeout(Some(Duration::from_millis(1)))
                            .ok();
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    if Instant::now() >= deadline {
                        break;
                    }
                }
                Err(_) => {
                    self.closed = true;
                    break;
                }
            }
        }
    }

    /// Reads until a received message satisfies `f` (true) or `timeout` passes (false).
    pub fn wait_for(&mut self, timeout: Duration, f: impl Fn(&GuiMessage) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.received.iter().any(&f) {
                return true;
            }
            if self.closed || Instant::now() > deadline {
                return false;
            }
            self.pump(Duration::from_millis(50));
        }
    }

    /// Reads until the GUI domain closes the channel; true if it did within `timeout`.
    pub fn wait_closed(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while !self.closed && Instant::now() < deadline {
            self.pump(Duration::from_millis(50));
        }
        self.closed
    }

    /// Whether any input event reached this qube.
    pub fn saw_input(&self) -> Vec<String> {
        self.received
            .iter()
            .filter(|m| {
                matches!(
                    m,
                    GuiMessage::Key { .. }
                        | GuiMessage::KeyboardEnter { .. }
                        | GuiMessage::Modifiers { .. }
                        | GuiMessage::PointerButton { .. }
                        | GuiMessage::PointerAxis { .. }
                )
            })
            .map(|m| format!("{m:?}"))
            .collect()
    }

    /// Creates window `id` with a `w × h` opaque buffer of `rgb` in its own sealed memfd pool
    /// (pool id = window id), damages it all, commits and maps it. Returns the pool memory.
    pub fn window(&mut self, id: u32, w: u32, h: u32, rgb: u32) -> SharedMemfd {
        let mut memfd = SharedMemfd::create(u64::from(w * h * 4)).unwrap();
        memfd.bytes_mut().copy_from_slice(&wire::solid(w, h, rgb));
        self.raw(&wire::create_toplevel(id)).unwrap();
        self.raw(&wire::set_title(id, b"Evil")).unwrap();
        self.pool_memfd(id, &memfd);
        self.raw(&wire::attach(id, id, 0, w, h, w * 4, wire::XRGB8888))
            .unwrap();
        self.raw(&wire::damage(id, &[(0, 0, w, h)])).unwrap();
        self.raw(&wire::commit(id, 1)).unwrap();
        self.raw(&wire::window_only(wire::ty::MAP, id)).unwrap();
        memfd
    }

    /// Announces a memfd pool with the descriptor of `memfd`.
    pub fn pool_memfd(&mut self, pool: u32, memfd: &SharedMemfd) {
        let fd = memfd.fd().unwrap();
        let size = memfd.bytes().len() as u64;
        self.raw_with_fds(
            &wire::pool_create(pool, size, wire::BACKING_MEMFD),
            &[fd.as_fd()],
        )
        .unwrap();
    }
}

/// A memfd of `size` bytes with exactly `seals` (none, or some of them).
pub fn memfd(size: u64, seals: SealFlags) -> OwnedFd {
    let fd = rustix::fs::memfd_create(
        "hostile-pool",
        MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
    )
    .unwrap();
    rustix::fs::ftruncate(&fd, size).unwrap();
    if !seals.is_empty() {
        rustix::fs::fcntl_add_seals(&fd, seals).unwrap();
    }
    fd
}
