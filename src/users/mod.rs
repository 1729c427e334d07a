//! User management for a tenant: invite, disable, delete, promote, sessions.

pub mod api;
pub mod page;
#[cfg(feature = "ssr")]
pub mod service;
