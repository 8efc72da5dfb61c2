//! `corral-bench-client`: a wl_shm Wayland client that measures what it sees.
//!
//! `full` and `small` draw a frame, commit it with a frame callback, and draw the next one as
//! soon as the callback is done (no other pacing: on an unthrottled compositor this is as fast
//! as the path allows). They record commit → frame-done latency and frames per second over a
//! measuring window that starts after a warm-up, and the CPU time (`/proc/PID/stat`) of every
//! process they are told to watch over that same window. `idle` maps N windows, draws them
//! once and waits (the background of the many-windows benchmark). `keys` maps one window and
//! records when each key press arrives (CLOCK_MONOTONIC, compared by the driver with the time
//! it injected the key). Results go to `--out` as JSON ([`xtask::ClientResult`]).
//!
//! It connects to `$WAYLAND_DISPLAY` in `$XDG_RUNTIME_DIR`, so the same binary runs on the GUI
//! domain's local socket, behind `waypipe server`, or on a qube agent's socket.

use std::collections::BTreeSet;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};
use wayland_client::protocol::{
    wl_buffer, wl_callback, wl_compositor, wl_keyboard, wl_registry, wl_seat, wl_shm, wl_shm_pool,
    wl_surface,
};
use wayland_client::{Connection, Dispatch, QueueHandle, WEnum, delegate_noop};
use wayland_protocols::xdg::shell::client::{xdg_surface, xdg_toplevel, xdg_wm_base};
use xtask::{ClientResult, CpuSample, now_ns};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// Every frame rewrites and damages the whole buffer.
    Full,
    /// Every frame rewrites and damages one `--damage`² square.
    Small,
    /// `--windows` windows drawn once; then wait until killed.
    Idle,
    /// One window; record the arrival of `--keys` key presses.
    Keys,
}

#[derive(Debug, Parser)]
#[command(about = "A wl_shm client that measures frame rate, frame latency and key arrival")]
struct Args {
    #[arg(long, value_enum)]
    mode: Mode,
    #[arg(long, default_value_t = 1920, value_parser = clap::value_parser!(i32).range(16..=8192))]
    width: i32,
    #[arg(long, default_value_t = 1080, value_parser = clap::value_parser!(i32).range(16..=8192))]
    height: i32,
    /// Side of the square `small` redraws.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(i32).range(1..=1024))]
    damage: i32,
    #[arg(long, default_value_t = 1000)]
    warmup_ms: u64,
    #[arg(long, default_value_t = 5000)]
    measure_ms: u64,
    /// `idle`: how many windows.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=256))]
    windows: u32,
    /// `keys`: how many presses to wait for.
    #[arg(long, default_value_t = 100)]
    keys: usize,
    /// Give up after this long (the run then fails rather than hangs).
    #[arg(long, default_value_t = 60_000)]
    timeout_ms: u64,
    /// Processes whose CPU counts (besides this one).
    #[arg(long)]
    watch: Vec<u32>,
    /// Processes whose CPU counts with all their descendants.
    #[arg(long)]
    watch_tree: Vec<u32>,
    /// Count the parent process and its descendants (the `waypipe server` that started us).
    #[arg(long)]
    watch_parent_tree: bool,
    #[arg(long, default_value = "corral-bench")]
    title: String,
    /// ARGB8888 buffers (opaque pixels, but the format has alpha) instead of XRGB8888.
    #[arg(long)]
    argb: bool,
    /// Where the result goes (JSON).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Created once the first frame is on screen (all windows, for `idle`).
    #[arg(long)]
    ready: Option<PathBuf>,
}

struct Buffer {
    buffer: wl_buffer::WlBuffer,
    offset: usize,
    busy: bool,
    /// Holds a complete frame (so `small` may redraw only the square).
    drawn: bool,
}

struct Window {
    surface: wl_surface::WlSurface,
    xdg_surface: xdg_surface::XdgSurface,
    _toplevel: xdg_toplevel::XdgToplevel,
    configured: bool,
}

#[derive(Default)]
struct App {
    compositor: Option<wl_compositor::WlCompositor>,
    shm: Option<wl_shm::WlShm>,
    wm_base: Option<xdg_wm_base::XdgWmBase>,
    seat: Option<wl_seat::WlSeat>,
    keyboard: Option<wl_keyboard::WlKeyboard>,
    windows: Vec<Window>,
    buffers: Vec<Buffer>,
    /// A frame callback came back (or nothing was drawn yet): the next frame may be drawn.
    frame_due: bool,
    last_commit_ns: u64,
    first_done_ns: Option<u64>,
    measuring: bool,
    frames: u64,
    latencies_ns: Vec<u64>,
    key_presses_ns: Vec<u64>,
    closed: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let conn = Connection::connect_to_env().context("connecting to $WAYLAND_DISPLAY")?;
    let mut queue = conn.new_event_queue();
    let qh = queue.handle();
    conn.display().get_registry(&qh, ());
    let mut app = App {
        frame_due: true,
        ..App::default()
    };
    queue.roundtrip(&mut app)?;
    if app.compositor.is_none() || app.shm.is_none() || app.wm_base.is_none() {
        bail!("the compositor lacks wl_compositor, wl_shm or xdg_wm_base");
    }
    if args.mode == Mode::Keys {
        let seat = app.seat.as_ref().context("no wl_seat")?;
        app.keyboard = Some(seat.get_keyboard(&qh, ()));
    }

