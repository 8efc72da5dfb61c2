//! Hard limits of the protocol.
//!
//! Every size a peer can name is bounded here, before anything is allocated. The limits are part
//! of the wire contract (see `docs/protocol.md`): a message that exceeds one is a protocol
//! violation, not something to clamp. Receivers may enforce *lower* limits (per-qube budgets),
//! which live in [`crate::session::SessionLimits`].

/// Largest window or buffer width or height, in pixels.
pub const MAX_SURFACE_DIMENSION: u32 = 16_384;
/// Largest title, in bytes of UTF-8, after the agent has truncated it.
pub const MAX_TITLE_BYTES: usize = 256;
/// Largest application id, in bytes of UTF-8.
pub const MAX_APP_ID_BYTES: usize = 256;
/// Largest free-form reason text (goodbye messages).
pub const MAX_REASON_BYTES: usize = 1_024;
/// Largest name of an application or icon in an application list entry.
pub const MAX_APP_NAME_BYTES: usize = 256;
/// Most entries in one application list.
pub const MAX_APP_ENTRIES: usize = 1_024;
/// Most damage rectangles in one message. An agent with more sends their bounding box.
pub const MAX_DAMAGE_RECTS: usize = 256;
/// Largest shared-memory pool, in bytes: one 16384 × 16384 ARGB buffer.
pub const MAX_POOL_BYTES: u64 = (MAX_SURFACE_DIMENSION as u64) * (MAX_SURFACE_DIMENSION as u64) * 4;
/// Most grant references for one Xen pool (`MAX_POOL_BYTES` in 4 KiB pages).
pub const MAX_GRANT_REFS: usize = (MAX_POOL_BYTES / 4096) as usize;
/// Hard ceiling of clipboard data, whatever the configuration says.
pub const MAX_CLIPBOARD_BYTES: usize = 16 * 1024 * 1024;
/// Default clipboard cap for text, as in Qubes (64 KiB).
pub const DEFAULT_CLIPBOARD_TEXT_BYTES: usize = 64 * 1024;
/// Largest keymap (XKB text format).
pub const MAX_KEYMAP_BYTES: usize = 1024 * 1024;
/// Most keys reported as pressed on keyboard enter.
pub const MAX_PRESSED_KEYS: usize = 256;
/// Most outputs described in one welcome or outputs-changed message.
pub const MAX_OUTPUTS: usize = 16;
/// Largest output name.
pub const MAX_OUTPUT_NAME_BYTES: usize = 64;
/// Most arguments in an explicit launch command.
pub const MAX_LAUNCH_ARGS: usize = 256;
/// Largest single argument of a launch command.
pub const MAX_LAUNCH_ARG_BYTES: usize = 4_096;
/// Largest pixel payload of one inline pool write, after decompression.
pub const MAX_INLINE_PIXEL_BYTES: usize = 4 * 1024 * 1024;
/// Largest message body. Every message type has its own, usually much smaller, bound.
pub const MAX_BODY_BYTES: usize = MAX_CLIPBOARD_BYTES + 64;
/// Size of the fixed message header: `u32 type`, `u32 body length`.
pub const HEADER_BYTES: usize = 8;
/// Most file descriptors a receiver holds that no message has claimed yet.
pub const MAX_PENDING_FDS: usize = 8;
/// Largest coordinate magnitude for positions (popup offsets, pointer positions), in pixels.
pub const MAX_COORDINATE: i32 = 2 * MAX_SURFACE_DIMENSION as i32;
/// Largest total of all arguments of one launch command.
pub const MAX_LAUNCH_TOTAL_BYTES: usize = 64 * 1024;
/// Largest notification summary (its first line, shown as the headline), in bytes of UTF-8.
pub const MAX_NOTIFICATION_SUMMARY_BYTES: usize = 256;
/// Largest notification body, in bytes of UTF-8. Markup is not interpreted: it is text.
pub const MAX_NOTIFICATION_BODY_BYTES: usize = 1_024;
