//! Users → User source: which directory the tenant's users come from, connecting Entra ID,
//! and which user a phone signs in as.

pub mod api;
#[cfg(feature = "ssr")]
pub mod flows;
#[cfg(feature = "ssr")]
pub mod groups;
#[cfg(feature = "ssr")]
pub mod onboarding;
pub mod page;
#[cfg(feature = "ssr")]
pub mod phone;
#[cfg(feature = "ssr")]
pub mod routes;
#[cfg(feature = "ssr")]
pub mod service;
#[cfg(feature = "ssr")]
mod service_view;
pub mod view;
