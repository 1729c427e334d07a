//! The offboarding reconciler (DESIGN flow 5): `plan` decides without I/O, `apply` executes a
//! plan in one transaction, `run` walks Graph and records each run, failing safe.

pub mod apply;
pub mod plan;
pub mod run;

pub mod scheduler;

pub use run::{decide, reconcile, DecideError, Outcome, RunReport, Trigger};
