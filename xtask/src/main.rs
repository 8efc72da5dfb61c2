//! `cargo xtask bench [--quick]`: Corral's GUI-path benchmarks (issue 9), reported in
//! docs/performance.md.
//!
//! Everything runs for real on this machine: a release `corral` on the headless (Pixman)
//! backend with an unthrottled output (`--frame-interval-ms 0`), and `corral-bench-client`
//! (this crate) drawing with wl_shm three ways into that one compositor, in the same run:
//! on the GUI domain's trusted local socket (the baseline), through `waypipe client`/`server`
//! (compression none and lz4), and through a qube's `corral-agent` over its channel. Then key
//! injection → arrival in the client, the compositor's frame time with 1…200 windows across
//! 20 qubes, and a memcpy of one 1080p frame as the floor.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use serde::Serialize;
use xtask::{ClientResult, Percentiles, now_ns};

#[derive(Debug, Parser)]
#[command(about = "Corral developer tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// The GUI-path benchmarks of issue 9 (see docs/performance.md).
    Bench(BenchArgs),
}

#[derive(Debug, Clone, clap::Args)]
struct BenchArgs {
    /// A short run (seconds, not minutes), to check that everything works.
    #[arg(long)]
    quick: bool,
    /// Runs of each (path, mode) pair, interleaved; results are pooled.
    #[arg(long)]
    repeat: Option<u32>,
    /// Measuring window of each frame run, in milliseconds.
    #[arg(long)]
    measure_ms: Option<u64>,
    /// Key presses injected per path.
    #[arg(long)]
    keys: Option<usize>,
    /// Skip the many-windows benchmark.
    #[arg(long)]
    skip_windows: bool,
    /// Also run domains/scripts/bench-first-frame.sh (qube start and disposable → first
    /// frame; needs root or user namespaces, bwrap, weston-simple-shm) with N runs.
    #[arg(long, value_name = "N")]
    first_frame: Option<u32>,
    /// Do not run `cargo build` first (the release binaries must exist).
    #[arg(long)]
    no_build: bool,
    /// Where the JSON results go (default: target/bench/).
    #[arg(long)]
    out_dir: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().task {
        Task::Bench(args) => bench(args),
    }
}

/// The paths the same client takes into the compositor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
enum Way {
    Baseline,
    WaypipeNone,
    WaypipeLz4,
    Qube,
    /// A control, full frames only: the direct path with ARGB8888 buffers, which the
    /// compositor cannot treat as opaque (as it cannot a qube's ARGB8888 pool).
    BaselineArgb,
}

impl Way {
    const ALL: [Way; 5] = [
        Way::Baseline,
        Way::WaypipeNone,
        Way::WaypipeLz4,
        Way::Qube,
        Way::BaselineArgb,
    ];

    fn name(self) -> &'static str {
        match self {
            Way::Baseline => "direct (local socket)",
            Way::WaypipeNone => "waypipe, no compression",
            Way::WaypipeLz4 => "waypipe, lz4",
            Way::Qube => "qube (corral-agent)",
            Way::BaselineArgb => "control: direct, ARGB8888 buffers",
        }
    }
}

struct Binaries {
    root: PathBuf,
    corral: PathBuf,
    agent: PathBuf,
    client: PathBuf,
}

fn bench(args: BenchArgs) -> anyhow::Result<()> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("workspace root")?
        .to_path_buf();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    if !args.no_build {
        let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .current_dir(&root)
            .args([
                "build",
                "--release",
                "-p",
                "corral",
                "-p",
                "corral-agent",
                "-p",
                "xtask",
            ])
            .status()
            .context("running cargo build")?;
        if !status.success() {
            bail!("cargo build failed");
        }
    }
    let bin = target.join("release");
    let bins = Binaries {
        root: root.clone(),
        corral: bin.join("corral"),
        agent: bin.join("corral-agent"),
        client: bin.join("corral-bench-client"),
    };
    for b in [&bins.corral, &bins.agent, &bins.client] {
        if !b.exists() {
            bail!("{} is missing (build with --release)", b.display());
        }
    }
    let quick = args.quick;
    let config = Config {
        repeat: args.repeat.unwrap_or(if quick { 1 } else { 3 }),
        warmup_ms: if quick { 300 } else { 1000 },
        measure_ms: args.measure_ms.unwrap_or(if quick { 1000 } else { 4000 }),
        keys: args.keys.unwrap_or(if quick { 20 } else { 500 }),
        window_counts: if quick {
            vec![1, 20]
        } else {
            vec![1, 2, 10, 50, 100, 200]
        },
    };

    let mut report = Report {
        machine: machine_description(),
        quick,
        ..Report::default()
    };
    eprintln!("== machine: {}", report.machine);

    eprintln!("== memcpy floor");
    report.memcpy = memcpy_floor(if quick { 50 } else { 300 });

    eprintln!("== frames: direct, waypipe (none, lz4), qube");
    let session = Session::start(&bins, "bench3", &[(2048, 1200)], &[("bench", "blue")])?;
    for r in 0..config.repeat {
        for mode in ["full", "small"] {
            for way in Way::ALL {
                if way == Way::BaselineArgb && mode != "full" {
                    continue;
                }
                eprintln!("   run {}/{}: {mode}, {}", r + 1, config.repeat, way.name());
                let run = frame_run(&session, &bins, &config, way, mode)
                    .with_context(|| format!("{mode} frames, {}", way.name()))?;
                report.frame_runs.push(run);
            }
        }
    }
    eprintln!("== input latency");
    for realtime in [false, true] {
        for way in [Way::Baseline, Way::Qube] {
            match input_run(&session, &bins, &config, way, realtime) {
                Ok(run) => report.input.push(run),
                // SCHED_FIFO needs root or CAP_SYS_NICE: without it that variant is left out.
                Err(e) if realtime => eprintln!("   SCHED_FIFO run left out: {e:#}"),
                Err(e) => return Err(e.context(way.name())),
            }
        }
    }
    drop(session);

    if !args.skip_windows {
        eprintln!("== compositor frame time against windows (20 qubes, one window damaged)");
        report.windows = windows_runs(&bins, &config)?;
    }

    if let Some(n) = args.first_frame {
        eprintln!(
            "== qube start / disposable → first frame (domains/scripts/bench-first-frame.sh)"
        );
        let status = Command::new(root.join("domains/scripts/bench-first-frame.sh"))
            .current_dir(&root)
            .args([n.to_string(), "--release".into()])
            .status()?;
        report.first_frame_script_ok = Some(status.success());
    }

    let summary = summarise(&report);
    println!("{}", summary.markdown);
    let out_dir = args.out_dir.unwrap_or_else(|| target.join("bench"));
    std::fs::create_dir_all(&out_dir)?;
    let path = out_dir.join(format!("bench-{}.json", unix_time()));
    let json = serde_json::json!({ "report": report, "summary": summary.json });
    std::fs::write(&path, serde_json::to_vec_pretty(&json)?)?;
    eprintln!("== results: {}", path.display());
    Ok(())
}

