//! What a run was asked for and what it did: its trigger, its outcome and its report.

use crate::domain::RunOutcome;

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
