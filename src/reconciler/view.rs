//! What the Reconciliation page shows, as the server and the browser both know it.

use serde::{Deserialize, Serialize};

/// The Reconciliation page.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReconcileView {
    pub connected: bool,
    pub interval: String,
    pub threshold: String,
    pub next_run: Option<String>,
    /// When Entra ID was last read through to the end (a run that finished, or was held).
    pub last_check: Option<String>,
    /// What is wrong with the connection, when the last call to Microsoft said something
    /// lasting (whose problem it is, and what to do).
    pub problem: Option<String>,
    pub runs: Vec<RunRow>,
    pub held: Vec<HeldRun>,
    /// Microsoft's change notifications for this tenant, when Gatehouse is subscribed.
    pub notifications: Option<NotificationsLive>,
    /// The last 30 days' offboardings, newest first, each with its timeline.
    pub offboardings: Vec<OffboardingRow>,
    /// Over those whose access has ended: how long from first sight.
    pub time_to_revoke: Option<TimeToRevoke>,
}

/// One offboarding: who, why, when the change was first seen, and how long after that the
/// run decided and access ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OffboardingRow {
    pub user: String,
    pub reason: String,
    pub seen: String,
    pub decided_after: String,
    /// None while access is still being ended (or when it could not be recorded).
    pub ended_after: Option<String>,
    /// Each of the user's accounts at customers this offboarding ended: "fabrikam.com +3 s",
    /// or "fabrikam.com: still open, retrying: …" until Microsoft confirms.
    pub customer_accounts: Vec<String>,
}

/// The tenant's time from first sight to access ended, over `count` offboardings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TimeToRevoke {
    pub p50: String,
    pub p95: String,
    pub count: usize,
}

/// A live change subscription: what it is, until when, and when Microsoft last spoke.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NotificationsLive {
    pub subscription: String,
    pub expires: String,
    pub last_heard: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRow {
    pub id: i64,
    pub started: String,
    pub trigger: String,
    pub outcome: crate::domain::RunOutcome,
    pub graph_requests: i64,
    pub users_checked: i64,
    pub offboarded: i64,
    pub error: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HeldRun {
    pub run_id: i64,
    pub started: String,
    pub users: Vec<(String, String)>,
}