struct Config {
    repeat: u32,
    warmup_ms: u64,
    measure_ms: u64,
    keys: usize,
    window_counts: Vec<usize>,
}

#[derive(Debug, Default, Serialize)]
struct Report {
    machine: String,
    quick: bool,
    memcpy: MemcpyFloor,
    frame_runs: Vec<FrameRun>,
    input: Vec<InputRun>,
    windows: Vec<WindowsRun>,
    first_frame_script_ok: Option<bool>,
}

// ---------------------------------------------------------------------------------------------
// The memcpy floor.

#[derive(Debug, Default, Clone, Serialize)]
struct MemcpyFloor {
    /// One 1920×1080×4 frame, contiguous, the same two buffers every time (cache-warm where
    /// the last-level cache holds 16.6 MB).
    frame_1080p: Percentiles,
    /// The same, rotating through 8 source and 8 destination frames (133 MB: out of cache).
    frame_1080p_cold: Percentiles,
    /// A 64×64 square out of a 1080p frame (64 rows of 256 bytes, stride 7680).
    square_64: Percentiles,
}

fn memcpy_floor(iterations: usize) -> MemcpyFloor {
    let size = 1920 * 1080 * 4;
    let src: Vec<u8> = (0..size).map(|i| i as u8).collect();
    let mut dst = vec![0u8; size];
    let mut frame = Vec::new();
    for _ in 0..iterations {
        let t = now_ns();
        dst.copy_from_slice(std::hint::black_box(&src));
        frame.push(now_ns() - t);
        std::hint::black_box(&mut dst);
    }
    let srcs: Vec<Vec<u8>> = (0..8).map(|k| vec![k as u8; size]).collect();
    let mut dsts: Vec<Vec<u8>> = (0..8).map(|_| vec![0u8; size]).collect();
    let mut cold = Vec::new();
    for i in 0..iterations {
        let (a, b) = (i % 8, (i * 3 + 1) % 8);
        let t = now_ns();
        dsts[b].copy_from_slice(std::hint::black_box(&srcs[a]));
        cold.push(now_ns() - t);
        std::hint::black_box(&mut dsts[b]);
    }
    drop((srcs, dsts));
    let stride = 1920 * 4;
    let mut square = Vec::new();
    for i in 0..iterations * 20 {
        // A different place each time, so it is not always in cache (as a damaged rect is not).
        let x = (i * 97) % (1920 - 64);
        let y = (i * 53) % (1080 - 64);
        let t = now_ns();
        for row in 0..64 {
            let off = (y + row) * stride + x * 4;
            dst[off..off + 256].copy_from_slice(&src[off..off + 256]);
        }
        square.push(now_ns() - t);
        std::hint::black_box(&mut dst);
    }
    MemcpyFloor {
        frame_1080p: Percentiles::from_ns(&frame),
        frame_1080p_cold: Percentiles::from_ns(&cold),
        square_64: Percentiles::from_ns(&square),
    }
}

// ---------------------------------------------------------------------------------------------
// A running compositor.

/// A headless `corral` in its own runtime directory, killed (with its agents) on drop.
struct Session {
    run_dir: PathBuf,
    ipc: PathBuf,
    corral: Child,
    /// (CLOCK_MONOTONIC when the line was read, render time in µs) from the compositor's log.
    frame_times: Arc<Mutex<Vec<(u64, u64)>>>,
    agents: BTreeMap<String, u32>,
    /// Processes started for this session (idle clients), killed on drop.
    extra: Vec<Child>,
    counter: std::cell::Cell<u32>,
}

