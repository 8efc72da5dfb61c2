//! Kernel networking for the sandbox backend: veth pairs between qubes' network namespaces,
//! addresses, routes, sysctls and nftables, done by running `ip`, `sysctl` and `nft` inside a
//! namespace with `nsenter --net=FILE`.
//!
//! Why external commands and `nsenter` rather than netlink from Rust: `ip` and `nft` are what a
//! user debugs with, so the commands we run (logged on failure with their stderr) can be
//! replayed by hand; `nsenter` makes the namespace switch in a fresh process, so no thread of
//! the manager ever changes namespace. Every argument is built from validated types (qids,
//! addresses, our own interface names), never from text a qube sent, and passed as an argument
//! vector (no shell).
//!
//! A qube's namespace is `/proc/PID/ns/net` of its sandbox's pid 1; the qube's namespaces were
//! made by bwrap inside a user namespace it owns, and the manager (root in the initial user
//! namespace) has CAP_NET_ADMIN over them. The qube's own processes have no capabilities, so
//! they cannot change what is set here. An unprivileged manager nests all its qubes' user
//! namespaces in one of its own (see [`set_userns`]); the commands enter that one first, which
//! gives them CAP_NET_ADMIN over every qube's network namespace and nothing else.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The user namespace the commands enter before the network namespace (unprivileged manager).
static USERNS: OnceLock<PathBuf> = OnceLock::new();

/// Makes every command of this module enter user namespace `path` (a file such as
/// `/proc/PID/ns/user`) first. Once per process: a process has one manager. Returns false if
/// another one was set before.
pub fn set_userns(path: PathBuf) -> bool {
    *USERNS.get_or_init(|| path.clone()) == path
}

/// `nsenter` entering the user namespace of [`set_userns`], if any (keeping our uid, which is
/// 0 there, so the command has every capability in it); the caller adds the rest.
fn nsenter() -> Command {
    let mut cmd = Command::new("nsenter");
    if let Some(u) = USERNS.get() {
        cmd.arg(format!("--user={}", u.display()))
            .arg("--preserve-credentials");
    }
    cmd
}

/// A network namespace we can enter, and (for a qube) the pid `ip … netns PID` takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Netns {
    pub path: PathBuf,
    pub pid: Option<i32>,
}

impl Netns {
    pub fn of_pid(pid: i32) -> Netns {
        Netns {
            path: PathBuf::from(format!("/proc/{pid}/ns/net")),
            pid: Some(pid),
        }
    }
}

/// Runs `argv` in namespace `ns`; the error carries the command and its stderr.
pub fn run_in(ns: &Path, argv: &[&str]) -> Result<(), String> {
    run_in_with_input(ns, argv, None)
}

