//! `/groups/delta` as Microsoft documents it: a first round lists the groups (all, or up to
//! 50 named with `$filter=id eq '…' or …`) with their direct members in `members@delta`, a
//! large group's members spread over several pages; a delta link then brings only the groups
//! that changed, each with the members that joined and those that left
//! (`@removed: {"reason": "deleted"}`), and a deleted group as `@removed`.
//! https://learn.microsoft.com/en-us/graph/api/group-delta
//! https://learn.microsoft.com/en-us/graph/delta-query-groups

use crate::caller::{directory, Caller, READ_GROUP_MEMBERS};
use crate::errors::GraphError;
use crate::filter::{Filter, Literal, Prop};
use crate::graph::{
    decode_token, encode_token, expired, max_page_size, options, resync, select_of, DELTA_PAGE,
};
use crate::graph_groups::{group_json, GROUP_PROPS};
use crate::membership::{Group, Member};
use crate::model::Directory;
use crate::state::Emulator;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::HashMap;

pub fn routes() -> Router<Emulator> {
    Router::new().route("/v1.0/groups/delta", get(delta))
}

/// Microsoft allows at most this many ids in a delta's `$filter`.
const MAX_FILTERED: usize = 50;

/// Members a first-round page carries at most, over all its groups, unless
/// `Prefer: odata.maxpagesize=N` asks for pages of N (then N groups and N members). Microsoft
/// does not document the number; a larger group is split over pages as it documents.
const MEMBERS_PER_PAGE: usize = 1_000;

/// State carried in `$skiptoken` / `$deltatoken`.
#[derive(Serialize, Deserialize)]
struct DeltaState {
    /// Tenant.
    t: String,
    /// The directory's sync epoch (see `Directory::expire_delta_tokens`).
    e: String,
    /// `$select` of the first request (`None`: every property and the members).
    s: Option<Vec<String>>,
    /// The ids of `$filter`, lowercased (`None`: every group).
    f: Option<Vec<String>>,
    phase: Phase,
    /// When the link was issued (Unix seconds).
    i: i64,
}

#[derive(Serialize, Deserialize, Clone)]
enum Phase {
    /// First round: groups created at or after `group` (creation order), that one's members
    /// after the one with id `after` (all of them when `None`, or when that member has left
    /// meanwhile: a member sent twice is harmless, one never sent is not); changes after
    /// `snap` come in the next round.
    Initial {
        group: u64,
        after: Option<String>,
        snap: u64,
    },
    /// Replaying the groups' change log from `pos` up to `snap`.
    Changes { pos: u64, snap: u64 },
    /// A delta link: changes after `from`.
    Link { from: u64 },
}

/// What a request asks for, from its options or from its token.
struct Ask {
    select: Option<Vec<String>>,
    filter: Option<Vec<String>>,
    phase: Phase,
}

impl Ask {
    fn tracks(&self, group: &str) -> bool {
        self.filter
            .as_ref()
            .is_none_or(|ids| ids.iter().any(|id| id.eq_ignore_ascii_case(group)))
    }

    fn with_members(&self) -> bool {
        self.select
            .as_ref()
            .is_none_or(|s| s.iter().any(|p| p == "members"))
    }

    fn props(&self) -> Vec<String> {
        let mut props: Vec<String> = match &self.select {
            Some(s) => s.iter().filter(|p| *p != "members").cloned().collect(),
            None => GROUP_PROPS.iter().map(|p| p.to_string()).collect(),
        };
        if !props.iter().any(|p| p == "id") {
            props.insert(0, "id".into());
        }
        props
    }
}

/// `$filter=id eq '…' or id eq '…'`, the only filter Microsoft supports here, up to 50 ids.
fn parse_filter(raw: &str, ids: &crate::errors::RequestIds) -> Result<Vec<String>, GraphError> {
    let unsupported = || {
        GraphError::unsupported_query(
            ids,
            format!("Unsupported filter on groups/delta: '{raw}'. Only id eq '…', joined by or."),
        )
    };
    // The emulator's `$filter` parser reads the clauses; only `id eq '…'` joined by `or` is
    // accepted here.
    fn ids_of(f: &Filter, out: &mut Vec<String>) -> bool {
        match f {
            Filter::Or(a, b) => ids_of(a, out) && ids_of(b, out),
            Filter::Eq(Prop::Id, Literal::Str(id)) if !id.is_empty() => {
                let id = id.to_lowercase();
                if !out.contains(&id) {
                    out.push(id);
                }
                true
            }
            _ => false,
        }
    }
    let mut out = Vec::new();
    let parsed = crate::filter::parse(raw).map_err(|_| unsupported())?;
    if !ids_of(&parsed, &mut out) {
        return Err(unsupported());
    }
    if out.len() > MAX_FILTERED {
        return Err(GraphError::unsupported_query(
            ids,
            format!(
                "The filter names {} objects; delta tracks at most {MAX_FILTERED}.",
                out.len()
            ),
        ));
    }
    Ok(out)
}

