//! Process plumbing: configuration, start-up, database, mail, telemetry. No product rules.

pub mod bus;
pub mod caching;
pub mod cli;
pub mod client_ip;
pub mod config;
pub mod context;
pub mod csrf;
pub mod db;
pub mod headers;
pub mod host;
pub mod mail;
pub mod nul;
pub mod rate_limit;
pub mod render;
pub mod request_log;
pub mod serve;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod throttle;
pub mod util;
