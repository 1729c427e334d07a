//! What the Phones list shows, as the server and the browser both know it.

use serde::{Deserialize, Serialize};

/// One phone of a user, as the admin sees it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeviceRow {
    pub id: String,
    /// The first characters of the id, as the audit log names the phone.
    pub short_id: String,
    pub added: String,
    pub last_used: Option<String>,
    /// Addresses of this tenant the phone has verified.
    pub emails: Vec<String>,
    /// How many other addresses it has verified (not named: they are not this tenant's).
    pub other_emails: usize,
    /// The phone has signed this user in here.
    pub signed_in_here: bool,
    /// When it was revoked (here by an admin, by an end of access, or forgotten in the app).
    pub revoked: Option<String>,
}
