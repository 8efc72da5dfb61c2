//! `xdg_wm_base`: toplevels and popups become protocol windows.
//!
//! Popups are placed by their positioner against the primary output's size (the size the GUI
//! domain reported), relative to the parent window's geometry origin, as `CreatePopup` says.
//! Move, resize, maximise, fullscreen and minimise requests are forwarded; the GUI domain
//! decides and answers with a configure.

use smithay::delegate_xdg_shell;
use smithay::reexports::wayland_server::protocol::{wl_output, wl_seat};
use smithay::utils::{Logical, Point, Rectangle, Serial};
use smithay::wayland::compositor::with_states;
use smithay::wayland::shell::xdg::{
    Configure, PopupSurface, PositionerState, ToplevelSurface, XdgShellHandler, XdgShellState,
    XdgToplevelSurfaceData,
};
use tracing::debug;

use corral_protocol::limits::{MAX_APP_ID_BYTES, MAX_TITLE_BYTES};
use corral_protocol::{AgentMessage, SanitizedText, StateRequest, WindowId};

use crate::focus::KeyboardFocusTarget;
use crate::state::AgentState;
use crate::windows::Role;

impl AgentState {
    /// Where a popup goes, relative to its parent's geometry origin: the positioner's
    /// placement, constrained to the output as seen from the toplevel at the output's origin.
    fn place_popup(
        &self,
        parent: WindowId,
        positioner: PositionerState,
    ) -> Rectangle<i32, Logical> {
        // The offset of the parent from its toplevel, for nested popups.
        let mut offset = Point::<i32, Logical>::from((0, 0));
        let mut current = self.windows.get(parent);
        while let Some(window) = current {
            if !window.is_popup() {
                break;
            }
            offset += window.popup_geometry.loc;
            current = window.parent.and_then(|p| self.windows.get(p));
        }
        let target = Rectangle::new(Point::default() - offset, self.outputs.logical_size());
        positioner.get_unconstrained_geometry(target)
    }

    /// Queues a state request; it is sent with the window's other metadata.
    pub fn request_state(&mut self, window: WindowId, request: StateRequest) {
        if let Some(forwarded) = self.windows.get_mut(window) {
            forwarded.state_requests.push(request);
            forwarded.dirty = true;
        }
    }

    fn toplevel_request_state(&mut self, toplevel: &ToplevelSurface, request: StateRequest) {
        if let Some(window) = self.windows.id_for_toplevel(toplevel) {
            self.request_state(window, request);
        }
    }

    fn refresh_title_and_app_id(&mut self, toplevel: &ToplevelSurface) {
        let Some(id) = self.windows.id_for_toplevel(toplevel) else {
            return;
        };
        let (untrusted_title, untrusted_app_id) = with_states(toplevel.wl_surface(), |states| {
            states
                .data_map
                .get::<XdgToplevelSurfaceData>()
                .and_then(|data| data.lock().ok())
                .map(|data| (data.title.clone(), data.app_id.clone()))
                .unwrap_or_default()
        });
        if let Some(window) = self.windows.get_mut(id) {
            window.title =
                SanitizedText::sanitize(untrusted_title.as_deref().unwrap_or(""), MAX_TITLE_BYTES);
            window.app_id = SanitizedText::sanitize(
                untrusted_app_id.as_deref().unwrap_or(""),
                MAX_APP_ID_BYTES,
            );
            window.dirty = true;
        }
    }

    /// Destroys a window: tells the GUI domain, then frees its pool.
    pub fn destroy_window(&mut self, id: WindowId) {
        for child in self.windows.children_of(id) {
            self.destroy_window(child);
        }
        let Some(window) = self.windows.remove(id) else {
            return;
        };
        if window.remote.announced {
            self.link.send(&AgentMessage::DestroyWindow { window: id });
            if let Some(buffer) = &window.remote.buffer {
                self.link
                    .send(&AgentMessage::PoolDestroy { pool: buffer.pool });
            }
        }
        if self.pointer_window == Some(id) {
            self.pointer_window = None;
            self.pointer_position = None;
        }
    }
}

impl XdgShellHandler for AgentState {
    fn xdg_shell_state(&mut self) -> &mut XdgShellState {
        &mut self.xdg_shell_state
    }

    fn new_toplevel(&mut self, surface: ToplevelSurface) {
        let root = surface.wl_surface().clone();
        let id = self
            .windows
            .insert(Role::Toplevel(surface.clone()), None, Some(root));
        debug!(window = %id, "new toplevel");
        self.refresh_title_and_app_id(&surface);
    }

    fn new_popup(&mut self, surface: PopupSurface, positioner: PositionerState) {
        let Some(parent) = surface
            .get_parent_surface()
            .and_then(|parent| self.windows.id_for_root(&parent))
        else {
            // A popup of something that is not a window (a layer surface, or a parent that
            // is already gone) cannot be shown; tell the client it was dismissed.
            surface.send_popup_done();
            return;
        };
        let geometry = self.place_popup(parent, positioner);
        surface.with_pending_state(|state| {
            state.geometry = geometry;
            state.positioner = positioner;
        });
        let root = surface.wl_surface().clone();
        let id = self
            .windows
            .insert(Role::Popup(surface), Some(parent), Some(root));
        if let Some(window) = self.windows.get_mut(id) {
            window.popup_geometry = geometry;
        }
        debug!(window = %id, %parent, ?geometry, "new popup");
    }

