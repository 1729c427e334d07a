//! Push to waiting browsers: the outcome of a QR challenge, and "you were signed out". In-process through a broadcast channel;
//! with PostgreSQL also across replicas through LISTEN/NOTIFY, so the phone may reach one
//! instance and the browser another.

use crate::server::db::{Db, Engine};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

const CHANNEL: &str = "gatehouse_login";
/// Sends a push event to every instance: channel, then the event as JSON.
const NOTIFY: &str = "SELECT pg_notify($1, $2)";
const TENANT_TOPIC: &str = "tenant:";

/// Something a browser waits for, on a topic: `challenge:{id}` or `user:{id}`; and, between
/// instances, `tenant:{id}` when a tenant's settings change.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct PushEvent {
    pub topic: String,
    /// `approved`, `denied`, `cancelled` (challenges) or `signed_out` (users).
    pub outcome: String,
    pub reason: Option<String>,
}

impl PushEvent {
    pub fn challenge_topic(id: &str) -> String {
        format!("challenge:{id}")
    }

    pub fn user_topic(user_id: &str) -> String {
        format!("user:{user_id}")
    }

    pub fn challenge(id: &str, outcome: &str, reason: Option<&str>) -> Self {
        Self {
            topic: Self::challenge_topic(id),
            outcome: outcome.into(),
            reason: reason.map(str::to_string),
        }
    }

    /// A tenant's settings changed: every instance forgets its cached copy.
    pub fn tenant_changed(tenant_id: &str) -> Self {
        Self {
            topic: format!("{TENANT_TOPIC}{tenant_id}"),
            outcome: "changed".into(),
            reason: None,
        }
    }

    /// The tenant whose settings changed, for a `tenant_changed` event.
    pub fn changed_tenant(&self) -> Option<&str> {
        self.topic.strip_prefix(TENANT_TOPIC)
    }

    /// Every open page of the user signs out (offboarded, disabled, a session revoked).
    pub fn signed_out(user_id: &str, reason: &str) -> Self {
        Self {
            topic: Self::user_topic(user_id),
            outcome: "signed_out".into(),
            reason: Some(reason.into()),
        }
    }
}

#[derive(Clone)]
pub struct LoginHub {
    tx: broadcast::Sender<PushEvent>,
}

impl LoginHub {
    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(1024);
        Self { tx }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<PushEvent> {
        self.tx.subscribe()
    }

    /// Tells every instance's waiting browsers. On SQLite there is only this instance.
    pub async fn publish(&self, db: &Db, event: PushEvent) {
        match &db.engine {
            Engine::Postgres(pool) => {
                let payload = serde_json::to_string(&event).unwrap_or_default();
                if let Err(err) = sqlx::query(NOTIFY)
                    .bind(CHANNEL)
                    .bind(payload)
                    .execute(pool)
                    .await
                {
                    // The browser still completes on its next page load; push is a courtesy.
                    tracing::warn!(error = %err, "pg_notify failed; delivering locally only");
                    let _ = self.tx.send(event);
                }
            }
            Engine::Sqlite(_) => {
                let _ = self.tx.send(event);
            }
        }
    }

    /// Commits `tx` and tells waiting browsers about `event`, only once it has committed. On
    /// PostgreSQL the NOTIFY rides in the transaction itself (delivered at commit, one round
    /// trip fewer); on SQLite the event is sent after the commit.
    pub async fn commit_and_publish(
        &self,
        mut tx: sqlx::Transaction<'_, sqlx::Any>,
        db: &Db,
        event: PushEvent,
    ) -> anyhow::Result<()> {
        match &db.engine {
            Engine::Postgres(_) => {
                sqlx::query(NOTIFY)
                    .bind(CHANNEL)
                    .bind(serde_json::to_string(&event)?)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
            }
            Engine::Sqlite(_) => {
                tx.commit().await?;
                let _ = self.tx.send(event);
            }
        }
        Ok(())
    }

    /// On PostgreSQL, relays notifications from every instance to this one's browsers.
    pub async fn run_until_stopped(self, db: Db) -> anyhow::Result<()> {
        let Engine::Postgres(pool) = &db.engine else {
            std::future::pending::<()>().await;
            return Ok(());
        };
        loop {
            match sqlx::postgres::PgListener::connect_with(pool).await {
                Ok(mut listener) => {
                    if let Err(err) = listener.listen(CHANNEL).await {
                        tracing::warn!(error = %err, "LISTEN failed; retrying");
                    } else {
                        loop {
                            match listener.recv().await {
                                Ok(note) => {
                                    if let Ok(event) = serde_json::from_str(note.payload()) {
                                        let _ = self.tx.send(event);
                                    }
                                }
                                Err(err) => {
                                    tracing::warn!(error = %err, "login push listener lost; reconnecting");
                                    break;
                                }
                            }
                        }
                    }
                }
                Err(err) => tracing::warn!(error = %err, "cannot start the login push listener"),
            }
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
    }
}

impl Default for LoginHub {
    fn default() -> Self {
        Self::new()
    }
}
