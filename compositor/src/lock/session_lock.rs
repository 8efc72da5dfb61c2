//! ext-session-lock-v1 for GUI-domain lockers (swaylock), through Smithay's `session_lock`.
//!
//! The global lives on the GUI domain's own display, whose only clients come from the trusted
//! local socket (`--gui-socket`); qubes never reach it (they speak the semantic protocol to
//! the compositor through their agents, decision 1), so no qube can lock or unlock.
//!
//! Rules:
//! - A locker may lock when the session is unlocked, or when the lock it would take over was
//!   abandoned by a locker that went away. It may not take over the built-in lock (that one is
//!   unlocked by the user's password only) nor a live locker's lock: such a request gets
//!   `finished`.
//! - Only the live locker holding the lock can unlock, and only after the compositor confirmed
//!   its lock with `locked`. Smithay calls `SessionLockHandler::unlock` without saying who
//!   asked (and even after posting a protocol error for an unconfirmed lock), so the
//!   `ext_session_lock_v1` requests are dispatched here first, which records the asking lock
//!   object, and `unlock` checks it against the holder.
//! - A locker whose lock object goes away without a valid unlock (it crashed, was killed, or
//!   destroyed it) leaves the session locked: the lock becomes `Abandoned`, the built-in lock
//!   screen takes over every output, and a new locker may take over.

use smithay::output::Output;
use smithay::reexports::wayland_protocols::ext::session_lock::v1::server::ext_session_lock_v1::{
    ExtSessionLockV1, Request as LockRequest,
};
use smithay::reexports::wayland_server::backend::ClientId;
use smithay::reexports::wayland_server::protocol::wl_output::WlOutput;
use smithay::reexports::wayland_server::protocol::wl_surface::WlSurface;
use smithay::reexports::wayland_server::{
    Client, DataInit, Dispatch, DisplayHandle, Resource, Weak,
};
use smithay::wayland::session_lock::{
    LockSurface, SessionLockHandler, SessionLockManagerState, SessionLockState, SessionLocker,
};

use super::{Holder, LockReason};
use crate::layout::{OutputArea, Rect, WinId};
use crate::local::{ClientState, Wayland};
use crate::state::State;

/// The window id lock surfaces carry as focus targets (no window of the layout has it).
pub const LOCK_SURFACE_WIN: WinId = WinId::MAX;

/// Creates the `ext_session_lock_manager_v1` global, visible to the GUI domain's local
/// clients only.
pub fn manager_global(display: &DisplayHandle) -> SessionLockManagerState {
    SessionLockManagerState::new::<State, _>(display, |client: &Client| {
        client.get_data::<ClientState>().is_some()
    })
}

/// A locker's surface on one output.
#[derive(Debug, Clone)]
pub struct LockerSurface {
    pub surface: LockSurface,
    /// The output's name, as the `wl_output` global was created.
    pub output_name: Option<String>,
}

/// The locker holding (or having held) the lock.
#[derive(Debug)]
pub struct ActiveLocker {
    lock: Weak<ExtSessionLockV1>,
    client: Option<ClientId>,
    /// `locked` was sent: from here the locker may unlock.
    confirmed: bool,
    pub surfaces: Vec<LockerSurface>,
}

impl ActiveLocker {
    fn is(&self, lock: &ExtSessionLockV1) -> bool {
        self.lock.upgrade().is_ok_and(|l| l == *lock)
    }

    pub fn first_surface(&self) -> Option<WlSurface> {
        self.surfaces
            .iter()
            .find(|s| s.surface.alive())
            .map(|s| s.surface.wl_surface().clone())
    }

    /// The live surface the locker gave the output at `rect`.
    pub fn surface_for(
        &self,
        wayland: &Wayland,
        outputs: &[OutputArea],
        rect: Rect,
    ) -> Option<WlSurface> {
        let area = outputs.iter().find(|o| o.rect == rect)?;
        let _ = wayland;
        self.surfaces
            .iter()
            .filter(|s| s.surface.alive())
            .find(|s| s.output_name.as_deref() == Some(area.name.as_str()))
            .map(|s| s.surface.wl_surface().clone())
    }
}

