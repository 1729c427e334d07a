//! Who may hold what at a customer: a technician's Gatehouse role, and the Entra groups of
//! the MSP's own tenant named in customers' mappings that they are in (nested groups
//! counted). `allowed` is the rule; opening an account and keeping one open both come
//! through it. Microsoft says who is in a group: it is asked at every request for access at
//! a customer whose mapping names groups, and at every reconciliation run for the owners of
//! accounts open at such customers; its last answer is kept (`jit_group_holdings`) for the
//! changes that do not ask it (a new role, a withdrawn line). A group the user was never
//! found in keeps nothing open.

use super::store::{self as accounts, JitAccount};
use crate::customers::store::{self as customers, Grant, Holder};
use crate::domain::{EntraRole, GroupId, JitState, Role, TenantId, UserId};
use crate::entra::{EntraError, Graph};
use crate::server::db::Db;
use crate::tenants::store::GroupRef;
use crate::users::store::User;
use sqlx::{Any, Executor};
use std::collections::BTreeMap;

type Tx<'a> = sqlx::Transaction<'a, Any>;

/// What a technician holds, as far as a mapping asks.
#[derive(Debug, Clone)]
pub struct Holding {
    pub role: Role,
    /// The mapped groups they are in.
    pub groups: Vec<GroupId>,
}

impl Holding {
    /// Their Gatehouse role alone (before, or without, asking Microsoft about groups).
    pub fn role_only(role: Role) -> Self {
        Holding {
            role,
            groups: Vec::new(),
        }
    }
}

/// The rule: the roles `holding` may hold by one customer's mapping.
pub fn allowed(grants: &[Grant], holding: &Holding) -> Vec<EntraRole> {
    let mut roles: Vec<EntraRole> = Vec::new();
    for g in grants {
        let holds = match &g.holders {
            Holder::Role(role) => *role == holding.role,
            Holder::Group(group) => holding.groups.contains(&group.id),
        };
        if holds && !roles.contains(&g.role) {
            roles.push(g.role);
        }
    }
    roles
}

/// The groups a mapping names, each once.
pub fn named_groups<'a>(grants: impl IntoIterator<Item = &'a Grant>) -> Vec<GroupRef> {
    let mut groups: Vec<GroupRef> = Vec::new();
    for g in grants {
        if let Holder::Group(group) = &g.holders {
            if !groups.iter().any(|known| known.id == group.id) {
                groups.push(group.clone());
            }
        }
    }
    groups
}

/// Which of `groups` the user is in now, by Microsoft's word (`checkMemberGroups`, twenty
/// groups a request). A user from no Entra directory is in none.
pub async fn ask(
    graph: &Graph,
    user: &User,
    groups: &[GroupRef],
) -> Result<Vec<GroupId>, EntraError> {
    let Some(oid) = &user.entra_oid else {
        return Ok(Vec::new());
    };
    let mut found = Vec::new();
    for chunk in groups.chunks(20) {
        let ids: Vec<&GroupId> = chunk.iter().map(|g| &g.id).collect();
        found.extend(graph.member_of(oid, &ids).await?);
    }
    Ok(found)
}

/// Keeps Microsoft's answer about `asked`: the user is in `found`, and in none of the others.
pub async fn record(
    tx: &mut Tx<'_>,
    user_id: &UserId,
    asked: &[GroupRef],
    found: &[GroupId],
    at: i64,
) -> Result<(), sqlx::Error> {
    for group in asked {
        if found.contains(&group.id) {
            sqlx::query(
                "INSERT INTO jit_group_holdings (user_id, group_id, checked_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (user_id, group_id) DO UPDATE SET checked_at = excluded.checked_at",
            )
            .bind(user_id)
            .bind(&group.id)
            .bind(at)
            .execute(&mut **tx)
            .await?;
        } else {
            sqlx::query("DELETE FROM jit_group_holdings WHERE user_id = $1 AND group_id = $2")
                .bind(user_id)
                .bind(&group.id)
                .execute(&mut **tx)
                .await?;
        }
    }
    Ok(())
}

