use super::store;
use super::view::{SessionRow, UserRow};
use crate::audit::{self, Actor};
use crate::domain::{
    Email, JitUsername, Role, SessionId, TenantId, UserId, UserSource, UserStatus,
};
use crate::server::bus::{Bus, Event};
use crate::server::db::{is_unique_violation, Db};
use crate::server::util::{format_time, now, random_id};
use crate::tenants::Tenant;
use crate::users::access::{revoke_all_access, Subject};
use crate::users::admins::{AdminChange, Admins};

pub use super::store::{find, find_by_email, find_by_oid, User};

/// Why a user-management action was refused.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0} already has an account in this tenant")]
    EmailTaken(String),
    #[error("the username {0} is already taken in this tenant")]
    UsernameTaken(String),
    #[error("there is no such user in this tenant")]
    NotFound,
    #[error("{0}")]
    NotAllowed(String),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<sqlx::Error> for UserError {
    fn from(e: sqlx::Error) -> Self {
        UserError::Unexpected(e.into())
    }
}

impl From<UserError> for crate::error::AppError {
    fn from(e: UserError) -> Self {
        match e {
            UserError::NotFound => crate::error::AppError::NotFound(e.to_string()),
            UserError::Unexpected(err) => err.into(),
            other => crate::error::AppError::Invalid(capitalise(&other.to_string())),
        }
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

/// Why the tenant's admin group (named `group`) gives someone `role`, as the audit log says.
pub fn role_by_group(role: Role, group: &str) -> String {
    match role {
        Role::Admin => format!("admin: a member of \"{group}\" in Entra ID"),
        Role::Technician => format!("technician: no longer a member of \"{group}\" in Entra ID"),
    }
}

pub async fn list(db: &Db, tenant_id: &TenantId) -> anyhow::Result<Vec<UserRow>> {
    Ok(store::list(db, tenant_id)
        .await?
        .into_iter()
        .map(to_row)
        .collect())
}

fn to_row(u: User) -> UserRow {
    let offboarded = (u.status == UserStatus::Offboarded).then(|| {
        format!(
            "{} — {}",
            u.offboarded_at.map(format_time).unwrap_or_default(),
            u.offboarded_because().unwrap_or_default()
        )
    });
    UserRow {
        display_name: u.display_name(),
        id: u.id.to_string(),
        email: u.email,
        username: u.username,
        role: u.role,
        source: u.source,
        status: u.status,
        created: format_time(u.created_at),
        last_login: u.last_login_at.map(format_time),
        offboarded,
    }
}

/// The first free username DESIGN's rule gives `email` in this tenant.
pub async fn free_username(db: &Db, tenant: &Tenant, email: &Email) -> anyhow::Result<JitUsername> {
    let prefix = tenant.prefix();
    for n in 1..=10_000u32 {
        let candidate = JitUsername::candidate(&prefix, email, n);
        if !store::username_taken(db, &tenant.id, candidate.as_str()).await? {
            return Ok(candidate);
        }
    }
    anyhow::bail!("no free username for {email}")
}

/// What an admin typed into the add-user form.
pub struct NewUser<'a> {
    pub first_name: &'a str,
    pub last_name: &'a str,
    pub email: &'a str,
    pub username: &'a str,
}

fn name_field(label: &str, value: &str) -> Result<String, UserError> {
    let v = value.trim();
    if v.is_empty() {
        return Err(UserError::Invalid(format!("Enter a {label}.")));
    }
    if v.chars().count() > 100 {
        return Err(UserError::Invalid(format!(
            "The {label} may be at most 100 characters."
        )));
    }
    if v.chars().any(|c| c.is_control()) {
        return Err(UserError::Invalid(format!(
            "The {label} contains a control character."
        )));
    }
    Ok(v.to_string())
}

/// Invites a local user; the JIT username is derived unless the admin typed one.
pub async fn add(
    db: &Db,
    tenant: &Tenant,
    actor: Actor<'_>,
    input: NewUser<'_>,
) -> Result<User, UserError> {
    if tenant.user_source != UserSource::Local {
        return Err(UserError::NotAllowed(
            "This tenant's users come from Entra ID; they onboard themselves by scanning the QR code.".into(),
        ));
    }
    let first_name = name_field("first name", input.first_name)?;
    let last_name = name_field("last name", input.last_name)?;
    let email =
        Email::parse(input.email).map_err(|e| UserError::Invalid(format!("Email: {e}.")))?;
    let username = if input.username.trim().is_empty() {
        free_username(db, tenant, &email).await?
    } else {
        JitUsername::parse(input.username)
            .map_err(|e| UserError::Invalid(format!("Username: {e}.")))?
    };
    if find_by_email(db, &tenant.id, &email).await?.is_some() {
        return Err(UserError::EmailTaken(email.to_string()));
    }
    let user = User {
        id: UserId::drawn(random_id(16)),
        tenant_id: tenant.id.clone(),
        email: email.to_string(),
        first_name,
        last_name,
        username: username.to_string(),
        role: Role::Technician,
        source: UserSource::Local,
        status: UserStatus::Invited,
        entra_oid: None,
        created_at: now(),
        onboarded_at: None,
        last_login_at: None,
        offboarded_at: None,
        offboard_reason: None,
        offboard_group: None,
    };
    let mut tx = db.pool.begin().await?;
    let res = store::insert(&mut tx, &user).await;
    match res {
        Err(e) if is_unique_violation(&e) => {
            // The email was checked above; a race or a taken username ends here. The
            // transaction's connection goes back before the lookup takes another.
            drop(tx);
            return Err(if find_by_email(db, &tenant.id, &email).await?.is_some() {
                UserError::EmailTaken(user.email)
            } else {
                UserError::UsernameTaken(user.username)
            });
        }
        other => {
            other?;
        }
    }
    audit::record(
        &mut *tx,
        Some(&tenant.id),
        actor,
        audit::Event::UserInvited {
            username: &user.username,
            name: &user.display_name(),
            email: &user.email,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(user)
}

/// Admin actions on one user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Disable,
    Enable,
    MakeAdmin,
    MakeTechnician,
    Delete,
}

impl Action {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "disable" => Action::Disable,
            "enable" => Action::Enable,
            "make_admin" => Action::MakeAdmin,
            "make_technician" => Action::MakeTechnician,
            "delete" => Action::Delete,
            _ => return None,
        })
    }
}

