//! Who a tenant's Entra groups hold, for one run. Gatehouse keeps a copy of the direct
//! members of its scoping and admin groups and of every group nested in them, current through
//! `/groups/delta` (one request when nothing changed, however large the groups), and works
//! out the nesting itself. Groups nested wider than one delta can track (50) are read whole
//! through `transitiveMembers` instead. A group Gatehouse cannot read fails the run.

use super::mirror::Mirror;
use super::mirror_store;
use super::outcome::RunError;
use crate::domain::{EntraHealth, EntraUserId, GroupId, TenantId};
use crate::entra::{EntraError, Graph, MAX_TRACKED_GROUPS};
use crate::server::db::Db;
use crate::tenants::store::GroupRef;
use std::collections::{BTreeSet, HashSet};

/// A round longer than this is taken for a broken chain.
const MAX_PAGES: usize = 20_000;

/// Rounds in one run, each taking in the groups the one before found nested: a chain of
/// nesting this deep is read whole through `transitiveMembers` instead.
const MAX_ROUNDS: usize = 10;

/// The users each group holds, nested groups counted (`None`: the tenant uses no such group).
#[derive(Debug, Default)]
pub(super) struct Members {
    pub scope: Option<HashSet<EntraUserId>>,
    pub admins: Option<HashSet<EntraUserId>>,
}

pub(super) async fn read(
    db: &Db,
    graph: &Graph,
    tenant_id: &TenantId,
    scope: Option<&GroupRef>,
    admins: Option<&GroupRef>,
) -> Result<Members, RunError> {
    let roots: Vec<&GroupRef> = scope.iter().chain(admins.iter()).copied().collect();
    if roots.is_empty() {
        return Ok(Members::default());
    }
    let (before, link) = mirror_store::load(db, tenant_id).await?;
    let members = match synced(graph, &before, link, &roots).await? {
        Some((mirror, link)) => {
            mirror_store::keep(db, tenant_id, &before, &mirror, &link).await?;
            Members {
                scope: scope.map(|g| mirror.users_in(&g.id)),
                admins: admins.map(|g| mirror.users_in(&g.id)),
            }
        }
        None => {
            tracing::info!(
                tenant = %tenant_id,
                "the groups nest more than one delta can track; reading their members whole"
            );
            mirror_store::forget(db, tenant_id).await?;
            let scope_users = match scope {
                Some(g) => Some(transitive(graph, g).await?),
                None => None,
            };
            let admin_users = match admins {
                Some(g) => Some(transitive(graph, g).await?),
                None => None,
            };
            Members {
                scope: scope_users,
                admins: admin_users,
            }
        }
    };
    // An emptied group (by mistake, or a dynamic group being evaluated) would offboard
    // everyone: nobody is offboarded on the word of an empty group.
    if let (Some(group), Some(users)) = (scope, &members.scope) {
        if users.is_empty() {
            return Err(RunError::Other(format!(
                "the group \"{}\" that decides who may sign in holds no users in Entra ID; nobody was offboarded. Add its members again, or choose another group (or none) under User source",
                group.name
            )));
        }
    }
    Ok(members)
}