    let windows = if args.mode == Mode::Idle {
        args.windows as usize
    } else {
        1
    };
    // `full` and `small` rotate three buffers (one on screen, one queued, one being drawn);
    // `idle` and `keys` draw each window once.
    let buffer_count = match args.mode {
        Mode::Full | Mode::Small => 3,
        Mode::Idle | Mode::Keys => windows,
    };
    let stride = args.width as usize * 4;
    let size = stride * args.height as usize;
    let memfd = rustix::fs::memfd_create("corral-bench", rustix::fs::MemfdFlags::CLOEXEC)?;
    let file = std::fs::File::from(memfd);
    file.set_len((size * buffer_count) as u64)?;
    // SAFETY: the memfd is ours and only ever grown; the compositor only reads it.
    let mut map = unsafe { memmap2::MmapMut::map_mut(&file)? };
    let pool = app.shm.as_ref().context("wl_shm")?.create_pool(
        file.as_fd(),
        i32::try_from(size * buffer_count).context("buffers too large for one wl_shm pool")?,
        &qh,
        (),
    );
    for i in 0..buffer_count {
        let buffer = pool.create_buffer(
            (i * size) as i32,
            args.width,
            args.height,
            stride as i32,
            if args.argb {
                wl_shm::Format::Argb8888
            } else {
                wl_shm::Format::Xrgb8888
            },
            &qh,
            i,
        );
        app.buffers.push(Buffer {
            buffer,
            offset: i * size,
            busy: false,
            drawn: false,
        });
    }
    pool.destroy();

    for i in 0..windows {
        let surface = app
            .compositor
            .as_ref()
            .context("wl_compositor")?
            .create_surface(&qh, ());
        let xdg_surface = app
            .wm_base
            .as_ref()
            .context("xdg_wm_base")?
            .get_xdg_surface(&surface, &qh, i);
        let toplevel = xdg_surface.get_toplevel(&qh, ());
        let title = if windows > 1 {
            format!("{} {}", args.title, i + 1)
        } else {
            args.title.clone()
        };
        toplevel.set_title(title);
        toplevel.set_app_id("corral-bench".into());
        surface.commit();
        app.windows.push(Window {
            surface,
            xdg_surface,
            _toplevel: toplevel,
            configured: false,
        });
    }
    let deadline = now_ns() + args.timeout_ms * 1_000_000;
    while !app.windows.iter().all(|w| w.configured) {
        check_deadline(deadline, "the first configure")?;
        queue.blocking_dispatch(&mut app)?;
    }

    match args.mode {
        Mode::Idle | Mode::Keys => {
            for i in 0..windows {
                // A different grey for each window, so they can be told apart on screenshots.
                let grey = (0x40 + (i * 37) % 0xB0) as u8;
                let off = app.buffers[i].offset;
                let (w, h) = (args.width as usize, args.height as usize);
                fill_rows(
                    &mut map[off..off + size],
                    stride,
                    0,
                    h,
                    0,
                    w,
                    [grey, grey, grey, 0xff],
                );
                let w = &app.windows[i];
                w.surface.attach(Some(&app.buffers[i].buffer), 0, 0);
                w.surface.damage_buffer(0, 0, args.width, args.height);
                if i == 0 {
                    w.surface.frame(&qh, ());
                }
                w.surface.commit();
            }
            app.frame_due = false;
            while !app.frame_due {
                check_deadline(deadline, "the first frame")?;
                queue.blocking_dispatch(&mut app)?;
            }
            if let Some(ready) = &args.ready {
                xtask::write_atomically(ready, b"ready\n")?;
            }
            if args.mode == Mode::Idle {
                // Until the driver kills us or the compositor goes.
                while !app.closed {
                    queue.blocking_dispatch(&mut app)?;
                }
                return Ok(());
            }
            while app.key_presses_ns.len() < args.keys && !app.closed {
                check_deadline(deadline, "key presses")?;
                queue.blocking_dispatch(&mut app)?;
            }
            let result = ClientResult {
                mode: "keys".into(),
                width: args.width,
                height: args.height,
                key_presses_ns: app.key_presses_ns.clone(),
                ..ClientResult::default()
            };
            return write_result(&args, &result);
        }
        Mode::Full | Mode::Small => {}
    }

