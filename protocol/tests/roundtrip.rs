//! Round-trip properties of the codec: every message, in both directions, built only through
//! the public constructors, encodes and decodes to itself; encodings respect the type table;
//! sanitised text keeps its promises.

use std::cell::RefCell;
use std::collections::BTreeSet;

use corral_protocol::codec::{self, BodyLimit, Direction};
use corral_protocol::limits::*;
use corral_protocol::text::is_forbidden;
use corral_protocol::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

// ---------------------------------------------------------------------------------------------
// Strategies for the validated value types

fn window_id() -> impl Strategy<Value = WindowId> {
    prop_oneof![1u32..=16, 1..=u32::MAX].prop_map(|v| WindowId::new(v).unwrap())
}

fn pool_id() -> impl Strategy<Value = PoolId> {
    prop_oneof![1u32..=16, 1..=u32::MAX].prop_map(|v| PoolId::new(v).unwrap())
}

fn serial() -> impl Strategy<Value = Serial> {
    any::<u32>().prop_map(Serial)
}

fn dimension() -> impl Strategy<Value = u32> {
    prop_oneof![
        1u32..=64,
        1..=MAX_SURFACE_DIMENSION,
        Just(MAX_SURFACE_DIMENSION)
    ]
}

fn size() -> impl Strategy<Value = Size> {
    (dimension(), dimension()).prop_map(|(w, h)| Size::new(w, h).unwrap())
}

fn optional_size() -> impl Strategy<Value = OptionalSize> {
    (0..=MAX_SURFACE_DIMENSION, 0..=MAX_SURFACE_DIMENSION)
        .prop_map(|(w, h)| OptionalSize::new(w, h).unwrap())
}

fn point() -> impl Strategy<Value = Point> {
    (
        -MAX_COORDINATE..=MAX_COORDINATE,
        -MAX_COORDINATE..=MAX_COORDINATE,
    )
        .prop_map(|(x, y)| Point::new(x, y).unwrap())
}

fn fixed_point() -> impl Strategy<Value = FixedPoint> {
    let bound = MAX_COORDINATE * 256;
    (-bound..=bound, -bound..=bound).prop_map(|(x, y)| FixedPoint::new(x, y).unwrap())
}

fn rect() -> impl Strategy<Value = Rect> {
    (0..MAX_SURFACE_DIMENSION, 0..MAX_SURFACE_DIMENSION)
        .prop_flat_map(|(x, y)| {
            (
                Just(x),
                Just(y),
                1..=MAX_SURFACE_DIMENSION - x,
                1..=MAX_SURFACE_DIMENSION - y,
            )
        })
        .prop_map(|(x, y, w, h)| Rect::new(x, y, w, h).unwrap())
}

fn pixel_format() -> impl Strategy<Value = PixelFormat> {
    prop_oneof![Just(PixelFormat::Argb8888), Just(PixelFormat::Xrgb8888)]
}

fn buffer_layout() -> impl Strategy<Value = BufferLayout> {
    (size(), pixel_format())
        .prop_flat_map(|(size, format)| {
            let row = size.width() * 4;
            let max_extra = (MAX_SURFACE_DIMENSION * 4 - row) / 4;
            (Just(size), Just(format), 0..=max_extra)
        })
        .prop_flat_map(|(size, format, extra)| {
            let stride = size.width() * 4 + extra * 4;
            let span =
                u64::from(stride) * u64::from(size.height() - 1) + u64::from(size.width()) * 4;
            let max_offset = MAX_POOL_BYTES - span;
            (
                Just(size),
                Just(format),
                Just(stride),
                prop_oneof![
                    0..=max_offset.min(1 << 20),
                    0..=max_offset,
                    Just(max_offset)
                ],
            )
        })
        // Offsets are 4-byte aligned (BufferLayout requires it so renderers can read in place).
        .prop_map(|(size, format, stride, offset)| {
            BufferLayout::new(offset & !3, size, stride, format).unwrap()
        })
}

/// Pixel bytes: random (incompressible) or from a tiny alphabet (LZ4 finds matches).
fn pixel_data(len: usize) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), len),
        proptest::collection::vec(prop_oneof![Just(0u8), Just(0xFF)], len),
        any::<u8>().prop_map(move |b| vec![b; len]),
    ]
}

