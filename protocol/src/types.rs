//! Validated value types carried by messages.
//!
//! Each type can only hold values the protocol allows. Constructors return a
//! [`DecodeError`] for anything else, and the decoder builds messages only through them, so a
//! decoded message is valid by construction.

use std::num::NonZeroU32;

use bitflags::bitflags;

use crate::error::DecodeError;
use crate::limits::{
    MAX_COORDINATE, MAX_INLINE_PIXEL_BYTES, MAX_POOL_BYTES, MAX_SURFACE_DIMENSION,
};

/// A protocol version, `(major << 16) | minor` on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    pub major: u16,
    pub minor: u16,
}

impl Version {
    /// The version this crate speaks.
    pub const CURRENT: Version = Version { major: 1, minor: 0 };

    pub fn to_wire(self) -> u32 {
        (u32::from(self.major) << 16) | u32::from(self.minor)
    }

    pub fn from_wire(raw: u32) -> Self {
        Version {
            major: (raw >> 16) as u16,
            minor: (raw & 0xFFFF) as u16,
        }
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// Refusal of a peer's version, with a message a person can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "protocol version mismatch: this side speaks Corral GUI protocol {ours}, the other side speaks {theirs}; \
     the major versions must match (update the qube's corral-agent or the GUI domain so both speak {ours_major}.x)"
)]
pub struct VersionMismatch {
    pub ours: Version,
    pub theirs: Version,
    pub ours_major: u16,
}

/// Same major version required; the session runs at the smaller minor version.
pub fn negotiate_version(ours: Version, theirs: Version) -> Result<Version, VersionMismatch> {
    if ours.major != theirs.major {
        return Err(VersionMismatch {
            ours,
            theirs,
            ours_major: ours.major,
        });
    }
    Ok(Version {
        major: ours.major,
        minor: ours.minor.min(theirs.minor),
    })
}

bitflags! {
    /// Optional features a peer supports. Unknown bits from a newer peer are ignored, so
    /// capabilities can grow within a major version.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct Capabilities: u32 {
        /// Pools as sealed memfds passed with SCM_RIGHTS (the `unix` channel).
        const MEMFD_POOLS = 1 << 0;
        /// Pools filled by inline pixel writes (the `vsock` channel).
        const INLINE_PIXELS = 1 << 1;
        /// Inline pixel writes may be LZ4-compressed.
        const LZ4 = 1 << 2;
        /// Pools as Xen grant references (the `xen` channel).
        const XEN_GRANTS = 1 << 3;
        /// PNG images on the clipboard.
        const CLIPBOARD_PNG = 1 << 4;
        /// Desktop notifications from the qube (`notify`, `close_notification`,
        /// `notification_closed`). Channel-independent: both reference sides always offer it.
        const NOTIFICATIONS = 1 << 5;
    }
}

bitflags! {
    /// States of a toplevel, sent in configure events.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct WindowStates: u32 {
        const ACTIVATED = 1 << 0;
        const MAXIMIZED = 1 << 1;
        const FULLSCREEN = 1 << 2;
        const RESIZING = 1 << 3;
    }
}

