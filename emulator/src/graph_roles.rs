//! Microsoft Graph v1.0 directory roles: `/roleManagement/directory/roleDefinitions` and
//! `/roleManagement/directory/roleAssignments` (list, create, delete), tenant-wide only.

use crate::caller::{directory, directory_mut, Caller};
use crate::errors::GraphError;
use crate::ids::new_guid;
use crate::roles::{self, RoleAssignment};
use crate::state::Emulator;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use std::collections::HashMap;

/// Permissions that allow reading role definitions and assignments (application).
/// https://learn.microsoft.com/en-us/graph/api/rbacapplication-list-roledefinitions#permissions
/// https://learn.microsoft.com/en-us/graph/api/rbacapplication-list-roleassignments#permissions
pub const READ_ROLES: &[&str] = &[
    "RoleManagement.Read.Directory",
    "RoleManagement.Read.All",
    "Directory.Read.All",
    "RoleManagement.ReadWrite.Directory",
    "Directory.ReadWrite.All",
];
/// The one permission that allows assigning and removing roles (application).
/// https://learn.microsoft.com/en-us/graph/api/rbacapplication-post-roleassignments#permissions
/// https://learn.microsoft.com/en-us/graph/api/unifiedroleassignment-delete#permissions
pub const ASSIGN_ROLES: &[&str] = &["RoleManagement.ReadWrite.Directory"];

pub fn routes() -> Router<Emulator> {
    Router::new()
        .route(
            "/v1.0/roleManagement/directory/roleDefinitions",
            get(definitions),
        )
        .route(
            "/v1.0/roleManagement/directory/roleAssignments",
            get(assignments).post(assign),
        )
        .route(
            "/v1.0/roleManagement/directory/roleAssignments/{id}",
            get(assignment).delete(unassign),
        )
}

/// Every built-in role the emulator knows.
async fn definitions(
    State(em): State<Emulator>,
    caller: Caller,
) -> Result<Json<Value>, GraphError> {
    caller.require(READ_ROLES)?;
    let value: Vec<Value> = roles::BUILT_IN
        .iter()
        .map(|r| {
            json!({
                "id": r.id, "templateId": r.id, "displayName": r.name,
                "description": r.description, "isBuiltIn": true, "isEnabled": true,
                "version": "1", "rolePermissions": [], "inheritsPermissionsFrom": []
            })
        })
        .collect();
    Ok(Json(json!({
        "@odata.context": format!("{}/v1.0/$metadata#roleManagement/directory/roleDefinitions", em.base_url()),
        "value": value,
    })))
}

fn assignment_json(a: &RoleAssignment) -> Value {
    json!({
        "id": a.id, "roleDefinitionId": a.role_definition_id, "principalId": a.principal_id,
        "directoryScopeId": a.directory_scope_id, "resourceScope": a.directory_scope_id,
    })
}

/// The directory's role assignments; `$filter=principalId eq '…'` or
/// `roleDefinitionId eq '…'` narrows them.
async fn assignments(
    State(em): State<Emulator>,
    caller: Caller,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, GraphError> {
    caller.require(READ_ROLES)?;
    let wanted: Option<(&str, String)> = match q.get("$filter") {
        None => None,
        Some(f) => Some(parse_filter(f).ok_or_else(|| {
            GraphError::unsupported_query(
                &caller.ids,
                "Only principalId eq '…' or roleDefinitionId eq '…' is supported here.",
            )
        })?),
    };
    let world = em.read();
    let d = directory(&world, &caller)?;
    let value: Vec<Value> = d
        .role_assignments
        .iter()
        .filter(|a| match &wanted {
            None => true,
            Some(("principalId", v)) => a.principal_id.eq_ignore_ascii_case(v),
            Some((_, v)) => a.role_definition_id.eq_ignore_ascii_case(v),
        })
        .map(assignment_json)
        .collect();
    Ok(Json(json!({
        "@odata.context": format!("{}/v1.0/$metadata#roleManagement/directory/roleAssignments", em.base_url()),
        "value": value,
    })))
}

/// `principalId eq 'x'` or `roleDefinitionId eq 'x'`.
fn parse_filter(filter: &str) -> Option<(&'static str, String)> {
    let (property, value) = filter.split_once(" eq ")?;
    let property = match property.trim() {
        "principalId" => "principalId",
        "roleDefinitionId" => "roleDefinitionId",
        _ => return None,
    };
    let value = value.trim().strip_prefix('\'')?.strip_suffix('\'')?;
    Some((property, value.to_string()))
}

async fn assignment(
    State(em): State<Emulator>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, GraphError> {
    caller.require(READ_ROLES)?;
    let world = em.read();
    let d = directory(&world, &caller)?;
    d.role_assignments
        .iter()
        .find(|a| a.id == id)
        .map(|a| Json(assignment_json(a)))
        .ok_or_else(|| GraphError::not_found(&caller.ids, &id))
}

/// Assigns a built-in role to a user or an app of the directory, tenant-wide: 201. The role may be
/// named by its id or its template id (the same for built-in roles).
async fn assign(
    State(em): State<Emulator>,
    caller: Caller,
    Json(body): Json<Value>,
) -> Result<(StatusCode, Json<Value>), GraphError> {
    caller.require(ASSIGN_ROLES)?;
    let bad = |message: &str| {
        GraphError::new(
            &caller.ids,
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            message.to_string(),
        )
    };
    let role = body["roleDefinitionId"]
        .as_str()
        .and_then(roles::built_in)
        .ok_or_else(|| bad("Invalid value specified for property 'roleDefinitionId'."))?;
    let principal = body["principalId"]
        .as_str()
        .ok_or_else(|| bad("Invalid value specified for property 'principalId'."))?;
    // Only tenant-wide assignments: administrative units are not emulated.
    if body["directoryScopeId"].as_str() != Some("/") {
        return Err(bad(
            "Invalid value specified for property 'directoryScopeId'.",
        ));
    }
    let mut world = em.write();
    let d = directory_mut(&mut world, &caller)?;
    // A user, or an app's service principal in this directory.
    let principal_id = d
        .live(principal)
        .map(|u| u.id.clone())
        .or_else(|| {
            d.consents
                .values()
                .map(|c| &c.service_principal_id)
                .find(|sp| sp.eq_ignore_ascii_case(principal))
                .cloned()
        })
        .ok_or_else(|| GraphError::not_found(&caller.ids, principal))?;
    if d.role_assignments
        .iter()
        .any(|a| a.principal_id == principal_id && a.role_definition_id == role.id)
    {
        return Err(bad("A conflicting object with one or more of the specified property values is present in the directory."));
    }
    let made = RoleAssignment {
        id: new_guid(),
        role_definition_id: role.id.to_string(),
        principal_id,
        directory_scope_id: "/".into(),
    };
    let mut out = assignment_json(&made);
    d.role_assignments.push(made);
    out["@odata.context"] = json!(format!(
        "{}/v1.0/$metadata#roleManagement/directory/roleAssignments/$entity",
        em.base_url()
    ));
    Ok((StatusCode::CREATED, Json(out)))
}

/// Removes a role assignment: 204.
async fn unassign(
    State(em): State<Emulator>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, GraphError> {
    caller.require(ASSIGN_ROLES)?;
    let mut world = em.write();
    let d = directory_mut(&mut world, &caller)?;
    let before = d.role_assignments.len();
    d.role_assignments.retain(|a| a.id != id);
    if d.role_assignments.len() == before {
        return Err(GraphError::not_found(&caller.ids, &id));
    }
    Ok(StatusCode::NO_CONTENT)
}
