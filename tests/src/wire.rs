//! Agent → GUI frames written byte by byte from docs/protocol.md, without the reference encoder,
//! so the hostile agent can say anything, including what the encoder would never produce.

/// Message type numbers (docs/protocol.md section 4).
pub mod ty {
    pub const HELLO: u32 = 0x0001;
    pub const GOODBYE: u32 = 0x0002;
    pub const CREATE_TOPLEVEL: u32 = 0x0003;
    pub const CREATE_POPUP: u32 = 0x0004;
    pub const REPOSITION_POPUP: u32 = 0x0005;
    pub const DESTROY_WINDOW: u32 = 0x0006;
    pub const MAP: u32 = 0x0007;
    pub const UNMAP: u32 = 0x0008;
    pub const SET_TITLE: u32 = 0x0009;
    pub const SET_APP_ID: u32 = 0x000A;
    pub const SIZE_HINTS: u32 = 0x000B;
    pub const POOL_CREATE: u32 = 0x000C;
    pub const POOL_DESTROY: u32 = 0x000D;
    pub const POOL_WRITE: u32 = 0x000E;
    pub const ATTACH: u32 = 0x000F;
    pub const DAMAGE: u32 = 0x0010;
    pub const COMMIT: u32 = 0x0011;
    pub const ACK_CONFIGURE: u32 = 0x0012;
    pub const SET_CURSOR: u32 = 0x0013;
    pub const REQUEST_ATTENTION: u32 = 0x0014;
    pub const REQUEST_STATE: u32 = 0x0015;
    pub const CLIPBOARD_DATA: u32 = 0x0016;
    pub const CLIPBOARD_EMPTY: u32 = 0x0017;
    pub const APP_LIST: u32 = 0x0018;
    pub const PONG: u32 = 0x0019;
}

/// Pool backings of `pool_create`.
pub const BACKING_MEMFD: u8 = 0;
pub const BACKING_INLINE: u8 = 1;

/// Pixel formats of `attach`.
pub const ARGB8888: u32 = 0;
pub const XRGB8888: u32 = 1;

/// A message body, little-endian fields appended in layout order.
#[derive(Debug, Default, Clone)]
pub struct Body(pub Vec<u8>);

