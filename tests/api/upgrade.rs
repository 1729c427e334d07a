//! An upgrade keeps everything. `tests/fixtures/upgrade/` holds a database made by the last
//! landed release, one per engine: its migrations, and its own code telling the story below
//! (an admin and three technicians signed in with their phones, Megan removed in Entra ID and
//! offboarded by a run). The binary under test opens it, which upgrades it, and then
//! everything it held is still there and still works: the Users page, the audit log, the
//! runs, the browsers' sign-ins, the phones; and the reconciler still ends access on it.
//!
//! `this_release_leaves_a_database_the_next_can_upgrade` tells the same story with this
//! release, checks it the same way and leaves the database beside the build;
//! `scripts/upgrade-fixture.sh` makes it the fixture when a release adds migrations.

use crate::emulator::{entra_config, reconcile_now, spawn_emulator, Emu, ALEX, ISAIAH, MEGAN};
use crate::helpers::*;
use crate::reconcile::connected;
use gatehouse::domain::UserStatus;
use gatehouse::reconciler::Outcome;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// What the story left, kept beside the database: what the pages showed, and what the
/// browsers and phones kept (their cookies, their keys).
#[derive(Debug, Serialize, Deserialize)]
struct Facts {
    /// When the database was made (Unix seconds).
    made_at: i64,
    /// The admin's browser's cookies for `acme`.
    admin_cookies: String,
    alex: Kept,
    isaiah: Kept,
    /// The Users page: username and status, in its order.
    users: Vec<(String, String)>,
    /// Why Megan was offboarded, as the Users page words it.
    megan_offboarded: String,
    /// The Audit page: when, who, what, whom, details; newest first.
    audit: Vec<(String, String, String, String, String)>,
    /// The Reconciliation page's runs, newest first.
    runs: Vec<String>,
}

/// What a technician's browser and phone kept.
#[derive(Debug, Serialize, Deserialize)]
struct Kept {
    cookies: String,
    phone_key: String,
    device_id: String,
}

impl Kept {
    fn of(technician: &Technician) -> Kept {
        Kept {
            cookies: technician.browser.cookies("acme"),
            phone_key: technician.phone.key_pkcs8(),
            device_id: technician.phone.id().to_string(),
        }
    }
}

fn engine() -> &'static str {
    if on_postgres() {
        "postgres"
    } else {
        "sqlite"
    }
}

fn fixture_dir() -> PathBuf {
    Path::new("tests/fixtures/upgrade").join(engine())
}

#[tokio::test]
async fn a_database_of_the_last_release_is_upgraded_with_everything_in_it() {
    let facts: Facts = serde_json::from_str(
        &std::fs::read_to_string(fixture_dir().join("facts.json")).expect("the fixture's facts"),
    )
    .unwrap();
    let db = TestDb::new().await;
    load_fixture(&db, &facts).await;
    // Contoso as the old release last saw it: Megan removed.
    let emu = spawn_emulator().await;
    emu.grant_consent().await;
    emu.remove_in_entra(MEGAN).await;
    let entra = entra_config(&emu);
    let app = spawn_app_in(db, move |c| c.entra = entra).await;

    let applied: Vec<(i64,)> =
        sqlx::query_as("SELECT version FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&app.state.db.pool)
            .await
            .unwrap();
    let ours = std::fs::read_dir(Path::new("migrations").join(engine()))
        .unwrap()
        .count();
    assert_eq!(
        applied.len(),
        ours,
        "every migration of this release applied"
    );

    still_works(&app, &emu, &facts).await;
}

/// The same story told by this release, checked the same way; the database and its facts are
/// left in the build's folder for `scripts/upgrade-fixture.sh`.
#[tokio::test]
async fn this_release_leaves_a_database_the_next_can_upgrade() {
    let (w, facts) = tell_the_story().await;
    let out = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("upgrade-fixture")
        .join(engine());
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).unwrap();
    save(&w.app, &out).await;
    std::fs::write(
        out.join("facts.json"),
        serde_json::to_string_pretty(&facts).unwrap() + "\n",
    )
    .unwrap();
    still_works(&w.app, &w.emu, &facts).await;
}

/// Tenant `acme` connected to Contoso, its admin, Alex, Megan and Isaiah signed in with their
/// phones; Megan removed in Entra ID and offboarded by a run.
async fn tell_the_story() -> (crate::reconcile::World, Facts) {
    let w = connected(&[ALEX, MEGAN, ISAIAH]).await;
    assert_eq!(w.run().await.outcome, Outcome::Ok);
    w.emu.remove_in_entra(MEGAN).await;
    let run = w.run().await;
    assert_eq!(run.offboarded.len(), 1, "{:?}", run.error);
    let facts = Facts {
        made_at: now(),
        admin_cookies: w.admin.cookies("acme"),
        alex: Kept::of(&w.technicians[ALEX]),
        isaiah: Kept::of(&w.technicians[ISAIAH]),
        users: users_page(&w.app).await,
        megan_offboarded: w.offboard_reason(MEGAN).await,
        audit: audit_page(&w.app).await,
        runs: runs_page(&w.app).await,
    };
    (w, facts)
}

async fn users_page(app: &TestApp) -> Vec<(String, String)> {
    app.users("acme")
        .await
        .into_iter()
        .map(|u| (u.username, u.status.as_str().to_string()))
        .collect()
}

async fn audit_page(app: &TestApp) -> Vec<(String, String, String, String, String)> {
    app.audit("acme")
        .await
        .into_iter()
        .map(|e| (e.at, e.actor, e.action, e.subject, e.details))
        .collect()
}

