//! The admin API: JSON lines over a Unix stream socket.
//!
//! Each request is one JSON object on one line (at most [`MAX_REQUEST`] bytes), answered by one
//! line: `{"ok": VALUE}` or `{"error": {"kind": KIND, "message": TEXT}}`. A `run` with
//! `pass_io` carries the caller's stdin, stdout and stderr as SCM_RIGHTS on the request's bytes;
//! its answer comes when the command exits: `{"ok": {"exit": CODE}}`.

use std::io::{self, IoSlice, IoSliceMut, Write};
use std::mem::MaybeUninit;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;

use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};
use serde::{Deserialize, Serialize};

/// Largest request line the manager reads.
pub const MAX_REQUEST: usize = 64 * 1024;
/// Largest reply line a client reads.
pub const MAX_REPLY: usize = 16 << 20;
/// Most fds one request may carry.
pub const MAX_FDS: usize = 3;

/// A request to the domain manager.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Request {
    /// All qubes with their state: a list of [`QubeInfo`].
    List,
    Create {
        name: String,
        class: String,
        template: Option<String>,
        label: String,
        netvm: Option<String>,
    },
    Clone {
        src: String,
        dst: String,
    },
    Rename {
        old: String,
        new: String,
    },
    Remove {
        name: String,
    },
    /// Without key: all rows; with key: one row; with key and value: set it.
    Prefs {
        name: String,
        key: Option<String>,
        value: Option<String>,
    },
    /// Without key: all; with key: one; with value: set it; with delete: remove it.
    Features {
        name: String,
        key: Option<String>,
        value: Option<String>,
        #[serde(default)]
        delete: bool,
    },
    /// Global defaults (qubes-prefs).
    Globals {
        key: Option<String>,
        value: Option<String>,
    },
    Labels,
    AddLabel {
        name: String,
        color: String,
    },
    Start {
        name: String,
    },
    Shutdown {
        name: String,
        #[serde(default)]
        wait: bool,
        timeout_s: Option<u64>,
        /// Shut down a netvm even though running qubes use it.
        #[serde(default)]
        force: bool,
    },
    /// A qube's firewall rules, as canonical rule texts, numbered from 0 by position.
    FirewallList {
        name: String,
    },
    /// Adds a rule (`action=accept proto=tcp dstports=443 …`) at the end, or before rule
    /// `before`.
    FirewallAdd {
        name: String,
        rule: String,
        before: Option<usize>,
    },
    FirewallDel {
        name: String,
        index: usize,
    },
    /// Back to the default list (a single accept).
    FirewallReset {
        name: String,
    },
    Kill {
        name: String,
    },
    Pause {
        name: String,
    },
    Unpause {
        name: String,
    },
    /// Builds a Debian TemplateVM with debootstrap; answered by `progress` lines, then the
    /// final reply.
    TemplateInstall {
        name: String,
        suite: Option<String>,
        mirror: Option<String>,
        label: Option<String>,
    },
    /// The applications `name` offers (from its template's root): a list of
    /// [`crate::apps::AppEntry`].
    Apps {
        name: String,
    },
    /// Starts application `app` of `name` (the qube is started first if needed); with
    /// `dispvm`, in a new disposable whose disposable template is `name`. Answered like a
    /// `run` without `pass_io`.
    Launch {
        name: String,
        app: String,
        #[serde(default)]
        dispvm: bool,
    },
    /// Runs a command in `name` (started if needed); with `dispvm`, in a new disposable whose
    /// disposable template is `name` (none: the default_dispvm), destroyed when it exits.
    Run {
        name: Option<String>,
        #[serde(default)]
        dispvm: bool,
        argv: Vec<String>,
        #[serde(default)]
        pass_io: bool,
        /// As the qube's root with the network capabilities only (the qube needs the
        /// `net-admin` feature; see `docs/networking.md`).
        #[serde(default)]
        root: bool,
    },
}

/// One qube as `ls` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QubeInfo {
    pub name: String,
    pub class: String,
    pub state: String,
    pub label: String,
    pub color: String,
    pub template: Option<String>,
    pub netvm: Option<String>,
}

/// An error reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorReply {
    /// A stable machine-readable kind: `bad-request`, `no-such-qube`, `invalid`, `in-use`,
    /// `state`, `backend`, `store`.
    pub kind: String,
    pub message: String,
}

/// A reply line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Reply {
    Ok(serde_json::Value),
    Error(ErrorReply),
    /// An intermediate report of a long request (`template-install`); the final reply follows.
    Progress(String),
}

/// Reads one line (without the newline) and any fds sent with it. Returns `None` at EOF
/// before any byte. Lines longer than `max` are an error.
#[derive(Debug)]
pub struct LineReader {
    buf: Vec<u8>,
    fds: Vec<OwnedFd>,
}

impl Default for LineReader {
    fn default() -> Self {
        Self::new()
    }
}

impl LineReader {
    pub fn new() -> Self {
        LineReader {
            buf: Vec::new(),
            fds: Vec::new(),
        }
    }

    /// The next line and the fds that came with it (fds received while reading it).
    pub fn read_line(
        &mut self,
        sock: &UnixStream,
        max: usize,
    ) -> io::Result<Option<(Vec<u8>, Vec<OwnedFd>)>> {
        loop {
            if let Some(pos) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=pos).take(pos).collect();
                return Ok(Some((line, std::mem::take(&mut self.fds))));
            }
            if self.buf.len() > max {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("request longer than {max} bytes"),
                ));
            }
            let mut chunk = [0u8; 8192];
            let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
            let mut anc = RecvAncillaryBuffer::new(&mut space);
            let mut iov = [IoSliceMut::new(&mut chunk)];
            let got = rustix::net::recvmsg(sock, &mut iov, &mut anc, RecvFlags::CMSG_CLOEXEC)?;
            for msg in anc.drain() {
                if let RecvAncillaryMessage::ScmRights(fds) = msg {
                    self.fds.extend(fds);
                }
            }
            if self.fds.len() > MAX_FDS {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "too many fds"));
            }
            if got.bytes == 0 {
                if self.buf.is_empty() {
                    return Ok(None);
                }
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "truncated line",
                ));
            }
            self.buf.extend_from_slice(&chunk[..got.bytes]);
        }
    }
}

/// Writes `value` as one JSON line, with `fds` attached to its first byte.
pub fn send_line<T: Serialize>(
    sock: &UnixStream,
    value: &T,
    fds: &[BorrowedFd<'_>],
) -> io::Result<()> {
    let mut line = serde_json::to_vec(value).map_err(io::Error::other)?;
    line.push(b'\n');
    let mut start = 0;
    if !fds.is_empty() {
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
        let mut anc = SendAncillaryBuffer::new(&mut space);
        if !anc.push(SendAncillaryMessage::ScmRights(fds)) {
            return Err(io::Error::other("too many fds"));
        }
        start = rustix::net::sendmsg(sock, &[IoSlice::new(&line)], &mut anc, SendFlags::NOSIGNAL)?;
    }
    let mut s = sock;
    s.write_all(&line[start..])
}
