//! Encoding and decoding of whole messages.
//!
//! A message is an 8-byte header — `u32 type`, `u32 body length`, little-endian — followed by the
//! body. [`check_header`] decides from the header alone whether the body may be read at all:
//! unknown types and bodies of the wrong or an excessive length are refused before a single body
//! byte is buffered. The body decoders then build validated types or fail.

use crate::error::DecodeError;
use crate::limits::*;
use crate::message::{AgentMessage, GuiMessage};
use crate::text::SanitizedText;
use crate::types::*;
use crate::wire::{Reader, Writer};

/// How long a body of a given type may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyLimit {
    /// Fixed layout: any other length is a violation.
    Exact(usize),
    /// Variable layout up to this many bytes.
    AtMost(usize),
}

/// Which way a message travels, which decides the table of valid types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    AgentToGui,
    GuiToAgent,
}

/// A decoded header whose body length is allowed for its type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub msg_type: u32,
    pub body_len: usize,
}

macro_rules! message_table {
    ($table:ident, $name_fn:ident, $( $const:ident = $code:literal, $label:literal, $limit:expr; )*) => {
        $( pub const $const: u32 = $code; )*
        const $table: &[(u32, &str, BodyLimit)] = &[ $( ($code, $label, $limit), )* ];
        /// The name of a message type, or `None` if the type is unknown in this direction.
        pub fn $name_fn(msg_type: u32) -> Option<&'static str> {
            $table.iter().find(|(c, _, _)| *c == msg_type).map(|(_, n, _)| *n)
        }
    };
}

const OUTPUT_MAX_BYTES: usize = 4 * 7 + 4 + MAX_OUTPUT_NAME_BYTES;
const APP_ENTRY_MAX_BYTES: usize = 3 * 4 + MAX_APP_ID_BYTES + 2 * MAX_APP_NAME_BYTES;
/// Worst case of LZ4 block compression of `MAX_INLINE_PIXEL_BYTES`.
pub const MAX_LZ4_INLINE_BYTES: usize = MAX_INLINE_PIXEL_BYTES + MAX_INLINE_PIXEL_BYTES / 255 + 64;

message_table! { AGENT_TYPES, agent_type_name,
    HELLO = 0x0001, "hello", BodyLimit::Exact(8);
    AGENT_GOODBYE = 0x0002, "goodbye", BodyLimit::AtMost(4 + MAX_REASON_BYTES);
    CREATE_TOPLEVEL = 0x0003, "create_toplevel", BodyLimit::Exact(4);
    CREATE_POPUP = 0x0004, "create_popup", BodyLimit::Exact(24);
    REPOSITION_POPUP = 0x0005, "reposition_popup", BodyLimit::Exact(20);
    DESTROY_WINDOW = 0x0006, "destroy_window", BodyLimit::Exact(4);
    MAP = 0x0007, "map", BodyLimit::Exact(4);
    UNMAP = 0x0008, "unmap", BodyLimit::Exact(4);
    SET_TITLE = 0x0009, "set_title", BodyLimit::AtMost(8 + MAX_TITLE_BYTES);
    SET_APP_ID = 0x000A, "set_app_id", BodyLimit::AtMost(8 + MAX_APP_ID_BYTES);
    SIZE_HINTS = 0x000B, "size_hints", BodyLimit::Exact(20);
    POOL_CREATE = 0x000C, "pool_create", BodyLimit::AtMost(17 + 4 * MAX_GRANT_REFS);
    POOL_DESTROY = 0x000D, "pool_destroy", BodyLimit::Exact(4);
    POOL_WRITE = 0x000E, "pool_write", BodyLimit::AtMost(29 + MAX_LZ4_INLINE_BYTES);
    ATTACH = 0x000F, "attach", BodyLimit::Exact(32);
    DAMAGE = 0x0010, "damage", BodyLimit::AtMost(8 + 16 * MAX_DAMAGE_RECTS);
    COMMIT = 0x0011, "commit", BodyLimit::Exact(8);
    ACK_CONFIGURE = 0x0012, "ack_configure", BodyLimit::Exact(8);
    SET_CURSOR = 0x0013, "set_cursor", BodyLimit::Exact(8);
    REQUEST_ATTENTION = 0x0014, "request_attention", BodyLimit::Exact(4);
    REQUEST_STATE = 0x0015, "request_state", BodyLimit::Exact(8);
    CLIPBOARD_DATA = 0x0016, "clipboard_data", BodyLimit::AtMost(12 + MAX_CLIPBOARD_BYTES);
    CLIPBOARD_EMPTY = 0x0017, "clipboard_empty", BodyLimit::Exact(4);
    APP_LIST = 0x0018, "app_list", BodyLimit::AtMost(4 + MAX_APP_ENTRIES * APP_ENTRY_MAX_BYTES);
    PONG = 0x0019, "pong", BodyLimit::Exact(4);
    NOTIFY = 0x001A, "notify", BodyLimit::AtMost(13 + MAX_NOTIFICATION_SUMMARY_BYTES + MAX_NOTIFICATION_BODY_BYTES);
    CLOSE_NOTIFICATION = 0x001B, "close_notification", BodyLimit::Exact(4);
}

