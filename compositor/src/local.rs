//! GUI-domain local clients: apps of the GUI domain itself (a terminal, settings) that connect
//! to `corral` as an ordinary Wayland compositor on a trusted local socket (`--gui-socket`).
//!
//! This is the one place where `corral` speaks Wayland, and only to processes of the GUI domain,
//! which is already trusted: qubes never reach this socket (they have their agents and the
//! semantic protocol, decision 1). Their windows are framed as the GUI domain: black, titled
//! `[corral] …`, and otherwise managed like qube windows (same layout, focus and input rules).
//!
//! Kept small: toplevels only (popups of local apps are configured but not shown yet),
//! server-side decorations requested, no clipboard exchange with qubes.

use std::collections::HashMap;
use std::sync::Arc;

use smithay::backend::renderer::utils::{on_commit_buffer_handler, with_renderer_surface_state};
use smithay::delegate_compositor;
use smithay::delegate_data_device;
use smithay::delegate_output;
use smithay::delegate_seat;
use smithay::delegate_shm;
use smithay::delegate_xdg_decoration;
use smithay::delegate_xdg_shell;
use smithay::input::Seat;
use smithay::output::{Mode as OutputMode, Output, PhysicalProperties, Subpixel};
use smithay::reexports::calloop::generic::Generic;
use smithay::reexports::calloop::{Interest, LoopHandle, Mode, PostAction};
use smithay::reexports::wayland_protocols::xdg::decoration::zv1::server::zxdg_toplevel_decoration_v1::Mode as DecorationMode;
use smithay::reexports::wayland_server::backend::{ClientData, ClientId, DisconnectReason};
use smithay::reexports::wayland_server::protocol::{wl_buffer, wl_seat, wl_surface::WlSurface};
use smithay::reexports::wayland_server::{Client, Display, DisplayHandle, Resource};
use smithay::utils::{Serial, Transform};
use smithay::wayland::buffer::BufferHandler;
use smithay::wayland::compositor::{
    CompositorClientState, CompositorHandler, CompositorState, get_parent, with_states,
};
use smithay::wayland::output::{OutputHandler, OutputManagerState};
use smithay::wayland::selection::{SelectionHandler, SelectionSource, SelectionTarget};
use smithay::wayland::selection::data_device::{
    ClientDndGrabHandler, DataDeviceHandler, DataDeviceState, ServerDndGrabHandler,
    set_data_device_focus,
};
use smithay::wayland::shell::xdg::decoration::{XdgDecorationHandler, XdgDecorationState};
use smithay::wayland::shell::xdg::{
    PopupSurface, PositionerState, ToplevelSurface, XdgShellHandler, XdgShellState,
    XdgToplevelSurfaceData,
};
use smithay::wayland::shm::{ShmHandler, ShmState};
use smithay::wayland::socket::ListeningSocketSource;

use crate::layout::{OutputArea, WinId};
use crate::state::State;

/// The name shown in the title bar of GUI-domain windows (a reserved qube name).
pub const GUI_DOMAIN_NAME: &str = "corral";

/// Smithay's Wayland state for the GUI domain's own clients.
pub struct Wayland {
    pub display_handle: DisplayHandle,
    pub compositor: CompositorState,
    pub xdg_shell: XdgShellState,
    pub shm: ShmState,
    pub output_manager: OutputManagerState,
    pub data_device: DataDeviceState,
    pub decoration: XdgDecorationState,
    pub outputs: Vec<Output>,
    /// The socket name in `$XDG_RUNTIME_DIR`, when `--gui-socket` opened one.
    pub socket_name: Option<String>,
}

impl std::fmt::Debug for Wayland {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wayland")
            .field("socket_name", &self.socket_name)
            .finish_non_exhaustive()
    }
}

/// A toplevel of a GUI-domain client.
#[derive(Debug, Clone)]
pub struct LocalWindow {
    pub toplevel: ToplevelSurface,
    pub mapped: bool,
}

pub type LocalWindows = HashMap<WinId, LocalWindow>;

#[derive(Debug, Default)]
pub struct ClientState {
    pub compositor_state: CompositorClientState,
}

impl ClientData for ClientState {
    fn initialized(&self, _client_id: ClientId) {}
    fn disconnected(&self, _client_id: ClientId, _reason: DisconnectReason) {}
}