impl State {
    /// Whether `surface` is a lock surface of the current locker; a commit on it is drawn.
    pub fn lock_surface_committed(&mut self, surface: &WlSurface) -> bool {
        let is_lock_surface = self
            .lock
            .locker
            .as_ref()
            .is_some_and(|l| l.surfaces.iter().any(|s| s.surface.wl_surface() == surface));
        if is_lock_surface {
            self.queue_redraw();
            // Its first buffer may make it the keyboard's target.
            self.sync_lock_focus();
        }
        is_lock_surface
    }

    /// Frame callbacks for the locker's surfaces after a frame was drawn.
    pub fn lock_frames_presented(&mut self) {
        let Some(locker) = self.lock.locker.as_ref() else {
            return;
        };
        let time = self.started.elapsed();
        for s in &locker.surfaces {
            if !s.surface.alive() {
                continue;
            }
            let output = s
                .output_name
                .as_ref()
                .and_then(|n| self.wayland.outputs.iter().find(|o| o.name() == *n))
                .or_else(|| self.wayland.outputs.first())
                .cloned();
            let Some(output) = output else {
                continue;
            };
            smithay::desktop::utils::send_frames_surface_tree(
                s.surface.wl_surface(),
                &output,
                time,
                None,
                |_, _| Some(output.clone()),
            );
        }
    }

    /// Sizes every lock surface to its output again (after an output changed).
    pub fn configure_lock_surfaces(&mut self) {
        let Some(locker) = self.lock.locker.as_ref() else {
            return;
        };
        for s in &locker.surfaces {
            if !s.surface.alive() {
                continue;
            }
            let Some(area) = s
                .output_name
                .as_ref()
                .and_then(|n| self.layout.outputs().iter().find(|o| o.name == *n))
            else {
                continue;
            };
            let size = (area.rect.w.max(1) as u32, area.rect.h.max(1) as u32);
            s.surface
                .with_pending_state(|st| st.size = Some(size.into()));
            s.surface.send_configure();
        }
    }

    /// The locker's lock object went away. Unless it unlocked validly (then the session is
    /// already unlocked), the lock stays and is abandoned.
    fn locker_gone(&mut self, lock_id: &smithay::reexports::wayland_server::backend::ObjectId) {
        let holds = self
            .lock
            .locker
            .as_ref()
            .is_some_and(|l| l.lock.id() == *lock_id);
        if !holds {
            return;
        }
        self.lock.locker = None;
        if self.lock.is_locked() {
            tracing::warn!("the screen locker went away without unlocking; staying locked");
            self.lock.holder = Some(Holder::Abandoned);
            // Its surfaces are gone: nothing of it keeps keyboard or pointer focus.
            self.sync_lock_focus();
            let (x, y) = self.input.pointer;
            let time = self.now_ms();
            self.lock_intercepts_motion(x, y, time);
            self.queue_redraw();
        }
    }
}

impl SessionLockHandler for State {
    fn lock_state(&mut self) -> &mut SessionLockManagerState {
        &mut self.lock.manager
    }

    fn lock(&mut self, confirmation: SessionLocker) {
        let lock = confirmation.ext_session_lock().clone();
        let may_take = match self.lock.holder() {
            None => true,
            Some(Holder::Abandoned) => true,
            Some(Holder::Builtin) | Some(Holder::Locker) => false,
        };
        if !may_take {
            tracing::info!("a screen locker asked to lock an already locked session: refused");
            // Dropping the confirmation sends `finished`.
            drop(confirmation);
            return;
        }
        let taking_over = self.lock.is_locked();
        self.engage_lock(Holder::Locker, LockReason::Locker);
        self.lock.holder = Some(Holder::Locker);
        self.lock.locker = Some(ActiveLocker {
            lock: lock.downgrade(),
            client: lock.client().map(|c| c.id()),
            confirmed: false,
            surfaces: Vec::new(),
        });
        if taking_over {
            tracing::info!("a new screen locker took over the abandoned lock");
            // The locker asks for the password now; a check typed before is dropped.
            self.lock.cancel_attempt();
        }
        // Nothing but the lock screen is drawn from here: draw it before confirming.
        self.render();
        if let Some(l) = self.lock.locker.as_mut() {
            l.confirmed = true;
        }
        confirmation.lock();
    }

