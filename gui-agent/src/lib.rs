//! `corral-agent`: the in-qube side of Corral's GUI.
//!
//! A headless Smithay compositor that the qube's apps connect to. It composites each window's
//! surface tree on the CPU (Pixman) into a shared pool and forwards windows, titles, sizes and
//! damage to the GUI domain over the Corral GUI protocol; input, configure events, clipboard
//! data and launch requests come back. See `docs/agent.md` for the design.

pub mod cli;
mod clipboard;
pub mod embedded;
mod focus;
mod gui_link;
mod handlers;
mod input;
pub mod launch;
mod notifications;
mod outputs;
mod render;
pub mod state;
mod windows;

use smithay::reexports::calloop::EventLoop;
use smithay::reexports::calloop::timer::{TimeoutAction, Timer};
use smithay::reexports::wayland_server::Display;
use tracing::{info, warn};

use crate::cli::{Args, Endpoint};
use crate::state::{AgentState, HOUSEKEEPING_INTERVAL};

/// Runs the agent until its GUI channel ends for good (or it fails to start).
pub fn run(args: &Args) -> anyhow::Result<()> {
    let endpoint = args.endpoint().map_err(anyhow::Error::msg)?;
    let mut event_loop: EventLoop<'static, AgentState> = EventLoop::try_new()?;
    let display: Display<AgentState> = Display::new()?;
    let mut state = AgentState::new(args, display, event_loop.handle(), event_loop.get_signal())?;
    info!(socket = %state.socket_name, "apps can connect with WAYLAND_DISPLAY={}", state.socket_name);

    if let Err(reason) = state.link_connect() {
        match endpoint {
            Endpoint::InheritedFd(_) | Endpoint::Embedded => anyhow::bail!(reason),
            Endpoint::Connect(_) => {
                warn!(%reason, "the GUI domain is not reachable yet; retrying");
                state.schedule_reconnect();
            }
        }
    }
    if args.xwayland {
        state.xwayland_wanted = true;
        if let Err(err) = state.start_xwayland() {
            warn!(%err, "Xwayland could not be started; X11 apps will not run");
            state.xwayland_wanted = false;
        }
    }
    for command in &args.exec {
        state.spawn_app(&["/bin/sh".to_string(), "-c".to_string(), command.clone()]);
    }
    // Wakes the loop now and then for work no descriptor announces (reaping apps).
    event_loop
        .handle()
        .insert_source(Timer::from_duration(HOUSEKEEPING_INTERVAL), |_, _, _| {
            TimeoutAction::ToDuration(HOUSEKEEPING_INTERVAL)
        })
        .map_err(|e| anyhow::anyhow!("registering the housekeeping timer: {e}"))?;

    event_loop.run(None, &mut state, |state| state.after_dispatch())?;
    match state.fatal.take() {
        Some(reason) => anyhow::bail!(reason),
        None => Ok(()),
    }
}
