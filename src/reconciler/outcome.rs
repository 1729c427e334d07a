//! What a run was asked for and what it did: its trigger, its outcome and its report, and
//! why it failed when it did.

use crate::domain::{EntraHealth, RunOutcome};
use crate::entra::EntraError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Schedule,
    /// Microsoft notified a change in the directory.
    Notification,
    Manual,
    Cli,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Schedule => "schedule",
            Trigger::Notification => "notification",
            Trigger::Manual => "manual",
            Trigger::Cli => "cli",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Failed,
    Held,
    /// Group changes would have left the tenant without an admin: nothing was applied.
    KeptLastAdmin,
    DryRun,
    /// Another instance holds this tenant's lease.
    Skipped,
}

impl Outcome {
    /// The run record's outcome this report stands for; a skipped run records none.
    pub fn recorded(self) -> Option<RunOutcome> {
        match self {
            Outcome::Ok => Some(RunOutcome::Ok),
            Outcome::Failed => Some(RunOutcome::Failed),
            Outcome::Held => Some(RunOutcome::Held),
            Outcome::KeptLastAdmin => Some(RunOutcome::KeptLastAdmin),
            Outcome::DryRun => Some(RunOutcome::DryRun),
            Outcome::Skipped => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        self.recorded().map_or("skipped", RunOutcome::as_str)
    }
}

/// What a run did, for the portal, the CLI and tests.
#[derive(Debug, Clone)]
pub struct RunReport {
    pub run_id: Option<i64>,
    pub outcome: Outcome,
    pub graph_requests: u32,
    pub users_checked: usize,
    /// Offboarded (or, in a dry run or a held run, would be): (email, reason).
    pub offboarded: Vec<(String, String)>,
    pub error: Option<String>,
}

/// Why a run failed: every failure offboards nobody; some also say something lasting about
/// the tenant's connection (a health the pages show).
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
