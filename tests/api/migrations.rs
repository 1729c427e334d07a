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

/// A database made by the release before offboarding reasons became codes, with reasons in
/// English, is upgraded by this one: every reason Gatehouse ever wrote becomes its code (the
/// group's name kept beside it), and the Users page words them as before.
#[tokio::test]
async fn an_upgrade_turns_stored_reasons_into_codes_and_words_them_as_before() {
    let dir = tempfile::tempdir().unwrap();
    let earlier = dir.path().join("earlier");
    std::fs::create_dir(&earlier).unwrap();
    for entry in std::fs::read_dir("migrations/sqlite").unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if name.as_str() < "0013" {
            std::fs::copy(&path, earlier.join(&name)).unwrap();
        }
    }
    let url = format!("sqlite://{}", dir.path().join("gatehouse.db").display());
    {
        let options: sqlx::sqlite::SqliteConnectOptions = url.parse().unwrap();
        let pool = sqlx::SqlitePool::connect_with(options.create_if_missing(true))
            .await
            .unwrap();
        sqlx::migrate::Migrator::new(earlier.as_path())
            .await
            .unwrap()
            .run(&pool)
            .await
            .unwrap();
        sqlx::query(
            "INSERT INTO tenants (id, slug, name, user_source, created_at) \
             VALUES ('t1', 'acme', 'Acme MSP', 'azuread', 0)",
        )
        .execute(&pool)
        .await
        .unwrap();
        for (id, reason) in [
            ("u1", "left group \"MSP Technicians\""),
            ("u2", "permanently deleted in Entra ID"),
            ("u3", "deleted in Entra ID (restorable there for 30 days)"),
            ("u4", "no address in the connected domain any more"),
            ("u5", "account disabled in Entra ID"),
            ("u6", "no longer in the Entra ID directory"),
            ("u7", "left the group whose members may sign in"),
        ] {
            sqlx::query(
                "INSERT INTO users (id, tenant_id, email, first_name, last_name, username, role, \
                 source, status, created_at, offboarded_at, offboard_reason) VALUES \
                 ($1, 't1', $1 || '@contoso.com', 'A', 'B', 'msp-' || $1, 'technician', \
                 'azuread', 'offboarded', 0, 1, $2)",
            )
            .bind(id)
            .bind(reason)
            .execute(&pool)
            .await
            .unwrap();
        }
        // A held run whose list an earlier release wrote.
        sqlx::query(
            "INSERT INTO reconcile_runs (id, tenant_id, trigger, started_at, outcome) \
             VALUES (1, 't1', 'schedule', 0, 'held')",
        )
        .execute(&pool)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO reconcile_held (run_id, user_id, reason) VALUES \
             (1, 'u1', 'left group \"Sales\"'), (1, 'u2', 'account disabled in Entra ID')",
        )
        .execute(&pool)
        .await
        .unwrap();
        pool.close().await;
    }
    let db = gatehouse::server::db::Db::connect(&url).await.unwrap();
    let stored: Vec<(String, Option<String>, Option<String>)> =
        sqlx::query_as("SELECT id, offboard_reason, offboard_group FROM users ORDER BY id")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    let codes: Vec<(&str, Option<&str>)> = stored
        .iter()
        .map(|(_, code, group)| (code.as_deref().unwrap(), group.as_deref()))
        .collect();
    assert_eq!(
        codes,
        vec![
            ("left_group", Some("MSP Technicians")),
            ("hard_deleted", None),
            ("soft_deleted", None),
            ("left_domain", None),
            ("disabled", None),
            ("not_in_directory", None),
            ("left_group", None),
        ]
    );
    let held: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT reason, group_name FROM reconcile_held ORDER BY user_id")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    assert_eq!(
        held,
        vec![
            ("left_group".to_string(), Some("Sales".to_string())),
            ("disabled".to_string(), None),
        ]
    );
    let page =
        gatehouse::users::service::list(&db, &gatehouse::domain::TenantId::from_outside("t1"))
            .await
            .unwrap();
    let worded: Vec<String> = page
        .iter()
        .map(|u| u.offboarded.clone().unwrap_or_default())
        .collect();
    assert!(
        worded[0].ends_with("left group \"MSP Technicians\""),
        "{worded:?}"
    );
    assert!(
        worded[1].ends_with("permanently deleted in Entra ID"),
        "{worded:?}"
    );
    assert!(
        worded[6].ends_with("left the group whose members may sign in"),
        "{worded:?}"
    );
}