macro_rules! nonzero_id {
    ($(#[$doc:meta])* $name:ident, $field:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(NonZeroU32);

        impl $name {
            pub fn new(raw: u32) -> Result<Self, DecodeError> {
                NonZeroU32::new(raw)
                    .map($name)
                    .ok_or_else(|| DecodeError::invalid($field, "must not be 0"))
            }
            pub fn get(self) -> u32 {
                self.0.get()
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}

nonzero_id!(
    /// A window (toplevel or popup), numbered by the agent, unique within one connection.
    WindowId,
    "window id"
);
nonzero_id!(
    /// A shared-memory pool, numbered by the agent, unique within one connection.
    PoolId,
    "pool id"
);
nonzero_id!(
    /// A desktop notification, numbered by the agent (the freedesktop notification id),
    /// unique among the connection's live notifications.
    NotificationId,
    "notification id"
);
nonzero_id!(
    /// An output (monitor) of the GUI domain.
    OutputId,
    "output id"
);

/// A request or event serial. Any value is allowed; meaning comes from matching.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Serial(pub u32);

/// A width and height, each `1..=16384`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Size {
    width: u32,
    height: u32,
}

impl Size {
    pub fn new(width: u32, height: u32) -> Result<Self, DecodeError> {
        check_dimension("width", width)?;
        check_dimension("height", height)?;
        Ok(Size { width, height })
    }
    pub fn width(self) -> u32 {
        self.width
    }
    pub fn height(self) -> u32 {
        self.height
    }
}

fn check_dimension(field: &'static str, value: u32) -> Result<(), DecodeError> {
    if value == 0 || value > MAX_SURFACE_DIMENSION {
        return Err(DecodeError::invalid(
            field,
            format!("{value} is outside 1..={MAX_SURFACE_DIMENSION}"),
        ));
    }
    Ok(())
}

/// A width and height where 0 means "not set": size hints and configure sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct OptionalSize {
    width: u32,
    height: u32,
}

impl OptionalSize {
    pub fn new(width: u32, height: u32) -> Result<Self, DecodeError> {
        for (field, v) in [("width", width), ("height", height)] {
            if v > MAX_SURFACE_DIMENSION {
                return Err(DecodeError::invalid(
                    field,
                    format!("{v} is above {MAX_SURFACE_DIMENSION}"),
                ));
            }
        }
        Ok(OptionalSize { width, height })
    }
    pub const UNSET: OptionalSize = OptionalSize {
        width: 0,
        height: 0,
    };
    pub fn width(self) -> u32 {
        self.width
    }
    pub fn height(self) -> u32 {
        self.height
    }
}

/// A position in pixels, each coordinate within ±32768.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Point {
    x: i32,
    y: i32,
}

impl Point {
    pub fn new(x: i32, y: i32) -> Result<Self, DecodeError> {
        for (field, v) in [("x", x), ("y", y)] {
            if !(-MAX_COORDINATE..=MAX_COORDINATE).contains(&v) {
                return Err(DecodeError::invalid(
                    field,
                    format!("{v} is outside ±{MAX_COORDINATE}"),
                ));
            }
        }
        Ok(Point { x, y })
    }
    pub fn x(self) -> i32 {
        self.x
    }
    pub fn y(self) -> i32 {
        self.y
    }
}

/// A surface-local position in 1/256 pixel (Wayland's `wl_fixed`), each within ±32768 pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FixedPoint {
    x: i32,
    y: i32,
}

impl FixedPoint {
    pub fn new(x_256ths: i32, y_256ths: i32) -> Result<Self, DecodeError> {
        let bound = MAX_COORDINATE * 256;
        for (field, v) in [("x", x_256ths), ("y", y_256ths)] {
            if !(-bound..=bound).contains(&v) {
                return Err(DecodeError::invalid(
                    field,
                    format!("{v}/256 px is outside ±{MAX_COORDINATE} px"),
                ));
            }
        }
        Ok(FixedPoint {
            x: x_256ths,
            y: y_256ths,
        })
    }
    pub fn from_f64(x: f64, y: f64) -> Result<Self, DecodeError> {
        let to_fixed = |v: f64| (v * 256.0).round().clamp(i32::MIN as f64, i32::MAX as f64) as i32;
        Self::new(to_fixed(x), to_fixed(y))
    }
    pub fn x_256ths(self) -> i32 {
        self.x
    }
    pub fn y_256ths(self) -> i32 {
        self.y
    }
    pub fn x_f64(self) -> f64 {
        f64::from(self.x) / 256.0
    }
    pub fn y_f64(self) -> f64 {
        f64::from(self.y) / 256.0
    }
}

/// A rectangle inside a buffer: non-empty, within `0..16384` on both axes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rect {
    x: u32,
    y: u32,
    width: u32,
    height: u32,
}

impl Rect {
    pub fn new(x: u32, y: u32, width: u32, height: u32) -> Result<Self, DecodeError> {
        check_dimension("rectangle width", width)?;
        check_dimension("rectangle height", height)?;
        let right = u64::from(x) + u64::from(width);
        let bottom = u64::from(y) + u64::from(height);
        if right > u64::from(MAX_SURFACE_DIMENSION) || bottom > u64::from(MAX_SURFACE_DIMENSION) {
            return Err(DecodeError::invalid(
                "rectangle",
                format!("{width}x{height}+{x}+{y} reaches past {MAX_SURFACE_DIMENSION}"),
            ));
        }
        Ok(Rect {
            x,
            y,
            width,
            height,
        })
    }
    pub fn x(self) -> u32 {
        self.x
    }
    pub fn y(self) -> u32 {
        self.y
    }
    pub fn width(self) -> u32 {
        self.width
    }
    pub fn height(self) -> u32 {
        self.height
    }
    /// The part of this rectangle inside a `width` × `height` buffer, if any.
    pub fn clamp_to(self, width: u32, height: u32) -> Option<Rect> {
        let right = (self.x + self.width).min(width);
        let bottom = (self.y + self.height).min(height);
        if self.x >= right || self.y >= bottom {
            return None;
        }
        Some(Rect {
            x: self.x,
            y: self.y,
            width: right - self.x,
            height: bottom - self.y,
        })
    }
}

