//! The network chain with real namespaces, real nftables and real traffic, all contained: each
//! test makes its own "internet" namespace (documentation addresses 192.0.2.0/24,
//! 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32) with servers in it, points sys-net's uplink
//! at it, and runs a `corralctl daemon` whose qubes are sandboxes. Nothing is sent to the
//! machine's own network and the host's namespace is not changed: every link, address, route
//! and nft table is inside a qube's namespace or the test's, and goes with them.
//!
//! The exception is the unprivileged manager's test: its sys-net's uplink is slirp4netns,
//! whose upstream is the host's own network stack, so its server listens on the host's
//! loopback (slirp4netns's 10.0.2.2) and nothing else is contacted.
//!
//! Needs root (namespaces, veth, nftables) plus `nft`, `ip`, `socat` and bubblewrap (the VPN
//! test `openvpn` and `openssl`, the unprivileged one `slirp4netns`); skipped otherwise,
//! unless `CI` is set (then it fails).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const CTL: &str = env!("CARGO_BIN_EXE_corralctl");
static SEQ: AtomicUsize = AtomicUsize::new(0);

/// Whether this machine can run these tests; without, skip (or fail under CI).
fn can_run() -> bool {
    let have = |p: &str| {
        Command::new(p)
            .arg(if p == "ip" || p == "socat" {
                "-V"
            } else {
                "--version"
            })
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let root = rustix::process::geteuid().is_root();
    let ok = root && have("nft") && have("socat") && have("bwrap") && have("ip");
    if !ok {
        let why = "network tests need root, nft, ip, socat and bwrap";
        assert!(std::env::var_os("CI").is_none(), "{why}");
        eprintln!("skipped: {why}");
    }
    ok
}

fn sh(argv: &[&str]) {
    let o = Command::new(argv[0]).args(&argv[1..]).output().unwrap();
    assert!(
        o.status.success(),
        "{argv:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The fake internet: a network namespace with the servers' addresses on its loopback.
/// Dropped: the servers stop and the namespace is deleted.
struct Internet {
    name: String,
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

const WEB: &str = "198.51.100.10";
const WEB6: &str = "2001:db8:100::10";
const RESOLVER: &str = "198.51.100.53";
/// What the fake resolver answers for every A query.
const ANSWER: [u8; 4] = [203, 0, 113, 10];

impl Internet {
    fn new(tag: &str) -> Internet {
        let net = Internet::bare(tag);
        for a in [WEB, RESOLVER] {
            sh(&[
                "ip",
                "-n",
                &net.name,
                "addr",
                "add",
                &format!("{a}/32"),
                "dev",
                "lo",
            ]);
        }
        sh(&[
            "ip",
            "-n",
            &net.name,
            "-6",
            "addr",
            "add",
            &format!("{WEB6}/128"),
            "dev",
            "lo",
            "nodad",
        ]);
        net
    }

    /// A namespace with only `lo` up.
    fn bare(tag: &str) -> Internet {
        let name = format!(
            "corral-t-{tag}-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::SeqCst)
        );
        sh(&["ip", "netns", "add", &name]);
        let net = Internet {
            name,
            stop: Arc::new(AtomicBool::new(false)),
            threads: Vec::new(),
        };
        sh(&["ip", "-n", &net.name, "link", "set", "lo", "up"]);
        net
    }

    fn path(&self) -> PathBuf {
        PathBuf::from("/run/netns").join(&self.name)
    }

    /// Runs `f` on a new thread inside the namespace (setns is per thread).
    fn spawn_in(&mut self, f: impl FnOnce(Arc<AtomicBool>) + Send + 'static) {
        let ns = std::fs::File::open(self.path()).unwrap();
        let stop = Arc::clone(&self.stop);
        let (tx, rx) = std::sync::mpsc::channel();
        self.threads.push(std::thread::spawn(move || {
            // SAFETY: setns(2) on an fd we own, for this thread only; no memory is involved.
            let r = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(r, 0, "setns: {}", std::io::Error::last_os_error());
            drop(ns);
            tx.send(()).unwrap();
            f(stop)
        }));
        rx.recv().unwrap();
    }

    /// A TCP server on `addr`: it first sends `peer ADDRESS` (the client's address as it sees
    /// it), then echoes every line.
    fn serve_echo(&mut self, addr: &str) {
        let addr: SocketAddr = addr.parse().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        self.spawn_in(move |stop| {
            let l = TcpListener::bind(addr).unwrap();
            l.set_nonblocking(true).unwrap();
            tx.send(()).unwrap();
            while !stop.load(Ordering::SeqCst) {
                match l.accept() {
                    Ok((mut s, peer)) => {
                        let stop = Arc::clone(&stop);
                        std::thread::spawn(move || {
                            s.set_nonblocking(false).unwrap();
                            s.set_read_timeout(Some(Duration::from_millis(100)))
                                .unwrap();
                            let _ = writeln!(s, "peer {}", peer.ip());
                            let mut r = BufReader::new(s.try_clone().unwrap());
                            let mut line = String::new();
                            while !stop.load(Ordering::SeqCst) {
                                match r.read_line(&mut line) {
                                    Ok(0) => break,
                                    Ok(_) => {
                                        let _ = s.write_all(line.as_bytes());
                                        line.clear();
                                    }
                                    Err(e)
                                        if matches!(
                                            e.kind(),
                                            std::io::ErrorKind::WouldBlock
                                                | std::io::ErrorKind::TimedOut
                                        ) => {}
                                    Err(_) => break,
                                }
                            }
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        rx.recv().unwrap();
    }

    /// A DNS server on `RESOLVER:53` answering every query with one A record, [`ANSWER`].
    fn serve_dns(&mut self) {
        let (tx, rx) = std::sync::mpsc::channel();
        self.spawn_in(move |stop| {
            let s = UdpSocket::bind((RESOLVER, 53)).unwrap();
            s.set_read_timeout(Some(Duration::from_millis(100)))
                .unwrap();
            tx.send(()).unwrap();
            let mut buf = [0u8; 512];
            while !stop.load(Ordering::SeqCst) {
                let Ok((n, peer)) = s.recv_from(&mut buf) else {
                    continue;
                };
                if let Some(reply) = dns_answer(&buf[..n]) {
                    let _ = s.send_to(&reply, peer);
                }
            }
        });
        rx.recv().unwrap();
    }
}

/// A reply to a one-question query: the question, and an A record for it.
fn dns_answer(q: &[u8]) -> Option<Vec<u8>> {
    if q.len() < 12 {
        return None;
    }
    let mut i = 12;
    while *q.get(i)? != 0 {
        i += 1 + usize::from(q[i]);
    }
    let end = i + 5;
    let question = q.get(12..end)?;
    let mut r = Vec::new();
    r.extend_from_slice(&q[..2]);
    r.extend_from_slice(&[0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0]);
    r.extend_from_slice(question);
    r.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
    r.extend_from_slice(&ANSWER);
    Some(r)
}

impl Drop for Internet {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// A daemon with the network chain on, its uplink in `net`.
struct Daemon {
    dir: PathBuf,
    child: Option<Child>,
}

fn net_config(net: &Internet, nft: Option<&Path>) -> serde_json::Value {
    serde_json::json!({
        "upstream_dns": [RESOLVER],
        "ipv6": { "prefix": "2001:db8:c0::", "prefix_len": 64 },
        "uplink": {
            "qube": "sys-net",
            "netns": net.path(),
            "outer": "192.0.2.1", "inner": "192.0.2.2", "prefix_len": 24,
            "outer6": "2001:db8:ff::1", "inner6": "2001:db8:ff::2", "prefix6_len": 64,
        },
        "nft": nft.map_or_else(|| PathBuf::from("nft"), Path::to_path_buf),
    })
}

impl Daemon {
    fn start(tag: &str, net: &Internet, nft: Option<&Path>) -> Daemon {
        Daemon::start_with(tag, &net_config(net, nft))
    }

    fn start_with(tag: &str, config: &serde_json::Value) -> Daemon {
        let dir = std::env::temp_dir().join(format!(
            "corral-t-net-{tag}-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("data")).unwrap();
        std::fs::write(
            dir.join("data/network.json"),
            serde_json::to_vec_pretty(config).unwrap(),
        )
        .unwrap();
        let child = Command::new(CTL)
            .arg("daemon")
            .arg("--data-dir")
            .arg(dir.join("data"))
            .arg("--runtime-dir")
            .arg(dir.join("run"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("daemon.log")).unwrap())
            .spawn()
            .unwrap();
        let d = Daemon {
            dir,
            child: Some(child),
        };
        let t0 = Instant::now();
        while std::os::unix::net::UnixStream::connect(d.dir.join("run/admin.sock")).is_err() {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "daemon did not start"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        d
    }

    /// `corralctl ARGS` running in the background (stdout piped when asked), killed on drop.
    fn spawn_ctl(&self, args: &[&str], stdout: Stdio) -> KillOnDrop {
        KillOnDrop(
            Command::new(CTL)
                .env("CORRAL_ADMIN_SOCKET", self.dir.join("run/admin.sock"))
                .args(args)
                .stdin(Stdio::null())
                .stdout(stdout)
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        )
    }

    /// An echo server on `port` in `qube` (for 20 s at most), once it answers the qube itself.
    fn listen_echo(&self, qube: &str, port: u16) -> KillOnDrop {
        let listener = self.spawn_ctl(
            &[
                "run",
                "-p",
                qube,
                &format!("timeout 20 socat TCP4-LISTEN:{port},fork,reuseaddr EXEC:cat"),
            ],
            Stdio::null(),
        );
        let t0 = Instant::now();
        while !self.reaches(qube, "127.0.0.1", port) {
            assert!(
                t0.elapsed() < Duration::from_secs(5),
                "listener did not start"
            );
        }
        listener
    }

    fn ctl(&self, args: &[&str]) -> Output {
        Command::new(CTL)
            .env("CORRAL_ADMIN_SOCKET", self.dir.join("run/admin.sock"))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.ctl(args);
        assert!(
            o.status.success(),
            "corralctl {args:?} failed ({}): {}\ndaemon log:\n{}",
            o.status,
            String::from_utf8_lossy(&o.stderr),
            self.log()
        );
        String::from_utf8(o.stdout).unwrap()
    }

    fn fails(&self, args: &[&str]) -> String {
        let o = self.ctl(args);
        assert_eq!(o.status.code(), Some(1), "corralctl {args:?} should fail");
        String::from_utf8(o.stderr).unwrap()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("daemon.log")).unwrap_or_default()
    }

    /// `host` template; sys-net (uplink) ← sys-firewall ← default netvm of `work` and `other`.
    fn with_chain(self) -> Self {
        self.ok(&[
            "create",
            "host",
            "--class",
            "templatevm",
            "--label",
            "black",
        ]);
        self.ok(&["global-prefs", "default_template", "host"]);
        self.ok(&["create", "sys-net", "--label", "red"]);
        self.ok(&["prefs", "sys-net", "provides_network", "True"]);
        self.ok(&["prefs", "sys-net", "netvm", "none"]);
        self.ok(&[
            "create",
            "sys-firewall",
            "--label",
            "green",
            "--netvm",
            "sys-net",
        ]);
        self.ok(&["prefs", "sys-firewall", "provides_network", "True"]);
        self.ok(&["global-prefs", "default_netvm", "sys-firewall"]);
        self.ok(&["create", "work", "--label", "blue"]);
        self.ok(&["create", "other", "--label", "orange"]);
        self
    }

    /// Runs `cmd` (through `sh -c`) in `qube`; its stdout, whatever the exit status.
    fn run(&self, qube: &str, cmd: &str) -> String {
        let o = self.ctl(&["run", "-p", qube, cmd]);
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Opens a TCP connection from `qube` to `host:port`, sends a line; what came back.
    fn talk(&self, qube: &str, host: &str, port: u16) -> String {
        let target = if host.contains(':') {
            format!("TCP6:[{host}]:{port}")
        } else {
            format!("TCP4:{host}:{port}")
        };
        let o = self.ctl(&[
            "run",
            "-p",
            qube,
            &format!(
                "command -v socat >/dev/null || exit 97; echo probe-ran; \
                 echo hello | timeout 3 socat -t 1 - {target},connect-timeout=1.5; \
                 echo socat-exit=$?"
            ),
        ]);
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        // "Not reached" must mean the connection failed, never that the probe did not run
        // (qube not started, corralctl failing, socat missing).
        assert!(
            o.status.success() && out.contains("probe-ran") && out.contains("socat-exit="),
            "the probe from {qube} to {host}:{port} did not run ({}): {out}{}",
            o.status,
            String::from_utf8_lossy(&o.stderr)
        );
        out
    }

    fn reaches(&self, qube: &str, host: &str, port: u16) -> bool {
        let out = self.talk(qube, host, port);
        out.lines().any(|l| l == "hello")
    }

    fn qid(&self, qube: &str) -> String {
        self.ok(&["prefs", qube, "qid"]).trim().to_owned()
    }

    /// The qube's home on the host (to hand it files).
    fn home(&self, qube: &str) -> PathBuf {
        self.dir
            .join("data/volumes")
            .join(self.qid(qube))
            .join("private")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: kill(2) on our own child's pid.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let t0 = Instant::now();
            while c.try_wait().ok().flatten().is_none() {
                if t0.elapsed() > Duration::from_secs(10) {
                    let _ = c.kill();
                    let _ = c.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        } else {
            eprintln!("daemon log:\n{}", self.log());
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Sends a DNS query for example.com to `server` from `qube`; the answer's address if any.
fn dns_query(d: &Daemon, qube: &str, server: &str) -> Option<[u8; 4]> {
    let query =
        r"\022\064\001\000\000\001\000\000\000\000\000\000\007example\003com\000\000\001\000\001";
    let out = d.run(
        qube,
        &format!("printf '{query}' | timeout 3 socat -t 2 - UDP4:{server}:53 | od -An -v -tu1"),
    );
    let bytes: Vec<u8> = out
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    (bytes.len() >= 4).then(|| {
        let n = bytes.len();
        [bytes[n - 4], bytes[n - 3], bytes[n - 2], bytes[n - 1]]
    })
}

#[test]
fn an_app_qube_reaches_the_internet_through_the_chain_and_never_its_neighbour() {
    if !can_run() {
        return;
    }
    let mut net = Internet::new("reach");
    net.serve_echo(&format!("{WEB}:80"));
    net.serve_dns();
    let d = Daemon::start("reach", &net, None).with_chain();
    // Starting `work` starts sys-firewall and sys-net first, and links them.
    let out = d.talk("work", WEB, 80);
    assert!(
        out.contains("hello"),
        "work did not reach the server: {out:?}\n{}",
        d.log()
    );
    // The server sees sys-net's uplink address: NAT at each hop.
    assert!(out.contains("peer 192.0.2.2"), "{out:?}");
    let ls = d.ok(&["ls"]);
    for q in ["sys-net", "sys-firewall", "work"] {
        assert!(
            ls.lines()
                .any(|l| l.starts_with(q) && l.contains("Running")),
            "{q} not running:\n{ls}"
        );
    }
    // The addressing is Qubes': a /32 with the netvm's address as gateway.
    let work_ip = d.run("work", "ip -4 -o addr show dev eth0");
    let qid: u32 = d.qid("work").parse().unwrap();
    assert!(work_ip.contains(&format!("10.137.0.{qid}/32")), "{work_ip}");
    let route = d.run("work", "ip route show default");
    let fw_qid = d.qid("sys-firewall");
    assert!(route.contains(&format!("via 10.137.0.{fw_qid}")), "{route}");
    // DNS to the virtual address is forwarded to the real resolver by sys-net.
    assert_eq!(dns_query(&d, "work", "10.139.1.1"), Some(ANSWER));
    assert_eq!(dns_query(&d, "work", "10.139.1.2"), Some(ANSWER));

    // A neighbour on the same netvm cannot be reached, although it listens.
    let other_qid: u32 = d.qid("other").parse().unwrap();
    // It is listening: it answers itself.
    let mut listener = d.listen_echo("other", 9000);
    assert!(d.reaches("other", WEB, 80), "other is online");
    let other_ip = format!("10.137.0.{other_qid}");
    assert!(!d.reaches("work", &other_ip, 9000), "work reached other");
    // Nor the netvm's own address (only ICMP and DNS go to the netvm itself).
    assert!(!d.reaches("work", &format!("10.137.0.{fw_qid}"), 9000));
    let _ = listener.0.kill();
    // A disposable gets its address from the disposables' range, and network.
    d.ok(&["create", "dvm", "--label", "red"]);
    d.ok(&["prefs", "dvm", "template_for_dispvms", "True"]);
    let out = d.ok(&[
        "run",
        "--dispvm=dvm",
        "-p",
        &format!("ip -4 -o addr show dev eth0; echo hi | timeout 3 socat -t 1 - TCP4:{WEB}:80"),
    ]);
    assert!(out.contains(" 10.138.") && out.contains("hi"), "{out}");
    // A qube with netvm none has no interface but loopback.
    d.ok(&["create", "offline", "--label", "gray", "--netvm", "none"]);
    let links = d.run("offline", "ip -o link show");
    assert_eq!(links.lines().count(), 1, "{links}");
    assert!(!d.reaches("offline", WEB, 80));
}

struct KillOnDrop(Child);
impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_drop_rule_blocks_one_port_while_another_passes() {
    if !can_run() {
        return;
    }
    let mut net = Internet::new("ports");
    net.serve_echo(&format!("{WEB}:80"));
    net.serve_echo(&format!("{WEB}:81"));
    let d = Daemon::start("ports", &net, None).with_chain();
    assert!(d.reaches("work", WEB, 81));
    d.ok(&[
        "firewall",
        "work",
        "add",
        "--before",
        "0",
        "action=drop",
        "dsthost=198.51.100.0/24",
        "proto=tcp",
        "dstports=81",
    ]);
    assert!(d.reaches("work", WEB, 80), "port 80 should pass");
    assert!(!d.reaches("work", WEB, 81), "port 81 should be dropped");
    // Only this qube's rules changed.
    assert!(d.reaches("other", WEB, 81));
    // The table.
    let table = d.ok(&["firewall", "work", "list"]);
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("NO  ACTION  HOST"), "{table}");
    assert!(
        lines[1].split_whitespace().collect::<Vec<_>>()
            == [
                "0",
                "drop",
                "198.51.100.0/24",
                "tcp",
                "81",
                "-",
                "-",
                "-",
                "-"
            ],
        "{table}"
    );
    assert!(lines[2].starts_with("1   accept  -"), "{table}");
    // Bad rules are refused with the reason, and change nothing.
    let e = d.fails(&["firewall", "work", "add", "accept", "dstports=80"]);
    assert!(e.contains("dstports needs proto"), "{e}");
    let e = d.fails(&["firewall", "work", "del", "7"]);
    assert!(e.contains("no rule 7"), "{e}");
    assert_eq!(d.ok(&["firewall", "work", "list"]), table);
    // Reset: the default list again, and 81 passes.
    d.ok(&["firewall", "work", "reset"]);
    assert!(d.reaches("work", WEB, 81));
    // The rules are stored: a restarted qube gets them.
    d.ok(&[
        "firewall",
        "work",
        "add",
        "--before",
        "0",
        "drop",
        "proto=tcp",
        "dstports=80",
    ]);
    d.ok(&["kill", "work"]);
    assert!(!d.reaches("work", WEB, 80));
    assert!(d.reaches("work", WEB, 81));
}

#[test]
fn an_expiring_rule_expires() {
    if !can_run() {
        return;
    }
    let mut net = Internet::new("expire");
    net.serve_echo(&format!("{WEB}:80"));
    let d = Daemon::start("expire", &net, None).with_chain();
    d.ok(&[
        "firewall",
        "work",
        "add",
        "accept",
        "proto=tcp",
        "dstports=80",
        "expire=+4",
    ]);
    d.ok(&["firewall", "work", "del", "0"]);
    let t0 = Instant::now();
    assert!(d.reaches("work", WEB, 80), "allowed before expiry");
    let table = d.ok(&["firewall", "work", "list"]);
    assert!(table.contains("(in "), "{table}");
    let left = Duration::from_secs(5).saturating_sub(t0.elapsed());
    std::thread::sleep(left);
    assert!(!d.reaches("work", WEB, 80), "allowed after expiry");
    assert!(d.ok(&["firewall", "work", "list"]).contains("(expired)"));
}

#[test]
fn a_dns_rule_allows_only_dns() {
    if !can_run() {
        return;
    }
    let mut net = Internet::new("dns");
    net.serve_echo(&format!("{WEB}:80"));
    net.serve_dns();
    let d = Daemon::start("dns", &net, None).with_chain();
    d.ok(&[
        "firewall",
        "work",
        "add",
        "--before",
        "0",
        "accept",
        "specialtarget=dns",
    ]);
    d.ok(&["firewall", "work", "del", "1"]);
    assert_eq!(dns_query(&d, "work", "10.139.1.1"), Some(ANSWER));
    // The qube's resolver is pointed at the virtual servers, so names resolve through the chain.
    let conf = d.run("work", "cat /etc/resolv.conf");
    assert_eq!(conf, "nameserver 10.139.1.1\nnameserver 10.139.1.2\n");
    let host = d.run("work", "getent hosts example.com");
    assert!(host.starts_with("203.0.113.10 "), "{host:?}");
    assert!(!d.reaches("work", WEB, 80), "only DNS should pass");
    // DNS straight to the resolver is not DNS to the virtual servers.
    assert_eq!(dns_query(&d, "work", RESOLVER), None);
    assert!(d.reaches("other", WEB, 80));
}

#[test]
fn a_rule_added_to_a_running_qube_cuts_an_open_connection() {
    if !can_run() {
        return;
    }
    let mut net = Internet::new("cut");
    net.serve_echo(&format!("{WEB}:80"));
    let d = Daemon::start("cut", &net, None).with_chain();
    d.ok(&["start", "work"]);
    let home = d.home("work");
    // Opens a connection, proves it works, waits for ~/go, then tries again on the same one.
    let script = format!(
        "exec 3<>/dev/tcp/{WEB}/80; read -t 3 p <&3; echo one >&3; read -t 3 a <&3 && echo got:$a; \
         echo ready > ~/ready; while [ ! -e ~/go ]; do sleep 0.05; done; \
         echo two >&3; if read -t 3 b <&3; then echo got:$b; else echo cut; fi"
    );
    let mut child = d.spawn_ctl(
        &["run", "-p", "work", "bash", "-c", &script],
        Stdio::piped(),
    );
    let t0 = Instant::now();
    while !home.join("ready").exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "the connection did not open"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    d.ok(&[
        "firewall",
        "work",
        "add",
        "--before",
        "0",
        "drop",
        "dsthost=198.51.100.10",
    ]);
    std::fs::write(home.join("go"), "").unwrap();
    let mut out = String::new();
    child
        .0
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert_eq!(out, "got:one\ncut\n", "{}", d.log());
    // The control: without the rule the same sequence keeps its connection.
    d.ok(&["firewall", "work", "del", "0"]);
    std::fs::remove_file(home.join("ready")).unwrap();
    let o = d.ctl(&["run", "-p", "work", "bash", "-c", &script]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "got:one\ngot:two\n");
}

#[test]
fn the_chain_fails_closed_when_nftables_rejects_the_rules() {
    if !can_run() {
        return;
    }
    let mut net = Internet::new("closed");
    net.serve_echo(&format!("{WEB}:80"));
    // The real nft, given one line it must reject whenever the flag file exists.
    let dir = std::env::temp_dir().join(format!(
        "corral-t-nft-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let flag = dir.join("reject");
    let wrapper = dir.join("nft");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nif [ -e '{}' ]; then {{ cat; echo 'add rule inet corral forward no-such-statement'; }} | nft \"$@\"; exit $?; fi\nexec nft \"$@\"\n",
            flag.display()
        ),
    )
    .unwrap();
    sh(&["chmod", "755", wrapper.to_str().unwrap()]);
    let d = Daemon::start("closed", &net, Some(&wrapper)).with_chain();
    assert!(d.reaches("work", WEB, 80));
    std::fs::write(&flag, "").unwrap();
    let e = d.fails(&[
        "firewall",
        "work",
        "add",
        "--before",
        "0",
        "accept",
        "proto=tcp",
        "dstports=80",
    ]);
    assert!(
        e.contains("no network") && e.contains("no-such-statement"),
        "{e}"
    );
    // The old ruleset allowed port 80, and is still loaded: the link is what cuts it.
    assert!(
        !d.reaches("work", WEB, 80),
        "work is online with rules that did not apply"
    );
    std::fs::remove_file(&flag).unwrap();
    d.ok(&["firewall", "work", "del", "0"]);
    assert!(
        d.reaches("work", WEB, 80),
        "work is back once the rules apply"
    );
    // A qube started while nft refuses its netvm's rules never gets online either.
    std::fs::write(&flag, "").unwrap();
    d.ok(&["start", "other"]);
    assert!(!d.reaches("other", WEB, 80));
    assert!(
        d.log()
            .contains("could not be applied, so its clients have no network"),
        "{}",
        d.log()
    );
    drop(d);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn ipv6_with_a_configured_prefix_works_end_to_end() {
    if !can_run() {
        return;
    }
    let mut net = Internet::new("v6");
    net.serve_echo(&format!("[{WEB6}]:80"));
    let d = Daemon::start("v6", &net, None).with_chain();
    let qid: u32 = d.qid("work").parse().unwrap();
    let addr = d.run("work", "ip -6 -o addr show dev eth0 scope global");
    let want = format!("2001:db8:c0::a89:{qid:x}/128");
    assert!(addr.contains(&want), "{addr}");
    let out = d.talk("work", WEB6, 80);
    assert!(out.contains("hello"), "{out:?}\n{}", d.log());
    // Routed, not NAT66: the server sees the qube's own address.
    assert!(
        out.contains(&format!("peer 2001:db8:c0::a89:{qid:x}")),
        "{out:?}"
    );
    // Firewall rules apply to IPv6 too.
    d.ok(&[
        "firewall",
        "work",
        "add",
        "--before",
        "0",
        "drop",
        "dsthost=2001:db8:100::/48",
    ]);
    assert!(!d.reaches("work", WEB6, 80));
}

#[test]
fn stopping_the_vpn_qube_leaves_its_clients_offline() {
    if !can_run() {
        return;
    }
    let mut net = Internet::new("vpn");
    net.serve_echo(&format!("{WEB}:80"));
    let d = Daemon::start("vpn", &net, None).with_chain();
    d.ok(&["create", "vpn", "--label", "purple"]);
    d.ok(&["prefs", "vpn", "provides_network", "True"]);
    d.ok(&["prefs", "work", "netvm", "vpn"]);
    let out = d.talk("work", WEB, 80);
    assert!(out.contains("hello"), "{out:?}");
    let route = d.run("work", "ip route show default");
    assert!(
        route.contains(&format!("via 10.137.0.{}", d.qid("vpn"))),
        "{route}"
    );
    // The vpn qube's own clients' rules are enforced in it.
    d.ok(&[
        "firewall",
        "work",
        "add",
        "--before",
        "0",
        "drop",
        "proto=tcp",
        "dstports=80",
    ]);
    assert!(!d.reaches("work", WEB, 80));
    d.ok(&["firewall", "work", "reset"]);
    assert!(d.reaches("work", WEB, 80));
    // A netvm with running clients is not shut down unless forced.
    let e = d.fails(&["shutdown", "--wait", "vpn"]);
    assert!(e.contains("netvm of running qubes: work"), "{e}");
    d.ok(&["shutdown", "--wait", "--force", "vpn"]);
    assert!(
        !d.reaches("work", WEB, 80),
        "work is online without its vpn qube"
    );
    // No other way out: no interface but loopback.
    let links = d.run("work", "ip -o link show");
    assert_eq!(links.lines().count(), 1, "{links}");
    // Starting the vpn qube again links its running clients again.
    d.ok(&["start", "vpn"]);
    assert!(d.reaches("work", WEB, 80), "{}", d.log());
    // Changing a running qube's netvm moves it at once: off the network, then back.
    d.ok(&["prefs", "work", "netvm", "none"]);
    assert_eq!(d.run("work", "ip -o link show").lines().count(), 1);
    assert!(!d.reaches("work", WEB, 80));
    d.ok(&["prefs", "work", "netvm", "sys-firewall"]);
    let route = d.run("work", "ip route show default");
    assert!(
        route.contains(&format!("via 10.137.0.{}", d.qid("sys-firewall"))),
        "{route}"
    );
    assert!(d.reaches("work", WEB, 80), "{}", d.log());
    // And nothing of it is left in the vpn qube's ruleset.
    d.ok(&["shutdown", "--wait", "vpn"]);
}

#[test]
fn the_uplink_can_masquerade_into_its_namespace_like_a_host() {
    if !can_run() {
        return;
    }
    // `home` plays the host (the uplink namespace, with NAT); `isp` is beyond it and has no
    // route back to sys-net's uplink subnet, so only masqueraded traffic can come back.
    let mut isp = Internet::new("isp");
    isp.serve_echo(&format!("{WEB}:80"));
    let mut home = Internet::bare("home");
    // A service of the "host" itself, on every address it has.
    home.serve_echo("0.0.0.0:8080");
    sh(&[
        "ip", "-n", &home.name, "link", "add", "wan0", "type", "veth", "peer", "name", "lan0",
        "netns", &isp.name,
    ]);
    sh(&[
        "ip",
        "-n",
        &home.name,
        "addr",
        "add",
        "203.0.113.1/24",
        "dev",
        "wan0",
    ]);
    sh(&[
        "ip",
        "-n",
        &isp.name,
        "addr",
        "add",
        "203.0.113.2/24",
        "dev",
        "lan0",
    ]);
    sh(&["ip", "-n", &home.name, "link", "set", "wan0", "up"]);
    sh(&["ip", "-n", &isp.name, "link", "set", "lan0", "up"]);
    sh(&[
        "ip",
        "-n",
        &home.name,
        "route",
        "add",
        "default",
        "via",
        "203.0.113.2",
    ]);
    let config = serde_json::json!({
        "uplink": {
            "qube": "sys-net",
            "netns": home.path(),
            "outer": "192.0.2.1", "inner": "192.0.2.2", "prefix_len": 24,
            "nat": true,
        },
    });
    let d = Daemon::start_with("nat", &config).with_chain();
    let out = d.talk("work", WEB, 80);
    assert!(out.contains("hello"), "{out:?}\n{}", d.log());
    assert!(out.contains("peer 203.0.113.1"), "{out:?}");
    // The host's service is up and reachable from its other network...
    let o = Command::new("ip")
        .args(["netns", "exec", &isp.name, "sh", "-c"])
        .arg("echo hello | timeout 3 socat -t 1 - TCP4:203.0.113.1:8080")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&o.stdout).contains("hello"));
    // ...but the qubes cannot reach the host itself, on the uplink link or any other address of it.
    assert!(!d.reaches("work", "192.0.2.1", 8080));
    assert!(!d.reaches("work", "203.0.113.1", 8080));
    assert!(!d.reaches("sys-net", "192.0.2.1", 8080));
    let tables = Command::new("ip")
        .args(["netns", "exec", &home.name, "nft", "list", "tables"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&tables.stdout).contains("corral_up"));
    // The manager going away takes its table out of the uplink namespace.
    drop(d);
    let tables = Command::new("ip")
        .args(["netns", "exec", &home.name, "nft", "list", "tables"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&tables.stdout), "");
    let links = Command::new("ip")
        .args(["-n", &home.name, "-o", "link", "show"])
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&links.stdout).contains("corral-up"));
}

/// Every combination of fields the rule model accepts becomes a ruleset the real nft accepts
/// (so a valid rule can never be what makes a netvm fail closed).
#[test]
fn every_valid_rule_makes_a_ruleset_nft_accepts() {
    use corral_domains::net::nft::{ClientFw, RouterSpec, resolve_rules, router_ruleset};
    use corral_domains::net::rules::Rule;
    if !can_run() {
        return;
    }
    let mut rules = Vec::new();
    for action in ["accept", "drop"] {
        for host in [
            "",
            "dsthost=203.0.113.0/24",
            "dsthost=192.0.2.7",
            "dsthost=2001:db8::/32",
            "dsthost=2001:db8::1",
        ] {
            for proto in ["", "proto=tcp", "proto=udp", "proto=icmp"] {
                for ports in ["", "dstports=80", "dstports=1000-2000"] {
                    for icmp in ["", "icmptype=8"] {
                        for expire in ["", "expire=+3600"] {
                            let text = format!(
                                "{action} {host} {proto} {ports} {icmp} {expire} comment=\"x y\""
                            );
                            if let Ok(r) = Rule::parse(&text, 1_800_000_000) {
                                rules.push(r);
                            }
                        }
                    }
                }
            }
        }
        rules.push(Rule::parse(&format!("{action} specialtarget=dns"), 0).unwrap());
        rules.push(Rule::parse(&format!("{action} specialtarget=dns proto=udp"), 0).unwrap());
    }
    assert!(rules.len() > 150, "{}", rules.len());
    let clients: Vec<ClientFw> = rules
        .chunks(64)
        .enumerate()
        .map(|(i, chunk)| {
            let qid = i as u32 + 2;
            ClientFw {
                qid,
                ifname: format!("vif{qid}"),
                src4: vec![format!("10.137.0.{qid}").parse().unwrap()],
                src6: vec![format!("2001:db8:c0::a89:{qid}").parse().unwrap()],
                rules: resolve_rules(chunk, 1_800_000_000, &mut |_| unreachable!()),
            }
        })
        .collect();
    let spec = RouterSpec {
        uplink_if: "eth0".into(),
        virtual_dns: ["10.139.1.1".parse().unwrap(), "10.139.1.2".parse().unwrap()],
        dns_targets: vec!["198.51.100.53".parse().unwrap()],
        nat66: true,
        egress_only: Some("tun0".into()),
        clients,
    };
    let ns = Internet::bare("nftcheck");
    let text = router_ruleset(&spec);
    corral_domains::net::link::nft_apply(&ns.path(), Path::new("nft"), &text)
        .unwrap_or_else(|e| panic!("{e}"));
    // Applying it again replaces it (one transaction), not adds to it.
    corral_domains::net::link::nft_apply(&ns.path(), Path::new("nft"), &text).unwrap();
    let listed = Command::new("ip")
        .args(["netns", "exec", &ns.name, "nft", "list", "ruleset"])
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert_eq!(listed.matches("table inet corral").count(), 1);
    assert_eq!(listed.matches("chain fw_").count(), spec.clients.len());
    assert!(listed.contains("meta time <"));
}

/// Whether `openvpn` and `openssl` are here (Debian packages openvpn, openssl); without,
/// skip (or fail under CI).
fn have_openvpn() -> bool {
    let ok = [("openvpn", "--version"), ("openssl", "version")]
        .iter()
        .all(|(p, arg)| {
            Command::new(p)
                .arg(arg)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        && Path::new("/dev/net/tun").exists();
    if !ok {
        let why = "the VPN test needs openvpn, openssl and /dev/net/tun";
        assert!(std::env::var_os("CI").is_none(), "{why}");
        eprintln!("skipped: {why}");
    }
    ok
}

/// A self-signed EC certificate and key for `cn` in `dir` (`cn.crt`, `cn.key`); its SHA-256
/// fingerprint, as OpenVPN's `--peer-fingerprint` takes it.
fn self_signed(dir: &Path, cn: &str) -> String {
    let (crt, key) = (dir.join(format!("{cn}.crt")), dir.join(format!("{cn}.key")));
    let o = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"])
        .args(["-subj", &format!("/CN={cn}"), "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&crt)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(&crt)
        .output()
        .unwrap();
    let text = String::from_utf8(o.stdout).unwrap();
    text.trim().split_once('=').unwrap().1.to_owned()
}

/// The VPN server's address in the fake internet, and the tunnel's two ends.
const VPN_SERVER: &str = "198.51.100.20";
const TUN_SERVER: &str = "10.8.0.1";
const TUN_CLIENT: &str = "10.8.0.2";

#[test]
fn a_vpn_qube_runs_openvpn_itself_and_its_clients_never_leak() {
    if !can_run() || !have_openvpn() {
        return;
    }
    let mut net = Internet::new("tunnel");
    net.serve_echo(&format!("{WEB}:80"));
    sh(&[
        "ip",
        "-n",
        &net.name,
        "addr",
        "add",
        &format!("{VPN_SERVER}/32"),
        "dev",
        "lo",
    ]);
    let d = Daemon::start("tunnel", &net, None).with_chain();
    // A real OpenVPN server in the fake internet: TLS, each side pinning the other's
    // self-signed certificate (OpenVPN 2.6's peer-fingerprint setup), point to point.
    let keys = d.dir.join("vpn-server");
    std::fs::create_dir_all(&keys).unwrap();
    let server_fp = self_signed(&keys, "server");
    let client_fp = self_signed(&keys, "client");
    let server_log = keys.join("server.log");
    let _server = KillOnDrop(
        Command::new("ip")
            .args(["netns", "exec", &net.name, "openvpn"])
            .args(["--dev", "tun", "--proto", "udp", "--local", VPN_SERVER])
            .args(["--lport", "1194", "--tls-server", "--dh", "none"])
            .arg("--cert")
            .arg(keys.join("server.crt"))
            .arg("--key")
            .arg(keys.join("server.key"))
            .args(["--peer-fingerprint", &client_fp])
            .args(["--ifconfig", TUN_SERVER, TUN_CLIENT, "--verb", "3"])
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&server_log).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );

    d.ok(&["create", "vpn", "--label", "purple"]);
    d.ok(&["prefs", "vpn", "provides_network", "True"]);
    d.ok(&["features", "vpn", "vpn-interface", "tun0"]);
    d.ok(&["features", "vpn", "net-admin", "1"]);
    d.ok(&["prefs", "work", "netvm", "vpn"]);
    d.ok(&["start", "work"]);

    // What each kind of qube may do. An ordinary app qube: no capabilities, no tun device,
    // no root.
    let caps = |q: &str, root: bool| {
        let mut args = vec!["run", "-p"];
        if root {
            args.push("--root");
        }
        args.extend([q, "grep -E '^Cap(Eff|Bnd)' /proc/self/status"]);
        d.ok(&args)
    };
    let work_caps = caps("other", false);
    assert!(
        work_caps.contains("CapEff:\t0000000000000000"),
        "{work_caps}"
    );
    assert_eq!(
        d.run("other", "test -e /dev/net/tun || echo none"),
        "none\n"
    );
    // Under a root manager the qube's user is the host's uid 0 for file permissions (no
    // capabilities though): global sysctls must not be writable for it (kernel.core_pattern
    // would run code as host root).
    assert_eq!(
        d.run(
            "other",
            "test -w /proc/sys/kernel/core_pattern && echo writable || echo read-only"
        ),
        "read-only\n"
    );
    let e = d.fails(&["run", "-p", "--root", "other", "id"]);
    assert!(e.contains("no net-admin feature"), "{e}");
    // The VPN qube's user: no capabilities either, and it cannot make a device.
    let user_caps = caps("vpn", false);
    assert!(
        user_caps.contains("CapEff:\t0000000000000000"),
        "{user_caps}"
    );
    assert!(
        d.run("vpn", "ip tuntap add tun9 mode tun 2>&1; echo exit=$?")
            .contains("Operation not permitted"),
        "the VPN qube's user made a tun device"
    );
    // Its root: the network capabilities (CAP_NET_BIND_SERVICE, NET_ADMIN, NET_RAW: bits
    // 10, 12, 13) and nothing else, even in the bounding set; no mounts.
    let root_caps = caps("vpn", true);
    assert!(
        root_caps.contains("CapEff:\t0000000000003400")
            && root_caps.contains("CapBnd:\t0000000000003400"),
        "{root_caps}"
    );
    let o = d.ctl(&["run", "-p", "--root", "vpn", "mount -t tmpfs x /mnt"]);
    assert!(!o.status.success(), "the VPN qube's root could mount");
    // Nor undo or loosen the sandbox's own mounts: the read-only /proc/sys and the read-only
    // host /usr. (Run from the parent of the user namespace that owns the qube's namespaces,
    // as a first version did, the root had every capability there and both worked.)
    for (what, cmd) in [
        ("unmounted /proc/sys", "umount /proc/sys"),
        ("remounted /usr read-write", "mount -o remount,bind,rw /usr"),
        ("remounted / read-write", "mount -o remount,bind,rw /"),
    ] {
        let o = d.ctl(&["run", "-p", "--root", "vpn", cmd]);
        assert!(!o.status.success(), "the VPN qube's root {what}");
    }
    assert_eq!(
        d.run(
            "vpn",
            "test -w /proc/sys/kernel/core_pattern && echo writable || echo read-only"
        ),
        "read-only\n"
    );
    // bwrap keeps /proc/sys read-only in every qube: not even the network sysctls of the
    // qube's own namespace are the root's to change (the manager sets them from outside).
    let o = d.ctl(&[
        "run",
        "-p",
        "--root",
        "vpn",
        "sysctl -w net.ipv4.ip_forward=0",
    ]);
    assert!(!o.status.success(), "the VPN qube's root wrote a sysctl");

    // No tunnel yet: the VPN qube is online through eth0, its client is not.
    assert!(d.reaches("vpn", WEB, 80));
    assert!(
        !d.reaches("work", WEB, 80),
        "work leaked past the vpn qube without a tunnel"
    );

    // The user's setup (docs/networking.md): the provider's files in the VPN qube, OpenVPN
    // started as its root.
    let conf = d.home("vpn").join("vpn");
    std::fs::create_dir_all(&conf).unwrap();
    for f in ["client.crt", "client.key"] {
        std::fs::copy(keys.join(f), conf.join(f)).unwrap();
    }
    std::fs::write(
        conf.join("client.conf"),
        format!(
            "dev tun0\nproto udp\nremote {VPN_SERVER} 1194\nnobind\ntls-client\n\
             cert /home/user/vpn/client.crt\nkey /home/user/vpn/client.key\n\
             peer-fingerprint {server_fp}\n\
             ifconfig {TUN_CLIENT} {TUN_SERVER}\nredirect-gateway def1\nverb 3\n"
        ),
    )
    .unwrap();
    let start = "openvpn --config /home/user/vpn/client.conf --daemon \
                 --writepid /run/openvpn.pid --log /run/openvpn.log";
    d.ok(&["run", "-p", "--root", "vpn", start]);
    let t0 = Instant::now();
    while !d
        .run("vpn", "cat /run/openvpn.log")
        .contains("Initialization Sequence Completed")
    {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "openvpn did not connect:\n{}\nserver:\n{}",
            d.run("vpn", "cat /run/openvpn.log"),
            std::fs::read_to_string(&server_log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let routes = d.run("vpn", "ip route");
    assert!(routes.contains("dev tun0"), "{routes}");

    // The client's traffic goes through the tunnel: the server sees the tunnel address, not
    // the VPN qube's, not sys-net's uplink address.
    let out = d.talk("work", WEB, 80);
    assert!(out.contains("hello"), "{out:?}\n{}", d.log());
    assert!(
        out.contains(&format!("peer {TUN_CLIENT}")),
        "not through the tunnel: {out:?}"
    );

    // OpenVPN dies (SIGKILL: no clean-up of its own): tun0 and its routes vanish, the
    // default route is eth0's again — the leak case. The VPN qube still gets out (and could
    // reconnect); its client gets nowhere.
    d.ok(&[
        "run",
        "-p",
        "--root",
        "vpn",
        "kill -KILL $(cat /run/openvpn.pid)",
    ]);
    let t0 = Instant::now();
    while d
        .run("vpn", "ip link show tun0 2>/dev/null")
        .contains("tun0")
    {
        assert!(t0.elapsed() < Duration::from_secs(10), "tun0 stayed");
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = d.talk("vpn", WEB, 80);
    assert!(out.contains("peer 192.0.2.2"), "{out}");
    assert!(
        !d.reaches("work", WEB, 80),
        "work leaked past the vpn qube with its tunnel down"
    );

    // Without the feature the same routes would leak; a change reaches the running vpn qube
    // at once.
    d.ok(&["features", "vpn", "vpn-interface", "--delete"]);
    assert!(d.reaches("work", WEB, 80));
    // A bad name is stored (features are free text) but fails closed.
    let e = d.fails(&["features", "vpn", "vpn-interface", "vif9"]);
    assert!(e.contains("not a usable interface name"), "{e}");
    assert!(
        !d.reaches("work", WEB, 80),
        "a bad vpn-interface must fail closed"
    );
    d.ok(&["features", "vpn", "vpn-interface", "tun0"]);
    assert!(!d.reaches("work", WEB, 80));
}

/// Whether `slirp4netns` is here (Debian package slirp4netns); without, skip (or fail under
/// CI).
fn have_slirp() -> bool {
    let ok = Command::new("slirp4netns")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        let why = "the user-mode uplink test needs slirp4netns";
        assert!(std::env::var_os("CI").is_none(), "{why}");
        eprintln!("skipped: {why}");
    }
    ok
}

/// The uid the unprivileged manager runs as (`nobody`; setpriv needs no passwd entry).
const USER: u32 = 65534;

impl Daemon {
    /// A daemon running as [`USER`] with the network chain configured by `config`. It runs in
    /// a mount namespace of the test's where `/dev/net/tun` is a node of the test's with mode
    /// 0666 — what Debian's udev rules make of it on a normal host (this machine's is 0600),
    /// and what slirp4netns, run by the user, needs.
    fn start_user(tag: &str, config: &serde_json::Value) -> Daemon {
        let dir = std::env::temp_dir().join(format!(
            "corral-t-net-{tag}-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("data")).unwrap();
        std::fs::write(
            dir.join("data/network.json"),
            serde_json::to_vec_pretty(config).unwrap(),
        )
        .unwrap();
        sh(&[
            "chown",
            "-R",
            &format!("{USER}:{USER}"),
            dir.to_str().unwrap(),
        ]);
        let tun = dir.join("tun");
        sh(&[
            "mknod",
            "-m",
            "666",
            tun.to_str().unwrap(),
            "c",
            "10",
            "200",
        ]);
        let child = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "--", "sh", "-c"])
            .arg(
                "mount --bind \"$1\" /dev/net/tun && exec setpriv --reuid=\"$2\" --regid=\"$2\" \
                 --clear-groups -- \"$3\" daemon --data-dir \"$4/data\" --runtime-dir \"$4/run\"",
            )
            .arg("sh")
            .arg(&tun)
            .arg(USER.to_string())
            .arg(CTL)
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("daemon.log")).unwrap())
            .spawn()
            .unwrap();
        let d = Daemon {
            dir,
            child: Some(child),
        };
        let t0 = Instant::now();
        while std::os::unix::net::UnixStream::connect(d.dir.join("run/admin.sock")).is_err() {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "daemon did not start: {}",
                d.log()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        d
    }
}

/// Pids of processes of `uid` whose command is `comm`.
fn pids_of(uid: u32, comm: &str) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let c = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        let st = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        if c.trim() == comm && st.lines().any(|l| l.starts_with(&format!("Uid:\t{uid}\t"))) {
            out.push(pid);
        }
    }
    out
}

#[test]
fn an_unprivileged_manager_gets_user_mode_networking_through_slirp4netns() {
    if !can_run() || !have_slirp() {
        return;
    }
    // The "internet" is the host's loopback, which slirp4netns shows the qubes as 10.0.2.2
    // (host_loopback): a server of the test's on 127.0.0.1, nothing else is contacted.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    l.set_nonblocking(true).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = Arc::clone(&stop);
    let server = std::thread::spawn(move || {
        while !stop2.load(Ordering::SeqCst) {
            let Ok((mut s, peer)) = l.accept() else {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            };
            s.set_nonblocking(false).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
            let _ = writeln!(s, "peer {}", peer.ip());
            let mut line = String::new();
            if BufReader::new(s.try_clone().unwrap())
                .read_line(&mut line)
                .is_ok()
            {
                let _ = s.write_all(line.as_bytes());
            }
        }
    });
    let d = Daemon::start_user(
        "user",
        &serde_json::json!({ "user_uplink": { "qube": "sys-net", "host_loopback": true } }),
    )
    .with_chain();
    let daemon_pid = d.child.as_ref().unwrap().id();
    let st = std::fs::read_to_string(format!("/proc/{daemon_pid}/status")).unwrap();
    assert!(
        st.lines()
            .any(|l| l == format!("Uid:\t{USER}\t{USER}\t{USER}\t{USER}")),
        "the manager is not running as {USER}"
    );
    // work → sys-firewall → sys-net → slirp4netns → the host's loopback.
    let out = d.talk("work", "10.0.2.2", port);
    assert!(out.contains("hello"), "{out:?}\n{}", d.log());
    assert!(out.contains("peer 127.0.0.1"), "{out}");
    let ls: serde_json::Value = serde_json::from_str(&d.ok(&["ls", "--json"])).unwrap();
    for q in ["sys-net", "sys-firewall", "work"] {
        assert!(
            ls.as_array()
                .unwrap()
                .iter()
                .any(|i| i["name"] == q && i["state"] == "Running"),
            "{q} is not running: {ls}"
        );
    }
    let addr = d.run("work", "ip -4 -br addr show dev eth0");
    assert!(
        addr.contains(&format!("10.137.0.{}/32", d.qid("work"))),
        "{addr}"
    );
    let uplink = d.run(
        "sys-net",
        "ip -4 -br addr show dev eth0; ip route show default",
    );
    assert!(
        uplink.contains("10.0.2.100/24") && uplink.contains("default via 10.0.2.2"),
        "{uplink}"
    );
    // The qubes' processes have no capabilities (the shared user namespace is the manager's,
    // never theirs).
    let caps = d.run("work", "grep ^CapEff /proc/self/status");
    assert_eq!(caps, "CapEff:\t0000000000000000\n");
    // Qubes cannot reach each other: other listens, answers itself, and work gets nowhere.
    let mut listener = d.listen_echo("other", 9000);
    let other_ip = format!("10.137.0.{}", d.qid("other"));
    assert!(!d.reaches("work", &other_ip, 9000), "work reached other");
    let _ = listener.0.kill();
    // Firewall rules apply as with root: a drop rule for the port cuts work off, not other.
    d.ok(&[
        "firewall",
        "work",
        "add",
        "--before",
        "0",
        "drop",
        "proto=tcp",
        &format!("dstports={port}"),
    ]);
    assert!(!d.reaches("work", "10.0.2.2", port));
    assert!(d.reaches("other", "10.0.2.2", port));
    // slirp4netns runs as the user, and goes with sys-net.
    let slirp = pids_of(USER, "slirp4netns");
    assert_eq!(slirp.len(), 1, "{slirp:?}");
    d.ok(&["kill", "sys-net"]);
    let t0 = Instant::now();
    while Path::new(&format!("/proc/{}", slirp[0])).exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "slirp4netns outlived sys-net"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!d.reaches("other", "10.0.2.2", port));
    // Started again (with the chain below it), it is online again.
    d.ok(&["start", "sys-net"]);
    assert!(d.reaches("other", "10.0.2.2", port));
    drop(d);
    assert!(pids_of(USER, "slirp4netns").is_empty());
    stop.store(true, Ordering::SeqCst);
    server.join().unwrap();
}
