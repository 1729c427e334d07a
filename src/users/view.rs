//! What User management shows, as the server and the browser both know it.

use crate::domain::{Role, UserSource, UserStatus};
use serde::{Deserialize, Serialize};

/// One row of the user list.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UserRow {
    pub id: String,
    pub display_name: String,
    pub email: String,
    pub username: String,
    pub role: Role,
    pub source: UserSource,
    pub status: UserStatus,
    pub created: String,
    pub last_login: Option<String>,
    /// "when — why" for an offboarded user.
    pub offboarded: Option<String>,
}

/// One signed-in session of a user.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SessionRow {
    pub id: String,
    pub started: String,
    pub last_seen: String,
    pub ip: String,
    pub user_agent: String,
}