message_table! { GUI_TYPES, gui_type_name,
    WELCOME = 0x8001, "welcome", BodyLimit::AtMost(12 + MAX_OUTPUTS * OUTPUT_MAX_BYTES);
    GUI_GOODBYE = 0x8002, "goodbye", BodyLimit::AtMost(4 + MAX_REASON_BYTES);
    OUTPUTS_CHANGED = 0x8003, "outputs_changed", BodyLimit::AtMost(4 + MAX_OUTPUTS * OUTPUT_MAX_BYTES);
    CONFIGURE = 0x8004, "configure", BodyLimit::Exact(20);
    CLOSE = 0x8005, "close", BodyLimit::Exact(4);
    KEYMAP = 0x8006, "keymap", BodyLimit::AtMost(4 + MAX_KEYMAP_BYTES);
    KEYBOARD_ENTER = 0x8007, "keyboard_enter", BodyLimit::AtMost(8 + 4 * MAX_PRESSED_KEYS);
    KEYBOARD_LEAVE = 0x8008, "keyboard_leave", BodyLimit::Exact(4);
    KEY = 0x8009, "key", BodyLimit::Exact(13);
    MODIFIERS = 0x800A, "modifiers", BodyLimit::Exact(20);
    POINTER_ENTER = 0x800B, "pointer_enter", BodyLimit::Exact(12);
    POINTER_LEAVE = 0x800C, "pointer_leave", BodyLimit::Exact(4);
    POINTER_MOTION = 0x800D, "pointer_motion", BodyLimit::Exact(16);
    POINTER_BUTTON = 0x800E, "pointer_button", BodyLimit::Exact(13);
    POINTER_AXIS = 0x800F, "pointer_axis", BodyLimit::Exact(17);
    FRAME_DONE = 0x8010, "frame_done", BodyLimit::Exact(12);
    CLIPBOARD_REQUEST = 0x8011, "clipboard_request", BodyLimit::Exact(4);
    CLIPBOARD_PASTE = 0x8012, "clipboard_paste", BodyLimit::AtMost(8 + MAX_CLIPBOARD_BYTES);
    LAUNCH = 0x8013, "launch", BodyLimit::AtMost(5 + 4 * MAX_LAUNCH_ARGS + MAX_LAUNCH_TOTAL_BYTES);
    LIST_APPS = 0x8014, "list_apps", BodyLimit::Exact(0);
    PING = 0x8015, "ping", BodyLimit::Exact(4);
    POOL_RELEASED = 0x8016, "pool_released", BodyLimit::Exact(4);
    NOTIFICATION_CLOSED = 0x8017, "notification_closed", BodyLimit::Exact(8);
}

/// The body limit of `msg_type` in `direction`, or `None` if the type is unknown there.
pub fn body_limit(direction: Direction, msg_type: u32) -> Option<BodyLimit> {
    let table = match direction {
        Direction::AgentToGui => AGENT_TYPES,
        Direction::GuiToAgent => GUI_TYPES,
    };
    table
        .iter()
        .find(|(c, _, _)| *c == msg_type)
        .map(|(_, _, l)| *l)
}

/// Every message type of a direction with its name and limit (for docs and tests).
pub fn message_types(direction: Direction) -> &'static [(u32, &'static str, BodyLimit)] {
    match direction {
        Direction::AgentToGui => AGENT_TYPES,
        Direction::GuiToAgent => GUI_TYPES,
    }
}

/// Checks a header before its body is read.
pub fn check_header(
    direction: Direction,
    untrusted_header: [u8; HEADER_BYTES],
) -> Result<Header, DecodeError> {
    let msg_type = u32::from_le_bytes([
        untrusted_header[0],
        untrusted_header[1],
        untrusted_header[2],
        untrusted_header[3],
    ]);
    let untrusted_len = u32::from_le_bytes([
        untrusted_header[4],
        untrusted_header[5],
        untrusted_header[6],
        untrusted_header[7],
    ]) as usize;
    let limit = body_limit(direction, msg_type).ok_or(DecodeError::UnknownType(msg_type))?;
    let name = match direction {
        Direction::AgentToGui => agent_type_name(msg_type),
        Direction::GuiToAgent => gui_type_name(msg_type),
    }
    .unwrap_or("?");
    match limit {
        BodyLimit::Exact(n) if untrusted_len != n => Err(DecodeError::InvalidValue {
            field: "body length",
            reason: format!("{name} has a fixed body of {n} bytes, got {untrusted_len}"),
        }),
        BodyLimit::AtMost(n) if untrusted_len > n => Err(DecodeError::BodyTooLarge {
            message: name,
            length: untrusted_len,
            max: n,
        }),
        _ => Ok(Header {
            msg_type,
            body_len: untrusted_len,
        }),
    }
}

fn frame(msg_type: u32, write_body: impl FnOnce(&mut Writer), out: &mut Vec<u8>) {
    let mut w = Writer {
        buf: std::mem::take(out),
    };
    let start = w.buf.len();
    w.u32(msg_type);
    w.u32(0);
    write_body(&mut w);
    let body_len = crate::wire::len_u32(w.buf.len() - start - HEADER_BYTES);
    w.buf[start + 4..start + 8].copy_from_slice(&body_len.to_le_bytes());
    *out = w.buf;
}

// ---------------------------------------------------------------------------------------------
// Shared field encodings

fn put_text(w: &mut Writer, text: &SanitizedText) {
    w.length_prefixed(text.as_str().as_bytes());
}

