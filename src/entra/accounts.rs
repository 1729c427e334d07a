//! The Graph calls that make, open and end a technician's account in a customer's tenant
//! (issue 29), as Microsoft documents them (docs/research/jit-accounts-graph.md). No rules
//! here: which account, in what order and when is `jit`'s business.

use super::graph::urlencode;
use super::{EntraError, Graph};
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::{json, Value};

/// An account as Graph shows it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Account {
    pub id: String,
    pub user_principal_name: String,
    #[serde(default)]
    pub account_enabled: Option<bool>,
}

/// What the customer's Temporary Access Pass policy allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PassPolicy {
    pub enabled: bool,
    pub minimum_minutes: i64,
    pub maximum_minutes: i64,
}

/// A Temporary Access Pass just made: the code is in Graph's answer to its creation only.
pub struct Pass {
    pub id: String,
    pub code: SecretString,
    /// False when Microsoft made it but will not let it sign in (its policy, say).
    pub usable: bool,
}

impl std::fmt::Debug for Pass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pass")
            .field("id", &self.id)
            .field("code", &"[redacted]")
            .field("usable", &self.usable)
            .finish()
    }
}

impl Graph {
    fn url(&self, path: &str) -> String {
        format!("{}/v1.0{path}", self.base_url())
    }

    /// The account with this sign-in name, if any.
    /// https://learn.microsoft.com/en-us/graph/api/user-get
    pub async fn account_by_upn(&self, upn: &str) -> Result<Option<Account>, EntraError> {
        let url = self.url(&format!(
            "/users/{}?$select=id,userPrincipalName,accountEnabled",
            urlencode(upn)
        ));
        match self.get(&url).await {
            Ok(v) => serde_json::from_value(v)
                .map(Some)
                .map_err(|e| EntraError::Malformed(e.to_string())),
            Err(EntraError::Graph { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Makes an enabled account; its id. Sent once: a failure after Graph made it must not
    /// make a second attempt meet "another object with the same value" and stop there.
    /// https://learn.microsoft.com/en-us/graph/api/user-post-users
    pub async fn create_account(
        &self,
        upn: &str,
        display_name: &str,
        mail_nickname: &str,
        password: &SecretString,
    ) -> Result<String, EntraError> {
        use secrecy::ExposeSecret;
        let body = json!({
            "accountEnabled": true,
            "displayName": display_name,
            "mailNickname": mail_nickname,
            "userPrincipalName": upn,
            "passwordProfile": {
                "forceChangePasswordNextSignIn": false,
                "password": password.expose_secret(),
            },
        });
        let made = self
            .send_once(reqwest::Method::POST, &self.url("/users"), Some(body))
            .await?;
        made["id"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| EntraError::Malformed("a made user without `id`".into()))
    }

    /// Enables or disables the account (a sensitive action on a role holder).
    /// https://learn.microsoft.com/en-us/graph/api/user-update
    pub async fn set_account_enabled(&self, id: &str, enabled: bool) -> Result<(), EntraError> {
        let url = self.url(&format!("/users/{}", urlencode(id)));
        self.send(
            reqwest::Method::PATCH,
            &url,
            Some(json!({ "accountEnabled": enabled })),
        )
        .await?;
        Ok(())
    }

    /// Gives the account a new password (a sensitive action on a role holder).
    /// https://learn.microsoft.com/en-us/graph/api/user-update
    pub async fn set_account_password(
        &self,
        id: &str,
        password: &SecretString,
    ) -> Result<(), EntraError> {
        use secrecy::ExposeSecret;
        let url = self.url(&format!("/users/{}", urlencode(id)));
        let body = json!({ "passwordProfile": {
            "forceChangePasswordNextSignIn": false,
            "password": password.expose_secret(),
        }});
        self.send(reqwest::Method::PATCH, &url, Some(body)).await?;
        Ok(())
    }

    /// Ends every sign-in session of the account.
    /// https://learn.microsoft.com/en-us/graph/api/user-revokesigninsessions
    pub async fn revoke_account_sessions(&self, id: &str) -> Result<(), EntraError> {
        let url = self.url(&format!("/users/{}/revokeSignInSessions", urlencode(id)));
        self.send(reqwest::Method::POST, &url, None).await?;
        Ok(())
    }

    /// The customer's Temporary Access Pass policy.
    /// https://learn.microsoft.com/en-us/graph/api/temporaryaccesspassauthenticationmethodconfiguration-get
    pub async fn pass_policy(&self) -> Result<PassPolicy, EntraError> {
        let url = self.url(
            "/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/TemporaryAccessPass",
        );
        let v = self.get(&url).await?;
        let minutes = |name: &str| v[name].as_i64();
        Ok(PassPolicy {
            enabled: v["state"] == "enabled",
            minimum_minutes: minutes("minimumLifetimeInMinutes").unwrap_or(60),
            maximum_minutes: minutes("maximumLifetimeInMinutes").unwrap_or(480),
        })
    }

    /// Makes a Temporary Access Pass of `minutes` for the account (one replaces another).
    /// https://learn.microsoft.com/en-us/graph/api/authentication-post-temporaryaccesspassmethods
    pub async fn create_pass(&self, id: &str, minutes: i64) -> Result<Pass, EntraError> {
        let url = self.url(&format!(
            "/users/{}/authentication/temporaryAccessPassMethods",
            urlencode(id)
        ));
        let body = json!({ "lifetimeInMinutes": minutes, "isUsableOnce": false });
        let made = self.send(reqwest::Method::POST, &url, Some(body)).await?;
        let (Some(pass_id), Some(code)) =
            (made["id"].as_str(), made["temporaryAccessPass"].as_str())
        else {
            return Err(EntraError::Malformed("a pass without `id` or code".into()));
        };
        Ok(Pass {
            id: pass_id.to_string(),
            code: SecretString::from(code.to_string()),
            usable: made["isUsable"].as_bool().unwrap_or(false),
        })
    }

    /// Deletes every Temporary Access Pass of the account; one already gone is gone.
    /// https://learn.microsoft.com/en-us/graph/api/temporaryaccesspassauthenticationmethod-delete
    pub async fn delete_passes(&self, id: &str) -> Result<(), EntraError> {
        let list = self.url(&format!(
            "/users/{}/authentication/temporaryAccessPassMethods",
            urlencode(id)
        ));
        let page = self.get(&list).await?;
        let Some(Value::Array(passes)) = page.get("value") else {
            return Err(EntraError::Malformed("a pass list without `value`".into()));
        };
        for pass in passes {
            let Some(pass_id) = pass["id"].as_str() else {
                continue;
            };
            let url = format!("{list}/{}", urlencode(pass_id));
            match self.send(reqwest::Method::DELETE, &url, None).await {
                Ok(_) | Err(EntraError::Graph { status: 404, .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Assigns a directory role, tenant-wide; the assignment's id.
    /// https://learn.microsoft.com/en-us/graph/api/rbacapplication-post-roleassignments
    pub async fn assign_role(&self, principal: &str, role: &str) -> Result<String, EntraError> {
        let body = json!({
            "@odata.type": "#microsoft.graph.unifiedRoleAssignment",
            "roleDefinitionId": role,
            "principalId": principal,
            "directoryScopeId": "/",
        });
        let url = self.url("/roleManagement/directory/roleAssignments");
        let made = self.send(reqwest::Method::POST, &url, Some(body)).await?;
        made["id"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| EntraError::Malformed("a role assignment without `id`".into()))
    }

    /// The ids of the account's directory role assignments.
    /// https://learn.microsoft.com/en-us/graph/api/rbacapplication-list-roleassignments
    pub async fn role_assignments_of(&self, principal: &str) -> Result<Vec<String>, EntraError> {
        let filter = format!("principalId eq '{}'", principal.replace('\'', "''"));
        let url = format!(
            "{}?$filter={}",
            self.url("/roleManagement/directory/roleAssignments"),
            urlencode(&filter)
        );
        let page = self.get(&url).await?;
        let Some(Value::Array(items)) = page.get("value") else {
            return Err(EntraError::Malformed(
                "a role assignment list without `value`".into(),
            ));
        };
        Ok(items
            .iter()
            .filter_map(|a| a["id"].as_str().map(str::to_string))
            .collect())
    }

    /// Removes a role assignment; one already gone is gone.
    /// https://learn.microsoft.com/en-us/graph/api/unifiedroleassignment-delete
    pub async fn remove_role_assignment(&self, id: &str) -> Result<(), EntraError> {
        let url = self.url(&format!(
            "/roleManagement/directory/roleAssignments/{}",
            urlencode(id)
        ));
        match self.send(reqwest::Method::DELETE, &url, None).await {
            Ok(_) | Err(EntraError::Graph { status: 404, .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }
}
