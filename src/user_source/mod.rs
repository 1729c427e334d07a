//! Users → User source: which directory the tenant's users come from.

pub mod api;
pub mod page;
