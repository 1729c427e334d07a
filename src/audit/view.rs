//! What the Audit log page shows, as the server and the browser both know it.

use serde::{Deserialize, Serialize};

/// One audit event as the Audit log page shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub id: i64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub details: String,
    /// The request that made the change (its `x-request-id`, in the logs), if a request did.
    pub request: Option<String>,
}
