//! Entry points shared by the cargo-fuzz targets in `protocol/fuzz` and by the `fuzz_smoke`
//! test, so CI runs the very code libFuzzer runs. Not part of the protocol's API.
//!
//! Each entry takes arbitrary bytes and must never panic, hang or allocate without bound. Panics
//! *inside* these functions are the oracles: they assert properties every accepted input has
//! (a decoded message re-encodes within its type's limit and decodes to itself; the session
//! never exceeds its budgets; a destroyed window's subtree is gone).
//!
//! The first input byte configures the run (see [`Config`]); the rest is the byte stream a
//! hostile peer sends.

use std::io::{self, IoSlice, Write};
use std::mem::MaybeUninit;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use crate::channel::pool::SharedMemfd;
use crate::channel::unix::UnixTransport;
use crate::channel::{GuiConnection, StreamLimits};
use crate::codec::{self, BodyLimit, Direction};
use crate::limits::{HEADER_BYTES, MAX_POOL_BYTES};
use crate::message::{AgentMessage, GuiMessage};
use crate::session::{AgentSession, Applied, SessionLimits};
use crate::text::SanitizedText;
use crate::types::*;

/// Budgets small enough that a fuzzer reaches every one of them.
pub fn fuzz_limits() -> SessionLimits {
    SessionLimits {
        max_windows: 8,
        max_pools: 8,
        max_pool_bytes: 16 * 1024 * 1024,
        max_messages_per_second: 1_000,
        message_burst: 64,
    }
}

/// Size of the sealed memfd that [`stream_agent`] can pass with the first bytes.
pub const FUZZ_MEMFD_BYTES: u64 = 4096;

/// The meaning of the first input byte.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    /// For [`decode_agent`]: the capabilities the GUI side offers (bits 0..=4, in the order of
    /// [`Capabilities`]; bit 5 also offers NOTIFICATIONS, so runs with and without it occur).
    pub capabilities: Capabilities,
    /// Bits 5..=6: time between two messages, 0 / 100 µs / 1 ms / 1 s.
    pub step: Duration,
    /// Bit 7: the handshake is done before the input starts, so fuzzing reaches the window and
    /// pool rules without having to find a hello first.
    pub auto_hello: bool,
    /// Bit 4, for [`stream_agent`] only: a sealed memfd travels with the first bytes.
    pub pass_memfd: bool,
}

impl Config {
    pub fn from_byte(byte: u8) -> Self {
        let step = match (byte >> 5) & 3 {
            0 => Duration::ZERO,
            1 => Duration::from_micros(100),
            2 => Duration::from_millis(1),
            _ => Duration::from_secs(1),
        };
        Config {
            capabilities: Capabilities::from_bits_truncate(u32::from(byte & 0x1F))
                | if byte & 0x20 != 0 {
                    Capabilities::NOTIFICATIONS
                } else {
                    Capabilities::empty()
                },
            step,
            auto_hello: byte & 0x80 != 0,
            pass_memfd: byte & 0x10 != 0,
        }
    }
}

/// Encodes `msg`, checks the header against the type table and decodes it back.
///
/// # Panics
/// If the round trip changes the message or the encoding breaks its type's limit.
pub fn check_agent_roundtrip(msg: &AgentMessage) {
    let mut bytes = Vec::new();
    codec::encode_agent(msg, &mut bytes);
    check_encoded(Direction::AgentToGui, &bytes, msg.name());
    match codec::decode_agent_frame(&bytes) {
        Ok(Some((again, used))) => {
            assert_eq!(used, bytes.len(), "{}: consumed length differs", msg.name());
            assert_eq!(
                &again,
                msg,
                "{}: round trip changed the message",
                msg.name()
            );
        }
        other => panic!(
            "{}: re-encoded message does not decode: {other:?}",
            msg.name()
        ),
    }
}

