//! One test per rejection rule of the decoder and of the session. Each builds the smallest
//! hostile input that breaks exactly that rule and checks that it is refused for that reason.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::{Duration, Instant};

use corral_protocol::codec::{self, BodyLimit, Direction};
use corral_protocol::limits::*;
use corral_protocol::session::{
    AgentSession, Applied, SessionLimits, SessionViolation, WindowKind,
};
use corral_protocol::*;

// ---------------------------------------------------------------------------------------------
// An allocator that remembers the largest allocation made by the current thread, so tests can
// show that a hostile count or length is refused before anything of that size is allocated.

struct PeakAllocator;

thread_local! {
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    // `try_with`: the thread-local may already be gone while a thread exits.
    let _ = PEAK.try_with(|p| p.set(p.get().max(size)));
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so the
// `GlobalAlloc` contract is exactly `System`'s; the bookkeeping allocates nothing.
unsafe impl GlobalAlloc for PeakAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: same contract as the caller's (forwarded unchanged).
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: same contract as the caller's (forwarded unchanged).
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        // SAFETY: same contract as the caller's (forwarded unchanged).
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's (forwarded unchanged).
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: PeakAllocator = PeakAllocator;

/// Runs `f` and returns its result with the largest single allocation it made.
fn peak_allocation<R>(f: impl FnOnce() -> R) -> (R, usize) {
    PEAK.with(|p| p.set(0));
    let r = f();
    (r, PEAK.with(Cell::get))
}

/// The measuring tool itself works (else the tests that use it would prove nothing).
#[test]
fn peak_allocator_sees_allocations() {
    let (v, peak) = peak_allocation(|| vec![0u8; 1 << 20]);
    assert!(peak >= 1 << 20, "{peak}");
    drop(v);
    let ((), peak) = peak_allocation(|| ());
    assert_eq!(peak, 0);
}

// ---------------------------------------------------------------------------------------------
// Building hostile frames by hand

/// A message body, field by field, little-endian.
#[derive(Default, Clone)]
struct Body(Vec<u8>);

impl Body {
    fn new() -> Self {
        Body::default()
    }
    fn u8(mut self, v: u8) -> Self {
        self.0.push(v);
        self
    }
    fn u32(mut self, v: u32) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn i32(mut self, v: i32) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn u64(mut self, v: u64) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn bytes(mut self, v: &[u8]) -> Self {
        self.0.extend_from_slice(v);
        self
    }
    /// A `u32` length and the bytes.
    fn string(self, v: &[u8]) -> Self {
        self.u32(v.len() as u32).bytes(v)
    }
}

fn frame(msg_type: u32, body: &[u8]) -> Vec<u8> {
    let mut out = msg_type.to_le_bytes().to_vec();
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(body);
    out
}

fn header(msg_type: u32, len: u32) -> [u8; HEADER_BYTES] {
    let mut h = [0u8; HEADER_BYTES];
    h[..4].copy_from_slice(&msg_type.to_le_bytes());
    h[4..].copy_from_slice(&len.to_le_bytes());
    h
}

/// Decodes an agent frame that must be refused; returns why.
fn agent_err(msg_type: u32, body: Body) -> DecodeError {
    match codec::decode_agent_frame(&frame(msg_type, &body.0)) {
        Err(e) => e,
        Ok(other) => panic!("accepted: {other:?}"),
    }
}

fn gui_err(msg_type: u32, body: Body) -> DecodeError {
    match codec::decode_gui_frame(&frame(msg_type, &body.0)) {
        Err(e) => e,
        Ok(other) => panic!("accepted: {other:?}"),
    }
}

fn agent_ok(msg_type: u32, body: Body) -> AgentMessage {
    codec::decode_agent_frame(&frame(msg_type, &body.0))
        .expect("refused")
        .expect("incomplete")
        .0
}

fn gui_ok(msg_type: u32, body: Body) -> GuiMessage {
    codec::decode_gui_frame(&frame(msg_type, &body.0))
        .expect("refused")
        .expect("incomplete")
        .0
}

#[track_caller]
fn assert_invalid(err: DecodeError, expected_field: &str) {
    match err {
        DecodeError::InvalidValue { field, .. } if field == expected_field => {}
        other => panic!("expected an invalid {expected_field}, got {other:?}"),
    }
}

// Valid building blocks.
fn attach(offset: u64, width: u32, height: u32, stride: u32, format: u32) -> Body {
    Body::new()
        .u32(1)
        .u32(1)
        .u64(offset)
        .u32(width)
        .u32(height)
        .u32(stride)
        .u32(format)
}

fn popup(window: u32, parent: u32, x: i32, y: i32, width: u32, height: u32) -> Body {
    Body::new()
        .u32(window)
        .u32(parent)
        .i32(x)
        .i32(y)
        .u32(width)
        .u32(height)
}

fn pool_create(size: u64, backing: u8, refs: &[u32]) -> Body {
    let mut b = Body::new()
        .u32(1)
        .u64(size)
        .u8(backing)
        .u32(refs.len() as u32);
    for r in refs {
        b = b.u32(*r);
    }
    b
}

fn pool_write(
    offset: u64,
    stride: u32,
    row_bytes: u32,
    rows: u32,
    compression: u8,
    data: &[u8],
) -> Body {
    Body::new()
        .u32(1)
        .u64(offset)
        .u32(stride)
        .u32(row_bytes)
        .u32(rows)
        .u8(compression)
        .string(data)
}

fn output(id: u32, scale: u32, name: &[u8]) -> Body {
    Body::new()
        .u32(id)
        .i32(0)
        .i32(0)
        .u32(1920)
        .u32(1080)
        .u32(scale)
        .u32(60_000)
        .string(name)
}

fn welcome(outputs: &[Body]) -> Body {
    let mut b = Body::new()
        .u32(Version::CURRENT.to_wire())
        .u32(0)
        .u32(outputs.len() as u32);
    for o in outputs {
        b = b.bytes(&o.0);
    }
    b
}

fn launch_command(args: &[&[u8]]) -> Body {
    let mut b = Body::new().u8(1).u32(args.len() as u32);
    for a in args {
        b = b.string(a);
    }
    b
}

// ---------------------------------------------------------------------------------------------
// Framing rules

#[test]
fn unknown_type_is_refused() {
    for t in [0u32, 0x001C, 0x7FFF, 0xFFFF_FFFF] {
        assert_eq!(
            codec::check_header(Direction::AgentToGui, header(t, 0)),
            Err(DecodeError::UnknownType(t))
        );
        assert_eq!(
            codec::decode_agent_frame(&header(t, 0)),
            Err(DecodeError::UnknownType(t))
        );
    }
    for t in [0u32, 0x8000, 0x8018, 0xFFFF_FFFF] {
        assert_eq!(
            codec::check_header(Direction::GuiToAgent, header(t, 0)),
            Err(DecodeError::UnknownType(t))
        );
    }
}

#[test]
fn gui_types_are_refused_from_an_agent() {
    for (t, name, _) in codec::message_types(Direction::GuiToAgent) {
        assert_eq!(
            codec::check_header(Direction::AgentToGui, header(*t, 4)),
            Err(DecodeError::UnknownType(*t)),
            "{name}"
        );
        assert_eq!(
            codec::decode_agent(*t, &[1, 0, 0, 0]),
            Err(DecodeError::UnknownType(*t)),
            "{name}"
        );
    }
}

#[test]
fn agent_types_are_refused_from_the_gui() {
    for (t, name, _) in codec::message_types(Direction::AgentToGui) {
        assert_eq!(
            codec::check_header(Direction::GuiToAgent, header(*t, 4)),
            Err(DecodeError::UnknownType(*t)),
            "{name}"
        );
        assert_eq!(
            codec::decode_gui(*t, &[1, 0, 0, 0]),
            Err(DecodeError::UnknownType(*t)),
            "{name}"
        );
    }
}

#[test]
fn fixed_length_message_with_wrong_length_is_refused() {
    for direction in [Direction::AgentToGui, Direction::GuiToAgent] {
        for (t, name, limit) in codec::message_types(direction) {
            let BodyLimit::Exact(n) = *limit else {
                continue;
            };
            let mut wrong = vec![n + 1, n + 4, u32::MAX as usize];
            if n > 0 {
                wrong.extend([0, n - 1]);
            }
            for len in wrong {
                let err = codec::check_header(direction, header(*t, len as u32)).unwrap_err();
                assert_invalid(err, "body length");
                // The frame decoder refuses from the header alone, without waiting for a body.
                let decoded = match direction {
                    Direction::AgentToGui => {
                        codec::decode_agent_frame(&header(*t, len as u32)).map(|_| ())
                    }
                    Direction::GuiToAgent => {
                        codec::decode_gui_frame(&header(*t, len as u32)).map(|_| ())
                    }
                };
                assert!(decoded.is_err(), "{name} with {len} bytes");
            }
        }
    }
}

#[test]
fn variable_message_over_its_limit_is_refused_by_check_header() {
    for direction in [Direction::AgentToGui, Direction::GuiToAgent] {
        for (t, name, limit) in codec::message_types(direction) {
            let BodyLimit::AtMost(n) = *limit else {
                continue;
            };
            assert!(
                codec::check_header(direction, header(*t, n as u32)).is_ok(),
                "{name} at its limit"
            );
            for len in [n + 1, u32::MAX as usize] {
                let err = codec::check_header(direction, header(*t, len as u32)).unwrap_err();
                assert!(
                    matches!(err, DecodeError::BodyTooLarge { length, max, .. } if length == len && max == n),
                    "{name}: {err:?}"
                );
                // Only the 8 header bytes exist: the frame decoder must not ask for more.
                let decoded = match direction {
                    Direction::AgentToGui => {
                        codec::decode_agent_frame(&header(*t, len as u32)).map(|_| ())
                    }
                    Direction::GuiToAgent => {
                        codec::decode_gui_frame(&header(*t, len as u32)).map(|_| ())
                    }
                };
                assert!(decoded.is_err(), "{name} waited for a body over its limit");
            }
        }
    }
}

#[test]
fn truncated_body_is_refused() {
    // A title that claims 10 bytes in a body that has 5.
    let err = agent_err(codec::SET_TITLE, Body::new().u32(1).u32(10).bytes(b"hello"));
    assert!(
        matches!(
            err,
            DecodeError::Truncated {
                needed: 10,
                available: 5
            }
        ),
        "{err:?}"
    );
    // Two damage rectangles announced, one present.
    let err = agent_err(
        codec::DAMAGE,
        Body::new().u32(1).u32(2).u32(0).u32(0).u32(1).u32(1),
    );
    assert!(matches!(err, DecodeError::Truncated { .. }), "{err:?}");
    // A body that ends inside a field.
    let err = agent_err(codec::AGENT_GOODBYE, Body::new().u8(1).u8(0));
    assert!(
        matches!(
            err,
            DecodeError::Truncated {
                needed: 4,
                available: 2
            }
        ),
        "{err:?}"
    );
    // An incomplete frame is not an error yet: the stream waits for the rest.
    let full = frame(codec::SET_TITLE, &Body::new().u32(1).string(b"hello").0);
    assert_eq!(codec::decode_agent_frame(&full[..full.len() - 1]), Ok(None));
}

#[test]
fn trailing_bytes_are_refused() {
    let err = agent_err(codec::SET_TITLE, Body::new().u32(1).string(b"hi").u8(0));
    assert_eq!(err, DecodeError::TrailingBytes { count: 1 });
    let err = agent_err(codec::DAMAGE, Body::new().u32(1).u32(0).u32(7));
    assert_eq!(err, DecodeError::TrailingBytes { count: 4 });
    let err = gui_err(codec::KEYMAP, Body::new().string(b"xkb").u8(0).u8(0));
    assert_eq!(err, DecodeError::TrailingBytes { count: 2 });
}

// ---------------------------------------------------------------------------------------------
// Value rules

#[test]
fn zero_window_id_is_refused() {
    assert_invalid(
        agent_err(codec::CREATE_TOPLEVEL, Body::new().u32(0)),
        "window id",
    );
    assert_invalid(
        agent_err(codec::CREATE_POPUP, popup(2, 0, 0, 0, 1, 1)),
        "window id",
    );
    assert_invalid(gui_err(codec::CLOSE, Body::new().u32(0)), "window id");
    assert!(WindowId::new(0).is_err());
}

#[test]
fn zero_pool_id_is_refused() {
    assert_invalid(
        agent_err(codec::POOL_DESTROY, Body::new().u32(0)),
        "pool id",
    );
    assert_invalid(gui_err(codec::POOL_RELEASED, Body::new().u32(0)), "pool id");
    assert!(PoolId::new(0).is_err());
}

#[test]
fn zero_width_or_height_is_refused() {
    assert_invalid(
        agent_err(codec::CREATE_POPUP, popup(2, 1, 0, 0, 0, 10)),
        "width",
    );
    assert_invalid(
        agent_err(codec::CREATE_POPUP, popup(2, 1, 0, 0, 10, 0)),
        "height",
    );
    assert_invalid(agent_err(codec::ATTACH, attach(0, 0, 1, 4, 0)), "width");
    assert!(Size::new(0, 1).is_err() && Size::new(1, 0).is_err());
}

#[test]
fn width_or_height_above_16384_is_refused() {
    assert!(Size::new(16_384, 16_384).is_ok());
    assert_invalid(
        agent_err(codec::CREATE_POPUP, popup(2, 1, 0, 0, 16_385, 10)),
        "width",
    );
    assert_invalid(
        agent_err(
            codec::REPOSITION_POPUP,
            Body::new().u32(2).i32(0).i32(0).u32(1).u32(u32::MAX),
        ),
        "height",
    );
    assert_invalid(
        gui_err(
            codec::CONFIGURE,
            Body::new().u32(1).u32(0).u32(16_385).u32(0).u32(0),
        ),
        "width",
    );
    assert_invalid(
        agent_err(
            codec::SIZE_HINTS,
            Body::new().u32(1).u32(0).u32(0).u32(0).u32(16_385),
        ),
        "height",
    );
}

#[test]
fn rect_past_16384_is_refused() {
    let damage =
        |x: u32, y: u32, w: u32, h: u32| Body::new().u32(1).u32(1).u32(x).u32(y).u32(w).u32(h);
    assert!(matches!(
        agent_ok(codec::DAMAGE, damage(16_000, 0, 384, 1)),
        AgentMessage::Damage { .. }
    ));
    assert_invalid(
        agent_err(codec::DAMAGE, damage(16_000, 0, 385, 1)),
        "rectangle",
    );
    assert_invalid(
        agent_err(codec::DAMAGE, damage(0, 16_384, 1, 1)),
        "rectangle",
    );
    // x + width would wrap a u32.
    assert_invalid(
        agent_err(codec::DAMAGE, damage(u32::MAX, 0, 16_384, 1)),
        "rectangle",
    );
    assert_invalid(
        agent_err(codec::DAMAGE, damage(0, 0, 0, 1)),
        "rectangle width",
    );
}

#[test]
fn coordinates_outside_the_allowed_range_are_refused() {
    assert_invalid(
        agent_err(
            codec::CREATE_POPUP,
            popup(2, 1, MAX_COORDINATE + 1, 0, 1, 1),
        ),
        "x",
    );
    assert_invalid(
        agent_err(codec::CREATE_POPUP, popup(2, 1, 0, i32::MIN, 1, 1)),
        "y",
    );
    assert_invalid(
        gui_err(
            codec::POINTER_ENTER,
            Body::new().u32(1).i32(i32::MAX).i32(0),
        ),
        "x",
    );
}

#[test]
fn stride_smaller_than_width_times_4_is_refused() {
    assert_invalid(
        agent_err(codec::ATTACH, attach(0, 100, 10, 396, 0)),
        "stride",
    );
    assert!(matches!(
        agent_ok(codec::ATTACH, attach(0, 100, 10, 400, 0)),
        AgentMessage::Attach { .. }
    ));
}

#[test]
fn stride_not_multiple_of_4_is_refused() {
    assert_invalid(
        agent_err(codec::ATTACH, attach(0, 100, 10, 402, 0)),
        "stride",
    );
}

#[test]
fn unaligned_buffer_offset_is_refused() {
    for offset in [1, 2, 3, 4097] {
        assert_invalid(
            agent_err(codec::ATTACH, attach(offset, 1, 1, 4, 0)),
            "buffer offset",
        );
    }
    assert!(matches!(
        agent_ok(codec::ATTACH, attach(4096, 1, 1, 4, 0)),
        AgentMessage::Attach { .. }
    ));
}

#[test]
fn stride_above_the_largest_row_is_refused() {
    assert_invalid(
        agent_err(codec::ATTACH, attach(0, 1, 1, 65_540, 0)),
        "stride",
    );
}

#[test]
fn buffer_past_max_pool_bytes_is_refused() {
    // The last legal byte: a 16384×16384 buffer at offset 0 ends exactly at the limit.
    assert!(matches!(
        agent_ok(codec::ATTACH, attach(0, 16_384, 16_384, 65_536, 1)),
        AgentMessage::Attach { .. }
    ));
    assert_invalid(
        agent_err(codec::ATTACH, attach(4, 16_384, 16_384, 65_536, 1)),
        "buffer",
    );
    assert_invalid(
        agent_err(codec::ATTACH, attach(MAX_POOL_BYTES - 100, 10, 10, 40, 0)),
        "buffer",
    );
    assert_invalid(
        agent_err(codec::ATTACH, attach(MAX_POOL_BYTES, 1, 1, 4, 0)),
        "buffer offset",
    );
}

#[test]
fn integer_overflow_attempts_are_refused() {
    // Offsets near u64::MAX: offset + span would wrap.
    for offset in [u64::MAX, u64::MAX - 3, u64::MAX - 65_536 * 16_383, 1 << 63] {
        assert_invalid(
            agent_err(codec::ATTACH, attach(offset, 16_384, 16_384, 65_536, 0)),
            "buffer offset",
        );
        assert!(
            BufferLayout::new(
                offset,
                Size::new(16_384, 16_384).unwrap(),
                65_536,
                PixelFormat::Argb8888
            )
            .is_err()
        );
        assert!(matches!(
            agent_err(codec::POOL_WRITE, pool_write(offset, 4, 4, 1, 0, &[0; 4])),
            DecodeError::InvalidValue {
                field: "inline pixels",
                ..
            }
        ));
    }
    // Huge stride × height: refused by the stride bound before it could matter.
    assert_invalid(
        agent_err(codec::ATTACH, attach(0, 16_384, 16_384, u32::MAX - 3, 0)),
        "stride",
    );
    // row_bytes × rows would overflow a u32 (and is far above any inline write).
    assert!(matches!(
        agent_err(
            codec::POOL_WRITE,
            pool_write(0, u32::MAX, u32::MAX, u32::MAX, 0, &[])
        ),
        DecodeError::InvalidValue {
            field: "inline pixels",
            ..
        }
    ));
    // stride × (rows - 1) past the largest pool, with a small payload.
    assert!(matches!(
        agent_err(
            codec::POOL_WRITE,
            pool_write(0, u32::MAX, 4, 1024, 0, &[0; 4096])
        ),
        DecodeError::InvalidValue {
            field: "inline pixels",
            ..
        }
    ));
    assert!(InlinePixels::new(u64::MAX, 4, 4, 1, vec![0; 4]).is_err());
    // Pool sizes and grant counts at the edges of u64 and u32.
    assert_invalid(
        agent_err(codec::POOL_CREATE, pool_create(u64::MAX, 1, &[])),
        "pool size",
    );
    let err = agent_err(
        codec::POOL_CREATE,
        Body::new().u32(1).u64(4096).u8(2).u32(u32::MAX),
    );
    assert!(
        matches!(
            err,
            DecodeError::TooMany {
                field: "grant refs",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn popup_that_is_its_own_parent_is_refused() {
    assert_invalid(
        agent_err(codec::CREATE_POPUP, popup(5, 5, 0, 0, 10, 10)),
        "popup parent",
    );
}

#[test]
fn size_hints_with_min_above_max_are_refused() {
    let hints = |min_w: u32, min_h: u32, max_w: u32, max_h: u32| {
        Body::new()
            .u32(1)
            .u32(min_w)
            .u32(min_h)
            .u32(max_w)
            .u32(max_h)
    };
    assert_invalid(
        agent_err(codec::SIZE_HINTS, hints(200, 10, 100, 0)),
        "size hints",
    );
    assert_invalid(
        agent_err(codec::SIZE_HINTS, hints(10, 200, 0, 100)),
        "size hints",
    );
    // A maximum of 0 means "no maximum".
    assert!(matches!(
        agent_ok(codec::SIZE_HINTS, hints(200, 200, 0, 0)),
        AgentMessage::SizeHints { .. }
    ));
    assert!(matches!(
        agent_ok(codec::SIZE_HINTS, hints(100, 100, 100, 100)),
        AgentMessage::SizeHints { .. }
    ));
}

#[test]
fn pool_size_zero_is_refused() {
    assert_invalid(
        agent_err(codec::POOL_CREATE, pool_create(0, 1, &[])),
        "pool size",
    );
}

#[test]
fn pool_size_above_max_is_refused() {
    assert!(matches!(
        agent_ok(codec::POOL_CREATE, pool_create(MAX_POOL_BYTES, 1, &[])),
        AgentMessage::PoolCreate { .. }
    ));
    assert_invalid(
        agent_err(codec::POOL_CREATE, pool_create(MAX_POOL_BYTES + 1, 1, &[])),
        "pool size",
    );
}

#[test]
fn grant_ref_count_mismatch_is_refused() {
    assert!(matches!(
        agent_ok(codec::POOL_CREATE, pool_create(4097, 2, &[1, 2])),
        AgentMessage::PoolCreate { .. }
    ));
    assert_invalid(
        agent_err(codec::POOL_CREATE, pool_create(4097, 2, &[1])),
        "grant refs",
    );
    assert_invalid(
        agent_err(codec::POOL_CREATE, pool_create(4096, 2, &[1, 2])),
        "grant refs",
    );
    assert_invalid(
        agent_err(codec::POOL_CREATE, pool_create(4096, 2, &[])),
        "grant refs",
    );
}

#[test]
fn grant_refs_on_a_memfd_pool_are_refused() {
    assert_invalid(
        agent_err(codec::POOL_CREATE, pool_create(4096, 0, &[1])),
        "pool backing",
    );
    assert_invalid(
        agent_err(codec::POOL_CREATE, pool_create(4096, 1, &[1])),
        "pool backing",
    );
}

#[test]
fn unknown_pool_backing_is_refused() {
    assert_invalid(
        agent_err(codec::POOL_CREATE, pool_create(4096, 3, &[])),
        "pool backing",
    );
    assert_invalid(
        agent_err(codec::POOL_CREATE, pool_create(4096, 0xFF, &[])),
        "pool backing",
    );
}

#[test]
fn inline_write_with_wrong_data_length_is_refused() {
    assert!(matches!(
        agent_ok(codec::POOL_WRITE, pool_write(0, 8, 8, 2, 0, &[0; 16])),
        AgentMessage::PoolWrite { .. }
    ));
    for len in [0, 15, 17, 32] {
        assert_invalid(
            agent_err(codec::POOL_WRITE, pool_write(0, 8, 8, 2, 0, &vec![0; len])),
            "inline pixels",
        );
    }
    // Empty writes and a stride below the row length.
    assert_invalid(
        agent_err(codec::POOL_WRITE, pool_write(0, 8, 0, 2, 0, &[])),
        "inline pixels",
    );
    assert_invalid(
        agent_err(codec::POOL_WRITE, pool_write(0, 4, 8, 2, 0, &[0; 16])),
        "inline pixels",
    );
    assert!(InlinePixels::new(0, 8, 8, 2, vec![0; 15]).is_err());
}

#[test]
fn bad_lz4_data_is_refused() {
    for bad in [&[0xFFu8; 8][..], &[0x1F, 1, 2], &[0x00, 0x10, 0x00], &[]] {
        assert_invalid(
            agent_err(codec::POOL_WRITE, pool_write(0, 64, 64, 1, 1, bad)),
            "inline pixel data",
        );
    }
    // A match that points before the start of the output.
    let back_ref = [0x10, b'a', 0x40, 0x00];
    assert_invalid(
        agent_err(codec::POOL_WRITE, pool_write(0, 64, 64, 1, 1, &back_ref)),
        "inline pixel data",
    );
}

#[test]
fn lz4_announcing_more_than_its_data_can_hold_is_refused_before_allocating() {
    // 40 bytes of LZ4 can never expand to 4 MiB: refused from the sizes alone.
    let err = agent_err(
        codec::POOL_WRITE,
        pool_write(0, 4096, 4096, 1024, 1, &[0u8; 40]),
    );
    assert_invalid(err.clone(), "inline pixel data");
    assert!(err.to_string().contains("cannot hold"), "{err}");
}

#[test]
fn lz4_that_decompresses_to_the_wrong_size_is_refused() {
    let compressed = lz4_flex::block::compress(&[7u8; 100]);
    assert!(matches!(
        agent_ok(
            codec::POOL_WRITE,
            pool_write(0, 100, 100, 1, 1, &compressed)
        ),
        AgentMessage::PoolWrite { .. }
    ));
    // Announces more than the stream holds.
    assert_invalid(
        agent_err(
            codec::POOL_WRITE,
            pool_write(0, 200, 200, 1, 1, &compressed),
        ),
        "inline pixel data",
    );
    // Announces less: the stream runs past the buffer, which is never enlarged.
    assert_invalid(
        agent_err(codec::POOL_WRITE, pool_write(0, 50, 50, 1, 1, &compressed)),
        "inline pixel data",
    );
    // A small stream that would expand far beyond the announcement (an LZ4 bomb).
    let bomb = lz4_flex::block::compress(&vec![0u8; MAX_INLINE_PIXEL_BYTES]);
    let bytes = frame(codec::POOL_WRITE, &pool_write(0, 64, 64, 1, 1, &bomb).0);
    let (result, peak) = peak_allocation(|| codec::decode_agent_frame(&bytes));
    assert!(result.is_err());
    assert!(peak < 64 * 1024, "a 64-byte write allocated {peak} bytes");
}

#[test]
fn unknown_compression_is_refused() {
    assert_invalid(
        agent_err(codec::POOL_WRITE, pool_write(0, 4, 4, 1, 2, &[0; 4])),
        "compression",
    );
}

#[test]
fn unknown_pixel_format_is_refused() {
    assert_invalid(
        agent_err(codec::ATTACH, attach(0, 1, 1, 4, 2)),
        "pixel format",
    );
    assert_invalid(
        agent_err(codec::ATTACH, attach(0, 1, 1, 4, u32::MAX)),
        "pixel format",
    );
}

#[test]
fn unknown_cursor_shape_is_refused() {
    let last = CursorShape::ALL.len() as u32 - 1;
    assert!(matches!(
        agent_ok(codec::SET_CURSOR, Body::new().u32(1).u32(last)),
        AgentMessage::SetCursor { .. }
    ));
    for shape in [last + 1, u32::MAX] {
        assert_invalid(
            agent_err(codec::SET_CURSOR, Body::new().u32(1).u32(shape)),
            "cursor shape",
        );
    }
}

#[test]
fn unknown_state_request_is_refused() {
    assert_invalid(
        agent_err(codec::REQUEST_STATE, Body::new().u32(1).u32(5)),
        "state request",
    );
}

#[test]
fn unknown_axis_is_refused() {
    let axis = Body::new().u32(1).u32(0).u8(2).i32(0).i32(0);
    assert_invalid(gui_err(codec::POINTER_AXIS, axis), "axis");
}

#[test]
fn invalid_utf8_title_is_refused() {
    assert_invalid(
        agent_err(codec::SET_TITLE, Body::new().u32(1).string(b"ab\xffcd")),
        "title",
    );
    // A UTF-8 sequence cut in half.
    assert_invalid(
        agent_err(
            codec::SET_TITLE,
            Body::new().u32(1).string(&"é".as_bytes()[..1]),
        ),
        "title",
    );
    // An encoded surrogate (CESU-8) is not UTF-8 either.
    assert_invalid(
        agent_err(
            codec::SET_APP_ID,
            Body::new().u32(1).string(b"\xed\xa0\x80"),
        ),
        "app id",
    );
    assert_invalid(
        agent_err(codec::AGENT_GOODBYE, Body::new().string(b"\xc0\x80")),
        "goodbye reason",
    );
}

#[test]
fn text_longer_than_its_field_limit_is_refused() {
    let err = agent_err(
        codec::SET_TITLE,
        Body::new()
            .u32(1)
            .u32(MAX_TITLE_BYTES as u32 + 1)
            .bytes(&[b'a'; 200]),
    );
    assert!(
        matches!(err, DecodeError::TooLong { field: "title", .. }),
        "{err:?}"
    );
}

#[test]
fn clipboard_text_invalid_utf8_is_refused() {
    assert_invalid(
        agent_err(
            codec::CLIPBOARD_DATA,
            Body::new().u32(1).u32(0).string(b"\xff"),
        ),
        "clipboard text",
    );
    assert_invalid(
        gui_err(codec::CLIPBOARD_PASTE, Body::new().u32(0).string(b"ok\xfe")),
        "clipboard text",
    );
}

#[test]
fn clipboard_png_without_signature_is_refused() {
    assert_invalid(
        agent_err(
            codec::CLIPBOARD_DATA,
            Body::new().u32(1).u32(1).string(b"GIF89a"),
        ),
        "clipboard image",
    );
    assert_invalid(
        agent_err(
            codec::CLIPBOARD_DATA,
            Body::new().u32(1).u32(1).string(&PNG_SIGNATURE[..7]),
        ),
        "clipboard image",
    );
    assert!(matches!(
        agent_ok(
            codec::CLIPBOARD_DATA,
            Body::new().u32(1).u32(1).string(&PNG_SIGNATURE)
        ),
        AgentMessage::ClipboardData { .. }
    ));
}

#[test]
fn unknown_clipboard_kind_is_refused() {
    assert_invalid(
        agent_err(
            codec::CLIPBOARD_DATA,
            Body::new().u32(1).u32(2).string(b"x"),
        ),
        "clipboard kind",
    );
    assert_invalid(
        gui_err(
            codec::CLIPBOARD_PASTE,
            Body::new().u32(u32::MAX).string(b"x"),
        ),
        "clipboard kind",
    );
}

/// Counts and lengths far above what the body holds fail before anything of that size exists.
#[test]
fn count_fields_larger_than_the_body_fail_without_allocating() {
    let cases: Vec<(&str, Vec<u8>, Direction)> = vec![
        (
            "damage u32::MAX",
            frame(codec::DAMAGE, &Body::new().u32(1).u32(u32::MAX).0),
            Direction::AgentToGui,
        ),
        (
            "damage at its max, empty",
            frame(
                codec::DAMAGE,
                &Body::new().u32(1).u32(MAX_DAMAGE_RECTS as u32).0,
            ),
            Direction::AgentToGui,
        ),
        (
            "app list",
            frame(codec::APP_LIST, &Body::new().u32(MAX_APP_ENTRIES as u32).0),
            Direction::AgentToGui,
        ),
        (
            "app list u32::MAX",
            frame(codec::APP_LIST, &Body::new().u32(u32::MAX).0),
            Direction::AgentToGui,
        ),
        (
            "grant refs",
            frame(
                codec::POOL_CREATE,
                &Body::new()
                    .u32(1)
                    .u64(MAX_POOL_BYTES)
                    .u8(2)
                    .u32(MAX_GRANT_REFS as u32)
                    .0,
            ),
            Direction::AgentToGui,
        ),
        (
            "grant refs u32::MAX",
            frame(
                codec::POOL_CREATE,
                &Body::new().u32(1).u64(4096).u8(2).u32(u32::MAX).0,
            ),
            Direction::AgentToGui,
        ),
        (
            "clipboard length",
            frame(
                codec::CLIPBOARD_DATA,
                &Body::new().u32(1).u32(0).u32(u32::MAX).0,
            ),
            Direction::AgentToGui,
        ),
        (
            "clipboard at max",
            frame(
                codec::CLIPBOARD_DATA,
                &Body::new().u32(1).u32(0).u32(MAX_CLIPBOARD_BYTES as u32).0,
            ),
            Direction::AgentToGui,
        ),
        (
            "pixel data length",
            frame(
                codec::POOL_WRITE,
                &Body::new()
                    .u32(1)
                    .u64(0)
                    .u32(4)
                    .u32(4)
                    .u32(1)
                    .u8(0)
                    .u32(u32::MAX)
                    .0,
            ),
            Direction::AgentToGui,
        ),
        (
            "outputs",
            frame(
                codec::WELCOME,
                &Body::new().u32(0x10000).u32(0).u32(u32::MAX).0,
            ),
            Direction::GuiToAgent,
        ),
        (
            "outputs at max",
            frame(
                codec::OUTPUTS_CHANGED,
                &Body::new().u32(MAX_OUTPUTS as u32).0,
            ),
            Direction::GuiToAgent,
        ),
        (
            "pressed keys",
            frame(codec::KEYBOARD_ENTER, &Body::new().u32(1).u32(u32::MAX).0),
            Direction::GuiToAgent,
        ),
        (
            "pressed keys at max",
            frame(
                codec::KEYBOARD_ENTER,
                &Body::new().u32(1).u32(MAX_PRESSED_KEYS as u32).0,
            ),
            Direction::GuiToAgent,
        ),
        (
            "launch arguments",
            frame(codec::LAUNCH, &Body::new().u8(1).u32(u32::MAX).0),
            Direction::GuiToAgent,
        ),
        (
            "launch arguments at max",
            frame(
                codec::LAUNCH,
                &Body::new().u8(1).u32(MAX_LAUNCH_ARGS as u32).0,
            ),
            Direction::GuiToAgent,
        ),
        (
            "keymap length",
            frame(codec::KEYMAP, &Body::new().u32(u32::MAX).0),
            Direction::GuiToAgent,
        ),
    ];
    for (name, bytes, direction) in cases {
        let (result, peak) = peak_allocation(|| match direction {
            Direction::AgentToGui => codec::decode_agent_frame(&bytes).map(|_| ()),
            Direction::GuiToAgent => codec::decode_gui_frame(&bytes).map(|_| ()),
        });
        let err = result.expect_err(name);
        assert!(
            matches!(
                err,
                DecodeError::TooMany { .. }
                    | DecodeError::TooLong { .. }
                    | DecodeError::Truncated { .. }
            ),
            "{name}: {err:?}"
        );
        assert!(
            peak < 4096,
            "{name}: allocated {peak} bytes for a {}-byte frame",
            bytes.len()
        );
    }
}

#[test]
fn boolean_byte_2_is_refused() {
    let key = |state: u8| Body::new().u32(1).u32(0).u32(30).u8(state);
    assert!(matches!(
        gui_ok(codec::KEY, key(1)),
        GuiMessage::Key { pressed: true, .. }
    ));
    assert_invalid(gui_err(codec::KEY, key(2)), "key state");
    assert_invalid(gui_err(codec::KEY, key(0xFF)), "key state");
    assert_invalid(
        gui_err(
            codec::POINTER_BUTTON,
            Body::new().u32(1).u32(0).u32(0x110).u8(2),
        ),
        "button state",
    );
}

#[test]
fn unknown_window_state_bits_are_refused() {
    let configure = |states: u32| Body::new().u32(1).u32(0).u32(0).u32(0).u32(states);
    assert!(matches!(
        gui_ok(codec::CONFIGURE, configure(WindowStates::all().bits())),
        GuiMessage::Configure { .. }
    ));
    assert_invalid(
        gui_err(codec::CONFIGURE, configure(1 << 4)),
        "window states",
    );
    assert_invalid(
        gui_err(codec::CONFIGURE, configure(u32::MAX)),
        "window states",
    );
}

#[test]
fn launch_with_zero_args_is_refused() {
    assert_invalid(
        gui_err(codec::LAUNCH, launch_command(&[])),
        "launch command",
    );
}

#[test]
fn launch_with_a_nul_byte_is_refused() {
    assert_invalid(
        gui_err(codec::LAUNCH, launch_command(&[b"sh", b"-c\0rm"])),
        "launch argument",
    );
    assert_invalid(
        gui_err(
            codec::LAUNCH,
            Body::new().u8(0).string(b"firefox\0.desktop"),
        ),
        "application id",
    );
    assert_invalid(
        gui_err(codec::LAUNCH, launch_command(&[b"\xff"])),
        "launch argument",
    );
}

#[test]
fn launch_too_long_in_total_is_refused() {
    let long = vec![b'a'; MAX_LAUNCH_ARG_BYTES];
    let mut args: Vec<&[u8]> = vec![&long; MAX_LAUNCH_TOTAL_BYTES / MAX_LAUNCH_ARG_BYTES];
    assert!(matches!(
        gui_ok(codec::LAUNCH, launch_command(&args)),
        GuiMessage::Launch { .. }
    ));
    args.push(b"x");
    let err = gui_err(codec::LAUNCH, launch_command(&args));
    assert!(
        matches!(
            err,
            DecodeError::TooLong {
                field: "launch command",
                ..
            }
        ),
        "{err:?}"
    );
    // One argument over its own limit.
    let too_long = vec![b'a'; MAX_LAUNCH_ARG_BYTES + 1];
    let err = gui_err(codec::LAUNCH, launch_command(&[&too_long]));
    assert!(
        matches!(
            err,
            DecodeError::TooLong {
                field: "launch argument",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn unknown_launch_kind_is_refused() {
    assert_invalid(
        gui_err(codec::LAUNCH, Body::new().u8(2).u32(0)),
        "launch kind",
    );
}

#[test]
fn keymap_with_nul_is_refused() {
    assert_invalid(
        gui_err(codec::KEYMAP, Body::new().string(b"xkb_keymap {\0}")),
        "keymap",
    );
    assert_invalid(
        gui_err(codec::KEYMAP, Body::new().string(b"xkb\xff")),
        "keymap",
    );
}

#[test]
fn scale_outside_1_to_8_is_refused() {
    assert!(matches!(
        gui_ok(
            codec::WELCOME,
            welcome(&[output(1, 120, b"a"), output(2, 960, b"b")])
        ),
        GuiMessage::Welcome { .. }
    ));
    for scale in [0, 119, 961, u32::MAX] {
        assert_invalid(
            gui_err(codec::WELCOME, welcome(&[output(1, scale, b"eDP-1")])),
            "scale",
        );
        assert!(Scale::new(scale).is_err());
    }
}

#[test]
fn zero_output_id_is_refused() {
    assert_invalid(
        gui_err(codec::WELCOME, welcome(&[output(0, 120, b"eDP-1")])),
        "output id",
    );
}

// ---------------------------------------------------------------------------------------------
// Session rules

fn w(id: u32) -> WindowId {
    WindowId::new(id).unwrap()
}

fn p(id: u32) -> PoolId {
    PoolId::new(id).unwrap()
}

/// A session that said hello with every capability, and a clock that advances slowly enough
/// never to trip the rate limit.
struct Fixture {
    session: AgentSession,
    now: Instant,
}

impl Fixture {
    fn new(limits: SessionLimits, capabilities: Capabilities) -> Self {
        let mut f = Fixture {
            session: AgentSession::new(limits, capabilities),
            now: Instant::now(),
        };
        f.ok(AgentMessage::Hello {
            version: Version::CURRENT,
            capabilities: Capabilities::all(),
        });
        f
    }

    fn standard() -> Self {
        Self::new(SessionLimits::default(), Capabilities::all())
    }

    fn apply(&mut self, msg: AgentMessage) -> Result<Applied, SessionViolation> {
        self.now += Duration::from_millis(1);
        self.session.apply(&msg, self.now)
    }

    #[track_caller]
    fn ok(&mut self, msg: AgentMessage) -> Applied {
        let name = msg.name();
        self.apply(msg)
            .unwrap_or_else(|e| panic!("{name} refused: {e}"))
    }

    #[track_caller]
    fn err(&mut self, msg: AgentMessage) -> SessionViolation {
        let name = msg.name();
        match self.apply(msg) {
            Err(e) => e,
            Ok(applied) => panic!("{name} accepted: {applied:?}"),
        }
    }

    fn toplevel(&mut self, id: u32) {
        self.ok(AgentMessage::CreateToplevel { window: w(id) });
    }

    fn popup(&mut self, id: u32, parent: u32) {
        self.ok(popup_msg(id, parent));
    }

    fn inline_pool(&mut self, id: u32, size: u64) {
        self.ok(AgentMessage::PoolCreate {
            pool: p(id),
            size,
            backing: PoolBacking::Inline,
        });
    }
}

fn popup_msg(id: u32, parent: u32) -> AgentMessage {
    AgentMessage::CreatePopup {
        window: w(id),
        parent: w(parent),
        position: Point::new(0, 0).unwrap(),
        size: Size::new(10, 10).unwrap(),
    }
}

fn attach_msg(window: u32, pool: u32, offset: u64, width: u32, height: u32) -> AgentMessage {
    AgentMessage::Attach {
        window: w(window),
        pool: p(pool),
        layout: BufferLayout::new(
            offset,
            Size::new(width, height).unwrap(),
            width * 4,
            PixelFormat::Argb8888,
        )
        .unwrap(),
    }
}

fn write_msg(pool: u32, offset: u64, len: u32) -> AgentMessage {
    AgentMessage::PoolWrite {
        pool: p(pool),
        pixels: InlinePixels::new(offset, len, len, 1, vec![1; len as usize]).unwrap(),
        compression: Compression::None,
    }
}

#[test]
fn message_before_hello_is_refused() {
    let mut session = AgentSession::new(SessionLimits::default(), Capabilities::all());
    let err = session
        .apply(
            &AgentMessage::CreateToplevel { window: w(1) },
            Instant::now(),
        )
        .unwrap_err();
    assert_eq!(err, SessionViolation::BeforeHello("create_toplevel"));
    assert!(session.established().is_none());
    assert_eq!(session.window_count(), 0);
}

#[test]
fn hello_twice_is_refused() {
    let mut f = Fixture::standard();
    let err = f.err(AgentMessage::Hello {
        version: Version::CURRENT,
        capabilities: Capabilities::all(),
    });
    assert_eq!(err, SessionViolation::HelloTwice);
}

#[test]
fn major_version_mismatch_is_refused_naming_both_versions() {
    let mut session = AgentSession::new(SessionLimits::default(), Capabilities::all());
    let theirs = Version { major: 2, minor: 3 };
    let err = session
        .apply(
            &AgentMessage::Hello {
                version: theirs,
                capabilities: Capabilities::all(),
            },
            Instant::now(),
        )
        .unwrap_err();
    assert!(matches!(err, SessionViolation::Version(_)), "{err:?}");
    let text = err.to_string();
    assert!(text.contains(&Version::CURRENT.to_string()), "{text}");
    assert!(text.contains("2.3"), "{text}");
    assert!(session.established().is_none());
    // The same major version negotiates down to the smaller minor.
    let mut session = AgentSession::new(SessionLimits::default(), Capabilities::all())
        .with_version(Version { major: 1, minor: 4 });
    let applied = session
        .apply(
            &AgentMessage::Hello {
                version: Version { major: 1, minor: 2 },
                capabilities: Capabilities::LZ4,
            },
            Instant::now(),
        )
        .unwrap();
    assert_eq!(
        applied,
        Applied::Established {
            version: Version { major: 1, minor: 2 },
            capabilities: Capabilities::LZ4
        }
    );
}

#[test]
fn unknown_window_is_refused() {
    let mut f = Fixture::standard();
    for msg in [
        AgentMessage::Map { window: w(9) },
        AgentMessage::SetTitle {
            window: w(9),
            title: SanitizedText::sanitize("x", 10),
        },
        AgentMessage::Commit {
            window: w(9),
            serial: Serial(0),
        },
        AgentMessage::DestroyWindow { window: w(9) },
        AgentMessage::RequestState {
            window: w(9),
            request: StateRequest::Minimize,
        },
    ] {
        assert_eq!(f.err(msg), SessionViolation::UnknownWindow(w(9)));
    }
    f.inline_pool(1, 4096);
    assert_eq!(
        f.err(attach_msg(9, 1, 0, 1, 1)),
        SessionViolation::UnknownWindow(w(9))
    );
}

#[test]
fn duplicate_window_is_refused() {
    let mut f = Fixture::standard();
    f.toplevel(1);
    assert_eq!(
        f.err(AgentMessage::CreateToplevel { window: w(1) }),
        SessionViolation::WindowExists(w(1))
    );
    f.toplevel(2);
    assert_eq!(f.err(popup_msg(1, 2)), SessionViolation::WindowExists(w(1)));
    // A destroyed id may be used again.
    f.ok(AgentMessage::DestroyWindow { window: w(1) });
    f.toplevel(1);
}

#[test]
fn popup_with_unknown_parent_is_refused() {
    let mut f = Fixture::standard();
    assert_eq!(
        f.err(popup_msg(2, 1)),
        SessionViolation::UnknownWindow(w(1))
    );
    assert_eq!(f.session.window_count(), 0);
}

#[test]
fn reposition_of_a_toplevel_is_refused() {
    let mut f = Fixture::standard();
    f.toplevel(1);
    let reposition = |id| AgentMessage::RepositionPopup {
        window: w(id),
        position: Point::new(1, 1).unwrap(),
        size: Size::new(5, 5).unwrap(),
    };
    assert_eq!(f.err(reposition(1)), SessionViolation::NotAPopup(w(1)));
    f.popup(2, 1);
    f.ok(reposition(2));
}

#[test]
fn size_hints_on_a_popup_are_refused() {
    let mut f = Fixture::standard();
    f.toplevel(1);
    f.popup(2, 1);
    let hints = |id| AgentMessage::SizeHints {
        window: w(id),
        min: OptionalSize::UNSET,
        max: OptionalSize::UNSET,
    };
    assert!(matches!(f.err(hints(2)), SessionViolation::NotAToplevel(id, _) if id == w(2)));
    f.ok(hints(1));
    let state = AgentMessage::RequestState {
        window: w(2),
        request: StateRequest::Fullscreen,
    };
    assert!(matches!(f.err(state), SessionViolation::NotAToplevel(..)));
}

#[test]
fn destroy_cascade_returns_children_first() {
    let mut f = Fixture::standard();
    f.toplevel(1);
    f.popup(2, 1);
    f.popup(3, 2);
    f.popup(4, 3);
    f.popup(5, 1);
    f.toplevel(6);
    f.popup(7, 6);
    let Applied::WindowsDestroyed(gone) = f.ok(AgentMessage::DestroyWindow { window: w(1) }) else {
        panic!("no cascade");
    };
    assert_eq!(gone.len(), 5, "{gone:?}");
    assert_eq!(gone.last(), Some(&w(1)));
    let pos = |id: u32| gone.iter().position(|g| *g == w(id)).unwrap();
    assert!(pos(4) < pos(3) && pos(3) < pos(2) && pos(2) < pos(1));
    assert!(pos(5) < pos(1));
    // Other windows are untouched.
    assert_eq!(f.session.window_count(), 2);
    assert_eq!(
        f.session.window_kind(w(7)),
        Some(WindowKind::Popup { parent: w(6) })
    );
    for id in [1, 2, 3, 4, 5] {
        assert_eq!(f.session.window_kind(w(id)), None);
    }
    // Destroying a popup takes only its subtree.
    assert_eq!(
        f.ok(AgentMessage::DestroyWindow { window: w(7) }),
        Applied::WindowsDestroyed(vec![w(7)])
    );
}

#[test]
fn pool_backing_not_negotiated_is_refused() {
    // The GUI side offers inline pixels only (a vsock channel).
    let mut f = Fixture::new(SessionLimits::default(), Capabilities::INLINE_PIXELS);
    let memfd = AgentMessage::PoolCreate {
        pool: p(1),
        size: 4096,
        backing: PoolBacking::MemFd,
    };
    assert_eq!(
        f.err(memfd),
        SessionViolation::BackingNotNegotiated("memfd")
    );
    let xen = AgentMessage::PoolCreate {
        pool: p(1),
        size: 4096,
        backing: PoolBacking::XenGrants(vec![1]),
    };
    assert_eq!(
        f.err(xen),
        SessionViolation::BackingNotNegotiated("xen-grants")
    );
    f.inline_pool(1, 4096);
    // An agent that did not offer a capability cannot use it either.
    let mut session = AgentSession::new(SessionLimits::default(), Capabilities::all());
    let now = Instant::now();
    session
        .apply(
            &AgentMessage::Hello {
                version: Version::CURRENT,
                capabilities: Capabilities::MEMFD_POOLS,
            },
            now,
        )
        .unwrap();
    let inline = AgentMessage::PoolCreate {
        pool: p(1),
        size: 4096,
        backing: PoolBacking::Inline,
    };
    assert_eq!(
        session.apply(&inline, now),
        Err(SessionViolation::BackingNotNegotiated("inline"))
    );
}

#[test]
fn duplicate_pool_is_refused() {
    let mut f = Fixture::standard();
    f.inline_pool(1, 4096);
    let again = AgentMessage::PoolCreate {
        pool: p(1),
        size: 8192,
        backing: PoolBacking::MemFd,
    };
    assert_eq!(f.err(again), SessionViolation::PoolExists(p(1)));
    assert_eq!(f.session.pool_bytes(), 4096);
}

#[test]
fn destroying_a_pool_still_attached_is_refused() {
    let mut f = Fixture::standard();
    f.toplevel(1);
    f.inline_pool(1, 4096);
    f.inline_pool(2, 4096);
    f.ok(attach_msg(1, 1, 0, 16, 16));
    assert_eq!(
        f.err(AgentMessage::PoolDestroy { pool: p(1) }),
        SessionViolation::PoolInUse(p(1), w(1))
    );
    // Once the window shows another pool, the first may go.
    f.ok(attach_msg(1, 2, 0, 16, 16));
    f.ok(AgentMessage::PoolDestroy { pool: p(1) });
    assert_eq!(f.session.pool_bytes(), 4096);
    assert_eq!(
        f.err(AgentMessage::PoolDestroy { pool: p(1) }),
        SessionViolation::UnknownPool(p(1))
    );
}

#[test]
fn attach_past_pool_end_is_refused() {
    let mut f = Fixture::standard();
    f.toplevel(1);
    f.inline_pool(1, 4096);
    // 32×32×4 = 4096 bytes exactly fits; one more row or an offset does not.
    f.ok(attach_msg(1, 1, 0, 32, 32));
    assert!(matches!(
        f.err(attach_msg(1, 1, 0, 32, 33)),
        SessionViolation::OutsidePool {
            end: 4224,
            size: 4096,
            ..
        }
    ));
    assert!(matches!(
        f.err(attach_msg(1, 1, 4, 32, 32)),
        SessionViolation::OutsidePool { .. }
    ));
    assert_eq!(
        f.err(attach_msg(1, 2, 0, 1, 1)),
        SessionViolation::UnknownPool(p(2))
    );
    // The refused attach did not replace the accepted one.
    assert_eq!(f.session.attachment(w(1)).map(|(pool, _)| pool), Some(p(1)));
}

#[test]
fn inline_write_past_pool_end_is_refused() {
    let mut f = Fixture::standard();
    f.inline_pool(1, 4096);
    f.ok(write_msg(1, 4000, 96));
    assert!(matches!(
        f.err(write_msg(1, 4000, 97)),
        SessionViolation::OutsidePool { .. }
    ));
    assert_eq!(
        f.err(write_msg(2, 0, 4)),
        SessionViolation::UnknownPool(p(2))
    );
}

#[test]
fn inline_write_into_a_memfd_pool_is_refused() {
    let mut f = Fixture::standard();
    f.ok(AgentMessage::PoolCreate {
        pool: p(1),
        size: 4096,
        backing: PoolBacking::MemFd,
    });
    assert_eq!(
        f.err(write_msg(1, 0, 4)),
        SessionViolation::NotInlinePool(p(1))
    );
}

#[test]
fn window_limit_is_enforced() {
    let limits = SessionLimits {
        max_windows: 3,
        ..SessionLimits::default()
    };
    let mut f = Fixture::new(limits, Capabilities::all());
    f.toplevel(1);
    f.popup(2, 1);
    f.toplevel(3);
    assert_eq!(
        f.err(AgentMessage::CreateToplevel { window: w(4) }),
        SessionViolation::TooManyWindows(3)
    );
    assert_eq!(f.err(popup_msg(4, 1)), SessionViolation::TooManyWindows(3));
    f.ok(AgentMessage::DestroyWindow { window: w(3) });
    f.toplevel(4);
}

#[test]
fn pool_limit_is_enforced() {
    let limits = SessionLimits {
        max_pools: 2,
        ..SessionLimits::default()
    };
    let mut f = Fixture::new(limits, Capabilities::all());
    f.inline_pool(1, 4096);
    f.inline_pool(2, 4096);
    let third = AgentMessage::PoolCreate {
        pool: p(3),
        size: 4096,
        backing: PoolBacking::Inline,
    };
    assert_eq!(f.err(third), SessionViolation::TooManyPools(2));
}

#[test]
fn pool_bytes_limit_is_enforced() {
    let limits = SessionLimits {
        max_pool_bytes: 10_000,
        ..SessionLimits::default()
    };
    let mut f = Fixture::new(limits, Capabilities::all());
    f.inline_pool(1, 6_000);
    f.inline_pool(2, 4_000);
    let more = AgentMessage::PoolCreate {
        pool: p(3),
        size: 1,
        backing: PoolBacking::Inline,
    };
    assert_eq!(
        f.err(more),
        SessionViolation::TooMuchPoolMemory {
            requested: 10_001,
            limit: 10_000
        }
    );
    f.ok(AgentMessage::PoolDestroy { pool: p(1) });
    assert_eq!(f.session.pool_bytes(), 4_000);
    f.inline_pool(3, 6_000);
}

#[test]
fn lz4_write_without_lz4_negotiated_is_refused() {
    let mut f = Fixture::new(SessionLimits::default(), Capabilities::INLINE_PIXELS);
    f.inline_pool(1, 4096);
    let lz4 = AgentMessage::PoolWrite {
        pool: p(1),
        pixels: InlinePixels::new(0, 4, 4, 1, vec![0; 4]).unwrap(),
        compression: Compression::Lz4,
    };
    assert_eq!(f.err(lz4), SessionViolation::CapabilityNotNegotiated("lz4"));
    f.ok(write_msg(1, 0, 4));
}

#[test]
fn png_clipboard_without_negotiation_is_refused() {
    let mut f = Fixture::new(SessionLimits::default(), Capabilities::INLINE_PIXELS);
    let png = AgentMessage::ClipboardData {
        serial: Serial(1),
        payload: ClipboardPayload::Png(PNG_SIGNATURE.to_vec()),
    };
    assert_eq!(
        f.err(png),
        SessionViolation::CapabilityNotNegotiated("clipboard-png")
    );
    f.ok(AgentMessage::ClipboardData {
        serial: Serial(2),
        payload: ClipboardPayload::text("text is always fine"),
    });
}

/// Pool sizes reach the session as plain `u64`s: a sum that would wrap is refused, not wrapped
/// (which would bypass the budget) and not a panic.
#[test]
fn pool_bytes_cannot_overflow() {
    let limits = SessionLimits {
        max_pool_bytes: u64::MAX,
        ..SessionLimits::default()
    };
    let mut f = Fixture::new(limits, Capabilities::all());
    f.inline_pool(1, 4096);
    let huge = AgentMessage::PoolCreate {
        pool: p(2),
        size: u64::MAX - 100,
        backing: PoolBacking::Inline,
    };
    assert!(matches!(
        f.err(huge),
        SessionViolation::TooMuchPoolMemory { .. }
    ));
    assert_eq!(f.session.pool_bytes(), 4096);
    f.ok(AgentMessage::PoolDestroy { pool: p(1) });
    assert_eq!(f.session.pool_bytes(), 0);
}

#[test]
fn message_flood_is_refused() {
    let limits = SessionLimits {
        max_messages_per_second: 100,
        message_burst: 10,
        ..SessionLimits::default()
    };
    let mut session = AgentSession::new(limits, Capabilities::all());
    let t0 = Instant::now();
    let hello = AgentMessage::Hello {
        version: Version::CURRENT,
        capabilities: Capabilities::all(),
    };
    session.apply(&hello, t0).unwrap();
    let pong = AgentMessage::Pong { serial: Serial(0) };
    // The burst (10, of which hello used one) passes at a single instant; the next does not.
    for _ in 0..9 {
        session.apply(&pong, t0).unwrap();
    }
    assert_eq!(
        session.apply(&pong, t0),
        Err(SessionViolation::MessageFlood(100))
    );
    // 15 ms later at 100 messages a second, one more message is allowed, and only one.
    let t1 = t0 + Duration::from_millis(15);
    session.apply(&pong, t1).unwrap();
    assert_eq!(
        session.apply(&pong, t1),
        Err(SessionViolation::MessageFlood(100))
    );
    // A long pause refills the bucket up to the burst, never beyond.
    let t2 = t1 + Duration::from_secs(3600);
    for _ in 0..10 {
        session.apply(&pong, t2).unwrap();
    }
    assert!(session.apply(&pong, t2).is_err());
    // A clock that goes backwards earns nothing.
    assert!(session.apply(&pong, t0).is_err());
    // Sustained sending at exactly the allowed rate never trips.
    let mut session = AgentSession::new(limits, Capabilities::all());
    session.apply(&hello, t0).unwrap();
    for i in 1..=1_000u32 {
        session
            .apply(&pong, t0 + Duration::from_millis(10) * i)
            .unwrap();
    }
}

// ---------------------------------------------------------------------------------------------
// Notifications

fn notify_body(id: u32, urgency: u8, summary: &[u8], body: &[u8]) -> Body {
    Body::new().u32(id).u8(urgency).string(summary).string(body)
}

#[test]
fn notifications_without_negotiation_are_refused() {
    // An old GUI domain (or one that does not offer it) never negotiates NOTIFICATIONS: a
    // notification is then as wrong as any other feature that was not agreed.
    let mut f = Fixture::new(SessionLimits::default(), Capabilities::INLINE_PIXELS);
    let notify = AgentMessage::Notify {
        id: NotificationId::new(1).unwrap(),
        urgency: Urgency::Normal,
        summary: SanitizedText::sanitize("hi", 256),
        body: SanitizedText::default(),
    };
    assert_eq!(
        f.err(notify.clone()),
        SessionViolation::CapabilityNotNegotiated("notifications")
    );
    assert_eq!(
        f.err(AgentMessage::CloseNotification {
            id: NotificationId::new(1).unwrap()
        }),
        SessionViolation::CapabilityNotNegotiated("notifications")
    );
    let mut f = Fixture::standard();
    f.ok(notify);
}

#[test]
fn notification_fields_are_checked() {
    // Id 0, an unknown urgency, invalid UTF-8 and texts past their limits are violations.
    assert_invalid(
        agent_err(codec::NOTIFY, notify_body(0, 1, b"s", b"b")),
        "notification id",
    );
    assert_invalid(
        agent_err(codec::NOTIFY, notify_body(1, 3, b"s", b"b")),
        "urgency",
    );
    assert_invalid(
        agent_err(codec::NOTIFY, notify_body(1, 1, b"\xff", b"b")),
        "notification summary",
    );
    assert_invalid(
        agent_err(codec::NOTIFY, notify_body(1, 1, b"s", b"\xc0\x80")),
        "notification body",
    );
    match agent_err(
        codec::NOTIFY,
        notify_body(1, 1, &[b'x'; MAX_NOTIFICATION_SUMMARY_BYTES + 1], b""),
    ) {
        DecodeError::TooLong { field, .. } => assert_eq!(field, "notification summary"),
        other => panic!("expected TooLong, got {other:?}"),
    }
    // The body's limit holds even when the summary is empty and the frame would still fit.
    match agent_err(
        codec::NOTIFY,
        notify_body(1, 1, b"", &[b'x'; MAX_NOTIFICATION_BODY_BYTES + 1]),
    ) {
        DecodeError::TooLong { field, .. } => assert_eq!(field, "notification body"),
        other => panic!("expected TooLong, got {other:?}"),
    }
    assert_invalid(
        agent_err(codec::CLOSE_NOTIFICATION, Body::new().u32(0)),
        "notification id",
    );
    assert_invalid(
        gui_err(codec::NOTIFICATION_CLOSED, Body::new().u32(1).u32(0)),
        "close reason",
    );
    assert_invalid(
        gui_err(codec::NOTIFICATION_CLOSED, Body::new().u32(1).u32(5)),
        "close reason",
    );
}

#[test]
fn notification_text_is_sanitised_not_refused() {
    // Control characters, an ANSI escape, bidi overrides and isolates, zero-width characters:
    // decoded, then sanitised, so "[work]" cannot be reversed or hidden after the qube's name.
    let msg = agent_ok(
        codec::NOTIFY,
        notify_body(
            7,
            2,
            "\u{202e}]metsys[\u{2066} Update\x1b[31m\u{200b}!".as_bytes(),
            "line1\nline2\u{7}\u{2028}end\u{e0041}".as_bytes(),
        ),
    );
    assert_eq!(
        msg,
        AgentMessage::Notify {
            id: NotificationId::new(7).unwrap(),
            urgency: Urgency::Critical,
            summary: SanitizedText::sanitize("]metsys[ Update[31m!", 256),
            body: SanitizedText::sanitize("line1 line2 end", 1024),
        }
    );
    let AgentMessage::Notify { summary, body, .. } = msg else {
        unreachable!()
    };
    assert_eq!(summary.as_str(), "]metsys[ Update[31m!");
    assert_eq!(body.as_str(), "line1 line2 end");
}
