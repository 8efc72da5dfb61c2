//! WLCS integration of `corral-agent`.
//!
//! The `wlcs` runner (Debian package `wlcs`) loads this library and calls
//! `wlcs_server_integration`. Each test starts an agent on its own thread
//! ([`corral_agent::embedded::run`]) with a minimal stand-in for the GUI domain that places
//! windows where WLCS asks and routes WLCS's global pointer to them. Run it with
//! `scripts/wlcs.sh` (see `docs/wlcs.md` for the tests that pass).

use std::io::{Error, ErrorKind};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::thread::JoinHandle;

use corral_agent::embedded::Control;
use smithay::reexports::calloop::channel::{Sender, channel};
// A glob import: with wayland-sys's `dlopen` feature (turned on when the whole workspace is built,
// by the compositor's winit backend) the C functions live behind `wayland_client_handle()`
// instead of being free functions, and `ffi_dispatch!` picks whichever exists.
#[allow(unused_imports)]
use wayland_sys::client::*;
use wayland_sys::common::{wl_fixed_t, wl_fixed_to_double};
use wayland_sys::ffi_dispatch;
use wlcs::ffi_display_server_api::{
    WlcsExtensionDescriptor, WlcsIntegrationDescriptor, WlcsServerIntegration,
};
use wlcs::ffi_wrappers::wlcs_server;
use wlcs::{Wlcs, extension_list, wlcs_server_integration};

wlcs_server_integration!(CorralAgentWlcs);

/// The globals the agent offers that WLCS has tests for, with the versions Smithay 0.7 speaks.
static SUPPORTED_EXTENSIONS: &[WlcsExtensionDescriptor] = extension_list!(
    ("wl_compositor", 6),
    ("wl_subcompositor", 1),
    ("wl_shm", 1),
    ("wl_data_device_manager", 3),
    ("wl_seat", 9),
    ("wl_output", 4),
    ("xdg_wm_base", 6),
    ("zxdg_output_manager_v1", 3),
    ("wp_viewporter", 1),
    ("zwp_primary_selection_device_manager_v1", 1),
);

static DESCRIPTOR: WlcsIntegrationDescriptor = WlcsIntegrationDescriptor {
    version: 1,
    num_extensions: SUPPORTED_EXTENSIONS.len(),
    supported_extensions: SUPPORTED_EXTENSIONS.as_ptr(),
};

struct CorralAgentWlcs {
    server: Option<(Sender<Control>, JoinHandle<()>)>,
}

impl Wlcs for CorralAgentWlcs {
    type Pointer = Pointer;
    type Touch = NoTouch;

    fn new() -> Self {
        // Agent logs, for debugging a failing conformance test: CORRAL_LOG=debug.
        if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_env("CORRAL_LOG") {
            let _ = tracing_subscriber::fmt()
                .with_writer(std::io::stderr)
                .with_env_filter(filter)
                .try_init();
        }
        CorralAgentWlcs { server: None }
    }

    fn start(&mut self) {
        let (sender, receiver) = channel();
        let thread = std::thread::spawn(move || {
            if let Err(err) = corral_agent::embedded::run(receiver) {
                eprintln!("corral-agent (WLCS): {err:#}");
            }
        });
        self.server = Some((sender, thread));
    }

    fn stop(&mut self) {
        if let Some((sender, thread)) = self.server.take() {
            let _ = sender.send(Control::Exit);
            let _ = thread.join();
        }
    }

    fn create_client_socket(&self) -> std::io::Result<OwnedFd> {
        let Some((sender, _)) = &self.server else {
            return Err(Error::from(ErrorKind::NotConnected));
        };
        let (client_side, server_side) = UnixStream::pair()?;
        sender
            .send(Control::NewClient {
                stream: server_side,
                // The client's fd number names it: WLCS later hands us its wl_display, whose
                // fd is this one.
                key: client_side.as_raw_fd(),
            })
            .map_err(|e| Error::new(ErrorKind::ConnectionReset, e))?;
        Ok(client_side.into())
    }

    fn position_window_absolute(
        &self,
        display: *mut wl_display,
        surface: *mut wl_proxy,
        x: i32,
        y: i32,
    ) {
        // SAFETY: WLCS passes a live client `wl_display` and a `wl_surface` proxy of that
        // display, owned by the test for the duration of this call; both functions only read
        // them.
        let (key, surface_id) = unsafe {
            (
                ffi_dispatch!(wayland_client_handle(), wl_display_get_fd, display),
                ffi_dispatch!(wayland_client_handle(), wl_proxy_get_id, surface),
            )
        };
        if let Some((sender, _)) = &self.server {
            let _ = sender.send(Control::PositionWindow {
                key,
                surface_id,
                x,
                y,
            });
        }
    }

    fn create_pointer(&mut self) -> Option<Pointer> {
        self.server.as_ref().map(|(sender, _)| Pointer {
            sender: sender.clone(),
        })
    }

    fn create_touch(&mut self) -> Option<NoTouch> {
        // Qubes have no touch input of their own: the GUI domain would send pointer events.
        None
    }

    fn get_descriptor(&self) -> &WlcsIntegrationDescriptor {
        &DESCRIPTOR
    }
}

struct Pointer {
    sender: Sender<Control>,
}

impl wlcs::Pointer for Pointer {
    fn move_absolute(&mut self, x: wl_fixed_t, y: wl_fixed_t) {
        let _ = self.sender.send(Control::PointerMoveAbsolute {
            x: wl_fixed_to_double(x),
            y: wl_fixed_to_double(y),
        });
    }

    fn move_relative(&mut self, dx: wl_fixed_t, dy: wl_fixed_t) {
        let _ = self.sender.send(Control::PointerMoveRelative {
            dx: wl_fixed_to_double(dx),
            dy: wl_fixed_to_double(dy),
        });
    }

    fn button_up(&mut self, button: i32) {
        let _ = self.sender.send(Control::PointerButton {
            button: button as u32,
            pressed: false,
        });
    }

    fn button_down(&mut self, button: i32) {
        let _ = self.sender.send(Control::PointerButton {
            button: button as u32,
            pressed: true,
        });
    }
}

struct NoTouch;

impl wlcs::Touch for NoTouch {
    fn touch_down(&mut self, _x: wl_fixed_t, _y: wl_fixed_t) {}
    fn touch_move(&mut self, _x: wl_fixed_t, _y: wl_fixed_t) {}
    fn touch_up(&mut self) {}
}