/// The GUI → agent counterpart of [`check_agent_roundtrip`].
///
/// # Panics
/// If the round trip changes the message or the encoding breaks its type's limit.
pub fn check_gui_roundtrip(msg: &GuiMessage) {
    let mut bytes = Vec::new();
    codec::encode_gui(msg, &mut bytes);
    check_encoded(Direction::GuiToAgent, &bytes, msg.name());
    match codec::decode_gui_frame(&bytes) {
        Ok(Some((again, used))) => {
            assert_eq!(used, bytes.len(), "{}: consumed length differs", msg.name());
            assert_eq!(
                &again,
                msg,
                "{}: round trip changed the message",
                msg.name()
            );
        }
        other => panic!(
            "{}: re-encoded message does not decode: {other:?}",
            msg.name()
        ),
    }
}

fn check_encoded(direction: Direction, bytes: &[u8], name: &str) {
    let mut header = [0u8; HEADER_BYTES];
    header.copy_from_slice(&bytes[..HEADER_BYTES]);
    let checked = codec::check_header(direction, header)
        .unwrap_or_else(|e| panic!("{name}: encoded header refused: {e}"));
    assert_eq!(
        checked.body_len + HEADER_BYTES,
        bytes.len(),
        "{name}: header length is wrong"
    );
    match codec::body_limit(direction, checked.msg_type) {
        Some(BodyLimit::Exact(n)) => assert_eq!(checked.body_len, n, "{name}: fixed body"),
        Some(BodyLimit::AtMost(n)) => assert!(checked.body_len <= n, "{name}: body over limit"),
        None => panic!("{name}: encoded with an unknown type"),
    }
}

/// Decodes agent frames one after the other, as a stream would, and drives an
/// [`AgentSession`] with every message decoded. Stops at the first decode error (a real
/// connection ends there) or when the bytes run out. Session violations are recorded and
/// ignored, so later messages still exercise the session (a refused message changes nothing).
pub fn decode_agent(data: &[u8]) {
    let Some((&config, mut rest)) = data.split_first() else {
        return;
    };
    let config = Config::from_byte(config);
    let limits = fuzz_limits();
    let mut session = AgentSession::new(limits, config.capabilities);
    let mut now = Instant::now();
    if config.auto_hello {
        let hello = AgentMessage::Hello {
            version: Version::CURRENT,
            capabilities: Capabilities::all(),
        };
        assert!(matches!(
            session.apply(&hello, now),
            Ok(Applied::Established { .. })
        ));
    }
    loop {
        match codec::decode_agent_frame(rest) {
            Ok(Some((msg, used))) => {
                assert!(
                    (HEADER_BYTES..=rest.len()).contains(&used),
                    "consumed {used} of {}",
                    rest.len()
                );
                rest = &rest[used..];
                check_agent_roundtrip(&msg);
                now += config.step;
                let before = session.clone();
                let result = session.apply(&msg, now);
                check_applied(&before, &msg, result, &session);
                check_session_invariants(&session, &limits);
            }
            Ok(None) => {
                // Only a short read may ask for more: the header was complete and valid.
                if rest.len() >= HEADER_BYTES {
                    let mut header = [0u8; HEADER_BYTES];
                    header.copy_from_slice(&rest[..HEADER_BYTES]);
                    let h = codec::check_header(Direction::AgentToGui, header)
                        .expect("Ok(None) after a bad header");
                    assert!(rest.len() < HEADER_BYTES + h.body_len);
                }
                return;
            }
            Err(_) => return,
        }
    }
}

