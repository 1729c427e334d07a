//! Graph change notifications (DESIGN, "Change notifications"): Microsoft tells Gatehouse
//! within seconds that someone in a connected tenant changed, and the tenant's reconciler
//! runs soon after instead of at its next scheduled time. A notification is only ever a
//! reason to look: the delta run decides who goes, under its lease, threshold and fail-safe,
//! so a forged, late, lost or repeated notification can cost a run at most.
//!
//! `receive` checks what arrives (pure), `service` takes a delivery (notes what it names and
//! books the runs), `store` owns the `entra_subscriptions` table, `keeper` creates, renews
//! and ends the subscriptions, and `routes` is the HTTP edge at `/api/entra/notifications`
//! and `/api/entra/lifecycle`, which only translates.

#[cfg(feature = "ssr")]
pub mod keeper;
#[cfg(feature = "ssr")]
pub mod receive;
#[cfg(feature = "ssr")]
pub mod routes;
#[cfg(feature = "ssr")]
mod service;
#[cfg(feature = "ssr")]
pub mod store;
