//! Signed-in sessions: tower-sessions holds the cookie, `user_sessions` indexes sessions by
//! user so that an admin or the reconciler can end all of a user's sessions at once.

use super::challenge::{self, Challenge};
use crate::audit::{self, Actor};
use crate::domain::{DeviceId, Role, SessionId, TenantId, UserId};
use crate::server::db::Db;
use crate::server::util::{now, random_id};
use crate::tenants::Tenant;
use crate::users::store::User;
use serde::{Deserialize, Serialize};
use tower_sessions::cookie::time::{self, OffsetDateTime};
use tower_sessions::{Expiry, Session};

const KEY: &str = "gatehouse.login";

/// How long a sign-in lasts, counted from the moment it was made; then the browser signs in
/// again with the phone.
pub const SIGN_IN_LASTS_SECS: i64 = 12 * 3600;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct LoginRecord {
    login_id: SessionId,
    tenant_id: TenantId,
}

/// A live signed-in session.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub login_id: SessionId,
    pub user: User,
}

/// The session's user, if the session is live and the user still active. A session whose
/// index row was revoked (offboarding, an admin) is flushed here, on its next request.
pub async fn current(
    db: &Db,
    session: &Session,
    tenant: &Tenant,
) -> anyhow::Result<Option<SignedIn>> {
    let Some(record) = session.get::<LoginRecord>(KEY).await? else {
        return Ok(None);
    };
    if record.tenant_id != tenant.id {
        return Ok(None);
    }
    let user = crate::users::store::of_session(db, &tenant.id, &record.login_id).await?;
    match user {
        Some(user) => {
            sqlx::query("UPDATE user_sessions SET last_seen_at = $1 WHERE id = $2")
                .bind(now())
                .bind(&record.login_id)
                .execute(&db.pool)
                .await?;
            Ok(Some(SignedIn {
                login_id: record.login_id,
                user,
            }))
        }
        None => {
            session.flush().await?;
            Ok(None)
        }
    }
}

/// What became of an approved challenge when its browser came back.
pub enum Completion {
    /// Signed in, with this role.
    SignedIn { role: Role },
    /// The approval was used up, but the user was disabled or removed since: no session.
    Refused,
    /// Another request of the same browser consumed the approval first.
    AlreadyUsed,
}

/// Signs the approved user in, in one transaction: the approval is consumed (once), the user
/// must still be active, and the session's index row, last login and audit event are
/// written. Then the browser gets a new session id (no fixation).
pub async fn complete(
    db: &Db,
    session: &Session,
    tenant: &Tenant,
    challenge: &Challenge,
    ip: &str,
    user_agent: &str,
) -> anyhow::Result<Completion> {
    let at = now();
    let mut tx = db.pool.begin().await?;
    // Of two racing requests from the same browser only one consumes the approval.
    if !challenge::consume(&mut tx, &challenge.id).await? {
        return Ok(Completion::AlreadyUsed);
    }
    // The user must still be active, and the approving phone not revoked here meanwhile.
    let user = match challenge.user_id.as_ref() {
        Some(user_id) => {
            crate::users::store::record_sign_in(
                &mut tx,
                &tenant.id,
                user_id,
                challenge.device_id.as_ref(),
                at,
            )
            .await?
        }
        None => None,
    };
    let Some(user) = user else {
        // Disabled, removed or its phone revoked between approval and now: the approval is
        // spent all the same, and the browser's next code says why.
        challenge::cancel_spent(
            &mut tx,
            &challenge.id,
            "access ended after the phone approved (the account was disabled or removed, or the phone revoked)",
        )
        .await?;
        tx.commit().await?;
        return Ok(Completion::Refused);
    };
    let login_id = SessionId::drawn(random_id(24));
    sqlx::query(
        "INSERT INTO user_sessions (id, tenant_id, user_id, created_at, last_seen_at, ip, user_agent, device_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&login_id)
    .bind(&tenant.id)
    .bind(&user.id)
    .bind(at)
    .bind(at)
    .bind(ip)
    .bind(user_agent.chars().take(300).collect::<String>())
    .bind(&challenge.device_id)
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut *tx,
        Some(&tenant.id),
        Actor::User(&user.username),
        audit::Event::LoginCompleted {
            username: &user.username,
            ip,
        },
    )
    .await?;
    tx.commit().await?;
    session.set_expiry(Some(Expiry::AtDateTime(
        OffsetDateTime::now_utc() + time::Duration::seconds(SIGN_IN_LASTS_SECS),
    )));
    session.cycle_id().await?;
    session
        .insert(
            KEY,
            LoginRecord {
                login_id,
                tenant_id: tenant.id.clone(),
            },
        )
        .await?;
    Ok(Completion::SignedIn { role: user.role })
}

