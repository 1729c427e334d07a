use super::db::Db;
use super::util::now;
use crate::domain::Email;
use anyhow::Context;
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;

/// Where mail goes: an SMTP relay, or the dev outbox page when `SMTP_URL` is not set.
pub enum Mailer {
    Smtp {
        transport: AsyncSmtpTransport<Tokio1Executor>,
        from: Mailbox,
    },
    Outbox,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The transport holds SMTP credentials; say only which kind this is.
        match self {
            Mailer::Smtp { from, .. } => write!(f, "Mailer::Smtp(from {from})"),
            Mailer::Outbox => f.write_str("Mailer::Outbox"),
        }
    }
}

impl Mailer {
    pub fn from_config(config: &super::config::Config) -> anyhow::Result<Self> {
        match &config.smtp_url {
            None => Ok(Mailer::Outbox),
            Some(url) => {
                let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose_secret())
                    .context("SMTP_URL is not a valid smtp:// URL")?
                    .build();
                let from = config
                    .mail_from
                    .parse()
                    .context("GATEHOUSE_MAIL_FROM is not a valid mailbox")?;
                Ok(Mailer::Smtp { transport, from })
            }
        }
    }

    pub fn is_outbox(&self) -> bool {
        matches!(self, Mailer::Outbox)
    }

    /// Sends a plain-text message.
    pub async fn send(&self, db: &Db, to: &Email, subject: &str, body: &str) -> anyhow::Result<()> {
        match self {
            Mailer::Outbox => {
                sqlx::query("INSERT INTO outbox (to_addr, subject, body, created_at) VALUES ($1, $2, $3, $4)")
                    .bind(to.as_str())
                    .bind(subject)
                    .bind(body)
                    .bind(now())
                    .execute(&db.pool)
                    .await
                    .context("cannot write to the outbox")?;
                Ok(())
            }
            Mailer::Smtp { transport, from } => {
                let message = Message::builder()
                    .from(from.clone())
                    .to(to.as_str().parse().context("recipient is not a mailbox")?)
                    .subject(subject)
                    .body(body.to_string())
                    .context("cannot build the message")?;
                transport
                    .send(message)
                    .await
                    .context("the SMTP relay refused the message")?;
                Ok(())
            }
        }
    }
}

/// One message of the dev outbox.
#[derive(sqlx::FromRow)]
pub struct OutboxMessage {
    pub id: i64,
    pub to_addr: String,
    pub subject: String,
    pub body: String,
    pub created_at: i64,
}

pub async fn outbox(db: &Db, limit: i64) -> anyhow::Result<Vec<OutboxMessage>> {
    Ok(sqlx::query_as::<_, OutboxMessage>(
        "SELECT id, to_addr, subject, body, created_at FROM outbox ORDER BY id DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(&db.pool)
    .await?)
}
