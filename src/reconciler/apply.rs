//! Executes a plan: every offboarding in one transaction, idempotent.

use crate::audit;
use crate::server::util::now;
use crate::users::access::{revoke_all_access, Subject};

/// Offboards users and returns who was offboarded now: the status, then everything
/// `revoke_all_access` ends (sessions, the tenant's phone bindings, unused approvals) and an
/// audit event each. Users already offboarded are
/// left as they are, so applying the same plan twice changes nothing the second time.
pub async fn offboard(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    tenant_id: &str,
    actor: &str,
    offboardings: &[(String, String)],
) -> anyhow::Result<Vec<String>> {
    let at = now();
    let mut done = Vec::new();
    for (user_id, reason) in offboardings {
        let reason = reason.as_str();
        let changed = sqlx::query(
            "UPDATE users SET status = 'offboarded', offboarded_at = $1, offboard_reason = $2 \
             WHERE id = $3 AND tenant_id = $4 AND status <> 'offboarded'",
        )
        .bind(at)
        .bind(reason)
        .bind(user_id)
        .bind(tenant_id)
        .execute(&mut **tx)
        .await?
        .rows_affected();
        if changed == 0 {
            continue;
        }
        done.push(user_id.clone());
        let (username,): (String,) = sqlx::query_as("SELECT username FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_one(&mut **tx)
            .await?;
        let who = Subject {
            tenant_id,
            user_id,
            username: &username,
        };
        // The caller announces the sign-out of everyone in `done` once this commits.
        let _ended = revoke_all_access(tx, &who, "user.offboarded", actor, reason).await?;
    }
    Ok(done)
}

/// Copies a changed mail (or, without one, sign-in name) onto the user's record, unless
/// another user of the tenant already has that address. Audited.
pub async fn rename(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    tenant_id: &str,
    renames: &[super::plan::Rename],
) -> anyhow::Result<()> {
    for r in renames {
        let Some(new) = r.mail.as_deref().or(r.user_principal_name.as_deref()) else {
            continue;
        };
        let Ok(email) = crate::domain::Email::parse(new) else {
            continue;
        };
        let changed = sqlx::query(
            "UPDATE users SET email = $1 WHERE id = $2 AND email <> $1 \
             AND NOT EXISTS (SELECT 1 FROM users o WHERE o.tenant_id = $3 AND o.email = $1)",
        )
        .bind(email.as_str())
        .bind(&r.user_id)
        .bind(tenant_id)
        .execute(&mut **tx)
        .await?
        .rows_affected();
        if changed == 1 {
            let (username,): (String,) = sqlx::query_as("SELECT username FROM users WHERE id = $1")
                .bind(&r.user_id)
                .fetch_one(&mut **tx)
                .await?;
            audit::record(
                &mut **tx,
                Some(tenant_id),
                "reconciler",
                "user.renamed",
                &username,
                &format!("now {email} in Entra ID"),
            )
            .await?;
        }
    }
    Ok(())
}
