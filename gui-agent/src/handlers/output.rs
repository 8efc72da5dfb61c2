//! `wl_output` (with xdg-output), presentation-time and fractional-scale.

use smithay::reexports::wayland_server::protocol::wl_surface::WlSurface;
use smithay::wayland::compositor::with_states;
use smithay::wayland::fractional_scale::{FractionalScaleHandler, with_fractional_scale};
use smithay::wayland::output::OutputHandler;
use smithay::{delegate_fractional_scale, delegate_output, delegate_presentation};

use crate::state::AgentState;

impl OutputHandler for AgentState {}

impl FractionalScaleHandler for AgentState {
    fn new_fractional_scale(&mut self, surface: WlSurface) {
        let scale = self.outputs.scale();
        with_states(&surface, |states| {
            with_fractional_scale(states, |fractional| fractional.set_preferred_scale(scale));
        });
    }
}

delegate_output!(AgentState);
delegate_presentation!(AgentState);
delegate_fractional_scale!(AgentState);