fn inline_pixels() -> impl Strategy<Value = InlinePixels> {
    (1u32..=512, 1u32..=32, 0u32..=64)
        .prop_flat_map(|(row_bytes, rows, extra)| {
            let stride = row_bytes + extra;
            let span = u64::from(stride) * u64::from(rows - 1) + u64::from(row_bytes);
            (
                Just((row_bytes, rows, stride)),
                prop_oneof![0..=4096u64, 0..=MAX_POOL_BYTES - span],
                pixel_data((row_bytes * rows) as usize),
            )
        })
        .prop_map(|((row_bytes, rows, stride), offset, data)| {
            InlinePixels::new(offset, stride, row_bytes, rows, data).unwrap()
        })
}

fn compression() -> impl Strategy<Value = Compression> {
    prop_oneof![Just(Compression::None), Just(Compression::Lz4)]
}

/// Characters a hostile qube would like to see on screen.
fn nasty_char() -> impl Strategy<Value = char> {
    prop_oneof![
        4 => any::<char>(),
        4 => proptest::char::range('a', 'z'),
        1 => proptest::sample::select(vec![
            '\0', '\t', '\n', '\r', '\x1b', '\x7f', '\u{85}', '\u{9b}', '\u{ad}', '\u{61c}', '\u{200b}', '\u{200d}',
            '\u{200e}', '\u{202a}', '\u{202e}', '\u{2028}', '\u{2029}', '\u{2066}', '\u{2069}', '\u{feff}',
            '\u{fff9}', '\u{e0041}', '\u{e000}', '\u{10fffd}', '\u{fffe}', '\u{3164}', 'é', '—', '日', '🦀',
        ]),
    ]
}

fn raw_string(max_chars: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(nasty_char(), 0..=max_chars).prop_map(String::from_iter)
}

fn text(max_bytes: usize) -> impl Strategy<Value = SanitizedText> {
    raw_string(max_bytes / 2 + 8).prop_map(move |s| SanitizedText::sanitize(&s, max_bytes))
}

/// A string without NUL, cut to `max_bytes` on a character boundary.
fn plain_string(max_bytes: usize, max_chars: usize) -> impl Strategy<Value = String> {
    raw_string(max_chars).prop_map(move |s| {
        let mut out = String::new();
        for c in s.chars().filter(|c| *c != '\0') {
            if out.len() + c.len_utf8() > max_bytes {
                break;
            }
            out.push(c);
        }
        out
    })
}

fn capabilities() -> impl Strategy<Value = Capabilities> {
    any::<u32>().prop_map(Capabilities::from_bits_truncate)
}

fn version() -> impl Strategy<Value = Version> {
    (any::<u16>(), any::<u16>()).prop_map(|(major, minor)| Version { major, minor })
}

fn pool_backing_and_size() -> impl Strategy<Value = (u64, PoolBacking)> {
    prop_oneof![
        (1..=MAX_POOL_BYTES).prop_map(|s| (s, PoolBacking::MemFd)),
        (1..=MAX_POOL_BYTES).prop_map(|s| (s, PoolBacking::Inline)),
        (1u64..=64 * 4096).prop_flat_map(|s| {
            let pages = s.div_ceil(4096) as usize;
            proptest::collection::vec(any::<u32>(), pages)
                .prop_map(move |refs| (s, PoolBacking::XenGrants(refs)))
        }),
    ]
}

fn clipboard() -> impl Strategy<Value = ClipboardPayload> {
    prop_oneof![
        raw_string(200).prop_map(|s| ClipboardPayload::text(&s)),
        proptest::collection::vec(any::<u8>(), 0..200)
            .prop_map(|rest| ClipboardPayload::Png([&PNG_SIGNATURE[..], &rest].concat())),
    ]
}

fn output() -> impl Strategy<Value = OutputInfo> {
    (
        1..=u32::MAX,
        point(),
        size(),
        120u32..=960,
        any::<u32>(),
        text(MAX_OUTPUT_NAME_BYTES),
    )
        .prop_map(
            |(id, position, size, scale, refresh_mhz, name)| OutputInfo {
                id: OutputId::new(id).unwrap(),
                position,
                size,
                scale_120ths: Scale::new(scale).unwrap(),
                refresh_mhz,
                name,
            },
        )
}

fn app_entry() -> impl Strategy<Value = AppEntry> {
    (
        text(MAX_APP_ID_BYTES),
        text(MAX_APP_NAME_BYTES),
        text(MAX_APP_NAME_BYTES),
    )
        .prop_map(|(id, name, icon)| AppEntry { id, name, icon })
}

