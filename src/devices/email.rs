//! A phone proves it holds an email address: a 6-digit code mailed to it, entered on the
//! phone. Holds every statement on the `email_codes` table but housekeeping's sweep of expired
//! codes. Mails and failures are budgeted (per address, per client), each budget taken in one
//! statement so concurrent requests cannot slip past it.

use crate::audit::{self, Actor};
use crate::domain::{DeviceId, Email};
use crate::server::config::Limits;
use crate::server::db::Db;
use crate::server::mail::Mailer;
use crate::server::rate_limit::Budget;
use crate::server::util::{now, sha256_hex};
use rand::Rng;

pub const CODE_TTL_SECS: i64 = 600;
pub const CODE_ATTEMPTS: i64 = 5;
/// A new code may be mailed at most this often per device and address.
pub const CODE_RESEND_SECS: i64 = 20;

const HOUR: i64 = 3600;

/// Why a code was not mailed or not accepted; nothing was verified.
#[derive(Debug, thiserror::Error)]
pub enum ProofError {
    #[error("a code was sent less than {0} seconds ago")]
    TooSoon(i64),
    #[error("{what}")]
    RateLimited { what: String, retry_after: i64 },
    #[error("the mail could not be sent")]
    MailFailed,
    #[error("no code is waiting for this email on this device")]
    NoCode,
    #[error("the code has expired")]
    CodeExpired,
    #[error("too many wrong codes")]
    TooManyAttempts,
    #[error("the code is wrong; {0} attempt(s) left")]
    WrongCode(i64),
    /// Too many failures for the address this hour: locked for this many seconds.
    #[error("too many wrong codes for this address")]
    EmailLocked(i64),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<sqlx::Error> for ProofError {
    fn from(e: sqlx::Error) -> Self {
        ProofError::Unexpected(e.into())
    }
}

fn code_hash(device_id: &DeviceId, email: &Email, code: &str) -> String {
    sha256_hex(&format!("{device_id}:{email}:{code}"))
}

/// The three budgets of the phone's email verification, from the configured limits.
struct CodeBudgets {
    mails_per_address: Budget,
    mails_per_ip: Budget,
    failures_per_address: Budget,
}

fn budgets(l: &Limits) -> CodeBudgets {
    CodeBudgets {
        mails_per_address: Budget {
            name: "code_mail_addr",
            max: l.code_mails_per_address,
            window_secs: HOUR,
        },
        mails_per_ip: Budget {
            name: "code_mail_ip",
            max: l.code_mails_per_ip,
            window_secs: HOUR,
        },
        failures_per_address: Budget {
            name: "code_fail_addr",
            max: l.code_failures_per_address,
            window_secs: HOUR,
        },
    }
}

/// Mails a 6-digit code for `email`; a new code replaces the previous one. Mails to one
/// address and from one client's `network` (`ClientIp::network`) are budgeted per hour, so
/// nobody can flood an inbox.
pub async fn send_code(
    db: &Db,
    mailer: &Mailer,
    limits: &Limits,
    device_id: &DeviceId,
    email: &Email,
    network: &str,
) -> Result<(), ProofError> {
    let at = now();
    let last: Option<(i64,)> =
        sqlx::query_as("SELECT created_at FROM email_codes WHERE device_id = $1 AND email = $2")
            .bind(device_id)
            .bind(email.as_str())
            .fetch_optional(&db.pool)
            .await?;
    if let Some((created,)) = last {
        if at - created < CODE_RESEND_SECS {
            return Err(ProofError::TooSoon(CODE_RESEND_SECS));
        }
    }
    let b = budgets(limits);
    if let Err(spent) = b.mails_per_address.take(db, email.as_str(), at).await? {
        return Err(ProofError::RateLimited {
            what: format!("too many codes were mailed to {email} this hour"),
            retry_after: spent.retry_after,
        });
    }
    if let Err(spent) = b.mails_per_ip.take(db, network, at).await? {
        b.mails_per_address.give_back(db, email.as_str()).await?;
        return Err(ProofError::RateLimited {
            what: "too many codes were asked for from this network this hour".into(),
            retry_after: spent.retry_after,
        });
    }
    let code = format!("{:06}", rand::rngs::OsRng.gen_range(0..1_000_000));
    sqlx::query(
        "INSERT INTO email_codes (device_id, email, code_hash, attempts, created_at, expires_at) \
         VALUES ($1, $2, $3, 0, $4, $5) \
         ON CONFLICT (device_id, email) DO UPDATE SET code_hash = excluded.code_hash, \
         attempts = 0, created_at = excluded.created_at, expires_at = excluded.expires_at",
    )
    .bind(device_id)
    .bind(email.as_str())
    .bind(code_hash(device_id, email, &code))
    .bind(at)
    .bind(at + CODE_TTL_SECS)
    .execute(&db.pool)
    .await?;
    let body = format!(
        "Your Gatehouse verification code is {code}.\n\n\
         Enter it in the Gatehouse app within 10 minutes. If you did not ask for it, ignore this mail."
    );
    if let Err(err) = mailer
        .send(db, email, &format!("Your Gatehouse code: {code}"), &body)
        .await
    {
        tracing::warn!(error = ?err, "verification mail failed");
        // The code was never delivered: forget it, so a retry is neither throttled nor
        // counted against the address.
        sqlx::query("DELETE FROM email_codes WHERE device_id = $1 AND email = $2")
            .bind(device_id)
            .bind(email.as_str())
            .execute(&db.pool)
            .await?;
        b.mails_per_address.give_back(db, email.as_str()).await?;
        b.mails_per_ip.give_back(db, network).await?;
        return Err(ProofError::MailFailed);
    }
    Ok(())
}

/// Checks a mailed code; on success the email becomes a verified claim of the device.
///
/// Guessing is bounded twice, and both counts are taken in one statement each, never read
/// and then written: a code accepts `CODE_ATTEMPTS` tries, and an address accepts
/// `code_failures_per_address` failures an hour across every device and every resend (a new
/// code does not restore it). Both budgets are taken before the code is compared.
pub async fn confirm(
    db: &Db,
    limits: &Limits,
    device_id: &DeviceId,
    email: &Email,
    code: &str,
) -> Result<i64, ProofError> {
    let at = now();
    let failures = budgets(limits).failures_per_address;
    let used = match failures.take(db, email.as_str(), at).await? {
        Ok(used) => used,
        Err(spent) => return Err(ProofError::EmailLocked(spent.retry_after)),
    };
    let tried: Option<(String, i64)> = sqlx::query_as(
        "UPDATE email_codes SET attempts = attempts + 1 \
         WHERE device_id = $1 AND email = $2 AND attempts < $3 AND expires_at > $4 \
         RETURNING code_hash, attempts",
    )
    .bind(device_id)
    .bind(email.as_str())
    .bind(CODE_ATTEMPTS)
    .bind(at)
    .fetch_optional(&db.pool)
    .await?;
    let Some((hash, attempts)) = tried else {
        // No code was compared: this does not count against the address.
        failures.give_back(db, email.as_str()).await?;
        return Err(no_attempt_left(db, device_id, email, at).await?);
    };
    if hash != code_hash(device_id, email, code) {
        if used == failures.max {
            audit::record(
                &db.pool,
                None,
                Actor::Device(device_id.as_str()),
                audit::Event::EmailLocked {
                    email: email.as_str(),
                    wrong_codes: used,
                },
            )
            .await?;
            return Err(ProofError::EmailLocked(HOUR));
        }
        return Err(if attempts >= CODE_ATTEMPTS {
            ProofError::TooManyAttempts
        } else {
            ProofError::WrongCode(CODE_ATTEMPTS - attempts)
        });
    }
    failures.give_back(db, email.as_str()).await?;
    let mut tx = db.pool.begin().await?;
    super::store::claim_email(&mut tx, device_id, email, at).await?;
    sqlx::query("DELETE FROM email_codes WHERE device_id = $1 AND email = $2")
        .bind(device_id)
        .bind(email.as_str())
        .execute(&mut *tx)
        .await?;
    audit::record(
        &mut *tx,
        None,
        Actor::Device(device_id.as_str()),
        audit::Event::EmailVerified {
            email: email.as_str(),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(at)
}

/// Why no attempt could be made on this device's code for `email`.
async fn no_attempt_left(
    db: &Db,
    device_id: &DeviceId,
    email: &Email,
    at: i64,
) -> Result<ProofError, ProofError> {
    let row: Option<(i64,)> =
        sqlx::query_as("SELECT expires_at FROM email_codes WHERE device_id = $1 AND email = $2")
            .bind(device_id)
            .bind(email.as_str())
            .fetch_optional(&db.pool)
            .await?;
    Ok(match row {
        None => ProofError::NoCode,
        Some((expires_at,)) if expires_at <= at => {
            sqlx::query("DELETE FROM email_codes WHERE device_id = $1 AND email = $2")
                .bind(device_id)
                .bind(email.as_str())
                .execute(&db.pool)
                .await?;
            ProofError::CodeExpired
        }
        Some(_) => ProofError::TooManyAttempts,
    })
}

/// Forgets e-mail codes that expired before `before` (housekeeping); how many.
pub async fn forget_expired(db: &Db, before: i64) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query("DELETE FROM email_codes WHERE expires_at < $1")
        .bind(before)
        .execute(&db.pool)
        .await?
        .rows_affected())
}
