//! The event bus under the contexts: something happened that other parts of this instance,
//! and the other replicas, must hear of. In-process through a broadcast channel; with
//! PostgreSQL also across replicas through LISTEN/NOTIFY, so a phone may reach one replica and
//! the browser waiting for it another.
//!
//! Two kinds of listeners:
//! - memory that must be true before the publisher answers (the login page cache, the tenant
//!   cache) attaches a [`Subscriber`]; it is called in the publisher's task, on this replica
//!   before `publish` returns, and again when the event arrives from PostgreSQL;
//! - streams to browsers [`subscribe`](Bus::subscribe) to the broadcast channel.
//!
//! Nothing on the bus decides anything: a sign-in is always read, and consumed, in the
//! database. When events between replicas may have been lost (the listener reconnected),
//! every stream hears [`Event::MayHaveMissed`] and reads its state again.

use super::db::{Db, Engine};
use crate::domain::{ChallengeId, TenantId, UserId};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use tokio::sync::broadcast;

/// The PostgreSQL channel every replica listens on.
const CHANNEL: &str = "gatehouse_bus";
/// Sends an event to every replica: channel, then the event as JSON.
const NOTIFY: &str = "SELECT pg_notify($1, $2)";

/// What happened. Challenge events carry the hash of the binding cookie of the browser that
/// showed the code, so each replica forgets that browser's kept login page.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A phone approved a QR code; its browser may sign in.
    Approved {
        challenge_id: ChallengeId,
        browser: String,
    },
    /// The phone, or Gatehouse for the phone's owner, refused a QR code; `reason` is what the
    /// browser may be told.
    Denied {
        challenge_id: ChallengeId,
        browser: String,
        reason: String,
    },
    /// One or more of the user's sign-ins ended (a session revoked, a phone revoked or
    /// forgotten, the user disabled): their open pages leave.
    SignedOut { user_id: UserId, reason: String },
    /// The user was offboarded (removed or disabled in Entra): every open page leaves.
    UserOffboarded { user_id: UserId },
    /// A tenant's settings changed: every replica reads them afresh.
    TenantChanged { tenant_id: TenantId },
    /// Accounts at customers were marked ending without anyone signing out (a role change, a
    /// withdrawn mapping): every replica's JIT worker wakes to end them.
    AccountsEnding,
    /// Microsoft said something changed in the tenant's Entra directory: its run is booked a
    /// moment from now, and every replica's scheduler wakes to look.
    ChangeNotified { tenant_id: TenantId },
    /// This replica's listener was away (PostgreSQL restarted, the connection dropped), so
    /// the other replicas' events of that moment were lost: whatever waits for one reads
    /// again, in the database, what it waits for. Never sent between replicas.
    #[serde(skip)]
    MayHaveMissed,
}

impl Event {
    /// The decided QR code and its browser, for `Approved` and `Denied`.
    pub fn decided_challenge(&self) -> Option<(&str, &str)> {
        match self {
            Event::Approved {
                challenge_id,
                browser,
            }
            | Event::Denied {
                challenge_id,
                browser,
                ..
            } => Some((challenge_id.as_str(), browser)),
            _ => None,
        }
    }

    /// The user whose open pages must leave, and why.
    pub fn signed_out_user(&self) -> Option<(&UserId, &str)> {
        match self {
            Event::SignedOut { user_id, reason } => Some((user_id, reason)),
            Event::UserOffboarded { user_id } => {
                Some((user_id, crate::domain::UserStatus::Offboarded.as_str()))
            }
            _ => None,
        }
    }
}

/// Memory kept true by the bus.
pub trait Subscriber: Send + Sync {
    /// `event` happened, here or on another replica.
    fn heard(&self, event: &Event);
    /// Events between replicas may have been lost (the listener was reconnecting): trust
    /// nothing remembered from before.
    fn may_have_missed(&self);
}

#[derive(Clone)]
pub struct Bus {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    tx: broadcast::Sender<Event>,
    subscribers: RwLock<Vec<Arc<dyn Subscriber>>>,
    /// On PostgreSQL: whether this replica hears the other replicas right now.
    listening: AtomicBool,
}

impl Bus {
    pub fn new(db: Db) -> Self {
        let (tx, _) = broadcast::channel(1024);
        Self {
            inner: Arc::new(Inner {
                db,
                tx,
                subscribers: RwLock::default(),
                listening: AtomicBool::new(false),
            }),
        }
    }

    /// Keeps `subscriber` true from now on.
    pub fn attach(&self, subscriber: Arc<dyn Subscriber>) {
        self.inner
            .subscribers
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(subscriber);
    }

