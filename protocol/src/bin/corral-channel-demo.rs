//! `corral-channel-demo`: two processes talking the Corral GUI protocol.
//!
//! Without arguments it plays the GUI domain: it creates a socketpair, starts itself as an agent
//! in a second process with the other end, and receives a handshake, a pool, 100 frames of
//! damage and a clean shutdown, checking every damaged pixel. It does this twice: over the
//! `unix` channel (sealed memfd pool, zero-copy) and over a byte stream without fd passing (the
//! `vsock` path: pixels inline, LZ4-compressed), then prints what happened.
//!
//! `corral-channel-demo agent --gui-fd N [--inline] [--frames N]` is the agent role.

use std::os::unix::net::UnixStream;
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use corral_protocol::channel::pool::{SharedMemfd, copy_rect};
use corral_protocol::channel::stream::StreamTransport;
use corral_protocol::channel::unix::{UnixTransport, adopt_inherited, share_with_child};
use corral_protocol::channel::{
    AgentConnection, ConnectionError, GuiConnection, StreamLimits, Transport, inline_writes,
};
use corral_protocol::session::{Applied, SessionLimits};
use corral_protocol::{
    AgentMessage, BufferLayout, Compression, GuiMessage, OutputId, OutputInfo, PixelFormat, Point,
    PoolBacking, PoolId, Rect, SanitizedText, Scale, Serial, Size, WindowId,
};

const WIDTH: u32 = 640;
const HEIGHT: u32 = 480;
const SQUARE: u32 = 64;
const BACKGROUND: u32 = 0xFF20_2020;
const TIMEOUT: Duration = Duration::from_secs(10);

/// The square drawn in frame `n`: where it is and its colour (opaque ARGB).
fn frame_square(n: u32) -> (Rect, u32) {
    let x = (n * 7) % (WIDTH - SQUARE);
    let y = (n * 5) % (HEIGHT - SQUARE);
    let colour =
        0xFF00_0000 | ((n * 37) & 0xFF) << 16 | ((n * 91) & 0xFF) << 8 | ((n * 151) & 0xFF);
    (
        Rect::new(x, y, SQUARE, SQUARE).expect("square fits"),
        colour,
    )
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        None => run_demo(),
        Some("agent") => run_agent(&args[1..]),
        Some("-h" | "--help") => {
            println!(
                "corral-channel-demo: two processes exchange a handshake, a pool, 100 frames and a clean\n\
                 shutdown over the Corral GUI protocol, once over the unix channel (memfd pool) and once\n\
                 over a stream without fd passing (inline LZ4 pixels, as on vsock).\n\n\
                 usage: corral-channel-demo\n       corral-channel-demo agent --gui-fd N [--inline] [--frames N]"
            );
            Ok(())
        }
        Some(other) => Err(format!("unknown argument {other:?}; see --help")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("corral-channel-demo: {e}");
            ExitCode::FAILURE
        }
    }
}

// ------------------------------------------------------------------------------------------
// Agent role

struct AgentArgs {
    gui_fd: i32,
    inline: bool,
    frames: u32,
}

fn parse_agent_args(args: &[String]) -> Result<AgentArgs, String> {
    let mut parsed = AgentArgs {
        gui_fd: -1,
        inline: false,
        frames: 100,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--gui-fd" => {
                parsed.gui_fd = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .ok_or("--gui-fd needs a number")?
            }
            "--frames" => {
                parsed.frames = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .ok_or("--frames needs a number")?
            }
            "--inline" => parsed.inline = true,
            other => return Err(format!("unknown agent argument {other:?}")),
        }
    }
    if parsed.gui_fd < 0 {
        return Err("agent needs --gui-fd".into());
    }
    Ok(parsed)
}

fn run_agent(args: &[String]) -> Result<(), String> {
    let args = parse_agent_args(args)?;
    let socket =
        adopt_inherited(args.gui_fd).map_err(|e| format!("adopting the GUI channel: {e}"))?;
    if args.inline {
        socket.set_nonblocking(true).map_err(|e| e.to_string())?;
        agent_session(
            AgentConnection::new(StreamTransport::new(socket), StreamLimits::default()),
            &args,
        )
    } else {
        let transport = UnixTransport::new(socket).map_err(|e| e.to_string())?;
        agent_session(
            AgentConnection::new(transport, StreamLimits::default()),
            &args,
        )
    }
    .map_err(|e| format!("agent: {e}"))
}

