//! QR login: challenges for the browser, push of the outcome, sessions.

pub mod api;
#[cfg(feature = "ssr")]
pub mod binding;
pub mod page;
#[cfg(feature = "ssr")]
pub mod page_cache;
#[cfg(feature = "ssr")]
pub mod push;
#[cfg(feature = "ssr")]
pub mod qr;
#[cfg(feature = "ssr")]
pub mod routes;
#[cfg(feature = "ssr")]
pub mod service;
#[cfg(feature = "ssr")]
pub mod session;