impl Wayland {
    /// Creates the display and the globals; registers the display on the event loop.
    pub fn new(handle: &LoopHandle<'static, State>) -> anyhow::Result<(Wayland, DisplayHandle)> {
        let display: Display<State> = Display::new()?;
        let dh = display.handle();
        let wayland = Wayland {
            display_handle: dh.clone(),
            compositor: CompositorState::new::<State>(&dh),
            xdg_shell: XdgShellState::new::<State>(&dh),
            shm: ShmState::new::<State>(&dh, vec![]),
            output_manager: OutputManagerState::new_with_xdg_output::<State>(&dh),
            data_device: DataDeviceState::new::<State>(&dh),
            decoration: XdgDecorationState::new::<State>(&dh),
            outputs: Vec::new(),
            socket_name: None,
        };
        handle
            .insert_source(
                Generic::new(display, Interest::READ, Mode::Level),
                |_, display, state: &mut State| {
                    // SAFETY: `get_mut` must not be used to drop or replace the display while it
                    // is registered; we only dispatch its clients.
                    let display = unsafe { display.get_mut() };
                    if let Err(e) = display.dispatch_clients(state) {
                        tracing::warn!("dispatching GUI-domain clients failed: {e}");
                    }
                    Ok(PostAction::Continue)
                },
            )
            .map_err(|e| anyhow::anyhow!("registering the Wayland display: {e}"))?;
        Ok((wayland, dh))
    }

    /// Opens the trusted socket for GUI-domain apps in `$XDG_RUNTIME_DIR`.
    pub fn listen(
        &mut self,
        handle: &LoopHandle<'static, State>,
        name: Option<&str>,
    ) -> anyhow::Result<String> {
        let source = match name {
            Some(name) => ListeningSocketSource::with_name(name),
            None => ListeningSocketSource::new_auto(),
        }
        .map_err(|e| anyhow::anyhow!("opening the GUI-domain Wayland socket: {e}"))?;
        let socket_name = source.socket_name().to_string_lossy().into_owned();
        handle
            .insert_source(source, |stream, _, state: &mut State| {
                if let Err(e) = state
                    .wayland
                    .display_handle
                    .insert_client(stream, Arc::new(ClientState::default()))
                {
                    tracing::warn!("a GUI-domain client could not be added: {e}");
                }
            })
            .map_err(|e| anyhow::anyhow!("registering the GUI-domain socket: {e}"))?;
        self.socket_name = Some(socket_name.clone());
        Ok(socket_name)
    }

    /// Makes the `wl_output` globals match the layout's outputs.
    pub fn sync_outputs(&mut self, areas: &[OutputArea]) {
        while self.outputs.len() > areas.len() {
            self.outputs.pop();
        }
        for (i, area) in areas.iter().enumerate() {
            if self.outputs.len() <= i {
                let output = Output::new(
                    area.name.clone(),
                    PhysicalProperties {
                        size: (0, 0).into(),
                        subpixel: Subpixel::Unknown,
                        make: "Corral".into(),
                        model: area.name.clone(),
                    },
                );
                output.create_global::<State>(&self.display_handle);
                self.outputs.push(output);
            }
            let mode = OutputMode {
                size: (area.rect.w, area.rect.h).into(),
                refresh: 60_000,
            };
            let output = &self.outputs[i];
            output.change_current_state(
                Some(mode),
                Some(Transform::Normal),
                None,
                Some((area.rect.x, area.rect.y).into()),
            );
            output.set_preferred(mode);
        }
    }
}

/// The title a GUI-domain app gave its window.
pub fn local_title(toplevel: &ToplevelSurface) -> String {
    with_states(toplevel.wl_surface(), |states| {
        states
            .data_map
            .get::<XdgToplevelSurfaceData>()
            .and_then(|d| d.lock().ok().and_then(|d| d.title.clone()))
    })
    .unwrap_or_default()
}

pub fn local_app_id(toplevel: &ToplevelSurface) -> String {
    with_states(toplevel.wl_surface(), |states| {
        states
            .data_map
            .get::<XdgToplevelSurfaceData>()
            .and_then(|d| d.lock().ok().and_then(|d| d.app_id.clone()))
    })
    .unwrap_or_default()
}