/// Keeps Microsoft's answer about `asked` for the user, in a transaction of its own.
pub async fn keep(
    db: &Db,
    user_id: &UserId,
    asked: &[GroupRef],
    found: &[GroupId],
) -> Result<(), sqlx::Error> {
    let mut tx = db.pool.begin().await?;
    record(&mut tx, user_id, asked, found, crate::server::util::now()).await?;
    tx.commit().await
}

/// What the user holds as Gatehouse last knew it: their role now, and the groups Microsoft
/// last said they are in. `None` when their record is gone (every account of theirs is
/// ending already).
pub async fn of_record(tx: &mut Tx<'_>, user_id: &UserId) -> Result<Option<Holding>, sqlx::Error> {
    let user = match crate::users::store::get(tx, user_id).await {
        Ok(user) => user,
        Err(sqlx::Error::RowNotFound) => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok(Some(Holding {
        role: user.role,
        groups: recorded_groups(&mut **tx, user_id).await?,
    }))
}

/// The groups Microsoft last said the user is in.
pub async fn recorded_groups<'e>(
    ex: impl Executor<'e, Database = Any>,
    user_id: &UserId,
) -> Result<Vec<GroupId>, sqlx::Error> {
    let groups: Vec<(GroupId,)> =
        sqlx::query_as("SELECT group_id FROM jit_group_holdings WHERE user_id = $1")
            .bind(user_id)
            .fetch_all(ex)
            .await?;
    Ok(groups.into_iter().map(|(g,)| g).collect())
}

/// Microsoft's answer about one user's groups, to be recorded.
#[derive(Debug)]
pub struct Checked {
    pub user_id: UserId,
    pub asked: Vec<GroupRef>,
    pub found: Vec<GroupId>,
}