fn agent_wait<T: Transport>(
    conn: &mut AgentConnection<T>,
    mut want: impl FnMut(&GuiMessage) -> bool,
) -> Result<GuiMessage, ConnectionError> {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        conn.flush()?;
        while let Some(msg) = conn.receive()? {
            if want(&msg) {
                return Ok(msg);
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || !conn.stream().wait_ready(left)? {
            return Err(ConnectionError::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the GUI domain did not answer",
            )));
        }
    }
}

fn agent_session<T: Transport>(
    mut conn: AgentConnection<T>,
    args: &AgentArgs,
) -> Result<(), ConnectionError> {
    conn.send_hello()?;
    agent_wait(&mut conn, |m| matches!(m, GuiMessage::Welcome { .. }))?;

    let window = WindowId::new(1)?;
    let pool = PoolId::new(1)?;
    let size = Size::new(WIDTH, HEIGHT)?;
    let layout = BufferLayout::new(0, size, WIDTH * 4, PixelFormat::Argb8888)?;
    let pool_size = u64::from(WIDTH * HEIGHT * 4);
    conn.send(&AgentMessage::CreateToplevel { window })?;
    conn.send(&AgentMessage::SetTitle {
        window,
        title: SanitizedText::sanitize("Channel demo", 256),
    })?;
    conn.send(&AgentMessage::Map { window })?;

    // The agent's drawing memory: shared with the GUI domain, or local and sent inline.
    let mut shared = None;
    let mut local = Vec::new();
    if args.inline {
        local = vec![0u8; pool_size as usize];
        conn.send(&AgentMessage::PoolCreate {
            pool,
            size: pool_size,
            backing: PoolBacking::Inline,
        })?;
    } else {
        let memfd = SharedMemfd::create(pool_size)?;
        conn.send_memfd_pool(pool, &memfd)?;
        shared = Some(memfd);
    }

    for n in 0..args.frames {
        let pixels: &mut [u8] = match shared.as_mut() {
            Some(memfd) => memfd.bytes_mut(),
            None => &mut local,
        };
        let damage = if n == 0 {
            fill(pixels, Rect::new(0, 0, WIDTH, HEIGHT)?, BACKGROUND);
            Rect::new(0, 0, WIDTH, HEIGHT)?
        } else {
            let (square, colour) = frame_square(n);
            fill(pixels, square, colour);
            square
        };
        if args.inline {
            for msg in inline_writes(pool, &local, layout, &[damage], Compression::Lz4)? {
                conn.send(&msg)?;
            }
        }
        if n == 0 {
            conn.send(&AgentMessage::Attach {
                window,
                pool,
                layout,
            })?;
        }
        conn.send(&AgentMessage::Damage {
            window,
            rects: vec![damage],
        })?;
        conn.send(&AgentMessage::Commit {
            window,
            serial: Serial(n),
        })?;
        // Frame pacing: draw the next frame only once this one is on screen.
        agent_wait(
            &mut conn,
            |m| matches!(m, GuiMessage::FrameDone { window: w, .. } if *w == window),
        )?;
    }

    conn.send(&AgentMessage::DestroyWindow { window })?;
    conn.send(&AgentMessage::PoolDestroy { pool })?;
    agent_wait(
        &mut conn,
        |m| matches!(m, GuiMessage::PoolReleased { pool: p } if *p == pool),
    )?;
    conn.send(&AgentMessage::Goodbye {
        reason: SanitizedText::sanitize("demo finished", 64),
    })?;
    conn.flush()?;
    Ok(())
}

fn fill(pixels: &mut [u8], rect: Rect, argb: u32) {
    let stride = (WIDTH * 4) as usize;
    for y in rect.y()..rect.y() + rect.height() {
        let row = &mut pixels[y as usize * stride..][..stride];
        for x in rect.x()..rect.x() + rect.width() {
            row[x as usize * 4..][..4].copy_from_slice(&argb.to_le_bytes());
        }
    }
}

// ------------------------------------------------------------------------------------------
// GUI-domain role