/// The copy brought up to date with the link that continues it; `None` when the groups nest
/// wider (more than 50 groups) or deeper (more than ten rounds) than delta reading handles.
async fn synced(
    graph: &Graph,
    before: &Mirror,
    link: Option<String>,
    roots: &[&GroupRef],
) -> Result<Option<(Mirror, String)>, RunError> {
    let root_ids: Vec<&GroupId> = roots.iter().map(|g| &g.id).collect();
    let mut mirror = before.clone();
    let link = link.filter(|link| graph.made_here(link));
    if let Some(link) = link.filter(|_| before.covers(root_ids.iter().copied())) {
        match follow(graph, &link, &mut mirror).await {
            Ok(round) => {
                if let Some(gone) = roots.iter().find(|g| round.deleted.contains(&g.id)) {
                    return Err(group_gone(gone));
                }
                if mirror.covers(root_ids.iter().copied()) {
                    return Ok(Some((mirror, round.link)));
                }
                // A group was nested in one of them: a new round takes it in.
            }
            Err(e) if e.sync_state_lost() => {
                tracing::info!(error = %e, "the groups' delta link is no longer valid; reading the groups again");
            }
            Err(e) => return Err(refused(e, roots[0])),
        }
    }
    for _ in 0..MAX_ROUNDS {
        let wanted: BTreeSet<GroupId> = mirror.nested(root_ids.iter().copied());
        if wanted.len() > MAX_TRACKED_GROUPS {
            return Ok(None);
        }
        let mut fresh = Mirror::starting(wanted.clone());
        let round = match follow(graph, &graph.groups_delta_start(&wanted), &mut fresh).await {
            Ok(round) => round,
            Err(e) => return Err(refused(e, roots[0])),
        };
        for root in roots {
            if !round.seen.contains(&root.id) {
                return Err(unlisted(graph, root).await);
            }
        }
        // A nested group the round asked for and did not list would count as empty, and its
        // members as gone: nobody is judged on a group Graph did not answer for.
        let nested = fresh.nested(root_ids.iter().copied());
        if let Some(missing) = nested
            .iter()
            .find(|g| wanted.contains(*g) && !round.seen.contains(*g))
        {
            return Err(RunError::Other(format!(
                "Graph's groups delta did not list the group {missing}, nested in the tenant's groups; nobody was offboarded, the next run tries again"
            )));
        }
        if fresh.covers(root_ids.iter().copied()) {
            return Ok(Some((fresh, round.link)));
        }
        mirror = fresh;
    }
    Ok(None)
}

/// What one round of `/groups/delta` reported.
struct Round {
    /// Every group listed.
    seen: HashSet<GroupId>,
    /// Tracked groups reported deleted.
    deleted: Vec<GroupId>,
    link: String,
}

/// Follows a round to its deltaLink, applying each page to `mirror`.
async fn follow(graph: &Graph, start: &str, mirror: &mut Mirror) -> Result<Round, EntraError> {
    let mut url = start.to_string();
    let mut round = Round {
        seen: HashSet::new(),
        deleted: Vec::new(),
        link: String::new(),
    };
    for _ in 0..MAX_PAGES {
        let page = graph.groups_delta_page(&url).await?;
        round.seen.extend(page.groups.iter().map(|g| g.id.clone()));
        round.deleted.extend(mirror.apply(&page.groups));
        match (page.next_link, page.delta_link) {
            (Some(next), _) => url = next,
            (None, Some(link)) => {
                round.link = link;
                return Ok(round);
            }
            (None, None) => unreachable!("a page without links is refused when read"),
        }
    }
    Err(EntraError::Malformed(format!(
        "the groups delta did not end within {MAX_PAGES} pages"
    )))
}

/// Every user a group holds through nested groups, read whole.
async fn transitive(graph: &Graph, group: &GroupRef) -> Result<HashSet<EntraUserId>, RunError> {
    match graph.user_ids_in(&group.id).await {
        Ok(Some(ids)) => Ok(ids),
        Ok(None) => Err(group_gone(group)),
        Err(e) => Err(refused(e, group)),
    }
}

fn group_gone(group: &GroupRef) -> RunError {
    RunError::Groups(
        EntraHealth::GroupGone,
        format!(
            "the group \"{}\" ({}) no longer exists in Entra ID; nobody was offboarded. Choose another group under User source",
            group.name, group.id
        ),
    )
}

/// A first round that does not list a group: gone if Graph says so, else a failed run.
async fn unlisted(graph: &Graph, group: &GroupRef) -> RunError {
    match graph.group(&group.id).await {
        Ok(None) => group_gone(group),
        Ok(Some(_)) => RunError::Other(format!(
            "Graph's groups delta did not list the group \"{}\" ({}), which exists; nobody was offboarded, the next run tries again",
            group.name, group.id
        )),
        Err(e) => refused(e, group),
    }
}

/// A Graph error while reading groups; a consent without `GroupMember.Read.All` is a lasting
/// problem with what to do about it.
fn refused(e: EntraError, group: &GroupRef) -> RunError {
    if matches!(e, EntraError::Graph { status: 403, .. }) {
        return RunError::Groups(
            EntraHealth::GroupsNotConsented,
            format!(
                "Gatehouse may not read the members of \"{}\" (GroupMember.Read.All was not granted); nobody was offboarded. Authorize Gatehouse again under User source",
                group.name
            ),
        );
    }
    e.into()
}
