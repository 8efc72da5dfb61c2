//! The `unix` channel: a stream Unix socket (one end of a socketpair handed to the agent), with
//! pools as sealed memfds passed by SCM_RIGHTS.

use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;

use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags, recvmsg, sendmsg,
};

use super::Transport;
use crate::limits::MAX_PENDING_FDS;

/// Most descriptors one `sendmsg` may carry; one message never needs more than one.
const MAX_FDS_PER_SEND: usize = 4;

/// A non-blocking stream Unix socket that can pass file descriptors.
#[derive(Debug)]
pub struct UnixTransport {
    socket: UnixStream,
}

impl UnixTransport {
    /// Wraps a connected stream socket and makes it non-blocking.
    pub fn new(socket: UnixStream) -> io::Result<Self> {
        socket.set_nonblocking(true)?;
        Ok(UnixTransport { socket })
    }

    /// A connected pair: one end for the GUI domain, one to hand to the agent.
    pub fn pair() -> io::Result<(Self, UnixStream)> {
        let (ours, theirs) = UnixStream::pair()?;
        Ok((Self::new(ours)?, theirs))
    }

    pub fn socket(&self) -> &UnixStream {
        &self.socket
    }
}

impl Transport for UnixTransport {
    fn send(&mut self, bufs: &[IoSlice<'_>], fds: &[BorrowedFd<'_>]) -> io::Result<usize> {
        if fds.len() > MAX_FDS_PER_SEND {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "too many fds in one send",
            ));
        }
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS_PER_SEND))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        if !fds.is_empty() && !control.push(SendAncillaryMessage::ScmRights(fds)) {
            return Err(io::Error::other("ancillary buffer too small"));
        }
        // MSG_NOSIGNAL: a peer that went away is an error to handle, not a signal to die of.
        Ok(sendmsg(
            &self.socket,
            bufs,
            &mut control,
            SendFlags::NOSIGNAL | SendFlags::DONTWAIT,
        )?)
    }

    fn recv(&mut self, buf: &mut [u8], fds: &mut Vec<OwnedFd>) -> io::Result<usize> {
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_PENDING_FDS))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let received = recvmsg(
            &self.socket,
            &mut [IoSliceMut::new(buf)],
            &mut control,
            RecvFlags::CMSG_CLOEXEC | RecvFlags::DONTWAIT,
        )?;
        for message in control.drain() {
            if let RecvAncillaryMessage::ScmRights(received_fds) = message {
                fds.extend(received_fds);
            }
        }
        if received.flags.contains(ReturnFlags::CTRUNC) {
            // The kernel dropped descriptors that did not fit: the peer sent more than any
            // message needs. Their loss would desynchronise fds from messages, so it is fatal.
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "peer sent more file descriptors at once than the protocol allows",
            ));
        }
        Ok(received.bytes)
    }

    fn can_pass_fds(&self) -> bool {
        true
    }

    fn poll_fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }
}

/// Makes `end` survive `exec` so a child process (an agent, started with
/// `--gui-fd <number>`) inherits it; returns the number to pass. Call right before spawning the
/// child, and drop `end` in the parent right after: no other thread should spawn in between.
pub fn share_with_child(end: &UnixStream) -> io::Result<i32> {
    use std::os::fd::AsRawFd;
    rustix::io::fcntl_setfd(end, rustix::io::FdFlags::empty())?;
    Ok(end.as_raw_fd())
}

/// Takes ownership of the GUI channel end that the parent passed as `--gui-fd <raw>`. Checks
/// that the number is an open Unix stream socket before owning it, and sets close-on-exec again
/// so the apps the agent starts do not inherit the channel.
pub fn adopt_inherited(raw: i32) -> io::Result<UnixStream> {
    use std::os::fd::FromRawFd;
    if raw < 3 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("fd {raw} is a standard stream, not a channel"),
        ));
    }
    // SAFETY: `borrow_raw` requires the fd to stay open while borrowed. The parent passed this
    // number for us to inherit; nothing else in this process owns it or closes it during these
    // two calls. If the number is not an open fd the calls fail with EBADF, which is returned.
    let borrowed = unsafe { BorrowedFd::borrow_raw(raw) };
    let stat = rustix::fs::fstat(borrowed)?;
    if rustix::fs::FileType::from_raw_mode(stat.st_mode) != rustix::fs::FileType::Socket {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("fd {raw} is not a socket"),
        ));
    }
    rustix::io::fcntl_setfd(borrowed, rustix::io::FdFlags::CLOEXEC)?;
    // SAFETY: the fd is open (fstat succeeded) and is a socket, and this is the single place
    // that takes ownership of it; the caller passes each inherited number only once.
    Ok(unsafe { UnixStream::from_raw_fd(raw) })
}

/// Waits up to `timeout` for `fd` to become readable. Returns false on timeout.
pub fn wait_readable(fd: BorrowedFd<'_>, timeout: std::time::Duration) -> io::Result<bool> {
    use rustix::event::{PollFd, PollFlags, Timespec, poll};
    let mut fds = [PollFd::new(&fd, PollFlags::IN)];
    let ts = Timespec {
        tv_sec: timeout.as_secs() as _,
        tv_nsec: timeout.subsec_nanos() as _,
    };
    loop {
        match poll(&mut fds, Some(&ts)) {
            Ok(n) => return Ok(n > 0),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}
