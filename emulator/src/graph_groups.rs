//! Microsoft Graph v1.0 on groups: `/groups` (find by name), `/groups/{id}`,
//! `/groups/{id}/transitiveMembers` (everyone, through nested groups) and
//! `checkMemberGroups` on users and directory objects, as Microsoft documents them.

use crate::caller::{directory, Caller, READ_GROUP_MEMBERS, READ_USERS};
use crate::errors::{GraphError, RequestIds};
use crate::graph::{
    decode_token, enc, encode_token, options, parse_select, select_of, user_json, DEFAULT_PROPS,
};
use crate::membership::Group;
use crate::model::Directory;
use crate::state::Emulator;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::HashMap;

pub fn routes() -> Router<Emulator> {
    Router::new()
        .route("/v1.0/groups", get(groups))
        .route("/v1.0/groups/{id}", get(group))
        .route(
            "/v1.0/groups/{id}/transitiveMembers",
            get(transitive_members),
        )
        .route(
            "/v1.0/groups/{id}/transitiveMembers/microsoft.graph.user",
            get(transitive_users),
        )
        .route(
            "/v1.0/groups/{id}/transitiveMembers/microsoft.graph.user/$count",
            get(count_transitive_users),
        )
        .route(
            "/v1.0/users/{id}/checkMemberGroups",
            post(check_member_groups),
        )
        .route(
            "/v1.0/directoryObjects/{id}/checkMemberGroups",
            post(check_member_groups),
        )
        .route(
            "/v1.0/users/{id}/checkMemberObjects",
            post(check_member_objects),
        )
        .route(
            "/v1.0/groups/{id}/checkMemberObjects",
            post(check_member_objects),
        )
        .route(
            "/v1.0/directoryObjects/{id}/checkMemberObjects",
            post(check_member_objects),
        )
}

/// Group properties the emulator knows; without `$select` all of them come back.
pub(crate) const GROUP_PROPS: &[&str] = &[
    "id",
    "displayName",
    "description",
    "securityEnabled",
    "mailEnabled",
    "groupTypes",
    "visibility",
];

/// A list's page size: 100 unless `$top` asks for 1 to 999.
/// https://learn.microsoft.com/en-us/graph/api/group-list#optional-query-parameters
fn page_size(o: &HashMap<String, String>, ids: &RequestIds) -> Result<usize, GraphError> {
    match o.get("top") {
        None => Ok(100),
        Some(t) => match t.parse::<usize>() {
            Ok(n) if (1..=999).contains(&n) => Ok(n),
            _ => Err(GraphError::unsupported_query(
                ids,
                format!("Invalid page size specified: '{t}'. Must be between 1 and 999 inclusive."),
            )),
        },
    }
}

fn group_select(raw: Option<&String>, ids: &RequestIds) -> Result<Vec<String>, GraphError> {
    Ok(select_of(raw, GROUP_PROPS, "group", ids)?
        .unwrap_or_else(|| GROUP_PROPS.iter().map(|p| p.to_string()).collect()))
}

pub(crate) fn group_json(g: &Group, props: &[String]) -> Value {
    let mut m = Map::new();
    for p in props {
        let v = match p.as_str() {
            "id" => json!(g.id),
            "displayName" => json!(g.display_name),
            "description" => json!(g.description),
            "securityEnabled" => json!(g.security_enabled),
            "mailEnabled" => json!(g.mail_enabled),
            "groupTypes" => json!(g.group_types),
            "visibility" => json!(g.visibility()),
            _ => Value::Null,
        };
        m.insert(p.clone(), v);
    }
    Value::Object(m)
}

/// What `/groups` may be asked: `startswith(displayName,'…')` or `displayName eq '…'`
/// (both without advanced queries), or `$search="displayName:…"` (with them).
/// https://learn.microsoft.com/en-us/graph/aad-advanced-queries
enum Find {
    All,
    StartsWith(String),
    Named(String),
    /// Words of the display name starting with the term, as Graph's tokenized search.
    Search(String),
}

impl Find {
    fn matches(&self, g: &Group) -> bool {
        let name = g.display_name.to_lowercase();
        match self {
            Find::All => true,
            Find::StartsWith(p) => name.starts_with(p.as_str()),
            Find::Named(n) => name == *n,
            Find::Search(term) => name
                .split(|c: char| !c.is_alphanumeric())
                .any(|word| word.starts_with(term.as_str())),
        }
    }
}

