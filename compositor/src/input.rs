//! Keyboard and pointer (decision 5: the compositor owns focus).
//!
//! - Focus moves only by the user: a click, a shortcut, the switcher, or `corral msg focus`.
//!   An agent can at most ask for attention.
//! - Keys go to the focused window's qube and no other, through Smithay's keyboard (XKB
//!   state, modifiers). Reserved shortcuts are consumed, press *and* release.
//! - On a focus change the old window gets a release for every key it saw pressed, then
//!   `keyboard_leave` (QSB-104); the new one gets `keyboard_enter` with no keys held, and a key
//!   pressed before the change never produces a release in it.
//! - Pointer events go to the window under the pointer, in its content coordinates (the frame
//!   is the compositor's: clicking the title bar moves, the border resizes).
//!
//! Device input (winit) and injected input (`corral msg key`, `pointer`) enter through the same
//! two functions, [`State::handle_key`] and the pointer functions.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use corral_protocol::{Axis, FixedPoint, GuiMessage, WindowId};
use smithay::backend::input::{ButtonState, KeyState};
use smithay::input::Seat;
use smithay::input::keyboard::{
    FilterResult, KeyboardTarget, Keycode, KeysymHandle, ModifiersState,
};
use smithay::input::pointer::{
    AxisFrame, ButtonEvent, GestureHoldBeginEvent, GestureHoldEndEvent, GesturePinchBeginEvent,
    GesturePinchEndEvent, GesturePinchUpdateEvent, GestureSwipeBeginEvent, GestureSwipeEndEvent,
    GestureSwipeUpdateEvent, MotionEvent, PointerTarget, RelativeMotionEvent,
};
use smithay::reexports::wayland_server::protocol::wl_surface::WlSurface;
use smithay::utils::{IsAlive, SERIAL_COUNTER, Serial};
use smithay::wayland::seat::WaylandFocus;
use std::borrow::Cow;

use crate::layout::{Hit, WinId};
use crate::qubes::ConnId;
use crate::state::State;

pub const BTN_LEFT: u32 = 0x110;
pub const BTN_RIGHT: u32 = 0x111;
pub const BTN_MIDDLE: u32 = 0x112;

/// Pixels a keyboard move or resize step takes.
pub const KEY_STEP: i32 = 32;

/// Something that can have keyboard or pointer focus: a qube window, or a surface of a
/// GUI-domain client.
#[derive(Debug, Clone, PartialEq)]
pub enum FocusTarget {
    Qube(QubeTarget),
    Local { win: WinId, surface: WlSurface },
}

impl FocusTarget {
    pub fn win(&self) -> WinId {
        match self {
            FocusTarget::Qube(t) => t.win,
            FocusTarget::Local { win, .. } => *win,
        }
    }
}

/// A qube window as a focus target.
#[derive(Debug, Clone)]
pub struct QubeTarget {
    pub win: WinId,
    pub conn: ConnId,
    pub window: WindowId,
    pub alive: Arc<AtomicBool>,
}

impl PartialEq for QubeTarget {
    fn eq(&self, other: &Self) -> bool {
        self.win == other.win
    }
}

impl IsAlive for QubeTarget {
    fn alive(&self) -> bool {
        self.alive.load(Ordering::Acquire)
    }
}

impl IsAlive for FocusTarget {
    fn alive(&self) -> bool {
        match self {
            FocusTarget::Qube(t) => t.alive(),
            FocusTarget::Local { surface, .. } => surface.alive(),
        }
    }
}

impl WaylandFocus for FocusTarget {
    fn wl_surface(&self) -> Option<Cow<'_, WlSurface>> {
        match self {
            FocusTarget::Qube(_) => None,
            FocusTarget::Local { surface, .. } => Some(Cow::Borrowed(surface)),
        }
    }
}

/// A move or resize with the pointer, started on a frame.
#[derive(Debug, Clone, Copy)]
pub enum Drag {
    Move {
        win: WinId,
        start_pointer: (f64, f64),
        start_pos: (i32, i32),
    },
    Resize {
        win: WinId,
        start_pointer: (f64, f64),
        start_size: (i32, i32),
        start_pos: (i32, i32),
        left: bool,
        top: bool,
        right: bool,
        bottom: bool,
    },
}

