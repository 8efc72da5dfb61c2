//! The hypervisor backend trait. The domain manager talks only to this; the `sandbox` backend
//! implements it with Linux namespaces, and a `xen` backend can implement it with libxl later.

use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::process::Child;
use std::time::Duration;

use thiserror::Error;

use crate::QubeName;

/// How a volume is presented to a running qube.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VolumeSpec {
    /// Writable, changes persist (a template's or standalone's root, a private volume).
    Persistent(PathBuf),
    /// A copy-on-write view of `lower`; changes are discarded at stop (an AppVM's root, a
    /// disposable's root and home).
    Volatile { lower: PathBuf },
    /// An empty volume discarded at stop.
    Empty,
}

/// Everything a backend needs to start a qube.
#[derive(Debug, Clone)]
pub struct StartSpec {
    pub name: QubeName,
    pub qid: u32,
    /// The root filesystem.
    pub root: VolumeSpec,
    /// `/home/user`.
    pub home: VolumeSpec,
    /// Memory and vCPUs; the sandbox backend does not enforce them yet.
    pub memory_mb: u32,
    pub vcpus: u32,
    /// The qube may manage its own network (feature `net-admin`): its root (see
    /// [`Backend::exec_root`]) gets CAP_NET_ADMIN over the qube's own network namespace, and
    /// the sandbox backend gives it `/dev/net/tun`. For VPN qubes (`docs/networking.md`).
    pub net_admin: bool,
}

/// Power state, as `qvm-ls` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum PowerState {
    Halted,
    Running,
    Paused,
}

/// The three standard streams of a command run in a qube.
#[derive(Debug)]
pub struct Stdio3 {
    pub stdin: Option<OwnedFd>,
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
}

impl Stdio3 {
    /// All three to /dev/null.
    pub fn null() -> Self {
        Stdio3 {
            stdin: None,
            stdout: None,
            stderr: None,
        }
    }
}

/// Why a backend operation failed.
#[derive(Debug, Error)]
pub enum BackendError {
    #[error("{0} is not running")]
    NotRunning(String),
    #[error("{0} is already running")]
    AlreadyRunning(String),
    #[error("{0} is paused")]
    Paused(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Failed(String),
    #[error("not supported by this backend here: {0}")]
    Unsupported(String),
}

/// A hypervisor backend.
pub trait Backend: Send + Sync + std::fmt::Debug {
    /// A short name (`sandbox`, `xen`).
    fn kind(&self) -> &'static str;
    /// Creates the volume of a new empty template (`host`-style: an empty tree whose `/usr`
    /// comes from the host).
    fn init_template_root(&self, root: &std::path::Path) -> Result<(), BackendError>;
    /// Starts a qube; returns when it can run commands.
    fn start(&self, spec: &StartSpec) -> Result<(), BackendError>;
    fn state(&self, name: &QubeName) -> PowerState;
    /// Asks every process to stop; kills what is left after `timeout`; returns when none is.
    fn shutdown(&self, name: &QubeName, timeout: Duration) -> Result<(), BackendError>;
    /// Kills every process of the qube now; returns when none is left.
    fn kill(&self, name: &QubeName) -> Result<(), BackendError>;
    fn pause(&self, name: &QubeName) -> Result<(), BackendError>;
    fn unpause(&self, name: &QubeName) -> Result<(), BackendError>;
    /// Runs `argv` in a running qube as its user, with the given stdio. `extra_fds` become fds
    /// 3, 4, … in the command (the GUI channel is passed this way).
    fn exec(
        &self,
        name: &QubeName,
        argv: &[String],
        stdio: Stdio3,
        extra_fds: Vec<OwnedFd>,
    ) -> Result<Child, BackendError>;
    /// Runs `argv` in a running qube as its root with the network capabilities only
    /// (CAP_NET_ADMIN, CAP_NET_RAW, CAP_NET_BIND_SERVICE), valid over the qube's own namespaces;
    /// only for a qube started with [`StartSpec::net_admin`].
    fn exec_root(
        &self,
        name: &QubeName,
        _argv: &[String],
        _stdio: Stdio3,
    ) -> Result<Child, BackendError> {
        Err(BackendError::Unsupported(format!(
            "{name}: running commands as the qube's root"
        )))
    }
    /// Stops everything this backend started (the manager is going away).
    fn stop_all(&self);
    /// The host pid whose `/proc/PID/ns/net` is a running qube's network namespace, where the
    /// backend gives each qube one the manager can plumb (the sandbox backend). None: halted,
    /// or not this kind of backend.
    fn netns_pid(&self, _name: &QubeName) -> Option<i32> {
        None
    }
    /// The user namespace the network code must enter to have CAP_NET_ADMIN over every
    /// qube's network namespace, where that is not the manager's own (an unprivileged
    /// manager's sandboxes). None: the manager's own capabilities do.
    fn net_userns(&self) -> Option<PathBuf> {
        None
    }
    /// The tree whose `usr/share/applications` lists the apps of a qube whose root volume is
    /// `root_tree` (a template's root, or a standalone's own). By default the tree itself.
    fn applications_root(&self, root_tree: &std::path::Path) -> std::path::PathBuf {
        root_tree.to_path_buf()
    }
}