    /// Every event from now on, for a stream that waits for one.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.inner.tx.subscribe()
    }

    /// On PostgreSQL, true once this replica listens for the others' events (and while it
    /// does); always false on SQLite, where there is nobody else to hear.
    pub fn is_listening(&self) -> bool {
        self.inner.listening.load(Ordering::SeqCst)
    }

    /// Tells every replica. On SQLite there is only this one.
    pub async fn publish(&self, event: Event) {
        match &self.inner.db.engine {
            Engine::Postgres(pool) => {
                let payload = serde_json::to_string(&event).unwrap_or_default();
                match sqlx::query(NOTIFY)
                    .bind(CHANNEL)
                    .bind(payload)
                    .execute(pool)
                    .await
                {
                    // This replica's listener hears it too, a moment later; its memory is
                    // made true now.
                    Ok(_) => self.tell_subscribers(&event),
                    // A browser still completes on its next page load; push is a courtesy.
                    Err(err) => {
                        tracing::warn!(error = %err, "pg_notify failed; delivering locally only");
                        self.deliver(event);
                    }
                }
            }
            Engine::Sqlite(_) => self.deliver(event),
        }
    }

    /// Commits `tx` and publishes `event` only once it has committed. On PostgreSQL the
    /// NOTIFY rides in the transaction itself (delivered at commit, one round trip fewer); on
    /// SQLite the event is sent after the commit.
    pub async fn commit_and_publish(
        &self,
        mut tx: sqlx::Transaction<'_, sqlx::Any>,
        event: Event,
    ) -> anyhow::Result<()> {
        match &self.inner.db.engine {
            Engine::Postgres(_) => {
                sqlx::query(NOTIFY)
                    .bind(CHANNEL)
                    .bind(serde_json::to_string(&event)?)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                // Before the caller answers (a phone's approval): a reload of the browser on
                // this replica must not meet its old page, even before the listener hears.
                self.tell_subscribers(&event);
            }
            Engine::Sqlite(_) => {
                tx.commit().await?;
                self.deliver(event);
            }
        }
        Ok(())
    }

    /// On PostgreSQL, relays every replica's events to this one; on SQLite, waits forever.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let Engine::Postgres(pool) = &self.inner.db.engine else {
            std::future::pending::<()>().await;
            return Ok(());
        };
        loop {
            match sqlx::postgres::PgListener::connect_with(pool).await {
                Ok(mut listener) => {
                    if let Err(err) = listener.listen(CHANNEL).await {
                        tracing::warn!(error = %err, "LISTEN failed; retrying");
                    } else {
                        // Whatever was sent while no one listened is lost.
                        self.missed_some();
                        self.inner.listening.store(true, Ordering::SeqCst);
                        self.relay(&mut listener).await;
                        self.inner.listening.store(false, Ordering::SeqCst);
                    }
                }
                Err(err) => {
                    tracing::warn!(error = %err, "cannot start the event bus listener");
                    // Still away: the pools' connections of before are suspect until it is back.
                    self.inner.db.lost.now();
                }
            }
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
    }

    /// Delivers what `listener` hears until its connection is lost.
    async fn relay(&self, listener: &mut sqlx::postgres::PgListener) {
        loop {
            // `try_recv` says when the connection drops (sqlx reconnects, and events in
            // between are lost).
            match listener.try_recv().await {
                Ok(Some(note)) => match serde_json::from_str(note.payload()) {
                    Ok(event) => self.deliver(event),
                    // A replica of another version, during a rolling upgrade.
                    Err(_) => self.missed_some(),
                },
                Ok(None) => {
                    tracing::warn!("event bus listener reconnected; events in between may be lost");
                    self.inner.db.lost.now();
                    self.missed_some();
                }
                Err(err) => {
                    tracing::warn!(error = %err, "event bus listener lost; reconnecting");
                    self.inner.db.lost.now();
                    return;
                }
            }
        }
    }

    /// Hands an event to this replica's memory, then to its streams: a page a browser loads
    /// on hearing of it is read afresh.
    fn deliver(&self, event: Event) {
        self.tell_subscribers(&event);
        let _ = self.inner.tx.send(event);
    }

    fn tell_subscribers(&self, event: &Event) {
        for subscriber in self.subscribers().iter() {
            subscriber.heard(event);
        }
    }

    fn missed_some(&self) {
        for subscriber in self.subscribers().iter() {
            subscriber.may_have_missed();
        }
        let _ = self.inner.tx.send(Event::MayHaveMissed);
    }

    fn subscribers(&self) -> std::sync::RwLockReadGuard<'_, Vec<Arc<dyn Subscriber>>> {
        self.inner
            .subscribers
            .read()
            .unwrap_or_else(|e| e.into_inner())
    }
}
