//! Entra benchmarks (results in BENCHMARKS.md):
//! 1. the emulator: a full `/users/delta` walk over 100 000 users, then after 1 % changed;
//! 2. the reconciler: the first run over that directory with 5 000 onboarded users, then a
//!    run without changes. Graph requests, wall time, peak RSS of this whole process
//!    (emulator, Gatehouse and the client together).
//!
//! Set up with the API tests' own harness (tests/api/helpers.rs, tests/api/emulator).
//!
//! Run: `cargo bench --features ssr --bench entra`

#[allow(dead_code, unused_imports)]
#[path = "../tests/api/emulator/mod.rs"]
mod emulator;
#[allow(dead_code, unused_imports)]
#[path = "../tests/api/helpers.rs"]
mod helpers;

use emulator::{connect_contoso, entra_config, spawn_emulator, Emu};
use gatehouse::domain::{Role, UserSource, UserStatus};
use gatehouse::entra::EntraClient;
use gatehouse::reconciler::{self, Trigger};
use gatehouse::users::store::User;
use serde_json::json;
use std::time::Instant;

const USERS: usize = 100_000;
const ONBOARDED: usize = 5_000;

fn current_rss_mb() -> f64 {
    status_mb("VmRSS:")
}

fn peak_rss_mb() -> f64 {
    status_mb("VmHWM:")
}

fn status_mb(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

/// Follows a delta chain: (entries, pages, deltaLink).
async fn walk(emu: &Emu, token: &str, start: &str) -> (usize, usize, String) {
    let (mut items, mut pages, mut url) = (0usize, 0usize, start.to_string());
    loop {
        let (_, _, body) = emu.graph(token, &url).await;
        pages += 1;
        items += body["value"].as_array().map(Vec::len).unwrap_or(0);
        match body["@odata.nextLink"].as_str() {
            Some(next) => url = next.to_string(),
            None => {
                return (
                    items,
                    pages,
                    body["@odata.deltaLink"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                )
            }
        }
    }
}

#[tokio::main]
async fn main() {
    let emu = spawn_emulator().await;
    let token = emu.app_token().await;

    let started = Instant::now();
    emu.contoso(
        reqwest::Method::POST,
        "/generate",
        Some(json!({ "count": USERS })),
    )
    .await;
    println!(
        "emulator: generated {USERS} users in {:.2} s",
        started.elapsed().as_secs_f64()
    );

    // 1. The emulator's delta walk.
    let started = Instant::now();
    let (items, pages, link) = walk(
        &emu,
        &token,
        "/v1.0/users/delta?$select=id,accountEnabled,userPrincipalName,mail",
    )
    .await;
    println!(
        "emulator: full delta walk, {items} users in {pages} pages, {:.2} s, peak RSS {:.0} MB",
        started.elapsed().as_secs_f64(),
        peak_rss_mb()
    );
    let mut ids = Vec::new();
    let mut url = Some("/v1.0/users?$top=999&$select=id".to_string());
    while let Some(u) = url {
        let (_, _, body) = emu.graph(&token, &u).await;
        ids.extend(
            body["value"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v["id"].as_str().unwrap().to_string()),
        );
        url = body["@odata.nextLink"].as_str().map(String::from);
    }
    for id in ids.iter().step_by(100) {
        emu.disable_in_entra(id).await;
    }
    let started = Instant::now();
    let (items, pages, _) = walk(&emu, &token, &link).await;
    println!(
        "emulator: delta walk after 1 % changed, {items} users in {pages} pages, {:.3} s",
        started.elapsed().as_secs_f64()
    );

    // 2. The reconciler, on SQLite, over the same directory with 5 000 onboarded users
    //    (none among the disabled ones, so the first run offboards nobody).
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let entra = entra_config(&emu);
    let app = helpers::spawn_app_on(url, move |c| c.entra = entra).await;
    let db = &app.state.db;
    app.create_tenant("acme", "Acme MSP", "admin@acme.com")
        .await;
    let tenant_id = connect_contoso(&app, "acme").await;
    // Five thousand first scans would take minutes: the records are written as onboarding
    // writes them, in one transaction, with no threshold in the way.
    let mut tx = db.pool.begin().await.unwrap();
    gatehouse::tenants::service::set_reconcile_schedule(&mut tx, &tenant_id, 14_400, 100_000, 100)
        .await
        .unwrap();
    for (i, oid) in ids
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 100 != 0)
        .take(ONBOARDED)
    {
        let user = User {
            id: format!("u{i}"),
            tenant_id: tenant_id.clone(),
            email: format!("user{i}@contoso.com"),
            first_name: "B".into(),
            last_name: "U".into(),
            username: format!("msp-u{i}"),
            role: Role::Technician,
            source: UserSource::AzureAd,
            status: UserStatus::Active,
            entra_oid: Some(oid.clone()),
            created_at: 0,
            onboarded_at: Some(0),
            last_login_at: None,
            offboarded_at: None,
            offboard_reason: None,
        };
        gatehouse::users::store::insert(&mut tx, &user)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    let entra = EntraClient::new(
        &emu.base,
        &emu.base,
        &emu.app.client_id,
        emu.app.secret.clone(),
    );
    // Reset the peak (Linux: writing 5 to clear_refs resets VmHWM), so the peak below is the
    // run's own, on top of the emulator and the client already resident.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let before = current_rss_mb();
    let started = Instant::now();
    let first = reconciler::reconcile(db, &app.state.bus, &entra, &tenant_id, Trigger::Cli, false)
        .await
        .unwrap();
    println!(
        "reconciler: first run, {} Graph requests, {} users checked, {} offboarded, {:.2} s; \
         RSS {before:.0} MB before the run (emulator and client), peak {:.0} MB during it: the run adds {:.0} MB",
        first.graph_requests,
        first.users_checked,
        first.offboarded.len(),
        started.elapsed().as_secs_f64(),
        peak_rss_mb(),
        peak_rss_mb() - before
    );
    let started = Instant::now();
    let quiet = reconciler::reconcile(db, &app.state.bus, &entra, &tenant_id, Trigger::Cli, false)
        .await
        .unwrap();
    println!(
        "reconciler: no-change run, {} Graph request(s), {:.3} s, outcome {}",
        quiet.graph_requests,
        started.elapsed().as_secs_f64(),
        quiet.outcome.as_str()
    );
}