fn check_applied(
    before: &AgentSession,
    msg: &AgentMessage,
    result: Result<Applied, crate::session::SessionViolation>,
    after: &AgentSession,
) {
    match result {
        Ok(Applied::WindowsDestroyed(gone)) => {
            let AgentMessage::DestroyWindow { window } = msg else {
                panic!("windows destroyed by {}", msg.name());
            };
            assert_eq!(gone.last(), Some(window), "the destroyed window comes last");
            assert_eq!(before.window_count() - gone.len(), after.window_count());
            for (i, id) in gone.iter().enumerate() {
                assert!(
                    after.window_kind(*id).is_none(),
                    "window {id} survived its destruction"
                );
                // Children first: a parent that goes too is listed after its child.
                if let Some(crate::session::WindowKind::Popup { parent }) = before.window_kind(*id)
                    && let Some(j) = gone.iter().position(|g| *g == parent)
                {
                    assert!(j > i, "parent {parent} listed before its child {id}");
                }
            }
        }
        Ok(Applied::Established { .. }) => assert!(after.established().is_some()),
        Ok(Applied::Accepted) => {}
        Err(_) => {
            // A refused message changes nothing the session reports.
            assert_eq!(before.window_count(), after.window_count());
            assert_eq!(before.pool_count(), after.pool_count());
            assert_eq!(before.pool_bytes(), after.pool_bytes());
        }
    }
}

fn check_session_invariants(session: &AgentSession, limits: &SessionLimits) {
    assert!(session.window_count() <= limits.max_windows);
    assert!(session.pool_count() <= limits.max_pools);
    assert!(session.pool_bytes() <= limits.max_pool_bytes);
    assert!(session.pool_bytes() <= MAX_POOL_BYTES * session.pool_count() as u64);
}

/// Decodes GUI frames one after the other (what an agent does with the GUI domain's bytes).
pub fn decode_gui(data: &[u8]) {
    let mut rest = data;
    while let Ok(Some((msg, used))) = codec::decode_gui_frame(rest) {
        assert!((HEADER_BYTES..=rest.len()).contains(&used));
        rest = &rest[used..];
        check_gui_roundtrip(&msg);
    }
}

/// Feeds the bytes through a real [`GuiConnection`] over a socketpair, in chunks whose size the
/// second input byte chooses, so framing across partial reads, pool mapping and inline writes
/// are fuzzed too. With bit 4 of the first byte set, a sealed memfd of [`FUZZ_MEMFD_BYTES`]
/// travels with the first chunk. Ends when the connection reports an error (as it must once the
/// peer has closed) and asserts that it does so within a bounded number of calls.
pub fn stream_agent(data: &[u8]) {
    let [config, chunk, rest @ ..] = data else {
        return;
    };
    let config = Config::from_byte(*config);
    let chunk = usize::from(*chunk).max(1) * 4;
    let Ok((transport, peer)) = UnixTransport::pair() else {
        return;
    };
    if peer.set_nonblocking(true).is_err() {
        return;
    }
    let mut conn = GuiConnection::new(
        transport,
        fuzz_limits(),
        StreamLimits {
            max_queued_bytes: 64 * 1024,
        },
    );
    let mut now = Instant::now();
    let mut written = 0usize;
    let mut prefix = Vec::new();
    if config.auto_hello {
        codec::encode_agent(
            &AgentMessage::Hello {
                version: Version::CURRENT,
                capabilities: Capabilities::all(),
            },
            &mut prefix,
        );
    }
    let memfd = if config.pass_memfd {
        SharedMemfd::create(FUZZ_MEMFD_BYTES).ok()
    } else {
        None
    };
    let mut first = true;
    for piece in std::iter::once(prefix.as_slice()).chain(rest.chunks(chunk)) {
        if piece.is_empty() {
            continue;
        }
        let sent = if first && let Some(memfd) = &memfd {
            send_with_fd(&peer, piece, memfd)
        } else {
            write_all_nonblocking(&peer, piece, &mut conn, &mut now, config.step, written)
        };
        first = false;
        match sent {
            Ok(n) => written += n,
            Err(_) => return,
        }
        if !drain(&mut conn, &mut now, config.step, written) {
            return;
        }
    }
    drop(peer);
    // The peer is gone: the connection must end, whatever state the bytes left it in.
    for _ in 0..written / HEADER_BYTES + 4 {
        if conn.receive(now).is_err() {
            return;
        }
        now += config.step;
    }
    panic!("the connection did not end after its peer closed");
}