fn member_json(m: &Member, present: bool) -> Value {
    let kind = if m.is_group { "group" } else { "user" };
    let mut v = json!({ "@odata.type": format!("#microsoft.graph.{kind}"), "id": m.id });
    if !present {
        v["@removed"] = json!({ "reason": "deleted" });
    }
    v
}

/// A group's direct members as Graph lists them: live users and groups (a deleted user has
/// left every group until restored).
fn current_members(d: &Directory, g: &Group) -> Vec<Member> {
    g.members
        .iter()
        .filter_map(|m| {
            if d.groups.is_group(m) {
                Some(Member {
                    id: m.clone(),
                    is_group: true,
                })
            } else {
                d.live(m).map(|_| Member {
                    id: m.clone(),
                    is_group: false,
                })
            }
        })
        .collect()
}

fn is_member_now(d: &Directory, g: &Group, m: &Member) -> bool {
    g.members.contains(&m.id)
        && if m.is_group {
            d.groups.is_group(&m.id)
        } else {
            d.live(&m.id).is_some()
        }
}

async fn delta(
    State(em): State<Emulator>,
    caller: Caller,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, GraphError> {
    caller.require(READ_GROUP_MEMBERS)?;
    let ids = &caller.ids;
    let o = options(&q);
    for unsupported in ["orderby", "top", "search", "skip", "count"] {
        if o.contains_key(unsupported) {
            return Err(GraphError::unsupported_query(
                ids,
                format!("The emulator does not support ${unsupported} on groups/delta."),
            ));
        }
    }
    let page = max_page_size(&headers);
    let (groups_per_page, members_per_page) = match page {
        Some(n) => (n, n),
        None => (DELTA_PAGE, MEMBERS_PER_PAGE),
    };
    let world = em.read();
    let d = directory(&world, &caller)?;
    let epoch = d.delta_epoch.clone();
    let token = o.get("skiptoken").or_else(|| o.get("deltatoken"));
    let ask = match token {
        Some(t) => {
            let state = decode_token::<DeltaState>(t)
                .filter(|s| s.t == caller.tenant_id)
                .ok_or_else(|| expired(ids))?;
            if matches!(state.phase, Phase::Link { .. })
                && chrono::Utc::now().timestamp() - state.i > em.delta_link_lifetime_secs()
            {
                return Err(expired(ids));
            }
            let oldest = match &state.phase {
                Phase::Initial { snap, .. } => *snap,
                Phase::Changes { pos, .. } => *pos,
                Phase::Link { from } => *from,
            };
            if state.e != epoch || oldest < d.groups.log_floor || oldest > d.groups.seq() {
                return Err(resync(&em, ids, "/groups/delta", state.s.as_ref()));
            }
            Ask {
                select: state.s,
                filter: state.f,
                phase: state.phase,
            }
        }
        None => {
            let mut known: Vec<&str> = GROUP_PROPS.to_vec();
            known.push("members");
            let mut select = select_of(o.get("select"), &known, "group", ids)?;
            match o.get("expand").map(|e| e.trim().to_ascii_lowercase()) {
                None => {}
                Some(e) if e == "members" => {
                    if let Some(s) = select
                        .as_mut()
                        .filter(|s| !s.iter().any(|p| p == "members"))
                    {
                        s.push("members".into());
                    }
                }
                Some(_) => {
                    return Err(GraphError::unsupported_query(
                        ids,
                        "The emulator supports only $expand=members on groups/delta.",
                    ))
                }
            }
            let filter = o.get("filter").map(|f| parse_filter(f, ids)).transpose()?;
            Ask {
                select,
                filter,
                phase: Phase::Initial {
                    group: 0,
                    after: None,
                    snap: d.groups.seq(),
                },
            }
        }
    };
    let props = ask.props();
    let mut value = Vec::new();
    let next = match ask.phase.clone() {
        Phase::Initial { group, after, snap } => {
            let mut next = Phase::Link { from: snap };
            let mut members_out = 0;
            let tracked = d
                .groups
                .list_after(0)
                .map(|(_, g)| g)
                .filter(|g| g.created >= group && ask.tracks(&g.id));
            for g in tracked {
                let all = current_members(d, g);
                let skip = match &after {
                    Some(id) if g.created == group => {
                        all.iter().position(|m| m.id == *id).map_or(0, |i| i + 1)
                    }
                    _ => 0,
                };
                if value.len() == groups_per_page || members_out == members_per_page {
                    next = Phase::Initial {
                        group: g.created,
                        after: skip.checked_sub(1).map(|i| all[i].id.clone()),
                        snap,
                    };
                    break;
                }
                let mut v = group_json(g, &props);
                if !ask.with_members() {
                    value.push(v);
                    continue;
                }
                let take = (members_per_page - members_out).min(all.len().saturating_sub(skip));
                let slice: Vec<Value> = all
                    .iter()
                    .skip(skip)
                    .take(take)
                    .map(|m| member_json(m, true))
                    .collect();
                members_out += take;
                if !slice.is_empty() {
                    v["members@delta"] = Value::Array(slice);
                }
                value.push(v);
                if skip + take < all.len() {
                    next = Phase::Initial {
                        group: g.created,
                        after: Some(all[skip + take - 1].id.clone()),
                        snap,
                    };
                    break;
                }
            }
            next
        }
        Phase::Link { from } => replay(
            d,
            &ask,
            from,
            d.groups.seq(),
            groups_per_page,
            &props,
            &mut value,
        ),
        Phase::Changes { pos, snap } => {
            replay(d, &ask, pos, snap, groups_per_page, &props, &mut value)
        }
    };
    let state = DeltaState {
        t: caller.tenant_id.clone(),
        e: epoch,
        s: ask.select,
        f: ask.filter,
        phase: next.clone(),
        i: chrono::Utc::now().timestamp(),
    };
    let base = em.base_url();
    let mut body =
        json!({ "@odata.context": format!("{base}/v1.0/$metadata#groups"), "value": value });
    let t = encode_token(&state);
    match next {
        Phase::Link { .. } => {
            body["@odata.deltaLink"] = json!(format!("{base}/v1.0/groups/delta?$deltatoken={t}"));
        }
        _ => {
            body["@odata.nextLink"] = json!(format!("{base}/v1.0/groups/delta?$skiptoken={t}"));
        }
    }
    let mut res = Json(body).into_response();
    if let Some(n) = page {
        if let Ok(v) = format!("odata.maxpagesize={n}").parse() {
            res.headers_mut().insert("preference-applied", v);
        }
    }
    Ok(res)
}

/// One page of the groups' change log from `pos` to `snap`: each changed group once, with the
/// members whose membership changed (present now, or `@removed`); returns where the client
/// goes next.
fn replay(
    d: &Directory,
    ask: &Ask,
    pos: u64,
    snap: u64,
    page_size: usize,
    props: &[String],
    value: &mut Vec<Value>,
) -> Phase {
    let mut order: Vec<&str> = Vec::new();
    let mut touched: HashMap<&str, Vec<&Member>> = HashMap::new();
    let mut cursor = pos;
    for change in d.groups.changes(pos, snap) {
        let group = change.group.as_str();
        let known = touched.contains_key(group);
        if !known && ask.tracks(group) && order.len() == page_size {
            break;
        }
        cursor += 1;
        if !ask.tracks(group) {
            continue;
        }
        let members = touched.entry(group).or_default();
        if !known {
            order.push(group);
        }
        if let Some(m) = &change.member {
            if !members.iter().any(|x| x.id == m.id) {
                members.push(m);
            }
        }
    }
    for group in order {
        let Some(g) = d.groups.get(group) else {
            // Deleted: the emulator keeps no recycle bin for groups.
            value.push(json!({ "id": group, "@removed": { "reason": "deleted" } }));
            continue;
        };
        let mut v = group_json(g, props);
        let changed: Vec<Value> = touched[group]
            .iter()
            .map(|m| member_json(m, is_member_now(d, g, m)))
            .collect();
        if ask.with_members() && !changed.is_empty() {
            v["members@delta"] = Value::Array(changed);
        }
        value.push(v);
    }
    if cursor < snap {
        Phase::Changes { pos: cursor, snap }
    } else {
        Phase::Link { from: snap }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errors::RequestIds;

    #[test]
    fn the_filter_takes_ids_joined_by_or_up_to_fifty() {
        let ids = RequestIds::new(None);
        assert_eq!(
            parse_filter("id eq 'A' or ID EQ 'b'", &ids).unwrap(),
            ["a", "b"]
        );
        assert!(parse_filter("displayName eq 'x'", &ids).is_err());
        assert!(parse_filter("id eq x", &ids).is_err());
        let fifty: Vec<String> = (0..50).map(|i| format!("id eq '{i}'")).collect();
        assert_eq!(parse_filter(&fifty.join(" or "), &ids).unwrap().len(), 50);
        let more: Vec<String> = (0..51).map(|i| format!("id eq '{i}'")).collect();
        assert!(parse_filter(&more.join(" or "), &ids).is_err());
    }
}
