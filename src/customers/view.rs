//! What the Customers page shows, as the server and the browser both know it.

use serde::{Deserialize, Serialize};

/// How the mapping's form marks an Entra group among the holders: `group:` and its id.
pub const GROUP_PREFIX: &str = "group:";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CustomersView {
    /// Gatehouse's customers app is configured (ENTRA_CUSTOMERS_CLIENT_ID and a credential).
    pub app_configured: bool,
    pub customers: Vec<CustomerView>,
    /// The tenant's users come from Entra ID: a mapping may name its groups.
    pub msp_groups: bool,
    /// The roles a mapping can name: (template id, name).
    pub offered_roles: Vec<(String, String)>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CustomerView {
    pub id: String,
    pub name: String,
    pub tenant_id: String,
    pub health: crate::domain::CustomerHealth,
    /// How the connection stands, in a sentence.
    pub health_text: String,
    pub consented: String,
    pub domains: Vec<String>,
    pub domain: Option<String>,
    pub window_minutes: i64,
    pub window_text: String,
    pub grants: Vec<GrantView>,
    /// Every account that is not ended there: open, being made, or ending.
    pub accounts: Vec<AccountView>,
}

/// A technician's account at the customer, as the page lists it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AccountView {
    pub upn: String,
    pub owner: String,
    /// `making`, `open` or `ending`.
    pub state: String,
    /// "open until 14:02", or "still open at Fabrikam since 14:02 — retrying: …".
    pub text: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GrantView {
    /// `technician`, `admin`, or `group:` and the group's object id, as the form sends it.
    pub holders: String,
    /// "Technicians", or "Members of \"MSP Admins\"".
    pub holders_text: String,
    pub role_id: String,
    pub role_name: String,
}