impl Body {
    pub fn new() -> Body {
        Body(Vec::new())
    }
    pub fn u8(mut self, v: u8) -> Body {
        self.0.push(v);
        self
    }
    pub fn u32(mut self, v: u32) -> Body {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn i32(mut self, v: i32) -> Body {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn u64(mut self, v: u64) -> Body {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn bytes(mut self, v: &[u8]) -> Body {
        self.0.extend_from_slice(v);
        self
    }
    /// A `u32` length followed by the bytes.
    pub fn string(self, v: &[u8]) -> Body {
        self.u32(v.len() as u32).bytes(v)
    }
    /// The framed message: header with this body's true length.
    pub fn frame(self, msg_type: u32) -> Vec<u8> {
        frame_with_len(msg_type, self.0.len() as u32, &self.0)
    }
}

/// A header claiming `length` followed by whatever `body` is (they need not agree).
pub fn frame_with_len(msg_type: u32, length: u32, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + body.len());
    out.extend_from_slice(&msg_type.to_le_bytes());
    out.extend_from_slice(&length.to_le_bytes());
    out.extend_from_slice(body);
    out
}

pub fn hello(version: u32, capabilities: u32) -> Vec<u8> {
    Body::new().u32(version).u32(capabilities).frame(ty::HELLO)
}

pub fn create_toplevel(window: u32) -> Vec<u8> {
    Body::new().u32(window).frame(ty::CREATE_TOPLEVEL)
}

pub fn create_popup(window: u32, parent: u32, x: i32, y: i32, w: u32, h: u32) -> Vec<u8> {
    Body::new()
        .u32(window)
        .u32(parent)
        .i32(x)
        .i32(y)
        .u32(w)
        .u32(h)
        .frame(ty::CREATE_POPUP)
}

pub fn reposition_popup(window: u32, x: i32, y: i32, w: u32, h: u32) -> Vec<u8> {
    Body::new()
        .u32(window)
        .i32(x)
        .i32(y)
        .u32(w)
        .u32(h)
        .frame(ty::REPOSITION_POPUP)
}

pub fn window_only(msg_type: u32, window: u32) -> Vec<u8> {
    Body::new().u32(window).frame(msg_type)
}

pub fn set_title(window: u32, title: &[u8]) -> Vec<u8> {
    Body::new().u32(window).string(title).frame(ty::SET_TITLE)
}

pub fn size_hints(window: u32, min: (u32, u32), max: (u32, u32)) -> Vec<u8> {
    Body::new()
        .u32(window)
        .u32(min.0)
        .u32(min.1)
        .u32(max.0)
        .u32(max.1)
        .frame(ty::SIZE_HINTS)
}

pub fn pool_create(pool: u32, size: u64, backing: u8) -> Vec<u8> {
    Body::new()
        .u32(pool)
        .u64(size)
        .u8(backing)
        .u32(0)
        .frame(ty::POOL_CREATE)
}

pub fn pool_destroy(pool: u32) -> Vec<u8> {
    Body::new().u32(pool).frame(ty::POOL_DESTROY)
}

/// An uncompressed `pool_write` of `data` (rows of `row_bytes`).
pub fn pool_write(pool: u32, offset: u64, stride: u32, row_bytes: u32, data: &[u8]) -> Vec<u8> {
    let rows = data.len() as u32 / row_bytes.max(1);
    Body::new()
        .u32(pool)
        .u64(offset)
        .u32(stride)
        .u32(row_bytes)
        .u32(rows)
        .u8(0)
        .string(data)
        .frame(ty::POOL_WRITE)
}

#[allow(clippy::too_many_arguments)]
pub fn attach(
    window: u32,
    pool: u32,
    offset: u64,
    w: u32,
    h: u32,
    stride: u32,
    format: u32,
) -> Vec<u8> {
    Body::new()
        .u32(window)
        .u32(pool)
        .u64(offset)
        .u32(w)
        .u32(h)
        .u32(stride)
        .u32(format)
        .frame(ty::ATTACH)
}

pub fn damage(window: u32, rects: &[(u32, u32, u32, u32)]) -> Vec<u8> {
    let mut b = Body::new().u32(window).u32(rects.len() as u32);
    for &(x, y, w, h) in rects {
        b = b.u32(x).u32(y).u32(w).u32(h);
    }
    b.frame(ty::DAMAGE)
}

pub fn commit(window: u32, serial: u32) -> Vec<u8> {
    Body::new().u32(window).u32(serial).frame(ty::COMMIT)
}

pub fn request_state(window: u32, request: u32) -> Vec<u8> {
    Body::new()
        .u32(window)
        .u32(request)
        .frame(ty::REQUEST_STATE)
}

/// `clipboard_data` of kind 0 (text).
pub fn clipboard_text(serial: u32, text: &[u8]) -> Vec<u8> {
    Body::new()
        .u32(serial)
        .u32(0)
        .string(text)
        .frame(ty::CLIPBOARD_DATA)
}

pub fn pong(serial: u32) -> Vec<u8> {
    Body::new().u32(serial).frame(ty::PONG)
}

pub fn goodbye(reason: &[u8]) -> Vec<u8> {
    Body::new().string(reason).frame(ty::GOODBYE)
}

/// Pixels of one colour (0xRRGGBB, opaque), `w × h`, tightly packed.
pub fn solid(w: u32, h: u32, rgb: u32) -> Vec<u8> {
    let px = (0xff00_0000 | rgb).to_le_bytes();
    px.iter()
        .copied()
        .cycle()
        .take((w * h * 4) as usize)
        .collect()
}
