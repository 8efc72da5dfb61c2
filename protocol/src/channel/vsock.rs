//! The `vsock` channel for qubes that are KVM virtual machines: the same messages over
//! AF_VSOCK. vsock cannot pass file descriptors, so agents use inline pools.
//!
//! Not exercised on the development machines (they have no vsock between VMs); the byte path it
//! shares with [`super::stream::StreamTransport`] is tested over a Unix socket.

use std::io;

use vsock::{VsockListener, VsockStream};

use super::stream::StreamTransport;

/// The port the GUI domain listens on for agents.
pub const DEFAULT_PORT: u32 = 6000;

/// Agent side: connects to the GUI domain (the host, CID 2) on `port`.
pub fn connect_to_host(port: u32) -> io::Result<StreamTransport<VsockStream>> {
    let stream = VsockStream::connect_with_cid_port(vsock::VMADDR_CID_HOST, port)?;
    stream.set_nonblocking(true)?;
    Ok(StreamTransport::new(stream))
}

/// GUI side: listens for agents on `port`. The peer's CID identifies the qube (decision 2):
/// the domain manager assigned it when it started that VM.
pub fn listen(port: u32) -> io::Result<VsockListener> {
    VsockListener::bind_with_cid_port(vsock::VMADDR_CID_ANY, port)
}

/// Accepts one agent: returns its transport and the CID it connected from.
pub fn accept(listener: &VsockListener) -> io::Result<(StreamTransport<VsockStream>, u32)> {
    let (stream, addr) = listener.accept()?;
    stream.set_nonblocking(true)?;
    Ok((StreamTransport::new(stream), addr.cid()))
}