fn run_demo() -> Result<(), String> {
    for inline in [false, true] {
        let label = if inline {
            "stream without fd passing (the vsock path): inline pixels, LZ4"
        } else {
            "unix channel: sealed memfd pool, mapped read-only"
        };
        println!("== {label}");
        let (gui_end, agent_end) = UnixStream::pair().map_err(|e| e.to_string())?;
        let fd = share_with_child(&agent_end).map_err(|e| e.to_string())?;
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let mut cmd = Command::new(exe);
        cmd.args(["agent", "--gui-fd", &fd.to_string()]);
        if inline {
            cmd.arg("--inline");
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("starting the agent process: {e}"))?;
        drop(agent_end);
        println!("started agent process {}", child.id());
        let outcome = if inline {
            gui_end.set_nonblocking(true).map_err(|e| e.to_string())?;
            gui_session(GuiConnection::new(
                StreamTransport::new(gui_end),
                SessionLimits::default(),
                StreamLimits::default(),
            ))
        } else {
            let transport = UnixTransport::new(gui_end).map_err(|e| e.to_string())?;
            gui_session(GuiConnection::new(
                transport,
                SessionLimits::default(),
                StreamLimits::default(),
            ))
        };
        let status = child.wait().map_err(|e| e.to_string())?;
        let summary = outcome?;
        println!("{summary}");
        println!("agent process exited: {status}");
        if !status.success() {
            return Err("the agent failed".into());
        }
    }
    println!("ok: both channels carried 100 frames with every damaged pixel checked");
    Ok(())
}

fn gui_session<T: Transport>(mut conn: GuiConnection<T>) -> Result<String, String> {
    let started = Instant::now();
    let mut frames = 0u32;
    let mut pixels_checked = 0u64;
    let mut rect_bytes = Vec::new();
    let deadline = started + TIMEOUT * 3;
    loop {
        conn.flush().map_err(|e| e.to_string())?;
        let received = match conn.receive(Instant::now()) {
            Ok(Some(r)) => r,
            Ok(None) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() || !conn.stream().wait_ready(left).map_err(|e| e.to_string())? {
                    return Err("timed out waiting for the agent".into());
                }
                continue;
            }
            Err(ConnectionError::Goodbye(reason)) => {
                let elapsed = started.elapsed();
                return Ok(format!(
                    "agent said goodbye ({reason}) after {frames} frames in {:.1} ms; {pixels_checked} damaged pixels matched",
                    elapsed.as_secs_f64() * 1000.0
                ));
            }
            Err(e) => return Err(format!("connection ended: {e}")),
        };
        match (&received.message, &received.applied) {
            (
                _,
                Applied::Established {
                    version,
                    capabilities,
                },
            ) => {
                println!("handshake: protocol {version}, shared capabilities {capabilities:?}");
                conn.send(&GuiMessage::Welcome {
                    version: *version,
                    capabilities: *capabilities,
                    outputs: vec![OutputInfo {
                        id: OutputId::new(1).map_err(|e| e.to_string())?,
                        position: Point::default(),
                        size: Size::new(1920, 1080).map_err(|e| e.to_string())?,
                        scale_120ths: Scale::ONE,
                        refresh_mhz: 60_000,
                        name: SanitizedText::sanitize("demo-1", 64),
                    }],
                })
                .map_err(|e| e.to_string())?;
            }
            (
                AgentMessage::PoolCreate {
                    pool,
                    size,
                    backing,
                },
                _,
            ) => {
                println!("pool {pool}: {size} bytes, backing {backing:?}, mapped");
            }
            (AgentMessage::Commit { window, serial }, _) => {
                let (pool, layout) = conn
                    .session()
                    .attachment(*window)
                    .ok_or("commit without a buffer")?;
                let memory = conn.pool(pool).ok_or("attached pool is gone")?;
                let (rect, colour) = if serial.0 == 0 {
                    (
                        Rect::new(0, 0, WIDTH, HEIGHT).map_err(|e| e.to_string())?,
                        BACKGROUND,
                    )
                } else {
                    frame_square(serial.0)
                };
                copy_rect(memory, layout, rect, &mut rect_bytes);
                for px in rect_bytes.chunks_exact(4) {
                    let value = u32::from_le_bytes([px[0], px[1], px[2], px[3]]);
                    if value != colour {
                        return Err(format!(
                            "frame {}: pixel {value:#010x}, expected {colour:#010x}",
                            serial.0
                        ));
                    }
                }
                pixels_checked += (rect_bytes.len() / 4) as u64;
                frames += 1;
                conn.send(&GuiMessage::FrameDone {
                    window: *window,
                    timestamp_ns: started.elapsed().as_nanos() as u64,
                })
                .map_err(|e| e.to_string())?;
            }
            _ => {}
        }
    }
}
