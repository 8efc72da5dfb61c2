//! Input and window management from the GUI domain: keyboard, pointer, configure, close.
//!
//! The GUI domain names a window; the agent checks the id against its own table (an unknown
//! id is ignored, never trusted) and delivers the event to the right surface of that window's
//! tree through Smithay's seat, with fresh serials. Positions arrive in buffer pixels relative
//! to the window's top-left corner and are turned into surface-local logical coordinates.

use smithay::backend::input::{AxisSource, ButtonState, KeyState};
use smithay::desktop::WindowSurfaceType;
use smithay::desktop::utils::under_from_surface_tree;
use smithay::input::keyboard::{FilterResult, Keycode};
use smithay::input::pointer::{AxisFrame, ButtonEvent, MotionEvent};
use smithay::reexports::wayland_protocols::xdg::shell::server::xdg_toplevel;
use smithay::utils::{Logical, Point, Rectangle, SERIAL_COUNTER};
use tracing::{debug, warn};

use corral_protocol::{
    AgentMessage, Axis, FixedPoint, GuiMessage, OptionalSize, Serial, WindowId, WindowStates,
};

use crate::focus::KeyboardFocusTarget;
use crate::state::AgentState;
use crate::windows::Role;

/// The `evdev` keycode offset of XKB keycodes.
const XKB_KEYCODE_OFFSET: u32 = 8;

/// Indices of XKB's real modifiers Lock (Caps Lock) and Mod2 (Num Lock): xkbcommon always
/// numbers the eight real modifiers first, in this order, so the GUI domain's masks use them.
const XKB_LOCK_BIT: u32 = 1 << 1;
const XKB_MOD2_BIT: u32 = 1 << 4;

impl AgentState {
    /// Applies the GUI domain's locked modifiers (Caps Lock, Num Lock). Held modifiers need no
    /// help: they arrive as key events. Locks toggled while another window (or another qube) had
    /// focus do not, so without this a qube would type lower case with Caps Lock on.
    fn locked_modifiers(&mut self, window: WindowId, locked: u32) {
        let Some(target) = self.keyboard_target(window) else {
            return;
        };
        let keyboard = self.keyboard.clone();
        let mut mods = keyboard.modifier_state();
        let caps_lock = locked & XKB_LOCK_BIT != 0;
        let num_lock = locked & XKB_MOD2_BIT != 0;
        if (mods.caps_lock, mods.num_lock) == (caps_lock, num_lock) {
            return;
        }
        mods.caps_lock = caps_lock;
        mods.num_lock = num_lock;
        keyboard.set_modifier_state(mods);
        // Smithay tells clients the modifiers on keyboard enter; re-enter so the focused client
        // learns the new locks before its next key.
        if keyboard.current_focus().as_ref() == Some(&target) {
            keyboard.set_focus(self, None, SERIAL_COUNTER.next_serial());
            keyboard.set_focus(self, Some(target), SERIAL_COUNTER.next_serial());
        }
    }