/// Receives until the connection has nothing more (true) or fails (false).
fn drain(
    conn: &mut GuiConnection<UnixTransport>,
    now: &mut Instant,
    step: Duration,
    written: usize,
) -> bool {
    for _ in 0..written / HEADER_BYTES + 4 {
        assert!(
            conn.stream().buffered_bytes() <= written,
            "buffered more than was sent"
        );
        match conn.receive(*now) {
            Ok(Some(_)) => *now += step,
            Ok(None) => return true,
            Err(_) => return false,
        }
    }
    panic!("more messages than the bytes sent can hold");
}

fn write_all_nonblocking(
    mut peer: &UnixStream,
    mut bytes: &[u8],
    conn: &mut GuiConnection<UnixTransport>,
    now: &mut Instant,
    step: Duration,
    written_before: usize,
) -> io::Result<usize> {
    let total = bytes.len();
    for _ in 0..1_000 {
        if bytes.is_empty() {
            return Ok(total);
        }
        match peer.write(bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if !drain(conn, now, step, written_before + total - bytes.len()) {
                    return Err(io::Error::other("receiver failed"));
                }
            }
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other("socket never drained"))
}

fn send_with_fd(peer: &UnixStream, bytes: &[u8], memfd: &SharedMemfd) -> io::Result<usize> {
    use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags, sendmsg};
    let fd = memfd.fd()?;
    let fds = [fd.as_fd()];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
        return Err(io::Error::other("ancillary buffer too small"));
    }
    Ok(sendmsg(
        peer,
        &[IoSlice::new(bytes)],
        &mut control,
        SendFlags::DONTWAIT | SendFlags::NOSIGNAL,
    )?)
}

/// One valid message of every agent → GUI type, in an order a session accepts when it has
/// negotiated inline and Xen pools. Seeds for fuzzing and the base of mutation tests.
pub fn sample_agent_messages() -> Vec<AgentMessage> {
    let w1 = WindowId::new(1).expect("nonzero");
    let w2 = WindowId::new(2).expect("nonzero");
    let p1 = PoolId::new(1).expect("nonzero");
    let p2 = PoolId::new(2).expect("nonzero");
    let size = Size::new(4, 4).expect("valid size");
    let pixels = InlinePixels::new(0, 16, 16, 4, vec![0x55; 64]).expect("valid pixels");
    let layout = BufferLayout::new(0, size, 16, PixelFormat::Argb8888).expect("valid layout");
    vec![
        AgentMessage::Hello {
            version: Version::CURRENT,
            capabilities: Capabilities::all(),
        },
        AgentMessage::CreateToplevel { window: w1 },
        AgentMessage::SetTitle {
            window: w1,
            title: SanitizedText::sanitize("Document.odt — LibreOffice", 256),
        },
        AgentMessage::SetAppId {
            window: w1,
            app_id: SanitizedText::sanitize("org.libreoffice.Writer", 256),
        },
        AgentMessage::SizeHints {
            window: w1,
            min: OptionalSize::new(100, 50).expect("valid"),
            max: OptionalSize::UNSET,
        },
        AgentMessage::PoolCreate {
            pool: p1,
            size: 4096,
            backing: PoolBacking::Inline,
        },
        AgentMessage::PoolWrite {
            pool: p1,
            pixels: pixels.clone(),
            compression: Compression::None,
        },
        AgentMessage::PoolWrite {
            pool: p1,
            pixels,
            compression: Compression::Lz4,
        },
        AgentMessage::Attach {
            window: w1,
            pool: p1,
            layout,
        },
        AgentMessage::Damage {
            window: w1,
            rects: vec![Rect::new(0, 0, 4, 4).expect("valid rect")],
        },
        AgentMessage::Commit {
            window: w1,
            serial: Serial(1),
        },
        AgentMessage::Map { window: w1 },
        AgentMessage::AckConfigure {
            window: w1,
            serial: Serial(1),
        },
        AgentMessage::SetCursor {
            window: w1,
            shape: CursorShape::Text,
        },
        AgentMessage::RequestAttention { window: w1 },
        AgentMessage::RequestState {
            window: w1,
            request: StateRequest::Maximize,
        },
        AgentMessage::CreatePopup {
            window: w2,
            parent: w1,
            position: Point::new(10, 20).expect("valid point"),
            size,
        },
        AgentMessage::RepositionPopup {
            window: w2,
            position: Point::new(-5, 7).expect("valid point"),
            size,
        },
        AgentMessage::Unmap { window: w2 },
        AgentMessage::PoolCreate {
            pool: p2,
            size: 8192,
            backing: PoolBacking::XenGrants(vec![7, 8]),
        },
        AgentMessage::PoolDestroy { pool: p2 },
        AgentMessage::ClipboardData {
            serial: Serial(3),
            payload: ClipboardPayload::text("copied text"),
        },
        AgentMessage::ClipboardData {
            serial: Serial(4),
            payload: ClipboardPayload::Png([&PNG_SIGNATURE[..], b"IHDR"].concat()),
        },
        AgentMessage::ClipboardEmpty { serial: Serial(5) },
        AgentMessage::AppList {
            apps: vec![AppEntry {
                id: SanitizedText::sanitize("firefox.desktop", 256),
                name: SanitizedText::sanitize("Firefox", 256),
                icon: SanitizedText::sanitize("firefox", 256),
            }],
        },
        AgentMessage::Pong { serial: Serial(6) },
        AgentMessage::Notify {
            id: NotificationId::new(1).expect("nonzero"),
            urgency: Urgency::Critical,
            summary: SanitizedText::sanitize("Build finished", 256),
            body: SanitizedText::sanitize("All 42 tests passed.", 1024),
        },
        AgentMessage::CloseNotification {
            id: NotificationId::new(1).expect("nonzero"),
        },
        AgentMessage::DestroyWindow { window: w1 },
        AgentMessage::Goodbye {
            reason: SanitizedText::sanitize("agent stopping", 1024),
        },
    ]
}

