//! The compositor's one `State`: Smithay's seat, the layout, the qube connections, the trusted
//! layer, the backend. The event loop (calloop) owns it and hands it to every callback.

use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use corral_protocol::channel::ConnectionError;
use corral_protocol::{
    GuiMessage, OptionalSize, OutputId, OutputInfo, Point, SanitizedText, Scale, Size, WindowStates,
};
use smithay::input::keyboard::{KeyboardHandle, XkbConfig};
use smithay::input::pointer::PointerHandle;
use smithay::input::{Seat, SeatHandler, SeatState};
use smithay::reexports::calloop::generic::Generic;
use smithay::reexports::calloop::{Interest, LoopHandle, LoopSignal, Mode, PostAction};
use smithay::reexports::wayland_server::protocol::wl_surface::WlSurface;

use crate::backend::Backend;
use crate::input::{FocusTarget, InputState, QubeTarget};
use crate::labels::{self, Rgb};
use crate::layout::{Layout, LayoutConfig, OutputArea, Rect, WinId};
use crate::local::{LocalWindows, Wayland};
use crate::notify::Notifications;
use crate::qubes::{ConnId, DevAgent, MESSAGES_PER_WAKEUP, QubeConnection, QubeIdentity, Qubes};
use crate::render::RenderCache;

/// Settings from the command line.
#[derive(Debug, Clone)]
pub struct Config {
    pub layout: LayoutConfig,
    /// `corral msg key` and `pointer` are accepted.
    pub allow_input_injection: bool,
    /// Fullscreen requests are honoured (otherwise they become maximise, frame kept).
    pub allow_fullscreen: bool,
    pub dev_agent_command: Option<String>,
    pub ipc_socket: Option<PathBuf>,
    pub clipboard: crate::clipboard::ClipboardConfig,
    /// Minimum time between two frames (`--frame-interval-ms`; [`FRAME_INTERVAL`] by default).
    pub frame_interval: Duration,
}

/// Minimum time between two frames, unless `--frame-interval-ms` says otherwise.
pub const FRAME_INTERVAL: Duration = Duration::from_millis(16);
/// Half-period of the attention pulse.
pub const PULSE: Duration = Duration::from_millis(500);

pub struct State {
    pub handle: LoopHandle<'static, State>,
    pub signal: LoopSignal,
    pub started: Instant,
    pub config: Config,
    pub backend: Backend,
    pub wayland: Wayland,
    pub local_windows: LocalWindows,
    pub seat_state: SeatState<State>,
    pub seat: Seat<State>,
    pub keyboard: KeyboardHandle<State>,
    pub pointer: PointerHandle<State>,
    /// The XKB keymap sent to every agent before its first key.
    pub keymap: String,
    pub layout: Layout,
    pub qubes: Qubes,
    pub notifications: Notifications,
    /// The global clipboard: lives here, in compositor memory, only (decision 6).
    pub clipboard: crate::clipboard::GlobalClipboard,
    pub input: InputState,
    pub render_cache: RenderCache,
    pub redraw_needed: bool,
    /// The attention pulse phase of the last frame drawn.
    pub drawn_pulse: bool,
    pub last_frame: Option<Instant>,
    pub ipc_path: Option<PathBuf>,
    /// The embedded domain manager (`--domains`), to tell a crashed agent from a stopped qube.
    pub domain_manager: Option<std::sync::Arc<corral_domains::manager::Manager>>,
    /// The config file in use (`crate::config`), reloaded live.
    pub settings: crate::config::live::Settings,
    /// The lock screen (`crate::lock`): while locked no qube gets input or is drawn.
    pub lock: crate::lock::Lock,
    /// The launcher (`crate::launcher`): while open, the keyboard is its alone.
    pub launcher: crate::launcher::Launcher,
    /// The menu of a qube's panel chip, while open.
    pub panel_menu: Option<crate::panel::QubeMenu>,
    /// Buttons pressed on the panel or its menu: their releases are the panel's too.
    pub panel_swallowed: std::collections::HashSet<u32>,
    /// The domain manager's qube states as the panel last read them, and when.
    pub panel_states: std::cell::RefCell<Option<(Instant, Vec<corral_domains::api::QubeInfo>)>>,
    /// Where the domain manager's threads report back (`crate::domains::DomainEvent`).
    pub domain_events:
        Option<smithay::reexports::calloop::channel::Sender<crate::domains::DomainEvent>>,
    pub running: bool,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("layout", &self.layout)
            .field("qubes", &self.qubes.conns.len())
            .finish_non_exhaustive()
    }
}

