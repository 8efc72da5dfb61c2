//! The `sandbox` backend: each qube is a bubblewrap sandbox (user, mount, pid, ipc, uts, net and
//! cgroup namespaces) with an overlay root, placed in its own cgroup v2 group when one can be
//! made (stop, kill and pause act on the whole group; no process escapes it).
//!
//! Start, for a qube `q`:
//! 1. `RUNTIME/qubes/q/` is made fresh: `root/` (mount point), `upper/`+`work/` (volatile root
//!    layer), `home-upper/`+`home-work/`, `home/` (disposable home).
//! 2. We fork; in the child, before exec: join the cgroup, `unshare(CLONE_NEWNS)`, make `/`
//!    private and mount the overlays. The overlays therefore exist only in that child's mount
//!    namespace and vanish with its last process, even if the manager is killed.
//! 3. The child execs `bwrap`, which binds that root as `/`, host `/usr` read-only when the
//!    template has none, a fresh `/proc`, a minimal `/dev`, a tmpfs `/tmp`, the home volume at
//!    `/home/user`, and runs `sleep infinity` as the qube's idle process (bwrap is its pid 1).
//!
//! Commands run in a started qube through `nsenter` into the namespaces of that pid 1, joined to
//! the qube's cgroup first.
//!
//! Unprivileged, and for a root manager's `net_admin` qubes (VPN qubes), the child of step 2
//! first makes a user namespace of its own (uid 0 there = the manager's uid) that bwrap's
//! namespaces then belong to: it makes the overlay mounts possible without root, and gives
//! a `net_admin` qube a root ([`Backend::exec_root`]) with capabilities over the qube's own
//! namespaces only. An unprivileged manager nests all those user namespaces in one more, the
//! [`Holder`], so its network code can reach every qube's network namespace.

use std::collections::HashMap;
use std::ffi::CString;
use std::fs;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::QubeName;
use crate::backend::{Backend, BackendError, PowerState, StartSpec, Stdio3, VolumeSpec};

/// The uid and gid of the qube's user inside its user namespace.
pub const QUBE_UID: u32 = 1000;
/// How long a start may take before it is called failed.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// Where [`SandboxBackend::with_agent`] puts the GUI agent inside a qube.
pub const AGENT_IN_QUBE: &str = "/run/corral/corral-agent";
/// `XDG_RUNTIME_DIR` of the qube's user in a GUI qube (a private tmpfs).
pub const QUBE_RUNTIME_DIR: &str = "/run/user/1000";
const PATH: &str = "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin";

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> BackendError {
    let what = what.into();
    move |source| BackendError::Io { what, source }
}

fn cstr(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).expect("paths we build have no NUL")
}

/// What every process started for a qube does between fork and exec: default signals
/// ([`reset_signals`]), `no_new_privs` (no setuid binary in a qube can gain privileges; bwrap
/// sets it for its own children, processes entered with nsenter need it too), and joining the
/// qube's cgroup (`procs`: its `cgroup.procs`) so that stopping the qube reaches it.
///
/// # Safety
/// Only async-signal-safe calls (sigprocmask, signal, prctl, open, write, close); to be called
/// in a `pre_exec` closure, with `procs` built before the fork.
unsafe fn confine_child(procs: Option<&CString>) -> io::Result<()> {
    // SAFETY: see the function's contract; `procs` is a valid C string we do not free here.
    unsafe {
        reset_signals();
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            return Err(io::Error::last_os_error());
        }
        if let Some(p) = procs {
            let fd = libc::open(p.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            if fd < 0 || libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                return Err(io::Error::last_os_error());
            }
            libc::close(fd);
        }
    }
    Ok(())
}

/// Unblocks every signal and restores the default action of the stop signals, so a qube's
/// processes do not inherit the manager's signal mask (it blocks SIGTERM/SIGINT to handle them
/// in one thread) or a shell's ignored SIGINT/SIGQUIT. Called between fork and exec.
///
/// # Safety
/// Only async-signal-safe calls; to be called in a `pre_exec` closure.
pub(crate) unsafe fn reset_signals() {
    // SAFETY: sigemptyset/pthread_sigmask/signal on a local set; all async-signal-safe.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::pthread_sigmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
        for sig in [
            libc::SIGTERM,
            libc::SIGINT,
            libc::SIGQUIT,
            libc::SIGHUP,
            libc::SIGPIPE,
        ] {
            libc::signal(sig, libc::SIG_DFL);
        }
    }
}

/// Finds a writable cgroup v2 hierarchy (pure v2 or the `unified` part of a hybrid setup).
fn find_cgroup2() -> Option<PathBuf> {
    for base in ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"] {
        let b = Path::new(base);
        if b.join("cgroup.procs").exists() && b.join("cgroup.subtree_control").exists() {
            let probe = b.join("corral");
            if fs::create_dir_all(&probe).is_ok() {
                return Some(probe);
            }
        }
    }
    None
}

