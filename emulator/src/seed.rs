//! What the emulator starts with: the Contoso demo directory (and the MSP's customers,
//! Fabrikam and Northwind Traders), or a seed file.
//!
//! A seed file is JSON (every field camelCase, ids optional: missing ones become random GUIDs,
//! a missing app secret becomes a random one):
//!
//! ```json
//! {
//!   "directories": [{
//!     "tenantId": "9f4c2a1e-5b7d-4e3a-8c6f-2d1b0a9e8f70",
//!     "displayName": "Contoso",
//!     "domains": [
//!       { "name": "contoso.com", "isVerified": true, "isDefault": true },
//!       { "name": "contoso.onmicrosoft.com", "isVerified": true, "isInitial": true }
//!     ],
//!     "users": [{
//!       "id": "…", "userPrincipalName": "alex@contoso.com", "displayName": "Alex Wilber",
//!       "givenName": "Alex", "surname": "Wilber", "mail": "alex@contoso.com",
//!       "proxyAddresses": ["SMTP:alex@contoso.com"], "otherMails": [],
//!       "accountEnabled": true, "userType": "Member", "isAdmin": false
//!     }],
//!     "groups": [{
//!       "id": "…", "displayName": "MSP Technicians", "securityEnabled": true,
//!       "mailEnabled": false, "groupTypes": [], "members": ["alex@contoso.com", "Tier 2"]
//!     }],
//!     "consents": [{ "clientId": "…", "roles": ["User.Read.All"] }],
//!     "temporaryAccessPass": { "state": "enabled", "defaultLifetimeInMinutes": 240 }
//!   }],
//!   "apps": [{
//!     "clientId": "…", "displayName": "Gatehouse", "secret": "…",
//!     "redirectUris": ["http://localhost:3000/adminportal/user-source/callback"],
//!     "applicationPermissions": ["User.Read.All", "Domain.Read.All"],
//!     "delegatedPermissions": ["openid", "profile", "email", "User.Read"]
//!   }]
//! }
//! ```
//!
//! `isAdmin` is the emulator's own flag: only such users can grant admin consent.

use crate::ids::new_guid;
use crate::membership::Group;
use crate::model::{Domain, User};
use serde::Deserialize;

/// Tenant id of the Contoso demo directory (fixed so demo links stay valid across restarts).
pub const CONTOSO_TENANT_ID: &str = "9f4c2a1e-5b7d-4e3a-8c6f-2d1b0a9e8f70";
/// Tenant ids of the MSP's demo customers, whose directories Gatehouse makes technicians'
/// accounts in (issue 29): Fabrikam allows Temporary Access Passes, Northwind does not.
pub const FABRIKAM_TENANT_ID: &str = "b3a9d2c4-6e1f-4a8b-9c7d-5e3f2a1b0c60";
pub const NORTHWIND_TENANT_ID: &str = "c8e4f1a2-3b5d-4c6e-8f7a-9b0c1d2e3f40";
/// Client id of the demo app registration.
pub const DEMO_CLIENT_ID: &str = "3c1e2a47-9d7b-4f3e-8a6c-5b2d1e0f9a84";
/// Client id of the demo's second app registration, the one customers consent to: it makes
/// and ends technicians' accounts in their directories, so the MSP's own directory never
/// grants those permissions (an app's application permissions are fixed in its registration;
/// consent cannot ask for a subset).
pub const DEMO_CUSTOMERS_CLIENT_ID: &str = "7d2f4b91-5c3a-4e8d-b1f6-0a9c8e7d6b52";

/// A seed: directories and apps.
#[derive(Clone, Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Seed {
    #[serde(default)]
    pub(crate) directories: Vec<DirectorySeed>,
    #[serde(default)]
    pub(crate) apps: Vec<AppSeed>,
}

/// One directory in a seed (also the body of the control API's "create directory").
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectorySeed {
    #[serde(default = "new_guid")]
    pub tenant_id: String,
    pub display_name: String,
    #[serde(default)]
    pub domains: Vec<Domain>,
    #[serde(default)]
    pub users: Vec<User>,
    /// Groups; `members` name users (by id or sign-in name) and other groups (by id or
    /// display name) of this directory.
    #[serde(default)]
    pub groups: Vec<Group>,
    #[serde(default)]
    pub consents: Vec<ConsentSeed>,
    /// The Temporary Access Pass policy (fields as Graph names them); off when absent.
    #[serde(default)]
    pub temporary_access_pass: Option<crate::secrets::TapPolicy>,
}

