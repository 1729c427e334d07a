//! The audit log: every configuration change, login, onboarding and admin decision.

pub mod api;
#[cfg(feature = "ssr")]
pub mod event;
pub mod page;
#[cfg(feature = "ssr")]
pub mod service;
pub mod view;
#[cfg(feature = "ssr")]
pub use event::{Action, Actor, Ending, Event};
#[cfg(feature = "ssr")]
pub use service::record;
