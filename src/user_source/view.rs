//! What the User source page shows, as the server and the browser both know it.

use serde::{Deserialize, Serialize};

/// What the User source page shows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SourceView {
    pub user_source: crate::domain::UserSource,
    pub jit_prefix: String,
    pub entra_configured: bool,
    pub onboarded: i64,
    /// The saved connection.
    pub connected: Option<Connection>,
    /// An authorized Entra tenant, waiting for Save (or the saved one, to change its domain).
    pub authorized: Option<Authorized>,
    /// Gatehouse's Entra certificate is within 30 days of its end (or past it).
    pub certificate_warning: Option<String>,
    /// An admin consent Microsoft has not applied yet: when it was given.
    pub consent_waiting_since: Option<String>,
    pub interval_minutes: i64,
    /// The shortest schedule this Gatehouse allows (1 minute when it cannot receive Graph's
    /// change notifications, 5 when it can).
    pub shortest_interval_minutes: i64,
    pub threshold_count: i64,
    pub threshold_percent: i64,
    /// Only members of this group may onboard (none: anyone in the domain).
    pub scope_group: Option<GroupOption>,
    /// Members of this group are admins (none: roles set by hand).
    pub admin_group: Option<GroupOption>,
}

/// An Entra group an admin can choose: its object id, name, kind ("Security" or
/// "Microsoft 365") and how many users it holds through nested groups (0 where not counted).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GroupOption {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub users: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Connection {
    pub org_name: String,
    pub tenant_id: String,
    pub domain: String,
    pub connected_at: String,
    pub connected_by: String,
    /// True while the last call to Microsoft left nothing wrong.
    pub healthy: bool,
    pub health: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Authorized {
    pub org_name: String,
    pub tenant_id: String,
    pub domains: Vec<String>,
    pub authorized_by: String,
}

/// How the last round trip to Microsoft ended (Authorize, sign-in, consent), said once on the
/// page it lands on. It travels in the admin's session, never in the address: a link cannot
/// make the page say what Gatehouse did not.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    pub ok: bool,
    pub message: String,
}
