//! Xwayland (behind `--xwayland`): X11 apps' windows are forwarded like Wayland ones.
//!
//! Managed X11 windows become toplevels, placed at the X root's origin (the GUI domain
//! positions them). Override-redirect windows (menus, tooltips) become popups of the X11
//! toplevel they belong to (`WM_TRANSIENT_FOR`, else the window under the pointer, else the
//! newest X11 toplevel), positioned relative to it.

use std::os::fd::OwnedFd;
use std::process::Stdio;

use smithay::delegate_xwayland_shell;
use smithay::reexports::wayland_server::protocol::wl_surface::WlSurface;
use smithay::utils::{Logical, Rectangle};
use smithay::wayland::selection::SelectionTarget;
use smithay::wayland::selection::data_device::{
    clear_data_device_selection, request_data_device_client_selection, set_data_device_selection,
};
use smithay::wayland::xwayland_shell::{XWaylandShellHandler, XWaylandShellState};
use smithay::xwayland::xwm::{Reorder, ResizeEdge, WmWindowProperty, XwmId};
use smithay::xwayland::{X11Surface, X11Wm, XWayland, XWaylandEvent, XwmHandler};
use tracing::{info, warn};

use corral_protocol::limits::{MAX_APP_ID_BYTES, MAX_TITLE_BYTES};
use corral_protocol::{SanitizedText, StateRequest, WindowId};

use crate::clipboard::SelectionOrigin;
use crate::state::AgentState;
use crate::windows::Role;

impl AgentState {
    /// Starts Xwayland; its window manager attaches once it is ready.
    pub fn start_xwayland(&mut self) -> anyhow::Result<()> {
        // Xwayland puts its sockets here; a minimal qube image may not have created it.
        let x11_dir = std::path::Path::new("/tmp/.X11-unix");
        if !x11_dir.exists() {
            use std::os::unix::fs::PermissionsExt;
            std::fs::create_dir_all(x11_dir)?;
            std::fs::set_permissions(x11_dir, std::fs::Permissions::from_mode(0o1777))?;
        }
        let (xwayland, client) = XWayland::spawn(
            &self.display_handle,
            None,
            std::iter::empty::<(String, String)>(),
            true,
            Stdio::null(),
            Stdio::null(),
            |_| (),
        )?;
        self.loop_handle
            .insert_source(
                xwayland,
                move |event, _, state: &mut AgentState| match event {
                    XWaylandEvent::Ready {
                        x11_socket,
                        display_number,
                    } => {
                        match X11Wm::start_wm(state.loop_handle.clone(), x11_socket, client.clone())
                        {
                            Ok(wm) => {
                                info!(display = display_number, "Xwayland is ready");
                                state.xwm = Some(wm);
                                state.xwayland_client = Some(client.clone());
                                state.x_display = Some(display_number);
                                state.xwayland_ready();
                            }
                            Err(err) => warn!(%err, "could not start the X11 window manager"),
                        }
                    }
                    XWaylandEvent::Error => {
                        warn!("Xwayland failed to start; X11 apps will not run");
                        state.xwayland_wanted = false;
                        state.xwayland_ready();
                    }
                },
            )
            .map_err(|e| anyhow::anyhow!("registering Xwayland: {e}"))?;
        Ok(())
    }

    /// Pairs X11 windows with their `wl_surface` the old way (`WL_SURFACE_ID`), which is what
    /// Debian 12's Xwayland 22.1 does: it predates the xwayland-shell protocol. Newer Xwayland
    /// versions are paired by Smithay through `surface_associated`.
    pub fn associate_x11_surfaces(&mut self) {
        let Some(client) = self.xwayland_client.clone() else {
            return;
        };
        let unpaired: Vec<(WindowId, u32)> = self
            .windows
            .ids()
            .into_iter()
            .filter_map(|id| {
                let window = self.windows.get(id)?;
                match (&window.role, &window.surface) {
                    #[allow(deprecated)]
                    (Role::X11(x11), None) => x11.wl_surface_id().map(|sid| (id, sid)),
                    _ => None,
                }
            })
            .collect();
        for (id, protocol_id) in unpaired {
            if let Ok(surface) =
                client.object_from_protocol_id::<WlSurface>(&self.display_handle, protocol_id)
            {
                self.windows.set_surface(id, surface);
            }
        }
    }

    fn x11_window_id(&self, window: &X11Surface) -> Option<WindowId> {
        self.windows.id_for_x11(window)
    }

