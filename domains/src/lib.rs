//! The qube model, its store, the domain manager and its backends.
//!
//! See `docs/domains.md` for the design.

pub mod api;
pub mod apps;
pub mod backend;
pub mod label;
pub mod manager;
pub mod model;
mod name;
pub mod net;
pub mod policy;
pub mod sandbox;
pub mod store;
pub mod template;

pub use label::Label;
pub use model::{Class, Model, ModelError, Qube, QubeRef};
pub use name::{ADMIN_NAME, NameError, QubeName};
pub use store::{Store, StoreError};
