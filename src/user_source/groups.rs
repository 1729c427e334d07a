//! Which Entra groups scope a tenant's user source and grant the admin role: finding them by
//! name through Graph, and saving the admin's choice after Graph confirmed each group.

use super::service::SourceError;
use crate::audit;
use crate::domain::{GroupId, UserSource};
use crate::entra::{DirectoryGroup, EntraClient, EntraError, Graph};
use crate::server::bus::Bus;
use crate::server::db::Db;
use crate::tenants::store::{self as tenants, GroupRef};
use crate::tenants::Tenant;
use crate::users::store::User;

/// A Graph session for the tenant's connected Entra tenant, or why there is none.
async fn graph(
    entra: Option<&EntraClient>,
    tenant: &Tenant,
) -> Result<(Graph, String), SourceError> {
    let (Some(entra), UserSource::AzureAd, Some(tid)) =
        (entra, tenant.user_source, tenant.entra_tenant_id.as_ref())
    else {
        return Err(SourceError::Refused(
            "Connect an Entra ID tenant (and save it) before choosing groups.".into(),
        ));
    };
    let org = tenant
        .entra_org_name
        .clone()
        .unwrap_or_else(|| tid.to_string());
    Ok((entra.graph(tid).await?, org))
}

/// Graph's refusal to show groups, in the words an admin can act on.
fn not_consented(org: &str) -> SourceError {
    SourceError::Refused(format!(
        "Gatehouse may not read the groups of {org}: the consent was given before Gatehouse asked for GroupMember.Read.All. Click \"Authorize again\" and accept, then choose the group."
    ))
}

/// Security and Microsoft 365 groups whose name starts with `text`, each with its user count.
pub async fn find(
    entra: Option<&EntraClient>,
    tenant: &Tenant,
    text: &str,
) -> Result<Vec<DirectoryGroup>, SourceError> {
    let text = text.trim();
    if text.is_empty() || text.chars().count() > 120 {
        return Err(SourceError::Refused(
            "Type the start of a group's name (1 to 120 characters).".into(),
        ));
    }
    let (graph, org) = graph(entra, tenant).await?;
    match graph.find_groups(text).await {
        Ok(found) => Ok(found),
        Err(EntraError::Graph { status: 403, .. }) => Err(not_consented(&org)),
        Err(e) => Err(e.into()),
    }
}

/// The page's words for the admin group.
const ADMINS: &str = "Admins are members of";

/// A group of the MSP's own Entra ID that a customer's mapping names, confirmed by Graph:
/// it exists, holds people, and is not open for anyone to join (its members may hold admin
/// roles at customers).
pub async fn confirmed_for_mapping(
    entra: Option<&EntraClient>,
    tenant: &Tenant,
    id: &str,
) -> Result<GroupRef, SourceError> {
    let (graph, org) = graph(entra, tenant).await?;
    match confirmed(&graph, &org, "Members of", id, Joining::Chosen).await? {
        Some((group, _)) => Ok(group),
        None => Err(SourceError::Refused("Choose a group from the list.".into())),
    }
}

/// Who may join a group a setting names.
#[derive(PartialEq)]
enum Joining {
    /// Anyone, for a group that only narrows who may onboard.
    Anyone,
    /// Only whom its owners choose: the group grants admin power.
    Chosen,
}

/// The group behind an id the page sent, confirmed by Graph; `None` for "no group".
async fn confirmed(
    graph: &Graph,
    org: &str,
    label: &str,
    id: &str,
    joining: Joining,
) -> Result<Option<(GroupRef, u64)>, SourceError> {
    let id = id.trim();
    if id.is_empty() {
        return Ok(None);
    }
    let uuid_like = id.len() == 36 && id.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
    if !uuid_like {
        return Err(SourceError::Refused(format!(
            "{label}: `{}` is not an Entra group id; choose the group from the list.",
            id.chars().take(40).collect::<String>()
        )));
    }
    // A page's text, shaped as an id: Graph says whether the group exists.
    let group = match graph.group(&GroupId::from_microsoft(id)).await {
        Ok(Some(g)) => g,
        Ok(None) => {
            return Err(SourceError::Refused(format!(
                "{label}: {org} has no group {id} (was it deleted?)."
            )))
        }
        Err(EntraError::Graph { status: 403, .. }) => {
            return Err(not_consented(org));
        }
        Err(e) => return Err(e.into()),
    };
    // Whoever joins the admin group is an admin at their next sign-in, and whoever joins a
    // mapped group may hold its roles at customers: only a group whose members someone
    // chooses may grant either.
    if joining == Joining::Chosen && group.anyone_can_join() {
        let power = if label == ADMINS {
            "would be a Gatehouse admin at their next sign-in"
        } else {
            "could request admin roles at your customers"
        };
        return Err(SourceError::Refused(format!(
            "{label}: \"{name}\" is a public Microsoft 365 group: anyone in {org} can join it, and {power}. Choose a security group, or make \"{name}\" private in Entra ID.",
            name = group.name()
        )));
    }
    if !group.may_hold_people() {
        return Err(SourceError::Refused(format!(
            "{label}: \"{}\" is a distribution list; choose a security or Microsoft 365 group.",
            group.name()
        )));
    }
    let users = graph.count_users(&group.id).await?;
    Ok(Some((
        GroupRef {
            id: group.id.clone(),
            name: group.name().to_string(),
        },
        users,
    )))
}

/// Saves who may onboard (`scope_choice`) and who is an admin (`admin_choice`), each a group
/// id as the page sent it; empty is none. Each group is looked up in Graph first: nothing is saved unless both are real groups that hold
/// people. The next reconciliation is due at once.
pub async fn save(
    db: &Db,
    bus: &Bus,
    entra: Option<&EntraClient>,
    tenant: &Tenant,
    admin: &User,
    scope_choice: &str,
    admin_choice: &str,
) -> Result<String, SourceError> {
    let (graph, org) = graph(entra, tenant).await?;
    let scope = confirmed(
        &graph,
        &org,
        "Only members of",
        scope_choice,
        Joining::Anyone,
    )
    .await?;
    let admins = confirmed(&graph, &org, ADMINS, admin_choice, Joining::Chosen).await?;
    let scope_words = match &scope {
        Some((g, n)) => format!(
            "only members of \"{}\" ({})",
            g.name,
            crate::domain::users_counted(*n)
        ),
        None => format!("anyone in the domain of {org}"),
    };
    let admin_words = match &admins {
        Some((g, n)) => format!(
            "admins are the members of \"{}\" ({})",
            g.name,
            crate::domain::users_counted(*n)
        ),
        None => "admins are set by hand in Gatehouse".into(),
    };
    let summary = format!("{scope_words} may onboard; {admin_words}");
    let mut tx = db.pool.begin().await?;
    tenants::set_entra_groups(
        &mut tx,
        &tenant.id,
        scope.as_ref().map(|(g, _)| g),
        admins.as_ref().map(|(g, _)| g),
    )
    .await?;
    let saved = audit::Event::GroupsSaved {
        slug: &tenant.slug,
        summary: &summary,
    };
    super::service::commit_setting(tx, bus, tenant, admin, saved).await?;
    Ok(format!("Saved: {summary}."))
}