/// The size of a surface's committed content, if it has any.
pub fn surface_size(surface: &WlSurface) -> Option<(i32, i32)> {
    with_renderer_surface_state(surface, |s| s.surface_size())
        .flatten()
        .map(|s| (s.w, s.h))
}

impl State {
    pub fn local_win_of(&self, surface: &WlSurface) -> Option<WinId> {
        self.local_windows
            .iter()
            .find(|(_, w)| w.toplevel.wl_surface() == surface)
            .map(|(id, _)| *id)
    }

    /// Sends a local window its size and states.
    pub fn configure_local(&mut self, win: WinId) {
        let Some(window) = self.local_windows.get(&win) else {
            return;
        };
        let Some(t) = self.layout.toplevel(win) else {
            return;
        };
        let focused = self.layout.focus() == Some(win);
        let maximized = t.maximized.is_some();
        let size = t.configured;
        window.toplevel.with_pending_state(|state| {
            use smithay::reexports::wayland_protocols::xdg::shell::server::xdg_toplevel::State as S;
            state.size = size.map(|(w, h)| (w, h).into());
            if focused {
                state.states.set(S::Activated);
            } else {
                state.states.unset(S::Activated);
            }
            if maximized {
                state.states.set(S::Maximized);
            } else {
                state.states.unset(S::Maximized);
            }
        });
        if window.toplevel.is_initial_configure_sent() {
            window.toplevel.send_pending_configure();
        }
    }

    /// Frame callbacks for GUI-domain surfaces after a frame was drawn.
    pub fn local_frames_presented(&mut self) {
        let Some(output) = self.wayland.outputs.first().cloned() else {
            return;
        };
        let time = self.started.elapsed();
        for window in self.local_windows.values() {
            smithay::desktop::utils::send_frames_surface_tree(
                window.toplevel.wl_surface(),
                &output,
                time,
                None,
                |_, _| Some(output.clone()),
            );
        }
    }
}

impl CompositorHandler for State {
    fn compositor_state(&mut self) -> &mut CompositorState {
        &mut self.wayland.compositor
    }

    fn client_compositor_state<'a>(&self, client: &'a Client) -> &'a CompositorClientState {
        match client.get_data::<ClientState>() {
            Some(data) => &data.compositor_state,
            None => unreachable!("every client is inserted with ClientState"),
        }
    }

    fn commit(&mut self, surface: &WlSurface) {
        on_commit_buffer_handler::<Self>(surface);
        let mut root = surface.clone();
        while let Some(parent) = get_parent(&root) {
            root = parent;
        }
        // A screen locker's surface (`crate::lock::session_lock`): drawn, not a window.
        if self.lock_surface_committed(&root) {
            return;
        }
        let Some(win) = self.local_win_of(&root) else {
            return;
        };
        let Some(window) = self.local_windows.get(&win).cloned() else {
            return;
        };
        if !window.toplevel.is_initial_configure_sent() {
            window.toplevel.send_configure();
            return;
        }
        let pointer = self.input.pointer;
        match surface_size(&root) {
            Some(size) => {
                if !window.mapped {
                    if let Some(w) = self.local_windows.get_mut(&win) {
                        w.mapped = true;
                    }
                    self.layout.set_mapped(win, true, pointer);
                }
                self.layout.content_committed(win, size, pointer);
            }
            None if window.mapped => {
                // A null buffer unmaps.
                if let Some(w) = self.local_windows.get_mut(&win) {
                    w.mapped = false;
                }
                self.layout.set_mapped(win, false, pointer);
                self.sync_focus();
            }
            None => {}
        }
        self.queue_redraw();
    }
}

impl BufferHandler for State {
    fn buffer_destroyed(&mut self, _buffer: &wl_buffer::WlBuffer) {}
}

impl ShmHandler for State {
    fn shm_state(&self) -> &ShmState {
        &self.wayland.shm
    }
}

impl XdgShellHandler for State {
    fn xdg_shell_state(&mut self) -> &mut XdgShellState {
        &mut self.wayland.xdg_shell
    }

