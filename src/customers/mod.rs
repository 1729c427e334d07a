//! Customers (issue 29): the MSP's customers, each connected to its own Entra tenant, where
//! technicians' JIT accounts are made (`jit`). This part connects them, keeps their settings
//! and role mappings, and shows the accounts open there.

pub mod api;
pub mod page;
pub mod request;
pub mod request_page;
#[cfg(feature = "ssr")]
pub mod routes;
#[cfg(feature = "ssr")]
pub mod service;
#[cfg(feature = "ssr")]
mod service_view;
#[cfg(feature = "ssr")]
pub mod store;
pub mod view;