fn get_text(
    r: &mut Reader<'_>,
    field: &'static str,
    max: usize,
) -> Result<SanitizedText, DecodeError> {
    let untrusted = r.length_prefixed(field, max)?;
    SanitizedText::from_wire(field, untrusted, max)
}

fn get_window(r: &mut Reader<'_>) -> Result<WindowId, DecodeError> {
    WindowId::new(r.u32()?)
}

fn get_pool(r: &mut Reader<'_>) -> Result<PoolId, DecodeError> {
    PoolId::new(r.u32()?)
}

fn put_size(w: &mut Writer, size: Size) {
    w.u32(size.width());
    w.u32(size.height());
}

fn get_size(r: &mut Reader<'_>) -> Result<Size, DecodeError> {
    let width = r.u32()?;
    let height = r.u32()?;
    Size::new(width, height)
}

fn put_point(w: &mut Writer, p: Point) {
    w.i32(p.x());
    w.i32(p.y());
}

fn get_point(r: &mut Reader<'_>) -> Result<Point, DecodeError> {
    let x = r.i32()?;
    let y = r.i32()?;
    Point::new(x, y)
}

fn put_fixed(w: &mut Writer, p: FixedPoint) {
    w.i32(p.x_256ths());
    w.i32(p.y_256ths());
}

fn get_fixed(r: &mut Reader<'_>) -> Result<FixedPoint, DecodeError> {
    let x = r.i32()?;
    let y = r.i32()?;
    FixedPoint::new(x, y)
}

fn get_optional_size(r: &mut Reader<'_>) -> Result<OptionalSize, DecodeError> {
    let width = r.u32()?;
    let height = r.u32()?;
    OptionalSize::new(width, height)
}

fn put_clipboard(w: &mut Writer, payload: &ClipboardPayload) {
    match payload {
        ClipboardPayload::Text(t) => {
            w.u32(0);
            w.length_prefixed(t.as_bytes());
        }
        ClipboardPayload::Png(p) => {
            w.u32(1);
            w.length_prefixed(p);
        }
    }
}

fn get_clipboard(r: &mut Reader<'_>) -> Result<ClipboardPayload, DecodeError> {
    let untrusted_kind = r.u32()?;
    let untrusted_data = r.length_prefixed("clipboard data", MAX_CLIPBOARD_BYTES)?;
    match untrusted_kind {
        0 => {
            let text = std::str::from_utf8(untrusted_data).map_err(|e| {
                DecodeError::invalid("clipboard text", format!("not valid UTF-8 ({e})"))
            })?;
            Ok(ClipboardPayload::text(text))
        }
        1 => {
            if !untrusted_data.starts_with(&PNG_SIGNATURE) {
                return Err(DecodeError::invalid(
                    "clipboard image",
                    "does not start with the PNG signature",
                ));
            }
            Ok(ClipboardPayload::Png(untrusted_data.to_vec()))
        }
        other => Err(DecodeError::invalid(
            "clipboard kind",
            format!("unknown kind {other}"),
        )),
    }
}

fn put_outputs(w: &mut Writer, outputs: &[OutputInfo]) {
    w.count(outputs.len());
    for o in outputs {
        w.u32(o.id.get());
        put_point(w, o.position);
        put_size(w, o.size);
        w.u32(o.scale_120ths.get());
        w.u32(o.refresh_mhz);
        put_text(w, &o.name);
    }
}

fn get_outputs(r: &mut Reader<'_>) -> Result<Vec<OutputInfo>, DecodeError> {
    let count = r.count("outputs", MAX_OUTPUTS, 32)?;
    let mut outputs = Vec::with_capacity(count);
    for _ in 0..count {
        let id = OutputId::new(r.u32()?)?;
        let position = get_point(r)?;
        let size = get_size(r)?;
        let scale_120ths = Scale::new(r.u32()?)?;
        let refresh_mhz = r.u32()?;
        let name = get_text(r, "output name", MAX_OUTPUT_NAME_BYTES)?;
        outputs.push(OutputInfo {
            id,
            position,
            size,
            scale_120ths,
            refresh_mhz,
            name,
        });
    }
    Ok(outputs)
}

fn get_states(r: &mut Reader<'_>) -> Result<WindowStates, DecodeError> {
    let raw = r.u32()?;
    WindowStates::from_bits(raw)
        .ok_or_else(|| DecodeError::invalid("window states", format!("unknown bits in {raw:#x}")))
}

// ---------------------------------------------------------------------------------------------
// Agent → GUI