/// One valid message of every GUI → agent type.
pub fn sample_gui_messages() -> Vec<GuiMessage> {
    let w1 = WindowId::new(1).expect("nonzero");
    let output = OutputInfo {
        id: OutputId::new(1).expect("nonzero"),
        position: Point::new(0, 0).expect("valid point"),
        size: Size::new(1920, 1080).expect("valid size"),
        scale_120ths: Scale::new(180).expect("valid scale"),
        refresh_mhz: 60_000,
        name: SanitizedText::sanitize("eDP-1", 64),
    };
    let position = FixedPoint::new(256, 512).expect("valid position");
    vec![
        GuiMessage::Welcome {
            version: Version::CURRENT,
            capabilities: Capabilities::INLINE_PIXELS | Capabilities::LZ4,
            outputs: vec![output.clone()],
        },
        GuiMessage::OutputsChanged {
            outputs: vec![output],
        },
        GuiMessage::Configure {
            window: w1,
            serial: Serial(1),
            size: OptionalSize::new(800, 600).expect("valid"),
            states: WindowStates::ACTIVATED | WindowStates::MAXIMIZED,
        },
        GuiMessage::Keymap {
            keymap: "xkb_keymap { };".to_owned(),
        },
        GuiMessage::KeyboardEnter {
            window: w1,
            pressed_keys: vec![30, 31],
        },
        GuiMessage::Key {
            window: w1,
            time_ms: 10,
            keycode: 30,
            pressed: true,
        },
        GuiMessage::Modifiers {
            window: w1,
            depressed: 1,
            latched: 0,
            locked: 2,
            group: 0,
        },
        GuiMessage::KeyboardLeave { window: w1 },
        GuiMessage::PointerEnter {
            window: w1,
            position,
        },
        GuiMessage::PointerMotion {
            window: w1,
            time_ms: 11,
            position,
        },
        GuiMessage::PointerButton {
            window: w1,
            time_ms: 12,
            button: 0x110,
            pressed: false,
        },
        GuiMessage::PointerAxis {
            window: w1,
            time_ms: 13,
            axis: Axis::Horizontal,
            value_256ths: -2560,
            value120: -120,
        },
        GuiMessage::PointerLeave { window: w1 },
        GuiMessage::FrameDone {
            window: w1,
            timestamp_ns: 123_456_789,
        },
        GuiMessage::ClipboardRequest { serial: Serial(2) },
        GuiMessage::ClipboardPaste {
            payload: ClipboardPayload::text("pasted"),
        },
        GuiMessage::Launch {
            request: LaunchRequest::App("firefox.desktop".to_owned()),
        },
        GuiMessage::Launch {
            request: LaunchRequest::Command(vec![
                "xterm".to_owned(),
                "-e".to_owned(),
                "top".to_owned(),
            ]),
        },
        GuiMessage::ListApps,
        GuiMessage::Ping { serial: Serial(3) },
        GuiMessage::PoolReleased {
            pool: PoolId::new(1).expect("nonzero"),
        },
        GuiMessage::Close { window: w1 },
        GuiMessage::NotificationClosed {
            id: NotificationId::new(1).expect("nonzero"),
            reason: CloseReason::Expired,
        },
        GuiMessage::Goodbye {
            reason: SanitizedText::sanitize("session ends", 1024),
        },
    ]
}

