//! `corral`: the compositor of Corral's trusted GUI domain.
//!
//! Qube windows arrive only through `corral_protocol::channel::GuiConnection` (decoded,
//! validated messages and read-only pool mappings), each connection tagged with the qube's
//! identity when the channel was created. The compositor draws every frame, title and label
//! itself, owns keyboard focus, and keeps a trusted layer above all qube content.
//!
//! Layout of the crate (niri style):
//! - [`state`]: the one `State` the event loop hands to every callback;
//! - [`backend`]: `headless` (Pixman, offscreen) and `winit` (GLES, nested), side by side;
//! - [`qubes`]: one connection per agent channel, with its trusted identity;
//! - [`layout`]: window management (pure, tested with randomized operations);
//! - [`render`]: the scene (front-to-back order is a security property) and render elements;
//! - [`input`]: keyboard and pointer, focus, reserved shortcuts;
//! - [`ipc`]: `corral msg`;
//! - [`launcher`]: the trusted layer's application launcher (search every qube's apps);
//! - [`notify`]: the trusted layer's notifications;
//! - [`panel`]: the trusted layer's panel (running qubes, clipboard state, clock);
//! - [`clipboard`]: the global clipboard (copy, policy-checked paste, wipe);
//! - [`config`]: the config file and themes, live reload;
//! - [`domains`]: the domain manager, embedded (`--domains`): qubes it starts get an agent
//!   whose channel lands here with the store's identity;
//! - [`local`]: GUI-domain apps on a trusted local Wayland socket (framed black);
//! - [`lock`]: the lock screen (PAM, ext-session-lock-v1 for GUI-domain lockers).

pub mod backend;
pub mod cli;
pub mod clipboard;
pub mod config;
pub mod domains;
pub mod input;
pub mod ipc;
pub mod labels;
pub mod launcher;
pub mod layout;
pub mod local;
pub mod lock;
pub mod notify;
pub mod panel;
pub mod qubes;
pub mod render;
pub mod state;

mod run;

pub use run::run;
