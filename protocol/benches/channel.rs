//! Channel throughput: one agent thread draws into the damaged area (a memset), sends the frame,
//! one GUI thread receives it, copies the damaged pixels out of the pool (what a renderer upload
//! costs at least) and answers with frame_done; the agent waits for that before the next frame.
//! Reported per frame and as a ratio to one memcpy of the damaged area, measured in the same run
//! (the floor for any copying design). The round trip includes the agent's drawing and two
//! thread wake-ups, so about 2× memcpy is the floor of this measurement for large damage, and
//! small damage measures latency rather than bandwidth.
//!
//! Run: `cargo bench -p corral-protocol --bench channel`

use std::hint::black_box;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use corral_protocol::channel::pool::{SharedMemfd, copy_rect};
use corral_protocol::channel::stream::StreamTransport;
use corral_protocol::channel::unix::UnixTransport;
use corral_protocol::channel::{
    AgentConnection, ConnectionError, GuiConnection, StreamLimits, Transport, inline_writes,
};
use corral_protocol::session::{Applied, SessionLimits};
use corral_protocol::{
    AgentMessage, BufferLayout, Compression, GuiMessage, PixelFormat, PoolBacking, PoolId, Rect,
    Serial, Size, WindowId,
};

const WIDTH: u32 = 1920;
const HEIGHT: u32 = 1080;

#[derive(Clone, Copy, Debug)]
enum Path {
    Memfd,
    Inline(Compression),
}

fn agent<T: Transport>(
    mut conn: AgentConnection<T>,
    path: Path,
    damage: Rect,
    frames: u32,
) -> Result<(), ConnectionError> {
    let wait = |conn: &mut AgentConnection<T>,
                done: &dyn Fn(&GuiMessage) -> bool|
     -> Result<(), ConnectionError> {
        loop {
            conn.flush()?;
            while let Some(m) = conn.receive()? {
                if done(&m) {
                    return Ok(());
                }
            }
            conn.stream().wait_ready(Duration::from_secs(10))?;
        }
    };
    conn.send_hello()?;
    wait(&mut conn, &|m| matches!(m, GuiMessage::Welcome { .. }))?;
    let window = WindowId::new(1)?;
    let pool = PoolId::new(1)?;
    let layout = BufferLayout::new(
        0,
        Size::new(WIDTH, HEIGHT)?,
        WIDTH * 4,
        PixelFormat::Xrgb8888,
    )?;
    let size = u64::from(WIDTH * HEIGHT * 4);
    conn.send(&AgentMessage::CreateToplevel { window })?;
    let mut shared = None;
    let mut local = Vec::new();
    match path {
        Path::Memfd => {
            let m = SharedMemfd::create(size)?;
            conn.send_memfd_pool(pool, &m)?;
            shared = Some(m);
        }
        Path::Inline(_) => {
            local = vec![0u8; size as usize];
            conn.send(&AgentMessage::PoolCreate {
                pool,
                size,
                backing: PoolBacking::Inline,
            })?;
        }
    }
    conn.send(&AgentMessage::Attach {
        window,
        pool,
        layout,
    })?;
    for n in 0..frames {
        // Draw: a frame-dependent byte over the damaged rows (like an animation would).
        let pixels: &mut [u8] = match shared.as_mut() {
            Some(m) => m.bytes_mut(),
            None => &mut local,
        };
        for y in damage.y()..damage.y() + damage.height() {
            let start = (y * WIDTH + damage.x()) as usize * 4;
            pixels[start..start + damage.width() as usize * 4].fill(n as u8);
        }
        if let Path::Inline(compression) = path {
            for msg in inline_writes(pool, &local, layout, &[damage], compression)? {
                conn.send(&msg)?;
            }
        }
        conn.send(&AgentMessage::Damage {
            window,
            rects: vec![damage],
        })?;
        conn.send(&AgentMessage::Commit {
            window,
            serial: Serial(n),
        })?;
        wait(&mut conn, &|m| matches!(m, GuiMessage::FrameDone { .. }))?;
    }
    Ok(())
}

