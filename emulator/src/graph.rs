//! Microsoft Graph v1.0: `/organization`, `/domains`, `/users`, `/users/{id|upn}`,
//! `/users/delta` and `$batch`, behind bearer-token checks.

use crate::caller::{directory, Caller, READ_DOMAINS, READ_ORGANIZATION, READ_USERS};
use crate::errors::{GraphError, RequestIds};
use crate::filter::{self, Filter};
use crate::model::{Directory, User};
use crate::state::Emulator;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::{HashMap, HashSet};
use tower::ServiceExt;

pub fn routes() -> Router<Emulator> {
    Router::new()
        .route("/v1.0/organization", get(organization))
        .route("/v1.0/domains", get(domains))
        .route("/v1.0/users", get(users))
        .route("/v1.0/users/delta", get(delta))
        .route("/v1.0/users/{id}", get(user))
        .route("/v1.0/$batch", post(batch))
}

async fn organization(
    State(em): State<Emulator>,
    caller: Caller,
) -> Result<Json<Value>, GraphError> {
    caller.require(READ_ORGANIZATION)?;
    let world = em.read();
    let d = directory(&world, &caller)?;
    let verified: Vec<Value> = d
        .domains
        .iter()
        .filter(|x| x.is_verified)
        .map(|x| json!({"capabilities": "Email, OfficeCommunicationsOnline", "isDefault": x.is_default, "isInitial": x.is_initial, "name": x.name, "type": "Managed"}))
        .collect();
    Ok(Json(json!({
        "@odata.context": format!("{}/v1.0/$metadata#organization", em.base_url()),
        "value": [{
            "id": d.tenant_id, "displayName": d.display_name, "tenantType": "AAD",
            "countryLetterCode": "US", "verifiedDomains": verified,
        }]
    })))
}

async fn domains(State(em): State<Emulator>, caller: Caller) -> Result<Json<Value>, GraphError> {
    caller.require(READ_DOMAINS)?;
    let world = em.read();
    let d = directory(&world, &caller)?;
    let value: Vec<Value> = d
        .domains
        .iter()
        .map(|x| json!({
            "id": x.name, "authenticationType": "Managed", "isAdminManaged": true,
            "isDefault": x.is_default, "isInitial": x.is_initial, "isRoot": true,
            "isVerified": x.is_verified, "supportedServices": if x.is_verified { json!(["Email"]) } else { json!([]) },
        }))
        .collect();
    Ok(Json(json!({
        "@odata.context": format!("{}/v1.0/$metadata#domains", em.base_url()),
        "value": value,
    })))
}

// ---------------------------------------------------------------------------------------------
// Users

/// Properties the emulator knows, in Graph's spelling.
const USER_PROPS: &[&str] = &[
    "id",
    "userPrincipalName",
    "displayName",
    "givenName",
    "surname",
    "mail",
    "proxyAddresses",
    "otherMails",
    "accountEnabled",
    "userType",
    "signInSessionsValidFromDateTime",
    "businessPhones",
    "jobTitle",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
];

/// What v1.0 returns without `$select`: no `accountEnabled`, no `proxyAddresses`.
/// https://learn.microsoft.com/en-us/graph/api/user-list#optional-query-parameters
pub(crate) const DEFAULT_PROPS: &[&str] = &[
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
];

/// Query options with the `$` made optional, as v1.0 accepts them, keys lowercased.
pub(crate) fn options(q: &HashMap<String, String>) -> HashMap<String, String> {
    q.iter()
        .map(|(k, v)| (k.trim_start_matches('$').to_ascii_lowercase(), v.clone()))
        .collect()
}

pub(crate) fn parse_select(
    raw: Option<&String>,
    ids: &RequestIds,
) -> Result<Option<Vec<String>>, GraphError> {
    select_of(raw, USER_PROPS, "user", ids)
}

/// The properties `$select` names, in Graph's spelling, each once; an unknown one is Graph's
/// `400` naming the entity type (`user`, `group`).
pub(crate) fn select_of(
    raw: Option<&String>,
    known: &[&str],
    entity: &str,
    ids: &RequestIds,
) -> Result<Option<Vec<String>>, GraphError> {
    let Some(raw) = raw else { return Ok(None) };
    let mut out = Vec::new();
    for name in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let known = known
            .iter()
            .find(|p| p.eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                GraphError::new(
                    ids,
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    format!(
                        "Could not find a property named '{name}' on type 'microsoft.graph.{entity}'."
                    ),
                )
            })?;
        if !out.iter().any(|o: &String| o == known) {
            out.push(known.to_string());
        }
    }
    Ok(Some(out))
}

