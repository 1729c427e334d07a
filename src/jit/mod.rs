//! JIT accounts (issue 29): a technician's named admin account in a customer's Entra tenant,
//! opened on request for a window and ended with the window or with the technician's access.

pub mod holders;
pub mod request;
pub mod service;
pub mod store;
pub mod worker;