/// Pixel layouts of shared buffers. Both are 4 bytes per pixel, little-endian, premultiplied,
/// matching `wl_shm` formats 0 and 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PixelFormat {
    Argb8888,
    Xrgb8888,
}

impl PixelFormat {
    pub const BYTES_PER_PIXEL: u32 = 4;

    pub fn to_wire(self) -> u32 {
        match self {
            PixelFormat::Argb8888 => 0,
            PixelFormat::Xrgb8888 => 1,
        }
    }
    pub fn from_wire(raw: u32) -> Result<Self, DecodeError> {
        match raw {
            0 => Ok(PixelFormat::Argb8888),
            1 => Ok(PixelFormat::Xrgb8888),
            other => Err(DecodeError::invalid(
                "pixel format",
                format!("unknown format {other}"),
            )),
        }
    }
}

/// Where a window's pixels are in a pool. The invariants hold for any pool: the layout fits in
/// [`MAX_POOL_BYTES`] without overflow; the session later checks it against the real pool size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BufferLayout {
    offset: u64,
    size: Size,
    stride: u32,
    format: PixelFormat,
}

impl BufferLayout {
    pub fn new(
        offset: u64,
        size: Size,
        stride: u32,
        format: PixelFormat,
    ) -> Result<Self, DecodeError> {
        let row_bytes = u64::from(size.width()) * u64::from(PixelFormat::BYTES_PER_PIXEL);
        if u64::from(stride) < row_bytes {
            return Err(DecodeError::invalid(
                "stride",
                format!("{stride} is smaller than a row of {row_bytes} bytes"),
            ));
        }
        if !offset.is_multiple_of(u64::from(PixelFormat::BYTES_PER_PIXEL)) {
            // Renderers read pixels in place as 32-bit words (Pixman): keep them aligned.
            return Err(DecodeError::invalid(
                "buffer offset",
                format!("{offset} is not a multiple of 4"),
            ));
        }
        if !stride.is_multiple_of(PixelFormat::BYTES_PER_PIXEL) {
            return Err(DecodeError::invalid(
                "stride",
                format!("{stride} is not a multiple of 4"),
            ));
        }
        if u64::from(stride) > u64::from(MAX_SURFACE_DIMENSION) * 4 {
            return Err(DecodeError::invalid(
                "stride",
                format!("{stride} is above {}", MAX_SURFACE_DIMENSION * 4),
            ));
        }
        let layout = BufferLayout {
            offset,
            size,
            stride,
            format,
        };
        if layout.end() > MAX_POOL_BYTES {
            return Err(DecodeError::invalid(
                "buffer",
                format!(
                    "ends at byte {}, past the largest pool ({MAX_POOL_BYTES})",
                    layout.end()
                ),
            ));
        }
        Ok(layout)
    }
    pub fn offset(self) -> u64 {
        self.offset
    }
    pub fn size(self) -> Size {
        self.size
    }
    pub fn stride(self) -> u32 {
        self.stride
    }
    pub fn format(self) -> PixelFormat {
        self.format
    }
    /// One past the last byte the buffer reads: the last row is only `width * 4` bytes long.
    /// Cannot overflow: the offset is below 2^30 (checked by the decoder), the span too.
    pub fn end(self) -> u64 {
        let span = u64::from(self.stride) * u64::from(self.size.height() - 1)
            + u64::from(self.size.width()) * u64::from(PixelFormat::BYTES_PER_PIXEL);
        self.offset.saturating_add(span)
    }
}

/// Rows of pixels written inline into a pool (channels that cannot share memory). The payload is
/// already decompressed and exactly `row_bytes * rows` long.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct InlinePixels {
    offset: u64,
    stride: u32,
    row_bytes: u32,
    rows: u32,
    data: Vec<u8>,
}