    fn new_toplevel(&mut self, surface: ToplevelSurface) {
        let win = self.qubes.alloc_win();
        self.layout.add_toplevel(win);
        surface.with_pending_state(|state| {
            use smithay::reexports::wayland_protocols::xdg::decoration::zv1::server::zxdg_toplevel_decoration_v1::Mode;
            state.decoration_mode = Some(Mode::ServerSide);
        });
        self.local_windows.insert(
            win,
            LocalWindow {
                toplevel: surface,
                mapped: false,
            },
        );
        tracing::info!("GUI-domain window {win} created");
    }

    fn new_popup(&mut self, surface: PopupSurface, _positioner: PositionerState) {
        // Not shown yet; configured so the app does not wait forever.
        let _ = surface.send_configure();
    }

    fn grab(&mut self, _surface: PopupSurface, _seat: wl_seat::WlSeat, _serial: Serial) {}

    fn reposition_request(
        &mut self,
        surface: PopupSurface,
        positioner: PositionerState,
        token: u32,
    ) {
        surface.with_pending_state(|state| {
            state.geometry = positioner.get_geometry();
            state.positioner = positioner;
        });
        surface.send_repositioned(token);
    }

    fn toplevel_destroyed(&mut self, surface: ToplevelSurface) {
        if let Some(win) = self.local_win_of(surface.wl_surface()) {
            self.local_windows.remove(&win);
            self.layout.remove(win);
            self.render_cache.forget_window(win);
            self.input.forget_window(win);
            self.sync_focus();
            self.queue_redraw();
        }
    }

    fn title_changed(&mut self, _surface: ToplevelSurface) {
        self.queue_redraw();
    }
}

impl XdgDecorationHandler for State {
    fn new_decoration(&mut self, toplevel: ToplevelSurface) {
        toplevel
            .with_pending_state(|state| state.decoration_mode = Some(DecorationMode::ServerSide));
    }

    fn request_mode(&mut self, toplevel: ToplevelSurface, _mode: DecorationMode) {
        // The frame is always the compositor's.
        toplevel
            .with_pending_state(|state| state.decoration_mode = Some(DecorationMode::ServerSide));
        if toplevel.is_initial_configure_sent() {
            toplevel.send_pending_configure();
        }
    }

    fn unset_mode(&mut self, toplevel: ToplevelSurface) {
        toplevel
            .with_pending_state(|state| state.decoration_mode = Some(DecorationMode::ServerSide));
        if toplevel.is_initial_configure_sent() {
            toplevel.send_pending_configure();
        }
    }
}

impl SelectionHandler for State {
    type SelectionUserData = ();

    /// A GUI-domain app set the clipboard: remembered for Ctrl+Shift+C on a GUI-domain window.
    /// Whatever a paste offered the GUI domain before is dropped.
    fn new_selection(
        &mut self,
        ty: SelectionTarget,
        source: Option<SelectionSource>,
        _seat: Seat<Self>,
    ) {
        if ty == SelectionTarget::Clipboard {
            self.clipboard.local_client_mimes = source.map(|s| s.mime_types()).unwrap_or_default();
            self.clipboard.local_offer = None;
        }
    }

    /// A GUI-domain app pastes what a Ctrl+Shift+V offered it.
    fn send_selection(
        &mut self,
        ty: SelectionTarget,
        mime_type: String,
        fd: std::os::fd::OwnedFd,
        _seat: Seat<Self>,
        _user_data: &(),
    ) {
        if ty == SelectionTarget::Clipboard {
            self.send_local_offer(&mime_type, fd);
        }
    }
}

impl DataDeviceHandler for State {
    fn data_device_state(&self) -> &DataDeviceState {
        &self.wayland.data_device
    }
}

impl ClientDndGrabHandler for State {}
impl ServerDndGrabHandler for State {}

impl OutputHandler for State {}

/// Keeps the data device focus on the focused GUI-domain client (none for qube windows: their
/// clipboard goes through the compositor's global clipboard, decision 6).
pub fn data_device_focus(state: &State, seat: &Seat<State>, surface: Option<&WlSurface>) {
    let dh = &state.wayland.display_handle;
    let client = surface.and_then(|s| dh.get_client(s.id()).ok());
    set_data_device_focus(dh, seat, client);
}

delegate_compositor!(State);
delegate_shm!(State);
delegate_xdg_shell!(State);
delegate_xdg_decoration!(State);
delegate_seat!(State);
delegate_data_device!(State);
delegate_output!(State);