/// The wire type of an agent message.
pub fn agent_type(msg: &AgentMessage) -> u32 {
    use AgentMessage as M;
    match msg {
        M::Hello { .. } => HELLO,
        M::Goodbye { .. } => AGENT_GOODBYE,
        M::CreateToplevel { .. } => CREATE_TOPLEVEL,
        M::CreatePopup { .. } => CREATE_POPUP,
        M::RepositionPopup { .. } => REPOSITION_POPUP,
        M::DestroyWindow { .. } => DESTROY_WINDOW,
        M::Map { .. } => MAP,
        M::Unmap { .. } => UNMAP,
        M::SetTitle { .. } => SET_TITLE,
        M::SetAppId { .. } => SET_APP_ID,
        M::SizeHints { .. } => SIZE_HINTS,
        M::PoolCreate { .. } => POOL_CREATE,
        M::PoolDestroy { .. } => POOL_DESTROY,
        M::PoolWrite { .. } => POOL_WRITE,
        M::Attach { .. } => ATTACH,
        M::Damage { .. } => DAMAGE,
        M::Commit { .. } => COMMIT,
        M::AckConfigure { .. } => ACK_CONFIGURE,
        M::SetCursor { .. } => SET_CURSOR,
        M::RequestAttention { .. } => REQUEST_ATTENTION,
        M::RequestState { .. } => REQUEST_STATE,
        M::ClipboardData { .. } => CLIPBOARD_DATA,
        M::ClipboardEmpty { .. } => CLIPBOARD_EMPTY,
        M::AppList { .. } => APP_LIST,
        M::Pong { .. } => PONG,
        M::Notify { .. } => NOTIFY,
        M::CloseNotification { .. } => CLOSE_NOTIFICATION,
    }
}

/// Appends one framed agent message to `out`.
pub fn encode_agent(msg: &AgentMessage, out: &mut Vec<u8>) {
    use AgentMessage as M;
    frame(
        agent_type(msg),
        |w| match msg {
            M::Hello {
                version,
                capabilities,
            } => {
                w.u32(version.to_wire());
                w.u32(capabilities.bits());
            }
            M::Goodbye { reason } => put_text(w, reason),
            M::CreateToplevel { window }
            | M::DestroyWindow { window }
            | M::Map { window }
            | M::Unmap { window }
            | M::RequestAttention { window } => w.u32(window.get()),
            M::CreatePopup {
                window,
                parent,
                position,
                size,
            } => {
                w.u32(window.get());
                w.u32(parent.get());
                put_point(w, *position);
                put_size(w, *size);
            }
            M::RepositionPopup {
                window,
                position,
                size,
            } => {
                w.u32(window.get());
                put_point(w, *position);
                put_size(w, *size);
            }
            M::SetTitle { window, title } => {
                w.u32(window.get());
                put_text(w, title);
            }
            M::SetAppId { window, app_id } => {
                w.u32(window.get());
                put_text(w, app_id);
            }
            M::SizeHints { window, min, max } => {
                w.u32(window.get());
                w.u32(min.width());
                w.u32(min.height());
                w.u32(max.width());
                w.u32(max.height());
            }
            M::PoolCreate {
                pool,
                size,
                backing,
            } => {
                w.u32(pool.get());
                w.u64(*size);
                match backing {
                    PoolBacking::MemFd => {
                        w.u8(0);
                        w.count(0);
                    }
                    PoolBacking::Inline => {
                        w.u8(1);
                        w.count(0);
                    }
                    PoolBacking::XenGrants(refs) => {
                        w.u8(2);
                        w.count(refs.len());
                        for r in refs {
                            w.u32(*r);
                        }
                    }
                }
            }
            M::PoolDestroy { pool } => w.u32(pool.get()),
            M::PoolWrite {
                pool,
                pixels,
                compression,
            } => {
                w.u32(pool.get());
                w.u64(pixels.offset());
                w.u32(pixels.stride());
                w.u32(pixels.row_bytes());
                w.u32(pixels.rows());
                match compression {
                    Compression::None => {
                        w.u8(0);
                        w.length_prefixed(pixels.data());
                    }
                    Compression::Lz4 => {
                        w.u8(1);
                        w.length_prefixed(&lz4_flex::block::compress(pixels.data()));
                    }
                }
            }
            M::Attach {
                window,
                pool,
                layout,
            } => {
                w.u32(window.get());
                w.u32(pool.get());
                w.u64(layout.offset());
                put_size(w, layout.size());
                w.u32(layout.stride());
                w.u32(layout.format().to_wire());
            }
            M::Damage { window, rects } => {
                w.u32(window.get());
                w.count(rects.len());
                for r in rects {
                    w.u32(r.x());
                    w.u32(r.y());
                    w.u32(r.width());
                    w.u32(r.height());
                }
            }
            M::Commit { window, serial } | M::AckConfigure { window, serial } => {
                w.u32(window.get());
                w.u32(serial.0);
            }
            M::SetCursor { window, shape } => {
                w.u32(window.get());
                w.u32(shape.to_wire());
            }
            M::RequestState { window, request } => {
                w.u32(window.get());
                w.u32(request.to_wire());
            }
            M::ClipboardData { serial, payload } => {
                w.u32(serial.0);
                put_clipboard(w, payload);
            }
            M::ClipboardEmpty { serial } | M::Pong { serial } => w.u32(serial.0),
            M::AppList { apps } => {
                w.count(apps.len());
                for app in apps {
                    put_text(w, &app.id);
                    put_text(w, &app.name);
                    put_text(w, &app.icon);
                }
            }
            M::Notify {
                id,
                urgency,
                summary,
                body,
            } => {
                w.u32(id.get());
                w.u8(urgency.to_wire());
                put_text(w, summary);
                put_text(w, body);
            }
            M::CloseNotification { id } => w.u32(id.get()),
        },
        out,
    );
}