fn gui<T: Transport>(
    mut conn: GuiConnection<T>,
    damage: Rect,
    frames: u32,
) -> Result<Duration, ConnectionError> {
    let mut out = Vec::new();
    let mut seen = 0;
    let mut started = None;
    loop {
        conn.flush()?;
        let Some(r) = conn.receive(Instant::now())? else {
            conn.stream().wait_ready(Duration::from_secs(10))?;
            continue;
        };
        if let Applied::Established {
            version,
            capabilities,
        } = r.applied
        {
            conn.send(&GuiMessage::Welcome {
                version,
                capabilities,
                outputs: vec![],
            })?;
        }
        if let AgentMessage::Commit { window, .. } = r.message {
            let start = *started.get_or_insert_with(Instant::now);
            let (pool, layout) = conn.session().attachment(window).expect("attached");
            copy_rect(conn.pool(pool).expect("pool"), layout, damage, &mut out);
            black_box(&out);
            conn.send(&GuiMessage::FrameDone {
                window,
                timestamp_ns: 0,
            })?;
            seen += 1;
            if seen == frames {
                conn.flush()?;
                return Ok(start.elapsed());
            }
        }
    }
}

/// Mean time per frame over `frames` (after the first, which sets up).
fn run(path: Path, damage: Rect, frames: u32) -> Duration {
    let (gui_end, agent_end) = UnixStream::pair().unwrap();
    let agent_thread = std::thread::spawn(move || match path {
        Path::Memfd => agent(
            AgentConnection::new(
                UnixTransport::new(agent_end).unwrap(),
                StreamLimits::default(),
            ),
            path,
            damage,
            frames,
        ),
        Path::Inline(_) => {
            agent_end.set_nonblocking(true).unwrap();
            agent(
                AgentConnection::new(StreamTransport::new(agent_end), StreamLimits::default()),
                path,
                damage,
                frames,
            )
        }
    });
    let elapsed = match path {
        Path::Memfd => gui(
            GuiConnection::new(
                UnixTransport::new(gui_end).unwrap(),
                SessionLimits::default(),
                StreamLimits::default(),
            ),
            damage,
            frames,
        ),
        Path::Inline(_) => {
            gui_end.set_nonblocking(true).unwrap();
            gui(
                GuiConnection::new(
                    StreamTransport::new(gui_end),
                    SessionLimits::default(),
                    StreamLimits::default(),
                ),
                damage,
                frames,
            )
        }
    }
    .unwrap();
    agent_thread.join().unwrap().unwrap();
    elapsed / (frames - 1)
}

/// One memcpy of the damaged area (row by row, as from a strided buffer).
fn memcpy_floor(damage: Rect, iterations: u32) -> Duration {
    let src = vec![7u8; (WIDTH * HEIGHT * 4) as usize];
    let mut dst = vec![0u8; (damage.width() * damage.height() * 4) as usize];
    let row = damage.width() as usize * 4;
    let start = Instant::now();
    for _ in 0..iterations {
        for (i, out) in dst.chunks_exact_mut(row).enumerate() {
            let s = ((damage.y() as usize + i) * WIDTH as usize + damage.x() as usize) * 4;
            out.copy_from_slice(&src[s..s + row]);
        }
        black_box(&mut dst);
    }
    start.elapsed() / iterations
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing: run tiny then.
    let quick = !std::env::args().any(|a| a == "--bench");
    let cases = [
        (
            "full frame 1920x1080",
            Rect::new(0, 0, WIDTH, HEIGHT).unwrap(),
            if quick { 3 } else { 300 },
        ),
        (
            "small damage 64x64",
            Rect::new(400, 300, 64, 64).unwrap(),
            if quick { 3 } else { 5000 },
        ),
    ];
    println!(
        "channel benchmark: per-frame round trip (commit → copy-out → frame_done), ratio to memcpy of the damage"
    );
    for (name, damage, frames) in cases {
        let floor = memcpy_floor(damage, frames.max(10));
        println!(
            "\n{name}: memcpy of the damaged area {:.1} µs",
            floor.as_secs_f64() * 1e6
        );
        for (label, path) in [
            ("unix, memfd pool", Path::Memfd),
            ("stream, inline raw", Path::Inline(Compression::None)),
            ("stream, inline lz4", Path::Inline(Compression::Lz4)),
        ] {
            let per_frame = run(path, damage, frames);
            println!(
                "  {label:<20} {:>9.1} µs/frame  {:>8.0} frames/s  {:>6.2}× memcpy",
                per_frame.as_secs_f64() * 1e6,
                1.0 / per_frame.as_secs_f64(),
                per_frame.as_secs_f64() / floor.as_secs_f64()
            );
        }
    }
}
