//! The offboarding reconciler (DESIGN flow 5): `plan` decides without I/O, `apply` executes a
//! plan in one transaction, `run` walks Graph and records each run, failing safe.

pub mod api;
#[cfg(feature = "ssr")]
pub mod apply;
pub mod page;
#[cfg(feature = "ssr")]
pub mod plan;
#[cfg(feature = "ssr")]
pub mod run;
#[cfg(feature = "ssr")]
pub mod scheduler;
#[cfg(feature = "ssr")]
mod service;

#[cfg(feature = "ssr")]
pub use run::{decide, reconcile, DecideError, Outcome, RunReport, Trigger};