/// Decodes the body of an agent message whose header passed [`check_header`].
pub fn decode_agent(msg_type: u32, untrusted_body: &[u8]) -> Result<AgentMessage, DecodeError> {
    use AgentMessage as M;
    let r = &mut Reader::new(untrusted_body);
    let msg = match msg_type {
        HELLO => M::Hello {
            version: Version::from_wire(r.u32()?),
            capabilities: Capabilities::from_bits_truncate(r.u32()?),
        },
        AGENT_GOODBYE => M::Goodbye {
            reason: get_text(r, "goodbye reason", MAX_REASON_BYTES)?,
        },
        CREATE_TOPLEVEL => M::CreateToplevel {
            window: get_window(r)?,
        },
        CREATE_POPUP => {
            let window = get_window(r)?;
            let parent = get_window(r)?;
            if parent == window {
                return Err(DecodeError::invalid(
                    "popup parent",
                    "a popup cannot be its own parent",
                ));
            }
            M::CreatePopup {
                window,
                parent,
                position: get_point(r)?,
                size: get_size(r)?,
            }
        }
        REPOSITION_POPUP => M::RepositionPopup {
            window: get_window(r)?,
            position: get_point(r)?,
            size: get_size(r)?,
        },
        DESTROY_WINDOW => M::DestroyWindow {
            window: get_window(r)?,
        },
        MAP => M::Map {
            window: get_window(r)?,
        },
        UNMAP => M::Unmap {
            window: get_window(r)?,
        },
        SET_TITLE => M::SetTitle {
            window: get_window(r)?,
            title: get_text(r, "title", MAX_TITLE_BYTES)?,
        },
        SET_APP_ID => M::SetAppId {
            window: get_window(r)?,
            app_id: get_text(r, "app id", MAX_APP_ID_BYTES)?,
        },
        SIZE_HINTS => {
            let window = get_window(r)?;
            let min = get_optional_size(r)?;
            let max = get_optional_size(r)?;
            for (axis, lo, hi) in [
                ("width", min.width(), max.width()),
                ("height", min.height(), max.height()),
            ] {
                if hi != 0 && lo > hi {
                    return Err(DecodeError::invalid(
                        "size hints",
                        format!("minimum {axis} {lo} above maximum {hi}"),
                    ));
                }
            }
            M::SizeHints { window, min, max }
        }
        POOL_CREATE => {
            let pool = get_pool(r)?;
            let size = r.u64()?;
            if size == 0 || size > MAX_POOL_BYTES {
                return Err(DecodeError::invalid(
                    "pool size",
                    format!("{size} is outside 1..={MAX_POOL_BYTES}"),
                ));
            }
            let backing_kind = r.u8()?;
            let count = r.count("grant refs", MAX_GRANT_REFS, 4)?;
            let backing = match backing_kind {
                0 | 1 if count != 0 => {
                    return Err(DecodeError::invalid(
                        "pool backing",
                        "grant refs given for a non-Xen pool",
                    ));
                }
                0 => PoolBacking::MemFd,
                1 => PoolBacking::Inline,
                2 => {
                    let pages = size.div_ceil(4096);
                    if count as u64 != pages {
                        return Err(DecodeError::invalid(
                            "grant refs",
                            format!("{count} refs for a pool of {pages} pages"),
                        ));
                    }
                    let mut refs = Vec::with_capacity(count);
                    for _ in 0..count {
                        refs.push(r.u32()?);
                    }
                    PoolBacking::XenGrants(refs)
                }
                other => {
                    return Err(DecodeError::invalid(
                        "pool backing",
                        format!("unknown backing {other}"),
                    ));
                }
            };
            M::PoolCreate {
                pool,
                size,
                backing,
            }
        }
        POOL_DESTROY => M::PoolDestroy { pool: get_pool(r)? },
        POOL_WRITE => {
            let pool = get_pool(r)?;
            let offset = r.u64()?;
            let stride = r.u32()?;
            let row_bytes = r.u32()?;
            let rows = r.u32()?;
            let expected = u64::from(row_bytes) * u64::from(rows);
            if expected == 0 || expected > MAX_INLINE_PIXEL_BYTES as u64 {
                return Err(DecodeError::invalid(
                    "inline pixels",
                    format!("{expected} bytes is outside 1..={MAX_INLINE_PIXEL_BYTES}"),
                ));
            }
            let compression = match r.u8()? {
                0 => Compression::None,
                1 => Compression::Lz4,
                other => {
                    return Err(DecodeError::invalid(
                        "compression",
                        format!("unknown compression {other}"),
                    ));
                }
            };
            let untrusted_data = r.length_prefixed("inline pixel data", MAX_LZ4_INLINE_BYTES)?;
            let data = match compression {
                Compression::None => untrusted_data.to_vec(),
                Compression::Lz4 => {
                    // LZ4 expands at most about 255:1; refuse an announcement the data cannot
                    // reach before allocating for it.
                    if expected > (untrusted_data.len() as u64) * 255 + 64 {
                        return Err(DecodeError::invalid(
                            "inline pixel data",
                            format!(
                                "{} bytes of LZ4 cannot hold {expected} bytes",
                                untrusted_data.len()
                            ),
                        ));
                    }
                    // Decompress into a buffer of exactly the announced size: a bomb cannot
                    // make it larger, and a short or long stream is an error.
                    let mut out = vec![0u8; expected as usize];
                    let n = lz4_flex::block::decompress_into(untrusted_data, &mut out).map_err(
                        |e| {
                            DecodeError::invalid("inline pixel data", format!("bad LZ4 data ({e})"))
                        },
                    )?;
                    if n != out.len() {
                        return Err(DecodeError::invalid(
                            "inline pixel data",
                            format!("LZ4 data decompressed to {n} bytes, expected {}", out.len()),
                        ));
                    }
                    out
                }
            };
            M::PoolWrite {
                pool,
                pixels: InlinePixels::new(offset, stride, row_bytes, rows, data)?,
                compression,
            }
        }
        ATTACH => {
            let window = get_window(r)?;
            let pool = get_pool(r)?;
            let offset = r.u64()?;
            if offset >= MAX_POOL_BYTES {
                return Err(DecodeError::invalid(
                    "buffer offset",
                    format!("{offset} is past the largest pool"),
                ));
            }
            let size = get_size(r)?;
            let stride = r.u32()?;
            let format = PixelFormat::from_wire(r.u32()?)?;
            M::Attach {
                window,
                pool,
                layout: BufferLayout::new(offset, size, stride, format)?,
            }
        }
        DAMAGE => {
            let window = get_window(r)?;
            let count = r.count("damage rectangles", MAX_DAMAGE_RECTS, 16)?;
            let mut rects = Vec::with_capacity(count);
            for _ in 0..count {
                let (x, y, w, h) = (r.u32()?, r.u32()?, r.u32()?, r.u32()?);
                rects.push(Rect::new(x, y, w, h)?);
            }
            M::Damage { window, rects }
        }
        COMMIT => M::Commit {
            window: get_window(r)?,
            serial: Serial(r.u32()?),
        },
        ACK_CONFIGURE => M::AckConfigure {
            window: get_window(r)?,
            serial: Serial(r.u32()?),
        },
        SET_CURSOR => M::SetCursor {
            window: get_window(r)?,
            shape: CursorShape::from_wire(r.u32()?)?,
        },
        REQUEST_ATTENTION => M::RequestAttention {
            window: get_window(r)?,
        },
        REQUEST_STATE => M::RequestState {
            window: get_window(r)?,
            request: StateRequest::from_wire(r.u32()?)?,
        },
        CLIPBOARD_DATA => M::ClipboardData {
            serial: Serial(r.u32()?),
            payload: get_clipboard(r)?,
        },
        CLIPBOARD_EMPTY => M::ClipboardEmpty {
            serial: Serial(r.u32()?),
        },
        APP_LIST => {
            let count = r.count("applications", MAX_APP_ENTRIES, 12)?;
            let mut apps = Vec::with_capacity(count);
            for _ in 0..count {
                apps.push(AppEntry {
                    id: get_text(r, "application id", MAX_APP_ID_BYTES)?,
                    name: get_text(r, "application name", MAX_APP_NAME_BYTES)?,
                    icon: get_text(r, "application icon", MAX_APP_NAME_BYTES)?,
                });
            }
            M::AppList { apps }
        }
        PONG => M::Pong {
            serial: Serial(r.u32()?),
        },
        NOTIFY => {
            let id = NotificationId::new(r.u32()?)?;
            let urgency = Urgency::from_wire(r.u8()?)?;
            let summary = get_text(r, "notification summary", MAX_NOTIFICATION_SUMMARY_BYTES)?;
            let body = get_text(r, "notification body", MAX_NOTIFICATION_BODY_BYTES)?;
            M::Notify {
                id,
                urgency,
                summary,
                body,
            }
        }
        CLOSE_NOTIFICATION => M::CloseNotification {
            id: NotificationId::new(r.u32()?)?,
        },
        other => return Err(DecodeError::UnknownType(other)),
    };
    r_finish(r)?;
    Ok(msg)
}