fn quoted(s: &str) -> Option<String> {
    let inner = s.trim().strip_prefix('\'')?.strip_suffix('\'')?;
    Some(inner.replace("''", "'").to_lowercase())
}

fn parse_find(
    o: &HashMap<String, String>,
    headers: &HeaderMap,
    ids: &RequestIds,
) -> Result<Find, GraphError> {
    if let Some(search) = o.get("search") {
        let eventual = headers
            .get("consistencylevel")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("eventual"));
        if !eventual {
            return Err(GraphError::unsupported_query(
                ids,
                "Request with $search query parameter only works through MSGraph with a special request header: 'ConsistencyLevel: eventual'",
            ));
        }
        let clause = search.trim().trim_matches('"');
        return match clause.split_once(':') {
            Some((prop, term)) if prop.eq_ignore_ascii_case("displayName") && !term.is_empty() => {
                Ok(Find::Search(term.to_lowercase()))
            }
            _ => Err(GraphError::unsupported_query(
                ids,
                format!("The emulator supports $search on displayName only, not '{search}'."),
            )),
        };
    }
    let Some(filter) = o.get("filter") else {
        return Ok(Find::All);
    };
    let f = filter.trim();
    let lower = f.to_lowercase();
    if let Some(rest) = lower.strip_prefix("startswith(displayname,") {
        let arg = &f[f.len() - rest.len()..];
        if let Some(prefix) = arg.strip_suffix(')').and_then(quoted) {
            return Ok(Find::StartsWith(prefix));
        }
    }
    if let Some(rest) = lower.strip_prefix("displayname eq ") {
        if let Some(name) = quoted(&f[f.len() - rest.len()..]) {
            return Ok(Find::Named(name));
        }
    }
    Err(GraphError::unsupported_query(
        ids,
        format!("The emulator supports startswith(displayName,'…') and displayName eq '…' on groups, not '{filter}'."),
    ))
}

#[derive(Serialize, Deserialize)]
struct Cursor {
    t: String,
    a: usize,
}

fn skip(o: &HashMap<String, String>, caller: &Caller) -> Result<usize, GraphError> {
    match o.get("skiptoken") {
        None => Ok(0),
        Some(s) => match decode_token::<Cursor>(s) {
            Some(c) if c.t == caller.tenant_id => Ok(c.a),
            _ => Err(GraphError::new(
                &caller.ids,
                StatusCode::BAD_REQUEST,
                "Directory_ExpiredPageToken",
                "The specified page token value has expired and can no longer be included in your request.",
            )),
        },
    }
}

/// The next page's link: the request's own options, with the cursor.
fn next_link(base: &str, path: &str, o: &HashMap<String, String>, cursor: String) -> String {
    let mut link = format!("{base}{path}?");
    for key in ["top", "select", "filter", "search", "count"] {
        if let Some(v) = o.get(key) {
            link.push_str(&format!("${key}={}&", enc(v)));
        }
    }
    link.push_str(&format!("$skiptoken={cursor}"));
    link
}