    let damage = match args.mode {
        Mode::Small => args.damage.min(args.width).min(args.height),
        _ => args.width.max(args.height),
    };
    let (dx, dy) = (
        (args.width - damage).clamp(0, 64),
        (args.height - damage).clamp(0, 64),
    );
    let (dw, dh) = (damage.min(args.width), damage.min(args.height));
    let clk_tck = xtask::clock_ticks_per_second();
    let mut watched: BTreeSet<u32> = BTreeSet::new();
    let mut cpu_before: Vec<CpuSample> = Vec::new();
    let mut start_ns = 0;
    let mut frame_no: u64 = 0;
    let mut committed_once = false;
    loop {
        check_deadline(deadline, "frames")?;
        if app.closed {
            bail!("the compositor closed our window");
        }
        let now = now_ns();
        if let Some(first) = app.first_done_ns {
            if !app.measuring && now >= first + args.warmup_ms * 1_000_000 {
                // The measuring window starts here: frames, latencies and CPU from now on.
                watched = watched_pids(&args);
                cpu_before = watched
                    .iter()
                    .filter_map(|&p| xtask::cpu_sample(p))
                    .collect();
                start_ns = now_ns();
                app.measuring = true;
                app.frames = 0;
                app.latencies_ns.clear();
                if let Some(ready) = &args.ready {
                    xtask::write_atomically(ready, b"measuring\n")?;
                }
            } else if app.measuring && now >= start_ns + args.measure_ms * 1_000_000 {
                break;
            }
        }
        if app.frame_due
            && let Some(i) = app.buffers.iter().position(|b| !b.busy)
        {
            frame_no += 1;
            // An opaque colour that changes every frame.
            let v = (frame_no % 200) as u8 + 28;
            let colour = u32::from_be_bytes([0xff, v, 255 - v, v / 2]).to_le_bytes();
            let off = app.buffers[i].offset;
            let buf = &mut map[off..off + size];
            if args.mode == Mode::Full {
                let (w, h) = (args.width as usize, args.height as usize);
                fill_rows(buf, stride, 0, h, 0, w, colour);
            } else if !app.buffers[i].drawn {
                // The background of `small`, which never changes, once per buffer.
                let (w, h) = (args.width as usize, args.height as usize);
                fill_rows(buf, stride, 0, h, 0, w, [0x80, 0x80, 0x80, 0xff]);
            }
            if args.mode == Mode::Small {
                fill_rows(
                    buf,
                    stride,
                    dy as usize,
                    (dy + dh) as usize,
                    dx as usize,
                    (dx + dw) as usize,
                    colour,
                );
            }
            app.buffers[i].drawn = true;
            app.buffers[i].busy = true;
            let window = &app.windows[0];
            window.surface.attach(Some(&app.buffers[i].buffer), 0, 0);
            if args.mode == Mode::Full || !committed_once {
                window.surface.damage_buffer(0, 0, args.width, args.height);
            } else {
                window.surface.damage_buffer(dx, dy, dw, dh);
            }
            window.surface.frame(&qh, ());
            window.surface.commit();
            conn.flush()?;
            committed_once = true;
            app.last_commit_ns = now_ns();
            app.frame_due = false;
        }
        queue.blocking_dispatch(&mut app)?;
    }
    let end_ns = now_ns();
    let cpu_after: Vec<CpuSample> = watched
        .iter()
        .filter_map(|&p| xtask::cpu_sample(p))
        .collect();
    let result = ClientResult {
        mode: format!("{:?}", args.mode).to_lowercase(),
        width: args.width,
        height: args.height,
        damage: (dw, dh),
        frames: app.frames,
        start_ns,
        end_ns,
        latencies_ns: app.latencies_ns.clone(),
        cpu: xtask::cpu_delta(&cpu_before, &cpu_after),
        clock_ticks_per_second: clk_tck,
        key_presses_ns: Vec::new(),
    };
    write_result(&args, &result)
}

/// Fills columns `x0..x1` of rows `y0..y1` with one colour.
fn fill_rows(
    buf: &mut [u8],
    stride: usize,
    y0: usize,
    y1: usize,
    x0: usize,
    x1: usize,
    colour: [u8; 4],
) {
    if y0 >= y1 || x0 >= x1 {
        return;
    }
    let first = y0 * stride;
    for px in buf[first + x0 * 4..first + x1 * 4].chunks_exact_mut(4) {
        px.copy_from_slice(&colour);
    }
    // The other rows are copies of the first: a memcpy per row, as a real client's blit is.
    for y in y0 + 1..y1 {
        buf.copy_within(first + x0 * 4..first + x1 * 4, y * stride + x0 * 4);
    }
}