/// What a manual action records itself; the ends of access record their own event.
enum Noted {
    Enabled,
    RoleChanged,
}

/// Applies an admin action; `actor` is the admin, who may not lock themselves out, nor take
/// the tenant's last admin (`admins::leaves_no_admin`, under the tenant's lock: two admins
/// demoting each other at once, or a demotion beside a group change, leave one admin).
pub async fn act(
    db: &Db,
    bus: &Bus,
    tenant: &Tenant,
    actor: &User,
    user_id: &UserId,
    action: Action,
) -> Result<String, UserError> {
    if *user_id == actor.id && action != Action::MakeAdmin && action != Action::Enable {
        return Err(UserError::NotAllowed(
            "You cannot do this to your own account; ask another admin.".into(),
        ));
    }
    let mut tx = db.pool.begin().await?;
    let admins = Admins::lock(&mut tx, &tenant.id).await?;
    // The actor and the user as they are now: another admin may have changed either since
    // this request began.
    let still_admin = store::find_in(&mut tx, &tenant.id, &actor.id)
        .await?
        .is_some_and(|a| a.role == Role::Admin && a.status.may_sign_in());
    if !still_admin {
        return Err(UserError::NotAllowed(
            "You are no longer an admin of this tenant.".into(),
        ));
    }
    let user = store::find_in(&mut tx, &tenant.id, user_id)
        .await?
        .ok_or(UserError::NotFound)?;
    let takes_admin = matches!(
        action,
        Action::Disable | Action::MakeTechnician | Action::Delete
    );
    if takes_admin && admins.lost_by(&AdminChange::removes(&user.id)) {
        return Err(UserError::NotAllowed(format!(
            "{} is the last admin of this tenant; make someone else an admin first.",
            user.username
        )));
    }
    let who = Subject {
        tenant_id: &tenant.id,
        user_id: &user.id,
        username: &user.username,
    };
    let mut ended = None;
    let (noted, message) = match action {
        Action::Disable => {
            if matches!(user.status, UserStatus::Disabled | UserStatus::Offboarded) {
                return Err(UserError::NotAllowed(format!(
                    "{} is already {}.",
                    user.username, user.status
                )));
            }
            store::set_status(&mut tx, &user.id, UserStatus::Disabled).await?;
            let e = revoke_all_access(
                &mut tx,
                &who,
                audit::Ending::Disabled,
                Actor::User(&actor.username),
                "account disabled",
            )
            .await?;
            let message = format!("{} is disabled; {}.", user.username, e.summary());
            ended = Some(e);
            (None, message)
        }
        Action::Enable => {
            if user.status != UserStatus::Disabled {
                return Err(UserError::NotAllowed(format!(
                    "{} is not disabled.",
                    user.username
                )));
            }
            let status = if user.onboarded_at.is_some() {
                UserStatus::Active
            } else {
                UserStatus::Invited
            };
            store::set_status(&mut tx, &user.id, status).await?;
            (
                Some(Noted::Enabled),
                format!(
                    "{} is {status} again. Phones revoked when the account was disabled stay revoked: they sign in after setting up the app again.",
                    user.username
                ),
            )
        }
        Action::MakeAdmin | Action::MakeTechnician => {
            let role = if action == Action::MakeAdmin {
                Role::Admin
            } else {
                Role::Technician
            };
            if user.role == role {
                return Err(UserError::NotAllowed(format!(
                    "{} is already {role}.",
                    user.username
                )));
            }
            ended = Some(super::access::change_role(&mut tx, &user.id, role).await?);
            (
                Some(Noted::RoleChanged),
                format!("{} is now {role}.", user.username),
            )
        }
        Action::Delete => {
            if user.status != UserStatus::Disabled {
                return Err(UserError::NotAllowed(format!(
                    "Disable {} before deleting the account.",
                    user.username
                )));
            }
            // Access ends first (it already has, when disabled; this is the belt), then the
            // record goes, with its phone bindings.
            let e = revoke_all_access(
                &mut tx,
                &who,
                audit::Ending::Deleted,
                Actor::User(&actor.username),
                "account deleted",
            )
            .await?;
            crate::devices::store::forget_user(&mut tx, &user.id).await?;
            crate::login::challenge::forget_user(&mut tx, &user.id).await?;
            store::delete(&mut tx, &user.id).await?;
            ended = Some(e);
            (None, format!("{} is deleted.", user.username))
        }
    };
    if let Some(noted) = noted {
        let (username, told) = (user.username.as_str(), message.as_str());
        let event = match noted {
            Noted::Enabled => audit::Event::UserEnabled { username, told },
            Noted::RoleChanged => audit::Event::RoleChanged {
                username,
                why: told,
            },
        };
        audit::record(
            &mut *tx,
            Some(&tenant.id),
            Actor::User(&actor.username),
            event,
        )
        .await?;
    }
    tx.commit().await?;
    if let Some(ended) = ended {
        ended.announce(bus).await;
    }
    Ok(message)
}

