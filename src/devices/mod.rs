//! Phones: their keys, the emails they verified, and which users of which tenants they may
//! approve sign-ins for. An admin revokes a lost phone here; the technician forgets their own.

pub mod api;
#[cfg(feature = "ssr")]
pub mod email;
pub mod page;
#[cfg(feature = "ssr")]
pub mod service;
#[cfg(feature = "ssr")]
pub mod store;
pub mod view;