impl InlinePixels {
    pub fn new(
        offset: u64,
        stride: u32,
        row_bytes: u32,
        rows: u32,
        data: Vec<u8>,
    ) -> Result<Self, DecodeError> {
        if row_bytes == 0 || rows == 0 {
            return Err(DecodeError::invalid("inline pixels", "empty write"));
        }
        if stride < row_bytes {
            return Err(DecodeError::invalid(
                "inline pixels",
                format!("stride {stride} < row bytes {row_bytes}"),
            ));
        }
        let expected = u64::from(row_bytes) * u64::from(rows);
        if expected > MAX_INLINE_PIXEL_BYTES as u64 {
            return Err(DecodeError::invalid(
                "inline pixels",
                format!("{expected} bytes in one write; at most {MAX_INLINE_PIXEL_BYTES}"),
            ));
        }
        if data.len() as u64 != expected {
            return Err(DecodeError::invalid(
                "inline pixels",
                format!(
                    "{} bytes of data for {rows} rows of {row_bytes}",
                    data.len()
                ),
            ));
        }
        let pixels = InlinePixels {
            offset,
            stride,
            row_bytes,
            rows,
            data,
        };
        if pixels.end() > MAX_POOL_BYTES {
            return Err(DecodeError::invalid(
                "inline pixels",
                "write reaches past the largest pool",
            ));
        }
        Ok(pixels)
    }
    pub fn offset(&self) -> u64 {
        self.offset
    }
    pub fn stride(&self) -> u32 {
        self.stride
    }
    pub fn row_bytes(&self) -> u32 {
        self.row_bytes
    }
    pub fn rows(&self) -> u32 {
        self.rows
    }
    pub fn data(&self) -> &[u8] {
        &self.data
    }
    /// One past the last pool byte written.
    pub fn end(&self) -> u64 {
        self.offset.saturating_add(
            u64::from(self.stride) * u64::from(self.rows - 1) + u64::from(self.row_bytes),
        )
    }
}

/// How an inline pixel write is encoded on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    None,
    Lz4,
}

/// How a pool's memory reaches the GUI domain.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PoolBacking {
    /// A sealed memfd, passed with the message (SCM_RIGHTS).
    MemFd,
    /// Memory the GUI domain allocates itself, filled by [`crate::AgentMessage::PoolWrite`].
    Inline,
    /// Xen grant references, one per 4 KiB page, in order.
    XenGrants(Vec<u32>),
}

/// The fixed set of pointer cursor shapes a qube may ask for (names as in `wp_cursor_shape_v1`
/// and the CSS cursor set). A qube can never upload a cursor image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum CursorShape {
    Default = 0,
    ContextMenu,
    Help,
    Pointer,
    Progress,
    Wait,
    Cell,
    Crosshair,
    Text,
    VerticalText,
    Alias,
    Copy,
    Move,
    NoDrop,
    NotAllowed,
    Grab,
    Grabbing,
    EResize,
    NResize,
    NeResize,
    NwResize,
    SResize,
    SeResize,
    SwResize,
    WResize,
    EwResize,
    NsResize,
    NeswResize,
    NwseResize,
    ColResize,
    RowResize,
    AllScroll,
    ZoomIn,
    ZoomOut,
    /// No cursor while over this window.
    Hidden,
}

impl CursorShape {
    pub const ALL: [CursorShape; 35] = [
        CursorShape::Default,
        CursorShape::ContextMenu,
        CursorShape::Help,
        CursorShape::Pointer,
        CursorShape::Progress,
        CursorShape::Wait,
        CursorShape::Cell,
        CursorShape::Crosshair,
        CursorShape::Text,
        CursorShape::VerticalText,
        CursorShape::Alias,
        CursorShape::Copy,
        CursorShape::Move,
        CursorShape::NoDrop,
        CursorShape::NotAllowed,
        CursorShape::Grab,
        CursorShape::Grabbing,
        CursorShape::EResize,
        CursorShape::NResize,
        CursorShape::NeResize,
        CursorShape::NwResize,
        CursorShape::SResize,
        CursorShape::SeResize,
        CursorShape::SwResize,
        CursorShape::WResize,
        CursorShape::EwResize,
        CursorShape::NsResize,
        CursorShape::NeswResize,
        CursorShape::NwseResize,
        CursorShape::ColResize,
        CursorShape::RowResize,
        CursorShape::AllScroll,
        CursorShape::ZoomIn,
        CursorShape::ZoomOut,
        CursorShape::Hidden,
    ];

    pub fn to_wire(self) -> u32 {
        self as u32
    }
    pub fn from_wire(raw: u32) -> Result<Self, DecodeError> {
        Self::ALL
            .get(raw as usize)
            .copied()
            .ok_or_else(|| DecodeError::invalid("cursor shape", format!("unknown shape {raw}")))
    }
}

/// Window state changes a qube may ask for. The GUI domain decides (fullscreen is policy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StateRequest {
    Maximize,
    Unmaximize,
    Fullscreen,
    Unfullscreen,
    Minimize,
}

