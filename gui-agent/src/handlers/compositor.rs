//! `wl_compositor`, `wl_subcompositor`, `wl_shm` and `wp_viewporter`: surfaces and buffers.
//!
//! A commit anywhere in a window's surface tree marks that window for compositing; the actual
//! work happens once per loop iteration ([`AgentState::after_dispatch`]), so a burst of
//! subsurface commits costs one render.

use smithay::backend::renderer::utils::on_commit_buffer_handler;
use smithay::reexports::wayland_server::Client;
use smithay::reexports::wayland_server::protocol::wl_buffer::WlBuffer;
use smithay::reexports::wayland_server::protocol::wl_surface::WlSurface;
use smithay::wayland::buffer::BufferHandler;
use smithay::wayland::compositor::{
    CompositorClientState, CompositorHandler, CompositorState, get_parent, with_states,
};
use smithay::wayland::shell::xdg::SurfaceCachedState;
use smithay::wayland::shm::{ShmHandler, ShmState};
use smithay::{delegate_compositor, delegate_shm, delegate_viewporter};

use corral_protocol::OptionalSize;

use crate::state::{AgentState, ClientState};
use crate::windows::Role;

impl CompositorHandler for AgentState {
    fn compositor_state(&mut self) -> &mut CompositorState {
        &mut self.compositor_state
    }

    fn client_compositor_state<'a>(&self, client: &'a Client) -> &'a CompositorClientState {
        match client.get_data::<ClientState>() {
            Some(state) => &state.compositor_state,
            // Xwayland's client is created by Smithay with its own data type.
            None => client
                .get_data::<smithay::xwayland::XWaylandClientData>()
                .map(|data| &data.compositor_state)
                .unwrap_or_else(|| unreachable!("every client is inserted with client data")),
        }
    }

    fn commit(&mut self, surface: &WlSurface) {
        on_commit_buffer_handler::<Self>(surface);

        let mut root = surface.clone();
        while let Some(parent) = get_parent(&root) {
            root = parent;
        }
        let Some(id) = self.windows.id_for_root(&root) else {
            return;
        };
        let Some(window) = self.windows.get_mut(id) else {
            return;
        };
        window.dirty = true;
        if surface != &root {
            return;
        }
        match &window.role {
            Role::Toplevel(toplevel) => {
                if !toplevel.is_initial_configure_sent() {
                    let sent = toplevel.send_configure();
                    if let Some(gui_serial) = window.deferred_configure.take() {
                        window.pending_acks.push((sent, gui_serial));
                    }
                }
                let (min, max) = with_states(&root, |states| {
                    let mut cached = states.cached_state.get::<SurfaceCachedState>();
                    let current = cached.current();
                    (current.min_size, current.max_size)
                });
                window.min_size = optional_size(min.w, min.h);
                window.max_size = optional_size(max.w, max.h);
            }
            Role::Popup(popup) => {
                if !popup.is_initial_configure_sent()
                    && let Err(err) = popup.send_configure()
                {
                    tracing::warn!(?err, "initial popup configure failed");
                }
            }
            Role::X11(_) => {}
        }
    }
}

/// Size hints as the protocol carries them (0 = unset), clamped to its limits.
fn optional_size(width: i32, height: i32) -> OptionalSize {
    let clamp = |v: i32| v.clamp(0, corral_protocol::limits::MAX_SURFACE_DIMENSION as i32) as u32;
    OptionalSize::new(clamp(width), clamp(height)).unwrap_or(OptionalSize::UNSET)
}

impl BufferHandler for AgentState {
    fn buffer_destroyed(&mut self, _buffer: &WlBuffer) {}
}

impl ShmHandler for AgentState {
    fn shm_state(&self) -> &ShmState {
        &self.shm_state
    }
}

delegate_compositor!(AgentState);
delegate_shm!(AgentState);
delegate_viewporter!(AgentState);