impl Session {
    fn start(
        bins: &Binaries,
        tag: &str,
        sizes: &[(i32, i32)],
        qubes: &[(&str, &str)],
    ) -> anyhow::Result<Session> {
        let run_dir = std::env::temp_dir().join(format!("corral-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&run_dir);
        std::fs::create_dir_all(&run_dir)?;
        std::fs::set_permissions(&run_dir, std::fs::Permissions::from_mode(0o700))?;
        let ipc = run_dir.join("ipc.sock");
        let mut cmd = Command::new(&bins.corral);
        cmd.current_dir(&bins.root)
            .env("XDG_RUNTIME_DIR", &run_dir)
            .env_remove("WAYLAND_DISPLAY")
            .env_remove("DISPLAY")
            .env("RUST_LOG", "corral=info,corral::frame_time=trace")
            .env("NO_COLOR", "1")
            .args([
                "--backend",
                "headless",
                "--frame-interval-ms",
                "0",
                "--no-domains",
            ])
            .arg("--ipc-socket")
            .arg(&ipc)
            .args(["--gui-socket", "bench-gui"])
            .arg("--policy-dir")
            .arg(bins.root.join("config/policy.d"));
        for (w, h) in sizes {
            cmd.args(["--size", &format!("{w}x{h}")]);
        }
        for (name, label) in qubes {
            cmd.args(["--dev-qube", &format!("{name}:{label}")]);
        }
        cmd.arg("--dev-agent-command").arg(format!(
            "{} --gui-fd {{fd}} --socket-name bench-{{name}}",
            bins.agent.display()
        ));
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut corral = cmd.spawn().context("starting corral")?;
        let stderr = corral.stderr.take().context("corral's stderr")?;
        let frame_times = Arc::new(Mutex::new(Vec::new()));
        let log_path = run_dir.join("corral.log");
        {
            let frame_times = frame_times.clone();
            let mut log = std::fs::File::create(&log_path)?;
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    let t = now_ns();
                    if let Some(us) = render_us(&line) {
                        if let Ok(mut v) = frame_times.lock() {
                            v.push((t, us));
                        }
                    } else {
                        let _ = writeln!(log, "{line}");
                    }
                }
            });
        }
        let mut session = Session {
            run_dir,
            ipc,
            corral,
            frame_times,
            agents: BTreeMap::new(),
            extra: Vec::new(),
            counter: std::cell::Cell::new(0),
        };
        // The local socket, every agent's socket and every qube's channel are up.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = session.corral.try_wait()? {
                bail!("corral exited ({status}); see {}", log_path.display());
            }
            let sockets_up = session.run_dir.join("bench-gui").exists()
                && qubes
                    .iter()
                    .all(|(n, _)| session.run_dir.join(format!("bench-{n}")).exists());
            if sockets_up && let Ok(list) = session.ipc(serde_json::json!({"command": "qubes"})) {
                let mut agents = BTreeMap::new();
                for q in list.as_array().into_iter().flatten() {
                    if let (Some(name), Some(pid), Some(true)) = (
                        q["name"].as_str(),
                        q["agent_pid"].as_u64(),
                        q["established"].as_bool(),
                    ) {
                        agents.insert(name.to_string(), pid as u32);
                    }
                }
                if agents.len() == qubes.len() {
                    session.agents = agents;
                    return Ok(session);
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "corral's sockets and qubes did not come up in 30 s; see {}",
                    log_path.display()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn pid(&self) -> u32 {
        self.corral.id()
    }

    /// One `corral msg` request (one JSON line each way), the result or an error.
    fn ipc(&self, request: serde_json::Value) -> anyhow::Result<serde_json::Value> {
        let mut stream = UnixStream::connect(&self.ipc)?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut line = serde_json::to_vec(&request)?;
        line.push(b'\n');
        stream.write_all(&line)?;
        let mut answer = String::new();
        BufReader::new(stream).read_line(&mut answer)?;
        let reply: serde_json::Value = serde_json::from_str(&answer)?;
        if reply["ok"] == serde_json::Value::Bool(true) {
            Ok(reply["result"].clone())
        } else {
            bail!("corral refused {request}: {}", reply["error"])
        }
    }

    fn windows(&self) -> anyhow::Result<Vec<serde_json::Value>> {
        self.ipc(serde_json::json!({"command": "windows"}))?
            .as_array()
            .cloned()
            .context("the windows reply is not a list")
    }

    /// Waits until no window with this title prefix is left (the previous run's client is gone).
    fn wait_windows_gone(&self, prefix: &str) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self
            .windows()?
            .iter()
            .any(|w| w["title"].as_str().is_some_and(|t| t.starts_with(prefix)))
        {
            if Instant::now() > deadline {
                bail!("windows titled {prefix:?} did not go away");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(())
    }

    fn fresh_path(&self, stem: &str) -> PathBuf {
        let n = self.counter.get() + 1;
        self.counter.set(n);
        self.run_dir.join(format!("{stem}-{n}"))
    }

    /// The compositor's frame times logged between two instants.
    fn frame_times_between(&self, start: u64, end: u64) -> Vec<u64> {
        self.frame_times
            .lock()
            .map(|v| {
                v.iter()
                    .filter(|(t, _)| *t >= start && *t <= end)
                    .map(|(_, us)| *us * 1000)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A client command on the given Wayland socket of this session.
    fn client(&self, bins: &Binaries, socket: &str) -> Command {
        let mut cmd = Command::new(&bins.client);
        cmd.env("XDG_RUNTIME_DIR", &self.run_dir)
            .env("WAYLAND_DISPLAY", socket)
            .stdin(Stdio::null());
        cmd
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        for child in &mut self.extra {
            let _ = child.kill();
            let _ = child.wait();
        }
        // Agents die with corral (PR_SET_PDEATHSIG).
        let _ = self.corral.kill();
        let _ = self.corral.wait();
        let _ = std::fs::remove_dir_all(&self.run_dir);
    }
}

/// `render_us=N` from a `corral::frame_time` log line.
fn render_us(line: &str) -> Option<u64> {
    if !line.contains("corral::frame_time") {
        return None;
    }
    let rest = &line[line.find("render_us=")? + "render_us=".len()..];
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok()
}

/// Waits for a child with a deadline; kills it when the deadline passes.
fn wait_child(child: &mut Child, limit: Duration, what: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait()? {
            if !status.success() {
                bail!("{what} failed: {status}");
            }
            return Ok(());
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{what} did not finish in {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn read_result(path: &Path) -> anyhow::Result<ClientResult> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(serde_json::from_slice(&bytes)?)
}

// ---------------------------------------------------------------------------------------------
// Frame rate, latency and CPU: one client run on one path.

#[derive(Debug, Clone, Serialize)]
struct FrameRun {
    way: Way,
    mode: String,
    client: ClientResult,
    /// Roles of the processes whose CPU was counted (pid → role).
    roles: BTreeMap<u32, String>,
    /// The compositor's render time of each frame inside the measuring window, in ns.
    render_ns: Vec<u64>,
}

fn frame_run(
    session: &Session,
    bins: &Binaries,
    config: &Config,
    way: Way,
    mode: &str,
) -> anyhow::Result<FrameRun> {
    let out = session.fresh_path("result");
    let title = format!("corral-bench {mode} {way:?}");
    let client_args = |cmd: &mut Command| {
        cmd.args(["--mode", mode, "--width", "1920", "--height", "1080"])
            .args(["--warmup-ms", &config.warmup_ms.to_string()])
            .args(["--measure-ms", &config.measure_ms.to_string()])
            .args(["--title", &title])
            .arg("--out")
            .arg(&out)
            .args(["--watch", &session.pid().to_string()]);
    };
    let limit = Duration::from_millis(config.warmup_ms + config.measure_ms + 30_000);
    let mut roles = BTreeMap::new();
    roles.insert(session.pid(), "compositor".to_string());
    match way {
        Way::Baseline | Way::Qube | Way::BaselineArgb => {
            let socket = if way == Way::Qube {
                "bench-bench"
            } else {
                "bench-gui"
            };
            let mut cmd = session.client(bins, socket);
            client_args(&mut cmd);
            if way == Way::BaselineArgb {
                cmd.arg("--argb");
            }
            if way == Way::Qube {
                let agent = session.agents["bench"];
                cmd.args(["--watch", &agent.to_string()]);
                roles.insert(agent, "agent".to_string());
            }
            let mut child = cmd.spawn()?;
            wait_child(&mut child, limit, "the benchmark client")?;
        }
        Way::WaypipeNone | Way::WaypipeLz4 => {
            let compress = if way == Way::WaypipeLz4 {
                "lz4"
            } else {
                "none"
            };
            let sock = session.fresh_path("waypipe.sock");
            let mut wp_client = Command::new("waypipe")
                .env("XDG_RUNTIME_DIR", &session.run_dir)
                .env("WAYLAND_DISPLAY", "bench-gui")
                .args(["--no-gpu", "--oneshot", "--compress", compress, "--socket"])
                .arg(&sock)
                .arg("client")
                .stdin(Stdio::null())
                .spawn()
                .context("starting waypipe client (is waypipe installed?)")?;
            let deadline = Instant::now() + Duration::from_secs(10);
            while !sock.exists() {
                if Instant::now() > deadline {
                    let _ = wp_client.kill();
                    bail!("waypipe client did not create its socket");
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            let mut cmd = Command::new("waypipe");
            cmd.env("XDG_RUNTIME_DIR", &session.run_dir)
                .env_remove("WAYLAND_DISPLAY")
                .args(["--no-gpu", "--compress", compress, "--socket"])
                .arg(&sock)
                .args(["server", "--"])
                .arg(&bins.client)
                .stdin(Stdio::null());
            client_args(&mut cmd);
            cmd.args(["--watch-tree", &wp_client.id().to_string()])
                .arg("--watch-parent-tree");
            let mut server = cmd.spawn().context("starting waypipe server")?;
            let result = wait_child(&mut server, limit, "waypipe server with the client");
            let _ = wait_child(&mut wp_client, Duration::from_secs(5), "waypipe client");
            result?;
        }
    }
    let client = read_result(&out)?;
    for c in &client.cpu {
        roles.entry(c.pid).or_insert_with(|| {
            if c.comm.starts_with("corral-bench") {
                "client".into()
            } else if c.comm.starts_with("waypipe") {
                "waypipe".into()
            } else {
                c.comm.clone()
            }
        });
    }
    let render_ns = session.frame_times_between(client.start_ns, client.end_ns);
    session.wait_windows_gone(&title)?;
    Ok(FrameRun {
        way,
        mode: mode.to_string(),
        client,
        roles,
        render_ns,
    })
}

// ---------------------------------------------------------------------------------------------
// Input latency: `corral msg key` → the client's wl_keyboard.key.

#[derive(Debug, Clone, Serialize)]
struct InputRun {
    way: Way,
    /// The compositor, agent, client and injector ran SCHED_FIFO: the path's own latency,
    /// without waiting for a core taken by other work on the machine.
    realtime: bool,
    /// Key press arrival in the client − the instant the compositor handled the injected key.
    latencies_ns: Vec<u64>,
    /// Key press arrival − the instant before the `corral msg key` request was sent.
    from_request_ns: Vec<u64>,
    /// The injection request's round trip (the compositor answers after handling the key).
    ipc_round_trip_ns: Vec<u64>,
}

fn input_run(
    session: &Session,
    bins: &Binaries,
    config: &Config,
    way: Way,
    realtime: bool,
) -> anyhow::Result<InputRun> {
    let out = session.fresh_path("keys");
    let ready = session.fresh_path("ready");
    let title = format!("corral-bench keys {way:?} {realtime}");
    let socket = if way == Way::Qube {
        "bench-bench"
    } else {
        "bench-gui"
    };
    let mut child = session
        .client(bins, socket)
        .args(["--mode", "keys", "--width", "400", "--height", "300"])
        .args(["--keys", &config.keys.to_string(), "--title", &title])
        .arg("--out")
        .arg(&out)
        .arg("--ready")
        .arg(&ready)
        .spawn()?;
    let deadline = Instant::now() + Duration::from_secs(20);
    let id = loop {
        if let Some(status) = child.try_wait()? {
            bail!("the key client exited early: {status}");
        }
        let found = if ready.exists() {
            session.windows()?.into_iter().find(|w| {
                w["title"].as_str().is_some_and(|t| t.ends_with(&title))
                    && w["has_content"] == serde_json::Value::Bool(true)
            })
        } else {
            None
        };
        if let Some(w) = found {
            break w["id"].as_u64().context("window id")?;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            bail!("the key client's window did not appear");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    session.ipc(serde_json::json!({"command": "focus", "id": id}))?;
    let mut fifo = vec![session.pid(), child.id(), std::process::id()];
    if way == Way::Qube {
        fifo.push(session.agents["bench"]);
    }
    if realtime && let Err(e) = set_fifo(&fifo, true) {
        let _ = child.kill();
        let _ = child.wait();
        return Err(e);
    }
    let result = inject_keys(session, config, &mut child, &out);
    if realtime {
        // Back to normal scheduling (the client has exited by now, or is being killed).
        let _ = set_fifo(&fifo, false);
    }
    let injected = match result {
        Ok(r) => r,
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(e);
        }
    };
    let arrived = &injected.client.key_presses_ns;
    if arrived.len() != injected.requested_ns.len() {
        bail!(
            "{} keys injected, {} arrived",
            injected.requested_ns.len(),
            arrived.len()
        );
    }
    let since = |from: &[u64]| -> Vec<u64> {
        from.iter()
            .zip(arrived)
            .map(|(i, r)| r.saturating_sub(*i))
            .collect()
    };
    session.wait_windows_gone(&title)?;
    Ok(InputRun {
        way,
        realtime,
        latencies_ns: since(&injected.in_compositor_ns),
        from_request_ns: since(&injected.requested_ns),
        ipc_round_trip_ns: injected.round_trips_ns,
    })
}

/// Makes every thread of `pids` SCHED_FIFO (priority 10), or back SCHED_OTHER.
fn set_fifo(pids: &[u32], on: bool) -> anyhow::Result<()> {
    for pid in pids {
        let mut cmd = Command::new("chrt");
        cmd.arg("--all-tasks");
        if on {
            cmd.args(["--fifo", "--pid", "10"]);
        } else {
            cmd.args(["--other", "--pid", "0"]);
        }
        let status = cmd
            .arg(pid.to_string())
            .stderr(Stdio::null())
            .status()
            .context("running chrt")?;
        if !status.success() && on {
            bail!("chrt --fifo failed for pid {pid} (needs root or CAP_SYS_NICE)");
        }
    }
    Ok(())
}

/// Injects the keys (the instant before each request, and its round trip) and collects the
/// client's arrival times.
fn inject_keys(
    session: &Session,
    config: &Config,
    child: &mut Child,
    out: &Path,
) -> anyhow::Result<Injected> {
    // Let keyboard_enter and the keymap reach the client first.
    std::thread::sleep(Duration::from_millis(200));
    let mut injected = Vec::new();
    let mut round_trips = Vec::new();
    let mut in_compositor = Vec::new();
    for _ in 0..config.keys {
        let t = now_ns();
        let reply =
            session.ipc(serde_json::json!({"command": "key", "combo": "a", "action": "tap"}))?;
        round_trips.push(now_ns() - t);
        injected.push(t);
        in_compositor.push(
            reply["injected_ns"]
                .as_u64()
                .context("corral's key reply has no injected_ns (an older corral?)")?,
        );
        // Keys apart, so each one is measured on an idle path, not behind the one before.
        std::thread::sleep(Duration::from_millis(5));
    }
    wait_child(child, Duration::from_secs(20), "the key client")?;
    Ok(Injected {
        requested_ns: injected,
        in_compositor_ns: in_compositor,
        round_trips_ns: round_trips,
        client: read_result(out)?,
    })
}

/// The keys one run injected and what the client saw.
struct Injected {
    /// CLOCK_MONOTONIC just before each `corral msg key` request was sent.
    requested_ns: Vec<u64>,
    /// CLOCK_MONOTONIC when the compositor handled it (from the reply).
    in_compositor_ns: Vec<u64>,
    round_trips_ns: Vec<u64>,
    client: ClientResult,
}

// ---------------------------------------------------------------------------------------------
// Compositor frame time against the number of windows.

#[derive(Debug, Clone, Serialize)]
struct WindowsRun {
    windows: usize,
    qubes: usize,
    client: ClientResult,
    render_ns: Vec<u64>,
}

const LABELS: [&str; 8] = [
    "red", "orange", "yellow", "green", "gray", "blue", "purple", "black",
];

fn windows_runs(bins: &Binaries, config: &Config) -> anyhow::Result<Vec<WindowsRun>> {
    let names: Vec<String> = (1..=20).map(|i| format!("q{i}")).collect();
    let qubes: Vec<(&str, &str)> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), LABELS[i % LABELS.len()]))
        .collect();
    let mut session = Session::start(bins, "benchwin", &[(1920, 1080)], &qubes)?;
    let mut idle_per_qube = vec![0usize; qubes.len()];
    let mut runs = Vec::new();
    for &n in &config.window_counts {
        // n − 1 idle windows, spread over the 20 qubes, then one damaged window in q1.
        let mut want = vec![0usize; qubes.len()];
        for j in 0..n.saturating_sub(1) {
            want[j % qubes.len()] += 1;
        }
        let mut readies = Vec::new();
        for (q, (name, _)) in qubes.iter().enumerate() {
            let more = want[q].saturating_sub(idle_per_qube[q]);
            if more == 0 {
                continue;
            }
            let ready = session.fresh_path("idle-ready");
            let child = session
                .client(bins, &format!("bench-{name}"))
                .args(["--mode", "idle", "--width", "320", "--height", "240"])
                .args(["--windows", &more.to_string(), "--title", "idle"])
                .arg("--ready")
                .arg(&ready)
                .stdout(Stdio::null())
                .spawn()?;
            session.extra.push(child);
            readies.push(ready);
            idle_per_qube[q] = want[q];
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while !readies.iter().all(|r| r.exists()) {
            if Instant::now() > deadline {
                bail!("idle windows did not appear");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let shown = session
            .windows()?
            .iter()
            .filter(|w| w["has_content"] == serde_json::Value::Bool(true))
            .count();
        if shown + 1 != n.max(1) {
            bail!("{shown} idle windows shown, {} expected", n - 1);
        }
        let out = session.fresh_path("windows-result");
        let title = format!("corral-bench damaged {n}");
        let mut child = session
            .client(bins, "bench-q1")
            .args(["--mode", "full", "--width", "640", "--height", "480"])
            .args(["--warmup-ms", &config.warmup_ms.to_string()])
            .args(["--measure-ms", &config.measure_ms.to_string()])
            .args(["--title", &title])
            .args(["--watch", &session.pid().to_string()])
            .arg("--out")
            .arg(&out)
            .spawn()?;
        wait_child(
            &mut child,
            Duration::from_millis(config.warmup_ms + config.measure_ms + 30_000),
            "the damaged window's client",
        )?;
        let client = read_result(&out)?;
        let render_ns = session.frame_times_between(client.start_ns, client.end_ns);
        eprintln!(
            "   {n} windows: render p50 {:.0} µs, {:.0} fps",
            Percentiles::from_ns(&render_ns).p50_us,
            client.fps()
        );
        session.wait_windows_gone(&title)?;
        runs.push(WindowsRun {
            windows: n,
            qubes: n.clamp(1, qubes.len()),
            client,
            render_ns,
        });
    }
    Ok(runs)
}

// ---------------------------------------------------------------------------------------------
// The summary: tables and targets.

struct Summary {
    markdown: String,
    json: serde_json::Value,
}

#[derive(Debug, Default, Clone, Serialize)]
struct PathFigures {
    runs: usize,
    frames: u64,
    fps: f64,
    latency: Percentiles,
    /// CPU ms per frame of all processes involved, and per role.
    cpu_ms_per_frame: f64,
    cpu_ms_per_frame_by_role: BTreeMap<String, f64>,
    render: Percentiles,
}

fn pool(runs: &[&FrameRun]) -> PathFigures {
    let frames: u64 = runs.iter().map(|r| r.client.frames).sum();
    let seconds: f64 = runs.iter().map(|r| r.client.seconds()).sum();
    let latencies: Vec<u64> = runs
        .iter()
        .flat_map(|r| r.client.latencies_ns.iter().copied())
        .collect();
    let render: Vec<u64> = runs
        .iter()
        .flat_map(|r| r.render_ns.iter().copied())
        .collect();
    let mut by_role: BTreeMap<String, f64> = BTreeMap::new();
    let mut total = 0.0;
    for r in runs {
        let tck = r.client.clock_ticks_per_second.max(1) as f64;
        for c in &r.client.cpu {
            let role = r
                .roles
                .get(&c.pid)
                .cloned()
                .unwrap_or_else(|| c.comm.clone());
            let s = c.ticks as f64 / tck;
            *by_role.entry(role).or_default() += s;
            total += s;
        }
    }
    let per_frame = |s: f64| s * 1000.0 / frames.max(1) as f64;
    PathFigures {
        runs: runs.len(),
        frames,
        fps: frames as f64 / seconds.max(1e-9),
        latency: Percentiles::from_ns(&latencies),
        cpu_ms_per_frame: per_frame(total),
        cpu_ms_per_frame_by_role: by_role
            .into_iter()
            .map(|(k, v)| (k, per_frame(v)))
            .collect(),
        render: Percentiles::from_ns(&render),
    }
}

fn summarise(report: &Report) -> Summary {
    let mut md = String::new();
    let mut json = serde_json::Map::new();
    let w = |md: &mut String, s: String| {
        md.push_str(&s);
        md.push('\n');
    };
    w(&mut md, format!("Machine: {}\n", report.machine));
    let m = &report.memcpy;
    w(
        &mut md,
        format!(
            "memcpy floor: one 1080p frame (8.3 MB) p50 {:.0} µs (p99 {:.0}) cache-warm, \
             {:.0} µs (p99 {:.0}) out of cache; a 64×64 square of it p50 {:.2} µs\n",
            m.frame_1080p.p50_us,
            m.frame_1080p.p99_us,
            m.frame_1080p_cold.p50_us,
            m.frame_1080p_cold.p99_us,
            m.square_64.p50_us
        ),
    );
    let mut figures: BTreeMap<(String, Way), PathFigures> = BTreeMap::new();
    for mode in ["full", "small"] {
        for way in Way::ALL {
            let runs: Vec<&FrameRun> = report
                .frame_runs
                .iter()
                .filter(|r| r.way == way && r.mode == mode)
                .collect();
            if !runs.is_empty() {
                figures.insert((mode.to_string(), way), pool(&runs));
            }
        }
    }
    for mode in ["full", "small"] {
        let Some(base) = figures.get(&(mode.to_string(), Way::Baseline)).cloned() else {
            continue;
        };
        let what = if mode == "full" {
            "Full-frame 1920×1080 updates"
        } else {
            "Small-damage updates (64×64 of 1920×1080)"
        };
        w(&mut md, format!("### {what}\n"));
        w(
            &mut md,
            "| path | fps | × base | commit→done p50 | p99 | × base (p50) | CPU ms/frame (all) | × base | compositor | agent / waypipe | client | compositor render p50 |".into(),
        );
        w(
            &mut md,
            "|---|---|---|---|---|---|---|---|---|---|---|---|".into(),
        );
        for way in Way::ALL {
            let Some(f) = figures.get(&(mode.to_string(), way)) else {
                continue;
            };
            let role = |r: &str| f.cpu_ms_per_frame_by_role.get(r).copied().unwrap_or(0.0);
            let middle = role("agent") + role("waypipe");
            w(
                &mut md,
                format!(
                    "| {} | {:.1} | {:.2} | {:.2} ms | {:.2} ms | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} ms |",
                    way.name(),
                    f.fps,
                    f.fps / base.fps.max(1e-9),
                    f.latency.p50_us / 1000.0,
                    f.latency.p99_us / 1000.0,
                    f.latency.p50_us / base.latency.p50_us.max(1e-9),
                    f.cpu_ms_per_frame,
                    f.cpu_ms_per_frame / base.cpu_ms_per_frame.max(1e-9),
                    role("compositor"),
                    middle,
                    role("client"),
                    f.render.p50_us / 1000.0,
                ),
            );
        }
        w(&mut md, String::new());
    }
    json.insert(
        "paths".into(),
        serde_json::to_value(
            figures
                .iter()
                .map(|((m, w), f)| (format!("{m}/{w:?}"), f.clone()))
                .collect::<BTreeMap<_, _>>(),
        )
        .unwrap_or_default(),
    );

    w(
        &mut md,
        "### Input: `corral msg key` → wl_keyboard.key in the client\n".into(),
    );
    w(
        &mut md,
        "| path | keys | compositor → client p50 | p99 | max | from the IPC request p50 | p99 | IPC round trip p50 |".into(),
    );
    w(&mut md, "|---|---|---|---|---|---|---|---|".into());
    let mut input_json = serde_json::Map::new();
    for run in &report.input {
        let p = Percentiles::from_ns(&run.latencies_ns);
        let rt = Percentiles::from_ns(&run.ipc_round_trip_ns);
        let req = Percentiles::from_ns(&run.from_request_ns);
        w(
            &mut md,
            format!(
                "| {}{} | {} | {:.0} µs | {:.0} µs | {:.0} µs | {:.0} µs | {:.0} µs | {:.0} µs |",
                run.way.name(),
                if run.realtime { ", SCHED_FIFO" } else { "" },
                p.n,
                p.p50_us,
                p.p99_us,
                p.max_us,
                req.p50_us,
                req.p99_us,
                rt.p50_us
            ),
        );
        input_json.insert(
            format!("{:?}{}", run.way, if run.realtime { "/fifo" } else { "" }),
            serde_json::json!({"latency": p, "from_request": req, "ipc_round_trip": rt}),
        );
    }
    json.insert("input".into(), input_json.into());
    w(&mut md, String::new());

    if !report.windows.is_empty() {
        w(
            &mut md,
            "### Compositor frame time against windows (1920×1080, Pixman, one 640×480 window redrawn every frame)\n".into(),
        );
        w(&mut md, "| windows | qubes | frames | render p50 | p99 | mean | compositor CPU ms/frame | fps |".into());
        w(&mut md, "|---|---|---|---|---|---|---|---|".into());
        let mut win_json = Vec::new();
        for run in &report.windows {
            let p = Percentiles::from_ns(&run.render_ns);
            let tck = run.client.clock_ticks_per_second.max(1) as f64;
            let comp: u64 = run
                .client
                .cpu
                .iter()
                .filter(|c| c.comm == "corral")
                .map(|c| c.ticks)
                .sum();
            let comp_ms = comp as f64 / tck * 1000.0 / run.client.frames.max(1) as f64;
            w(
                &mut md,
                format!(
                    "| {} | {} | {} | {:.2} ms | {:.2} ms | {:.2} ms | {:.2} | {:.0} |",
                    run.windows,
                    run.qubes,
                    p.n,
                    p.p50_us / 1000.0,
                    p.p99_us / 1000.0,
                    p.mean_us / 1000.0,
                    comp_ms,
                    run.client.fps()
                ),
            );
            win_json.push(serde_json::json!({"windows": run.windows, "render": p, "compositor_cpu_ms_per_frame": comp_ms, "fps": run.client.fps()}));
        }
        json.insert("windows".into(), win_json.into());
        w(&mut md, String::new());
    }

    // Targets.
    w(&mut md, "### Targets\n".into());
    let get = |mode: &str, way: Way| figures.get(&(mode.to_string(), way));
    if let (Some(q), Some(wn), Some(wl), Some(b)) = (
        get("full", Way::Qube),
        get("full", Way::WaypipeNone),
        get("full", Way::WaypipeLz4),
        get("full", Way::Baseline),
    ) {
        let best_wp_fps = wn.fps.max(wl.fps);
        let best_wp_cpu = wn.cpu_ms_per_frame.min(wl.cpu_ms_per_frame);
        w(
            &mut md,
            format!(
                "- full-frame rate through a qube ≥ 1.0× waypipe's: {:.2}× the best waypipe ({:.1} vs {:.1} fps) — {}",
                q.fps / best_wp_fps.max(1e-9),
                q.fps,
                best_wp_fps,
                met(q.fps >= best_wp_fps)
            ),
        );
        w(
            &mut md,
            format!(
                "- CPU per frame ≤ 0.5× waypipe's: {:.2}× the leanest waypipe ({:.2} vs {:.2} ms) — {}",
                q.cpu_ms_per_frame / best_wp_cpu.max(1e-9),
                q.cpu_ms_per_frame,
                best_wp_cpu,
                met(q.cpu_ms_per_frame <= 0.5 * best_wp_cpu)
            ),
        );
        let overhead = q.cpu_ms_per_frame - b.cpu_ms_per_frame;
        let floor = m.frame_1080p.p50_us / 1000.0;
        w(
            &mut md,
            format!(
                "- full-frame overhead over direct ≤ 1.5× memcpy of the damage: CPU +{:.2} ms/frame = {:.2}× one 1080p memcpy ({:.2} ms; {:.2}× the out-of-cache one); latency p50 +{:.2} ms = {:.2}× — {}",
                overhead,
                overhead / floor.max(1e-9),
                floor,
                overhead / (m.frame_1080p_cold.p50_us / 1000.0).max(1e-9),
                (q.latency.p50_us - b.latency.p50_us) / 1000.0,
                (q.latency.p50_us - b.latency.p50_us) / 1000.0 / floor.max(1e-9),
                overhead_verdict(overhead, floor)
            ),
        );
    }
    if let (Some(q), Some(b)) = (get("small", Way::Qube), get("small", Way::Baseline)) {
        let overhead = q.cpu_ms_per_frame - b.cpu_ms_per_frame;
        let floor = m.square_64.p50_us / 1000.0;
        w(
            &mut md,
            format!(
                "- small-damage overhead over direct ≤ 1.5× memcpy of the damage: CPU +{:.3} ms/frame = {:.0}× a 64×64 memcpy ({:.4} ms) — {}",
                overhead,
                overhead / floor.max(1e-9),
                floor,
                overhead_verdict(overhead, floor)
            ),
        );
        w(
            &mut md,
            format!(
                "- small-damage commit→frame-done p99 ≤ 2 ms (unthrottled): qube {:.2} ms, direct {:.2} ms — {}",
                q.latency.p99_us / 1000.0,
                b.latency.p99_us / 1000.0,
                met(q.latency.p99_us <= 2000.0)
            ),
        );
    }
    for run in report.input.iter().filter(|r| r.way == Way::Qube) {
        let p = Percentiles::from_ns(&run.latencies_ns);
        w(
            &mut md,
            format!(
                "- input p99 ≤ 1 ms (compositor → client in the qube{}): {:.0} µs — {}",
                if run.realtime { ", SCHED_FIFO" } else { "" },
                p.p99_us,
                met(p.p99_us <= 1000.0)
            ),
        );
    }
    if let Some(run) = report.windows.iter().max_by_key(|r| r.windows) {
        let p = Percentiles::from_ns(&run.render_ns);
        w(
            &mut md,
            format!(
                "- {} windows, one damaged, composited ≤ 4 ms at 1080p on Pixman: p50 {:.2} ms, p99 {:.2} ms — {}",
                run.windows,
                p.p50_us / 1000.0,
                p.p99_us / 1000.0,
                met(p.p99_us <= 4000.0)
            ),
        );
    }
    Summary {
        markdown: md,
        json: json.into(),
    }
}

/// A negative overhead means the two runs differed by more than the path does (a short run,
/// CPU ticks of 10 ms, a descheduling): no verdict then.
fn overhead_verdict(overhead: f64, floor: f64) -> &'static str {
    if overhead < 0.0 {
        "not resolved (negative: noise; use a longer run)"
    } else {
        met(overhead <= 1.5 * floor)
    }
}

fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "MISSED" }
}

fn machine_description() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_default();
    format!("{cpus} CPUs ({model}), load average {load} at start, no GPU used (Pixman)")
}

fn unix_time() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
