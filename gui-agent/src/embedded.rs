//! The agent inside another process, with a minimal stand-in for the GUI domain: what the
//! WLCS conformance integration (`gui-agent/wlcs`) runs.
//!
//! WLCS drives a compositor with a global pointer and absolute window positions; the agent
//! has neither, because the GUI domain places windows and routes input. So the stand-in does
//! exactly that part of the GUI domain's job and nothing else: it answers the handshake, says
//! `FrameDone` after every commit, keeps each window's position (set by WLCS, popups relative
//! to their parent), and turns global pointer events into the window-relative protocol
//! messages the real compositor would send (pointer enter/motion/leave/button, an implicit
//! grab while a button is held, and keyboard focus on click). Everything else, every Wayland
//! request, goes through the same agent code as in a qube.

use std::cell::RefCell;
use std::collections::HashMap;
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::time::Instant;

use smithay::reexports::calloop::channel::{Channel, Event as ChannelEvent};
use smithay::reexports::calloop::generic::Generic;
use smithay::reexports::calloop::{EventLoop, Interest, Mode, PostAction};
use smithay::reexports::wayland_server::protocol::wl_surface::WlSurface;
use smithay::reexports::wayland_server::{Client, Display};
use smithay::wayland::compositor::get_parent;
use tracing::warn;

use corral_protocol::channel::unix::UnixTransport;
use corral_protocol::channel::{GuiConnection, StreamLimits};
use corral_protocol::session::{Applied, SessionLimits};
use corral_protocol::{
    AgentMessage, FixedPoint, GuiMessage, OptionalSize, OutputId, OutputInfo, Point, SanitizedText,
    Scale, Serial, Size, StateRequest, WindowId, WindowStates,
};

use crate::cli::{Args, Endpoint};
use crate::state::{AgentState, ClientState};

/// The output the stand-in reports, as in Smithay's own WLCS integration.
const OUTPUT_SIZE: (u32, u32) = (800, 600);

/// What the embedding process asks of the agent.
#[derive(Debug)]
pub enum Control {
    Exit,
    /// A client connected on this socket; `key` names it in later `PositionWindow`s.
    NewClient {
        stream: UnixStream,
        key: i32,
    },
    /// Moves the window whose root surface has `surface_id` in client `key`.
    PositionWindow {
        key: i32,
        surface_id: u32,
        x: i32,
        y: i32,
    },
    PointerMoveAbsolute {
        x: f64,
        y: f64,
    },
    PointerMoveRelative {
        dx: f64,
        dy: f64,
    },
    PointerButton {
        button: u32,
        pressed: bool,
    },
}

#[derive(Debug, Clone, Copy)]
struct Placed {
    id: WindowId,
    parent: Option<WindowId>,
    /// Position relative to the parent (popups) or the output (toplevels).
    offset: (i32, i32),
    size: (u32, u32),
    mapped: bool,
}

/// The stand-in for the GUI domain.
struct StandIn {
    conn: GuiConnection<UnixTransport>,
    /// Bottom to top.
    stack: Vec<Placed>,
    clients: HashMap<i32, Client>,
    pointer: (f64, f64),
    pointer_window: Option<WindowId>,
    keyboard_window: Option<WindowId>,
    buttons_down: u32,
    configure_serial: u32,
    /// Maximised / fullscreen states granted per window.
    states: HashMap<WindowId, WindowStates>,
}

impl StandIn {
    fn placed(&self, id: WindowId) -> Option<&Placed> {
        self.stack.iter().find(|p| p.id == id)
    }

    fn global_origin(&self, id: WindowId) -> Option<(i32, i32)> {
        let placed = self.placed(id)?;
        let (mut x, mut y) = placed.offset;
        if let Some(parent) = placed.parent
            && let Some((px, py)) = self.global_origin(parent)
        {
            x += px;
            y += py;
        }
        Some((x, y))
    }

    fn window_at(&self, x: f64, y: f64) -> Option<WindowId> {
        self.stack.iter().rev().filter(|p| p.mapped).find_map(|p| {
            let (ox, oy) = self.global_origin(p.id)?;
            let inside = x >= f64::from(ox)
                && y >= f64::from(oy)
                && x < f64::from(ox) + f64::from(p.size.0)
                && y < f64::from(oy) + f64::from(p.size.1);
            inside.then_some(p.id)
        })
    }

