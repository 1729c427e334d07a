//! Users → User source: which directory the tenant's users come from.

pub mod api;
#[cfg(feature = "ssr")]
pub mod onboarding;
pub mod page;