/// What the compositor tracks about input beyond Smithay's seat.
#[derive(Debug)]
pub struct InputState {
    pub pointer: (f64, f64),
    pub drag: Option<Drag>,
    /// Keys whose press was a reserved shortcut: their release is consumed too.
    pub suppressed: HashSet<u32>,
    /// Keys the focused window saw pressed (released toward it on focus change).
    pub forwarded: HashSet<u32>,
    pub buttons: HashSet<u32>,
    /// The shortcuts, from `[keybindings]` in the config.
    pub bindings: crate::config::bindings::Bindings,
}

impl InputState {
    pub fn new(pointer: (f64, f64)) -> Self {
        InputState {
            pointer,
            drag: None,
            suppressed: HashSet::new(),
            forwarded: HashSet::new(),
            buttons: HashSet::new(),
            bindings: crate::config::bindings::Bindings::default(),
        }
    }

    pub fn forget_window(&mut self, win: WinId) {
        if matches!(self.drag, Some(Drag::Move { win: w, .. } | Drag::Resize { win: w, .. }) if w == win)
        {
            self.drag = None;
        }
    }
}

/// What a reserved shortcut does (bound in `[keybindings]`, see `crate::config::bindings`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Consumed and nothing else (the Super key itself, unbound Super combinations).
    None,
    Copy,
    Paste,
    /// Opens the launcher (`crate::launcher`).
    Launcher,
    Switcher,
    /// Locks the session (`crate::lock`).
    Lock,
    ToggleMaximize,
    /// Fullscreen is drawn maximised with the frame kept (decision 4).
    Fullscreen,
    Minimize,
    Close,
    Screenshot,
    Workspace(u32),
    MoveToWorkspace(u32),
    MoveBy(i32, i32),
    ResizeBy(i32, i32),
}

/// Decides whether a key press is a reserved shortcut with the default keybindings (the
/// running compositor uses the config's, `InputState::bindings`). Any combination with Super
/// is reserved, bound or not.
pub fn reserved_action(mods: &ModifiersState, sym: u32) -> Option<Action> {
    crate::config::bindings::Bindings::default().action(mods, sym, sym)
}

