//! `AgentState`: the one struct the event loop hands to every callback. It holds Smithay's
//! protocol states, the seat, the outputs mirrored from the GUI domain, the table of forwarded
//! windows, the GUI channel, the clipboard transfers and the launched apps.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use smithay::backend::renderer::pixman::PixmanRenderer;
use smithay::input::keyboard::{KeyboardHandle, XkbConfig};
use smithay::input::pointer::PointerHandle;
use smithay::input::{Seat, SeatState};
use smithay::reexports::calloop::generic::Generic;
use smithay::reexports::calloop::{Interest, LoopHandle, LoopSignal, Mode, PostAction};
use smithay::reexports::wayland_server::backend::{ClientData, ClientId, DisconnectReason};
use smithay::reexports::wayland_server::{Display, DisplayHandle};
use smithay::utils::{Clock, Monotonic};
use smithay::wayland::compositor::{CompositorClientState, CompositorState};
use smithay::wayland::cursor_shape::CursorShapeManagerState;
use smithay::wayland::fractional_scale::FractionalScaleManagerState;
use smithay::wayland::output::OutputManagerState;
use smithay::wayland::presentation::PresentationState;
use smithay::wayland::selection::data_device::DataDeviceState;
use smithay::wayland::selection::primary_selection::PrimarySelectionState;
use smithay::wayland::selection::wlr_data_control::DataControlState;
use smithay::wayland::shell::kde::decoration::KdeDecorationState;
use smithay::wayland::shell::xdg::XdgShellState;
use smithay::wayland::shell::xdg::decoration::XdgDecorationState;
use smithay::wayland::shm::ShmState;
use smithay::wayland::socket::ListeningSocketSource;
use smithay::wayland::viewporter::ViewporterState;
use smithay::wayland::xdg_activation::XdgActivationState;
use smithay::wayland::xwayland_shell::XWaylandShellState;
use smithay::xwayland::X11Wm;
use tracing::{info, warn};

use crate::cli::{Args, Endpoint};
use crate::clipboard::Clipboard;
use crate::gui_link::GuiLink;
use crate::launch::Launcher;
use crate::outputs::Outputs;
use crate::windows::WindowTable;

/// Per-client data Smithay needs.
#[derive(Debug, Default)]
pub struct ClientState {
    pub compositor_state: CompositorClientState,
}

impl ClientData for ClientState {
    fn initialized(&self, _client_id: ClientId) {}
    fn disconnected(&self, client_id: ClientId, reason: DisconnectReason) {
        // A crashed or misbehaving app is simply gone; its windows are destroyed through the
        // usual destruction callbacks. Nothing else in the agent is affected.
        tracing::debug!(?client_id, ?reason, "Wayland client disconnected");
    }
}

/// Everything the agent knows, in one place (as in niri and anvil).
pub struct AgentState {
    pub display_handle: DisplayHandle,
    pub loop_handle: LoopHandle<'static, AgentState>,
    pub loop_signal: LoopSignal,
    pub socket_name: String,
    pub clock: Clock<Monotonic>,
    /// Set when the agent must stop, with the reason (exit status 1 when `Some`).
    pub fatal: Option<String>,

    pub compositor_state: CompositorState,
    pub xdg_shell_state: XdgShellState,
    pub xdg_decoration_state: XdgDecorationState,
    pub kde_decoration_state: KdeDecorationState,
    pub shm_state: ShmState,
    pub seat_state: SeatState<AgentState>,
    pub output_manager_state: OutputManagerState,
    pub data_device_state: DataDeviceState,
    pub primary_selection_state: PrimarySelectionState,
    pub data_control_state: DataControlState,
    pub viewporter_state: ViewporterState,
    pub presentation_state: PresentationState,
    pub fractional_scale_state: FractionalScaleManagerState,
    pub cursor_shape_state: CursorShapeManagerState,
    pub xdg_activation_state: XdgActivationState,
    pub xwayland_shell_state: XWaylandShellState,

    pub seat: Seat<AgentState>,
    pub keyboard: KeyboardHandle<AgentState>,
    pub pointer: PointerHandle<AgentState>,

