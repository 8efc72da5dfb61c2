//! The messages of the Corral GUI protocol, in both directions.
//!
//! Type numbers: agent → GUI messages use `0x0001..`, GUI → agent messages `0x8001..`, so a
//! message sent the wrong way is an unknown type. The layouts are in `docs/protocol.md` and in
//! [`crate::codec`].

use crate::text::SanitizedText;
use crate::types::{
    AppEntry, Axis, BufferLayout, Capabilities, ClipboardPayload, CloseReason, CursorShape,
    FixedPoint, InlinePixels, LaunchRequest, NotificationId, OptionalSize, OutputInfo, Point,
    PoolBacking, PoolId, Rect, Serial, Size, StateRequest, Urgency, Version, WindowId,
    WindowStates,
};

/// A message from an agent (inside a qube) to the GUI domain. Everything here was decoded from
/// untrusted bytes and validated; session rules (known ids, pool bounds, limits) are checked by
/// [`crate::session::AgentSession`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentMessage {
    /// First message on a connection.
    Hello {
        version: Version,
        capabilities: Capabilities,
    },
    /// The agent is closing the connection, with a reason for the log.
    Goodbye {
        reason: SanitizedText,
    },
    CreateToplevel {
        window: WindowId,
    },
    /// A popup (menu, tooltip) at `position` relative to its parent's top-left corner.
    CreatePopup {
        window: WindowId,
        parent: WindowId,
        position: Point,
        size: Size,
    },
    /// Moves or resizes a popup after its positioner was re-evaluated.
    RepositionPopup {
        window: WindowId,
        position: Point,
        size: Size,
    },
    /// Destroys a window and, with it, every popup below it.
    DestroyWindow {
        window: WindowId,
    },
    Map {
        window: WindowId,
    },
    Unmap {
        window: WindowId,
    },
    SetTitle {
        window: WindowId,
        title: SanitizedText,
    },
    SetAppId {
        window: WindowId,
        app_id: SanitizedText,
    },
    SizeHints {
        window: WindowId,
        min: OptionalSize,
        max: OptionalSize,
    },
    /// A pool of `size` bytes. With [`PoolBacking::MemFd`], the memfd travels with this message.
    PoolCreate {
        pool: PoolId,
        size: u64,
        backing: PoolBacking,
    },
    PoolDestroy {
        pool: PoolId,
    },
    /// Pixels written into an [`PoolBacking::Inline`] pool.
    PoolWrite {
        pool: PoolId,
        pixels: InlinePixels,
        compression: crate::types::Compression,
    },
    /// The window's content is now at `layout` in `pool`.
    Attach {
        window: WindowId,
        pool: PoolId,
        layout: BufferLayout,
    },
    /// Regions of the attached buffer that changed since the last commit, in buffer pixels.
    Damage {
        window: WindowId,
        rects: Vec<Rect>,
    },
    /// Applies the attach and damage sent since the last commit.
    Commit {
        window: WindowId,
        serial: Serial,
    },
    /// The client acknowledged the configure event with this serial.
    AckConfigure {
        window: WindowId,
        serial: Serial,
    },
    SetCursor {
        window: WindowId,
        shape: CursorShape,
    },
    /// Asks for the user's attention. Never moves focus.
    RequestAttention {
        window: WindowId,
    },
    RequestState {
        window: WindowId,
        request: StateRequest,
    },
    /// The reply to [`GuiMessage::ClipboardRequest`] with the same serial.
    ClipboardData {
        serial: Serial,
        payload: ClipboardPayload,
    },
    /// The qube has no selection to give.
    ClipboardEmpty {
        serial: Serial,
    },
    /// The qube's launchable applications, replacing any earlier list.
    AppList {
        apps: Vec<AppEntry>,
    },
    Pong {
        serial: Serial,
    },
    /// A desktop notification from an app of the qube (needs NOTIFICATIONS). A live `id`
    /// replaces that notification. Both texts are display text: shown plain, after the qube's
    /// trusted name, never as markup.
    Notify {
        id: NotificationId,
        urgency: Urgency,
        summary: SanitizedText,
        body: SanitizedText,
    },
    /// An app withdrew its notification (needs NOTIFICATIONS).
    CloseNotification {
        id: NotificationId,
    },
}

/// A message from the GUI domain to an agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GuiMessage {
    /// The answer to `Hello`: the negotiated version and capabilities, and the outputs.
    Welcome {
        version: Version,
        capabilities: Capabilities,
        outputs: Vec<OutputInfo>,
    },
    /// The GUI domain is closing the connection, with a reason a person can read.
    Goodbye {
        reason: SanitizedText,
    },
    OutputsChanged {
        outputs: Vec<OutputInfo>,
    },
    /// A new size and states for a window. Size 0×0 lets the client choose.
    Configure {
        window: WindowId,
        serial: Serial,
        size: OptionalSize,
        states: WindowStates,
    },
    /// The user asked to close the window.
    Close {
        window: WindowId,
    },
    /// The XKB keymap (text format v1) to use for all following keys.
    Keymap {
        keymap: String,
    },
    KeyboardEnter {
        window: WindowId,
        pressed_keys: Vec<u32>,
    },
    KeyboardLeave {
        window: WindowId,
    },
    /// A key, as a Linux evdev keycode.
    Key {
        window: WindowId,
        time_ms: u32,
        keycode: u32,
        pressed: bool,
    },
    Modifiers {
        window: WindowId,
        depressed: u32,
        latched: u32,
        locked: u32,
        group: u32,
    },
    PointerEnter {
        window: WindowId,
        position: FixedPoint,
    },
    PointerLeave {
        window: WindowId,
    },
    PointerMotion {
        window: WindowId,
        time_ms: u32,
        position: FixedPoint,
    },
    /// A button, as a Linux evdev button code (`BTN_LEFT` = 0x110).
    PointerButton {
        window: WindowId,
        time_ms: u32,
        button: u32,
        pressed: bool,
    },
    /// Scrolling: `value` in 1/256 px, `value120` in 1/120 of a wheel detent (0 for touchpads).
    PointerAxis {
        window: WindowId,
        time_ms: u32,
        axis: Axis,
        value_256ths: i32,
        value120: i32,
    },
    /// The window's last commit is on screen; clients may draw the next frame.
    FrameDone {
        window: WindowId,
        timestamp_ns: u64,
    },
    /// Asks for the qube's current selection. Only the reply with the newest serial counts.
    ClipboardRequest {
        serial: Serial,
    },
    /// Data the user pasted into this qube, to be offered as the qube's selection.
    ClipboardPaste {
        payload: ClipboardPayload,
    },
    Launch {
        request: LaunchRequest,
    },
    /// Asks for an `AppList`.
    ListApps,
    Ping {
        serial: Serial,
    },
    /// The GUI domain no longer uses the pool; the agent may free or reuse its memory.
    PoolReleased {
        pool: PoolId,
    },
    /// A notification of this qube is no longer shown (needs NOTIFICATIONS).
    NotificationClosed {
        id: NotificationId,
        reason: CloseReason,
    },
}

impl AgentMessage {
    /// The message's name, for logs and errors.
    pub fn name(&self) -> &'static str {
        crate::codec::agent_type_name(crate::codec::agent_type(self)).unwrap_or("?")
    }
}

impl GuiMessage {
    pub fn name(&self) -> &'static str {
        crate::codec::gui_type_name(crate::codec::gui_type(self)).unwrap_or("?")
    }
}