impl State {
    /// One key event, from a device or injected: evdev `keycode`.
    pub fn handle_key(&mut self, keycode: u32, pressed: bool, time: u32) {
        // While locked every key goes to the lock screen (or the locker), none to a window.
        if self.lock_intercepts_key(keycode, pressed, time) {
            return;
        }
        // While the launcher is open every key is its (crate::launcher).
        if self.launcher_intercepts_key(keycode, pressed, time) {
            return;
        }
        let serial = SERIAL_COUNTER.next_serial();
        let state = if pressed {
            KeyState::Pressed
        } else {
            KeyState::Released
        };
        let keyboard = self.keyboard.clone();
        let action = keyboard.input(
            self,
            Keycode::new(keycode + 8),
            state,
            serial,
            time,
            |state, mods, handle: KeysymHandle<'_>| {
                if !pressed {
                    return if state.input.suppressed.remove(&keycode) {
                        FilterResult::Intercept(None)
                    } else {
                        FilterResult::Forward
                    };
                }
                let sym = handle.modified_sym().raw();
                let raw = handle.raw_syms().first().map(|s| s.raw()).unwrap_or(sym);
                match state.input.bindings.action(mods, sym, raw) {
                    Some(action) => {
                        state.input.suppressed.insert(keycode);
                        FilterResult::Intercept(Some(action))
                    }
                    None => FilterResult::Forward,
                }
            },
        );
        if let Some(Some(action)) = action {
            self.run_action(action);
        }
    }

    pub fn run_action(&mut self, action: Action) {
        let focus = self.layout.focus();
        match action {
            Action::None => {}
            Action::Copy => self.clipboard_copy(),
            Action::Paste => self.clipboard_paste(),
            Action::Lock => self.lock(crate::lock::LockReason::Shortcut),
            Action::Launcher => self.open_launcher(),
            Action::Screenshot => self.save_screenshot(),
            Action::Switcher => {
                self.layout.cycle_focus();
            }
            Action::ToggleMaximize | Action::Fullscreen => {
                if let Some(w) = focus {
                    self.layout.toggle_maximize(w);
                    self.send_configure(w);
                }
            }
            Action::Minimize => {
                if let Some(w) = focus {
                    self.layout.minimize(w);
                }
            }
            Action::Close => {
                if let Some(w) = focus {
                    self.request_close(w);
                }
            }
            Action::Workspace(n) => self.layout.switch_workspace(n),
            Action::MoveToWorkspace(n) => {
                if let Some(w) = focus {
                    self.layout.move_to_workspace(w, n);
                }
            }
            Action::MoveBy(dx, dy) => {
                if let Some(w) = focus {
                    self.layout.move_by(w, dx, dy);
                }
            }
            Action::ResizeBy(dw, dh) => {
                if let Some(w) = focus
                    && let Some(t) = self.layout.toplevel(w)
                {
                    let (width, height) = (t.width + dw, t.height + dh);
                    self.layout.resize(w, width, height);
                    self.send_configure(w);
                }
            }
        }
        self.sync_focus();
        self.queue_redraw();
    }

    /// Asks the window's qube to close it (the window goes when the agent destroys it).
    pub fn request_close(&mut self, win: WinId) {
        if let Some(local) = self.local_windows.get(&win) {
            local.toplevel.send_close();
            return;
        }
        if let Some((conn, id)) = self.qubes.window_mut(win) {
            let conn = conn.id;
            self.send_to(conn, &GuiMessage::Close { window: id });
        }
    }

    /// The user focuses a window (IPC `focus`, switcher, click).
    pub fn user_focus(&mut self, win: WinId) -> bool {
        let ok = self.layout.focus_window(win);
        self.sync_focus();
        self.queue_redraw();
        ok
    }

    /// Pointer moved to a global position.
    pub fn pointer_motion(&mut self, x: f64, y: f64, time: u32) {
        if self.lock_intercepts_motion(x, y, time) {
            return;
        }
        let (x, y) = self.clamp_to_outputs(x, y);
        self.input.pointer = (x, y);
        if let Some(drag) = self.input.drag {
            self.continue_drag(drag, x, y);
            return;
        }
        let under = self.content_under(x, y);
        let serial = SERIAL_COUNTER.next_serial();
        let pointer = self.pointer.clone();
        pointer.motion(
            self,
            under,
            &MotionEvent {
                location: (x, y).into(),
                serial,
                time,
            },
        );
        pointer.frame(self);
    }

    fn content_under(
        &self,
        x: f64,
        y: f64,
    ) -> Option<(
        FocusTarget,
        smithay::utils::Point<f64, smithay::utils::Logical>,
    )> {
        let (win, hit) = self.layout.hit(x, y)?;
        let Hit::Content { .. } = hit else {
            return None;
        };
        let content = self.layout.content_rect(win)?;
        Some((
            self.focus_target(win)?,
            (f64::from(content.x), f64::from(content.y)).into(),
        ))
    }

    /// A button (evdev code) at the current pointer position.
    pub fn pointer_button(&mut self, button: u32, pressed: bool, time: u32) {
        if self.lock_intercepts_button(button, pressed, time) {
            return;
        }
        let (x, y) = self.input.pointer;
        // A release whose press the trusted layer took is the trusted layer's too.
        if !pressed && self.panel_swallowed.remove(&button) {
            return;
        }
        // An open qube menu takes the next click (an entry, or anywhere to close it), and the
        // panel is the compositor's: a click on it never reaches a window.
        if pressed
            && self.input.buttons.is_empty()
            && (self.panel_menu_click(x, y) || self.panel_at(x, y).is_some())
        {
            if button == BTN_LEFT && self.panel_at(x, y).is_some() {
                self.panel_click(x, y);
            }
            self.panel_swallowed.insert(button);
            return;
        }
        if pressed {
            let first = self.input.buttons.is_empty();
            self.input.buttons.insert(button);
            if first {
                match self.layout.hit(x, y) {
                    Some((win, hit)) => {
                        self.layout.focus_window(win);
                        self.sync_focus();
                        self.queue_redraw();
                        let toplevel = self.layout.popup(win).map_or(win, |p| p.toplevel);
                        if button == BTN_LEFT {
                            self.start_drag(toplevel, hit, x, y);
                        }
                        if self.input.drag.is_some() {
                            return;
                        }
                        if !matches!(hit, Hit::Content { .. }) {
                            return;
                        }
                    }
                    None => {
                        // A click on the background drops focus.
                        self.layout.clear_focus();
                        self.sync_focus();
                        return;
                    }
                }
            } else if self.input.drag.is_some() {
                return;
            }
        } else {
            self.input.buttons.remove(&button);
            if self.input.drag.is_some() {
                if self.input.buttons.is_empty() {
                    self.input.drag = None;
                }
                return;
            }
        }
        let serial = SERIAL_COUNTER.next_serial();
        let pointer = self.pointer.clone();
        pointer.button(
            self,
            &ButtonEvent {
                serial,
                time,
                button,
                state: if pressed {
                    ButtonState::Pressed
                } else {
                    ButtonState::Released
                },
            },
        );
        pointer.frame(self);
    }

    /// Scrolling at the pointer.
    /// A backend's scroll event: its amounts in pixels (a wheel's 120ths become 15 px a notch
    /// where the device gives no pixel amount), then [`State::pointer_axis`].
    pub fn pointer_axis_event<B, E>(&mut self, event: &E)
    where
        B: smithay::backend::input::InputBackend,
        E: smithay::backend::input::PointerAxisEvent<B>,
    {
        use smithay::backend::input::Axis;
        let amount = |axis| {
            event
                .amount(axis)
                .or_else(|| event.amount_v120(axis).map(|v| v * 15.0 / 120.0))
                .unwrap_or(0.0)
        };
        self.pointer_axis(
            amount(Axis::Vertical),
            amount(Axis::Horizontal),
            event.time_msec(),
        );
    }

    pub fn pointer_axis(&mut self, vertical: f64, horizontal: f64, time: u32) {
        if self.lock_intercepts_axis() {
            return;
        }
        // On udev, libinput devices do natural scrolling themselves (backend/udev.rs): flipping
        // here too would cancel it.
        let software_flip = self.settings.loaded.config.input.natural_scrolling
            && !matches!(self.backend, crate::backend::Backend::Udev(_));
        let (vertical, horizontal) = if software_flip {
            (-vertical, -horizontal)
        } else {
            (vertical, horizontal)
        };
        let pointer = self.pointer.clone();
        let mut frame = AxisFrame::new(time);
        if vertical != 0.0 {
            frame = frame.value(smithay::backend::input::Axis::Vertical, vertical);
        }
        if horizontal != 0.0 {
            frame = frame.value(smithay::backend::input::Axis::Horizontal, horizontal);
        }
        pointer.axis(self, frame);
        pointer.frame(self);
    }

    fn start_drag(&mut self, win: WinId, hit: Hit, x: f64, y: f64) {
        let Some(t) = self.layout.toplevel(win) else {
            return;
        };
        if t.maximized.is_some() {
            return;
        }
        self.input.drag = match hit {
            Hit::Title => Some(Drag::Move {
                win,
                start_pointer: (x, y),
                start_pos: (t.x, t.y),
            }),
            Hit::Border {
                left,
                top,
                right,
                bottom,
            } if left || top || right || bottom => Some(Drag::Resize {
                win,
                start_pointer: (x, y),
                start_size: (t.width, t.height),
                start_pos: (t.x, t.y),
                left,
                top,
                right,
                bottom,
            }),
            _ => None,
        };
    }

    fn continue_drag(&mut self, drag: Drag, x: f64, y: f64) {
        match drag {
            Drag::Move {
                win,
                start_pointer,
                start_pos,
            } => {
                let dx = (x - start_pointer.0).round() as i32;
                let dy = (y - start_pointer.1).round() as i32;
                self.layout.move_to(win, start_pos.0 + dx, start_pos.1 + dy);
            }
            Drag::Resize {
                win,
                start_pointer,
                start_size,
                start_pos,
                left,
                top,
                right,
                bottom,
            } => {
                let dx = (x - start_pointer.0).round() as i32;
                let dy = (y - start_pointer.1).round() as i32;
                let mut w = start_size.0;
                let mut h = start_size.1;
                if right {
                    w += dx;
                }
                if left {
                    w -= dx;
                }
                if bottom {
                    h += dy;
                }
                if top {
                    h -= dy;
                }
                if let Some((nw, nh)) = self.layout.resize(win, w, h) {
                    // Keep the opposite edge where it was.
                    let nx = if left {
                        start_pos.0 + start_size.0 - nw
                    } else {
                        start_pos.0
                    };
                    let ny = if top {
                        start_pos.1 + start_size.1 - nh
                    } else {
                        start_pos.1
                    };
                    if left || top {
                        self.layout.move_to(win, nx, ny);
                    }
                }
                self.send_configure(win);
            }
        }
        self.queue_redraw();
    }

    /// Keeps the pointer on an output.
    pub(crate) fn clamp_to_outputs(&self, x: f64, y: f64) -> (f64, f64) {
        if self.layout.output_at(x, y).is_some() {
            return (x, y);
        }
        let mut best = (x, y);
        let mut best_d = f64::INFINITY;
        for o in self.layout.outputs() {
            let r = o.rect;
            let cx = x.clamp(f64::from(r.x), f64::from(r.right() - 1));
            let cy = y.clamp(f64::from(r.y), f64::from(r.bottom() - 1));
            let d = (cx - x).powi(2) + (cy - y).powi(2);
            if d < best_d {
                best_d = d;
                best = (cx, cy);
            }
        }
        best
    }
}

