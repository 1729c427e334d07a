//! QR login: the challenge's whole life (drawn, approved or denied, consumed, cancelled), the
//! login page and its cache, sessions.

pub mod api;
#[cfg(feature = "ssr")]
pub mod binding;
#[cfg(feature = "ssr")]
pub mod challenge;
pub mod page;
#[cfg(feature = "ssr")]
pub mod page_cache;
#[cfg(feature = "ssr")]
pub mod page_load;
#[cfg(feature = "ssr")]
pub mod qr;
#[cfg(feature = "ssr")]
pub mod routes;
#[cfg(feature = "ssr")]
pub mod session;
pub mod view;
