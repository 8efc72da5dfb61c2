//! `wl_seat` (keyboard and pointer) and cursor-shape.
//!
//! The seat's focus follows the GUI domain's enter and leave messages only. Cursor changes of
//! the window under the pointer are forwarded as one of the protocol's fixed shapes: a qube
//! never sends a cursor image, so a client-drawn cursor surface shows the default arrow.

use smithay::input::pointer::{CursorIcon, CursorImageStatus};
use smithay::input::{Seat, SeatHandler, SeatState};
use smithay::reexports::wayland_server::Resource;
use smithay::reexports::wayland_server::protocol::wl_surface::WlSurface;
use smithay::wayland::selection::data_device::set_data_device_focus;
use smithay::wayland::selection::primary_selection::set_primary_focus;
use smithay::{delegate_cursor_shape, delegate_seat};

use corral_protocol::{AgentMessage, CursorShape};

use crate::focus::KeyboardFocusTarget;
use crate::state::AgentState;

impl SeatHandler for AgentState {
    type KeyboardFocus = KeyboardFocusTarget;
    type PointerFocus = WlSurface;
    type TouchFocus = WlSurface;

    fn seat_state(&mut self) -> &mut SeatState<AgentState> {
        &mut self.seat_state
    }

    fn focus_changed(&mut self, seat: &Seat<Self>, focused: Option<&KeyboardFocusTarget>) {
        // The focused client is the one that may read the selection (Ctrl+V in the app).
        let client = focused
            .and_then(KeyboardFocusTarget::wl_surface)
            .and_then(|surface| self.display_handle.get_client(surface.id()).ok());
        set_data_device_focus(&self.display_handle, seat, client.clone());
        set_primary_focus(&self.display_handle, seat, client);
    }

    fn cursor_image(&mut self, _seat: &Seat<Self>, image: CursorImageStatus) {
        let shape = match image {
            CursorImageStatus::Hidden => CursorShape::Hidden,
            CursorImageStatus::Named(icon) => cursor_shape(icon),
            CursorImageStatus::Surface(_) => CursorShape::Default,
        };
        let Some(window) = self.pointer_window else {
            return;
        };
        let Some(forwarded) = self.windows.get_mut(window) else {
            return;
        };
        if forwarded.remote.announced && forwarded.remote.cursor != Some(shape) {
            forwarded.remote.cursor = Some(shape);
            self.link.send(&AgentMessage::SetCursor { window, shape });
        }
    }
}

/// The protocol's shape for a cursor-shape-v1 / CSS cursor name.
fn cursor_shape(icon: CursorIcon) -> CursorShape {
    use CursorIcon as I;
    use CursorShape as S;
    match icon {
        I::Default => S::Default,
        I::ContextMenu => S::ContextMenu,
        I::Help => S::Help,
        I::Pointer => S::Pointer,
        I::Progress => S::Progress,
        I::Wait => S::Wait,
        I::Cell => S::Cell,
        I::Crosshair => S::Crosshair,
        I::Text => S::Text,
        I::VerticalText => S::VerticalText,
        I::Alias => S::Alias,
        I::Copy => S::Copy,
        I::Move => S::Move,
        I::NoDrop => S::NoDrop,
        I::NotAllowed => S::NotAllowed,
        I::Grab => S::Grab,
        I::Grabbing => S::Grabbing,
        I::EResize => S::EResize,
        I::NResize => S::NResize,
        I::NeResize => S::NeResize,
        I::NwResize => S::NwResize,
        I::SResize => S::SResize,
        I::SeResize => S::SeResize,
        I::SwResize => S::SwResize,
        I::WResize => S::WResize,
        I::EwResize => S::EwResize,
        I::NsResize => S::NsResize,
        I::NeswResize => S::NeswResize,
        I::NwseResize => S::NwseResize,
        I::ColResize => S::ColResize,
        I::RowResize => S::RowResize,
        I::AllScroll => S::AllScroll,
        I::ZoomIn => S::ZoomIn,
        I::ZoomOut => S::ZoomOut,
        I::DndAsk => S::Copy,
        I::AllResize => S::Move,
        _ => S::Default,
    }
}

impl smithay::wayland::tablet_manager::TabletSeatHandler for AgentState {}

delegate_seat!(AgentState);
delegate_cursor_shape!(AgentState);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_named_cursor_maps_to_a_shape_of_the_same_name() {
        for (icon, shape) in [
            (CursorIcon::Text, CursorShape::Text),
            (CursorIcon::Pointer, CursorShape::Pointer),
            (CursorIcon::NwseResize, CursorShape::NwseResize),
            (CursorIcon::ZoomOut, CursorShape::ZoomOut),
        ] {
            assert_eq!(cursor_shape(icon), shape);
        }
    }
}
