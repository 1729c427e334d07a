//! The offboarding reconciler (DESIGN flow 5): `plan` decides without I/O, `carry_out`
//! executes a plan in one transaction, `run` walks Graph and records each run, failing safe
//! (`outcome` says what a run did, or why it failed); `held` carries out an admin's decision
//! on a held run, and `lease`
//! keeps one tenant's runs and decisions from overlapping, across instances; `scheduler`
//! starts each tenant's runs when `schedule` has them due. `store` holds
//! every statement on the run records; `groups` reads who the tenant's Entra groups hold,
//! through the copy of their direct members that `mirror` works the nesting out of and
//! `mirror_store` keeps; `timeline` tells how long each offboarding took, from first sight to
//! access ended.

pub mod api;
#[cfg(feature = "ssr")]
mod carry_out;
#[cfg(feature = "ssr")]
mod groups;
#[cfg(feature = "ssr")]
mod held;
#[cfg(feature = "ssr")]
pub mod lease;
#[cfg(feature = "ssr")]
mod mirror;
#[cfg(feature = "ssr")]
mod mirror_store;
#[cfg(feature = "ssr")]
mod outcome;
pub mod page;
#[cfg(feature = "ssr")]
pub mod plan;
#[cfg(feature = "ssr")]
pub mod run;
#[cfg(feature = "ssr")]
pub mod schedule;
#[cfg(feature = "ssr")]
pub mod scheduler;
#[cfg(feature = "ssr")]
mod service;
#[cfg(feature = "ssr")]
mod store;
#[cfg(feature = "ssr")]
mod timeline;
pub mod view;

#[cfg(feature = "ssr")]
pub use held::{approve, reject, Approved, DecideError, Shown};
#[cfg(feature = "ssr")]
pub use run::{reconcile, Outcome, RunReport, Trigger};
#[cfg(feature = "ssr")]
pub use service::{record_request, view};
#[cfg(feature = "ssr")]
pub use store::awaiting_decision;
