//! `wl_data_device_manager`, primary selection and wlr data control: copy and paste between
//! apps inside the qube. The selection only leaves the qube when the GUI domain asks for it
//! (see [`crate::clipboard`]). Drag and drop stays inside one qube's windows.

use std::os::fd::OwnedFd;

use smithay::input::Seat;
use smithay::wayland::selection::data_device::{
    ClientDndGrabHandler, DataDeviceHandler, DataDeviceState, ServerDndGrabHandler,
};
use smithay::wayland::selection::primary_selection::{
    PrimarySelectionHandler, PrimarySelectionState,
};
use smithay::wayland::selection::wlr_data_control::{DataControlHandler, DataControlState};
use smithay::wayland::selection::{SelectionHandler, SelectionSource, SelectionTarget};
use smithay::{delegate_data_control, delegate_data_device, delegate_primary_selection};
use tracing::warn;

use crate::clipboard::SelectionOrigin;
use crate::state::AgentState;

impl SelectionHandler for AgentState {
    type SelectionUserData = SelectionOrigin;

    fn new_selection(
        &mut self,
        target: SelectionTarget,
        source: Option<SelectionSource>,
        _seat: Seat<Self>,
    ) {
        let mime_types = source.map(|source| source.mime_types());
        if target == SelectionTarget::Clipboard {
            self.clipboard.selection_offered(mime_types.clone());
        }
        // X11 apps see the Wayland selection through the X11 window manager.
        if let Some(xwm) = self.xwm.as_mut()
            && let Err(err) = xwm.new_selection(target, mime_types)
        {
            warn!(?err, "could not pass the selection to X11 apps");
        }
    }

    fn send_selection(
        &mut self,
        target: SelectionTarget,
        mime_type: String,
        fd: OwnedFd,
        _seat: Seat<Self>,
        user_data: &SelectionOrigin,
    ) {
        match user_data {
            SelectionOrigin::Pasted(data) => self.serve_pasted_data(data.clone(), fd),
            SelectionOrigin::X11 => {
                let handle = self.loop_handle.clone();
                if let Some(xwm) = self.xwm.as_mut()
                    && let Err(err) = xwm.send_selection(target, mime_type, fd, handle)
                {
                    warn!(?err, "could not read an X11 app's selection");
                }
            }
        }
    }
}

impl DataDeviceHandler for AgentState {
    fn data_device_state(&self) -> &DataDeviceState {
        &self.data_device_state
    }
}

impl ClientDndGrabHandler for AgentState {}
impl ServerDndGrabHandler for AgentState {}

impl PrimarySelectionHandler for AgentState {
    fn primary_selection_state(&self) -> &PrimarySelectionState {
        &self.primary_selection_state
    }
}

impl DataControlHandler for AgentState {
    fn data_control_state(&self) -> &DataControlState {
        &self.data_control_state
    }
}

delegate_data_device!(AgentState);
delegate_primary_selection!(AgentState);
delegate_data_control!(AgentState);