    /// Handles the GUI messages that act on one window or on the seat.
    pub fn handle_gui_input(&mut self, message: GuiMessage) {
        match message {
            GuiMessage::Keymap { keymap } => {
                let keyboard = self.keyboard.clone();
                if let Err(err) = keyboard.set_keymap_from_string(self, keymap) {
                    warn!(
                        ?err,
                        "the GUI domain's keymap could not be compiled; keeping the old one"
                    );
                }
            }
            GuiMessage::KeyboardEnter { window, .. } => {
                if let Some(target) = self.keyboard_target(window) {
                    let keyboard = self.keyboard.clone();
                    keyboard.set_focus(self, Some(target), SERIAL_COUNTER.next_serial());
                }
            }
            GuiMessage::KeyboardLeave { window } => {
                if self.keyboard_target(window).is_some() {
                    let keyboard = self.keyboard.clone();
                    keyboard.set_focus(self, None, SERIAL_COUNTER.next_serial());
                }
            }
            GuiMessage::Key {
                window,
                time_ms,
                keycode,
                pressed,
            } => self.key(window, time_ms, keycode, pressed),
            GuiMessage::Modifiers { window, locked, .. } => self.locked_modifiers(window, locked),
            GuiMessage::PointerEnter { window, position } => {
                self.pointer_motion(window, 0, position)
            }
            GuiMessage::PointerMotion {
                window,
                time_ms,
                position,
            } => self.pointer_motion(window, time_ms, position),
            GuiMessage::PointerLeave { window } => {
                if self.windows.get(window).is_some() {
                    let pointer = self.pointer.clone();
                    let location = pointer.current_location();
                    pointer.motion(
                        self,
                        None,
                        &MotionEvent {
                            location,
                            serial: SERIAL_COUNTER.next_serial(),
                            time: 0,
                        },
                    );
                    pointer.frame(self);
                }
                if self.pointer_window == Some(window) {
                    self.pointer_window = None;
                    self.pointer_position = None;
                }
            }
            GuiMessage::PointerButton {
                window,
                time_ms,
                button,
                pressed,
            } => {
                if self.windows.get(window).is_none() {
                    return;
                }
                let pointer = self.pointer.clone();
                pointer.button(
                    self,
                    &ButtonEvent {
                        serial: SERIAL_COUNTER.next_serial(),
                        time: time_ms,
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
            GuiMessage::PointerAxis {
                window,
                time_ms,
                axis,
                value_256ths,
                value120,
            } => {
                if self.windows.get(window).is_none() {
                    return;
                }
                let axis = match axis {
                    Axis::Vertical => smithay::backend::input::Axis::Vertical,
                    Axis::Horizontal => smithay::backend::input::Axis::Horizontal,
                };
                let scale = self.outputs.scale();
                let mut frame = AxisFrame::new(time_ms)
                    .source(if value120 != 0 {
                        AxisSource::Wheel
                    } else {
                        AxisSource::Finger
                    })
                    .value(axis, f64::from(value_256ths) / 256.0 / scale);
                if value120 != 0 {
                    frame = frame.v120(axis, value120);
                }
                let pointer = self.pointer.clone();
                pointer.axis(self, frame);
                pointer.frame(self);
            }
            GuiMessage::Configure {
                window,
                serial,
                size,
                states,
            } => self.configure(window, serial, size, states),
            GuiMessage::Close { window } => self.close(window),
            other => debug!(message = other.name(), "ignored"),
        }
    }

    /// The surface that gets keyboard input for `window`: its topmost grabbing popup, if any,
    /// else the window itself.
    pub fn keyboard_target(&self, window: WindowId) -> Option<KeyboardFocusTarget> {
        let mut current = self.windows.get(window)?;
        loop {
            let grabbing_child = self
                .windows
                .children_of(current.id)
                .into_iter()
                .rev()
                .filter_map(|id| self.windows.get(id))
                .find(|w| w.popup_grab);
            match grabbing_child {
                Some(child) => current = child,
                None => break,
            }
        }
        match &current.role {
            Role::X11(x11) => current
                .surface
                .clone()
                .map(|surface| KeyboardFocusTarget::X11(Box::new(x11.clone()), surface)),
            _ => current.surface.clone().map(KeyboardFocusTarget::Surface),
        }
    }

    fn key(&mut self, window: WindowId, time_ms: u32, keycode: u32, pressed: bool) {
        let Some(target) = self.keyboard_target(window) else {
            return;
        };
        let keyboard = self.keyboard.clone();
        if keyboard.current_focus().as_ref() != Some(&target) {
            // The GUI domain decides focus; follow it even if an enter was lost.
            keyboard.set_focus(self, Some(target), SERIAL_COUNTER.next_serial());
        }
        let Some(xkb_keycode) = keycode.checked_add(XKB_KEYCODE_OFFSET) else {
            return;
        };
        keyboard.input::<(), _>(
            self,
            Keycode::new(xkb_keycode),
            if pressed {
                KeyState::Pressed
            } else {
                KeyState::Released
            },
            SERIAL_COUNTER.next_serial(),
            time_ms,
            |_, _, _| FilterResult::Forward,
        );
    }

    /// Converts a position in the window's buffer pixels to its root surface's coordinates.
    fn window_point(&self, window: WindowId, position: FixedPoint) -> Option<Point<f64, Logical>> {
        let forwarded = self.windows.get(window)?;
        let geometry: Rectangle<i32, Logical> = forwarded.geometry();
        let scale = self.outputs.scale();
        Some(
            Point::from((position.x_f64() / scale, position.y_f64() / scale))
                + geometry.loc.to_f64(),
        )
    }

    /// The surfaces under a motionless pointer can change (a subsurface moves, a window is
    /// resized or remapped): re-picks the surface under the last position and sends it the
    /// pointer if it is not the one that has it. Called once per loop iteration.
    pub fn refresh_pointer_focus(&mut self) {
        let (Some(window), Some(position)) = (self.pointer_window, self.pointer_position) else {
            return;
        };
        let Some(point) = self.window_point(window, position) else {
            return;
        };
        let Some(root) = self.windows.get(window).and_then(|w| w.surface.clone()) else {
            return;
        };
        let under = under_from_surface_tree(&root, point, (0, 0), WindowSurfaceType::ALL);
        let current = self.pointer.current_focus();
        if under.as_ref().map(|(surface, _)| surface) == current.as_ref()
            && under.as_ref().map(|(_, origin)| *origin) == self.pointer_focus_origin
        {
            return;
        }
        self.pointer_focus_origin = under.as_ref().map(|(_, origin)| *origin);
        let pointer = self.pointer.clone();
        pointer.motion(
            self,
            under.map(|(surface, origin)| (surface, origin.to_f64())),
            &MotionEvent {
                location: point,
                serial: SERIAL_COUNTER.next_serial(),
                time: 0,
            },
        );
        pointer.frame(self);
    }

    fn pointer_motion(&mut self, window: WindowId, time_ms: u32, position: FixedPoint) {
        self.pointer_position = Some(position);
        let Some(point) = self.window_point(window, position) else {
            return;
        };
        let Some(root) = self.windows.get(window).and_then(|w| w.surface.clone()) else {
            return;
        };
        let under = under_from_surface_tree(&root, point, (0, 0), WindowSurfaceType::ALL);
        self.pointer_focus_origin = under.as_ref().map(|(_, origin)| *origin);
        let focus = under.map(|(surface, origin)| (surface, origin.to_f64()));
        self.pointer_window = Some(window);
        let pointer = self.pointer.clone();
        pointer.motion(
            self,
            focus,
            &MotionEvent {
                location: point,
                serial: SERIAL_COUNTER.next_serial(),
                time: time_ms,
            },
        );
        pointer.frame(self);
    }

    fn configure(
        &mut self,
        window: WindowId,
        serial: Serial,
        size: OptionalSize,
        states: WindowStates,
    ) {
        let scale = self.outputs.scale();
        let Some(forwarded) = self.windows.get_mut(window) else {
            return;
        };
        let logical_size = (size.width() > 0 && size.height() > 0).then(|| {
            smithay::utils::Size::<i32, smithay::utils::Physical>::from((
                size.width() as i32,
                size.height() as i32,
            ))
            .to_f64()
            .to_logical(scale)
            .to_i32_round::<i32>()
        });
        match forwarded.role.clone() {
            Role::Toplevel(toplevel) => {
                toplevel.with_pending_state(|pending| {
                    pending.size = logical_size;
                    for (flag, state) in [
                        (WindowStates::ACTIVATED, xdg_toplevel::State::Activated),
                        (WindowStates::MAXIMIZED, xdg_toplevel::State::Maximized),
                        (WindowStates::FULLSCREEN, xdg_toplevel::State::Fullscreen),
                        (WindowStates::RESIZING, xdg_toplevel::State::Resizing),
                    ] {
                        if states.contains(flag) {
                            pending.states.set(state);
                        } else {
                            pending.states.unset(state);
                        }
                    }
                });
                if toplevel.is_initial_configure_sent() {
                    let sent = toplevel.send_configure();
                    forwarded.pending_acks.push((sent, serial));
                } else {
                    // The client has not made its initial commit yet; the configure that
                    // answers it carries these values and this serial.
                    forwarded.deferred_configure = Some(serial);
                }
            }
            Role::X11(x11) => {
                let mut geometry = x11.geometry();
                if let Some(size) = logical_size {
                    geometry.size = size;
                }
                let _ = x11.set_activated(states.contains(WindowStates::ACTIVATED));
                let _ = x11.set_maximized(states.contains(WindowStates::MAXIMIZED));
                let _ = x11.set_fullscreen(states.contains(WindowStates::FULLSCREEN));
                if let Err(err) = x11.configure(geometry) {
                    warn!(%err, "configuring an X11 window failed");
                }
                // X11 has no acknowledgement: the window takes the size at once.
                self.link
                    .send(&AgentMessage::AckConfigure { window, serial });
            }
            Role::Popup(_) => {
                // Popups are placed by their positioner, not by the GUI domain.
            }
        }
    }

    fn close(&mut self, window: WindowId) {
        let Some(forwarded) = self.windows.get(window) else {
            return;
        };
        match &forwarded.role {
            Role::Toplevel(toplevel) => toplevel.send_close(),
            // Closing a popup is how the GUI domain dismisses a menu (a click elsewhere).
            Role::Popup(popup) => popup.send_popup_done(),
            Role::X11(x11) => {
                if let Err(err) = x11.close() {
                    warn!(%err, "closing an X11 window failed");
                }
            }
        }
    }
}