/// An admin consent already granted.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsentSeed {
    pub client_id: String,
    #[serde(default)]
    pub roles: Option<Vec<String>>,
}

/// One app registration in a seed (also the body of the control API's "create app").
#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppSeed {
    #[serde(default = "new_guid")]
    pub client_id: String,
    #[serde(default = "default_app_name")]
    pub display_name: String,
    #[serde(default)]
    pub secret: Option<String>,
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    #[serde(default = "default_app_permissions")]
    pub application_permissions: Vec<String>,
    #[serde(default = "default_delegated")]
    pub delegated_permissions: Vec<String>,
}

impl std::fmt::Debug for AppSeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppSeed")
            .field("client_id", &self.client_id)
            .field("display_name", &self.display_name)
            .field("secret", &self.secret.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

fn default_app_name() -> String {
    "Gatehouse".into()
}

fn default_app_permissions() -> Vec<String> {
    vec![
        "User.Read.All".into(),
        "Domain.Read.All".into(),
        "GroupMember.Read.All".into(),
    ]
}

/// What the customers' app needs to make, open and end technicians' accounts, and no more
/// (docs/research/jit-accounts-graph.md has the page behind each).
pub fn customer_app_permissions() -> Vec<String> {
    [
        "User.Read.All",
        "User.Create",
        "User.EnableDisableAccount.All",
        "User-PasswordProfile.ReadWrite.All",
        "User.RevokeSessions.All",
        "UserAuthenticationMethod.ReadWrite.All",
        "RoleManagement.ReadWrite.Directory",
        "Policy.Read.AuthenticationMethod",
        "Domain.Read.All",
    ]
    .map(String::from)
    .to_vec()
}

fn default_delegated() -> Vec<String> {
    ["openid", "profile", "email", "offline_access", "User.Read"]
        .map(String::from)
        .to_vec()
}

/// Why a seed file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("cannot read seed file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("seed is not valid JSON of the documented shape: {0}")]
    Parse(#[from] serde_json::Error),
    #[error("seed is inconsistent: {0}")]
    Model(#[from] crate::model::ModelError),
}

impl Seed {
    /// Parses a seed from JSON text.
    pub fn from_json(text: &str) -> Result<Self, SeedError> {
        Ok(serde_json::from_str(text)?)
    }

    /// Reads a seed file.
    pub fn from_file(path: &std::path::Path) -> Result<Self, SeedError> {
        let text = std::fs::read_to_string(path).map_err(|source| SeedError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_json(&text)
    }

    /// The Contoso demo: a handful of users, incl. one disabled, one guest and one reachable
    /// only through a `proxyAddresses` alias, and the Gatehouse app (not yet consented);
    /// beside it the MSP's customers Fabrikam and Northwind Traders.
    pub fn contoso() -> Self {
        let users = serde_json::json!([
            { "id": "1f0c5a52-7d1e-4b8a-9f3c-0a1b2c3d4e01", "userPrincipalName": "megan@contoso.com",
              "displayName": "Megan Bowen", "givenName": "Megan", "surname": "Bowen",
              "mail": "megan@contoso.com", "proxyAddresses": ["SMTP:megan@contoso.com"], "isAdmin": true },
            { "id": "1f0c5a52-7d1e-4b8a-9f3c-0a1b2c3d4e02", "userPrincipalName": "alex@contoso.com",
              "displayName": "Alex Wilber", "givenName": "Alex", "surname": "Wilber",
              "mail": "alex@contoso.com", "proxyAddresses": ["SMTP:alex@contoso.com"] },
            { "id": "1f0c5a52-7d1e-4b8a-9f3c-0a1b2c3d4e03", "userPrincipalName": "isaiah@contoso.com",
              "displayName": "Isaiah Langer", "givenName": "Isaiah", "surname": "Langer",
              "mail": "isaiah@contoso.com", "proxyAddresses": ["SMTP:isaiah@contoso.com"] },
            { "id": "1f0c5a52-7d1e-4b8a-9f3c-0a1b2c3d4e04", "userPrincipalName": "diego@contoso.com",
              "displayName": "Diego Siciliani", "givenName": "Diego", "surname": "Siciliani",
              "mail": "diego@contoso.com", "proxyAddresses": ["SMTP:diego@contoso.com"],
              "accountEnabled": false },
            { "id": "1f0c5a52-7d1e-4b8a-9f3c-0a1b2c3d4e05", "userPrincipalName": "pattif@contoso.com",
              "displayName": "Patti Fernandez", "givenName": "Patti", "surname": "Fernandez",
              "mail": "pattif@contoso.com",
              "proxyAddresses": ["SMTP:pattif@contoso.com", "smtp:patti.fernandez@contoso.com"] },
            { "id": "1f0c5a52-7d1e-4b8a-9f3c-0a1b2c3d4e06", "userPrincipalName": "lidia@contoso.com",
              "displayName": "Lidia Holloway", "givenName": "Lidia", "surname": "Holloway",
              "mail": "lidia@contoso.com", "proxyAddresses": ["SMTP:lidia@contoso.com"] },
            { "id": "1f0c5a52-7d1e-4b8a-9f3c-0a1b2c3d4e07",
              "userPrincipalName": "adele_fabrikam.com#EXT#@contoso.onmicrosoft.com",
              "displayName": "Adele Vance (Fabrikam)", "givenName": "Adele", "surname": "Vance",
              "mail": "adele@fabrikam.com", "otherMails": ["adele@fabrikam.com"],
              "userType": "Guest" }
        ]);
        let users: Vec<User> = serde_json::from_value(users).unwrap_or_default();
        let demo_redirects = |page: &str| {
            let mut uris = Vec::new();
            for host in ["localhost:3000", "demo.localhost:3000"] {
                for path in ["callback", "consent-callback"] {
                    uris.push(format!("http://{host}/adminportal/{page}/{path}"));
                }
            }
            uris
        };
        Seed {
            directories: vec![DirectorySeed {
                tenant_id: CONTOSO_TENANT_ID.into(),
                display_name: "Contoso".into(),
                domains: vec![
                    Domain {
                        name: "contoso.com".into(),
                        is_verified: true,
                        is_default: true,
                        is_initial: false,
                    },
                    Domain {
                        name: "contoso.onmicrosoft.com".into(),
                        is_verified: true,
                        is_default: false,
                        is_initial: true,
                    },
                ],
                users,
                groups: contoso_groups(),
                consents: vec![],
                temporary_access_pass: None,
            }]
            .into_iter()
            .chain(customers())
            .collect(),
            apps: vec![
                AppSeed {
                    client_id: DEMO_CLIENT_ID.into(),
                    display_name: default_app_name(),
                    secret: None,
                    redirect_uris: demo_redirects("user-source"),
                    application_permissions: default_app_permissions(),
                    delegated_permissions: default_delegated(),
                },
                AppSeed {
                    client_id: DEMO_CUSTOMERS_CLIENT_ID.into(),
                    display_name: "Gatehouse for customers".into(),
                    secret: None,
                    redirect_uris: demo_redirects("customers"),
                    application_permissions: customer_app_permissions(),
                    delegated_permissions: default_delegated(),
                },
            ],
        }
    }
}

/// The MSP's customers: Fabrikam (fabrikam.com, Temporary Access Passes on, as many tenants
/// turn them on for onboarding) and Northwind Traders (northwindtraders.com, passes off, the
/// default), each with the admin who grants consent and one employee.
fn customers() -> Vec<DirectorySeed> {
    serde_json::from_value(serde_json::json!([
        { "tenantId": FABRIKAM_TENANT_ID, "displayName": "Fabrikam",
          "domains": [
            { "name": "fabrikam.com", "isVerified": true, "isDefault": true },
            { "name": "fabrikam.onmicrosoft.com", "isVerified": true, "isInitial": true } ],
          "users": [
            { "id": "b3a9d2c4-0000-4a8b-9c7d-00000000fa01", "userPrincipalName": "adele@fabrikam.com",
              "displayName": "Adele Vance", "givenName": "Adele", "surname": "Vance",
              "mail": "adele@fabrikam.com", "proxyAddresses": ["SMTP:adele@fabrikam.com"], "isAdmin": true },
            { "id": "b3a9d2c4-0000-4a8b-9c7d-00000000fa02", "userPrincipalName": "ben@fabrikam.com",
              "displayName": "Ben Walters", "givenName": "Ben", "surname": "Walters",
              "mail": "ben@fabrikam.com", "proxyAddresses": ["SMTP:ben@fabrikam.com"] } ],
          "temporaryAccessPass": { "state": "enabled", "defaultLifetimeInMinutes": 240,
            "minimumLifetimeInMinutes": 15, "maximumLifetimeInMinutes": 720 } },
        { "tenantId": NORTHWIND_TENANT_ID, "displayName": "Northwind Traders",
          "domains": [
            { "name": "northwindtraders.com", "isVerified": true, "isDefault": true },
            { "name": "northwindtraders.onmicrosoft.com", "isVerified": true, "isInitial": true } ],
          "users": [
            { "id": "c8e4f1a2-0000-4c6e-8f7a-00000000a701", "userPrincipalName": "nestor@northwindtraders.com",
              "displayName": "Nestor Wilke", "givenName": "Nestor", "surname": "Wilke",
              "mail": "nestor@northwindtraders.com", "proxyAddresses": ["SMTP:nestor@northwindtraders.com"],
              "isAdmin": true } ] }
    ]))
    .expect("the customers' seed")
}

/// Contoso's groups: "MSP Technicians" holds Alex, Isaiah and the nested "Tier 2" (Patti);
/// "MSP Admins" holds Megan; "Sales" is a Microsoft 365 group with Lidia (in the domain, in
/// neither MSP group) and Adele, the guest.
fn contoso_groups() -> Vec<Group> {
    serde_json::from_value(serde_json::json!([
        { "id": "5b1d7c90-2e4f-4a6b-8c0d-1e2f3a4b5c01", "displayName": "MSP Technicians",
          "description": "Technicians who may sign in to customer portals",
          "members": ["alex@contoso.com", "isaiah@contoso.com", "Tier 2"] },
        { "id": "5b1d7c90-2e4f-4a6b-8c0d-1e2f3a4b5c02", "displayName": "Tier 2",
          "description": "Second-line technicians", "members": ["pattif@contoso.com"] },
        { "id": "5b1d7c90-2e4f-4a6b-8c0d-1e2f3a4b5c03", "displayName": "MSP Admins",
          "description": "Gatehouse administrators", "members": ["megan@contoso.com"] },
        { "id": "5b1d7c90-2e4f-4a6b-8c0d-1e2f3a4b5c04", "displayName": "Sales",
          "groupTypes": ["Unified"], "securityEnabled": false, "mailEnabled": true,
          "members": ["lidia@contoso.com", "adele_fabrikam.com#EXT#@contoso.onmicrosoft.com"] }
    ]))
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_contoso_seed_has_the_promised_users() {
        let seed = Seed::contoso();
        let users = &seed.directories[0].users;
        assert_eq!(users.len(), 7);
        assert!(users.iter().any(|u| !u.account_enabled));
        assert!(users.iter().any(|u| u.user_type == "Guest"));
        assert!(users.iter().any(|u| u
            .proxy_addresses
            .iter()
            .any(|p| p == "smtp:patti.fernandez@contoso.com")));
    }

    #[test]
    fn contosos_groups_nest_as_promised() {
        let seed = Seed::contoso().directories.remove(0);
        let mut d = crate::model::Directory::new(seed.tenant_id, seed.display_name, seed.domains);
        for u in seed.users {
            d.add_user(u).unwrap();
        }
        d.add_groups(seed.groups).unwrap();
        let technicians = d.member_id("MSP Technicians").unwrap();
        let patti = d.member_id("pattif@contoso.com").unwrap();
        let megan = d.member_id("megan@contoso.com").unwrap();
        assert!(d.groups.contains(&technicians, &patti), "through Tier 2");
        assert!(!d.groups.contains(&technicians, &megan));
        assert!(d
            .groups
            .contains(&d.member_id("MSP Admins").unwrap(), &megan));
        assert!(d.member_id("Nobody's group").is_err());
    }

    #[test]
    fn the_msps_customers_come_with_their_pass_policies() {
        let seed = Seed::contoso();
        let names: Vec<&str> = seed
            .directories
            .iter()
            .map(|d| d.display_name.as_str())
            .collect();
        assert_eq!(names, ["Contoso", "Fabrikam", "Northwind Traders"]);
        let fabrikam = seed.directories[1].temporary_access_pass.clone().unwrap();
        assert_eq!(fabrikam.state, crate::secrets::PolicyState::Enabled);
        assert!(
            seed.directories[2].temporary_access_pass.is_none(),
            "off, the default"
        );
    }

    #[test]
    fn a_seed_file_may_leave_ids_out() {
        let seed = Seed::from_json(
            r#"{"directories":[{"displayName":"Fabrikam","users":[{"userPrincipalName":"a@f.com","displayName":"A"}]}]}"#,
        )
        .unwrap();
        assert!(crate::ids::is_guid(&seed.directories[0].tenant_id));
        assert!(seed.directories[0].users[0].account_enabled);
    }
}