impl SeatHandler for State {
    type KeyboardFocus = FocusTarget;
    type PointerFocus = FocusTarget;
    type TouchFocus = WlSurface;

    fn seat_state(&mut self) -> &mut SeatState<State> {
        &mut self.seat_state
    }

    fn focus_changed(&mut self, seat: &Seat<State>, focused: Option<&FocusTarget>) {
        let surface = focused.and_then(|f| match f {
            FocusTarget::Local { surface, .. } => Some(surface.clone()),
            FocusTarget::Qube(_) => None,
        });
        crate::local::data_device_focus(self, seat, surface.as_ref());
    }
}

impl State {
    pub fn new(
        handle: LoopHandle<'static, State>,
        signal: LoopSignal,
        config: Config,
        backend: Backend,
        mut wayland: Wayland,
    ) -> anyhow::Result<State> {
        let mut seat_state = SeatState::new();
        let mut seat = seat_state.new_wl_seat(&wayland.display_handle, "seat0");
        let xkb = XkbConfig::default();
        let keyboard = seat
            .add_keyboard(xkb, 400, 30)
            .context("creating the keyboard (xkbcommon keymap)")?;
        let pointer = seat.add_pointer();
        let keymap = default_keymap_string()?;
        let outputs = backend.output_areas();
        let pointer_start = outputs
            .first()
            .map(|o| {
                let (x, y) = o.rect.centre();
                (f64::from(x), f64::from(y))
            })
            .unwrap_or((0.0, 0.0));
        wayland.sync_outputs(&outputs);
        let layout = Layout::new(config.layout, outputs);
        let clipboard = crate::clipboard::GlobalClipboard::new(config.clipboard.clone());
        let lock =
            crate::lock::Lock::new(&wayland.display_handle, crate::lock::LockConfig::default());
        Ok(State {
            handle,
            signal,
            started: Instant::now(),
            config,
            backend,
            wayland,
            local_windows: LocalWindows::new(),
            seat_state,
            seat,
            keyboard,
            pointer,
            keymap,
            layout,
            qubes: Qubes::default(),
            notifications: Notifications::default(),
            clipboard,
            input: InputState::new(pointer_start),
            render_cache: RenderCache::default(),
            redraw_needed: true,
            drawn_pulse: false,
            last_frame: None,
            ipc_path: None,
            domain_manager: None,
            launcher: crate::launcher::Launcher::default(),
            panel_states: std::cell::RefCell::new(None),
            panel_menu: None,
            panel_swallowed: std::collections::HashSet::new(),
            domain_events: None,
            settings: crate::config::live::Settings::builtin(),
            lock,
            running: true,
        })
    }

    pub fn now_ms(&self) -> u32 {
        self.started.elapsed().as_millis() as u32
    }

    pub fn queue_redraw(&mut self) {
        self.redraw_needed = true;
    }

    /// Outputs as agents see them.
    pub fn output_infos(&self) -> Vec<OutputInfo> {
        self.layout
            .outputs()
            .iter()
            .enumerate()
            .filter_map(|(i, o)| {
                Some(OutputInfo {
                    id: OutputId::new(i as u32 + 1).ok()?,
                    position: Point::new(o.rect.x, o.rect.y).ok()?,
                    size: Size::new(o.rect.w as u32, o.rect.h as u32).ok()?,
                    scale_120ths: Scale::ONE,
                    refresh_mhz: 60_000,
                    name: SanitizedText::sanitize(&o.name, 64),
                })
            })
            .collect()
    }

    /// A notification on the trusted layer.
    pub fn notify(&mut self, colour: Rgb, headline: String, detail: String) {
        tracing::info!("notification: {headline}: {detail}");
        self.notifications
            .push(colour, headline, detail, Instant::now());
        self.queue_redraw();
    }

    // ---------------------------------------------------------------------------------------
    // Channels

    /// Accepts a channel created for the qube `identity` (decision 2: the identity comes from
    /// whoever created the channel, here the caller).
    pub fn add_channel(
        &mut self,
        identity: QubeIdentity,
        socket: UnixStream,
        agent: Option<DevAgent>,
    ) -> anyhow::Result<ConnId> {
        let id = self.qubes.next_conn_id();
        let limits = self
            .settings
            .loaded
            .config
            .security
            .session_limits(identity.name.as_str());
        let mut conn = QubeConnection::with_limits(id, identity, socket, limits)?;
        conn.agent = agent;
        let (read_fd, write_fd) = conn.poll_fds()?;
        let read = self
            .handle
            .insert_source(
                Generic::new(read_fd, Interest::READ, Mode::Level),
                move |_, _, state: &mut State| {
                    state.qube_readable(id);
                    Ok(PostAction::Continue)
                },
            )
            .map_err(|e| anyhow::anyhow!("registering the channel: {e}"))?;
        let write = self
            .handle
            .insert_source(
                Generic::new(write_fd, Interest::WRITE, Mode::Level),
                move |_, _, state: &mut State| {
                    state.flush_qube(id);
                    Ok(PostAction::Continue)
                },
            )
            .map_err(|e| anyhow::anyhow!("registering the channel: {e}"))?;
        let _ = self.handle.disable(&write);
        conn.read_token = Some(read);
        conn.write_token = Some(write);
        tracing::info!(
            "qube {} ({}) connected as channel {id}",
            conn.identity.name,
            conn.identity.label
        );
        self.qubes.conns.insert(id, conn);
        Ok(id)
    }

