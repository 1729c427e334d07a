//! Push to waiting browsers: the outcome of a QR challenge, and "you were signed out". In-process through a broadcast channel;
//! with PostgreSQL also across replicas through LISTEN/NOTIFY, so the phone may reach one
//! instance and the browser another.

use super::page_cache::PageCache;
use super::service::Challenge;
use crate::server::db::{Db, Engine};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tokio::sync::broadcast;

const CHANNEL: &str = "gatehouse_login";
/// Sends a push event to every instance: channel, then the event as JSON.
const NOTIFY: &str = "SELECT pg_notify($1, $2)";
const TENANT_TOPIC: &str = "tenant:";
const CHALLENGE_TOPIC: &str = "challenge:";

/// Something a browser waits for, on a topic: `challenge:{id}` or `user:{id}`; and, between
/// instances, `tenant:{id}` when a tenant's settings change.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct PushEvent {
    pub topic: String,
    /// `approved`, `denied`, `cancelled` (challenges) or `signed_out` (users).
    pub outcome: String,
    pub reason: Option<String>,
    /// For a challenge's outcome: the hash of the binding cookie of the browser that showed
    /// it, so each replica forgets that browser's login page (`PageCache`).
    #[serde(default)]
    pub browser: Option<String>,
}

impl PushEvent {
    pub fn challenge_topic(id: &str) -> String {
        format!("{CHALLENGE_TOPIC}{id}")
    }

    pub fn user_topic(user_id: &str) -> String {
        format!("user:{user_id}")
    }

    pub fn challenge(
        c: &Challenge,
        outcome: crate::domain::ChallengeStatus,
        reason: Option<&str>,
    ) -> Self {
        Self {
            topic: Self::challenge_topic(&c.id),
            outcome: outcome.as_str().into(),
            reason: reason.map(str::to_string),
            browser: Some(c.binding_hash.clone()),
        }
    }

    /// The challenge this event is the outcome of.
    pub fn decided_challenge(&self) -> Option<&str> {
        self.topic.strip_prefix(CHALLENGE_TOPIC)
    }

    /// A tenant's settings changed: every instance forgets its cached copy.
    pub fn tenant_changed(tenant_id: &str) -> Self {
        Self {
            topic: format!("{TENANT_TOPIC}{tenant_id}"),
            outcome: crate::domain::PushOutcome::Changed.as_str().into(),
            reason: None,
            browser: None,
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
            outcome: crate::domain::PushOutcome::SignedOut.as_str().into(),
            reason: Some(reason.into()),
            browser: None,
        }
    }
}

#[derive(Clone)]
pub struct LoginHub {
    tx: broadcast::Sender<PushEvent>,
    pages: Arc<PageCache>,
    /// On PostgreSQL: whether this instance hears the other instances right now.
    listening: Arc<std::sync::atomic::AtomicBool>,
}

impl LoginHub {
    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(1024);
        Self {
            tx,
            pages: Arc::default(),
            listening: Arc::default(),
        }
    }

    /// On PostgreSQL, true once this instance listens for the others' notifications (and
    /// while it does); always false on SQLite, where there is nobody else to hear.
    pub fn is_listening(&self) -> bool {
        self.listening.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn subscribe(&self) -> broadcast::Receiver<PushEvent> {
        self.tx.subscribe()
    }

    /// The login pages this instance serves from memory; the hub keeps them true.
    pub fn pages(&self) -> &PageCache {
        &self.pages
    }

    /// Hands an event to this instance's listeners, after forgetting the login pages it
    /// ends, so the page a browser loads on hearing of it is read afresh.
    fn deliver(&self, event: PushEvent) {
        self.forget_pages_of(&event);
        let _ = self.tx.send(event);
    }

    /// A decided challenge ends its browser's page; a changed tenant, all of its pages.
    fn forget_pages_of(&self, event: &PushEvent) {
        if let Some(id) = event.decided_challenge() {
            self.pages.forget_code(event.browser.as_deref(), id);
        }
        if let Some(id) = event.changed_tenant() {
            self.pages.forget_tenant(id);
        }
    }

    /// Tells every instance's waiting browsers. On SQLite there is only this instance.
    pub async fn publish(&self, db: &Db, event: PushEvent) {
        match &db.engine {
            Engine::Postgres(pool) => {
                let payload = serde_json::to_string(&event).unwrap_or_default();
                match sqlx::query(NOTIFY)
                    .bind(CHANNEL)
                    .bind(payload)
                    .execute(pool)
                    .await
                {
                    // This instance's listener hears it too, a moment later; its pages
                    // are done with now.
                    Ok(_) => self.forget_pages_of(&event),
                    // The browser still completes on its next page load; push is a courtesy.
                    Err(err) => {
                        tracing::warn!(error = %err, "pg_notify failed; delivering locally only");
                        self.deliver(event);
                    }
                }
            }
            Engine::Sqlite(_) => self.deliver(event),
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
                // Before the caller answers (a phone's approval): a reload of the browser on
                // this instance must not meet its old page, even before the listener hears.
                self.forget_pages_of(&event);
            }
            Engine::Sqlite(_) => {
                tx.commit().await?;
                self.deliver(event);
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
                        // Whatever was sent while no one listened is lost: trust nothing
                        // remembered from before.
                        self.pages.forget_all();
                        self.listening
                            .store(true, std::sync::atomic::Ordering::SeqCst);
                        loop {
                            // `try_recv` says when the connection drops (sqlx reconnects,
                            // and notifications in between are lost).
                            match listener.try_recv().await {
                                Ok(Some(note)) => {
                                    if let Ok(event) = serde_json::from_str(note.payload()) {
                                        self.deliver(event);
                                    }
                                }
                                Ok(None) => {
                                    tracing::warn!("login push listener reconnected; notifications in between may be lost");
                                    self.pages.forget_all();
                                }
                                Err(err) => {
                                    tracing::warn!(error = %err, "login push listener lost; reconnecting");
                                    self.listening
                                        .store(false, std::sync::atomic::Ordering::SeqCst);
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