fn r_finish(r: &mut Reader<'_>) -> Result<(), DecodeError> {
    std::mem::replace(r, Reader::new(&[])).finish()
}

// ---------------------------------------------------------------------------------------------
// GUI → agent

/// The wire type of a GUI message.
pub fn gui_type(msg: &GuiMessage) -> u32 {
    use GuiMessage as M;
    match msg {
        M::Welcome { .. } => WELCOME,
        M::Goodbye { .. } => GUI_GOODBYE,
        M::OutputsChanged { .. } => OUTPUTS_CHANGED,
        M::Configure { .. } => CONFIGURE,
        M::Close { .. } => CLOSE,
        M::Keymap { .. } => KEYMAP,
        M::KeyboardEnter { .. } => KEYBOARD_ENTER,
        M::KeyboardLeave { .. } => KEYBOARD_LEAVE,
        M::Key { .. } => KEY,
        M::Modifiers { .. } => MODIFIERS,
        M::PointerEnter { .. } => POINTER_ENTER,
        M::PointerLeave { .. } => POINTER_LEAVE,
        M::PointerMotion { .. } => POINTER_MOTION,
        M::PointerButton { .. } => POINTER_BUTTON,
        M::PointerAxis { .. } => POINTER_AXIS,
        M::FrameDone { .. } => FRAME_DONE,
        M::ClipboardRequest { .. } => CLIPBOARD_REQUEST,
        M::ClipboardPaste { .. } => CLIPBOARD_PASTE,
        M::Launch { .. } => LAUNCH,
        M::ListApps => LIST_APPS,
        M::Ping { .. } => PING,
        M::PoolReleased { .. } => POOL_RELEASED,
        M::NotificationClosed { .. } => NOTIFICATION_CLOSED,
    }
}