async fn groups(
    State(em): State<Emulator>,
    caller: Caller,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, GraphError> {
    caller.require(READ_GROUP_MEMBERS)?;
    let ids = &caller.ids;
    let o = options(&q);
    for unsupported in ["orderby", "expand", "skip"] {
        if o.contains_key(unsupported) {
            return Err(GraphError::unsupported_query(
                ids,
                format!("The emulator does not support ${unsupported} on groups."),
            ));
        }
    }
    let top = page_size(&o, ids)?;
    let props = group_select(o.get("select"), ids)?;
    let find = parse_find(&o, &headers, ids)?;
    let after = skip(&o, &caller)?;
    let world = em.read();
    let d = directory(&world, &caller)?;
    let found: Vec<(usize, &Group)> = d
        .groups
        .list_after(0)
        .filter(|(_, g)| find.matches(g))
        .collect();
    let page: Vec<&(usize, &Group)> = found
        .iter()
        .filter(|(i, _)| *i >= after)
        .take(top + 1)
        .collect();
    let base = em.base_url();
    let mut body = json!({
        "@odata.context": format!("{base}/v1.0/$metadata#groups"),
        "value": page.iter().take(top).map(|(_, g)| group_json(g, &props)).collect::<Vec<_>>(),
    });
    // `$count=true` counts only with advanced queries (the ConsistencyLevel header).
    let eventual = headers.contains_key("consistencylevel");
    if eventual
        && o.get("count")
            .is_some_and(|c| c.eq_ignore_ascii_case("true"))
    {
        body["@odata.count"] = json!(found.len());
    }
    if let Some((next, _)) = page.get(top) {
        let cursor = encode_token(&Cursor {
            t: caller.tenant_id.clone(),
            a: *next,
        });
        body["@odata.nextLink"] = json!(next_link(&base, "/v1.0/groups", &o, cursor));
    }
    Ok(Json(body))
}

fn find_group<'d>(d: &'d Directory, id: &str, ids: &RequestIds) -> Result<&'d Group, GraphError> {
    d.groups
        .get(id)
        .ok_or_else(|| GraphError::not_found(ids, id))
}