fn launch_request() -> impl Strategy<Value = LaunchRequest> {
    prop_oneof![
        plain_string(MAX_APP_ID_BYTES, 300).prop_map(LaunchRequest::App),
        proptest::collection::vec(plain_string(MAX_LAUNCH_ARG_BYTES, 40), 1..=16)
            .prop_map(LaunchRequest::Command),
    ]
}

/// Size hints as the decoder accepts them: each maximum is unset (0) or at least the minimum.
fn size_hints() -> impl Strategy<Value = (OptionalSize, OptionalSize)> {
    (
        optional_size(),
        optional_size(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(a, b, unset_w, unset_h)| {
            let (min_w, max_w) = if unset_w {
                (a.width(), 0)
            } else {
                (a.width().min(b.width()), a.width().max(b.width()))
            };
            let (min_h, max_h) = if unset_h {
                (a.height(), 0)
            } else {
                (a.height().min(b.height()), a.height().max(b.height()))
            };
            (
                OptionalSize::new(min_w, min_h).unwrap(),
                OptionalSize::new(max_w, max_h).unwrap(),
            )
        })
}

// ---------------------------------------------------------------------------------------------
// Message strategies

fn agent_message() -> impl Strategy<Value = AgentMessage> {
    use AgentMessage as M;
    prop_oneof![
        (version(), capabilities()).prop_map(|(version, capabilities)| M::Hello {
            version,
            capabilities
        }),
        text(MAX_REASON_BYTES).prop_map(|reason| M::Goodbye { reason }),
        window_id().prop_map(|window| M::CreateToplevel { window }),
        (window_id(), window_id(), point(), size())
            .prop_filter("a popup is not its own parent", |(w, p, _, _)| w != p)
            .prop_map(|(window, parent, position, size)| M::CreatePopup {
                window,
                parent,
                position,
                size
            }),
        (window_id(), point(), size()).prop_map(|(window, position, size)| M::RepositionPopup {
            window,
            position,
            size
        }),
        window_id().prop_map(|window| M::DestroyWindow { window }),
        window_id().prop_map(|window| M::Map { window }),
        window_id().prop_map(|window| M::Unmap { window }),
        (window_id(), text(MAX_TITLE_BYTES))
            .prop_map(|(window, title)| M::SetTitle { window, title }),
        (window_id(), text(MAX_APP_ID_BYTES))
            .prop_map(|(window, app_id)| M::SetAppId { window, app_id }),
        (window_id(), size_hints()).prop_map(|(window, (min, max))| M::SizeHints {
            window,
            min,
            max
        }),
        (pool_id(), pool_backing_and_size()).prop_map(|(pool, (size, backing))| M::PoolCreate {
            pool,
            size,
            backing
        }),
        pool_id().prop_map(|pool| M::PoolDestroy { pool }),
        (pool_id(), inline_pixels(), compression()).prop_map(|(pool, pixels, compression)| {
            M::PoolWrite {
                pool,
                pixels,
                compression,
            }
        }),
        (window_id(), pool_id(), buffer_layout()).prop_map(|(window, pool, layout)| M::Attach {
            window,
            pool,
            layout
        }),
        (window_id(), proptest::collection::vec(rect(), 0..=20))
            .prop_map(|(window, rects)| M::Damage { window, rects }),
        (window_id(), serial()).prop_map(|(window, serial)| M::Commit { window, serial }),
        (window_id(), serial()).prop_map(|(window, serial)| M::AckConfigure { window, serial }),
        (
            window_id(),
            proptest::sample::select(CursorShape::ALL.to_vec())
        )
            .prop_map(|(window, shape)| M::SetCursor { window, shape }),
        window_id().prop_map(|window| M::RequestAttention { window }),
        (
            window_id(),
            proptest::sample::select(StateRequest::ALL.to_vec())
        )
            .prop_map(|(window, request)| M::RequestState { window, request }),
        (serial(), clipboard()).prop_map(|(serial, payload)| M::ClipboardData { serial, payload }),
        serial().prop_map(|serial| M::ClipboardEmpty { serial }),
        proptest::collection::vec(app_entry(), 0..=6).prop_map(|apps| M::AppList { apps }),
        serial().prop_map(|serial| M::Pong { serial }),
        (
            notification_id(),
            proptest::sample::select(Urgency::ALL.to_vec()),
            text(MAX_NOTIFICATION_SUMMARY_BYTES),
            text(MAX_NOTIFICATION_BODY_BYTES),
        )
            .prop_map(|(id, urgency, summary, body)| M::Notify {
                id,
                urgency,
                summary,
                body
            }),
        notification_id().prop_map(|id| M::CloseNotification { id }),
    ]
}

fn notification_id() -> impl Strategy<Value = NotificationId> {
    prop_oneof![1u32..=16, 1..=u32::MAX].prop_map(|v| NotificationId::new(v).unwrap())
}

fn gui_message() -> impl Strategy<Value = GuiMessage> {
    use GuiMessage as M;
    prop_oneof![
        (
            version(),
            capabilities(),
            proptest::collection::vec(output(), 0..=MAX_OUTPUTS)
        )
            .prop_map(|(version, capabilities, outputs)| M::Welcome {
                version,
                capabilities,
                outputs
            }),
        text(MAX_REASON_BYTES).prop_map(|reason| M::Goodbye { reason }),
        proptest::collection::vec(output(), 0..=MAX_OUTPUTS)
            .prop_map(|outputs| M::OutputsChanged { outputs }),
        (window_id(), serial(), optional_size(), any::<u32>()).prop_map(
            |(window, serial, size, states)| M::Configure {
                window,
                serial,
                size,
                states: WindowStates::from_bits_truncate(states),
            }
        ),
        window_id().prop_map(|window| M::Close { window }),
        plain_string(MAX_KEYMAP_BYTES, 400).prop_map(|keymap| M::Keymap { keymap }),
        (
            window_id(),
            proptest::collection::vec(any::<u32>(), 0..=MAX_PRESSED_KEYS)
        )
            .prop_map(|(window, pressed_keys)| M::KeyboardEnter {
                window,
                pressed_keys
            }),
        window_id().prop_map(|window| M::KeyboardLeave { window }),
        (window_id(), any::<u32>(), any::<u32>(), any::<bool>()).prop_map(
            |(window, time_ms, keycode, pressed)| M::Key {
                window,
                time_ms,
                keycode,
                pressed
            }
        ),
        (
            window_id(),
            any::<u32>(),
            any::<u32>(),
            any::<u32>(),
            any::<u32>()
        )
            .prop_map(|(window, depressed, latched, locked, group)| M::Modifiers {
                window,
                depressed,
                latched,
                locked,
                group
            }),
        (window_id(), fixed_point())
            .prop_map(|(window, position)| M::PointerEnter { window, position }),
        window_id().prop_map(|window| M::PointerLeave { window }),
        (window_id(), any::<u32>(), fixed_point()).prop_map(|(window, time_ms, position)| {
            M::PointerMotion {
                window,
                time_ms,
                position,
            }
        }),
        (window_id(), any::<u32>(), any::<u32>(), any::<bool>()).prop_map(
            |(window, time_ms, button, pressed)| {
                M::PointerButton {
                    window,
                    time_ms,
                    button,
                    pressed,
                }
            }
        ),
        (
            window_id(),
            any::<u32>(),
            any::<bool>(),
            any::<i32>(),
            any::<i32>()
        )
            .prop_map(|(window, time_ms, horizontal, value_256ths, value120)| {
                M::PointerAxis {
                    window,
                    time_ms,
                    axis: if horizontal {
                        Axis::Horizontal
                    } else {
                        Axis::Vertical
                    },
                    value_256ths,
                    value120,
                }
            }),
        (window_id(), any::<u64>()).prop_map(|(window, timestamp_ns)| M::FrameDone {
            window,
            timestamp_ns
        }),
        serial().prop_map(|serial| M::ClipboardRequest { serial }),
        clipboard().prop_map(|payload| M::ClipboardPaste { payload }),
        launch_request().prop_map(|request| M::Launch { request }),
        Just(M::ListApps),
        serial().prop_map(|serial| M::Ping { serial }),
        pool_id().prop_map(|pool| M::PoolReleased { pool }),
        (
            notification_id(),
            proptest::sample::select(CloseReason::ALL.to_vec())
        )
            .prop_map(|(id, reason)| M::NotificationClosed { id, reason }),
    ]
}

// ---------------------------------------------------------------------------------------------
// Round trips

fn agent_roundtrip(msg: &AgentMessage) -> Result<u32, TestCaseError> {
    let mut bytes = Vec::new();
    codec::encode_agent(msg, &mut bytes);
    let (decoded, used) = codec::decode_agent_frame(&bytes)
        .map_err(|e| TestCaseError::fail(format!("{}: {e}", msg.name())))?
        .ok_or_else(|| TestCaseError::fail("complete frame reported as incomplete"))?;
    prop_assert_eq!(used, bytes.len());
    prop_assert_eq!(&decoded, msg);
    // Every shorter prefix is an incomplete frame, never an error and never a message.
    for cut in [0, 1, HEADER_BYTES - 1, HEADER_BYTES, bytes.len() - 1] {
        if cut < bytes.len() {
            prop_assert_eq!(codec::decode_agent_frame(&bytes[..cut]), Ok(None));
        }
    }
    // Decoding leaves what follows the frame alone.
    let mut two = bytes.clone();
    two.extend_from_slice(&bytes);
    prop_assert_eq!(
        codec::decode_agent_frame(&two).unwrap().map(|(_, n)| n),
        Some(bytes.len())
    );
    check_limit(Direction::AgentToGui, &bytes)?;
    Ok(codec::agent_type(msg))
}

fn gui_roundtrip(msg: &GuiMessage) -> Result<u32, TestCaseError> {
    let mut bytes = Vec::new();
    codec::encode_gui(msg, &mut bytes);
    let (decoded, used) = codec::decode_gui_frame(&bytes)
        .map_err(|e| TestCaseError::fail(format!("{}: {e}", msg.name())))?
        .ok_or_else(|| TestCaseError::fail("complete frame reported as incomplete"))?;
    prop_assert_eq!(used, bytes.len());
    prop_assert_eq!(&decoded, msg);
    for cut in [0, 1, HEADER_BYTES - 1, HEADER_BYTES, bytes.len() - 1] {
        if cut < bytes.len() {
            prop_assert_eq!(codec::decode_gui_frame(&bytes[..cut]), Ok(None));
        }
    }
    check_limit(Direction::GuiToAgent, &bytes)?;
    Ok(codec::gui_type(msg))
}

/// The encoded body respects the limit of its type in the table.
fn check_limit(direction: Direction, bytes: &[u8]) -> Result<(), TestCaseError> {
    let msg_type = u32::from_le_bytes(bytes[0..4].try_into().unwrap());
    let body_len = u32::from_le_bytes(bytes[4..8].try_into().unwrap()) as usize;
    prop_assert_eq!(body_len + HEADER_BYTES, bytes.len());
    match codec::body_limit(direction, msg_type) {
        Some(BodyLimit::Exact(n)) => prop_assert_eq!(body_len, n),
        Some(BodyLimit::AtMost(n)) => {
            prop_assert!(body_len <= n, "body {} over limit {}", body_len, n)
        }
        None => prop_assert!(false, "type {:#x} is not in the table", msg_type),
    }
    Ok(())
}

fn all_types(direction: Direction) -> BTreeSet<u32> {
    codec::message_types(direction)
        .iter()
        .map(|(t, _, _)| *t)
        .collect()
}

#[test]
fn every_agent_message_roundtrips() {
    let seen = RefCell::new(BTreeSet::new());
    let mut runner = TestRunner::new(Config {
        cases: 4_000,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&agent_message(), |msg| {
            let t = agent_roundtrip(&msg)?;
            seen.borrow_mut().insert(t);
            Ok(())
        })
        .unwrap();
    assert_eq!(
        seen.into_inner(),
        all_types(Direction::AgentToGui),
        "the strategy misses a variant"
    );
}

#[test]
fn every_gui_message_roundtrips() {
    let seen = RefCell::new(BTreeSet::new());
    let mut runner = TestRunner::new(Config {
        cases: 4_000,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&gui_message(), |msg| {
            let t = gui_roundtrip(&msg)?;
            seen.borrow_mut().insert(t);
            Ok(())
        })
        .unwrap();
    assert_eq!(
        seen.into_inner(),
        all_types(Direction::GuiToAgent),
        "the strategy misses a variant"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// LZ4 pool writes round-trip, also for larger, compressible buffers.
    #[test]
    fn lz4_pool_write_roundtrips(
        pool in pool_id(),
        (row_bytes, rows) in (1u32..=4096, 1u32..=64),
        pattern in proptest::collection::vec(any::<u8>(), 1..=16),
        noise in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..32),
        offset in 0u64..=1 << 24,
    ) {
        let len = (row_bytes * rows) as usize;
        let mut data: Vec<u8> = pattern.iter().copied().cycle().take(len).collect();
        for (at, b) in noise {
            data[at % len] = b;
        }
        let pixels = InlinePixels::new(offset, row_bytes, row_bytes, rows, data).unwrap();
        let msg = AgentMessage::PoolWrite { pool, pixels, compression: Compression::Lz4 };
        let mut bytes = Vec::new();
        codec::encode_agent(&msg, &mut bytes);
        // Compressible data really is sent compressed.
        if len > 1024 {
            prop_assert!(bytes.len() < len, "{} bytes for {} bytes of pattern", bytes.len(), len);
        }
        agent_roundtrip(&msg)?;
    }

    /// Whatever the input, sanitised text has no forbidden character, fits its limit, and
    /// sanitising it again changes nothing.
    #[test]
    fn sanitized_text_is_clean_bounded_and_idempotent(input in raw_string(400), max in 0usize..=300) {
        let clean = SanitizedText::sanitize(&input, max);
        prop_assert!(clean.as_str().len() <= max);
        prop_assert!(std::str::from_utf8(clean.as_str().as_bytes()).is_ok());
        for c in clean.as_str().chars() {
            prop_assert!(!is_forbidden(c), "{:?} survived in {:?}", c, clean);
            prop_assert!(!c.is_control(), "control {:?} survived", c);
            prop_assert!(!matches!(c, '\u{2028}' | '\u{2029}'), "line separator {:?} survived", c);
        }
        prop_assert_eq!(SanitizedText::sanitize(clean.as_str(), max), clean.clone());
        // Nothing is invented: every kept character is in the input, in order (a space may
        // stand for a line break or tab).
        let mut source = input.chars();
        for c in clean.as_str().chars() {
            prop_assert!(
                source.any(|s| s == c || (c == ' ' && matches!(s, '\t' | '\n' | '\r' | '\u{2028}' | '\u{2029}' | '\u{85}'))),
                "{:?} was not in the input", c
            );
        }
        // Clean text that fits is kept exactly.
        if input.len() <= max && input.chars().all(|c| !is_forbidden(c) && !matches!(c, '\u{2028}' | '\u{2029}')) {
            prop_assert_eq!(clean.as_str(), input.as_str());
        }
    }

    /// Text fields on the wire: any bytes are refused (not UTF-8) or turned into clean text.
    #[test]
    fn wire_titles_are_refused_or_clean(raw in proptest::collection::vec(any::<u8>(), 0..=MAX_TITLE_BYTES)) {
        let mut body = 1u32.to_le_bytes().to_vec();
        body.extend_from_slice(&(raw.len() as u32).to_le_bytes());
        body.extend_from_slice(&raw);
        let mut frame = codec::SET_TITLE.to_le_bytes().to_vec();
        frame.extend_from_slice(&(body.len() as u32).to_le_bytes());
        frame.extend_from_slice(&body);
        match codec::decode_agent_frame(&frame) {
            Ok(Some((AgentMessage::SetTitle { title, .. }, _))) => {
                prop_assert!(std::str::from_utf8(&raw).is_ok());
                prop_assert!(title.as_str().len() <= MAX_TITLE_BYTES);
                prop_assert!(title.as_str().chars().all(|c| !is_forbidden(c)));
            }
            Ok(other) => prop_assert!(false, "unexpected {:?}", other),
            Err(_) => prop_assert!(std::str::from_utf8(&raw).is_err()),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The type table cannot drift from the encoders

/// The sample messages of `corral_protocol::fuzzing` cover every type; each fixed-length type
/// really encodes to its table length.
#[test]
fn exact_body_lengths_match_the_table() {
    let mut checked = BTreeSet::new();
    for msg in corral_protocol::fuzzing::sample_agent_messages() {
        let mut bytes = Vec::new();
        codec::encode_agent(&msg, &mut bytes);
        let t = codec::agent_type(&msg);
        if let Some(BodyLimit::Exact(n)) = codec::body_limit(Direction::AgentToGui, t) {
            assert_eq!(bytes.len() - HEADER_BYTES, n, "{}", msg.name());
        }
        checked.insert(t);
    }
    assert_eq!(checked, all_types(Direction::AgentToGui));
    let mut checked = BTreeSet::new();
    for msg in corral_protocol::fuzzing::sample_gui_messages() {
        let mut bytes = Vec::new();
        codec::encode_gui(&msg, &mut bytes);
        let t = codec::gui_type(&msg);
        if let Some(BodyLimit::Exact(n)) = codec::body_limit(Direction::GuiToAgent, t) {
            assert_eq!(bytes.len() - HEADER_BYTES, n, "{}", msg.name());
        }
        checked.insert(t);
    }
    assert_eq!(checked, all_types(Direction::GuiToAgent));
}

#[test]
fn type_tables_are_consistent() {
    for direction in [Direction::AgentToGui, Direction::GuiToAgent] {
        let table = codec::message_types(direction);
        let codes: BTreeSet<u32> = table.iter().map(|(t, _, _)| *t).collect();
        assert_eq!(codes.len(), table.len(), "duplicate type code");
        let names: BTreeSet<&str> = table.iter().map(|(_, n, _)| *n).collect();
        assert_eq!(names.len(), table.len(), "duplicate type name");
        for (t, _, limit) in table {
            // Agent types are 0x0001.., GUI types 0x8001..: the high bit says the direction.
            assert_eq!(
                *t & 0x8000 != 0,
                direction == Direction::GuiToAgent,
                "{t:#x}"
            );
            let max = match limit {
                BodyLimit::Exact(n) | BodyLimit::AtMost(n) => *n,
            };
            assert!(
                max <= MAX_BODY_BYTES,
                "{t:#x} allows {max} bytes, above MAX_BODY_BYTES"
            );
        }
    }
}

/// xorshift: deterministic incompressible bytes without a dependency.
fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect()
}

fn longest(max: usize, unit: &str) -> SanitizedText {
    let text = SanitizedText::sanitize(&unit.repeat(max), max);
    assert!(text.as_str().len() > max - unit.len());
    text
}

/// The largest legal instance of every variable-length message encodes within its limit and
/// decodes again: the limits never refuse what an honest peer may send.
#[test]
fn largest_legal_messages_fit_their_limits() {
    let w = WindowId::new(u32::MAX).unwrap();
    let agent = vec![
        AgentMessage::Goodbye {
            reason: longest(MAX_REASON_BYTES, "é"),
        },
        AgentMessage::Goodbye {
            reason: longest(MAX_REASON_BYTES, "x"),
        },
        AgentMessage::SetTitle {
            window: w,
            title: longest(MAX_TITLE_BYTES, "x"),
        },
        AgentMessage::SetAppId {
            window: w,
            app_id: longest(MAX_APP_ID_BYTES, "x"),
        },
        AgentMessage::PoolCreate {
            pool: PoolId::new(1).unwrap(),
            size: MAX_POOL_BYTES,
            backing: PoolBacking::XenGrants(vec![u32::MAX; MAX_GRANT_REFS]),
        },
        AgentMessage::PoolWrite {
            pool: PoolId::new(1).unwrap(),
            pixels: InlinePixels::new(
                MAX_POOL_BYTES - MAX_INLINE_PIXEL_BYTES as u64,
                4096,
                4096,
                (MAX_INLINE_PIXEL_BYTES / 4096) as u32,
                noise(MAX_INLINE_PIXEL_BYTES, 1),
            )
            .unwrap(),
            compression: Compression::Lz4,
        },
        AgentMessage::PoolWrite {
            pool: PoolId::new(1).unwrap(),
            pixels: InlinePixels::new(0, 65_536, 65_536, 64, noise(MAX_INLINE_PIXEL_BYTES, 2))
                .unwrap(),
            compression: Compression::None,
        },
        AgentMessage::Damage {
            window: w,
            rects: vec![
                Rect::new(0, 0, MAX_SURFACE_DIMENSION, MAX_SURFACE_DIMENSION).unwrap();
                MAX_DAMAGE_RECTS
            ],
        },
        AgentMessage::ClipboardData {
            serial: Serial(u32::MAX),
            payload: ClipboardPayload::text(&"🦀".repeat(MAX_CLIPBOARD_BYTES / 4)),
        },
        AgentMessage::ClipboardData {
            serial: Serial(0),
            payload: ClipboardPayload::Png(
                [&PNG_SIGNATURE[..], &vec![0; MAX_CLIPBOARD_BYTES - 8]].concat(),
            ),
        },
        AgentMessage::AppList {
            apps: vec![
                AppEntry {
                    id: longest(MAX_APP_ID_BYTES, "x"),
                    name: longest(MAX_APP_NAME_BYTES, "x"),
                    icon: longest(MAX_APP_NAME_BYTES, "x"),
                };
                MAX_APP_ENTRIES
            ],
        },
        AgentMessage::Notify {
            id: NotificationId::new(u32::MAX).unwrap(),
            urgency: Urgency::Critical,
            summary: longest(MAX_NOTIFICATION_SUMMARY_BYTES, "é"),
            body: longest(MAX_NOTIFICATION_BODY_BYTES, "🦀"),
        },
        AgentMessage::Notify {
            id: NotificationId::new(1).unwrap(),
            urgency: Urgency::Low,
            summary: longest(MAX_NOTIFICATION_SUMMARY_BYTES, "x"),
            body: longest(MAX_NOTIFICATION_BODY_BYTES, "x"),
        },
    ];
    for msg in &agent {
        let mut bytes = Vec::new();
        codec::encode_agent(msg, &mut bytes);
        check_limit(Direction::AgentToGui, &bytes).unwrap();
        let (decoded, used) = codec::decode_agent_frame(&bytes).unwrap().unwrap();
        assert_eq!(used, bytes.len());
        assert!(&decoded == msg, "{} changed in the round trip", msg.name());
    }
    let output = OutputInfo {
        id: OutputId::new(u32::MAX).unwrap(),
        position: Point::new(-MAX_COORDINATE, MAX_COORDINATE).unwrap(),
        size: Size::new(MAX_SURFACE_DIMENSION, MAX_SURFACE_DIMENSION).unwrap(),
        scale_120ths: Scale::new(960).unwrap(),
        refresh_mhz: u32::MAX,
        name: longest(MAX_OUTPUT_NAME_BYTES, "x"),
    };
    let gui = vec![
        GuiMessage::Welcome {
            version: Version::CURRENT,
            capabilities: Capabilities::all(),
            outputs: vec![output.clone(); MAX_OUTPUTS],
        },
        GuiMessage::OutputsChanged {
            outputs: vec![output; MAX_OUTPUTS],
        },
        GuiMessage::Goodbye {
            reason: longest(MAX_REASON_BYTES, "x"),
        },
        GuiMessage::Keymap {
            keymap: "k".repeat(MAX_KEYMAP_BYTES),
        },
        GuiMessage::KeyboardEnter {
            window: w,
            pressed_keys: vec![u32::MAX; MAX_PRESSED_KEYS],
        },
        GuiMessage::ClipboardPaste {
            payload: ClipboardPayload::text(&"x".repeat(MAX_CLIPBOARD_BYTES)),
        },
        GuiMessage::Launch {
            request: LaunchRequest::App("a".repeat(MAX_APP_ID_BYTES)),
        },
        GuiMessage::Launch {
            request: LaunchRequest::Command(vec![
                "a".repeat(
                    MAX_LAUNCH_TOTAL_BYTES / MAX_LAUNCH_ARGS
                );
                MAX_LAUNCH_ARGS
            ]),
        },
        GuiMessage::Launch {
            request: LaunchRequest::Command(vec![
                "a".repeat(MAX_LAUNCH_ARG_BYTES);
                MAX_LAUNCH_TOTAL_BYTES / MAX_LAUNCH_ARG_BYTES
            ]),
        },
    ];
    for msg in &gui {
        let mut bytes = Vec::new();
        codec::encode_gui(msg, &mut bytes);
        check_limit(Direction::GuiToAgent, &bytes).unwrap();
        let (decoded, used) = codec::decode_gui_frame(&bytes).unwrap().unwrap();
        assert_eq!(used, bytes.len());
        assert!(&decoded == msg, "{} changed in the round trip", msg.name());
    }
}

/// The capability bits a newer peer may add are ignored, not refused.
#[test]
fn unknown_capability_bits_are_ignored() {
    let mut frame = codec::HELLO.to_le_bytes().to_vec();
    frame.extend_from_slice(&8u32.to_le_bytes());
    frame.extend_from_slice(&Version::CURRENT.to_wire().to_le_bytes());
    frame.extend_from_slice(&u32::MAX.to_le_bytes());
    let (msg, _) = codec::decode_agent_frame(&frame).unwrap().unwrap();
    assert_eq!(
        msg,
        AgentMessage::Hello {
            version: Version::CURRENT,
            capabilities: Capabilities::all()
        }
    );
}

/// Clipboard text loses its NUL bytes (they cut C strings short in apps) but nothing else.
#[test]
fn clipboard_text_drops_nul_bytes() {
    let msg = GuiMessage::ClipboardPaste {
        payload: ClipboardPayload::text("a\0b\u{202e}c"),
    };
    assert_eq!(
        msg,
        GuiMessage::ClipboardPaste {
            payload: ClipboardPayload::Text("ab\u{202e}c".into())
        }
    );
    gui_roundtrip(&msg).unwrap();
}
