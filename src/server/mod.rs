//! Process plumbing: configuration, start-up, database, mail, telemetry. No product rules.

pub mod cli;
pub mod config;
pub mod context;
pub mod db;
pub mod host;
pub mod mail;
pub mod rate_limit;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod util;
