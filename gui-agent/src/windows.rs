//! The table of windows the agent forwards, and what the GUI domain currently knows of each.
//!
//! Every xdg toplevel, xdg popup and X11 window gets a protocol [`WindowId`]. The *desired*
//! state (title, app id, size hints, popup placement, pixels) lives next to the state last
//! *sent* ([`RemoteState`]). Sending is a sync of the two, so a reconnect only has to forget
//! the remote state and sync every window again.

use std::collections::{BTreeMap, HashMap};

use smithay::desktop::utils::bbox_from_surface_tree;
use smithay::reexports::wayland_server::protocol::wl_surface::WlSurface;
use smithay::utils::{Logical, Rectangle, Serial as WaylandSerial};
use smithay::wayland::compositor::with_states;
use smithay::wayland::shell::xdg::{PopupSurface, SurfaceCachedState, ToplevelSurface};
use smithay::xwayland::X11Surface;

use corral_protocol::{CursorShape, OptionalSize, SanitizedText, Serial, WindowId};

use crate::render::WindowBuffer;

/// What kind of client window a forwarded window is.
#[derive(Debug, Clone)]
pub enum Role {
    Toplevel(ToplevelSurface),
    Popup(PopupSurface),
    X11(X11Surface),
}

/// What the GUI domain has been told about one window on the current connection.
#[derive(Debug, Default)]
pub struct RemoteState {
    /// `CreateToplevel` / `CreatePopup` was sent.
    pub announced: bool,
    pub title: Option<SanitizedText>,
    pub app_id: Option<SanitizedText>,
    pub size_hints: Option<(OptionalSize, OptionalSize)>,
    /// Popup position (relative to the parent) and size, in buffer pixels.
    pub placement: Option<(i32, i32, u32, u32)>,
    /// The window's pool: what the GUI domain has of its pixels.
    pub buffer: Option<WindowBuffer>,
    pub mapped: bool,
    /// A `Commit` was sent and its `FrameDone` has not come back yet.
    pub awaiting_frame_done: bool,
    pub cursor: Option<CursorShape>,
}

/// One window forwarded to the GUI domain.
#[derive(Debug)]
pub struct ForwardedWindow {
    pub id: WindowId,
    pub role: Role,
    /// The window a popup belongs to (a toplevel or another popup).
    pub parent: Option<WindowId>,
    /// The root surface of the window's surface tree. An X11 window gets it once Xwayland
    /// has associated its `wl_surface`.
    pub surface: Option<WlSurface>,
    pub title: SanitizedText,
    pub app_id: SanitizedText,
    pub min_size: OptionalSize,
    pub max_size: OptionalSize,
    /// Where a popup is, relative to its parent's geometry origin, in logical coordinates.
    pub popup_geometry: Rectangle<i32, Logical>,
    /// A popup that asked for an explicit grab gets the keyboard while its toplevel has it.
    pub popup_grab: bool,
    /// The surface tree changed since it was last composited.
    pub dirty: bool,
    /// Maximise/fullscreen/minimise requests not yet sent (an app may ask before its window
    /// was announced).
    pub state_requests: Vec<corral_protocol::StateRequest>,
    /// A configure from the GUI domain that arrived before the client's initial commit.
    pub deferred_configure: Option<Serial>,
    /// A frame callback is due on a timer because a commit brought nothing to show.
    pub idle_frame_scheduled: bool,
    /// Configure serials sent to the client, with the GUI domain's serial they answer.
    pub pending_acks: Vec<(WaylandSerial, Serial)>,
    pub remote: RemoteState,
}

impl ForwardedWindow {
    /// The window's visible area in its root surface's coordinates: the geometry the client
    /// set (client-side shadows excluded), clamped to what its surfaces cover.
    pub fn geometry(&self) -> Rectangle<i32, Logical> {
        if let Role::X11(x11) = &self.role {
            return Rectangle::from_size(x11.geometry().size);
        }
        let Some(surface) = &self.surface else {
            return Rectangle::default();
        };
        let bbox = bbox_from_surface_tree(surface, (0, 0));
        with_states(surface, |states| {
            states
                .cached_state
                .get::<SurfaceCachedState>()
                .current()
                .geometry
                .and_then(|geometry| geometry.intersection(bbox))
        })
        .unwrap_or(bbox)
    }

