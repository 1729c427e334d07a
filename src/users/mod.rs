//! User management for a tenant: invite, disable, delete, promote, sessions.

#[cfg(feature = "ssr")]
pub mod access;
#[cfg(feature = "ssr")]
pub mod admins;
pub mod api;
pub mod page;
#[cfg(feature = "ssr")]
pub mod service;
#[cfg(feature = "ssr")]
pub mod store;
pub mod view;