    pub renderer: PixmanRenderer,
    pub outputs: Outputs,
    pub windows: WindowTable,
    pub link: GuiLink,
    pub clipboard: Clipboard,
    pub launcher: Launcher,

    /// The window the pointer is over, as the GUI domain said; cursor changes go to it.
    pub pointer_window: Option<corral_protocol::WindowId>,
    /// Where the GUI domain last put the pointer in that window (buffer pixels).
    pub pointer_position: Option<corral_protocol::FixedPoint>,
    /// Where the surface under the pointer was (root coordinates) when it got the pointer.
    pub pointer_focus_origin: Option<smithay::utils::Point<i32, smithay::utils::Logical>>,
    /// The X11 window manager, once Xwayland is ready.
    pub xwm: Option<X11Wm>,
    /// The X11 display number (`DISPLAY=:N`) once Xwayland is ready.
    pub x_display: Option<u32>,
    /// Xwayland's own Wayland client, to find its surfaces by protocol id.
    pub xwayland_client: Option<smithay::reexports::wayland_server::Client>,
    /// `--xwayland` was given: launches wait until Xwayland is ready.
    pub xwayland_wanted: bool,
    /// Serve org.freedesktop.Notifications (not `--no-notifications`).
    pub notifications_wanted: bool,
    /// The notification service, once started.
    pub notifications: Option<crate::notifications::NotificationService>,
    /// Where the service's bus address arrives once it is connected.
    pub notification_address: Option<std::sync::mpsc::Receiver<String>>,
}

impl std::fmt::Debug for AgentState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentState")
            .field("socket_name", &self.socket_name)
            .field("windows", &self.windows.len())
            .finish_non_exhaustive()
    }
}

impl AgentState {
    /// Creates the Wayland display and every global, listens on the Wayland socket and
    /// registers both with the event loop.
    pub fn new(
        args: &Args,
        display: Display<AgentState>,
        loop_handle: LoopHandle<'static, AgentState>,
        loop_signal: LoopSignal,
    ) -> anyhow::Result<Self> {
        let endpoint = args.endpoint().map_err(anyhow::Error::msg)?;
        Self::new_with(args, endpoint, true, display, loop_handle, loop_signal)
    }