async fn runs_page(app: &TestApp) -> Vec<String> {
    let tenant = app.tenant("acme").await;
    gatehouse::reconciler::view(&app.state.db, &tenant.id)
        .await
        .unwrap()
        .runs
        .into_iter()
        .map(|r| {
            format!(
                "{} {} {:?}: {} checked, {} offboarded",
                r.started, r.trigger, r.outcome, r.users_checked, r.offboarded
            )
        })
        .collect()
}

/// Everything the story left is there and works on `app` (its Entra app on `emu`).
async fn still_works(app: &TestApp, emu: &Emu, facts: &Facts) {
    // What the pages show, before anyone does anything.
    assert_eq!(users_page(app).await, facts.users, "the Users page");
    assert_eq!(audit_page(app).await, facts.audit, "the Audit page");
    assert_eq!(runs_page(app).await, facts.runs, "the runs");
    let tenant = app.tenant("acme").await;
    let megan = app.user_of(&tenant.id, MEGAN).await;
    assert_eq!(megan.status, UserStatus::Offboarded);
    assert_eq!(megan.offboarded_because().unwrap(), facts.megan_offboarded);

    // The browsers are still signed in.
    let admin = app.browser_with_cookies("acme", &facts.admin_cookies);
    let users = admin.get("acme", "/adminportal/users").await;
    assert_eq!(users.status(), 200, "the admin is still signed in");
    let alex = app.browser_with_cookies("acme", &facts.alex.cookies);
    assert_eq!(alex.get("acme", "/home").await.status(), 200, "Alex too");
    let isaiah = app.browser_with_cookies("acme", &facts.isaiah.cookies);
    assert_eq!(
        isaiah.get("acme", "/home").await.status(),
        200,
        "Isaiah too"
    );

    // Alex's phone signs a new browser in.
    let phone = Phone::restored(&facts.alex.phone_key, &facts.alex.device_id);
    let browser = app.browser(&["acme"]);
    assert_eq!(sign_in(app, &browser, &phone, "acme").await, "/home");

    // Isaiah is disabled in Entra ID: the next run ends his access, old sign-in included.
    emu.disable_in_entra(ISAIAH).await;
    let run = reconcile_now(app, "acme").await;
    assert_eq!(run.outcome, Outcome::Ok, "{:?}", run.error);
    assert_eq!(
        app.user_of(&tenant.id, ISAIAH).await.status,
        UserStatus::Offboarded
    );
    assert_eq!(
        isaiah.get("acme", "/home").await.status(),
        303,
        "Isaiah's browser is signed out"
    );
    assert_eq!(alex.get("acme", "/home").await.status(), 200, "Alex stays");
}

/// Leaves the app's database in `out`: SQLite's file as it is on disk, PostgreSQL's as
/// `pg_dump` writes it (what an operator restores from).
async fn save(app: &TestApp, out: &Path) {
    let url = app.state.config.database_url.as_str().to_string();
    if on_postgres() {
        let dump = std::process::Command::new("pg_dump")
            .args([
                "--no-owner",
                "--no-privileges",
                "--inserts",
                "--dbname",
                &url,
            ])
            .output()
            .expect("pg_dump runs");
        assert!(
            dump.status.success(),
            "{}",
            String::from_utf8_lossy(&dump.stderr)
        );
        std::fs::write(out.join("gatehouse.sql"), dump.stdout).unwrap();
    } else {
        let file = out.join("gatehouse.db");
        sqlx::query(&format!("VACUUM INTO '{}'", file.display()))
            .execute(&app.state.db.pool)
            .await
            .unwrap();
    }
}

/// Puts the fixture's database in `db`. Its sign-ins are moved to the present: an upgrade
/// comes minutes after the old release stopped, not on the day the fixture was made.
async fn load_fixture(db: &TestDb, facts: &Facts) {
    let since = now() - facts.made_at;
    let later = tower_sessions::cookie::time::OffsetDateTime::now_utc()
        + tower_sessions::cookie::time::Duration::hours(11);
    match db.sqlite_file() {
        Some(file) => {
            std::fs::copy(fixture_dir().join("gatehouse.db"), &file).unwrap();
            let pool = sqlx::SqlitePool::connect(&db.url).await.unwrap();
            sqlx::query("UPDATE tower_sessions SET expiry_date = $1")
                .bind(later)
                .execute(&pool)
                .await
                .unwrap();
            sqlx::query(SHIFT_SIGN_INS)
                .bind(since)
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
        }
        None => {
            // psql's own commands (`\restrict`, which newer pg_dumps write) are not SQL.
            let dump = std::fs::read_to_string(fixture_dir().join("gatehouse.sql")).unwrap();
            let sql: String = dump
                .lines()
                .filter(|line| !line.starts_with('\\'))
                .map(|line| format!("{line}\n"))
                .collect();
            let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
            sqlx::raw_sql(&sql).execute(&pool).await.unwrap();
            // The dump leaves the search path empty for its connection: start a new one.
            pool.close().await;
            let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
            sqlx::query("UPDATE tower_sessions.session SET expiry_date = $1")
                .bind(later)
                .execute(&pool)
                .await
                .unwrap();
            sqlx::query(SHIFT_SIGN_INS)
                .bind(since)
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
        }
    }
}

/// Moves the sign-ins' own clocks (made, last seen) `since` seconds on.
const SHIFT_SIGN_INS: &str =
    "UPDATE user_sessions SET created_at = created_at + $1, last_seen_at = last_seen_at + $1";
