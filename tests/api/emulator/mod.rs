//! The Entra emulator as Gatehouse's tests use it: one of its own per test, and the control API.
//! The emulator's own tests (its endpoints against Microsoft's documentation) are in
//! emulator/tests.

#[cfg(test)]
mod cli;

pub use gatehouse_emulator::testing::{spawn_emulator, Emu, ALEX, ISAIAH, MEGAN, PATTI};

use crate::helpers::{spawn_app_with, TestApp};
use gatehouse::domain::UsernamePrefix;
use gatehouse::server::config::EntraConfig;
use gatehouse::tenants::store as tenants;

/// Gatehouse's Entra app as registered in the emulator `emu` (with its client secret).
pub fn entra_config(emu: &Emu) -> EntraConfig {
    EntraConfig {
        client_id: Some(emu.app.client_id.clone()),
        client_secret: Some(emu.app.secret.clone()),
        client_certificate: None,
        authority_url: emu.base.clone(),
        graph_base_url: emu.base.clone(),
        customers_client_id: Some(emu.customers_app.client_id.clone()),
        customers_client_secret: Some(emu.customers_app.secret.clone()),
    }
}

/// Gatehouse with its Entra app on an emulator of its own, admin consent granted in Contoso.
pub async fn spawn_app_with_entra() -> (TestApp, Emu) {
    let emu = spawn_emulator().await;
    emu.grant_consent().await;
    let entra = entra_config(&emu);
    (spawn_app_with(move |c| c.entra = entra).await, emu)
}

/// Connects tenant `slug` to Contoso the way saving the User source page does (domain
/// contoso.com, prefix `msp-`; every replica hears of it), and books its scheduled reconcile
/// a day out: tests start every run themselves. Returns the tenant's id.
pub async fn connect_contoso(app: &TestApp, slug: &str) -> gatehouse::domain::TenantId {
    let db = &app.state.db;
    let tenant = tenants::find_by_slug(db, slug)
        .await
        .unwrap()
        .expect("the tenant exists");
    let prefix = UsernamePrefix::parse("msp-", false).unwrap();
    let mut tx = db.pool.begin().await.unwrap();
    tenants::connect_entra(
        &mut tx,
        &tenant.id,
        &tenants::EntraConnection {
            prefix: &prefix,
            entra_tenant_id: &gatehouse::domain::EntraTenantId::from_microsoft(
                gatehouse_emulator::CONTOSO_TENANT_ID,
            ),
            domain: "contoso.com",
            org_name: "Contoso",
            by: "the test set-up",
            at: crate::helpers::now(),
        },
    )
    .await
    .unwrap();
    // The run a connection makes due at once is booked a day away in the same transaction,
    // before any scheduler can see it: a test's runs are the ones it starts.
    gatehouse::reconciler::schedule::book_reconcile(
        &mut *tx,
        &tenant.id,
        crate::helpers::now() + 86_400,
    )
    .await
    .unwrap();
    let changed = gatehouse::server::bus::Event::TenantChanged {
        tenant_id: tenant.id.clone(),
    };
    app.state.bus.commit_and_publish(tx, changed).await.unwrap();
    tenant.id
}

/// A manual reconcile of tenant `slug` with the app's own Entra client, as "Sync now" starts
/// one; its report.
pub async fn reconcile_now(app: &TestApp, slug: &str) -> gatehouse::reconciler::RunReport {
    let tenant = app.tenant(slug).await;
    let entra = app
        .state
        .entra
        .clone()
        .expect("the Entra app is configured");
    gatehouse::reconciler::reconcile(
        &app.state.db,
        &app.state.bus,
        &entra,
        &tenant.id,
        gatehouse::reconciler::Trigger::Manual,
        false,
    )
    .await
    .expect("the run was recorded")
}

/// Gatehouse with its Entra app on an emulator of its own, subscribing to change
/// notifications: its public URL is its own loopback address (picked before it starts, so the
/// emulator can deliver there), over plain http as only the emulator allows.
pub async fn spawn_app_with_notifications() -> (TestApp, Emu) {
    let emu = spawn_emulator().await;
    emu.grant_consent().await;
    let entra = entra_config(&emu);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let app = spawn_app_with(move |c| {
        c.entra = entra;
        c.listen = ([127, 0, 0, 1], port).into();
        c.public_url = format!("http://localhost:{port}");
        c.notify_over_http = true;
    })
    .await;
    (app, emu)
}
