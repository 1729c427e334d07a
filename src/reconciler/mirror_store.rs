//! Every statement on `entra_group_members` and `entra_group_sync`: the reconciler's copy of
//! the direct members of a tenant's groups, and the delta link that keeps it current.

use super::mirror::{Direct, Mirror};
use crate::domain::{EntraUserId, GroupId, TenantId};
use crate::server::db::Db;
use std::collections::BTreeSet;

/// Rows per INSERT when a round brings many members at once.
const ROWS_PER_INSERT: usize = 250;

/// The tenant's copy and the delta link that continues it (`None`: no copy yet).
pub async fn load(db: &Db, tenant_id: &TenantId) -> Result<(Mirror, Option<String>), sqlx::Error> {
    let sync: Option<(String, String)> =
        sqlx::query_as("SELECT delta_link, tracked FROM entra_group_sync WHERE tenant_id = $1")
            .bind(tenant_id)
            .fetch_optional(&db.pool)
            .await?;
    let Some((link, tracked)) = sync else {
        return Ok((Mirror::default(), None));
    };
    let tracked: BTreeSet<GroupId> = tracked
        .split(',')
        .filter(|g| !g.is_empty())
        .map(GroupId::from_microsoft)
        .collect();
    let mut mirror = Mirror::starting(tracked);
    let rows: Vec<(GroupId, String, i64)> = sqlx::query_as(
        "SELECT group_id, member_id, member_is_group FROM entra_group_members WHERE tenant_id = $1",
    )
    .bind(tenant_id)
    .fetch_all(&db.pool)
    .await?;
    for (group, member, is_group) in rows {
        if let Some(direct) = mirror.members.get_mut(&group) {
            if is_group != 0 {
                direct.groups.insert(GroupId::from_microsoft(member));
            } else {
                direct.users.insert(EntraUserId::from_microsoft(member));
            }
        }
    }
    Ok((mirror, Some(link)))
}

/// Saves `now` in place of `before` with the link that continues it, writing only the rows
/// that differ, in one transaction.
pub async fn keep(
    db: &Db,
    tenant_id: &TenantId,
    before: &Mirror,
    now: &Mirror,
    link: &str,
) -> Result<(), sqlx::Error> {
    let mut tx = db.pool.begin().await?;
    let empty = Direct::default();
    let mut added: Vec<(&GroupId, &str, bool)> = Vec::new();
    for (group, old) in &before.members {
        let Some(new) = now.members.get(group) else {
            sqlx::query("DELETE FROM entra_group_members WHERE tenant_id = $1 AND group_id = $2")
                .bind(tenant_id)
                .bind(group)
                .execute(&mut *tx)
                .await?;
            continue;
        };
        for (member, _) in changes(old, new) {
            sqlx::query(
                "DELETE FROM entra_group_members WHERE tenant_id = $1 AND group_id = $2 AND member_id = $3",
            )
            .bind(tenant_id)
            .bind(group)
            .bind(member)
            .execute(&mut *tx)
            .await?;
        }
    }
    for (group, new) in &now.members {
        let old = before.members.get(group).unwrap_or(&empty);
        added.extend(changes(new, old).map(|(member, is_group)| (group, member, is_group)));
    }
    for chunk in added.chunks(ROWS_PER_INSERT) {
        let values: Vec<String> = (0..chunk.len())
            .map(|i| {
                format!(
                    "(${}, ${}, ${}, ${})",
                    4 * i + 1,
                    4 * i + 2,
                    4 * i + 3,
                    4 * i + 4
                )
            })
            .collect();
        let sql = format!(
            "INSERT INTO entra_group_members (tenant_id, group_id, member_id, member_is_group) VALUES {}",
            values.join(", ")
        );
        let mut q = sqlx::query(&sql);
        for (group, member, is_group) in chunk {
            q = q
                .bind(tenant_id)
                .bind(*group)
                .bind(*member)
                .bind(i64::from(*is_group));
        }
        q.execute(&mut *tx).await?;
    }
    let tracked: Vec<&str> = now.tracked.iter().map(GroupId::as_str).collect();
    sqlx::query(
        "INSERT INTO entra_group_sync (tenant_id, delta_link, tracked) VALUES ($1, $2, $3) \
         ON CONFLICT (tenant_id) DO UPDATE SET delta_link = $2, tracked = $3",
    )
    .bind(tenant_id)
    .bind(link)
    .bind(tracked.join(","))
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

/// The members `from` holds and `to` does not (id, whether a group).
fn changes<'a>(from: &'a Direct, to: &'a Direct) -> impl Iterator<Item = (&'a str, bool)> {
    let users = from
        .users
        .difference(&to.users)
        .map(|u| (u.as_str(), false));
    let groups = from
        .groups
        .difference(&to.groups)
        .map(|g| (g.as_str(), true));
    users.chain(groups)
}

/// Forgets the copy: the tenant's groups nest wider or deeper than delta reading handles.
pub async fn forget(db: &Db, tenant_id: &TenantId) -> Result<(), sqlx::Error> {
    let mut tx = db.pool.begin().await?;
    sqlx::query("DELETE FROM entra_group_members WHERE tenant_id = $1")
        .bind(tenant_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM entra_group_sync WHERE tenant_id = $1")
        .bind(tenant_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await
}
