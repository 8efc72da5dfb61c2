//! One module per Wayland protocol family, each implementing Smithay's handler trait for
//! [`crate::state::AgentState`] and delegating the protocol's dispatch to Smithay.

mod activation;
mod compositor;
mod decoration;
mod output;
mod seat;
mod selection;
mod xdg_shell;
mod xwayland;
