//! Entra benchmarks (results in BENCHMARKS.md):
//! 1. the emulator: a full `/users/delta` walk over 100 000 users, then after 1 % changed;
//! 2. the reconciler: the first run over that directory with 5 000 onboarded users, then a
//!    run without changes. Graph requests, wall time, peak RSS of this whole process
//!    (emulator, Gatehouse and the client together).
//! 3. the same with groups on (issue 16): only members of a group that holds 4 500 of them
//!    directly and 500 through a nested group may stay, admins from a group of 5; a first run
//!    (the whole directory again), a run without changes, and a run after one user left the
//!    nested group.
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
    gatehouse::reconciler::schedule::set_reconcile_schedule(
        &mut tx,
        &tenant_id,
        14_400,
        100_000,
        100,
        helpers::now(),
    )
    .await
    .unwrap();
    for (i, oid) in ids
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 100 != 0)
        .take(ONBOARDED)
    {
        let user = User {
            id: gatehouse::domain::UserId::from_outside(format!("u{i}")),
            tenant_id: tenant_id.clone(),
            email: format!("user{i}@contoso.com"),
            first_name: "B".into(),
            last_name: "U".into(),
            username: format!("msp-u{i}"),
            role: Role::Technician,
            source: UserSource::AzureAd,
            status: UserStatus::Active,
            entra_oid: Some(gatehouse::domain::EntraUserId::from_microsoft(oid.clone())),
            created_at: 0,
            onboarded_at: Some(0),
            last_login_at: None,
            offboarded_at: None,
            offboard_reason: None,
            offboard_group: None,
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
    let run = || reconciler::reconcile(db, &app.state.bus, &entra, &tenant_id, Trigger::Cli, false);
    measured("reconciler: first run", run).await;
    measured("reconciler: no-change run", run).await;

    // 3. Groups on: the onboarded users are the members of "Bench Technicians" (4 500 directly,
    //    500 through "Bench Tier 2"); the first five are also in "Bench Admins".
    let onboarded: Vec<&String> = ids
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 100 != 0)
        .take(ONBOARDED)
        .map(|(_, id)| id)
        .collect();
    let group = |name: &str, members: Vec<String>| json!({ "displayName": name, "securityEnabled": true, "members": members });
    let tier2: Vec<String> = onboarded[4_500..].iter().map(|s| s.to_string()).collect();
    let mut technicians: Vec<String> = onboarded[..4_500].iter().map(|s| s.to_string()).collect();
    technicians.push("Bench Tier 2".into());
    let admins: Vec<String> = onboarded[..5].iter().map(|s| s.to_string()).collect();
    let mut group_ids = Vec::new();
    for body in [
        group("Bench Tier 2", tier2),
        group("Bench Technicians", technicians),
        group("Bench Admins", admins),
    ] {
        let res = emu
            .control(
                reqwest::Method::POST,
                &format!(
                    "/_emulator/directories/{}/groups",
                    gatehouse_emulator::CONTOSO_TENANT_ID
                ),
                Some(body),
            )
            .await;
        assert!(res.status().is_success(), "group made: {}", res.status());
        let made: serde_json::Value = res.json().await.unwrap();
        group_ids.push(made["id"].as_str().unwrap().to_string());
    }
    let as_ref = |i: usize, name: &str| gatehouse::tenants::store::GroupRef {
        id: gatehouse::domain::GroupId::from_microsoft(group_ids[i].clone()),
        name: name.into(),
    };
    let mut tx = db.pool.begin().await.unwrap();
    gatehouse::tenants::store::set_entra_groups(
        &mut tx,
        &tenant_id,
        Some(&as_ref(1, "Bench Technicians")),
        Some(&as_ref(2, "Bench Admins")),
    )
    .await
    .unwrap();
    // The first run with groups reads the whole directory too, as after a new connection.
    gatehouse::tenants::store::forget_delta_link(&mut tx, &tenant_id)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    measured("reconciler with groups: first run (full walk)", run).await;
    measured("reconciler with groups: no-change run", run).await;
    let leaver = onboarded[4_999];
    let res = emu
        .control(
            reqwest::Method::DELETE,
            &format!(
                "/_emulator/directories/{}/groups/{}/members/{leaver}",
                gatehouse_emulator::CONTOSO_TENANT_ID,
                group_ids[0]
            ),
            None,
        )
        .await;
    assert!(res.status().is_success());
    measured(
        "reconciler with groups: one user left the nested group",
        run,
    )
    .await;
}

/// One reconcile run: its Graph requests, users checked, who it offboarded, its wall time, and
/// how much the process's peak working set grew during it (Linux: writing 5 to clear_refs
/// resets VmHWM, so the peak is the run's own, on top of the emulator and client resident).
async fn measured<F, R>(label: &str, run: F)
where
    F: Fn() -> R,
    R: std::future::Future<Output = anyhow::Result<reconciler::RunReport>>,
{
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let before = current_rss_mb();
    let started = Instant::now();
    let r = run().await.unwrap();
    println!(
        "{label}: {} Graph request(s), {} users checked, {} offboarded {:?}, {:.3} s, outcome {}; \
         RSS {before:.0} MB before, peak {:.0} MB: the run adds {:.0} MB",
        r.graph_requests,
        r.users_checked,
        r.offboarded.len(),
        r.offboarded.iter().take(3).collect::<Vec<_>>(),
        started.elapsed().as_secs_f64(),
        r.outcome.as_str(),
        peak_rss_mb(),
        peak_rss_mb() - before
    );
}
