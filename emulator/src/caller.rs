//! Who calls Graph, from a checked bearer token, and what they may do: the Graph routes and the
//! subscriptions routes both start here.

use crate::errors::{GraphError, RequestIds};
use crate::ids::{GRAPH_APP_ID, GRAPH_AUDIENCE};
use crate::model::{Directory, World};
use crate::state::Emulator;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use jsonwebtoken::{Algorithm, Validation};
use serde_json::Value;

/// Permissions that allow reading users (application or delegated).
/// https://learn.microsoft.com/en-us/graph/api/user-list#permissions
pub const READ_USERS: &[&str] = &[
    "User.Read.All",
    "User.ReadWrite.All",
    "User.ReadBasic.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];
/// https://learn.microsoft.com/en-us/graph/api/domain-list#permissions
pub const READ_DOMAINS: &[&str] = &[
    "Domain.Read.All",
    "Domain.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];
/// https://learn.microsoft.com/en-us/graph/api/organization-list#permissions
pub const READ_ORGANIZATION: &[&str] = &[
    "Organization.Read.All",
    "Organization.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
    "User.Read",
];

/// Permissions that allow listing groups and reading who is in them (application).
/// https://learn.microsoft.com/en-us/graph/api/group-list#permissions
/// https://learn.microsoft.com/en-us/graph/api/group-list-transitivemembers#permissions
pub const READ_GROUP_MEMBERS: &[&str] = &[
    "GroupMember.Read.All",
    "Group.Read.All",
    "Group.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];

/// The caller, from a checked bearer token.
pub struct Caller {
    pub tenant_id: String,
    /// Client id of the calling app (`appid`).
    pub app_id: String,
    /// The caller's object id (`oid`): the app's service principal in this directory, or the
    /// signed-in user.
    pub object_id: String,
    permissions: Vec<String>,
    pub ids: RequestIds,
}

impl Caller {
    /// Refuses with 403 unless the token carries one of `any_of` (roles or scp).
    pub fn require(&self, any_of: &[&str]) -> Result<(), GraphError> {
        if self
            .permissions
            .iter()
            .any(|p| any_of.iter().any(|a| a.eq_ignore_ascii_case(p)))
        {
            Ok(())
        } else {
            Err(GraphError::denied(&self.ids))
        }
    }
}

impl FromRequestParts<Emulator> for Caller {
    type Rejection = GraphError;

    async fn from_request_parts(parts: &mut Parts, em: &Emulator) -> Result<Self, GraphError> {
        let ids = parts
            .extensions
            .get::<RequestIds>()
            .cloned()
            .unwrap_or_else(|| RequestIds::new(None));
        let token = parts
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| GraphError::unauthenticated(&ids, "Access token is empty."))?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_audience(&[GRAPH_AUDIENCE, GRAPH_APP_ID]);
        validation.leeway = 0;
        let claims = jsonwebtoken::decode::<Value>(token, &em.keys().decoding, &validation)
            .map_err(|e| {
                use jsonwebtoken::errors::ErrorKind;
                let message = match e.kind() {
                    ErrorKind::ExpiredSignature => {
                        "Lifetime validation failed, the token is expired."
                    }
                    ErrorKind::InvalidAudience => {
                        "Access token validation failure. Invalid audience."
                    }
                    ErrorKind::InvalidSignature => {
                        "Access token validation failure. Invalid signature."
                    }
                    _ => "Access token validation failure.",
                };
                GraphError::unauthenticated(&ids, message)
            })?
            .claims;
        let tenant_id = claims["tid"].as_str().unwrap_or_default().to_string();
        if em.read().directory(&tenant_id).is_err() {
            return Err(GraphError::unauthenticated(
                &ids,
                "Access token validation failure. Invalid tenant.",
            ));
        }
        let mut permissions: Vec<String> = claims["roles"]
            .as_array()
            .map(|r| {
                r.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        if let Some(scp) = claims["scp"].as_str() {
            permissions.extend(scp.split_whitespace().map(String::from));
        }
        Ok(Caller {
            tenant_id,
            app_id: claims["appid"].as_str().unwrap_or_default().to_string(),
            object_id: claims["oid"].as_str().unwrap_or_default().to_string(),
            permissions,
            ids,
        })
    }
}

/// The caller's directory; a token naming none is refused as invalid, as Graph does.
pub fn directory<'w>(world: &'w World, caller: &Caller) -> Result<&'w Directory, GraphError> {
    world.directory(&caller.tenant_id).map_err(|_| {
        GraphError::unauthenticated(
            &caller.ids,
            "Access token validation failure. Invalid tenant.",
        )
    })
}

/// The caller's directory, to change it.
pub fn directory_mut<'w>(
    world: &'w mut World,
    caller: &Caller,
) -> Result<&'w mut Directory, GraphError> {
    world.directory_mut(&caller.tenant_id).map_err(|_| {
        GraphError::unauthenticated(
            &caller.ids,
            "Access token validation failure. Invalid tenant.",
        )
    })
}

/// The id of the live user `id_or_upn` names, or Graph's 404.
pub fn live_user_id(d: &Directory, caller: &Caller, id_or_upn: &str) -> Result<String, GraphError> {
    d.live(id_or_upn)
        .map(|u| u.id.clone())
        .ok_or_else(|| GraphError::not_found(&caller.ids, id_or_upn))
}