pub(crate) fn user_json(u: &User, props: &[String]) -> Value {
    let mut m = Map::new();
    for p in props {
        let v = match p.as_str() {
            "id" => json!(u.id),
            "userPrincipalName" => json!(u.user_principal_name),
            "displayName" => json!(u.display_name),
            "givenName" => json!(u.given_name),
            "surname" => json!(u.surname),
            "mail" => json!(u.mail),
            "proxyAddresses" => json!(u.proxy_addresses),
            "otherMails" => json!(u.other_mails),
            "accountEnabled" => json!(u.account_enabled),
            "userType" => json!(u.user_type),
            "signInSessionsValidFromDateTime" => json!(u.sign_in_sessions_valid_from),
            "businessPhones" => json!([]),
            _ => Value::Null,
        };
        m.insert(p.clone(), v);
    }
    Value::Object(m)
}

fn context(base: &str, select: &Option<Vec<String>>) -> String {
    match select {
        Some(s) => format!("{base}/v1.0/$metadata#users({})", s.join(",")),
        None => format!("{base}/v1.0/$metadata#users"),
    }
}

pub(crate) fn encode_token<T: Serialize>(t: &T) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(t).unwrap_or_default())
}

pub(crate) fn decode_token<T: for<'de> Deserialize<'de>>(s: &str) -> Option<T> {
    URL_SAFE_NO_PAD
        .decode(s)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
}

pub(crate) fn enc(v: &str) -> String {
    url::form_urlencoded::byte_serialize(v.as_bytes()).collect()
}

#[derive(Serialize, Deserialize)]
struct ListCursor {
    t: String,
    a: u64,
}