    /// Starts a development qube: a socketpair, an agent process on the other end.
    pub fn spawn_dev_qube(&mut self, identity: QubeIdentity) -> anyhow::Result<ConnId> {
        let (ours, theirs) = UnixStream::pair().context("creating the channel socketpair")?;
        let command =
            crate::qubes::agent_command_line(self.config.dev_agent_command.as_deref()).to_owned();
        let agent = DevAgent::spawn(&command, &identity, theirs)
            .with_context(|| format!("starting the agent of qube {}", identity.name))?;
        tracing::info!(
            "started agent for {} (pid {}): {command}",
            identity.name,
            agent.child.id()
        );
        self.add_channel(identity, ours, Some(agent))
    }

    /// Reads one batch from a qube.
    pub fn qube_readable(&mut self, id: ConnId) {
        let mut result = Ok(());
        for _ in 0..MESSAGES_PER_WAKEUP {
            let Some(conn) = self.qubes.conns.get_mut(&id) else {
                return;
            };
            conn.more_to_read = true;
            match conn.conn.receive(Instant::now()) {
                Ok(Some(received)) => {
                    if let Err(e) = self.handle_agent_message(id, received) {
                        result = Err(e);
                        break;
                    }
                }
                Ok(None) => {
                    if let Some(conn) = self.qubes.conns.get_mut(&id) {
                        conn.more_to_read = false;
                    }
                    break;
                }
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        if let Err(e) = result {
            self.cut_off(id, e);
            return;
        }
        // The budget ran out with messages possibly buffered inside the connection, where
        // the readable source would not see them: come back after the other sources ran.
        if self.qubes.conns.get(&id).is_some_and(|c| c.more_to_read) {
            self.handle
                .insert_idle(move |state| state.qube_readable(id));
        }
    }

    /// Queues a message to a qube; a full queue cuts the qube off (it stopped reading).
    pub fn send_to(&mut self, id: ConnId, msg: &GuiMessage) {
        let Some(conn) = self.qubes.conns.get_mut(&id) else {
            return;
        };
        if conn.send_failed {
            return;
        }
        if let Err(e) = conn.conn.send(msg) {
            // This may run inside a seat callback (a key, keyboard enter, pointer motion) while
            // Smithay holds the seat's lock: cutting the qube off here re-enters the seat
            // (`sync_focus`) and deadlocked the compositor (hostile test
            // `queue_overflowing_during_a_key_event_cuts_off_without_hanging`). Cut it off from
            // the event loop instead, once; nothing more is queued for it meanwhile.
            conn.send_failed = true;
            self.handle
                .insert_idle(move |state| state.cut_off(id, ConnectionError::Send(e)));
        }
    }

    /// Writes what is queued for one qube; arms the writable source if the socket is full.
    pub fn flush_qube(&mut self, id: ConnId) {
        let Some(conn) = self.qubes.conns.get_mut(&id) else {
            return;
        };
        match conn.conn.flush() {
            Ok(done) => {
                let want = !done;
                if want != conn.write_armed
                    && let Some(token) = conn.write_token
                {
                    let _ = if want {
                        self.handle.enable(&token)
                    } else {
                        self.handle.disable(&token)
                    };
                    conn.write_armed = want;
                }
            }
            Err(e) => self.cut_off(id, e),
        }
    }

    pub fn flush_all_qubes(&mut self) {
        let ids: Vec<ConnId> = self
            .qubes
            .conns
            .iter()
            .filter(|(_, c)| c.conn.stream().wants_write())
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            self.flush_qube(id);
        }
    }

    /// Ends a qube's connection: its windows disappear at once, and the user is told if the qube
    /// broke the protocol. Nothing else is affected.
    pub fn cut_off(&mut self, id: ConnId, error: ConnectionError) {
        let Some(mut conn) = self.qubes.conns.remove(&id) else {
            return;
        };
        self.notifications.forget_conn(id);
        let (violation, reason) = crate::qubes::describe_end(&error);
        let name = conn.identity.name.to_string();
        if violation {
            tracing::warn!("qube {name} cut off: {reason}");
        } else {
            tracing::info!("qube {name} disconnected: {reason}");
        }
        for token in [conn.read_token.take(), conn.write_token.take()]
            .into_iter()
            .flatten()
        {
            self.handle.remove(token);
        }
        let wins: Vec<WinId> = conn.windows.values().map(|w| w.win).collect();
        for win in wins {
            self.forget_window(win);
        }
        // Textures into pools go before the pools (field order of QubeConnection).
        conn.windows.clear();
        let colour = conn.identity.colour();
        if violation {
            // The agent is presumed hostile: no goodbye, and our child process goes too.
            if let Some(agent) = conn.agent.as_mut() {
                let _ = agent.child.kill();
            }
            self.notify(
                colour,
                format!("[{name}] was cut off: it broke the GUI protocol"),
                reason,
            );
        } else if matches!(error, ConnectionError::Send(_)) {
            // It stopped reading: the compositor will not buffer for it without end (decision 7).
            if let Some(agent) = conn.agent.as_mut() {
                let _ = agent.child.kill();
            }
            self.notify(
                colour,
                format!("[{name}] was cut off: it stopped reading its GUI channel"),
                reason,
            );
        } else if matches!(error, ConnectionError::VersionMismatch(_)) {
            self.notify(
                colour,
                format!("[{name}] speaks another protocol version"),
                reason,
            );
        } else if self.domain_manager.is_some() {
            self.report_if_agent_crashed(name, colour);
        }
        drop(conn);
        self.sync_focus();
        self.queue_redraw();
    }

    /// A managed qube's channel closed without a violation: either the qube is stopping (its
    /// agent goes with it) or the agent died on its own. The manager knows which qubes it was
    /// asked to stop; if this one still runs and was not, its agent crashed: say so, since the
    /// qube's windows are gone while its apps may still run. The short delay lets a new channel
    /// (a restart) arrive first.
    fn report_if_agent_crashed(&mut self, name: String, colour: crate::labels::Rgb) {
        use smithay::reexports::calloop::timer::{TimeoutAction, Timer};
        let qube = name.clone();
        let timer = Timer::from_duration(AGENT_CRASH_GRACE);
        let inserted = self.handle.insert_source(timer, move |_, _, state: &mut State| {
            // Not a time race: the manager remembers which qubes it was asked to stop.
            let still_running = state
                .domain_manager
                .as_ref()
                .is_some_and(|m| m.expects_agent(&name));
            let reconnected = state
                .qubes
                .conns
                .values()
                .any(|c| c.identity.name.as_str() == name);
            if still_running && !reconnected {
                state.notify(
                    colour,
                    format!("[{name}]'s GUI agent stopped"),
                    "its windows are gone; restart the qube (corralctl shutdown, then start) to get them back".into(),
                );
            }
            TimeoutAction::Drop
        });
        if inserted.is_err() {
            tracing::warn!("could not schedule the agent crash check for {qube}");
        }
    }

    /// Removes a window from the layout and every cache.
    pub fn forget_window(&mut self, win: WinId) {
        self.layout.remove(win);
        self.qubes.windows.remove(&win);
        self.render_cache.forget_window(win);
        self.input.forget_window(win);
    }

    // ---------------------------------------------------------------------------------------
    // Focus and configure

    /// Makes the keyboard follow the layout's focus, and tells the windows concerned whether
    /// they are active.
    pub fn sync_focus(&mut self) {
        // While locked the keyboard belongs to the lock screen (or the locker), never a window.
        if self.lock.is_locked() {
            self.sync_lock_focus();
            return;
        }
        // While the launcher is open the keyboard is the launcher's: no window has it.
        let wanted = if self.launcher.is_open() {
            None
        } else {
            self.layout.focus()
        };
        let current = self.keyboard.current_focus().map(|f| f.win());
        if wanted == current {
            return;
        }
        let target = wanted.and_then(|w| self.focus_target(w));
        let serial = smithay::utils::SERIAL_COUNTER.next_serial();
        let keyboard = self.keyboard.clone();
        keyboard.set_focus(self, target, serial);
        for win in [current, wanted].into_iter().flatten() {
            self.send_configure(win);
        }
        self.queue_redraw();
    }

    pub fn focus_target(&self, win: WinId) -> Option<FocusTarget> {
        if let Some(local) = self.local_windows.get(&win) {
            return Some(FocusTarget::Local {
                win,
                surface: local.toplevel.wl_surface().clone(),
            });
        }
        let (conn, window) = self.qubes.window(win)?;
        Some(FocusTarget::Qube(QubeTarget {
            win,
            conn: conn.id,
            window: window.id,
            alive: window.alive.clone(),
        }))
    }

    /// Sends the window's size and states if they changed since the last configure.
    pub fn send_configure(&mut self, win: WinId) {
        if !self.layout.is_toplevel(win) {
            return;
        }
        if self.local_windows.contains_key(&win) {
            self.configure_local(win);
            return;
        }
        let Some(t) = self.layout.toplevel(win) else {
            return;
        };
        let (w, h) = t.configured.unwrap_or((0, 0));
        let mut states = WindowStates::empty();
        if t.maximized.is_some() {
            states |= WindowStates::MAXIMIZED;
        }
        if self.layout.focus() == Some(win) {
            states |= WindowStates::ACTIVATED;
        }
        let Ok(size) = OptionalSize::new(w.clamp(0, 16384) as u32, h.clamp(0, 16384) as u32) else {
            return;
        };
        let Some((conn, id)) = self.qubes.window_mut(win) else {
            return;
        };
        let window = conn.windows.get(&id);
        if window
            .and_then(|w| w.last_configure)
            .is_some_and(|(_, s, st)| s == size && st == states)
        {
            return;
        }
        let serial = conn.serial();
        if let Some(window) = conn.windows.get_mut(&id) {
            window.last_configure = Some((serial, size, states));
        }
        let conn_id = conn.id;
        self.send_to(
            conn_id,
            &GuiMessage::Configure {
                window: id,
                serial,
                size,
                states,
            },
        );
    }

    /// Sends `frame_done` for every commit that the frame just presented contains.
    pub fn frames_presented(&mut self) {
        let timestamp_ns = self.started.elapsed().as_nanos() as u64;
        let mut out = Vec::new();
        for conn in self.qubes.conns.values_mut() {
            for w in conn.windows.values_mut() {
                if w.frame_done_pending {
                    w.frame_done_pending = false;
                    out.push((conn.id, w.id));
                }
            }
        }
        for (conn, window) in out {
            self.send_to(
                conn,
                &GuiMessage::FrameDone {
                    window,
                    timestamp_ns,
                },
            );
        }
    }

    /// Whether any window wants attention (the pulse needs redraws).
    pub fn attention_pending(&self) -> bool {
        self.layout.stack().iter().any(|w| {
            self.layout.toplevel(*w).is_some_and(|t| t.attention) && self.layout.is_visible(*w)
        })
    }

    pub fn pulse_on(&self) -> bool {
        (self.started.elapsed().as_millis() / PULSE.as_millis()).is_multiple_of(2)
    }

    /// The first output's rectangle (toasts go there).
    pub fn first_output(&self) -> Option<Rect> {
        self.layout.outputs().first().map(|o| o.rect)
    }

    pub fn set_outputs(&mut self, outputs: Vec<OutputArea>) {
        self.wayland.sync_outputs(&outputs);
        self.layout.set_outputs(outputs);
        let infos = self.output_infos();
        let ids: Vec<ConnId> = self
            .qubes
            .conns
            .iter()
            .filter(|(_, c)| c.established)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            self.send_to(
                id,
                &GuiMessage::OutputsChanged {
                    outputs: infos.clone(),
                },
            );
        }
        // A locker's surfaces follow their outputs' sizes (new outputs show the built-in lock
        // screen until the locker gives them a surface, QSB-68).
        self.configure_lock_surfaces();
        self.queue_redraw();
    }

    /// The GUI domain's own label colour.
    pub fn gui_domain_colour() -> Rgb {
        labels::GUI_DOMAIN_LABEL.colour
    }
}

/// The default XKB keymap (RMLVO from the environment, as the seat's keyboard uses), as text.
fn default_keymap_string() -> anyhow::Result<String> {
    use smithay::input::keyboard::xkb;
    let context = xkb::Context::new(xkb::CONTEXT_NO_FLAGS);
    let keymap =
        xkb::Keymap::new_from_names(&context, "", "", "", "", None, xkb::KEYMAP_COMPILE_NO_FLAGS)
            .context("compiling the default XKB keymap")?;
    Ok(keymap.get_as_string(xkb::KEYMAP_FORMAT_TEXT_V1))
}

/// How long after a managed qube's channel closes the compositor checks whether the qube's
/// agent should still be there (see `report_if_agent_crashed`).
const AGENT_CRASH_GRACE: std::time::Duration = std::time::Duration::from_millis(500);
