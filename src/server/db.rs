use anyhow::Context;
use sqlx::pool::PoolOptions;
use sqlx::postgres::PgPool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqliteSynchronous};
use sqlx::AnyPool;
use std::str::FromStr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// PostgreSQL connections per replica: the store's pool, and the engine's own pool for the
/// session store and the push listener (one, held). Sixteen per replica lets
/// six replicas share PostgreSQL's default `max_connections` of 100. More connections do not
/// make more work happen at once: past the database's cores they queue inside PostgreSQL, and
/// each new one must first prepare every statement it runs. With 32 + 16, fifty simultaneous
/// sign-ins took longer (BENCHMARKS.md).
const PG_STORE_CONNECTIONS: u32 = 10;
const PG_ENGINE_CONNECTIONS: u32 = 6;

/// A connection idle for longer than this is pinged before it is handed out.
const IDLE_CHECK: Duration = Duration::from_secs(30);

/// After the push listener lost its connection (PostgreSQL restarted, or the network
/// dropped), connections made before that are checked before use for this long: the server
/// may have closed them all, and each would fail one request.
const AFTER_LOSS_CHECK: Duration = Duration::from_secs(60);

/// When a connection to the database was last seen lost, shared by every pool of a `Db`.
#[derive(Clone, Default)]
pub struct LostConnections {
    /// Milliseconds since the Unix epoch; 0 for never.
    at_ms: Arc<AtomicI64>,
}

impl LostConnections {
    /// The database closed a connection of ours: the others may be closed too.
    pub fn now(&self) {
        self.at_ms.store(unix_ms(), Ordering::SeqCst);
    }

    /// Whether a connection `age` old predates a loss seen within `AFTER_LOSS_CHECK`.
    fn predates_recent_loss(&self, age: Duration) -> bool {
        let lost = self.at_ms.load(Ordering::SeqCst);
        let now = unix_ms();
        lost > 0
            && now - lost < AFTER_LOSS_CHECK.as_millis() as i64
            && now - (age.as_millis() as i64) < lost
    }
}

fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Every pool: sqlx checks a connection each time it comes back to the pool; one that then
/// sat idle (a database restart may have closed it), or that was made before a connection
/// was lost a moment ago, is checked again before use, and one that fails is replaced.
/// Checking a busy one on every acquire as well would cost a round trip per query (on
/// SQLite, a hand-off to its connection's thread and back).
fn pool_options<DB: sqlx::Database>(max: u32, lost: &LostConnections) -> PoolOptions<DB> {
    let lost = lost.clone();
    PoolOptions::new()
        .max_connections(max)
        .acquire_timeout(Duration::from_secs(10))
        .test_before_acquire(false)
        .before_acquire(move |conn, meta| {
            let check = meta.idle_for > IDLE_CHECK || lost.predates_recent_loss(meta.age);
            Box::pin(async move {
                if check {
                    sqlx::Connection::ping(conn).await?;
                }
                Ok(true)
            })
        })
}

/// The database: one `Any` pool for the store layer (the same SQL on both engines) and the
/// engine's own pool for what needs it (migrations, the session store, LISTEN/NOTIFY).
#[derive(Clone)]
pub struct Db {
    pub pool: AnyPool,
    pub engine: Engine,
    /// When a connection was last seen lost (the push listener tells).
    pub lost: LostConnections,
}

#[derive(Clone)]
pub enum Engine {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Db {
    /// Connects, creating a SQLite file and its folder if needed, and applies migrations.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        sqlx::any::install_default_drivers();
        let lost = LostConnections::default();
        let engine = if url.starts_with("sqlite:") {
            let opts = SqliteConnectOptions::from_str(url)
                .with_context(|| "DATABASE_URL is not a valid sqlite:// URL")?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true);
            if let Some(dir) = opts.get_filename().parent() {
                if !dir.as_os_str().is_empty() {
                    std::fs::create_dir_all(dir)
                        .with_context(|| format!("cannot create {}", dir.display()))?;
                }
            }
            let pool = pool_options::<sqlx::Sqlite>(8, &lost)
                .connect_with(opts)
                .await
                .context("cannot open the SQLite database")?;
            sqlx::migrate!("migrations/sqlite")
                .run(&pool)
                .await
                .context("cannot apply SQLite migrations")?;
            Engine::Sqlite(pool)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let pool = pool_options::<sqlx::Postgres>(PG_ENGINE_CONNECTIONS, &lost)
                .connect(url)
                .await
                .context("cannot connect to PostgreSQL")?;
            sqlx::migrate!("migrations/postgres")
                .run(&pool)
                .await
                .context("cannot apply PostgreSQL migrations")?;
            Engine::Postgres(pool)
        } else {
            anyhow::bail!("DATABASE_URL must start with sqlite:// or postgres://");
        };
        // SQLite allows one writer at a time; a small pool keeps writers from starving
        // each other behind the busy timeout.
        let max = match engine {
            Engine::Sqlite(_) => 8,
            Engine::Postgres(_) => PG_STORE_CONNECTIONS,
        };
        let pool = pool_options::<sqlx::Any>(max, &lost)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    use sqlx::Executor;
                    if conn.backend_name() == "SQLite" {
                        conn.execute("PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;")
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect(url)
            .await
            .context("cannot open the database")?;
        Ok(Self { pool, engine, lost })
    }

    /// True when the database answers a trivial query.
    pub async fn is_ready(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    /// Closes both pools, letting SQLite checkpoint its log before the process exits.
    pub async fn close(&self) {
        self.pool.close().await;
        match &self.engine {
            Engine::Sqlite(p) => p.close().await,
            Engine::Postgres(p) => p.close().await,
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self.engine, Engine::Postgres(_))
    }
}

/// Unique-constraint violations, told apart by the driver's error kind, never by message.
pub fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}
