//! A real protocol agent for the tests, speaking `corral-protocol`'s `AgentConnection` over
//! the channel the compositor created. It draws known pixels into a sealed memfd pool and logs
//! every message it receives (one line each) to `$CORRAL_TEST_AGENT_LOG_DIR/<qube>.agent.log`,
//! so a test can check what reached which qube.
//!
//! Its behaviour depends on the qube's name (which the compositor passes on the command line):
//! - every agent shows a 400×300 window: a background colour, a 20×20 square at (10, 10), and
//!   a small 8×8 animated corner at the bottom right (a new commit after each `frame_done`);
//! - `liar` titles its window as if it were dom0 and another qube;
//! - `popper` opens a 120×80 popup at (50, 50) after its first frame;
//! - `needy` asks for attention when the pointer enters its window;
//! - `hostile` breaks the protocol (commits a window that does not exist) after 3 frames;
//! - `slow` maps a window and never sends any content (QSB-39).
//!
//! Clipboard: every agent answers `clipboard_request` at once with the text
//! `secret of <qube> #<serial>`, except
//! - `laggard`, which answers each request 1.5 s late (QSB-13);
//! - `unasked`, which never answers but sends `clipboard_data` nobody asked for, with serials
//!   0 to 40, right after `welcome` and again with each of its first 40 frames;
//! - `bigcopy`, which answers with 64 KiB + 1 bytes of text (over the default cap);
//! - `mute`, which never answers;
//! - `pngcopy`, which answers with a small PNG image ([`png_bytes`]);
//! - `badpng`, which answers with the PNG signature followed by junk.

use std::io::Write;
use std::time::{Duration, Instant};

use corral_protocol::channel::pool::SharedMemfd;
use corral_protocol::channel::unix::{UnixTransport, adopt_inherited};
use corral_protocol::channel::{AgentConnection, StreamLimits};
use corral_protocol::{
    AgentMessage, BufferLayout, ClipboardPayload, GuiMessage, PixelFormat, Point, PoolId, Rect,
    SanitizedText, Serial, Size, WindowId,
};

/// What an ordinary test agent answers to a copy request.
pub fn clipboard_text(qube: &str, serial: u32) -> String {
    format!("secret of {qube} #{serial}")
}

/// `pngcopy`'s answer: a 1×1 RGBA PNG (signature, IHDR, IDAT, IEND).
pub fn png_bytes() -> Vec<u8> {
    let mut p = corral_protocol::PNG_SIGNATURE.to_vec();
    p.extend_from_slice(&[
        0, 0, 0, 13, b'I', b'H', b'D', b'R', 0, 0, 0, 1, 0, 0, 0, 1, 8, 6, 0, 0, 0, 0x1f, 0x15,
        0xc4, 0x89, 0, 0, 0, 13, b'I', b'D', b'A', b'T', 0x78, 0x9c, 0x63, 0xf8, 0xcf, 0xc0, 0xf0,
        0x1f, 0, 0x05, 0x00, 0x01, 0xff, 0x56, 0x2c, 0x8e, 0x6b, 0, 0, 0, 0, b'I', b'E', b'N',
        b'D', 0xae, 0x42, 0x60, 0x82,
    ]);
    p
}

/// The size of `bigcopy`'s answer.
pub const BIG_COPY: usize = 64 * 1024 + 1;

pub const WIDTH: u32 = 400;
pub const HEIGHT: u32 = 300;
pub const POPUP_W: u32 = 120;
pub const POPUP_H: u32 = 80;
pub const SQUARE: (u32, u32, u32) = (10, 10, 20);

/// The colours an agent draws: background, square, popup.
pub fn colours(qube: &str) -> (u32, u32, u32) {
    match qube {
        "work" => (0x204060, 0xe0e0e0, 0x806040),
        "personal" => (0x305030, 0xff00ff, 0x603060),
        _ => {
            let h = qube
                .bytes()
                .fold(7u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
            (
                0x101010 | (h & 0x7f7f7f),
                0x00ffff,
                0x404040 | (h.rotate_left(8) & 0x3f3f3f),
            )
        }
    }
}

pub fn title(qube: &str) -> &'static str {
    match qube {
        "liar" => "[dom0] Root terminal — [work] bank",
        _ => "Test window",
    }
}