fn watched_pids(args: &Args) -> BTreeSet<u32> {
    let mut roots = args.watch_tree.clone();
    if args.watch_parent_tree {
        roots.push(rustix::process::getppid().map_or(0, |p| p.as_raw_nonzero().get() as u32));
    }
    let mut set = xtask::process_trees(&roots);
    set.extend(args.watch.iter().copied());
    set.insert(std::process::id());
    set
}

fn check_deadline(deadline: u64, what: &str) -> anyhow::Result<()> {
    if now_ns() > deadline {
        bail!("timed out waiting for {what}");
    }
    Ok(())
}

fn write_result(args: &Args, result: &ClientResult) -> anyhow::Result<()> {
    let json = serde_json::to_vec(result)?;
    match &args.out {
        Some(path) => xtask::write_atomically(path, &json)?,
        None => println!("{}", String::from_utf8_lossy(&json)),
    }
    // Give the compositor a moment to see our goodbye before the socket closes.
    std::thread::sleep(Duration::from_millis(10));
    Ok(())
}

impl Dispatch<wl_registry::WlRegistry, ()> for App {
    fn event(
        app: &mut Self,
        registry: &wl_registry::WlRegistry,
        event: wl_registry::Event,
        _: &(),
        _: &Connection,
        qh: &QueueHandle<Self>,
    ) {
        if let wl_registry::Event::Global {
            name,
            interface,
            version,
        } = event
        {
            match interface.as_str() {
                "wl_compositor" => {
                    app.compositor = Some(registry.bind(name, version.min(4), qh, ()));
                }
                "wl_shm" => app.shm = Some(registry.bind(name, 1, qh, ())),
                "xdg_wm_base" => app.wm_base = Some(registry.bind(name, 1, qh, ())),
                "wl_seat" if app.seat.is_none() => {
                    app.seat = Some(registry.bind(name, version.min(5), qh, ()));
                }
                _ => {}
            }
        }
    }
}

impl Dispatch<xdg_wm_base::XdgWmBase, ()> for App {
    fn event(
        _: &mut Self,
        wm_base: &xdg_wm_base::XdgWmBase,
        event: xdg_wm_base::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let xdg_wm_base::Event::Ping { serial } = event {
            wm_base.pong(serial);
        }
    }
}

impl Dispatch<xdg_surface::XdgSurface, usize> for App {
    fn event(
        app: &mut Self,
        xdg_surface: &xdg_surface::XdgSurface,
        event: xdg_surface::Event,
        index: &usize,
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let xdg_surface::Event::Configure { serial } = event {
            // The size asked for is ignored: the benchmark draws its own size (allowed for a
            // window that is neither maximised nor fullscreen).
            xdg_surface.ack_configure(serial);
            if let Some(w) = app.windows.get_mut(*index) {
                debug_assert!(&w.xdg_surface == xdg_surface);
                w.configured = true;
            }
        }
    }
}

impl Dispatch<xdg_toplevel::XdgToplevel, ()> for App {
    fn event(
        app: &mut Self,
        _: &xdg_toplevel::XdgToplevel,
        event: xdg_toplevel::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let xdg_toplevel::Event::Close = event {
            app.closed = true;
        }
    }
}

impl Dispatch<wl_callback::WlCallback, ()> for App {
    fn event(
        app: &mut Self,
        _: &wl_callback::WlCallback,
        event: wl_callback::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let wl_callback::Event::Done { .. } = event {
            let now = now_ns();
            app.first_done_ns.get_or_insert(now);
            if app.measuring {
                app.frames += 1;
                app.latencies_ns
                    .push(now.saturating_sub(app.last_commit_ns));
            }
            app.frame_due = true;
        }
    }
}

impl Dispatch<wl_buffer::WlBuffer, usize> for App {
    fn event(
        app: &mut Self,
        _: &wl_buffer::WlBuffer,
        event: wl_buffer::Event,
        index: &usize,
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let wl_buffer::Event::Release = event
            && let Some(b) = app.buffers.get_mut(*index)
        {
            b.busy = false;
        }
    }
}

impl Dispatch<wl_keyboard::WlKeyboard, ()> for App {
    fn event(
        app: &mut Self,
        _: &wl_keyboard::WlKeyboard,
        event: wl_keyboard::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        // The arrival time is taken first, before anything else is looked at.
        let now = now_ns();
        if let wl_keyboard::Event::Key {
            state: WEnum::Value(wl_keyboard::KeyState::Pressed),
            ..
        } = event
        {
            app.key_presses_ns.push(now);
        }
    }
}

delegate_noop!(App: ignore wl_compositor::WlCompositor);
delegate_noop!(App: ignore wl_shm::WlShm);
delegate_noop!(App: ignore wl_shm_pool::WlShmPool);
delegate_noop!(App: ignore wl_surface::WlSurface);
delegate_noop!(App: ignore wl_seat::WlSeat);