/// Ends every sign-in of a user (their browsers are signed out on their next request).
pub async fn end_all_of_user(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    user_id: &UserId,
) -> anyhow::Result<u64> {
    Ok(sqlx::query("DELETE FROM user_sessions WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut **tx)
        .await?
        .rows_affected())
}

/// Ends the sign-ins a phone approved in a tenant; returns their users, one per sign-in.
pub async fn end_all_of_device(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    tenant_id: &TenantId,
    device_id: &DeviceId,
) -> anyhow::Result<Vec<UserId>> {
    let users: Vec<(UserId,)> = sqlx::query_as(
        "DELETE FROM user_sessions WHERE tenant_id = $1 AND device_id = $2 RETURNING user_id",
    )
    .bind(tenant_id)
    .bind(device_id)
    .fetch_all(&mut **tx)
    .await?;
    Ok(users.into_iter().map(|(u,)| u).collect())
}

/// Ends one sign-in of the tenant; returns its user's id and username if it was live.
pub async fn end_one(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    tenant_id: &TenantId,
    login_id: &SessionId,
) -> anyhow::Result<Option<(UserId, String)>> {
    let owner: Option<(UserId, String)> = sqlx::query_as(
        "SELECT u.id, u.username FROM user_sessions s JOIN users u ON u.id = s.user_id WHERE s.id = $1 AND s.tenant_id = $2",
    )
    .bind(login_id)
    .bind(tenant_id)
    .fetch_optional(&mut **tx)
    .await?;
    if owner.is_some() {
        sqlx::query("DELETE FROM user_sessions WHERE id = $1")
            .bind(login_id)
            .execute(&mut **tx)
            .await?;
    }
    Ok(owner)
}

/// Signs this browser out.
pub async fn end(db: &Db, session: &Session) -> anyhow::Result<()> {
    if let Some(record) = session.get::<LoginRecord>(KEY).await? {
        let mut tx = db.pool.begin().await?;
        let ended: Option<(UserId,)> =
            sqlx::query_as("DELETE FROM user_sessions WHERE id = $1 RETURNING user_id")
                .bind(&record.login_id)
                .fetch_optional(&mut *tx)
                .await?;
        if let Some((user_id,)) = ended {
            let user = crate::users::store::get(&mut tx, &user_id).await?;
            audit::record(
                &mut *tx,
                Some(&record.tenant_id),
                Actor::User(&user.username),
                audit::Event::SignedOutInTheBrowser {
                    username: &user.username,
                },
            )
            .await?;
        }
        tx.commit().await?;
    }
    session.flush().await?;
    Ok(())
}

/// Forgets the index rows of sign-ins made at or before `made_by`, whose session has
/// expired (housekeeping; an admin lists the rest); how many.
pub async fn forget_expired(db: &Db, made_by: i64) -> Result<u64, sqlx::Error> {
    Ok(
        sqlx::query("DELETE FROM user_sessions WHERE created_at <= $1")
            .bind(made_by)
            .execute(&db.pool)
            .await?
            .rows_affected(),
    )
}
