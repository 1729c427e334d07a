//! Client for the Microsoft identity platform and Graph, as Gatehouse uses them. Base URLs
//! come from configuration, so the same code talks to Microsoft or to the emulator.
//! No business rules here: callers decide what a user or an error means.

mod error;
mod graph;
mod identity;
mod tokens;

pub use error::EntraError;
pub use graph::{DeltaEntry, DeltaPage, DirectoryUser, Domain, Graph, Organization, Patience};
pub use identity::{EntraClient, SignedInAdmin};
