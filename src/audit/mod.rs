//! The audit log: every configuration change, login, onboarding and admin decision.

pub mod api;
pub mod page;
#[cfg(feature = "ssr")]
pub mod service;
#[cfg(feature = "ssr")]
pub use service::record;