/// Appends one framed GUI message to `out`.
pub fn encode_gui(msg: &GuiMessage, out: &mut Vec<u8>) {
    use GuiMessage as M;
    frame(
        gui_type(msg),
        |w| match msg {
            M::Welcome {
                version,
                capabilities,
                outputs,
            } => {
                w.u32(version.to_wire());
                w.u32(capabilities.bits());
                put_outputs(w, outputs);
            }
            M::Goodbye { reason } => put_text(w, reason),
            M::OutputsChanged { outputs } => put_outputs(w, outputs),
            M::Configure {
                window,
                serial,
                size,
                states,
            } => {
                w.u32(window.get());
                w.u32(serial.0);
                w.u32(size.width());
                w.u32(size.height());
                w.u32(states.bits());
            }
            M::Close { window } | M::KeyboardLeave { window } | M::PointerLeave { window } => {
                w.u32(window.get())
            }
            M::Keymap { keymap } => w.length_prefixed(keymap.as_bytes()),
            M::KeyboardEnter {
                window,
                pressed_keys,
            } => {
                w.u32(window.get());
                w.count(pressed_keys.len());
                for k in pressed_keys {
                    w.u32(*k);
                }
            }
            M::Key {
                window,
                time_ms,
                keycode,
                pressed,
            } => {
                w.u32(window.get());
                w.u32(*time_ms);
                w.u32(*keycode);
                w.bool(*pressed);
            }
            M::Modifiers {
                window,
                depressed,
                latched,
                locked,
                group,
            } => {
                w.u32(window.get());
                w.u32(*depressed);
                w.u32(*latched);
                w.u32(*locked);
                w.u32(*group);
            }
            M::PointerEnter { window, position } => {
                w.u32(window.get());
                put_fixed(w, *position);
            }
            M::PointerMotion {
                window,
                time_ms,
                position,
            } => {
                w.u32(window.get());
                w.u32(*time_ms);
                put_fixed(w, *position);
            }
            M::PointerButton {
                window,
                time_ms,
                button,
                pressed,
            } => {
                w.u32(window.get());
                w.u32(*time_ms);
                w.u32(*button);
                w.bool(*pressed);
            }
            M::PointerAxis {
                window,
                time_ms,
                axis,
                value_256ths,
                value120,
            } => {
                w.u32(window.get());
                w.u32(*time_ms);
                w.u8(match axis {
                    Axis::Vertical => 0,
                    Axis::Horizontal => 1,
                });
                w.i32(*value_256ths);
                w.i32(*value120);
            }
            M::FrameDone {
                window,
                timestamp_ns,
            } => {
                w.u32(window.get());
                w.u64(*timestamp_ns);
            }
            M::ClipboardRequest { serial } | M::Ping { serial } => w.u32(serial.0),
            M::ClipboardPaste { payload } => put_clipboard(w, payload),
            M::Launch { request } => match request {
                LaunchRequest::App(id) => {
                    w.u8(0);
                    w.length_prefixed(id.as_bytes());
                }
                LaunchRequest::Command(argv) => {
                    w.u8(1);
                    w.count(argv.len());
                    for a in argv {
                        w.length_prefixed(a.as_bytes());
                    }
                }
            },
            M::ListApps => {}
            M::PoolReleased { pool } => w.u32(pool.get()),
            M::NotificationClosed { id, reason } => {
                w.u32(id.get());
                w.u32(reason.to_wire());
            }
        },
        out,
    );
}