#[derive(sqlx::FromRow)]
struct SessionDb {
    id: String,
    created_at: i64,
    last_seen_at: i64,
    ip: String,
    user_agent: String,
}

pub async fn sessions(
    db: &Db,
    tenant: &Tenant,
    user_id: &UserId,
) -> Result<Vec<SessionRow>, UserError> {
    find(db, &tenant.id, user_id)
        .await?
        .ok_or(UserError::NotFound)?;
    let rows = sqlx::query_as::<_, SessionDb>(
        "SELECT id, created_at, last_seen_at, ip, user_agent FROM user_sessions \
         WHERE tenant_id = $1 AND user_id = $2 AND created_at > $3 ORDER BY last_seen_at DESC",
    )
    .bind(&tenant.id)
    .bind(user_id)
    // Sign-ins past their lifetime have ended, whether or not housekeeping has run yet.
    .bind(now() - crate::login::session::SIGN_IN_LASTS_SECS)
    .fetch_all(&db.pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| SessionRow {
            id: r.id,
            started: format_time(r.created_at),
            last_seen: format_time(r.last_seen_at),
            ip: r.ip,
            user_agent: r.user_agent,
        })
        .collect())
}

pub async fn revoke_session(
    db: &Db,
    bus: &Bus,
    tenant: &Tenant,
    actor: &User,
    session_id: &SessionId,
) -> Result<(), UserError> {
    let mut tx = db.pool.begin().await?;
    let Some((owner_id, username)) =
        crate::login::session::end_one(&mut tx, &tenant.id, session_id).await?
    else {
        return Err(UserError::Invalid("That session has already ended.".into()));
    };
    audit::record(
        &mut *tx,
        Some(&tenant.id),
        Actor::User(&actor.username),
        audit::Event::SessionRevokedByAdmin {
            username: &username,
        },
    )
    .await?;
    tx.commit().await?;
    bus.publish(Event::SignedOut {
        user_id: owner_id,
        reason: "session revoked by an admin".into(),
    })
    .await;
    Ok(())
}