    fn refresh_x11_title(&mut self, window: &X11Surface) {
        let Some(id) = self.x11_window_id(window) else {
            return;
        };
        if let Some(forwarded) = self.windows.get_mut(id) {
            forwarded.title = SanitizedText::sanitize(&window.title(), MAX_TITLE_BYTES);
            forwarded.app_id = SanitizedText::sanitize(&window.class(), MAX_APP_ID_BYTES);
            forwarded.dirty = true;
        }
    }

    /// The X11 toplevel an override-redirect window belongs to.
    fn x11_popup_parent(&self, window: &X11Surface) -> Option<WindowId> {
        let transient = window.is_transient_for().and_then(|parent_xid| {
            self.windows.ids().into_iter().find(|id| {
                self.windows
                    .get(*id)
                    .is_some_and(|w| matches!(&w.role, Role::X11(x) if x.window_id() == parent_xid))
            })
        });
        let is_x11_toplevel = |id: &WindowId| {
            self.windows
                .get(*id)
                .is_some_and(|w| matches!(w.role, Role::X11(_)) && w.parent.is_none())
        };
        transient
            .or(self.pointer_window.filter(is_x11_toplevel))
            .or_else(|| self.windows.ids().into_iter().rev().find(is_x11_toplevel))
    }

    fn x11_request_state(&mut self, window: &X11Surface, request: StateRequest) {
        if let Some(id) = self.x11_window_id(window) {
            self.request_state(id, request);
        }
    }
}

impl XWaylandShellHandler for AgentState {
    fn xwayland_shell_state(&mut self) -> &mut XWaylandShellState {
        &mut self.xwayland_shell_state
    }

    fn surface_associated(&mut self, _xwm: XwmId, wl_surface: WlSurface, window: X11Surface) {
        if let Some(id) = self.x11_window_id(&window) {
            self.windows.set_surface(id, wl_surface);
        }
    }
}

impl XwmHandler for AgentState {
    fn xwm_state(&mut self, _xwm: XwmId) -> &mut X11Wm {
        self.xwm
            .as_mut()
            .unwrap_or_else(|| unreachable!("X11 events only arrive once the WM exists"))
    }

    fn new_window(&mut self, _xwm: XwmId, _window: X11Surface) {}

    fn new_override_redirect_window(&mut self, _xwm: XwmId, _window: X11Surface) {}

    fn map_window_request(&mut self, _xwm: XwmId, window: X11Surface) {
        if let Err(err) = window.set_mapped(true) {
            warn!(%err, "mapping an X11 window failed");
            return;
        }
        let mut geometry = window.geometry();
        geometry.loc = (0, 0).into();
        if let Err(err) = window.configure(geometry) {
            warn!(%err, "configuring an X11 window failed");
        }
        if self.x11_window_id(&window).is_none() {
            let surface = window.wl_surface();
            self.windows
                .insert(Role::X11(window.clone()), None, surface);
            self.refresh_x11_title(&window);
        }
    }

    fn mapped_override_redirect_window(&mut self, _xwm: XwmId, window: X11Surface) {
        if self.x11_window_id(&window).is_some() {
            return;
        }
        let Some(parent) = self.x11_popup_parent(&window) else {
            return;
        };
        let parent_origin = self
            .windows
            .get(parent)
            .and_then(|w| match &w.role {
                Role::X11(x) => Some(x.geometry().loc),
                _ => None,
            })
            .unwrap_or_default();
        let geometry = window.geometry();
        let surface = window.wl_surface();
        let id = self
            .windows
            .insert(Role::X11(window), Some(parent), surface);
        if let Some(forwarded) = self.windows.get_mut(id) {
            forwarded.popup_geometry =
                Rectangle::<i32, Logical>::new(geometry.loc - parent_origin, geometry.size);
        }
    }

    fn unmapped_window(&mut self, _xwm: XwmId, window: X11Surface) {
        if let Some(id) = self.x11_window_id(&window) {
            self.destroy_window(id);
        }
        if !window.is_override_redirect() {
            let _ = window.set_mapped(false);
        }
    }

    fn destroyed_window(&mut self, _xwm: XwmId, window: X11Surface) {
        if let Some(id) = self.x11_window_id(&window) {
            self.destroy_window(id);
        }
    }