/// Parses a key combination such as `ctrl+shift+c`, `a`, `Return`, `super+1` into evdev codes:
/// modifiers first, the key last.
pub fn parse_combo(combo: &str) -> Result<Vec<u32>, String> {
    let parts: Vec<&str> = combo.split('+').map(str::trim).collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(format!(
            "{combo:?} is not a key combination (like ctrl+shift+c)"
        ));
    }
    let mut codes = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        let code = if last {
            key_code(part).or_else(|| modifier_code(part))
        } else {
            modifier_code(part)
        };
        codes.push(code.ok_or_else(|| {
            if last {
                format!("unknown key {part:?} (letters, digits, F1-F12, Return, Escape, Tab, space, BackSpace, Delete, Up, Down, Left, Right, Home, End, Page_Up, Page_Down, Print)")
            } else {
                format!("unknown modifier {part:?} (ctrl, shift, alt, super)")
            }
        })?);
    }
    Ok(codes)
}

fn modifier_code(name: &str) -> Option<u32> {
    Some(match name.to_ascii_lowercase().as_str() {
        "ctrl" | "control" => 29,
        "shift" => 42,
        "alt" => 56,
        "super" | "logo" | "meta" | "mod4" => 125,
        "altgr" => 100,
        _ => return None,
    })
}