#[derive(Debug)]
struct Running {
    /// Host pid of bwrap's pid 1 in the qube's pid namespace.
    init_pid: i32,
    /// Host pid of the outer bwrap (in our extra user namespace when `own_userns`).
    outer_pid: i32,
    /// The sandbox lives in a user namespace of our own (uid 0 there = the manager's uid),
    /// which owns bwrap's namespaces: always when unprivileged, and for `net_admin` qubes.
    own_userns: bool,
    /// Started with [`StartSpec::net_admin`]: [`Backend::exec_root`] is allowed.
    net_admin: bool,
    /// Host pid of the qube's idle process (`sleep infinity`): while it lives, the sandbox does.
    idle_pid: i32,
    cgroup: Option<PathBuf>,
    dir: PathBuf,
    paused: Mutex<bool>,
    /// Set by the waiter thread when the sandbox has exited.
    exited: Mutex<Option<String>>,
    exited_cv: Condvar,
}

impl Running {
    fn wait_exit(&self, timeout: Duration) -> bool {
        let g = self.exited.lock().unwrap();
        let (g, _) = self
            .exited_cv
            .wait_timeout_while(g, timeout, |e| e.is_none())
            .unwrap();
        g.is_some()
    }

    /// Asks the qube's processes to stop and waits at most `timeout` for them. With a cgroup,
    /// SIGTERM goes to every process but the sandbox's own (bwrap and its pid 1), so they get
    /// their time: signalling pid 1 would end the pid namespace and kill them all at once.
    /// Returns whether they all went.
    fn terminate(&self, timeout: Duration) -> bool {
        let Some(cg) = &self.cgroup else {
            // Without a cgroup we cannot find them all; pid 1 forwards the end to everyone.
            // SAFETY: kill(2) on the sandbox's pid 1; no memory is involved.
            unsafe { libc::kill(self.init_pid, libc::SIGTERM) };
            return self.wait_exit(timeout);
        };
        let sandbox = [self.init_pid, self.outer_pid, self.idle_pid];
        let qube_pids = || -> Vec<i32> {
            cgroup_pids(cg)
                .into_iter()
                .filter(|p| !sandbox.contains(p))
                .collect()
        };
        for pid in qube_pids() {
            // SAFETY: kill(2) with a pid read from our own cgroup; no memory is involved.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        let deadline = Instant::now() + timeout;
        loop {
            if qube_pids().is_empty() || self.wait_exit(Duration::ZERO) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn signal_all(&self, sig: i32) {
        if let Some(cg) = &self.cgroup {
            if sig == libc::SIGKILL && fs::write(cg.join("cgroup.kill"), "1").is_ok() {
                return;
            }
            for pid in cgroup_pids(cg) {
                // SAFETY: kill(2) with a pid read from our own cgroup; no memory is involved.
                unsafe { libc::kill(pid, sig) };
            }
        }
        // Killing pid 1 of the namespace kills every process in it.
        // SAFETY: as above.
        unsafe { libc::kill(self.init_pid, sig) };
    }
}

fn cgroup_pids(cg: &Path) -> Vec<i32> {
    fs::read_to_string(cg.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

fn children(pid: i32) -> Vec<i32> {
    fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|s| s.parse().ok())
        .collect()
}

/// The capabilities the root of a `net_admin` qube keeps (setpriv's names).
const ROOT_CAPS: &str = "+net_admin,+net_raw,+net_bind_service";

/// `nsenter` arguments entering the sandbox's outer user namespace (keeping our uid: 0 there),
/// then the qube's namespaces ([`enter_qube_namespaces`]). For the qube's user only: it goes on
/// into bwrap's inner user namespace, where it has no capabilities.
fn enter_outer(cmd: &mut Command, r: &Running) {
    cmd.arg(format!("--target={}", r.outer_pid));
    cmd.args(["--user", "--preserve-credentials", "--", "nsenter"]);
    enter_qube_namespaces(cmd, r);
}

/// `nsenter` arguments entering the qube's mount, pid, ipc, uts and network namespaces, its root
/// and working directory. The caller is already in the user namespace that owns them (see
/// [`owner_of_qube_namespaces`]).
fn enter_qube_namespaces(cmd: &mut Command, r: &Running) {
    cmd.arg(format!("--target={}", r.init_pid));
    cmd.args([
        "--mount", "--pid", "--ipc", "--uts", "--net", "--root", "--wd",
    ]);
}

/// The user namespace that owns the qube's network namespace (and its mount, pid, ipc and uts
/// ones: bwrap makes them together), as an fd (`NS_GET_USERNS`).
///
/// Why this one and not the sandbox's outer user namespace: bwrap makes the namespace that owns
/// the qube's namespaces as uid 0 of the outer one, and a process of a parent user namespace
/// whose uid owns a child has *every* capability in that child, whatever its own sets say. The
/// qube's root must be inside the owning namespace, where only its effective set counts.
fn owner_of_qube_namespaces(r: &Running) -> Result<OwnedFd, BackendError> {
    let path = PathBuf::from(format!("/proc/{}/ns/net", r.init_pid));
    userns_owning(&path).map_err(io_err(format!("{}: its user namespace", path.display())))
}

/// The user namespace that owns the namespace file `ns` (`NS_GET_USERNS`), as a close-on-exec
/// fd, for `setns` between fork and exec.
pub(crate) fn userns_owning(ns: &Path) -> io::Result<OwnedFd> {
    const NS_GET_USERNS: libc::c_ulong = 0xb701; // _IO(0xb7, 0x1), linux/nsfs.h
    let file = fs::File::open(ns)?;
    // SAFETY: NS_GET_USERNS takes no argument and returns a new fd (close-on-exec) or -1; the
    // fd we pass is open for the call's duration.
    let fd = unsafe { libc::ioctl(file.as_raw_fd(), NS_GET_USERNS as _) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just gave us this fd; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The `nsenter` command that runs `argv` in a running qube as `user` (home `home`), with a
/// clean environment; refused while the qube is paused or without a command.
fn nsenter_for(
    name: &QubeName,
    r: &Running,
    argv: &[String],
    user: &str,
    home: &str,
) -> Result<Command, BackendError> {
    if *r.paused.lock().unwrap() {
        return Err(BackendError::Paused(name.to_string()));
    }
    if argv.is_empty() {
        return Err(BackendError::Failed("no command given".into()));
    }
    let mut cmd = Command::new("nsenter");
    cmd.env_clear()
        .env("PATH", PATH)
        .env("HOME", home)
        .env("USER", user)
        .env("LANG", "C.UTF-8");
    Ok(cmd)
}

/// Spawns an `nsenter` command built for a qube: no_new_privs, default signals, joined to the
/// qube's cgroup, `extra_fds` as fds 3, 4, ….
fn spawn_entered(
    mut cmd: Command,
    name: &QubeName,
    r: &Running,
    argv: &[String],
    stdio: Stdio3,
    extra_fds: Vec<OwnedFd>,
    join_userns: Option<OwnedFd>,
) -> Result<Child, BackendError> {
    cmd.stdin(stdio.stdin.map_or_else(Stdio::null, Stdio::from));
    cmd.stdout(stdio.stdout.map_or_else(Stdio::null, Stdio::from));
    cmd.stderr(stdio.stderr.map_or_else(Stdio::null, Stdio::from));
    if !extra_fds.is_empty() {
        cmd.env("CORRAL_FDS", extra_fds.len().to_string());
    }
    let procs = r.cgroup.as_ref().map(|cg| cstr(&cg.join("cgroup.procs")));
    let raw: Vec<i32> = extra_fds.iter().map(AsRawFd::as_raw_fd).collect();
    let userns = join_userns.as_ref().map(AsRawFd::as_raw_fd);
    // SAFETY: only async-signal-safe calls (sigprocmask, signal, prctl, open, write, close,
    // setns, fcntl, dup2) on data prepared before the fork (the userns fd outlives the spawn).
    // The extra fds are first moved above the target range so a dup2 onto 3.. cannot clobber
    // one not yet moved.
    unsafe {
        cmd.pre_exec(move || {
            confine_child(procs.as_ref())?;
            // After joining the cgroup (a host path); a forked child is single-threaded, as
            // setns into a user namespace requires.
            if let Some(fd) = userns
                && libc::setns(fd, libc::CLONE_NEWUSER) != 0
            {
                return Err(io::Error::last_os_error());
            }
            let mut high = [0i32; 16];
            for (i, &fd) in raw.iter().enumerate().take(16) {
                high[i] = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 100);
                if high[i] < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            for (i, &fd) in high.iter().enumerate().take(raw.len().min(16)) {
                if libc::dup2(fd, 3 + i as i32) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let child = cmd
        .spawn()
        .map_err(io_err(format!("{name}: running {}", argv[0])))?;
    drop(extra_fds);
    drop(join_userns);
    Ok(child)
}

/// An unprivileged manager's own user namespace (uid 0 there = the manager's uid), in which
/// every sandbox's outer user namespace is nested. Being the common ancestor of all qubes'
/// namespaces, it is where the network code has CAP_NET_ADMIN over two qubes' network
/// namespaces at once (to put a veth between them); a qube is never in it, only in a
/// namespace nested inside, so no qube gets those capabilities.
#[derive(Debug)]
struct Holder {
    /// `unshare --user --map-root-user cat`, reading our pipe: it ends when we do.
    child: Child,
    /// The namespace, joined (setns) by each starting sandbox.
    fd: OwnedFd,
    /// `/proc/PID/ns/user` of the holder process, for `nsenter --user`.
    path: PathBuf,
}

impl Holder {
    fn new() -> Result<Holder, BackendError> {
        let mut child = Command::new("unshare")
            .args(["--user", "--map-root-user", "--", "cat"])
            // Its own process group: a Ctrl-C or hangup meant for the manager (which shuts
            // down cleanly) must not kill it under the running qubes. It still ends with us:
            // its stdin is our pipe.
            .process_group(0)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(io_err("unshare (the qubes' shared user namespace)"))?;
        let pid = child.id();
        let ours = fs::read_link("/proc/self/ns/user").map_err(io_err("/proc/self/ns/user"))?;
        let path = PathBuf::from(format!("/proc/{pid}/ns/user"));
        // unshare execs cat once the namespace and its id maps are made.
        let t0 = Instant::now();
        loop {
            let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            if comm.trim() == "cat" && fs::read_link(&path).is_ok_and(|ns| ns != ours) {
                break;
            }
            if let Ok(Some(st)) = child.try_wait() {
                return Err(BackendError::Failed(format!(
                    "making the qubes' shared user namespace: unshare exited ({st})"
                )));
            }
            if t0.elapsed() > START_TIMEOUT {
                let _ = child.kill();
                let _ = child.wait();
                return Err(BackendError::Failed(
                    "making the qubes' shared user namespace: unshare did not start".into(),
                ));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let fd = fs::File::open(&path)
            .map_err(io_err(path.display().to_string()))?
            .into();
        Ok(Holder { child, fd, path })
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The sandbox backend.
#[derive(Debug)]
pub struct SandboxBackend {
    runtime: PathBuf,
    /// The shared user namespace of an unprivileged manager's qubes (None as root).
    holder: Option<Holder>,
    cgroup_base: Option<PathBuf>,
    /// The GUI agent binary bound read-only into every qube (see [`SandboxBackend::with_agent`]).
    agent: Option<PathBuf>,
    running: Arc<Mutex<HashMap<QubeName, Arc<Running>>>>,
}

impl SandboxBackend {
    /// A backend keeping its per-qube state under `runtime` (`$XDG_RUNTIME_DIR/corral`).
    /// Kills what a previous manager on the same runtime dir left running.
    pub fn new(runtime: &Path) -> Result<SandboxBackend, BackendError> {
        let qubes = runtime.join("qubes");
        fs::create_dir_all(&qubes).map_err(io_err(qubes.display().to_string()))?;
        // One cgroup directory per runtime dir, so managers for different users or tests do not
        // touch each other's qubes.
        let mut h: u64 = 0xcbf29ce484222325;
        for b in runtime.as_os_str().as_bytes() {
            h = (h ^ u64::from(*b)).wrapping_mul(0x100000001b3);
        }
        let cgroup_base = find_cgroup2()
            .map(|b| b.join(format!("{h:016x}")))
            .filter(|d| fs::create_dir_all(d).is_ok());
        let holder = if rustix::process::geteuid().is_root() {
            None
        } else {
            Some(Holder::new()?)
        };
        let b = SandboxBackend {
            runtime: runtime.to_owned(),
            holder,
            cgroup_base,
            agent: None,
            running: Arc::new(Mutex::new(HashMap::new())),
        };
        b.reap_leftovers();
        Ok(b)
    }

    /// Makes every qube a GUI qube: its `/run` becomes a private tmpfs holding
    /// [`QUBE_RUNTIME_DIR`] (mode 0700, owned by the qube's user: the agent's Wayland socket goes
    /// there) and `agent` (the host's `corral-agent`) bound read-only at [`AGENT_IN_QUBE`].
    /// Nothing of the host's `/run` is visible either way.
    pub fn with_agent(mut self, agent: PathBuf) -> SandboxBackend {
        self.agent = Some(agent);
        self
    }

    /// Whether qubes get a cgroup (needed for pause and for the strongest stop).
    pub fn has_cgroups(&self) -> bool {
        self.cgroup_base.is_some()
    }

    fn reap_leftovers(&self) {
        if let Some(base) = &self.cgroup_base
            && let Ok(rd) = fs::read_dir(base)
        {
            for e in rd.flatten() {
                let cg = e.path();
                if cg.is_dir() {
                    let _ = fs::write(cg.join("cgroup.freeze"), "0");
                    let _ = fs::write(cg.join("cgroup.kill"), "1");
                    wait_cgroup_empty(&cg, Duration::from_secs(5));
                    let _ = fs::remove_dir(&cg);
                }
            }
        }
        // Without cgroups (unprivileged): find the sandboxes by their bwrap command line, which
        // names this runtime directory, and kill pid 1 of each (the kernel kills the rest of
        // its pid namespace).
        let marker = format!("{}/qubes/", self.runtime.display());
        if let Ok(rd) = fs::read_dir("/proc") {
            for e in rd.flatten() {
                let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                    continue;
                };
                let cmd = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                let cmd = String::from_utf8_lossy(&cmd);
                if cmd.starts_with("bwrap\0") && cmd.contains(&marker) {
                    for p1 in children(pid) {
                        // SAFETY: kill(2); no memory involved.
                        unsafe { libc::kill(p1, libc::SIGKILL) };
                    }
                    // SAFETY: as above.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
            }
        }
        if let Ok(rd) = fs::read_dir(self.runtime.join("qubes")) {
            for e in rd.flatten() {
                let _ = fs::remove_dir_all(e.path());
            }
        }
    }

    fn get(&self, name: &QubeName) -> Result<Arc<Running>, BackendError> {
        self.running
            .lock()
            .unwrap()
            .get(name)
            .cloned()
            .ok_or_else(|| BackendError::NotRunning(name.to_string()))
    }

    fn finish(
        &self,
        name: &QubeName,
        r: &Arc<Running>,
        timeout: Duration,
    ) -> Result<(), BackendError> {
        if !r.wait_exit(timeout) {
            return Err(BackendError::Failed(format!(
                "{name}: sandbox did not exit within {timeout:?} of being killed"
            )));
        }
        Ok(())
    }
}

fn wait_cgroup_empty(cg: &Path, timeout: Duration) -> bool {
    let t0 = Instant::now();
    loop {
        let events = fs::read_to_string(cg.join("cgroup.events")).unwrap_or_default();
        if events.contains("populated 0") || !cg.exists() {
            return true;
        }
        if t0.elapsed() > timeout {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Makes the skeleton of a host-style template root: the directories a Debian system has,
/// `/bin` etc. as links into `/usr` (the host's, bound read-only at start), and a user.
pub fn host_root_skeleton(root: &Path) -> io::Result<()> {
    for d in [
        "etc",
        "home/user",
        "root",
        "run",
        "tmp",
        "var/tmp",
        "var/lib",
        "opt",
        "srv",
        "mnt",
        "media",
    ] {
        fs::create_dir_all(root.join(d))?;
    }
    for (link, to) in [
        ("bin", "usr/bin"),
        ("sbin", "usr/sbin"),
        ("lib", "usr/lib"),
        ("lib64", "usr/lib64"),
    ] {
        let p = root.join(link);
        if fs::symlink_metadata(&p).is_err() {
            std::os::unix::fs::symlink(to, p)?;
        }
    }
    fs::write(
        root.join("etc/passwd"),
        format!(
            "root:x:0:0:root:/root:/bin/sh\nuser:x:{QUBE_UID}:{QUBE_UID}:user:/home/user:/bin/bash\n"
        ),
    )?;
    fs::write(
        root.join("etc/group"),
        format!("root:x:0:\nuser:x:{QUBE_UID}:\n"),
    )?;
    fs::write(root.join("etc/hosts"), "127.0.0.1 localhost\n")?;
    Ok(())
}

impl Backend for SandboxBackend {
    fn kind(&self) -> &'static str {
        "sandbox"
    }

    /// A `host`-style template has no `/usr` of its own: its qubes see the host's, and so do
    /// their menus.
    fn applications_root(&self, root_tree: &Path) -> PathBuf {
        if root_tree.join("usr/bin").is_dir() {
            root_tree.to_path_buf()
        } else {
            PathBuf::from("/")
        }
    }

    fn net_userns(&self) -> Option<PathBuf> {
        self.holder.as_ref().map(|h| h.path.clone())
    }

    /// bwrap's pid 1 of the qube holds its network namespace (`--unshare-net`).
    fn netns_pid(&self, name: &QubeName) -> Option<i32> {
        self.running.lock().unwrap().get(name).map(|r| r.init_pid)
    }

    fn init_template_root(&self, root: &Path) -> Result<(), BackendError> {
        host_root_skeleton(root).map_err(io_err(root.display().to_string()))
    }

    fn start(&self, spec: &StartSpec) -> Result<(), BackendError> {
        let name = &spec.name;
        let mut running = self.running.lock().unwrap();
        if running.contains_key(name) {
            return Err(BackendError::AlreadyRunning(name.to_string()));
        }
        let dir = self.runtime.join("qubes").join(name.as_str());
        let _ = fs::remove_dir_all(&dir);
        for d in ["root", "upper", "work", "home", "home-upper", "home-work"] {
            fs::create_dir_all(dir.join(d)).map_err(io_err(dir.display().to_string()))?;
        }
        // The overlays to mount in the child's private mount namespace.
        let mut overlays: Vec<(CString, CString)> = Vec::new();
        let overlay = |lower: &Path, upper: &Path, work: &Path| {
            CString::new(format!(
                "lowerdir={},upperdir={},workdir={}",
                lower.display(),
                upper.display(),
                work.display()
            ))
            .expect("no NUL")
        };
        let (root_path, root_tree) = match &spec.root {
            VolumeSpec::Persistent(p) => (p.clone(), p.clone()),
            VolumeSpec::Volatile { lower } => {
                // Said here, by name: otherwise the overlay mount fails in the child and the
                // spawn reports only "No such file or directory".
                if !lower.is_dir() {
                    return Err(BackendError::Failed(format!(
                        "{name}: its template's root volume {} is missing",
                        lower.display()
                    )));
                }
                overlays.push((
                    cstr(&dir.join("root")),
                    overlay(lower, &dir.join("upper"), &dir.join("work")),
                ));
                (dir.join("root"), lower.clone())
            }
            VolumeSpec::Empty => {
                host_root_skeleton(&dir.join("root")).map_err(io_err("root skeleton"))?;
                (dir.join("root"), dir.join("root"))
            }
        };
        let home_path = match &spec.home {
            VolumeSpec::Persistent(p) => {
                fs::create_dir_all(p).map_err(io_err(p.display().to_string()))?;
                p.clone()
            }
            VolumeSpec::Volatile { lower } => {
                fs::create_dir_all(lower).map_err(io_err(lower.display().to_string()))?;
                overlays.push((
                    cstr(&dir.join("home")),
                    overlay(lower, &dir.join("home-upper"), &dir.join("home-work")),
                ));
                dir.join("home")
            }
            VolumeSpec::Empty => dir.join("home"),
        };
        let cgroup = match &self.cgroup_base {
            Some(base) => {
                let cg = base.join(name.as_str());
                let _ = fs::remove_dir(&cg);
                fs::create_dir_all(&cg).map_err(io_err(cg.display().to_string()))?;
                Some(cg)
            }
            None => None,
        };
        let mut cmd = Command::new("bwrap");
        cmd.env_clear().env("PATH", PATH);
        cmd.args([
            "--unshare-user",
            "--unshare-pid",
            "--unshare-ipc",
            "--unshare-uts",
            "--unshare-net",
            "--unshare-cgroup-try",
        ]);
        cmd.args([
            "--uid",
            &QUBE_UID.to_string(),
            "--gid",
            &QUBE_UID.to_string(),
        ]);
        // bwrap keeps every capability for a caller that is uid 0 (root, or uid 0 of our own
        // user namespace) unless told otherwise; the qube's processes get none.
        cmd.args(["--cap-drop", "ALL"]);
        cmd.args(["--hostname", name.as_str()]);
        cmd.arg("--bind").arg(&root_path).arg("/");
        if !root_tree.join("usr/bin").is_dir() {
            cmd.args(["--ro-bind", "/usr", "/usr"]);
            // The host's fonts come with its /usr; their fontconfig setup is in /etc/fonts
            // (without it apps pick odd fallback fonts).
            if !root_tree.join("etc/fonts").exists() && Path::new("/etc/fonts").is_dir() {
                cmd.args(["--ro-bind", "/etc/fonts", "/etc/fonts"]);
            }
        }
        cmd.args(["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]);
        // /proc/sys read-only. bwrap covers it only when it can write the directory itself,
        // which it cannot (mode 0555), yet the files in it are writable by uid 0 — and under a
        // root manager the qube's user *is* uid 0 of the host for file permissions (bwrap maps
        // it to its caller's uid), so without this a qube could write global sysctls
        // (kernel.core_pattern: code run as host root). The host's /proc/sys is as good as
        // the qube's own: what a sysctl file shows (net.*, kernel.hostname) follows the
        // namespaces of the process reading it.
        cmd.args(["--ro-bind", "/proc/sys", "/proc/sys"]);
        if spec.net_admin {
            // For VPN software (OpenVPN's tun0). Opening it is not enough to make a device:
            // TUNSETIFF needs CAP_NET_ADMIN, which only the qube's root (exec_root) has.
            cmd.args(["--dev-bind-try", "/dev/net/tun", "/dev/net/tun"]);
        }
        if let Some(agent) = &self.agent {
            cmd.args([
                "--tmpfs",
                "/run",
                "--perms",
                "0700",
                "--dir",
                QUBE_RUNTIME_DIR,
            ]);
            cmd.arg("--ro-bind").arg(agent).arg(AGENT_IN_QUBE);
        }
        cmd.arg("--bind").arg(&home_path).arg("/home/user");
        cmd.args([
            "--chdir",
            "/home/user",
            "--new-session",
            "--",
            "sleep",
            "infinity",
        ]);
        cmd.stdin(Stdio::null()).stdout(Stdio::null());
        let log = dir.join("bwrap.log");
        cmd.stderr(fs::File::create(&log).map_err(io_err(log.display().to_string()))?);
        let procs = cgroup.as_ref().map(|cg| cstr(&cg.join("cgroup.procs")));
        // Without root, the overlay needs a user namespace of its own (kernel >= 5.11): the
        // child maps its uid to 0 there, mounts, and bwrap nests the qube's namespace inside.
        // A `net_admin` qube gets one too, even under a root manager: then bwrap's namespaces
        // (the network one included) belong to that user namespace (or one bwrap nests in it)
        // rather than the initial one, so uid 0 there — the qube's root of `exec_root` — has
        // CAP_NET_ADMIN over the qube's network namespace and nothing of the host's. The
        // manager (root in the initial user namespace) keeps CAP_NET_ADMIN over it, to plumb
        // the links.
        let own_userns = !rustix::process::geteuid().is_root() || spec.net_admin;
        // An unprivileged manager's sandboxes first join its shared user namespace (see
        // [`Holder`]), where its uid is 0; the sandbox's own user namespace is nested there.
        let holder_fd = self.holder.as_ref().map(|h| h.fd.as_raw_fd());
        let (uid, gid) = if holder_fd.is_some() {
            (0, 0)
        } else {
            (
                rustix::process::geteuid().as_raw(),
                rustix::process::getegid().as_raw(),
            )
        };
        let uid_map = format!("0 {uid} 1").into_bytes();
        let gid_map = format!("0 {gid} 1").into_bytes();
        let c_uid_map = CString::new("/proc/self/uid_map").expect("no NUL");
        let c_gid_map = CString::new("/proc/self/gid_map").expect("no NUL");
        let c_setgroups = CString::new("/proc/self/setgroups").expect("no NUL");
        let c_overlay = CString::new("overlay").expect("no NUL");
        let c_root = CString::new("/").expect("no NUL");
        // SAFETY: between fork and exec the closure makes only async-signal-safe system calls
        // (sigprocmask, signal, prctl, open, write, close, setns, unshare, mount) on C strings
        // and an fd (the holder's, which outlives the spawn) built before the fork; it does not
        // allocate, lock or touch shared state.
        unsafe {
            cmd.pre_exec(move || {
                confine_child(procs.as_ref())?;
                // setns into a user namespace needs a single-threaded caller: a forked child is.
                if let Some(fd) = holder_fd
                    && libc::setns(fd, libc::CLONE_NEWUSER) != 0
                {
                    return Err(io::Error::last_os_error());
                }
                let flags = if own_userns {
                    libc::CLONE_NEWUSER | libc::CLONE_NEWNS
                } else {
                    libc::CLONE_NEWNS
                };
                if libc::unshare(flags) != 0 {
                    return Err(io::Error::last_os_error());
                }
                if own_userns {
                    for (path, data) in [
                        (&c_setgroups, &b"deny"[..]),
                        (&c_uid_map, &uid_map[..]),
                        (&c_gid_map, &gid_map[..]),
                    ] {
                        let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                        if fd < 0
                            || libc::write(fd, data.as_ptr().cast(), data.len())
                                != data.len() as isize
                        {
                            return Err(io::Error::last_os_error());
                        }
                        libc::close(fd);
                    }
                }
                if libc::mount(
                    std::ptr::null(),
                    c_root.as_ptr(),
                    std::ptr::null(),
                    libc::MS_REC | libc::MS_PRIVATE,
                    std::ptr::null(),
                ) != 0
                {
                    return Err(io::Error::last_os_error());
                }
                for (target, opts) in &overlays {
                    if libc::mount(
                        c_overlay.as_ptr(),
                        target.as_ptr(),
                        c_overlay.as_ptr(),
                        0,
                        opts.as_ptr().cast(),
                    ) != 0
                    {
                        return Err(io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        let mut child = cmd
            .spawn()
            .map_err(io_err(format!("{name}: starting bwrap")))?;
        let outer = child.id() as i32;
        // Ready when bwrap's pid 1 has started the idle process.
        let t0 = Instant::now();
        let (init_pid, idle_pid) = loop {
            if let Ok(Some(st)) = child.try_wait() {
                let msg = fs::read_to_string(&log).unwrap_or_default();
                if let Some(cg) = &cgroup {
                    let _ = fs::remove_dir(cg);
                }
                let _ = fs::remove_dir_all(&dir);
                return Err(BackendError::Failed(format!(
                    "{name}: sandbox exited at start ({st}): {}",
                    msg.trim()
                )));
            }
            if let Some(&p1) = children(outer).first()
                && let Some(&idle) = children(p1).first()
                && fs::read_to_string(format!("/proc/{idle}/comm"))
                    .is_ok_and(|c| c.trim() == "sleep")
            {
                break (p1, idle);
            }
            if t0.elapsed() > START_TIMEOUT {
                let _ = child.kill();
                return Err(BackendError::Failed(format!(
                    "{name}: sandbox not ready in {START_TIMEOUT:?}"
                )));
            }
            std::thread::sleep(Duration::from_micros(500));
        };
        let r = Arc::new(Running {
            init_pid,
            outer_pid: outer,
            own_userns,
            net_admin: spec.net_admin,
            idle_pid,
            cgroup: cgroup.clone(),
            dir: dir.clone(),
            paused: Mutex::new(false),
            exited: Mutex::new(None),
            exited_cv: Condvar::new(),
        });
        running.insert(name.clone(), r.clone());
        drop(running);
        let name2 = name.clone();
        let registry = Arc::clone(&self.running);
        std::thread::Builder::new()
            .name(format!("qube-{name}"))
            .spawn(move || {
                let st = child.wait();
                // The sandbox's pid 1 is gone, so the kernel killed its pid namespace; make sure
                // nothing joined to the cgroup outlives it, then drop the volatile layers.
                if let Some(cg) = &r.cgroup {
                    let _ = fs::write(cg.join("cgroup.freeze"), "0");
                    let _ = fs::write(cg.join("cgroup.kill"), "1");
                    wait_cgroup_empty(cg, Duration::from_secs(10));
                    let _ = fs::remove_dir(cg);
                }
                let _ = fs::remove_dir_all(&r.dir);
                {
                    let mut map = registry.lock().unwrap();
                    if map.get(&name2).is_some_and(|cur| Arc::ptr_eq(cur, &r)) {
                        map.remove(&name2);
                    }
                }
                *r.exited.lock().unwrap() = Some(format!("{st:?}"));
                r.exited_cv.notify_all();
            })
            .map_err(io_err("spawning the waiter thread"))?;
        Ok(())
    }

    fn state(&self, name: &QubeName) -> PowerState {
        match self.running.lock().unwrap().get(name) {
            None => PowerState::Halted,
            Some(r) if *r.paused.lock().unwrap() => PowerState::Paused,
            Some(_) => PowerState::Running,
        }
    }

    fn shutdown(&self, name: &QubeName, timeout: Duration) -> Result<(), BackendError> {
        let r = self.get(name)?;
        if *r.paused.lock().unwrap() {
            self.unpause(name)?;
        }
        let stopped = r.terminate(timeout);
        if stopped && r.wait_exit(Duration::ZERO) {
            return Ok(());
        }
        // Every qube process is gone (only the sandbox's own are left), or the timeout passed:
        // kill what is left.
        r.signal_all(libc::SIGKILL);
        self.finish(name, &r, Duration::from_secs(10))
    }

    fn kill(&self, name: &QubeName) -> Result<(), BackendError> {
        let r = self.get(name)?;
        r.signal_all(libc::SIGKILL);
        if let Some(cg) = &r.cgroup {
            // A frozen group cannot die; thaw it after the kill was requested.
            let _ = fs::write(cg.join("cgroup.freeze"), "0");
        }
        *r.paused.lock().unwrap() = false;
        self.finish(name, &r, Duration::from_secs(10))
    }

    fn pause(&self, name: &QubeName) -> Result<(), BackendError> {
        let r = self.get(name)?;
        let cg = r.cgroup.as_ref().ok_or_else(|| {
            BackendError::Unsupported("pause needs a writable cgroup v2 hierarchy".into())
        })?;
        fs::write(cg.join("cgroup.freeze"), "1").map_err(io_err("cgroup.freeze"))?;
        let t0 = Instant::now();
        while !fs::read_to_string(cg.join("cgroup.events"))
            .unwrap_or_default()
            .contains("frozen 1")
        {
            if t0.elapsed() > Duration::from_secs(5) {
                return Err(BackendError::Failed(format!(
                    "{name}: did not freeze in 5 s"
                )));
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        *r.paused.lock().unwrap() = true;
        Ok(())
    }

    fn unpause(&self, name: &QubeName) -> Result<(), BackendError> {
        let r = self.get(name)?;
        let cg = r.cgroup.as_ref().ok_or_else(|| {
            BackendError::Unsupported("pause needs a writable cgroup v2 hierarchy".into())
        })?;
        fs::write(cg.join("cgroup.freeze"), "0").map_err(io_err("cgroup.freeze"))?;
        *r.paused.lock().unwrap() = false;
        Ok(())
    }

    fn exec(
        &self,
        name: &QubeName,
        argv: &[String],
        stdio: Stdio3,
        extra_fds: Vec<OwnedFd>,
    ) -> Result<Child, BackendError> {
        let r = self.get(name)?;
        let mut cmd = nsenter_for(name, &r, argv, "user", "/home/user")?;
        if !r.own_userns {
            cmd.arg(format!("--target={}", r.init_pid));
            cmd.args([
                "--user", "--mount", "--pid", "--ipc", "--uts", "--net", "--cgroup", "--root",
                "--wd",
            ]);
            cmd.arg(format!("--setuid={QUBE_UID}"))
                .arg(format!("--setgid={QUBE_UID}"));
        } else {
            // bwrap made the qube's namespaces while in our outer user namespace, so they
            // belong to it (or to bwrap's user namespace nested in it): enter that user
            // namespace first (we own it), then the qube's namespaces, then bwrap's inner user
            // namespace, keeping our uid (0 outside, mapped to QUBE_UID inside). bwrap denied
            // setgroups there, so nsenter must not try to set ids. The cgroup namespace is not
            // entered (it would need CAP_SYS_ADMIN in the init namespace).
            enter_outer(&mut cmd, &r);
            cmd.args([
                "--",
                "nsenter",
                "--target=1",
                "--user",
                "--preserve-credentials",
            ]);
        }
        cmd.args(["--", "env", "-C", "/home/user"]);
        cmd.args(argv);
        spawn_entered(cmd, name, &r, argv, stdio, extra_fds, None)
    }

    /// The qube's root: uid 0 of the user namespace that owns the qube's namespaces (mapped to
    /// the manager's uid), in the qube's mount, pid, ipc, uts and network namespaces but not
    /// bwrap's inner user namespace. Entering a user namespace gives every capability in it
    /// and the namespaces it owns (never in the initial ones); `setpriv` then keeps only the
    /// network ones in the bounding set, so the command (and all it runs, with no_new_privs)
    /// can configure the qube's network and nothing else: no mounts or remounts, no sysctls,
    /// no file-permission overrides. (It owns bwrap's inner user namespace, so it may signal
    /// and trace the qube's user's processes, as root in a Qubes VM can.)
    fn exec_root(
        &self,
        name: &QubeName,
        argv: &[String],
        stdio: Stdio3,
    ) -> Result<Child, BackendError> {
        let r = self.get(name)?;
        if !r.net_admin {
            return Err(BackendError::Unsupported(format!(
                "{name} was not started with the net-admin feature: its root has no \
                 capabilities to give (set the feature and restart it)"
            )));
        }
        let mut cmd = nsenter_for(name, &r, argv, "root", "/root")?;
        // Into the user namespace that owns the qube's namespaces (full capabilities there
        // until setpriv keeps only the network ones), then into those namespaces.
        let owner = owner_of_qube_namespaces(&r)?;
        enter_qube_namespaces(&mut cmd, &r);
        cmd.args([
            "--",
            "setpriv",
            &format!("--bounding-set=-all,{ROOT_CAPS}"),
            "--",
            "env",
            "-C",
            "/",
        ]);
        cmd.args(argv);
        spawn_entered(cmd, name, &r, argv, stdio, Vec::new(), Some(owner))
    }

    fn stop_all(&self) {
        let all: Vec<QubeName> = self.running.lock().unwrap().keys().cloned().collect();
        for name in all {
            let _ = self.kill(&name);
        }
        if let Some(base) = &self.cgroup_base {
            let _ = fs::remove_dir(base);
        }
    }
}