    fn local(&self, id: WindowId) -> Option<FixedPoint> {
        let (ox, oy) = self.global_origin(id)?;
        FixedPoint::from_f64(
            self.pointer.0 - f64::from(ox),
            self.pointer.1 - f64::from(oy),
        )
        .ok()
    }

    /// Handles what the agent sent; returns the messages the real GUI domain would answer
    /// with, to be applied in the agent.
    fn on_agent_message(&mut self, message: AgentMessage, applied: Applied) -> Vec<GuiMessage> {
        let mut replies = Vec::new();
        if let Applied::Established {
            version,
            capabilities,
        } = applied
        {
            let outputs = vec![OutputInfo {
                id: OutputId::new(1).unwrap_or_else(|_| unreachable!()),
                position: Point::default(),
                size: Size::new(OUTPUT_SIZE.0, OUTPUT_SIZE.1).unwrap_or_else(|_| unreachable!()),
                scale_120ths: Scale::ONE,
                refresh_mhz: 60_000,
                name: SanitizedText::sanitize("wlcs", 64),
            }];
            let _ = self.conn.send(&GuiMessage::Welcome {
                version,
                capabilities,
                outputs,
            });
        }
        // Whether windows moved, appeared or vanished under the pointer.
        let mut layout_changed = true;
        match message {
            AgentMessage::CreateToplevel { window } => self.stack.push(Placed {
                id: window,
                parent: None,
                offset: (0, 0),
                size: (0, 0),
                mapped: false,
            }),
            AgentMessage::CreatePopup {
                window,
                parent,
                position,
                size,
            } => self.stack.push(Placed {
                id: window,
                parent: Some(parent),
                offset: (position.x(), position.y()),
                size: (size.width(), size.height()),
                mapped: false,
            }),
            AgentMessage::RepositionPopup {
                window,
                position,
                size,
            } => {
                if let Some(p) = self.stack.iter_mut().find(|p| p.id == window) {
                    p.offset = (position.x(), position.y());
                    p.size = (size.width(), size.height());
                }
            }
            AgentMessage::Attach { window, layout, .. } => {
                if let Some(p) = self.stack.iter_mut().find(|p| p.id == window) {
                    p.size = (layout.size().width(), layout.size().height());
                }
            }
            AgentMessage::Map { window } | AgentMessage::Unmap { window } => {
                let mapped = matches!(message, AgentMessage::Map { .. });
                let mut is_toplevel = false;
                if let Some(p) = self.stack.iter_mut().find(|p| p.id == window) {
                    p.mapped = mapped;
                    is_toplevel = p.parent.is_none();
                }
                // Like most desktops, a newly shown window gets the keyboard.
                if mapped && is_toplevel {
                    replies.extend(self.focus(window));
                }
            }
            AgentMessage::RequestState { window, request } => {
                // A plain desktop grants maximise and fullscreen (Corral's compositor applies
                // its policy here).
                let (flag, on) = match request {
                    StateRequest::Maximize => (WindowStates::MAXIMIZED, true),
                    StateRequest::Unmaximize => (WindowStates::MAXIMIZED, false),
                    StateRequest::Fullscreen => (WindowStates::FULLSCREEN, true),
                    StateRequest::Unfullscreen => (WindowStates::FULLSCREEN, false),
                    StateRequest::Minimize => (WindowStates::empty(), false),
                };
                if !flag.is_empty() {
                    let mut states = self.states.get(&window).copied().unwrap_or_default();
                    states.set(flag, on);
                    self.states.insert(window, states);
                    replies.push(self.configure(window, WindowStates::empty()));
                }
                layout_changed = false;
            }
            AgentMessage::Commit { window, .. } => {
                layout_changed = false;
                replies.push(GuiMessage::FrameDone {
                    window,
                    timestamp_ns: 0,
                });
            }
            AgentMessage::DestroyWindow { window } => {
                let mut gone = vec![window];
                while let Some(next) = self
                    .stack
                    .iter()
                    .find(|p| p.parent.is_some_and(|parent| gone.contains(&parent)))
                    .filter(|p| !gone.contains(&p.id))
                    .map(|p| p.id)
                {
                    gone.push(next);
                }
                self.stack.retain(|p| !gone.contains(&p.id));
                if self.pointer_window.is_some_and(|w| gone.contains(&w)) {
                    self.pointer_window = None;
                    self.buttons_down = 0;
                }
                if self.keyboard_window.is_some_and(|w| gone.contains(&w)) {
                    self.keyboard_window = None;
                }
            }
            _ => layout_changed = false,
        }
        if layout_changed {
            replies.extend(self.pointer_moved());
        }
        replies
    }

