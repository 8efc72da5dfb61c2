//! The well-behaved bystander qube: a real protocol agent on `corral-protocol`'s
//! `AgentConnection`, in its own process, on the channel the compositor created.
//!
//! It shows one 400×300 window titled `Bystander`: a background colour ([`BG`]), a 20×20
//! square at (10, 10) ([`SQUARE`]), and an 8×8 animated corner at the bottom right, committed
//! again after every `frame_done`, so a test can see it keep rendering. It logs every message it
//! receives, one line each, to `$CORRAL_E2E_DIR/<qube>.log`, answers `clipboard_request` with
//! `bystander <serial>`, acknowledges configures, and destroys its window on `close`.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use corral_protocol::channel::pool::SharedMemfd;
use corral_protocol::channel::unix::{UnixTransport, adopt_inherited};
use corral_protocol::channel::{AgentConnection, StreamLimits};
use corral_protocol::{
    AgentMessage, BufferLayout, ClipboardPayload, GuiMessage, PixelFormat, PoolId, Rect,
    SanitizedText, Serial, Size, WindowId,
};

pub const WIDTH: u32 = 400;
pub const HEIGHT: u32 = 300;
/// Background colour of the bystander's window.
pub const BG: u32 = 0x20a060;
/// The square at (10, 10), 20×20.
pub const SQUARE: u32 = 0xffff00;
pub const TITLE: &str = "Bystander";

/// The text the bystander answers a copy request with.
pub fn clipboard_text(serial: u32) -> String {
    format!("bystander {serial}")
}

fn fill(pixels: &mut [u8], stride: u32, (x0, y0, w, h): (u32, u32, u32, u32), rgb: u32) {
    let px = (0xff00_0000 | rgb).to_le_bytes();
    for y in y0..y0 + h {
        for x in x0..x0 + w {
            let i = (y * stride + x * 4) as usize;
            pixels[i..i + 4].copy_from_slice(&px);
        }
    }
}

pub fn run(fd: i32, qube: &str, dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let mut log = std::fs::File::create(dir.join(format!("{qube}.log")))?;
    let socket = adopt_inherited(fd)?;
    let mut conn = AgentConnection::new(UnixTransport::new(socket)?, StreamLimits::default());
    conn.send_hello()?;
    let window = WindowId::new(1)?;
    let pool = PoolId::new(1)?;
    let stride = WIDTH * 4;
    let layout = BufferLayout::new(0, Size::new(WIDTH, HEIGHT)?, stride, PixelFormat::Xrgb8888)?;
    let mut memfd = SharedMemfd::create(u64::from(stride * HEIGHT))?;
    fill(memfd.bytes_mut(), stride, (0, 0, WIDTH, HEIGHT), BG);
    fill(memfd.bytes_mut(), stride, (10, 10, 20, 20), SQUARE);

    conn.send(&AgentMessage::CreateToplevel { window })?;
    conn.send(&AgentMessage::SetTitle {
        window,
        title: SanitizedText::sanitize(TITLE, 256),
    })?;
    let mut frames = 0u32;
    let mut welcomed = false;
    let started = Instant::now();
    loop {
        conn.flush()?;
        while let Some(msg) = conn.receive()? {
            writeln!(log, "{}", describe(&msg))?;
            log.flush()?;
            match msg {
                GuiMessage::Welcome { .. } if !welcomed => {
                    welcomed = true;
                    conn.send_memfd_pool(pool, &memfd)?;
                    conn.send(&AgentMessage::Attach {
                        window,
                        pool,
                        layout,
                    })?;
                    conn.send(&AgentMessage::Damage {
                        window,
                        rects: vec![Rect::new(0, 0, WIDTH, HEIGHT)?],
                    })?;
                    conn.send(&AgentMessage::Commit {
                        window,
                        serial: Serial(0),
                    })?;
                    conn.send(&AgentMessage::Map { window })?;
                }
                GuiMessage::Configure {
                    window: w, serial, ..
                } => conn.send(&AgentMessage::AckConfigure { window: w, serial })?,
                GuiMessage::Close { window: w } if w == window => {
                    conn.send(&AgentMessage::DestroyWindow { window })?;
                }
                GuiMessage::ClipboardRequest { serial } => {
                    conn.send(&AgentMessage::ClipboardData {
                        serial,
                        payload: ClipboardPayload::text(&clipboard_text(serial.0)),
                    })?;
                }
                GuiMessage::Ping { serial } => conn.send(&AgentMessage::Pong { serial })?,
                GuiMessage::FrameDone { window: w, .. } if w == window => {
                    frames += 1;
                    let corner = 0x100000 * (frames % 8) + 0x0000ff;
                    fill(
                        memfd.bytes_mut(),
                        stride,
                        (WIDTH - 8, HEIGHT - 8, 8, 8),
                        corner,
                    );
                    conn.send(&AgentMessage::Damage {
                        window,
                        rects: vec![Rect::new(WIDTH - 8, HEIGHT - 8, 8, 8)?],
                    })?;
                    conn.send(&AgentMessage::Commit {
                        window,
                        serial: Serial(frames),
                    })?;
                }
                _ => {}
            }
        }
        conn.flush()?;
        // Bounded life even if nothing ever closes the channel.
        if started.elapsed() > Duration::from_secs(300) {
            return Ok(());
        }
        conn.stream().wait_ready(Duration::from_millis(200))?;
    }
}

/// One log line per message: the name, with the fields tests look for.
pub fn describe(msg: &GuiMessage) -> String {
    match msg {
        GuiMessage::Key {
            window,
            keycode,
            pressed,
            ..
        } => format!("Key {window} {keycode} {}", u8::from(*pressed)),
        GuiMessage::KeyboardEnter { window, .. } => format!("KeyboardEnter {window}"),
        GuiMessage::KeyboardLeave { window } => format!("KeyboardLeave {window}"),
        GuiMessage::FrameDone { window, .. } => format!("FrameDone {window}"),
        GuiMessage::ClipboardRequest { serial } => format!("ClipboardRequest {}", serial.0),
        GuiMessage::ClipboardPaste { payload } => match payload {
            ClipboardPayload::Text(t) => format!("ClipboardPaste text {t:?}"),
            ClipboardPayload::Png(p) => format!("ClipboardPaste png {}", p.len()),
        },
        GuiMessage::Configure {
            window,
            size,
            states,
            ..
        } => format!(
            "Configure {window} {} {} {}",
            size.width(),
            size.height(),
            states.bits()
        ),
        other => other.name().to_owned(),
    }
}