    fn unlock(&mut self) {
        // Smithay does not say who asked; `Dispatch` below recorded it.
        let Some(asking) = self.lock.unlock_request.take() else {
            tracing::warn!("an unlock request from no known lock object: ignored");
            return;
        };
        let valid = self.lock.holder() == Some(Holder::Locker)
            && self
                .lock
                .locker
                .as_ref()
                .is_some_and(|l| l.confirmed && l.is(&asking));
        if valid {
            self.lock.locker = None;
            self.unlock();
        } else {
            tracing::warn!("a screen locker that does not hold the lock asked to unlock: ignored");
        }
    }

    fn new_surface(&mut self, surface: LockSurface, wl_output: WlOutput) {
        let client = surface.wl_surface().client().map(|c| c.id());
        let Some(locker) = self.lock.locker.as_mut() else {
            return;
        };
        if locker.client != client || client.is_none() {
            // A surface of a lock that was refused: never drawn, never focused.
            return;
        }
        let output_name = Output::from_resource(&wl_output).map(|o| o.name());
        let size = output_name
            .as_ref()
            .and_then(|n| self.layout.outputs().iter().find(|o| o.name == *n))
            .map(|o| (o.rect.w.max(1) as u32, o.rect.h.max(1) as u32));
        if let Some(size) = size {
            surface.with_pending_state(|st| st.size = Some(size.into()));
        }
        locker.surfaces.retain(|s| s.surface.alive());
        locker.surfaces.push(LockerSurface {
            surface,
            output_name,
        });
        self.queue_redraw();
    }
}

impl Dispatch<ExtSessionLockV1, SessionLockState> for State {
    fn request(
        state: &mut State,
        client: &Client,
        resource: &ExtSessionLockV1,
        request: LockRequest,
        data: &SessionLockState,
        dhandle: &DisplayHandle,
        data_init: &mut DataInit<'_, State>,
    ) {
        let unlocking = matches!(request, LockRequest::UnlockAndDestroy);
        if unlocking {
            state.lock.unlock_request = Some(resource.clone());
        }
        <SessionLockManagerState as Dispatch<ExtSessionLockV1, SessionLockState, State>>::request(
            state, client, resource, request, data, dhandle, data_init,
        );
        state.lock.unlock_request = None;
    }

    fn destroyed(
        state: &mut State,
        _client: ClientId,
        resource: &ExtSessionLockV1,
        _data: &SessionLockState,
    ) {
        state.locker_gone(&resource.id());
    }
}

smithay::reexports::wayland_server::delegate_global_dispatch!(State: [
    smithay::reexports::wayland_protocols::ext::session_lock::v1::server::ext_session_lock_manager_v1::ExtSessionLockManagerV1: smithay::wayland::session_lock::SessionLockManagerGlobalData
] => SessionLockManagerState);

smithay::reexports::wayland_server::delegate_dispatch!(State: [
    smithay::reexports::wayland_protocols::ext::session_lock::v1::server::ext_session_lock_manager_v1::ExtSessionLockManagerV1: ()
] => SessionLockManagerState);

smithay::reexports::wayland_server::delegate_dispatch!(State: [
    smithay::reexports::wayland_protocols::ext::session_lock::v1::server::ext_session_lock_surface_v1::ExtSessionLockSurfaceV1: smithay::wayland::session_lock::ExtLockSurfaceUserData
] => SessionLockManagerState);
