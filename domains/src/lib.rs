//! The qube model, the domain manager and its backends (built in the domains issue).
//!
//! For now this crate holds only the qube name rules, which every later piece needs.

mod name;

pub use name::{NameError, QubeName};
