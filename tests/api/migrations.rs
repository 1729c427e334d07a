//! The two migration sets (`migrations/sqlite`, `migrations/postgres`) build the same store:
//! the same tables, with the same columns, and the same named indexes. A column added to one
//! engine only would pass every test on that engine and fail in production on the other.

use crate::helpers::*;
use std::collections::BTreeSet;

/// Tables that are not Gatehouse's own migrations' (the migration ledger, the session store).
fn ours(table: &str) -> bool {
    !table.starts_with("_sqlx") && !table.starts_with("tower_sessions") && table != "sessions"
}

/// Runs in the PostgreSQL pass (`TEST_DATABASE=postgres`), where both engines are at hand.
#[tokio::test]
async fn both_engines_build_the_same_store() {
    if !on_postgres() {
        eprintln!("the migration comparison runs in the PostgreSQL pass");
        return;
    }
    let pg = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    let sqlite = gatehouse::server::db::Db::connect(&format!(
        "sqlite://{}",
        dir.path().join("gatehouse.db").display()
    ))
    .await
    .unwrap();

    let pg_columns: BTreeSet<(String, String)> = sqlx::query_as::<_, (String, String)>(
        "SELECT table_name::text, column_name::text FROM information_schema.columns \
         WHERE table_schema = current_schema()",
    )
    .fetch_all(&pg.state.db.pool)
    .await
    .unwrap()
    .into_iter()
    .filter(|(t, _)| ours(t))
    .collect();
    let sqlite_columns: BTreeSet<(String, String)> = sqlx::query_as::<_, (String, String)>(
        "SELECT m.name, p.name FROM sqlite_master m JOIN pragma_table_info(m.name) p \
         WHERE m.type = 'table'",
    )
    .fetch_all(&sqlite.pool)
    .await
    .unwrap()
    .into_iter()
    .filter(|(t, _)| ours(t) && !t.starts_with("sqlite_"))
    .collect();
    assert!(pg_columns.len() > 40, "the store was read: {pg_columns:?}");
    assert_eq!(
        pg_columns.difference(&sqlite_columns).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "columns on PostgreSQL only"
    );
    assert_eq!(
        sqlite_columns.difference(&pg_columns).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "columns on SQLite only"
    );

    // Indexes the migrations name (not the ones each engine makes for keys by itself).
    let pg_indexes = names(
        &pg.state.db.pool,
        "SELECT indexname::text FROM pg_indexes WHERE schemaname = current_schema() \
         AND indexname NOT LIKE '%\\_pkey' AND indexname NOT LIKE '%\\_key'",
    )
    .await;
    let sqlite_indexes = names(
        &sqlite.pool,
        "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL",
    )
    .await;
    assert_eq!(pg_indexes, sqlite_indexes, "named indexes");
}

/// The first column of `sql`'s rows that name something of ours.
async fn names(pool: &sqlx::AnyPool, sql: &str) -> BTreeSet<String> {
    sqlx::query_as::<_, (String,)>(sql)
        .fetch_all(pool)
        .await
        .unwrap()
        .into_iter()
        .map(|(name,)| name)
        .filter(|name| ours(name))
        .collect()
}