impl StateRequest {
    pub const ALL: [StateRequest; 5] = [
        StateRequest::Maximize,
        StateRequest::Unmaximize,
        StateRequest::Fullscreen,
        StateRequest::Unfullscreen,
        StateRequest::Minimize,
    ];
    pub fn to_wire(self) -> u32 {
        self as u32
    }
    pub fn from_wire(raw: u32) -> Result<Self, DecodeError> {
        Self::ALL
            .get(raw as usize)
            .copied()
            .ok_or_else(|| DecodeError::invalid("state request", format!("unknown request {raw}")))
    }
}

/// Data on the clipboard. Text is valid UTF-8 without NUL bytes; PNG starts with the PNG
/// signature (the image itself is decoded, bounded, by whoever displays or converts it).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ClipboardPayload {
    Text(String),
    Png(Vec<u8>),
}

/// The eight bytes every PNG file starts with.
pub const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n'];

impl ClipboardPayload {
    /// Builds text clipboard content, dropping NUL bytes (they truncate C strings in apps).
    pub fn text(text: &str) -> Self {
        ClipboardPayload::Text(text.replace('\0', ""))
    }
    pub fn len(&self) -> usize {
        match self {
            ClipboardPayload::Text(t) => t.len(),
            ClipboardPayload::Png(p) => p.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn kind_name(&self) -> &'static str {
        match self {
            ClipboardPayload::Text(_) => "text",
            ClipboardPayload::Png(_) => "png",
        }
    }
}

/// Pointer axes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Axis {
    Vertical,
    Horizontal,
}

/// One output of the GUI domain as a qube sees it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OutputInfo {
    pub id: OutputId,
    pub position: Point,
    pub size: Size,
    /// Scale in 1/120 (Wayland's fractional-scale unit): 120 is 1.0, 180 is 1.5.
    pub scale_120ths: Scale,
    /// Refresh rate in millihertz; 0 when unknown.
    pub refresh_mhz: u32,
    pub name: crate::SanitizedText,
}

/// An output scale in 1/120 steps, from 1.0 (120) to 8.0 (960).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Scale(u32);

impl Scale {
    pub const ONE: Scale = Scale(120);
    pub fn new(scale_120ths: u32) -> Result<Self, DecodeError> {
        if !(120..=960).contains(&scale_120ths) {
            return Err(DecodeError::invalid(
                "scale",
                format!("{scale_120ths}/120 is outside 1.0..=8.0"),
            ));
        }
        Ok(Scale(scale_120ths))
    }
    pub fn get(self) -> u32 {
        self.0
    }
}

/// A launchable application of a qube, from its `.desktop` entries.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AppEntry {
    pub id: crate::SanitizedText,
    pub name: crate::SanitizedText,
    pub icon: crate::SanitizedText,
}

/// What the GUI domain asks an agent to start.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LaunchRequest {
    /// An application by its desktop-entry id (as reported in the application list).
    App(String),
    /// An explicit command line (from the admin CLI). Arguments are UTF-8 without NUL bytes.
    Command(Vec<String>),
}

/// How urgent a notification is (the freedesktop `urgency` hint).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Urgency {
    Low,
    #[default]
    Normal,
    Critical,
}

impl Urgency {
    pub const ALL: [Urgency; 3] = [Urgency::Low, Urgency::Normal, Urgency::Critical];
    pub fn to_wire(self) -> u8 {
        self as u8
    }
    pub fn from_wire(raw: u8) -> Result<Self, DecodeError> {
        Self::ALL
            .get(raw as usize)
            .copied()
            .ok_or_else(|| DecodeError::invalid("urgency", format!("unknown urgency {raw}")))
    }
}

/// Why the GUI domain no longer shows a notification (the freedesktop `NotificationClosed`
/// reasons).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseReason {
    /// Its time was up.
    Expired,
    /// The user dismissed it.
    Dismissed,
    /// The agent asked (`close_notification`).
    Closed,
    /// Anything else: the GUI domain dropped it (a rate limit, a newer notification).
    Undefined,
}

impl CloseReason {
    pub const ALL: [CloseReason; 4] = [
        CloseReason::Expired,
        CloseReason::Dismissed,
        CloseReason::Closed,
        CloseReason::Undefined,
    ];
    /// The freedesktop reason code: 1 to 4.
    pub fn to_wire(self) -> u32 {
        self as u32 + 1
    }
    pub fn from_wire(raw: u32) -> Result<Self, DecodeError> {
        raw.checked_sub(1)
            .and_then(|i| Self::ALL.get(i as usize))
            .copied()
            .ok_or_else(|| DecodeError::invalid("close reason", format!("unknown reason {raw}")))
    }
}