/// Evdev codes of the keys `corral msg key` knows (US layout positions).
pub fn key_code(name: &str) -> Option<u32> {
    const LETTERS: &[(char, u32)] = &[
        ('q', 16),
        ('w', 17),
        ('e', 18),
        ('r', 19),
        ('t', 20),
        ('y', 21),
        ('u', 22),
        ('i', 23),
        ('o', 24),
        ('p', 25),
        ('a', 30),
        ('s', 31),
        ('d', 32),
        ('f', 33),
        ('g', 34),
        ('h', 35),
        ('j', 36),
        ('k', 37),
        ('l', 38),
        ('z', 44),
        ('x', 45),
        ('c', 46),
        ('v', 47),
        ('b', 48),
        ('n', 49),
        ('m', 50),
    ];
    let mut chars = name.chars();
    if let (Some(c), None) = (chars.next(), chars.next()) {
        let c = c.to_ascii_lowercase();
        if let Some((_, code)) = LETTERS.iter().find(|(l, _)| *l == c) {
            return Some(*code);
        }
        if let Some(d) = c.to_digit(10) {
            return Some(if d == 0 { 11 } else { d + 1 });
        }
        return match c {
            '-' => Some(12),
            '=' => Some(13),
            '[' => Some(26),
            ']' => Some(27),
            ';' => Some(39),
            '\'' => Some(40),
            '`' => Some(41),
            '\\' => Some(43),
            ',' => Some(51),
            '.' => Some(52),
            '/' => Some(53),
            ' ' => Some(57),
            _ => None,
        };
    }
    let lower = name.to_ascii_lowercase();
    if let Some(n) = lower.strip_prefix('f').and_then(|n| n.parse::<u32>().ok()) {
        return match n {
            1..=10 => Some(58 + n),
            11 => Some(87),
            12 => Some(88),
            _ => None,
        };
    }
    Some(match lower.as_str() {
        "return" | "enter" => 28,
        "escape" | "esc" => 1,
        "tab" => 15,
        "space" => 57,
        "backspace" => 14,
        "delete" => 111,
        "insert" => 110,
        "up" => 103,
        "down" => 108,
        "left" => 105,
        "right" => 106,
        "home" => 102,
        "end" => 107,
        "page_up" | "pageup" | "prior" => 104,
        "page_down" | "pagedown" | "next" => 109,
        "print" | "sysrq" => 99,
        "minus" => 12,
        "equal" => 13,
        _ => return None,
    })
}