    /// Like [`AgentState::new`] with the channel given, and without a Wayland socket when
    /// `listen` is false (clients are then added with `insert_client`).
    pub fn new_with(
        args: &Args,
        endpoint: Endpoint,
        listen: bool,
        display: Display<AgentState>,
        loop_handle: LoopHandle<'static, AgentState>,
        loop_signal: LoopSignal,
    ) -> anyhow::Result<Self> {
        let dh = display.handle();
        let socket_name = if listen {
            let socket = match &args.socket_name {
                Some(name) => ListeningSocketSource::with_name(name),
                None => ListeningSocketSource::new_auto(),
            }
            .context("creating the Wayland socket (is XDG_RUNTIME_DIR set and writable?)")?;
            let socket_name = socket.socket_name().to_string_lossy().into_owned();
            loop_handle
                .insert_source(socket, |client_stream, _, state: &mut AgentState| {
                    if let Err(err) = state
                        .display_handle
                        .insert_client(client_stream, Arc::new(ClientState::default()))
                    {
                        warn!(%err, "could not add a Wayland client");
                    }
                })
                .map_err(|e| anyhow::anyhow!("registering the Wayland socket: {e}"))?;
            socket_name
        } else {
            String::new()
        };
        loop_handle
            .insert_source(
                Generic::new(display, Interest::READ, Mode::Level),
                |_, display, state: &mut AgentState| {
                    // SAFETY: `get_mut` requires that the display is not dropped while the
                    // event loop source holds it; we never drop or replace it here, we only
                    // dispatch its clients' requests.
                    let result = unsafe { display.get_mut().dispatch_clients(state) };
                    if let Err(err) = result {
                        warn!(%err, "dispatching Wayland clients failed");
                    }
                    Ok(PostAction::Continue)
                },
            )
            .map_err(|e| anyhow::anyhow!("registering the Wayland display: {e}"))?;

        let clock = Clock::new();
        let compositor_state = CompositorState::new::<Self>(&dh);
        let xdg_shell_state = XdgShellState::new::<Self>(&dh);
        let xdg_decoration_state = XdgDecorationState::new::<Self>(&dh);
        // GTK 3 asks for server-side decorations through KDE's protocol, not xdg-decoration.
        let kde_decoration_state = KdeDecorationState::new::<Self>(
            &dh,
            smithay::reexports::wayland_protocols_misc::server_decoration::server::org_kde_kwin_server_decoration_manager::Mode::Server,
        );
        let shm_state = ShmState::new::<Self>(&dh, vec![]);
        let output_manager_state = OutputManagerState::new_with_xdg_output::<Self>(&dh);
        let data_device_state = DataDeviceState::new::<Self>(&dh);
        let primary_selection_state = PrimarySelectionState::new::<Self>(&dh);
        // wl-copy and wl-paste use data control; every app inside a qube shares one trust
        // domain, and the selection never leaves the qube except through the GUI domain.
        let data_control_state =
            DataControlState::new::<Self, _>(&dh, Some(&primary_selection_state), |_| true);
        let viewporter_state = ViewporterState::new::<Self>(&dh);
        let presentation_state = PresentationState::new::<Self>(&dh, clock.id() as u32);
        let fractional_scale_state = FractionalScaleManagerState::new::<Self>(&dh);
        let cursor_shape_state = CursorShapeManagerState::new::<Self>(&dh);
        let xdg_activation_state = XdgActivationState::new::<Self>(&dh);
        let xwayland_shell_state = XWaylandShellState::new::<Self>(&dh);

        let mut seat_state = SeatState::new();
        let mut seat = seat_state.new_wl_seat(&dh, "seat0");
        let pointer = seat.add_pointer();
        // Key repeat is done by the clients from these values; the GUI domain sends presses
        // and releases only.
        let keyboard = seat
            .add_keyboard(XkbConfig::default(), 600, 25)
            .map_err(|e| anyhow::anyhow!("creating the keyboard: {e}"))?;

        let renderer = PixmanRenderer::new().context("creating the Pixman renderer")?;
        let outputs = Outputs::new(&dh);
        let link = GuiLink::new(endpoint, args.inline_pixels);

        Ok(AgentState {
            display_handle: dh,
            loop_handle,
            loop_signal,
            socket_name,
            clock,
            fatal: None,
            compositor_state,
            xdg_shell_state,
            xdg_decoration_state,
            kde_decoration_state,
            shm_state,
            seat_state,
            output_manager_state,
            data_device_state,
            primary_selection_state,
            data_control_state,
            viewporter_state,
            presentation_state,
            fractional_scale_state,
            cursor_shape_state,
            xdg_activation_state,
            xwayland_shell_state,
            seat,
            keyboard,
            pointer,
            renderer,
            outputs,
            windows: WindowTable::default(),
            link,
            clipboard: Clipboard::new(args.clipboard_max_bytes),
            launcher: Launcher::default(),
            pointer_window: None,
            pointer_position: None,
            pointer_focus_origin: None,
            xwm: None,
            x_display: None,
            xwayland_client: None,
            xwayland_wanted: false,
            notifications_wanted: !args.no_notifications,
            notifications: None,
            notification_address: None,
        })
    }

    /// Work done once per event-loop iteration, after every callback ran: composite the
    /// windows whose surfaces changed, send what is queued to the GUI domain, and flush the
    /// Wayland clients.
    pub fn after_dispatch(&mut self) {
        self.associate_x11_surfaces();
        self.render_dirty_windows();
        self.refresh_pointer_focus();
        self.link_housekeeping();
        self.launcher.reap();
        if let Err(err) = self.display_handle.flush_clients() {
            warn!(%err, "flushing Wayland clients failed");
        }
    }

    /// Stops the event loop because the agent cannot go on.
    pub fn stop_with_error(&mut self, reason: String) {
        info!(%reason, "stopping");
        self.fatal = Some(reason);
        self.loop_signal.stop();
    }
}

/// How often the loop wakes up with nothing to do (reaping children, clipboard timeouts).
pub const HOUSEKEEPING_INTERVAL: Duration = Duration::from_millis(250);
