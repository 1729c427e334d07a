//! The mobile API (a public contract, see DESIGN) and the mobile web app that uses it.

#[cfg(feature = "ssr")]
pub mod error;
#[cfg(feature = "ssr")]
pub mod jws;
#[cfg(feature = "ssr")]
pub mod routes;
#[cfg(feature = "ssr")]
pub mod service;