/// Decodes the body of a GUI message whose header passed [`check_header`].
pub fn decode_gui(msg_type: u32, untrusted_body: &[u8]) -> Result<GuiMessage, DecodeError> {
    use GuiMessage as M;
    let r = &mut Reader::new(untrusted_body);
    let msg = match msg_type {
        WELCOME => M::Welcome {
            version: Version::from_wire(r.u32()?),
            capabilities: Capabilities::from_bits_truncate(r.u32()?),
            outputs: get_outputs(r)?,
        },
        GUI_GOODBYE => M::Goodbye {
            reason: get_text(r, "goodbye reason", MAX_REASON_BYTES)?,
        },
        OUTPUTS_CHANGED => M::OutputsChanged {
            outputs: get_outputs(r)?,
        },
        CONFIGURE => M::Configure {
            window: get_window(r)?,
            serial: Serial(r.u32()?),
            size: get_optional_size(r)?,
            states: get_states(r)?,
        },
        CLOSE => M::Close {
            window: get_window(r)?,
        },
        KEYMAP => {
            let untrusted = r.length_prefixed("keymap", MAX_KEYMAP_BYTES)?;
            let keymap = std::str::from_utf8(untrusted)
                .map_err(|e| DecodeError::invalid("keymap", format!("not valid UTF-8 ({e})")))?;
            if keymap.contains('\0') {
                return Err(DecodeError::invalid("keymap", "contains a NUL byte"));
            }
            M::Keymap {
                keymap: keymap.to_owned(),
            }
        }
        KEYBOARD_ENTER => {
            let window = get_window(r)?;
            let count = r.count("pressed keys", MAX_PRESSED_KEYS, 4)?;
            let mut pressed_keys = Vec::with_capacity(count);
            for _ in 0..count {
                pressed_keys.push(r.u32()?);
            }
            M::KeyboardEnter {
                window,
                pressed_keys,
            }
        }
        KEYBOARD_LEAVE => M::KeyboardLeave {
            window: get_window(r)?,
        },
        KEY => M::Key {
            window: get_window(r)?,
            time_ms: r.u32()?,
            keycode: r.u32()?,
            pressed: r.bool("key state")?,
        },
        MODIFIERS => M::Modifiers {
            window: get_window(r)?,
            depressed: r.u32()?,
            latched: r.u32()?,
            locked: r.u32()?,
            group: r.u32()?,
        },
        POINTER_ENTER => M::PointerEnter {
            window: get_window(r)?,
            position: get_fixed(r)?,
        },
        POINTER_LEAVE => M::PointerLeave {
            window: get_window(r)?,
        },
        POINTER_MOTION => M::PointerMotion {
            window: get_window(r)?,
            time_ms: r.u32()?,
            position: get_fixed(r)?,
        },
        POINTER_BUTTON => M::PointerButton {
            window: get_window(r)?,
            time_ms: r.u32()?,
            button: r.u32()?,
            pressed: r.bool("button state")?,
        },
        POINTER_AXIS => M::PointerAxis {
            window: get_window(r)?,
            time_ms: r.u32()?,
            axis: match r.u8()? {
                0 => Axis::Vertical,
                1 => Axis::Horizontal,
                other => {
                    return Err(DecodeError::invalid(
                        "axis",
                        format!("unknown axis {other}"),
                    ));
                }
            },
            value_256ths: r.i32()?,
            value120: r.i32()?,
        },
        FRAME_DONE => M::FrameDone {
            window: get_window(r)?,
            timestamp_ns: r.u64()?,
        },
        CLIPBOARD_REQUEST => M::ClipboardRequest {
            serial: Serial(r.u32()?),
        },
        CLIPBOARD_PASTE => M::ClipboardPaste {
            payload: get_clipboard(r)?,
        },
        LAUNCH => M::Launch {
            request: match r.u8()? {
                0 => {
                    let untrusted = r.length_prefixed("application id", MAX_APP_ID_BYTES)?;
                    LaunchRequest::App(launch_string("application id", untrusted)?)
                }
                1 => {
                    let count = r.count("launch arguments", MAX_LAUNCH_ARGS, 4)?;
                    if count == 0 {
                        return Err(DecodeError::invalid("launch command", "no program given"));
                    }
                    let mut argv = Vec::with_capacity(count);
                    let mut total = 0usize;
                    for _ in 0..count {
                        let untrusted =
                            r.length_prefixed("launch argument", MAX_LAUNCH_ARG_BYTES)?;
                        total += untrusted.len();
                        if total > MAX_LAUNCH_TOTAL_BYTES {
                            return Err(DecodeError::TooLong {
                                field: "launch command",
                                length: total,
                                max: MAX_LAUNCH_TOTAL_BYTES,
                            });
                        }
                        argv.push(launch_string("launch argument", untrusted)?);
                    }
                    LaunchRequest::Command(argv)
                }
                other => {
                    return Err(DecodeError::invalid(
                        "launch kind",
                        format!("unknown kind {other}"),
                    ));
                }
            },
        },
        LIST_APPS => M::ListApps,
        PING => M::Ping {
            serial: Serial(r.u32()?),
        },
        POOL_RELEASED => M::PoolReleased { pool: get_pool(r)? },
        NOTIFICATION_CLOSED => M::NotificationClosed {
            id: NotificationId::new(r.u32()?)?,
            reason: CloseReason::from_wire(r.u32()?)?,
        },
        other => return Err(DecodeError::UnknownType(other)),
    };
    r_finish(r)?;
    Ok(msg)
}

fn launch_string(field: &'static str, untrusted: &[u8]) -> Result<String, DecodeError> {
    let s = std::str::from_utf8(untrusted)
        .map_err(|e| DecodeError::invalid(field, format!("not valid UTF-8 ({e})")))?;
    if s.contains('\0') {
        return Err(DecodeError::invalid(field, "contains a NUL byte"));
    }
    Ok(s.to_owned())
}

/// Decodes one complete frame (header and body) from the start of `bytes`. Returns the message
/// and the bytes consumed, `Ok(None)` if more bytes are needed. Used by streams and fuzzing.
pub fn decode_agent_frame(bytes: &[u8]) -> Result<Option<(AgentMessage, usize)>, DecodeError> {
    decode_frame(Direction::AgentToGui, bytes, decode_agent)
}

/// The GUI → agent counterpart of [`decode_agent_frame`].
pub fn decode_gui_frame(bytes: &[u8]) -> Result<Option<(GuiMessage, usize)>, DecodeError> {
    decode_frame(Direction::GuiToAgent, bytes, decode_gui)
}

fn decode_frame<M>(
    direction: Direction,
    bytes: &[u8],
    decode: fn(u32, &[u8]) -> Result<M, DecodeError>,
) -> Result<Option<(M, usize)>, DecodeError> {
    let Some(header_bytes) = bytes.get(..HEADER_BYTES) else {
        return Ok(None);
    };
    let mut header = [0u8; HEADER_BYTES];
    header.copy_from_slice(header_bytes);
    let header = check_header(direction, header)?;
    let total = HEADER_BYTES + header.body_len;
    let Some(body) = bytes.get(HEADER_BYTES..total) else {
        return Ok(None);
    };
    Ok(Some((decode(header.msg_type, body)?, total)))
}
