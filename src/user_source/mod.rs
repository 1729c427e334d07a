//! Users → User source: which directory the tenant's users come from, and connecting Entra ID.

pub mod api;
#[cfg(feature = "ssr")]
pub mod onboarding;
pub mod page;
#[cfg(feature = "ssr")]
pub mod routes;
#[cfg(feature = "ssr")]
pub mod service;
#[cfg(feature = "ssr")]
mod service_view;