async fn users(
    State(em): State<Emulator>,
    caller: Caller,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, GraphError> {
    caller.require(READ_USERS)?;
    let ids = &caller.ids;
    let o = options(&q);
    for unsupported in ["orderby", "search", "expand", "count", "skip"] {
        if o.contains_key(unsupported) {
            return Err(GraphError::unsupported_query(
                ids,
                format!("The emulator does not support ${unsupported} on users."),
            ));
        }
    }
    // https://learn.microsoft.com/en-us/graph/paging
    let top = match o.get("top") {
        None => 100,
        Some(t) => match t.parse::<usize>() {
            Ok(n) if (1..=999).contains(&n) => n,
            _ => {
                return Err(GraphError::unsupported_query(
                    ids,
                    format!(
                        "Invalid page size specified: '{t}'. Must be between 1 and 999 inclusive."
                    ),
                ))
            }
        },
    };
    let select = parse_select(o.get("select"), ids)?;
    let filter: Option<Filter> = match o.get("filter") {
        Some(f) => Some(filter::parse(f).map_err(|e| GraphError::unsupported_query(ids, e.0))?),
        None => None,
    };
    let after = match o.get("skiptoken") {
        None => 0,
        Some(s) => match decode_token::<ListCursor>(s) {
            Some(c) if c.t == caller.tenant_id => c.a,
            _ => {
                return Err(GraphError::new(
                    ids,
                    StatusCode::BAD_REQUEST,
                    "Directory_ExpiredPageToken",
                    "The specified page token value has expired and can no longer be included in your request.",
                ))
            }
        },
    };
    let props: Vec<String> = select
        .clone()
        .unwrap_or_else(|| DEFAULT_PROPS.iter().map(|s| s.to_string()).collect());
    let world = em.read();
    let d = directory(&world, &caller)?;
    let mut value = Vec::new();
    let mut last = after;
    let mut more = false;
    for (order, u) in d.live_after(after) {
        if filter.as_ref().is_some_and(|f| !f.matches(u)) {
            continue;
        }
        if value.len() == top {
            more = true;
            break;
        }
        value.push(user_json(u, &props));
        last = order;
    }
    let base = em.base_url();
    let mut body = json!({ "@odata.context": context(&base, &select), "value": value });
    if more {
        let mut link = format!("{base}/v1.0/users?$top={top}");
        if let Some(s) = o.get("select") {
            link.push_str(&format!("&$select={}", enc(s)));
        }
        if let Some(f) = o.get("filter") {
            link.push_str(&format!("&$filter={}", enc(f)));
        }
        let cursor = encode_token(&ListCursor {
            t: caller.tenant_id.clone(),
            a: last,
        });
        link.push_str(&format!("&$skiptoken={cursor}"));
        body["@odata.nextLink"] = json!(link);
    }
    Ok(Json(body))
}

async fn user(
    State(em): State<Emulator>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, GraphError> {
    caller.require(READ_USERS)?;
    let o = options(&q);
    let select = parse_select(o.get("select"), &caller.ids)?;
    let props: Vec<String> = select
        .clone()
        .unwrap_or_else(|| DEFAULT_PROPS.iter().map(|s| s.to_string()).collect());
    let world = em.read();
    let d = directory(&world, &caller)?;
    let u = d
        .live(&id)
        .ok_or_else(|| GraphError::not_found(&caller.ids, &id))?;
    let mut body = user_json(u, &props);
    body["@odata.context"] = json!(format!("{}/$entity", context(&em.base_url(), &select)));
    Ok(Json(body))
}

// ---------------------------------------------------------------------------------------------
// Delta

/// State carried in `$skiptoken` / `$deltatoken` (opaque to clients, as Microsoft's are).
#[derive(Serialize, Deserialize)]
struct DeltaState {
    /// Tenant.
    t: String,
    /// Emulator run: tokens from an earlier run are unknown.
    e: String,
    /// `$select` of the initial request; later requests inherit it.
    s: Option<Vec<String>>,
    phase: Phase,
    /// When a delta link was issued (Unix seconds): it lasts the emulator's delta link
    /// lifetime, seven days unless a test shortens it.
    #[serde(default)]
    i: i64,
}

#[derive(Serialize, Deserialize, Clone, Copy)]
enum Phase {
    /// Initial full sync: users after position `after`; changes after `snap` come next time.
    Initial { after: u64, snap: u64 },
    /// Replaying the change log from `pos` up to `snap`.
    Changes { pos: u64, snap: u64 },
    /// A delta link: changes after `from`.
    Link { from: u64 },
}

/// Page size of delta responses unless `Prefer: odata.maxpagesize=N` asks otherwise.
pub(crate) const DELTA_PAGE: usize = 100;

/// The page size a `Prefer: odata.maxpagesize=N` header asks for (1 to 999).
pub(crate) fn max_page_size(headers: &HeaderMap) -> Option<usize> {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|p| p.trim().strip_prefix("odata.maxpagesize="))
        .filter_map(|n| n.trim().parse::<usize>().ok())
        .find(|n| (1..=999).contains(n))
}

/// A delta link older than its lifetime (or a token Graph cannot read): `400 BadRequest`,
/// `syncStateNotFound`, and the client must start a full synchronization itself.
/// https://devblogs.microsoft.com/microsoft365dev/duration-of-change-tracking-tokens-for-identity-and-education-resources/
pub(crate) fn expired(ids: &RequestIds) -> GraphError {
    GraphError::new(
        ids,
        StatusCode::BAD_REQUEST,
        "syncStateNotFound",
        "The sync state generation is not found. The delta token is expired and data must be synchronized again.",
    )
}

/// The tenant's sync state was reset (maintenance or migration on Microsoft's side): `410 Gone`
/// with a `Location` to start over from (`path`: the collection's delta, e.g. `/users/delta`).
pub(crate) fn resync(
    em: &Emulator,
    ids: &RequestIds,
    path: &str,
    select: Option<&Vec<String>>,
) -> GraphError {
    // https://learn.microsoft.com/en-us/graph/delta-query-overview#synchronization-reset
    let mut e = GraphError::new(
        ids,
        StatusCode::GONE,
        "resyncRequired",
        "The delta token is no longer valid, and the app must reset the sync state.",
    );
    let mut location = format!("{}/v1.0{path}", em.base_url());
    if let Some(s) = select {
        location.push_str(&format!("?$select={}", enc(&s.join(","))));
    }
    e.location = Some(location);
    e
}

/// `/users/delta`. Changed users come back whole (with their selected properties), which is at
/// least what Microsoft promises; a user changed while a sync is paging may appear twice.
/// https://learn.microsoft.com/en-us/graph/delta-query-users
async fn delta(
    State(em): State<Emulator>,
    caller: Caller,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, GraphError> {
    caller.require(READ_USERS)?;
    let ids = &caller.ids;
    let o = options(&q);
    if o.contains_key("filter") || o.contains_key("orderby") || o.contains_key("top") {
        return Err(GraphError::unsupported_query(
            ids,
            "The emulator supports only $select, $skiptoken and $deltatoken on users/delta.",
        ));
    }
    let page_size = max_page_size(&headers).unwrap_or(DELTA_PAGE);
    let world = em.read();
    let d = directory(&world, &caller)?;
    let epoch = d.delta_epoch.clone();
    let token = o.get("skiptoken").or_else(|| o.get("deltatoken"));
    let (select, phase) = match token.map(String::as_str) {
        // `latest` skips the initial sync and returns only a delta link.
        // https://learn.microsoft.com/en-us/graph/delta-query-overview#optional-query-parameters
        Some("latest") => {
            let select = parse_select(o.get("select"), ids)?;
            (select, Phase::Link { from: d.seq() })
        }
        Some(t) => {
            let state = decode_token::<DeltaState>(t)
                .filter(|s| s.t == caller.tenant_id)
                .ok_or_else(|| expired(ids))?;
            if matches!(state.phase, Phase::Link { .. })
                && chrono::Utc::now().timestamp() - state.i > em.delta_link_lifetime_secs()
            {
                return Err(expired(ids));
            }
            if state.e != epoch {
                return Err(resync(&em, ids, "/users/delta", state.s.as_ref()));
            }
            let oldest = match state.phase {
                Phase::Initial { snap, .. } => snap,
                Phase::Changes { pos, .. } => pos,
                Phase::Link { from } => from,
            };
            if oldest < d.log_floor || oldest > d.seq() {
                return Err(resync(&em, ids, "/users/delta", state.s.as_ref()));
            }
            (state.s, state.phase)
        }
        None => {
            let select = parse_select(o.get("select"), ids)?;
            (
                select,
                Phase::Initial {
                    after: 0,
                    snap: d.seq(),
                },
            )
        }
    };
    let mut props: Vec<String> = select
        .clone()
        .unwrap_or_else(|| DEFAULT_PROPS.iter().map(|s| s.to_string()).collect());
    if !props.iter().any(|p| p == "id") {
        props.insert(0, "id".into());
    }
    let latest = token.map(String::as_str) == Some("latest");
    let mut value = Vec::new();
    let next = match phase {
        Phase::Initial { after, snap } => {
            let mut last = after;
            let mut more = false;
            for (order, u) in d.live_after(after) {
                if value.len() == page_size {
                    more = true;
                    break;
                }
                value.push(user_json(u, &props));
                last = order;
            }
            if more {
                Some(Phase::Initial { after: last, snap })
            } else {
                Some(Phase::Link { from: snap })
            }
        }
        Phase::Link { from } if latest => Some(Phase::Link { from }),
        Phase::Link { from } => Some(replay(d, from, d.seq(), page_size, &props, &mut value)),
        Phase::Changes { pos, snap } => Some(replay(d, pos, snap, page_size, &props, &mut value)),
    };
    let base = em.base_url();
    let mut body = json!({ "@odata.context": context(&base, &select), "value": value });
    match next {
        Some(Phase::Link { from }) => {
            let t = encode_token(&DeltaState {
                t: caller.tenant_id.clone(),
                e: epoch,
                s: select,
                phase: Phase::Link { from },
                i: chrono::Utc::now().timestamp(),
            });
            body["@odata.deltaLink"] = json!(format!("{base}/v1.0/users/delta?$deltatoken={t}"));
        }
        Some(phase) => {
            let t = encode_token(&DeltaState {
                t: caller.tenant_id.clone(),
                e: epoch,
                s: select,
                phase,
                i: chrono::Utc::now().timestamp(),
            });
            body["@odata.nextLink"] = json!(format!("{base}/v1.0/users/delta?$skiptoken={t}"));
        }
        None => {}
    }
    let mut res = Json(body).into_response();
    if page_size != DELTA_PAGE {
        if let Ok(v) = format!("odata.maxpagesize={page_size}").parse() {
            res.headers_mut().insert("preference-applied", v);
        }
    }
    Ok(res)
}

/// One page of the change log from `pos` to `snap`; returns where the client goes next.
fn replay(
    d: &Directory,
    pos: u64,
    snap: u64,
    page_size: usize,
    props: &[String],
    value: &mut Vec<Value>,
) -> Phase {
    let mut seen = HashSet::new();
    let mut cursor = pos;
    for id in d.changes(pos, snap).iter().map(|c| &c.id) {
        if seen.len() == page_size && !seen.contains(id) {
            break;
        }
        cursor += 1;
        if !seen.insert(id.clone()) {
            continue;
        }
        value.push(match d.find(id) {
            Some(s) if !s.deleted => user_json(&s.user, props),
            // Soft delete: the user sits in the recycle bin and may come back.
            Some(_) => json!({ "id": id, "@removed": { "reason": "changed" } }),
            None => json!({ "id": id, "@removed": { "reason": "deleted" } }),
        });
    }
    if cursor < snap {
        Phase::Changes { pos: cursor, snap }
    } else {
        Phase::Link { from: snap }
    }
}

// ---------------------------------------------------------------------------------------------
// $batch

#[derive(Deserialize)]
struct BatchBody {
    requests: Vec<BatchRequest>,
}

#[derive(Deserialize)]
struct BatchRequest {
    id: String,
    method: String,
    url: String,
    #[serde(default)]
    headers: HashMap<String, String>,
    /// Ids of earlier requests this one runs after; if one of them failed, this one is
    /// answered `424 Failed Dependency` without running.
    #[serde(default, rename = "dependsOn")]
    depends_on: Vec<String>,
}

/// JSON batching: at most 20 requests, each answered with its own status, headers and body.
/// Every inner request passes the same checks (and faults, and throttling) as a direct one.
/// https://learn.microsoft.com/en-us/graph/json-batching
async fn batch(
    State(em): State<Emulator>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let ids = RequestIds::new(
        headers
            .get("client-request-id")
            .and_then(|v| v.to_str().ok()),
    );
    let Ok(parsed) = serde_json::from_slice::<BatchBody>(&body) else {
        return GraphError::new(
            &ids,
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "Invalid batch payload format.",
        )
        .into_response();
    };
    if parsed.requests.len() > 20 {
        return GraphError::new(
            &ids,
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "Invalid batch payload: the number of requests exceeds the limit of 20.",
        )
        .into_response();
    }
    let mut seen = HashSet::new();
    if !parsed.requests.iter().all(|r| seen.insert(r.id.as_str())) {
        return GraphError::new(
            &ids,
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "Invalid batch payload: request ids must be unique.",
        )
        .into_response();
    }
    let mut statuses: HashMap<String, u16> = HashMap::new();
    let mut responses = Vec::new();
    for r in parsed.requests {
        if let Some(unknown) = r.depends_on.iter().find(|d| !statuses.contains_key(*d)) {
            // A dependency must name an earlier request of the same batch.
            return GraphError::new(
                &ids,
                StatusCode::BAD_REQUEST,
                "BadRequest",
                format!(
                    "Invalid batch payload: request {} depends on unknown request {unknown}.",
                    r.id
                ),
            )
            .into_response();
        }
        if r.depends_on
            .iter()
            .any(|d| !(200..300).contains(&statuses[d]))
        {
            statuses.insert(r.id.clone(), 424);
            responses.push(json!({"id": r.id, "status": 424, "body": {"error": {"code": "FailedDependency", "message": "A request this one depends on failed."}}}));
            continue;
        }
        let path = format!("/v1.0/{}", r.url.trim_start_matches('/'));
        let mut builder = Request::builder().method(r.method.as_str()).uri(path);
        if let Some(auth) = headers.get("authorization") {
            builder = builder.header("authorization", auth);
        }
        for (k, v) in &r.headers {
            builder = builder.header(k.as_str(), v.as_str());
        }
        let Ok(inner) = builder.body(Body::empty()) else {
            responses.push(json!({"id": r.id, "status": 400, "body": {"error": {"code": "BadRequest", "message": "Invalid request in batch."}}}));
            continue;
        };
        let res = match em.router().oneshot(inner).await {
            Ok(res) => res,
            Err(never) => match never {},
        };
        let status = res.status().as_u16();
        let mut h = Map::new();
        for (k, v) in res.headers() {
            if matches!(
                k.as_str(),
                "content-type" | "retry-after" | "location" | "request-id" | "client-request-id"
            ) {
                h.insert(
                    k.as_str().to_string(),
                    json!(v.to_str().unwrap_or_default()),
                );
            }
        }
        let bytes = axum::body::to_bytes(res.into_body(), 64 * 1024 * 1024)
            .await
            .unwrap_or_default();
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        statuses.insert(r.id.clone(), status);
        responses.push(json!({"id": r.id, "status": status, "headers": h, "body": body}));
    }
    Json(json!({ "responses": responses })).into_response()
}