    /// Moves keyboard focus to a toplevel, activating it and deactivating the previous one,
    /// as a desktop does.
    fn focus(&mut self, window: WindowId) -> Vec<GuiMessage> {
        let mut out = Vec::new();
        if self.keyboard_window == Some(window) {
            return out;
        }
        if let Some(old) = self.keyboard_window.take() {
            out.push(GuiMessage::KeyboardLeave { window: old });
            out.push(self.configure(old, WindowStates::empty()));
        }
        out.push(GuiMessage::KeyboardEnter {
            window,
            pressed_keys: Vec::new(),
        });
        self.keyboard_window = Some(window);
        out.push(self.configure(window, WindowStates::ACTIVATED));
        out
    }

    /// A configure with the window's granted states plus `extra`; maximised and fullscreen
    /// windows get the output's size.
    fn configure(&mut self, window: WindowId, extra: WindowStates) -> GuiMessage {
        self.configure_serial = self.configure_serial.wrapping_add(1);
        let mut states = self.states.get(&window).copied().unwrap_or_default() | extra;
        if self.keyboard_window == Some(window) {
            states |= WindowStates::ACTIVATED;
        }
        let size = if states.intersects(WindowStates::MAXIMIZED | WindowStates::FULLSCREEN) {
            OptionalSize::new(OUTPUT_SIZE.0, OUTPUT_SIZE.1).unwrap_or(OptionalSize::UNSET)
        } else {
            OptionalSize::UNSET
        };
        GuiMessage::Configure {
            window,
            serial: Serial(self.configure_serial),
            size,
            states,
        }
    }

    /// Routes the pointer to the window under it (or the grabbing one).
    fn pointer_moved(&mut self) -> Vec<GuiMessage> {
        let mut out = Vec::new();
        let target = if self.buttons_down > 0 {
            self.pointer_window
        } else {
            self.window_at(self.pointer.0, self.pointer.1)
        };
        if target != self.pointer_window {
            if let Some(old) = self.pointer_window.take() {
                out.push(GuiMessage::PointerLeave { window: old });
            }
            if let Some(new) = target
                && let Some(position) = self.local(new)
            {
                out.push(GuiMessage::PointerEnter {
                    window: new,
                    position,
                });
                self.pointer_window = Some(new);
            }
        } else if let Some(window) = target
            && let Some(position) = self.local(window)
        {
            out.push(GuiMessage::PointerMotion {
                window,
                time_ms: now_ms(),
                position,
            });
        }
        out
    }

    fn button(&mut self, button: u32, pressed: bool) -> Vec<GuiMessage> {
        let mut out = Vec::new();
        let Some(window) = self.pointer_window else {
            return out;
        };
        if pressed {
            self.buttons_down += 1;
            // Click to focus, on the toplevel the clicked window belongs to.
            let mut toplevel = window;
            while let Some(parent) = self.placed(toplevel).and_then(|p| p.parent) {
                toplevel = parent;
            }
            out.extend(self.focus(toplevel));
        } else {
            self.buttons_down = self.buttons_down.saturating_sub(1);
        }
        out.push(GuiMessage::PointerButton {
            window,
            time_ms: now_ms(),
            button,
            pressed,
        });
        if !pressed && self.buttons_down == 0 {
            // The grab ends: the pointer may now be over another window.
            out.extend(self.pointer_moved());
        }
        out
    }
}

fn now_ms() -> u32 {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as u32
}

/// The root surface of `surface`'s tree.
fn root_of(mut surface: WlSurface) -> WlSurface {
    while let Some(parent) = get_parent(&surface) {
        surface = parent;
    }
    surface
}