async fn group(
    State(em): State<Emulator>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, GraphError> {
    caller.require(READ_GROUP_MEMBERS)?;
    let o = options(&q);
    let props = group_select(o.get("select"), &caller.ids)?;
    let world = em.read();
    let d = directory(&world, &caller)?;
    let g = find_group(d, &id, &caller.ids)?;
    let mut body = group_json(g, &props);
    body["@odata.context"] = json!(format!("{}/v1.0/$metadata#groups/$entity", em.base_url()));
    Ok(Json(body))
}

async fn transitive_members(
    em: State<Emulator>,
    caller: Caller,
    id: Path<String>,
    q: Query<HashMap<String, String>>,
) -> Result<Json<Value>, GraphError> {
    members(em, caller, id, q, false).await
}

async fn transitive_users(
    em: State<Emulator>,
    caller: Caller,
    id: Path<String>,
    q: Query<HashMap<String, String>>,
) -> Result<Json<Value>, GraphError> {
    members(em, caller, id, q, true).await
}

/// Everyone in the group through nested groups, each once: users (live ones; a deleted
/// user is in no group's list until restored) and, unless `users_only`, the nested groups.
/// https://learn.microsoft.com/en-us/graph/api/group-list-transitivemembers
async fn members(
    State(em): State<Emulator>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    users_only: bool,
) -> Result<Json<Value>, GraphError> {
    caller.require(READ_GROUP_MEMBERS)?;
    let ids = &caller.ids;
    let o = options(&q);
    for unsupported in ["orderby", "expand", "skip", "filter", "search"] {
        if o.contains_key(unsupported) {
            return Err(GraphError::unsupported_query(
                ids,
                format!("The emulator does not support ${unsupported} on transitiveMembers."),
            ));
        }
    }
    let top = page_size(&o, ids)?;
    let select = parse_select(o.get("select"), ids)?;
    let user_props: Vec<String> = select
        .clone()
        .unwrap_or_else(|| DEFAULT_PROPS.iter().map(|s| s.to_string()).collect());
    let after = skip(&o, &caller)?;
    let world = em.read();
    let d = directory(&world, &caller)?;
    find_group(d, &id, ids)?;
    let everyone: Vec<Value> = d
        .groups
        .transitive_members(&id)
        .into_iter()
        .filter_map(|m| {
            if let Some(u) = d.live(m) {
                let mut v = user_json(u, &user_props);
                v["@odata.type"] = json!("#microsoft.graph.user");
                return Some(v);
            }
            let g = d.groups.get(m).filter(|_| !users_only)?;
            let mut v = group_json(g, &["id".into(), "displayName".into()]);
            v["@odata.type"] = json!("#microsoft.graph.group");
            Some(v)
        })
        .collect();
    let base = em.base_url();
    let path = if users_only {
        format!("/v1.0/groups/{id}/transitiveMembers/microsoft.graph.user")
    } else {
        format!("/v1.0/groups/{id}/transitiveMembers")
    };
    let mut body = json!({
        "@odata.context": format!("{base}/v1.0/$metadata#directoryObjects"),
        "value": everyone.iter().skip(after).take(top).cloned().collect::<Vec<_>>(),
    });
    if everyone.len() > after + top {
        let cursor = encode_token(&Cursor {
            t: caller.tenant_id.clone(),
            a: after + top,
        });
        body["@odata.nextLink"] = json!(next_link(&base, &path, &o, cursor));
    }
    Ok(Json(body))
}

/// How many users the group holds through nested groups, as plain text. Counting is an
/// advanced query: without `ConsistencyLevel: eventual` Graph refuses it.
/// https://learn.microsoft.com/en-us/graph/aad-advanced-queries
async fn count_transitive_users(
    State(em): State<Emulator>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<String, GraphError> {
    caller.require(READ_GROUP_MEMBERS)?;
    let ids = &caller.ids;
    if !headers.contains_key("consistencylevel") {
        return Err(GraphError::unsupported_query(
            ids,
            "Count is not currently supported without the request header 'ConsistencyLevel: eventual'.",
        ));
    }
    let world = em.read();
    let d = directory(&world, &caller)?;
    find_group(d, &id, ids)?;
    let users = d
        .groups
        .transitive_members(&id)
        .into_iter()
        .filter(|m| d.live(m).is_some())
        .count();
    Ok(users.to_string())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CheckMemberGroups {
    group_ids: Option<Vec<String>>,
}

/// Which of up to 20 groups the user is a member of, directly or through nested groups.
/// https://learn.microsoft.com/en-us/graph/api/directoryobject-checkmembergroups
async fn check_member_groups(
    State(em): State<Emulator>,
    caller: Caller,
    Path(id): Path<String>,
    body: Option<Json<CheckMemberGroups>>,
) -> Result<Json<Value>, GraphError> {
    caller.require(READ_USERS)?;
    caller.require(READ_GROUP_MEMBERS)?;
    let asked = body.and_then(|Json(b)| b.group_ids);
    let world = em.read();
    let d = directory(&world, &caller)?;
    let user = d
        .live(&id)
        .ok_or_else(|| GraphError::not_found(&caller.ids, &id))?;
    holding(&em, d, &user.id, asked, "groupIds", &caller.ids)
}

/// Which of `asked` (the body's `field`: 1 to 20 group ids) hold `subject`, directly or
/// through nested groups: the answer of checkMemberGroups and checkMemberObjects.
fn holding(
    em: &Emulator,
    d: &Directory,
    subject: &str,
    asked: Option<Vec<String>>,
    field: &str,
    ids: &RequestIds,
) -> Result<Json<Value>, GraphError> {
    let asked = asked
        .filter(|a| (1..=20).contains(&a.len()))
        .ok_or_else(|| {
            GraphError::new(
                ids,
                StatusCode::BAD_REQUEST,
                "Request_BadRequest",
                format!("The request body must name {field}: from 1 to 20 ids."),
            )
        })?;
    let member_of: Vec<&String> = asked
        .iter()
        .filter(|g| d.groups.contains(g, subject))
        .collect();
    Ok(Json(json!({
        "@odata.context": format!("{}/v1.0/$metadata#Collection(Edm.String)", em.base_url()),
        "value": member_of,
    })))
}

#[derive(Deserialize)]
struct CheckMemberObjects {
    ids: Option<Vec<String>>,
}

/// Which of up to 20 objects (groups here: the emulator has no administrative units or
/// directory roles) hold the user or group, directly or through nested groups.
/// https://learn.microsoft.com/en-us/graph/api/directoryobject-checkmemberobjects
async fn check_member_objects(
    State(em): State<Emulator>,
    caller: Caller,
    Path(id): Path<String>,
    body: Option<Json<CheckMemberObjects>>,
) -> Result<Json<Value>, GraphError> {
    let asked = body.and_then(|Json(b)| b.ids);
    let world = em.read();
    let d = directory(&world, &caller)?;
    let subject = if let Some(user) = d.live(&id) {
        caller.require(READ_USERS)?;
        user.id.clone()
    } else if let Some(group) = d.groups.get(&id) {
        group.id.clone()
    } else {
        return Err(GraphError::not_found(&caller.ids, &id));
    };
    caller.require(READ_GROUP_MEMBERS)?;
    holding(&em, d, &subject, asked, "ids", &caller.ids)
}
