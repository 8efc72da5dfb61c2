//! The keyboard focus target: a Wayland surface, or an X11 window (which also needs the X
//! server's input focus set, done by Smithay's `X11Surface` target).

use std::borrow::Cow;

use smithay::backend::input::KeyState;
use smithay::input::Seat;
use smithay::input::keyboard::{KeyboardTarget, KeysymHandle, ModifiersState};
use smithay::reexports::wayland_server::protocol::wl_surface::WlSurface;
use smithay::utils::{IsAlive, Serial};
use smithay::wayland::seat::WaylandFocus;
use smithay::xwayland::X11Surface;

use crate::state::AgentState;

#[derive(Debug, Clone, PartialEq)]
pub enum KeyboardFocusTarget {
    Surface(WlSurface),
    /// An X11 window and its `wl_surface`. Smithay's `X11Surface` target sets the X input
    /// focus and forwards to the surface it knows; with Xwayland 22 it does not know it (the
    /// agent pairs them), so the keys then go to the surface here.
    X11(Box<X11Surface>, WlSurface),
}

impl KeyboardFocusTarget {
    /// The Wayland surface that receives the keys (an X11 window's once Xwayland made one).
    pub fn wl_surface(&self) -> Option<WlSurface> {
        match self {
            KeyboardFocusTarget::Surface(surface) => Some(surface.clone()),
            KeyboardFocusTarget::X11(_, surface) => Some(surface.clone()),
        }
    }
}

impl WaylandFocus for KeyboardFocusTarget {
    fn wl_surface(&self) -> Option<Cow<'_, WlSurface>> {
        KeyboardFocusTarget::wl_surface(self).map(Cow::Owned)
    }
}

impl IsAlive for KeyboardFocusTarget {
    fn alive(&self) -> bool {
        match self {
            KeyboardFocusTarget::Surface(s) => s.alive(),
            KeyboardFocusTarget::X11(x, s) => x.alive() && s.alive(),
        }
    }
}

impl KeyboardTarget<AgentState> for KeyboardFocusTarget {
    fn enter(
        &self,
        seat: &Seat<AgentState>,
        data: &mut AgentState,
        keys: Vec<KeysymHandle<'_>>,
        serial: Serial,
    ) {
        match self {
            KeyboardFocusTarget::Surface(s) => KeyboardTarget::enter(s, seat, data, keys, serial),
            KeyboardFocusTarget::X11(x, s) => {
                if x.wl_surface().is_some() {
                    KeyboardTarget::enter(&**x, seat, data, keys, serial)
                } else {
                    // Sets the X input focus only (it has no surface to forward to)...
                    KeyboardTarget::enter(&**x, seat, data, Vec::new(), serial);
                    // ...and the surface gets the enter.
                    KeyboardTarget::enter(s, seat, data, keys, serial)
                }
            }
        }
    }

    fn leave(&self, seat: &Seat<AgentState>, data: &mut AgentState, serial: Serial) {
        match self {
            KeyboardFocusTarget::Surface(s) => KeyboardTarget::leave(s, seat, data, serial),
            KeyboardFocusTarget::X11(x, s) => {
                KeyboardTarget::leave(&**x, seat, data, serial);
                if x.wl_surface().is_none() {
                    KeyboardTarget::leave(s, seat, data, serial)
                }
            }
        }
    }

    fn key(
        &self,
        seat: &Seat<AgentState>,
        data: &mut AgentState,
        key: KeysymHandle<'_>,
        state: KeyState,
        serial: Serial,
        time: u32,
    ) {
        match self {
            KeyboardFocusTarget::Surface(s) => {
                KeyboardTarget::key(s, seat, data, key, state, serial, time)
            }
            KeyboardFocusTarget::X11(x, s) => match x.wl_surface() {
                Some(_) => KeyboardTarget::key(&**x, seat, data, key, state, serial, time),
                None => KeyboardTarget::key(s, seat, data, key, state, serial, time),
            },
        }
    }

    fn modifiers(
        &self,
        seat: &Seat<AgentState>,
        data: &mut AgentState,
        modifiers: ModifiersState,
        serial: Serial,
    ) {
        match self {
            KeyboardFocusTarget::Surface(s) => {
                KeyboardTarget::modifiers(s, seat, data, modifiers, serial)
            }
            KeyboardFocusTarget::X11(x, s) => match x.wl_surface() {
                Some(_) => KeyboardTarget::modifiers(&**x, seat, data, modifiers, serial),
                None => KeyboardTarget::modifiers(s, seat, data, modifiers, serial),
            },
        }
    }
}