fn run_in_with_input(ns: &Path, argv: &[&str], input: Option<&str>) -> Result<(), String> {
    let mut cmd = nsenter();
    cmd.arg(format!("--net={}", ns.display()))
        .arg("--")
        .args(argv)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("{}: {e}", argv.join(" ")))?;
    let mut write_error = None;
    if let Some(text) = input {
        // nft reads all of its input before it answers, so writing first cannot deadlock.
        let mut stdin = child.stdin.take().expect("piped");
        write_error = stdin.write_all(text.as_bytes()).err();
    }
    // Waited for even when writing failed: no zombie, and its stderr says why it stopped reading.
    let out = child
        .wait_with_output()
        .map_err(|e| format!("{}: {e}", argv.join(" ")))?;
    if let Some(e) = write_error {
        return Err(format!(
            "{}: writing input: {e}: {}",
            argv.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    if out.status.success() {
        Ok(())
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        // Bounded: nft repeats the offending line; a few lines say enough.
        let err: String = err.lines().take(12).collect::<Vec<_>>().join("\n");
        Err(format!(
            "{} (in {}): {}: {}",
            argv.join(" "),
            ns.display(),
            out.status,
            err.trim()
        ))
    }
}

/// Applies a ruleset with one `nft -f -` (one transaction).
pub fn nft_apply(ns: &Path, nft: &Path, ruleset: &str) -> Result<(), String> {
    let prog = nft.to_string_lossy();
    run_in_with_input(ns, &[&prog, "-f", "-"], Some(ruleset))
}

/// Turns routing on (IPv4, and IPv6 when `v6`).
pub fn enable_forwarding(ns: &Path, v6: bool) -> Result<(), String> {
    run_in(ns, &["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"])?;
    if v6 {
        run_in(
            ns,
            &["sysctl", "-q", "-w", "net.ipv6.conf.all.forwarding=1"],
        )?;
    }
    Ok(())
}

/// One side's addresses on a point-to-point link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ends {
    pub v4: Ipv4Addr,
    pub v6: Option<Ipv6Addr>,
}

/// Connects a client to its netvm: a veth `vif` (in the netvm) ↔ `eth0` (in the client), the
/// client's /32 (/128) on `eth0` with a default route to the netvm's own address, which the
/// netvm puts on `vif` with a host route back to the client. The links come up at once;
/// the netvm's ruleset (policy drop) is what keeps an unapplied client offline.
///
/// The commands for one namespace go to one `ip -batch -` (a process per namespace, not per
/// command); every word in them is an address or one of our interface names, never spaces.
pub fn connect_client(
    netvm: &Netns,
    client: &Netns,
    vif: &str,
    client_addr: Ends,
    gw: Ends,
) -> Result<(), String> {
    let cpid = client
        .pid
        .ok_or("the client has no pid to move a link to")?
        .to_string();
    let n = &netvm.path;
    let c = &client.path;
    // A link left from before (the qube moves to another netvm, or is linked afresh): deleting
    // one end of a veth pair deletes both.
    let _ = run_in(c, &["ip", "link", "del", "eth0"]);
    run_in(
        n,
        &[
            "ip", "link", "add", vif, "type", "veth", "peer", "name", "eth0", "netns", &cpid,
        ],
    )?;
    if client_addr.v6.is_some() {
        // No duplicate address detection on a point-to-point link we made: it would hold the
        // link-local addresses (and so neighbour discovery) back for a second or two.
        no_dad(c, "eth0")?;
        no_dad(n, vif)?;
    }
    let mut nb = vec![
        format!("addr add {}/32 dev {vif}", gw.v4),
        format!("link set {vif} up"),
        format!("route replace {}/32 dev {vif}", client_addr.v4),
    ];
    let mut cb = vec![
        "link set lo up".to_owned(),
        format!("addr add {}/32 dev eth0", client_addr.v4),
        "link set eth0 up".to_owned(),
        // A host route to the gateway, as Qubes' network scripts add: tools that add routes
        // "via the gateway" without `onlink` (OpenVPN's redirect-gateway route to its
        // server) need the gateway to be on a link.
        format!("route add {}/32 dev eth0 scope link", gw.v4),
        format!("route add default via {} dev eth0 onlink", gw.v4),
    ];
    if let (Some(c6), Some(g6)) = (client_addr.v6, gw.v6) {
        nb.push(format!("addr add {g6}/128 dev {vif} nodad"));
        nb.push(format!("route replace {c6}/128 dev {vif}"));
        cb.push(format!("addr add {c6}/128 dev eth0 nodad"));
        cb.push(format!("route add default via {g6} dev eth0 onlink"));
    }
    ip_batch(n, &nb)?;
    ip_batch(c, &cb)
}

/// Runs `ip -batch -` in `ns` with one command per line.
fn ip_batch(ns: &Path, lines: &[String]) -> Result<(), String> {
    let mut text = lines.join("\n");
    text.push('\n');
    run_in_with_input(ns, &["ip", "-batch", "-"], Some(&text))
        .map_err(|e| format!("{e}\n(commands: {})", lines.join("; ")))
}

fn no_dad(ns: &Path, dev: &str) -> Result<(), String> {
    run_in(
        ns,
        &[
            "sysctl",
            "-q",
            "-w",
            &format!("net.ipv6.conf.{dev}.accept_dad=0"),
        ],
    )
}

/// Sets a link down or up (fail closed: a client whose rules could not be applied is cut off
/// at the link, which needs no nftables).
pub fn set_link(ns: &Path, dev: &str, up: bool) -> Result<(), String> {
    run_in(
        ns,
        &["ip", "link", "set", dev, if up { "up" } else { "down" }],
    )
}

/// A route in `ns` to a qube further down the chain, through the client `via` on `dev`.
pub fn route6(ns: &Path, dst: Ipv6Addr, via: Ipv6Addr, dev: &str) -> Result<(), String> {
    run_in(
        ns,
        &[
            "ip",
            "-6",
            "route",
            "replace",
            &format!("{dst}/128"),
            "via",
            &via.to_string(),
            "dev",
            dev,
        ],
    )
}

/// The uplink's interface name in the uplink namespace.
pub fn uplink_name(qid: u32) -> String {
    format!("corral-up{qid}")
}

/// Connects the uplink qube (`eth0`) to the uplink namespace (`corral-upQID`).
pub fn connect_uplink(
    u: &super::Uplink,
    qube: &Netns,
    qid: u32,
    routed6: Option<(Ipv6Addr, u8)>,
    nft: &Path,
) -> Result<(), String> {
    let qpid = qube.pid.ok_or("the uplink qube has no pid")?.to_string();
    let name = uplink_name(qid);
    let o = &u.netns;
    let q = &qube.path;
    let _ = run_in(o, &["ip", "link", "del", &name]);
    run_in(
        o,
        &[
            "ip", "link", "add", &name, "type", "veth", "peer", "name", "eth0", "netns", &qpid,
        ],
    )?;
    let mut ob = vec![format!("addr add {}/{} dev {name}", u.outer, u.prefix_len)];
    let mut qb = vec![
        "link set lo up".to_owned(),
        format!("addr add {}/{} dev eth0", u.inner, u.prefix_len),
    ];
    let mut ob_after = Vec::new();
    let mut qb_after = vec![format!("route add default via {} dev eth0", u.outer)];
    if let (Some(o6), Some(i6)) = (u.outer6, u.inner6) {
        no_dad(o, &name)?;
        no_dad(q, "eth0")?;
        ob.push(format!("addr add {o6}/{} dev {name} nodad", u.prefix6_len));
        qb.push(format!("addr add {i6}/{} dev eth0 nodad", u.prefix6_len));
        qb_after.push(format!("route add default via {o6} dev eth0"));
        if let Some((prefix, len)) = routed6 {
            // The qubes' prefix is routed to sys-net (what a delegating router does).
            ob_after.push(format!("route replace {prefix}/{len} via {i6} dev {name}"));
        }
    }
    ob.push(format!("link set {name} up"));
    ob.extend(ob_after);
    qb.push("link set eth0 up".to_owned());
    qb.extend(qb_after);
    ip_batch(o, &ob)?;
    ip_batch(q, &qb)?;
    if u.nat {
        enable_forwarding(o, u.outer6.is_some())?;
        nft_apply(
            o,
            nft,
            &super::nft::uplink_nat_ruleset(&name.replace('-', "_"), &name, u.inner),
        )?;
    }
    Ok(())
}

/// Undoes [`connect_uplink`] in the uplink namespace (the qube's side went with the qube).
pub fn disconnect_uplink(u: &super::Uplink, qid: u32, nft: &Path) {
    let name = uplink_name(qid);
    let _ = run_in(&u.netns, &["ip", "link", "del", &name]);
    if u.nat {
        let prog = nft.to_string_lossy();
        let table = name.replace('-', "_");
        let _ = run_in(&u.netns, &[&prog, "delete", "table", "inet", &table]);
    }
}

/// A running user-mode uplink (`slirp4netns`). Dropped: it is told to exit (its exit pipe
/// closes) and waited for; killed if it does not go.
#[derive(Debug)]
pub struct UserUplinkProc {
    child: Child,
    /// slirp4netns exits when this, the write end of its `--exit-fd` pipe, closes; also when
    /// the manager dies, so it never outlives it.
    exit: Option<std::io::PipeWriter>,
}

impl Drop for UserUplinkProc {
    fn drop(&mut self) {
        drop(self.exit.take());
        let t0 = Instant::now();
        while self.child.try_wait().ok().flatten().is_none() {
            if t0.elapsed() > Duration::from_secs(2) {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// How long slirp4netns may take to attach and configure `eth0`.
const SLIRP_READY: Duration = Duration::from_secs(10);

/// Gives the uplink qube its `eth0` from `slirp4netns` (user-mode networking): 10.0.2.100/24,
/// default route via 10.0.2.2, DNS forwarder 10.0.2.3. It runs as the manager's user inside
/// the user namespace that owns the qube's namespaces (uid 0 there: it may attach to the
/// qube's network namespace, and has no capability over any other qube's), in a mount
/// namespace of its own with a seccomp filter
/// (`--enable-sandbox --enable-seccomp`). Returns once `eth0` is configured.
pub fn start_user_uplink(u: &super::UserUplink, qube: &Netns) -> Result<UserUplinkProc, String> {
    let (exit_r, exit_w) = std::io::pipe().map_err(|e| format!("pipe: {e}"))?;
    let (mut ready_r, ready_w) = std::io::pipe().map_err(|e| format!("pipe: {e}"))?;
    // In the user namespace that owns the uplink qube's namespaces, not the manager's shared
    // one (unprivileged) or the initial one: whatever a bug in slirp4netns lets traffic do,
    // it has capabilities over that one qube only.
    let owner = crate::sandbox::userns_owning(&qube.path)
        .map_err(|e| format!("{}: its user namespace: {e}", qube.path.display()))?;
    let mut cmd = Command::new(&u.program);
    cmd.args([
        "--configure",
        "--mtu=65520",
        "--enable-sandbox",
        "--enable-seccomp",
        "--netns-type=path",
        "--exit-fd=3",
        "--ready-fd=4",
    ]);
    if !u.host_loopback {
        cmd.arg("--disable-host-loopback");
    }
    cmd.arg(&qube.path).arg("eth0");
    cmd.stdin(Stdio::null()).stdout(Stdio::null());
    let fds = [exit_r.as_raw_fd(), ready_w.as_raw_fd()];
    // A root manager's ordinary qube has its namespaces in the initial user namespace, ours:
    // setns into one's own user namespace is an error (EINVAL), and nothing is to be joined.
    let ours = std::fs::metadata("/proc/self/ns/user").map(|m| (m.dev(), m.ino()));
    let theirs = rustix::fs::fstat(&owner).map(|st| (st.st_dev, st.st_ino));
    let userns = match (ours, theirs) {
        (Ok(a), Ok(b)) if a == b => None,
        _ => Some(owner.as_raw_fd()),
    };
    // SAFETY: setns, fcntl and dup2 only (async-signal-safe), on fds we own and that outlive
    // the spawn; the two pipe ends are first moved above the target range so a dup2 onto 3
    // cannot clobber the one to become 4. A forked child is single-threaded, as setns into a
    // user namespace requires.
    unsafe {
        cmd.pre_exec(move || {
            if let Some(fd) = userns
                && libc::setns(fd, libc::CLONE_NEWUSER) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            let mut high = [0i32; 2];
            for (h, fd) in high.iter_mut().zip(fds) {
                *h = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 100);
                if *h < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            for (i, h) in high.iter().enumerate() {
                if libc::dup2(*h, 3 + i as i32) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let child = cmd
        .spawn()
        .map_err(|e| format!("{}: {e}", u.program.display()))?;
    drop(exit_r);
    drop(ready_w);
    drop(owner);
    let mut proc = UserUplinkProc {
        child,
        exit: Some(exit_w),
    };
    // It writes "1" once eth0 is up; EOF means it died. Read on a thread so a hung
    // slirp4netns cannot hold the manager past the timeout (the read ends when it is killed).
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut b = [0u8; 1];
        let _ = tx.send(ready_r.read(&mut b).map(|n| n == 1 && b[0] == b'1'));
    });
    let fail = |proc: &mut UserUplinkProc, why: String| {
        let _ = proc.child.kill();
        Err(format!(
            "{} for {}: {why}",
            u.program.display(),
            qube.path.display()
        ))
    };
    match rx.recv_timeout(SLIRP_READY) {
        Ok(Ok(true)) => Ok(proc),
        Ok(Ok(false)) => {
            let st = proc.child.wait().map(|s| s.to_string()).unwrap_or_default();
            fail(&mut proc, format!("exited before it was ready ({st})"))
        }
        Ok(Err(e)) => fail(&mut proc, format!("reading its ready pipe: {e}")),
        Err(_) => fail(&mut proc, format!("not ready within {SLIRP_READY:?}")),
    }
}