fn fixed(location: smithay::utils::Point<f64, smithay::utils::Logical>) -> FixedPoint {
    let clamp = |v: f64| v.clamp(-32768.0, 32768.0);
    FixedPoint::from_f64(clamp(location.x), clamp(location.y)).unwrap_or_default()
}

impl KeyboardTarget<State> for QubeTarget {
    fn enter(
        &self,
        _seat: &Seat<State>,
        data: &mut State,
        _keys: Vec<KeysymHandle<'_>>,
        _serial: Serial,
    ) {
        // Keys held now were pressed for someone else: the new window learns none of them.
        data.input.forwarded.clear();
        data.send_input(
            self.conn,
            GuiMessage::KeyboardEnter {
                window: self.window,
                pressed_keys: Vec::new(),
            },
        );
    }

    fn leave(&self, _seat: &Seat<State>, data: &mut State, _serial: Serial) {
        // QSB-104: release toward the old focus every key it saw pressed.
        let time = data.now_ms();
        let keys: Vec<u32> = data.input.forwarded.drain().collect();
        for keycode in keys {
            data.send_input(
                self.conn,
                GuiMessage::Key {
                    window: self.window,
                    time_ms: time,
                    keycode,
                    pressed: false,
                },
            );
        }
        data.send_input(
            self.conn,
            GuiMessage::KeyboardLeave {
                window: self.window,
            },
        );
    }

    fn key(
        &self,
        _seat: &Seat<State>,
        data: &mut State,
        key: KeysymHandle<'_>,
        state: KeyState,
        _serial: Serial,
        time: u32,
    ) {
        let keycode = key.raw_code().raw().saturating_sub(8);
        let pressed = state == KeyState::Pressed;
        if pressed {
            data.input.forwarded.insert(keycode);
        } else if !data.input.forwarded.remove(&keycode) {
            // Pressed before this window had focus: its release is not this window's business.
            return;
        }
        data.send_input(
            self.conn,
            GuiMessage::Key {
                window: self.window,
                time_ms: time,
                keycode,
                pressed,
            },
        );
    }

    fn modifiers(
        &self,
        _seat: &Seat<State>,
        data: &mut State,
        modifiers: ModifiersState,
        _serial: Serial,
    ) {
        let m = modifiers.serialized;
        data.send_input(
            self.conn,
            GuiMessage::Modifiers {
                window: self.window,
                depressed: m.depressed,
                latched: m.latched,
                locked: m.locked,
                group: m.layout_effective,
            },
        );
    }
}

impl PointerTarget<State> for QubeTarget {
    fn enter(&self, _seat: &Seat<State>, data: &mut State, event: &MotionEvent) {
        data.send_input(
            self.conn,
            GuiMessage::PointerEnter {
                window: self.window,
                position: fixed(event.location),
            },
        );
    }

    fn motion(&self, _seat: &Seat<State>, data: &mut State, event: &MotionEvent) {
        data.send_input(
            self.conn,
            GuiMessage::PointerMotion {
                window: self.window,
                time_ms: event.time,
                position: fixed(event.location),
            },
        );
    }

    fn relative_motion(
        &self,
        _seat: &Seat<State>,
        _data: &mut State,
        _event: &RelativeMotionEvent,
    ) {
    }

    fn button(&self, _seat: &Seat<State>, data: &mut State, event: &ButtonEvent) {
        data.send_input(
            self.conn,
            GuiMessage::PointerButton {
                window: self.window,
                time_ms: event.time,
                button: event.button,
                pressed: event.state == ButtonState::Pressed,
            },
        );
    }

