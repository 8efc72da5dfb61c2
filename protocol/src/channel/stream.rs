//! A transport over any byte stream that cannot pass file descriptors: AF_VSOCK between a KVM
//! guest and its host, or (in tests) a Unix socket standing in for it. Pixels travel inline,
//! in `pool_write` messages, optionally LZ4-compressed.

use std::io::{self, IoSlice, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use super::Transport;

/// Wraps a non-blocking stream. The caller sets the stream non-blocking.
#[derive(Debug)]
pub struct StreamTransport<S> {
    stream: S,
}

impl<S> StreamTransport<S> {
    pub fn new(stream: S) -> Self {
        StreamTransport { stream }
    }

    pub fn get_ref(&self) -> &S {
        &self.stream
    }
}

impl<S: Read + Write + AsFd + std::fmt::Debug> Transport for StreamTransport<S> {
    fn send(&mut self, bufs: &[IoSlice<'_>], fds: &[BorrowedFd<'_>]) -> io::Result<usize> {
        if !fds.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "this channel cannot pass file descriptors; use inline pools",
            ));
        }
        self.stream.write_vectored(bufs)
    }

    fn recv(&mut self, buf: &mut [u8], _fds: &mut Vec<OwnedFd>) -> io::Result<usize> {
        self.stream.read(buf)
    }

    fn can_pass_fds(&self) -> bool {
        false
    }

    fn poll_fd(&self) -> BorrowedFd<'_> {
        self.stream.as_fd()
    }
}