/// Runs an agent and its stand-in GUI domain on this thread until `Control::Exit`.
pub fn run(control: Channel<Control>) -> anyhow::Result<()> {
    let mut event_loop: EventLoop<'static, AgentState> = EventLoop::try_new()?;
    let display: Display<AgentState> = Display::new()?;
    let args = Args {
        gui_fd: None,
        connect: None,
        inline_pixels: false,
        socket_name: None,
        xwayland: false,
        clipboard_max_bytes: corral_protocol::limits::MAX_CLIPBOARD_BYTES,
        exec: Vec::new(),
        // In-process tests: no D-Bus service thread or bus daemon.
        no_notifications: true,
        protocol_version: false,
    };
    let mut state = AgentState::new_with(
        &args,
        Endpoint::Embedded,
        false,
        display,
        event_loop.handle(),
        event_loop.get_signal(),
    )?;
    let (gui_end, agent_end) = UnixStream::pair()?;
    state.link.embedded_socket = Some(agent_end);
    let gui_fd = std::os::fd::AsFd::as_fd(&gui_end).try_clone_to_owned()?;
    let stand_in = Rc::new(RefCell::new(StandIn {
        conn: GuiConnection::new(
            UnixTransport::new(gui_end)?,
            SessionLimits::default(),
            StreamLimits::default(),
        ),
        stack: Vec::new(),
        clients: HashMap::new(),
        pointer: (0.0, 0.0),
        pointer_window: None,
        keyboard_window: None,
        buttons_down: 0,
        configure_serial: 0,
        states: HashMap::new(),
    }));
    state
        .link_connect()
        .map_err(|e| anyhow::anyhow!("embedded GUI channel: {e}"))?;

    let gui_side = stand_in.clone();
    event_loop
        .handle()
        .insert_source(
            Generic::new(gui_fd, Interest::READ, Mode::Level),
            move |_, _, state: &mut AgentState| {
                loop {
                    let received = gui_side.borrow_mut().conn.receive(Instant::now());
                    match received {
                        Ok(Some(received)) => {
                            let replies = gui_side
                                .borrow_mut()
                                .on_agent_message(received.message, received.applied);
                            for reply in replies {
                                state.apply_gui_message(reply);
                            }
                        }
                        Ok(None) => break,
                        Err(err) => {
                            warn!(%err, "the stand-in GUI's channel failed");
                            state.loop_signal.stop();
                            return Ok(PostAction::Remove);
                        }
                    }
                }
                let _ = gui_side.borrow_mut().conn.flush();
                Ok(PostAction::Continue)
            },
        )
        .map_err(|e| anyhow::anyhow!("registering the stand-in GUI: {e}"))?;

    let control_side = stand_in.clone();
    event_loop
        .handle()
        .insert_source(control, move |event, _, state: &mut AgentState| {
            let event = match event {
                ChannelEvent::Msg(event) => event,
                ChannelEvent::Closed => Control::Exit,
            };
            let messages = {
                let mut stand_in = control_side.borrow_mut();
                match event {
                    Control::Exit => {
                        state.loop_signal.stop();
                        Vec::new()
                    }
                    Control::NewClient { stream, key } => {
                        match state
                            .display_handle
                            .insert_client(stream, std::sync::Arc::new(ClientState::default()))
                        {
                            Ok(client) => {
                                stand_in.clients.insert(key, client);
                            }
                            Err(err) => warn!(%err, "could not add a WLCS client"),
                        }
                        Vec::new()
                    }
                    Control::PositionWindow {
                        key,
                        surface_id,
                        x,
                        y,
                    } => {
                        let window = stand_in
                            .clients
                            .get(&key)
                            .and_then(|client| {
                                client
                                    .object_from_protocol_id::<WlSurface>(
                                        &state.display_handle,
                                        surface_id,
                                    )
                                    .ok()
                            })
                            .and_then(|surface| state.windows.id_for_root(&root_of(surface)));
                        if let Some(p) =
                            window.and_then(|id| stand_in.stack.iter_mut().find(|p| p.id == id))
                        {
                            p.offset = (x, y);
                        }
                        stand_in.pointer_moved()
                    }
                    Control::PointerMoveAbsolute { x, y } => {
                        stand_in.pointer = (x, y);
                        stand_in.pointer_moved()
                    }
                    Control::PointerMoveRelative { dx, dy } => {
                        stand_in.pointer.0 += dx;
                        stand_in.pointer.1 += dy;
                        stand_in.pointer_moved()
                    }
                    Control::PointerButton { button, pressed } => stand_in.button(button, pressed),
                }
            };
            for message in messages {
                state.apply_gui_message(message);
            }
        })
        .map_err(|e| anyhow::anyhow!("registering the control channel: {e}"))?;

    event_loop.run(None, &mut state, |state| {
        state.after_dispatch();
        let _ = stand_in.borrow_mut().conn.flush();
    })?;
    Ok(())
}