/// For a reconciliation run: asks Microsoft, for each user of the tenant with an account
/// open at a customer whose mapping names groups, which of those groups they are in now, so
/// an account only a group keeps open ends when they leave it, and the answer kept for role
/// and mapping changes is never older than the last run. Users with no such account cost no
/// request, and so do `leaving` (being offboarded: every account of theirs ends anyway).
pub async fn recheck(
    db: &Db,
    graph: &Graph,
    tenant_id: &TenantId,
    leaving: &[&UserId],
) -> Result<Vec<Checked>, RecheckError> {
    let mut by_user: BTreeMap<UserId, Vec<JitAccount>> = BTreeMap::new();
    for account in accounts::live_of_tenant(db, tenant_id).await? {
        let live = matches!(account.state, JitState::Open | JitState::Making);
        if live && !leaving.contains(&&account.user_id) {
            by_user
                .entry(account.user_id.clone())
                .or_default()
                .push(account);
        }
    }
    let mut checked = Vec::new();
    for (user_id, held) in by_user {
        let mut named: Vec<GroupRef> = Vec::new();
        for account in &held {
            let grants = customers::grants(&db.pool, &account.customer_id).await?;
            for group in named_groups(&grants) {
                if !named.iter().any(|g| g.id == group.id) {
                    named.push(group);
                }
            }
        }
        if named.is_empty() {
            continue;
        }
        let Some(user) = crate::users::store::find(db, tenant_id, &user_id)
            .await
            .map_err(RecheckError::Store)?
        else {
            continue;
        };
        let found = match ask(graph, &user, &named).await {
            Ok(found) => found,
            // Gone from the MSP's Entra ID since the walk: in no group (the next run
            // offboards them).
            Err(EntraError::Graph { status: 404, .. }) => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        checked.push(Checked {
            user_id,
            asked: named,
            found,
        });
    }
    Ok(checked)
}

/// Why a run could not ask about groups.
#[derive(Debug, thiserror::Error)]
pub enum RecheckError {
    #[error("Microsoft Entra: {0}")]
    Entra(#[from] EntraError),
    #[error(transparent)]
    Store(anyhow::Error),
}

impl From<sqlx::Error> for RecheckError {
    fn from(e: sqlx::Error) -> Self {
        RecheckError::Store(e.into())
    }
}

/// Records a run's answers and ends, in the run's transaction, each account of those users
/// that the answers no longer allow. How many are ending.
pub async fn apply(tx: &mut Tx<'_>, checked: &[Checked], at: i64) -> Result<u64, sqlx::Error> {
    let mut ending = 0;
    for c in checked {
        record(tx, &c.user_id, &c.asked, &c.found, at).await?;
        let live = accounts::live_in(tx, accounts::Whose::User(&c.user_id)).await?;
        ending += end_disallowed(
            tx,
            live,
            "no longer in a group of the MSP that may hold these roles there",
            at,
        )
        .await?;
    }
    Ok(ending)
}

/// The rule every change of who may hold what comes back to: an account is open only with
/// roles its owner may request at its customer (`holders::allowed`), by the mapping as it is
/// now, their Gatehouse role now and the groups Microsoft last said they are in. Each of
/// `accounts` that breaks it is ending now, in the caller's transaction; how many.
pub async fn end_disallowed(
    tx: &mut Tx<'_>,
    accounts: Vec<JitAccount>,
    reason: &str,
    at: i64,
) -> Result<u64, sqlx::Error> {
    let mut ended = 0;
    for account in accounts {
        // An owner whose record is gone has had every account marked ending already.
        let Some(holding) = of_record(tx, &account.user_id).await? else {
            continue;
        };
        let grants = customers::grants(&mut **tx, &account.customer_id).await?;
        let allowed = allowed(&grants, &holding);
        if account.roles.iter().all(|r| allowed.contains(r)) {
            continue;
        }
        if accounts::end_now(&mut **tx, &account.id, reason, at).await? {
            ended += 1;
        }
    }
    Ok(ended)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::EntraRole;

    const HELPDESK: &str = "729827e3-9c14-49f7-bb1b-9608f156bbb8";
    const USER_ADMIN: &str = "fe930be7-5e62-47db-91af-98c3a49a38b1";

    fn group(id: &str) -> GroupRef {
        GroupRef {
            id: GroupId::from_microsoft(id),
            name: format!("group {id}"),
        }
    }

    fn role(id: &str) -> EntraRole {
        EntraRole::parse(id).unwrap()
    }

    #[test]
    fn a_line_allows_its_role_to_the_holders_of_the_role_or_the_members_of_the_group() {
        let grants = vec![
            Grant {
                holders: Holder::Role(Role::Technician),
                role: role(HELPDESK),
            },
            Grant {
                holders: Holder::Group(group("g-admins")),
                role: role(USER_ADMIN),
            },
            Grant {
                holders: Holder::Group(group("g-tier2")),
                role: role(HELPDESK),
            },
        ];
        let tech = Holding::role_only(Role::Technician);
        assert_eq!(allowed(&grants, &tech), vec![role(HELPDESK)]);
        let admin = Holding::role_only(Role::Admin);
        assert!(allowed(&grants, &admin).is_empty());
        let in_admins = Holding {
            role: Role::Admin,
            groups: vec![GroupId::from_microsoft("g-admins")],
        };
        assert_eq!(allowed(&grants, &in_admins), vec![role(USER_ADMIN)]);
        let both = Holding {
            role: Role::Technician,
            groups: vec![
                GroupId::from_microsoft("g-tier2"),
                GroupId::from_microsoft("g-admins"),
            ],
        };
        assert_eq!(
            allowed(&grants, &both),
            vec![role(HELPDESK), role(USER_ADMIN)]
        );
        assert_eq!(named_groups(&grants).len(), 2);
    }
}
