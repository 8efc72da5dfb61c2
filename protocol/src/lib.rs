//! The Corral GUI protocol.
//!
//! Agents inside qubes and the compositor of the GUI domain talk over one small, fixed-layout,
//! little-endian protocol (ARCHITECTURE.md, decision 1). This crate holds:
//!
//! - [`message`]: every message in both directions, built from the validated types of [`types`]
//!   and [`text`];
//! - [`codec`]: framing, per-type length rules and the strict decoders;
//! - [`session`]: the stateful rules of an agent connection (known ids, pool bounds, budgets);
//! - [`channel`]: transports (Unix socket with sealed memfds, vsock with inline pixels, Xen) and
//!   the non-blocking, bounded connection that runs on top of them.
//!
//! Values from a qube are named `untrusted_*` until a constructor in [`types`] or
//! [`text::SanitizedText`] has checked them. No Smithay, no rendering: this crate is the part
//! that touches hostile bytes, and it is kept small enough to fuzz.

pub mod channel;
pub mod codec;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod limits;
pub mod message;
pub mod session;
pub mod text;
pub mod types;
pub mod wire;

pub use error::DecodeError;
pub use message::{AgentMessage, GuiMessage};
pub use text::SanitizedText;
pub use types::*;
