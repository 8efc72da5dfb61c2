//! xdg-activation: an app asking to be activated becomes an attention request to the GUI
//! domain. Focus is never moved by a qube (ARCHITECTURE.md, decision 5).

use smithay::delegate_xdg_activation;
use smithay::reexports::wayland_server::protocol::wl_surface::WlSurface;
use smithay::wayland::xdg_activation::{
    XdgActivationHandler, XdgActivationState, XdgActivationToken, XdgActivationTokenData,
};

use corral_protocol::AgentMessage;

use crate::state::AgentState;

impl XdgActivationHandler for AgentState {
    fn activation_state(&mut self) -> &mut XdgActivationState {
        &mut self.xdg_activation_state
    }

    fn token_created(&mut self, _token: XdgActivationToken, _data: XdgActivationTokenData) -> bool {
        // Any token is fine: using one can only ever ask for attention.
        true
    }

    fn request_activation(
        &mut self,
        _token: XdgActivationToken,
        _token_data: XdgActivationTokenData,
        surface: WlSurface,
    ) {
        if let Some(window) = self.windows.id_for_root(&surface)
            && self.windows.get(window).is_some_and(|w| w.remote.announced)
        {
            self.link.send(&AgentMessage::RequestAttention { window });
        }
    }
}

delegate_xdg_activation!(AgentState);
