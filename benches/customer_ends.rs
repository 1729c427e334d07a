//! Ending a technician's accounts at 100 customers (issue 29; results in BENCHMARKS.md).
//! Alex onboards by a real first scan; 100 customer directories consent to the customers app,
//! each is connected (proven with Graph), given its domain and Technicians → Helpdesk
//! Administrator, and Alex's account is opened at each. Then Alex is removed in Contoso with
//! change notifications on (the emulator delivers them as Graph does). From the removal to
//! each account ended (Microsoft confirmed the last step, recorded): p50, p95 and the longest,
//! and the time until all 100 are; and the Graph requests the ends made, per customer.
//!
//! Set up with the API tests' own harness (tests/api/helpers.rs, tests/api/emulator).
//!
//! Run: `cargo bench --features ssr --bench customer_ends`

#[allow(dead_code, unused_imports)]
#[path = "../tests/api/emulator/mod.rs"]
mod emulator;
#[allow(dead_code, unused_imports)]
#[path = "../tests/api/helpers.rs"]
mod helpers;

use gatehouse::domain::{EntraRole, EntraTenantId, JitState};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::{Duration, Instant};

const CUSTOMERS: usize = 100;
const HELPDESK_ADMINISTRATOR: &str = "729827e3-9c14-49f7-bb1b-9608f156bbb8";

#[tokio::main]
async fn main() {
    let (app, emu) = emulator::spawn_app_with_notifications().await;
    app.create_tenant("acme", "Acme MSP", "admin@acme.com")
        .await;
    let tenant_id = emulator::connect_contoso(&app, "acme").await;
    let alex = app.onboard("acme", "alex@contoso.com").await;
    let db = &app.state.db;
    // The delta link is fresh and the subscription live; only notifications bring a run.
    emulator::reconcile_now(&app, "acme").await;
    let started = Instant::now();
    while gatehouse::notifications::store::of_tenant(db, &tenant_id)
        .await
        .unwrap()
        .is_none()
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no subscription"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    gatehouse::reconciler::schedule::book_reconcile(&db.pool, &tenant_id, helpers::now() + 86_400)
        .await
        .unwrap();

    let tenant = app.tenant("acme").await;
    let admin = app.user("acme", "admin@acme.com").await;
    let entra = app
        .state
        .customers_entra
        .clone()
        .expect("the customers app");
    let user = app.user_of(&tenant_id, emulator::ALEX).await;
    let roles = [EntraRole::parse(HELPDESK_ADMINISTRATOR).unwrap()];
    let setup = Instant::now();
    for i in 0..CUSTOMERS {
        let tid = format!("c0570000-0000-4000-8000-{i:012x}");
        let domain = format!("customer{i:03}.example");
        let res = emu
            .control(
                reqwest::Method::POST,
                "/_emulator/directories",
                Some(json!({
                    "tenantId": tid, "displayName": format!("Customer {i:03}"),
                    "domains": [{ "name": domain, "isVerified": true, "isDefault": true }],
                    "users": [],
                    "consents": [{ "clientId": emu.customers_app.client_id }],
                    "temporaryAccessPass": { "state": "enabled", "defaultLifetimeInMinutes": 240,
                        "minimumLifetimeInMinutes": 15, "maximumLifetimeInMinutes": 720 }
                })),
            )
            .await;
        assert!(res.status().is_success(), "{}", res.status());
        let tid = EntraTenantId::from_microsoft(tid);
        let id =
            gatehouse::customers::store::consented(db, &tenant.id, &tid, "bench", helpers::now())
                .await
                .unwrap();
        let customer = gatehouse::customers::store::find(db, &tenant.id, &id)
            .await
            .unwrap()
            .unwrap();
        gatehouse::customers::service::prove(db, &entra, &customer)
            .await
            .expect("connected");
        let id = id.to_string();
        gatehouse::customers::service::save(db, &tenant, &admin, &id, &domain, &domain, "240")
            .await
            .unwrap();
        gatehouse::customers::service::grant(
            db,
            None,
            &tenant,
            &admin,
            &id,
            "technician",
            HELPDESK_ADMINISTRATOR,
        )
        .await
        .unwrap();
        let customer = gatehouse::customers::store::find(db, &tenant.id, &customer.id)
            .await
            .unwrap()
            .unwrap();
        gatehouse::jit::service::open(
            db,
            &entra,
            gatehouse::jit::service::Request {
                tenant: &tenant,
                customer: &customer,
                user: &user,
                roles: &roles,
                msp: app.state.entra.as_ref(),
            },
        )
        .await
        .expect("opened");
    }
    println!(
        "{CUSTOMERS} customers connected and an account opened at each in {:.1} s",
        setup.elapsed().as_secs_f64()
    );

    emu.control(reqwest::Method::DELETE, "/_emulator/requests", None)
        .await;
    let removed = Instant::now();
    emu.remove_in_entra(emulator::ALEX).await;
    let mut ended: HashMap<String, f64> = HashMap::new();
    while ended.len() < CUSTOMERS {
        assert!(
            removed.elapsed() < Duration::from_secs(180),
            "only {} of {CUSTOMERS} ended in 3 minutes",
            ended.len()
        );
        for a in gatehouse::jit::store::of_user(db, &alex.user.id)
            .await
            .unwrap()
        {
            if a.state == JitState::Ended {
                ended
                    .entry(a.upn)
                    .or_insert_with(|| removed.elapsed().as_secs_f64());
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut took: Vec<f64> = ended.into_values().collect();
    took.sort_by(f64::total_cmp);
    let rank = |p: usize| took[((p * took.len()).div_ceil(100)).max(1) - 1];
    println!("removed in Entra → account ended | p50 | p95 | longest (all {CUSTOMERS} ended)");
    println!(
        "| {:.2} s | {:.2} s | {:.2} s |",
        rank(50),
        rank(95),
        took.last().copied().unwrap_or_default()
    );
    let counts: Value = emu.counts().await;
    println!("Graph requests during the ends, per customer (all routes but Contoso's):");
    let mut total = 0;
    if let Some(map) = counts.as_object() {
        let mut routes: Vec<(&String, &Value)> = map.iter().collect();
        routes.sort_by_key(|(route, _)| route.as_str());
        for (route, n) in routes {
            let n = n.as_u64().unwrap_or(0);
            println!(
                "  {route}: {n} ({:.2} per customer)",
                n as f64 / CUSTOMERS as f64
            );
            if !route.contains("delta") && !route.contains("subscriptions") {
                total += n;
            }
        }
    }
    println!(
        "in all {total} requests outside the delta walk: {:.2} per customer",
        total as f64 / CUSTOMERS as f64
    );
}