    /// Popups (xdg popups and X11 override-redirect windows) have a parent window.
    pub fn is_popup(&self) -> bool {
        self.parent.is_some()
    }
}

/// All forwarded windows, in creation order (so parents come before their popups).
#[derive(Debug, Default)]
pub struct WindowTable {
    windows: BTreeMap<WindowId, ForwardedWindow>,
    by_surface: HashMap<WlSurface, WindowId>,
    last_id: u32,
}

impl WindowTable {
    /// Adds a window and returns its new id. Ids are never reused while the agent runs.
    pub fn insert(
        &mut self,
        role: Role,
        parent: Option<WindowId>,
        surface: Option<WlSurface>,
    ) -> WindowId {
        self.last_id = self.last_id.wrapping_add(1).max(1);
        let id = WindowId::new(self.last_id).unwrap_or_else(|_| unreachable!("never 0"));
        if let Some(surface) = &surface {
            self.by_surface.insert(surface.clone(), id);
        }
        self.windows.insert(
            id,
            ForwardedWindow {
                id,
                role,
                parent,
                surface,
                title: SanitizedText::default(),
                app_id: SanitizedText::default(),
                min_size: OptionalSize::UNSET,
                max_size: OptionalSize::UNSET,
                popup_geometry: Rectangle::default(),
                popup_grab: false,
                dirty: true,
                state_requests: Vec::new(),
                deferred_configure: None,
                idle_frame_scheduled: false,
                pending_acks: Vec::new(),
                remote: RemoteState::default(),
            },
        );
        id
    }

    /// Gives an X11 window its `wl_surface`.
    pub fn set_surface(&mut self, id: WindowId, surface: WlSurface) {
        if let Some(window) = self.windows.get_mut(&id) {
            if let Some(old) = window.surface.replace(surface.clone()) {
                self.by_surface.remove(&old);
            }
            self.by_surface.insert(surface, id);
            window.dirty = true;
        }
    }

    pub fn remove(&mut self, id: WindowId) -> Option<ForwardedWindow> {
        let window = self.windows.remove(&id)?;
        if let Some(surface) = &window.surface {
            self.by_surface.remove(surface);
        }
        Some(window)
    }

    pub fn get(&self, id: WindowId) -> Option<&ForwardedWindow> {
        self.windows.get(&id)
    }

    pub fn get_mut(&mut self, id: WindowId) -> Option<&mut ForwardedWindow> {
        self.windows.get_mut(&id)
    }

    /// The window whose root surface is `surface`.
    pub fn id_for_root(&self, surface: &WlSurface) -> Option<WindowId> {
        self.by_surface.get(surface).copied()
    }

    /// The window of an xdg toplevel.
    pub fn id_for_toplevel(&self, toplevel: &ToplevelSurface) -> Option<WindowId> {
        self.id_for_root(toplevel.wl_surface())
    }

    /// The window of an X11 surface.
    pub fn id_for_x11(&self, x11: &X11Surface) -> Option<WindowId> {
        self.windows
            .values()
            .find(|w| matches!(&w.role, Role::X11(s) if s == x11))
            .map(|w| w.id)
    }

    /// Ids in creation order.
    pub fn ids(&self) -> Vec<WindowId> {
        self.windows.keys().copied().collect()
    }

    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut ForwardedWindow> {
        self.windows.values_mut()
    }

    /// Popups whose parent is `id`.
    pub fn children_of(&self, id: WindowId) -> Vec<WindowId> {
        self.windows
            .values()
            .filter(|w| w.parent == Some(id))
            .map(|w| w.id)
            .collect()
    }

    pub fn len(&self) -> usize {
        self.windows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.windows.is_empty()
    }
}
