//! The hostile qube's "agent" process: it only hands the channel the compositor gave it back to
//! the test process, which then plays the qube itself.
//!
//! The relay connects to `$CORRAL_E2E_DIR/relay.sock`, sends its qube name with the channel's
//! descriptor (`SCM_RIGHTS`), and then waits for the compositor to end it (it dies with the
//! compositor through `PR_SET_PDEATHSIG`, or is killed when its qube is cut off). Its own copy
//! of the channel is closed first, so the channel's life is the test's copy only.

use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::{Duration, Instant};

use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags, recvmsg, sendmsg,
};

/// Name of the relay socket in the case's directory.
pub const SOCKET: &str = "relay.sock";

pub fn run(fd: i32, qube: &str, dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let channel = corral_protocol::channel::unix::adopt_inherited(fd)?;
    let relay = UnixStream::connect(dir.join(SOCKET))?;
    send_fd(&relay, qube.as_bytes(), channel.as_fd())?;
    drop(channel);
    // Wait to be killed, with a bounded life in case nothing ever does.
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(300) {
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(())
}

/// Sends `bytes` with one descriptor attached.
pub fn send_fd(
    socket: &UnixStream,
    bytes: &[u8],
    fd: std::os::fd::BorrowedFd<'_>,
) -> std::io::Result<usize> {
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    let fds = [fd];
    control.push(SendAncillaryMessage::ScmRights(&fds));
    Ok(sendmsg(
        socket,
        &[IoSlice::new(bytes)],
        &mut control,
        SendFlags::NOSIGNAL,
    )?)
}

/// Accepts one relay connection on `listener` (within `timeout`) and returns the qube name and
/// the channel.
pub fn accept(listener: &UnixListener, timeout: Duration) -> std::io::Result<(String, UnixStream)> {
    listener.set_nonblocking(true)?;
    let deadline = Instant::now() + timeout;
    let stream = loop {
        match listener.accept() {
            Ok((s, _)) => break s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if Instant::now() > deadline {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "no relay connected",
                    ));
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(e),
        }
    };
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(timeout))?;
    let mut buf = [0u8; 64];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let got = recvmsg(
        &stream,
        &mut [IoSliceMut::new(&mut buf)],
        &mut control,
        RecvFlags::CMSG_CLOEXEC,
    )?;
    let mut fd: Option<OwnedFd> = None;
    for message in control.drain() {
        if let RecvAncillaryMessage::ScmRights(mut fds) = message {
            fd = fds.next();
        }
    }
    let fd = fd.ok_or_else(|| std::io::Error::other("the relay sent no descriptor"))?;
    let name = String::from_utf8_lossy(&buf[..got.bytes]).into_owned();
    Ok((name, UnixStream::from(fd)))
}