    fn axis(&self, _seat: &Seat<State>, data: &mut State, frame: AxisFrame) {
        // Smithay keeps (horizontal, vertical).
        let v120 = frame.v120.unwrap_or((0, 0));
        for (axis, value, v120) in [
            (Axis::Vertical, frame.axis.1, v120.1),
            (Axis::Horizontal, frame.axis.0, v120.0),
        ] {
            if value == 0.0 && v120 == 0 {
                continue;
            }
            data.send_input(
                self.conn,
                GuiMessage::PointerAxis {
                    window: self.window,
                    time_ms: frame.time,
                    axis,
                    value_256ths: (value * 256.0).clamp(f64::from(i32::MIN), f64::from(i32::MAX))
                        as i32,
                    value120: v120,
                },
            );
        }
    }

    fn frame(&self, _seat: &Seat<State>, _data: &mut State) {}

    fn gesture_swipe_begin(&self, _: &Seat<State>, _: &mut State, _: &GestureSwipeBeginEvent) {}
    fn gesture_swipe_update(&self, _: &Seat<State>, _: &mut State, _: &GestureSwipeUpdateEvent) {}
    fn gesture_swipe_end(&self, _: &Seat<State>, _: &mut State, _: &GestureSwipeEndEvent) {}
    fn gesture_pinch_begin(&self, _: &Seat<State>, _: &mut State, _: &GesturePinchBeginEvent) {}
    fn gesture_pinch_update(&self, _: &Seat<State>, _: &mut State, _: &GesturePinchUpdateEvent) {}
    fn gesture_pinch_end(&self, _: &Seat<State>, _: &mut State, _: &GesturePinchEndEvent) {}
    fn gesture_hold_begin(&self, _: &Seat<State>, _: &mut State, _: &GestureHoldBeginEvent) {}
    fn gesture_hold_end(&self, _: &Seat<State>, _: &mut State, _: &GestureHoldEndEvent) {}

    fn leave(&self, _seat: &Seat<State>, data: &mut State, _serial: Serial, _time: u32) {
        data.send_input(
            self.conn,
            GuiMessage::PointerLeave {
                window: self.window,
            },
        );
    }
}

macro_rules! delegate {
    ($self:ident, $trait:ident :: $method:ident ( $($arg:expr),* )) => {
        match $self {
            FocusTarget::Qube(t) => $trait::<State>::$method(t, $($arg),*),
            FocusTarget::Local { surface, .. } => $trait::<State>::$method(surface, $($arg),*),
        }
    };
}

impl KeyboardTarget<State> for FocusTarget {
    fn enter(
        &self,
        seat: &Seat<State>,
        data: &mut State,
        keys: Vec<KeysymHandle<'_>>,
        serial: Serial,
    ) {
        delegate!(self, KeyboardTarget::enter(seat, data, keys, serial))
    }
    fn leave(&self, seat: &Seat<State>, data: &mut State, serial: Serial) {
        delegate!(self, KeyboardTarget::leave(seat, data, serial))
    }
    fn key(
        &self,
        seat: &Seat<State>,
        data: &mut State,
        key: KeysymHandle<'_>,
        state: KeyState,
        serial: Serial,
        time: u32,
    ) {
        delegate!(
            self,
            KeyboardTarget::key(seat, data, key, state, serial, time)
        )
    }
    fn modifiers(
        &self,
        seat: &Seat<State>,
        data: &mut State,
        modifiers: ModifiersState,
        serial: Serial,
    ) {
        delegate!(
            self,
            KeyboardTarget::modifiers(seat, data, modifiers, serial)
        )
    }
}

