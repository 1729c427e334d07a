//! Executes a plan: every offboarding in one transaction, idempotent.

use crate::audit;
use crate::server::util::now;
use crate::users::access::{revoke_all_access, Subject};
use crate::users::store as users;

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
        let Some(username) = users::offboard(tx, tenant_id, user_id, reason, at).await? else {
            continue;
        };
        done.push(user_id.clone());
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

/// Moves a record to the account's address in the domain when Entra no longer lists the one
/// it had, unless another user of the tenant already has that address. Audited.
pub async fn rename(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    tenant_id: &str,
    renames: &[super::plan::Rename],
) -> anyhow::Result<()> {
    for r in renames {
        let Ok(email) = crate::domain::Email::parse(&r.email) else {
            continue;
        };
        if let Some(username) = users::move_email(tx, tenant_id, &r.user_id, &email).await? {
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