/// Runs the agent if this process was started as one; otherwise does nothing.
pub fn main_if_agent() {
    let (Ok(fd), Ok(qube)) = (
        std::env::var("CORRAL_TEST_AGENT_FD"),
        std::env::var("CORRAL_TEST_AGENT_QUBE"),
    ) else {
        return;
    };
    let dir = std::env::var("CORRAL_TEST_AGENT_LOG_DIR").unwrap_or_else(|_| "/tmp".into());
    let log = std::fs::File::create(format!("{dir}/{qube}.agent.log")).unwrap();
    let result = run(fd.parse().unwrap(), &qube, log);
    // Ends the process here, whatever the test harness would do next.
    std::process::exit(match result {
        Ok(()) => 0,
        Err(_) => 1,
    });
}

fn fill(pixels: &mut [u8], stride: u32, x0: u32, y0: u32, w: u32, h: u32, rgb: u32) {
    let px = (0xff00_0000 | rgb).to_le_bytes();
    for y in y0..y0 + h {
        for x in x0..x0 + w {
            let i = (y * stride + x * 4) as usize;
            pixels[i..i + 4].copy_from_slice(&px);
        }
    }
}

fn run(fd: i32, qube: &str, mut log: std::fs::File) -> Result<(), Box<dyn std::error::Error>> {
    let socket = adopt_inherited(fd)?;
    let mut conn = AgentConnection::new(UnixTransport::new(socket)?, StreamLimits::default());
    conn.send_hello()?;
    let window = WindowId::new(1)?;
    let popup = WindowId::new(2)?;
    let pool = PoolId::new(1)?;
    let stride = WIDTH * 4;
    let main_bytes = stride * HEIGHT;
    let popup_offset = u64::from(main_bytes);
    let pool_size = u64::from(main_bytes + POPUP_W * 4 * POPUP_H);
    let layout = BufferLayout::new(0, Size::new(WIDTH, HEIGHT)?, stride, PixelFormat::Xrgb8888)?;
    let popup_layout = BufferLayout::new(
        popup_offset,
        Size::new(POPUP_W, POPUP_H)?,
        POPUP_W * 4,
        PixelFormat::Xrgb8888,
    )?;
    let (bg, square, popup_colour) = colours(qube);

    let mut memfd = SharedMemfd::create(pool_size)?;
    fill(memfd.bytes_mut(), stride, 0, 0, WIDTH, HEIGHT, bg);
    fill(
        memfd.bytes_mut(),
        stride,
        SQUARE.0,
        SQUARE.1,
        SQUARE.2,
        SQUARE.2,
        square,
    );
    {
        let bytes = &mut memfd.bytes_mut()[popup_offset as usize..];
        fill(bytes, POPUP_W * 4, 0, 0, POPUP_W, POPUP_H, popup_colour);
    }

    conn.send(&AgentMessage::CreateToplevel { window })?;
    conn.send(&AgentMessage::SetTitle {
        window,
        title: SanitizedText::sanitize(title(qube), 256),
    })?;
    conn.send(&AgentMessage::SetAppId {
        window,
        app_id: SanitizedText::sanitize("org.corral.TestAgent", 256),
    })?;
    let mut frames = 0u32;
    let mut welcomed = false;
    let mut popup_sent = false;
    let mut attention_sent = false;
    let started = Instant::now();
    let mut held: Vec<(Serial, Instant)> = Vec::new();
    loop {
        // `laggard` answers 1.5 s after each request.
        while let Some(&(serial, at)) = held.first() {
            if at.elapsed() < Duration::from_millis(1500) {
                break;
            }
            held.remove(0);
            conn.send(&AgentMessage::ClipboardData {
                serial,
                payload: ClipboardPayload::text(&clipboard_text(qube, serial.0)),
            })?;
        }
        conn.flush()?;
        while let Some(msg) = conn.receive()? {
            let line = describe(&msg);
            writeln!(log, "{line}")?;
            log.flush()?;
            match msg {
                GuiMessage::ClipboardRequest { serial } => match qube {
                    "laggard" => held.push((serial, Instant::now())),
                    "unasked" | "mute" => {}
                    "pngcopy" => conn.send(&AgentMessage::ClipboardData {
                        serial,
                        payload: ClipboardPayload::Png(png_bytes()),
                    })?,
                    "badpng" => conn.send(&AgentMessage::ClipboardData {
                        serial,
                        payload: ClipboardPayload::Png(
                            [&corral_protocol::PNG_SIGNATURE[..], &[0x55; 40]].concat(),
                        ),
                    })?,
                    "bigcopy" => conn.send(&AgentMessage::ClipboardData {
                        serial,
                        payload: ClipboardPayload::text(&"b".repeat(BIG_COPY)),
                    })?,
                    _ => conn.send(&AgentMessage::ClipboardData {
                        serial,
                        payload: ClipboardPayload::text(&clipboard_text(qube, serial.0)),
                    })?,
                },
                GuiMessage::Welcome { .. } if !welcomed => {
                    welcomed = true;
                    if qube == "unasked" {
                        for s in 0..=40 {
                            conn.send(&AgentMessage::ClipboardData {
                                serial: Serial(s),
                                payload: ClipboardPayload::text("unasked data"),
                            })?;
                        }
                    }
                    if qube == "slow" {
                        conn.send(&AgentMessage::Map { window })?;
                        continue;
                    }
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
                } => {
                    conn.send(&AgentMessage::AckConfigure { window: w, serial })?;
                }
                GuiMessage::Close { window: w } if w == window => {
                    conn.send(&AgentMessage::DestroyWindow { window })?;
                }
                GuiMessage::PointerEnter { .. } if qube == "needy" && !attention_sent => {
                    attention_sent = true;
                    conn.send(&AgentMessage::RequestAttention { window })?;
                }
                GuiMessage::FrameDone { window: w, .. } if w == window => {
                    frames += 1;
                    if qube == "unasked" && frames <= 40 {
                        conn.send(&AgentMessage::ClipboardData {
                            serial: Serial(frames),
                            payload: ClipboardPayload::text("unasked data"),
                        })?;
                    }
                    if qube == "hostile" && frames == 3 {
                        // A window that does not exist: a session violation.
                        conn.send(&AgentMessage::Commit {
                            window: WindowId::new(99)?,
                            serial: Serial(frames),
                        })?;
                        continue;
                    }
                    if qube == "popper" && !popup_sent {
                        popup_sent = true;
                        conn.send(&AgentMessage::CreatePopup {
                            window: popup,
                            parent: window,
                            position: Point::new(50, 50)?,
                            size: Size::new(POPUP_W, POPUP_H)?,
                        })?;
                        conn.send(&AgentMessage::Attach {
                            window: popup,
                            pool,
                            layout: popup_layout,
                        })?;
                        conn.send(&AgentMessage::Damage {
                            window: popup,
                            rects: vec![Rect::new(0, 0, POPUP_W, POPUP_H)?],
                        })?;
                        conn.send(&AgentMessage::Commit {
                            window: popup,
                            serial: Serial(0),
                        })?;
                        conn.send(&AgentMessage::Map { window: popup })?;
                    }
                    // Animate the bottom-right corner so the qube keeps rendering.
                    let corner = 0x100000 * (frames % 8) + 0x0000ff;
                    fill(
                        memfd.bytes_mut(),
                        stride,
                        WIDTH - 8,
                        HEIGHT - 8,
                        8,
                        8,
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
        if started.elapsed() > Duration::from_secs(60) {
            return Ok(());
        }
        conn.stream().wait_ready(Duration::from_millis(200))?;
    }
}

fn describe(msg: &GuiMessage) -> String {
    match msg {
        GuiMessage::Key {
            window,
            keycode,
            pressed,
            ..
        } => format!("Key {window} {keycode} {}", u8::from(*pressed)),
        GuiMessage::KeyboardEnter {
            window,
            pressed_keys,
        } => format!("KeyboardEnter {window} {pressed_keys:?}"),
        GuiMessage::KeyboardLeave { window } => format!("KeyboardLeave {window}"),
        GuiMessage::Modifiers {
            window, depressed, ..
        } => format!("Modifiers {window} {depressed}"),
        GuiMessage::PointerEnter { window, position } => format!(
            "PointerEnter {window} {} {}",
            position.x_f64(),
            position.y_f64()
        ),
        GuiMessage::PointerMotion {
            window, position, ..
        } => format!(
            "PointerMotion {window} {} {}",
            position.x_f64(),
            position.y_f64()
        ),
        GuiMessage::PointerButton {
            window,
            button,
            pressed,
            ..
        } => format!("PointerButton {window} {button} {}", u8::from(*pressed)),
        GuiMessage::PointerLeave { window } => format!("PointerLeave {window}"),
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
        GuiMessage::FrameDone { window, .. } => format!("FrameDone {window}"),
        GuiMessage::Close { window } => format!("Close {window}"),
        GuiMessage::ClipboardRequest { serial } => format!("ClipboardRequest {}", serial.0),
        GuiMessage::ClipboardPaste { payload } => match payload {
            ClipboardPayload::Text(t) => format!("ClipboardPaste text {} {t:?}", t.len()),
            ClipboardPayload::Png(p) => format!("ClipboardPaste png {}", p.len()),
        },
        other => other.name().to_owned(),
    }
}
