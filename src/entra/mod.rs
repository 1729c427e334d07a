//! Client for the Microsoft identity platform and Graph, as Gatehouse uses them. Base URLs
//! come from configuration, so the same code talks to Microsoft or to the emulator.
//! No business rules here: callers decide what a user or an error means.

mod accounts;
mod certificate;
mod error;
mod graph;
mod group_delta;
mod identity;
mod tokens;

pub use accounts::{Account, Pass, PassPolicy};
pub use certificate::{CertificateError, ClientCertificate, CERTIFICATE_WARNING_SECS};
pub use error::EntraError;
pub use graph::{
    DeltaEntry, DeltaPage, DirectoryGroup, DirectoryUser, Domain, Graph, Organization, Patience,
};
pub use group_delta::{GroupDelta, GroupDeltaPage, Member, MemberDelta, MAX_TRACKED_GROUPS};
pub use identity::{Credential, EntraClient, SignedInAdmin};