/// Seed inputs for the fuzz targets: `(name, bytes)`, each already carrying its config byte(s).
pub fn seed_corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let mut seeds = Vec::new();
    match target {
        "decode_agent" | "stream_agent" => {
            // 0x3F: every capability offered, NOTIFICATIONS included (bit 5).
            let prefix: &[u8] = if target == "decode_agent" {
                &[0x3F]
            } else {
                &[0x3F, 0xFF]
            };
            let messages = sample_agent_messages();
            let mut all = prefix.to_vec();
            for (i, msg) in messages.iter().enumerate() {
                let mut one = prefix.to_vec();
                // Single messages after an automatic hello (bit 7).
                one[0] |= 0x80;
                codec::encode_agent(msg, &mut one);
                seeds.push((format!("{i:02}-{}", msg.name()), one));
                codec::encode_agent(msg, &mut all);
            }
            seeds.push(("session".to_owned(), all));
            if target == "stream_agent" {
                // A memfd pool (bit 4 passes a sealed memfd of FUZZ_MEMFD_BYTES).
                let mut memfd = vec![0x80 | 0x10 | 0x01, 0xFF];
                for msg in [
                    AgentMessage::PoolCreate {
                        pool: PoolId::new(1).expect("nonzero"),
                        size: FUZZ_MEMFD_BYTES,
                        backing: PoolBacking::MemFd,
                    },
                    AgentMessage::CreateToplevel {
                        window: WindowId::new(1).expect("nonzero"),
                    },
                    AgentMessage::Attach {
                        window: WindowId::new(1).expect("nonzero"),
                        pool: PoolId::new(1).expect("nonzero"),
                        layout: BufferLayout::new(
                            0,
                            Size::new(32, 32).expect("size"),
                            128,
                            PixelFormat::Xrgb8888,
                        )
                        .expect("layout"),
                    },
                ] {
                    codec::encode_agent(&msg, &mut memfd);
                }
                seeds.push(("memfd-pool".to_owned(), memfd));
            }
        }
        "decode_gui" => {
            let mut all = Vec::new();
            for (i, msg) in sample_gui_messages().iter().enumerate() {
                let mut one = Vec::new();
                codec::encode_gui(msg, &mut one);
                seeds.push((format!("{i:02}-{}", msg.name()), one));
                codec::encode_gui(msg, &mut all);
            }
            seeds.push(("all".to_owned(), all));
        }
        _ => {}
    }
    seeds
}