    fn grab(&mut self, surface: PopupSurface, _seat: wl_seat::WlSeat, _serial: Serial) {
        // The GUI domain owns the real grab; here the popup just takes keyboard input while
        // its toplevel has focus.
        let Some(id) = self.windows.id_for_root(surface.wl_surface()) else {
            return;
        };
        if let Some(window) = self.windows.get_mut(id) {
            window.popup_grab = true;
        }
        let mut toplevel = id;
        while let Some(parent) = self.windows.get(toplevel).and_then(|w| w.parent) {
            toplevel = parent;
        }
        let focused_toplevel = self.keyboard.current_focus().and_then(|focus| {
            let mut root = focus.wl_surface()?;
            while let Some(parent) = smithay::wayland::compositor::get_parent(&root) {
                root = parent;
            }
            let mut id = self.windows.id_for_root(&root)?;
            while let Some(parent) = self.windows.get(id).and_then(|w| w.parent) {
                id = parent;
            }
            Some(id)
        });
        if focused_toplevel == Some(toplevel) {
            let keyboard = self.keyboard.clone();
            keyboard.set_focus(
                self,
                Some(KeyboardFocusTarget::Surface(surface.wl_surface().clone())),
                smithay::utils::SERIAL_COUNTER.next_serial(),
            );
        }
    }

    fn reposition_request(
        &mut self,
        surface: PopupSurface,
        positioner: PositionerState,
        token: u32,
    ) {
        let Some(id) = self.windows.id_for_root(surface.wl_surface()) else {
            return;
        };
        let Some(parent) = self.windows.get(id).and_then(|w| w.parent) else {
            return;
        };
        let geometry = self.place_popup(parent, positioner);
        surface.with_pending_state(|state| {
            state.geometry = geometry;
            state.positioner = positioner;
        });
        surface.send_repositioned(token);
        if let Some(window) = self.windows.get_mut(id) {
            window.popup_geometry = geometry;
            window.dirty = true;
        }
    }

    fn ack_configure(
        &mut self,
        surface: smithay::reexports::wayland_server::protocol::wl_surface::WlSurface,
        configure: Configure,
    ) {
        let Configure::Toplevel(configure) = configure else {
            return;
        };
        let Some(id) = self.windows.id_for_root(&surface) else {
            return;
        };
        let Some(window) = self.windows.get_mut(id) else {
            return;
        };
        // Acking a configure implies every earlier one: answer the newest GUI serial that is
        // covered and forget the older ones.
        let Some(position) = window
            .pending_acks
            .iter()
            .position(|(sent, _)| *sent == configure.serial)
        else {
            return;
        };
        let (_, gui_serial) = window.pending_acks[position];
        window.pending_acks.drain(..=position);
        if window.remote.announced {
            self.link.send(&AgentMessage::AckConfigure {
                window: id,
                serial: gui_serial,
            });
        }
    }

    fn maximize_request(&mut self, surface: ToplevelSurface) {
        self.toplevel_request_state(&surface, StateRequest::Maximize);
    }

    fn unmaximize_request(&mut self, surface: ToplevelSurface) {
        self.toplevel_request_state(&surface, StateRequest::Unmaximize);
    }

    fn fullscreen_request(
        &mut self,
        surface: ToplevelSurface,
        _output: Option<wl_output::WlOutput>,
    ) {
        self.toplevel_request_state(&surface, StateRequest::Fullscreen);
    }

    fn unfullscreen_request(&mut self, surface: ToplevelSurface) {
        self.toplevel_request_state(&surface, StateRequest::Unfullscreen);
    }

    fn minimize_request(&mut self, surface: ToplevelSurface) {
        self.toplevel_request_state(&surface, StateRequest::Minimize);
    }

    fn title_changed(&mut self, surface: ToplevelSurface) {
        self.refresh_title_and_app_id(&surface);
    }

    fn app_id_changed(&mut self, surface: ToplevelSurface) {
        self.refresh_title_and_app_id(&surface);
    }

    fn toplevel_destroyed(&mut self, surface: ToplevelSurface) {
        if let Some(id) = self.windows.id_for_toplevel(&surface) {
            self.destroy_window(id);
        }
    }

    fn popup_destroyed(&mut self, surface: PopupSurface) {
        let Some(id) = self.windows.id_for_root(surface.wl_surface()) else {
            return;
        };
        let parent = self.windows.get(id).and_then(|w| w.parent);
        let had_keyboard = self
            .keyboard
            .current_focus()
            .and_then(|focus| focus.wl_surface())
            .as_ref()
            == Some(surface.wl_surface());
        self.destroy_window(id);
        if had_keyboard && let Some(parent) = parent {
            // Give the keyboard back to whatever is below the closed menu.
            let target = self.keyboard_target(parent);
            let keyboard = self.keyboard.clone();
            keyboard.set_focus(self, target, smithay::utils::SERIAL_COUNTER.next_serial());
        }
    }
}

delegate_xdg_shell!(AgentState);
