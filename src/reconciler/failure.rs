//! Why a reconciliation run failed: every failure offboards nobody; some also say something
//! lasting about the tenant's connection (a health the pages show).

use crate::domain::EntraHealth;
use crate::entra::EntraError;

#[derive(Debug, thiserror::Error)]
pub(super) enum RunError {
    #[error("{0}")]
    Entra(#[from] EntraError),
    /// A lasting problem with the tenant's groups, with the health the pages show.
    #[error("{1}")]
    Groups(EntraHealth, String),
    #[error("{0}")]
    Other(String),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl RunError {
    /// What the failure says lastingly about the tenant's connection, for the pages.
    pub(super) fn health(&self) -> Option<EntraHealth> {
        match self {
            RunError::Entra(e) => e.health(),
            RunError::Groups(health, _) => Some(*health),
            _ => None,
        }
    }
}