    fn configure_request(
        &mut self,
        _xwm: XwmId,
        window: X11Surface,
        _x: Option<i32>,
        _y: Option<i32>,
        w: Option<u32>,
        h: Option<u32>,
        _reorder: Option<Reorder>,
    ) {
        // Sizes are granted (the GUI domain can configure later); positions are not: the GUI
        // domain places windows.
        let mut geometry = window.geometry();
        if let Some(w) = w {
            geometry.size.w = w.min(i32::MAX as u32) as i32;
        }
        if let Some(h) = h {
            geometry.size.h = h.min(i32::MAX as u32) as i32;
        }
        if self
            .x11_window_id(&window)
            .and_then(|id| self.windows.get(id))
            .is_none_or(|w| w.parent.is_none())
        {
            geometry.loc = (0, 0).into();
        }
        let _ = window.configure(geometry);
    }

    fn configure_notify(
        &mut self,
        _xwm: XwmId,
        window: X11Surface,
        geometry: Rectangle<i32, Logical>,
        _above: Option<u32>,
    ) {
        let Some(id) = self.x11_window_id(&window) else {
            return;
        };
        let parent_origin = self
            .windows
            .get(id)
            .and_then(|w| w.parent)
            .and_then(|p| self.windows.get(p))
            .and_then(|w| match &w.role {
                Role::X11(x) => Some(x.geometry().loc),
                _ => None,
            });
        if let Some(forwarded) = self.windows.get_mut(id) {
            if let Some(origin) = parent_origin {
                forwarded.popup_geometry = Rectangle::new(geometry.loc - origin, geometry.size);
            }
            forwarded.dirty = true;
        }
    }

    fn property_notify(&mut self, _xwm: XwmId, window: X11Surface, property: WmWindowProperty) {
        if matches!(property, WmWindowProperty::Title | WmWindowProperty::Class) {
            self.refresh_x11_title(&window);
        }
    }

    fn maximize_request(&mut self, _xwm: XwmId, window: X11Surface) {
        self.x11_request_state(&window, StateRequest::Maximize);
    }

    fn unmaximize_request(&mut self, _xwm: XwmId, window: X11Surface) {
        self.x11_request_state(&window, StateRequest::Unmaximize);
    }

    fn fullscreen_request(&mut self, _xwm: XwmId, window: X11Surface) {
        self.x11_request_state(&window, StateRequest::Fullscreen);
    }

    fn unfullscreen_request(&mut self, _xwm: XwmId, window: X11Surface) {
        self.x11_request_state(&window, StateRequest::Unfullscreen);
    }

    fn minimize_request(&mut self, _xwm: XwmId, window: X11Surface) {
        self.x11_request_state(&window, StateRequest::Minimize);
    }

    fn resize_request(
        &mut self,
        _xwm: XwmId,
        _window: X11Surface,
        _button: u32,
        _edge: ResizeEdge,
    ) {
    }

    fn move_request(&mut self, _xwm: XwmId, _window: X11Surface, _button: u32) {}

    fn allow_selection_access(&mut self, _xwm: XwmId, _selection: SelectionTarget) -> bool {
        // Inside one qube every app shares the selection, as Wayland apps do.
        true
    }

    fn send_selection(
        &mut self,
        _xwm: XwmId,
        selection: SelectionTarget,
        mime_type: String,
        fd: OwnedFd,
    ) {
        if selection != SelectionTarget::Clipboard {
            return;
        }
        let pasted =
            smithay::wayland::selection::data_device::current_data_device_selection_userdata(
                &self.seat,
            )
            .and_then(|origin| match &*origin {
                SelectionOrigin::Pasted(data) => Some(data.clone()),
                SelectionOrigin::X11 => None,
            });
        match pasted {
            Some(data) => self.serve_pasted_data(data, fd),
            None => {
                if let Err(err) = request_data_device_client_selection(&self.seat, mime_type, fd) {
                    warn!(?err, "an X11 app could not read the selection");
                }
            }
        }
    }

    fn new_selection(&mut self, _xwm: XwmId, selection: SelectionTarget, mime_types: Vec<String>) {
        if selection != SelectionTarget::Clipboard {
            return;
        }
        self.clipboard.selection_offered(Some(mime_types.clone()));
        set_data_device_selection(
            &self.display_handle,
            &self.seat,
            mime_types,
            SelectionOrigin::X11,
        );
    }

    fn cleared_selection(&mut self, _xwm: XwmId, selection: SelectionTarget) {
        if selection == SelectionTarget::Clipboard {
            self.clipboard.selection_offered(None);
            clear_data_device_selection(&self.display_handle, &self.seat);
        }
    }
}

delegate_xwayland_shell!(AgentState);