impl PointerTarget<State> for FocusTarget {
    fn enter(&self, seat: &Seat<State>, data: &mut State, event: &MotionEvent) {
        delegate!(self, PointerTarget::enter(seat, data, event))
    }
    fn motion(&self, seat: &Seat<State>, data: &mut State, event: &MotionEvent) {
        delegate!(self, PointerTarget::motion(seat, data, event))
    }
    fn relative_motion(&self, seat: &Seat<State>, data: &mut State, event: &RelativeMotionEvent) {
        delegate!(self, PointerTarget::relative_motion(seat, data, event))
    }
    fn button(&self, seat: &Seat<State>, data: &mut State, event: &ButtonEvent) {
        delegate!(self, PointerTarget::button(seat, data, event))
    }
    fn axis(&self, seat: &Seat<State>, data: &mut State, frame: AxisFrame) {
        delegate!(self, PointerTarget::axis(seat, data, frame))
    }
    fn frame(&self, seat: &Seat<State>, data: &mut State) {
        delegate!(self, PointerTarget::frame(seat, data))
    }
    fn gesture_swipe_begin(
        &self,
        seat: &Seat<State>,
        data: &mut State,
        event: &GestureSwipeBeginEvent,
    ) {
        delegate!(self, PointerTarget::gesture_swipe_begin(seat, data, event))
    }
    fn gesture_swipe_update(
        &self,
        seat: &Seat<State>,
        data: &mut State,
        event: &GestureSwipeUpdateEvent,
    ) {
        delegate!(self, PointerTarget::gesture_swipe_update(seat, data, event))
    }
    fn gesture_swipe_end(
        &self,
        seat: &Seat<State>,
        data: &mut State,
        event: &GestureSwipeEndEvent,
    ) {
        delegate!(self, PointerTarget::gesture_swipe_end(seat, data, event))
    }
    fn gesture_pinch_begin(
        &self,
        seat: &Seat<State>,
        data: &mut State,
        event: &GesturePinchBeginEvent,
    ) {
        delegate!(self, PointerTarget::gesture_pinch_begin(seat, data, event))
    }
    fn gesture_pinch_update(
        &self,
        seat: &Seat<State>,
        data: &mut State,
        event: &GesturePinchUpdateEvent,
    ) {
        delegate!(self, PointerTarget::gesture_pinch_update(seat, data, event))
    }
    fn gesture_pinch_end(
        &self,
        seat: &Seat<State>,
        data: &mut State,
        event: &GesturePinchEndEvent,
    ) {
        delegate!(self, PointerTarget::gesture_pinch_end(seat, data, event))
    }
    fn gesture_hold_begin(
        &self,
        seat: &Seat<State>,
        data: &mut State,
        event: &GestureHoldBeginEvent,
    ) {
        delegate!(self, PointerTarget::gesture_hold_begin(seat, data, event))
    }
    fn gesture_hold_end(&self, seat: &Seat<State>, data: &mut State, event: &GestureHoldEndEvent) {
        delegate!(self, PointerTarget::gesture_hold_end(seat, data, event))
    }
    fn leave(&self, seat: &Seat<State>, data: &mut State, serial: Serial, time: u32) {
        delegate!(self, PointerTarget::leave(seat, data, serial, time))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smithay::input::keyboard::keysyms;

    #[test]
    fn combos_parse_to_evdev_codes() {
        assert_eq!(parse_combo("ctrl+shift+c").unwrap(), vec![29, 42, 46]);
        assert_eq!(parse_combo("a").unwrap(), vec![30]);
        assert_eq!(parse_combo("Return").unwrap(), vec![28]);
        assert_eq!(parse_combo("super+1").unwrap(), vec![125, 2]);
        assert_eq!(parse_combo("F12").unwrap(), vec![88]);
        assert!(parse_combo("hyper+a").is_err());
        assert!(parse_combo("ctrl+").is_err());
        assert!(parse_combo("ctrl+nosuchkey").is_err());
    }

    #[test]
    fn reserved_shortcuts() {
        let mut mods = ModifiersState::default();
        assert_eq!(reserved_action(&mods, keysyms::KEY_c), None);
        mods.ctrl = true;
        mods.shift = true;
        assert_eq!(reserved_action(&mods, keysyms::KEY_C), Some(Action::Copy));
        assert_eq!(reserved_action(&mods, keysyms::KEY_v), Some(Action::Paste));
        let logo = ModifiersState {
            logo: true,
            ..ModifiersState::default()
        };
        assert_eq!(
            reserved_action(&logo, keysyms::KEY_2),
            Some(Action::Workspace(2))
        );
        assert_eq!(reserved_action(&logo, keysyms::KEY_x), Some(Action::None));
        assert_eq!(
            reserved_action(&ModifiersState::default(), keysyms::KEY_Super_L),
            Some(Action::None)
        );
    }
}
