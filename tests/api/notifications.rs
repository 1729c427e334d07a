//! Graph change notifications at `/api/entra/notifications`: Microsoft's handshake, and what
//! a notification may and may not make Gatehouse do. Subscriptions are recorded the way
//! creating one records it (`notifications::store::record`).

use crate::emulator::{
    connect_contoso, spawn_app_with_entra, spawn_app_with_notifications, Emu, ALEX, MEGAN,
};
use crate::helpers::*;
use gatehouse::domain::SubscriptionId;
use gatehouse::notifications::receive::MOST_ITEMS_READ;
use gatehouse::notifications::store;
use gatehouse::reconciler::scheduler::{self, DEBOUNCE_SECS};
use gatehouse_emulator::CONTOSO_TENANT_ID;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const SUBSCRIPTION: &str = "7a1c0de5-0000-4000-8000-00000000beef";
const CLIENT_STATE: &str = "a-random-client-state-only-gatehouse-and-graph-know";

struct World {
    app: TestApp,
    emu: Emu,
    tenant_id: gatehouse::domain::TenantId,
    alex: Technician,
    megan: Technician,
}

/// `acme` connected to Contoso with its subscription on record, Alex and Megan onboarded and
/// signed in, and the scheduled reconciliation a day away: only a notification can bring a
/// run sooner.
async fn subscribed() -> World {
    subscribed_with(|_| {}).await
}

/// Like `subscribed`, with the configuration changed by `tweak`.
async fn subscribed_with(tweak: impl FnOnce(&mut gatehouse::server::config::Config)) -> World {
    let emu = crate::emulator::spawn_emulator().await;
    emu.grant_consent().await;
    let entra = crate::emulator::entra_config(&emu);
    let app = spawn_app_with(move |c| {
        c.entra = entra;
        tweak(c);
    })
    .await;
    app.create_tenant("acme", "Acme MSP", "admin@acme.com")
        .await;
    let tenant_id = connect_contoso(&app, "acme").await;
    let alex = app.onboard("acme", "alex@contoso.com").await;
    let megan = app.onboard("acme", "megan@contoso.com").await;
    store::record(
        &app.state.db,
        &tenant_id,
        &gatehouse::domain::EntraTenantId::from_microsoft(CONTOSO_TENANT_ID),
        &SubscriptionId::from_microsoft(SUBSCRIPTION),
        CLIENT_STATE,
        now() + 3600,
        now(),
    )
    .await
    .unwrap();
    World {
        app,
        emu,
        tenant_id,
        alex,
        megan,
    }
}

/// Microsoft delivers a notification to this instance.
async fn deliver_to(app: &TestApp, body: &Value) -> reqwest::Response {
    app.base_client()
        .post(format!(
            "http://localhost:{}/api/entra/notifications",
            app.port()
        ))
        .json(body)
        .send()
        .await
        .unwrap()
}

/// A notification as Graph sends it for a user.
fn about(oid: &str, subscription: &str, client_state: &str, tenant: &str) -> Value {
    json!({ "value": [{
        "subscriptionId": subscription,
        "subscriptionExpirationDateTime": "2026-12-01T00:00:00Z",
        "clientState": client_state,
        "changeType": "updated",
        "resource": format!("Users/{oid}"),
        "tenantId": tenant,
        "resourceData": {
            "@odata.type": "#Microsoft.Graph.User",
            "@odata.id": format!("Users/{oid}"),
            "id": oid,
            "organizationId": tenant,
        },
    }]})
}

fn genuine(oid: &str) -> Value {
    about(oid, SUBSCRIPTION, CLIENT_STATE, CONTOSO_TENANT_ID)
}

impl World {
    async fn deliver(&self, body: &Value) -> reqwest::Response {
        deliver_to(&self.app, body).await
    }

    /// Posts `body` as it is, JSON or not, where Graph delivers.
    async fn deliver_raw(&self, body: String) -> reqwest::Response {
        self.app
            .base_client()
            .post(format!(
                "http://localhost:{}/api/entra/notifications",
                self.app.port()
            ))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap()
    }

    async fn runs(&self) -> Vec<gatehouse::reconciler::api::RunRow> {
        self.view().await.runs
    }

    /// The tenant's scheduled run comes due and the scheduler takes it (as it does every
    /// 30 seconds); when that poll began.
    async fn poll(&self) -> i64 {
        let db = &self.app.state.db;
        let polled = now();
        gatehouse::reconciler::schedule::book_reconcile(&db.pool, &self.tenant_id, polled)
            .await
            .unwrap();
        let entra = self.app.state.entra.as_ref().unwrap();
        // (Should the app's own scheduler look first, it runs the tenant itself.)
        scheduler::try_once(db, &self.app.state.bus, entra)
            .await
            .unwrap();
        polled
    }

    /// The offboardings on record, with their times to the second.
    async fn offboardings(&self) -> Vec<gatehouse::users::store::Offboarding> {
        gatehouse::users::store::offboardings_since(&self.app.state.db, &self.tenant_id, 0)
            .await
            .unwrap()
    }

    /// What the Reconciliation page shows.
    async fn view(&self) -> gatehouse::reconciler::api::ReconcileView {
        gatehouse::reconciler::view(&self.app.state.db, &self.tenant_id)
            .await
            .unwrap()
    }

    async fn next_run(&self) -> Option<i64> {
        gatehouse::reconciler::schedule::reconcile_settings(&self.app.state.db, &self.tenant_id)
            .await
            .unwrap()
            .next_reconcile_at
    }

    /// Waits (up to 20 s) until the technician's browser is signed out.
    async fn until_signed_out(&self, who: &Technician) {
        let started = Instant::now();
        while self.signed_in(who).await {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "{} is still signed in",
                who.user.email
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Whether the technician's browser is still signed in.
    async fn signed_in(&self, who: &Technician) -> bool {
        who.browser.get("acme", "/home").await.status() == 200
    }
}

#[tokio::test]
async fn microsofts_handshake_gets_its_token_back_as_plain_text() {
    let (app, _emu) = spawn_app_with_entra().await;
    app.create_tenant("acme", "Acme MSP", "admin@acme.com")
        .await;
    let token = "Validation: Testing client application reachability for subscription Request-Id: 1f0c5a52-7d1e-4b8a-9f3c-0a1b2c3d4e99";
    let url = format!("http://localhost:{}/api/entra/notifications", app.port());
    let res = app
        .base_client()
        .post(&url)
        .query(&[("validationToken", token)])
        .header("content-type", "text/plain")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    assert_eq!(res.text().await.unwrap(), token, "decoded, as it was sent");
    // Only the base host answers for Gatehouse: a tenant's host does not.
    let browser = app.browser(&["acme"]);
    let res = browser
        .client
        .post(browser.url("acme", "/api/entra/notifications"))
        .query(&[("validationToken", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
}

/// Forged notifications: a guessed clientState, a subscription Gatehouse never made, the
/// right secret about another Entra tenant, and no body at all. Each is refused; no run is
/// booked, nobody signs out.
#[tokio::test]
async fn forged_notifications_are_refused_and_change_nothing() {
    let w = subscribed().await;
    w.emu.disable_in_entra(ALEX).await;
    let booked = w.next_run().await;
    for forged in [
        about(ALEX, SUBSCRIPTION, "a-guess", CONTOSO_TENANT_ID),
        about(ALEX, SUBSCRIPTION, "", CONTOSO_TENANT_ID),
        about(
            ALEX,
            "00000000-0000-4000-8000-000000000000",
            CLIENT_STATE,
            CONTOSO_TENANT_ID,
        ),
        about(
            ALEX,
            SUBSCRIPTION,
            CLIENT_STATE,
            "7d0b9a5e-0000-4000-8000-00000000f00d",
        ),
    ] {
        let res = w.deliver(&forged).await;
        assert_eq!(res.status(), 403, "{forged}");
    }
    let res = w.deliver_raw("{\"not\": \"a collection\"}".into()).await;
    assert_eq!(res.status(), 400);
    assert_eq!(w.next_run().await, booked, "no run was booked");
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(w.runs().await.is_empty(), "no run happened");
    assert!(
        w.signed_in(&w.alex).await,
        "Alex is signed in until a real run says otherwise"
    );
}

/// How many items of change notifications were refused for naming no subscription of
/// Gatehouse, in this process so far (the metric an operator watches).
fn unknown_subscription_items() -> u64 {
    gatehouse::server::telemetry::metrics_handle()
        .render()
        .lines()
        .find(|l| {
            l.starts_with("gatehouse_entra_notifications_total")
                && l.contains("outcome=\"unknown_subscription\"")
        })
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0)
}

/// Anyone can post to the notification URL. A 2 MB body of empty items (about 690 000 of
/// `{"value":[{},{},…]}`) is read only as far as a delivery is ever read: its first
/// `MOST_ITEMS_READ` items are checked and refused, the rest skipped unread (before, every
/// one was checked, counted and logged). A real delivery of that size loses nothing: its
/// genuine item books the run.
#[tokio::test]
async fn a_flood_of_made_up_items_is_read_only_so_far() {
    let w = subscribed().await;
    w.emu.disable_in_entra(ALEX).await;
    let booked = w.next_run().await;
    let before = unknown_subscription_items();
    let flood = format!("{{\"value\":[{}{{}}]}}", "{},".repeat(690_000));
    let res = w.deliver_raw(flood).await;
    assert_eq!(res.status(), 403);
    let checked = unknown_subscription_items() - before;
    // Other tests in this process may refuse a few items meanwhile.
    assert!(
        (MOST_ITEMS_READ as u64..MOST_ITEMS_READ as u64 + 100).contains(&checked),
        "{checked} items were checked"
    );
    assert_eq!(w.next_run().await, booked, "no run was booked");

    let mut big = genuine(ALEX);
    let items = big["value"].as_array_mut().unwrap();
    items.extend(std::iter::repeat_n(json!({}), 5 * MOST_ITEMS_READ));
    assert_eq!(w.deliver(&big).await.status(), 202);
    w.until_signed_out(&w.alex).await;
}

/// Anyone can post made-up deliveries, each costing look-ups. A network whose deliveries are
/// refused again and again is answered 429 unread for the rest of the minute; another
/// network's genuine delivery still ends Alex's access at once, and genuine deliveries never
/// count against their own network.
#[tokio::test]
async fn a_network_that_keeps_sending_refused_deliveries_is_not_read_for_a_while() {
    let w = subscribed_with(|c| {
        c.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
        c.limits.refused_notifications_per_ip = 5;
    })
    .await;
    let from = |ip: &'static str, body: Value| {
        w.app
            .base_client()
            .post(format!(
                "http://localhost:{}/api/entra/notifications",
                w.app.port()
            ))
            .header("x-forwarded-for", ip)
            .json(&body)
            .send()
    };
    let forged = || about(ALEX, "made-up", "guess", CONTOSO_TENANT_ID);
    for _ in 0..5 {
        let res = from("2001:db8:66::1", forged()).await.unwrap();
        assert_eq!(res.status(), 403);
    }
    // The same /64, by another address: not read.
    let res = from("2001:db8:66::beef", forged()).await.unwrap();
    assert_eq!(res.status(), 429);
    let wait: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    let res = from("2001:db8:66::2", genuine(ALEX)).await.unwrap();
    assert_eq!(
        res.status(),
        429,
        "nothing from that network is read this minute"
    );

    // Microsoft, elsewhere, is heard: its genuine deliveries, however many, never count.
    w.emu.disable_in_entra(ALEX).await;
    for _ in 0..8 {
        let res = from("203.0.113.7", genuine(ALEX)).await.unwrap();
        assert_eq!(res.status(), 202);
    }
    w.until_signed_out(&w.alex).await;
}

/// A thousand connections that trickle their headers (slowloris) are held open while a
/// technician signs in and Microsoft's notification ends Alex's access; then each is closed
/// for not finishing its headers in time, and past the connection limit a new connection is
/// closed before it is read.
#[tokio::test]
async fn a_thousand_slow_connections_stop_neither_sign_ins_nor_notifications() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const SLOW: usize = 1000;
    let w = subscribed_with(|c| {
        c.connections.header_timeout = Duration::from_secs(15);
        c.connections.max = SLOW + 100;
    })
    .await;
    let mut slow = Vec::with_capacity(SLOW);
    for _ in 0..SLOW {
        let mut c = tokio::net::TcpStream::connect(w.app.addr).await.unwrap();
        c.write_all(b"GET / HTTP/1.1\r\nHost: acme.localhost\r\nX-Slow: ")
            .await
            .unwrap();
        slow.push(c);
    }
    let opened = Instant::now();
    // They keep trickling while the others are served.
    for c in slow.iter_mut() {
        c.write_all(b"a").await.unwrap();
    }
    let megan_again = w.app.onboard("acme", "megan@contoso.com").await;
    assert!(w.signed_in(&megan_again).await);
    w.emu.disable_in_entra(ALEX).await;
    assert_eq!(w.deliver(&genuine(ALEX)).await.status(), 202);
    w.until_signed_out(&w.alex).await;
    assert!(
        opened.elapsed() < Duration::from_secs(15),
        "the slow connections were still open meanwhile"
    );

    // Past the limit (the slow ones, and the test's own), a new connection is closed unread.
    let mut extra = Vec::new();
    for _ in 0..150 {
        extra.push(tokio::net::TcpStream::connect(w.app.addr).await.unwrap());
    }
    let mut closed_at_once = 0;
    for c in extra.iter_mut() {
        let mut buf = [0u8; 1];
        if let Ok(Ok(0)) = tokio::time::timeout(Duration::from_millis(200), c.read(&mut buf)).await
        {
            closed_at_once += 1;
        }
    }
    assert!(
        closed_at_once > 0,
        "no connection past the limit was closed"
    );
    drop(extra);

    // Each slow connection is closed for not finishing its headers in time.
    for (i, c) in slow.iter_mut().enumerate() {
        let mut buf = [0u8; 256];
        let ended = tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                match c.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        })
        .await;
        assert!(ended.is_ok(), "slow connection {i} is still open");
    }
    assert!(w.signed_in(&megan_again).await, "service goes on");
}

/// Alex is disabled in Entra; the scheduled run is a day away. Microsoft's notification
/// alone ends Alex's sessions within seconds, through a run recorded as the notification's.
#[tokio::test]
async fn a_notification_ends_a_disabled_users_sessions_within_seconds() {
    let w = subscribed().await;
    w.emu.disable_in_entra(ALEX).await;
    let res = w.deliver(&genuine(ALEX)).await;
    assert_eq!(res.status(), 202);
    w.until_signed_out(&w.alex).await;
    assert!(w.signed_in(&w.megan).await, "Megan was not touched");
    let runs = w.runs().await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0].trigger, "notification");
    assert_eq!(runs[0].offboarded, 1);
    // A replay of the same notification finds nothing new: nobody else goes.
    assert_eq!(w.deliver(&genuine(ALEX)).await.status(), 202);
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(w.signed_in(&w.megan).await);
    assert!(w.runs().await.iter().all(|r| r.offboarded <= 1));
    assert_eq!(w.app.audited("user.offboarded").await, 1);
}

/// The Reconciliation page tells how long Alex's offboarding took from the notification's
/// arrival (not from the run it brought, which waits out the debounce), and `/metrics`
/// counts it in the seen → access ended histogram.
#[tokio::test]
async fn the_time_to_revoke_counts_from_the_notification() {
    let w = subscribed().await;
    w.emu.remove_in_entra(ALEX).await;
    let delivered = now();
    assert_eq!(w.deliver(&genuine(ALEX)).await.status(), 202);
    w.until_signed_out(&w.alex).await;
    let view = w.view().await;
    let [alex] = &view.offboardings[..] else {
        panic!("one offboarding: {:?}", view.offboardings);
    };
    assert_eq!(alex.user, "msp-alex <alex@contoso.com>");
    let recorded = &w.offboardings().await[0];
    assert!(
        (delivered..=delivered + 1).contains(&recorded.seen_at),
        "first seen when the notification arrived ({delivered}): {recorded:?}"
    );
    assert!(
        seconds(&alex.decided_after) >= DEBOUNCE_SECS,
        "the run decided after the debounce, counted from the notification: {alex:?}"
    );
    let ended = alex.ended_after.as_deref().expect("access has ended");
    assert!(seconds(ended) >= seconds(&alex.decided_after) && seconds(ended) <= 10);
    let t = view.time_to_revoke.expect("one offboarding to measure");
    assert_eq!((t.count, t.p50.as_str()), (1, &ended[1..]));
    let metrics = w.app.state.metrics.render();
    assert!(
        metrics.contains("gatehouse_offboarding_seconds_bucket{le=\"10\"}"),
        "{metrics}"
    );
}

/// Microsoft's notification about Megan never arrives (lost, or Gatehouse was down): the next
/// scheduled run finds her gone all the same, and her timeline starts with that run.
#[tokio::test]
async fn a_lost_notification_is_caught_by_the_next_poll() {
    let w = subscribed().await;
    w.emu.remove_in_entra(MEGAN).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(w.signed_in(&w.megan).await, "nothing happens without a run");
    let polled = w.poll().await;
    w.until_signed_out(&w.megan).await;
    let runs = w.runs().await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(
        (runs[0].trigger.as_str(), runs[0].offboarded),
        ("schedule", 1)
    );
    let view = w.view().await;
    let [megan] = &view.offboardings[..] else {
        panic!("one offboarding: {:?}", view.offboardings);
    };
    assert!(megan.user.contains("megan@contoso.com"));
    assert!(w.offboardings().await[0].seen_at >= polled);
    assert!(w.signed_in(&w.alex).await);
}

/// A notification about Alex that was not an offboarding (a new phone number) is covered by
/// the run it brings; when Alex is removed a week later, his timeline starts then, not at the
/// old notification.
#[tokio::test]
async fn a_harmless_notification_does_not_date_a_later_offboarding() {
    let w = subscribed().await;
    w.emu
        .patch_in_entra(ALEX, json!({ "mobilePhone": "+1 555 0100" }))
        .await;
    assert_eq!(w.deliver(&genuine(ALEX)).await.status(), 202);
    let started = Instant::now();
    while w.runs().await.is_empty() {
        assert!(started.elapsed() < Duration::from_secs(15), "no run came");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        w.signed_in(&w.alex).await,
        "a new phone number offboards nobody"
    );
    w.emu.remove_in_entra(ALEX).await;
    let polled = w.poll().await;
    w.until_signed_out(&w.alex).await;
    let alex = &w.offboardings().await[0];
    assert!(
        alex.seen_at >= polled,
        "first seen by the poll ({polled}), not by the old notification: {alex:?}"
    );
}

/// Where Microsoft notifies Gatehouse within seconds, the poll is a safety net: an admin
/// asking for a check every minute is told why not, and the schedule stays as it was.
#[tokio::test]
async fn with_change_notifications_the_poll_stays_at_five_minutes_or_more() {
    let (app, _emu) = spawn_app_with_notifications().await;
    app.create_tenant("acme", "Acme MSP", "admin@acme.com")
        .await;
    let phone = app.phone_with_email("admin@acme.com").await;
    let admin = app.browser(&["acme"]);
    sign_in(&app, &admin, &phone, "acme").await;
    let tenant_id = connect_contoso(&app, "acme").await;
    let (status, message) = save_schedule(&admin, "1", "5", "20").await;
    assert_eq!(status, 400);
    assert!(
        message.contains("from 5 to 1440") && message.contains("within seconds"),
        "{message}"
    );
    let interval = || async {
        gatehouse::reconciler::schedule::reconcile_settings(&app.state.db, &tenant_id)
            .await
            .unwrap()
            .offboard_interval_secs
    };
    assert_eq!(interval().await, 4 * 3600, "unchanged");
    assert_eq!(save_schedule(&admin, "5", "5", "20").await.0, 200);
    assert_eq!(interval().await, 300);
}

/// "+4 s" → 4; "+1 min 5 s" → 65.
fn seconds(after: &str) -> i64 {
    let words: Vec<&str> = after.trim_start_matches('+').split(' ').collect();
    words
        .chunks(2)
        .map(|pair| {
            let n: i64 = pair[0].parse().unwrap();
            n * match pair[1] {
                "s" => 1,
                "min" => 60,
                "h" => 3600,
                other => panic!("unit {other}"),
            }
        })
        .sum()
}

/// Two hundred notifications within a second (an admin removing people in bulk, or Microsoft
/// repeating itself) are one run.
#[tokio::test]
async fn a_burst_of_notifications_is_one_run() {
    let w = subscribed().await;
    w.emu.remove_in_entra(MEGAN).await;
    let notification = genuine(MEGAN);
    let deliveries = (0..200).map(|_| w.deliver(&notification));
    let answers = futures::future::join_all(deliveries).await;
    assert!(answers.iter().all(|a| a.status() == 202));
    w.until_signed_out(&w.megan).await;
    // Past the debounce and a scheduler's wake-up, still one run.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let runs = w.runs().await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert!(w.signed_in(&w.alex).await);
}

/// Two instances behind one load balancer, on one database: Microsoft's deliveries land on
/// either, and the one that receives a notification may not be the one holding the tenant's
/// lease. A burst spread over both is one run; a notification arriving while the other
/// instance holds the lease (as the subscription's upkeep does) is not lost: exactly one run
/// follows once the lease is free.
#[tokio::test]
async fn notifications_landing_on_either_instance_make_exactly_one_run() {
    let w = subscribed().await;
    let other = w.app.twin().await;
    w.emu.remove_in_entra(MEGAN).await;
    let notification = genuine(MEGAN);
    let deliveries = (0..100).flat_map(|_| {
        [
            deliver_to(&w.app, &notification),
            deliver_to(&other, &notification),
        ]
    });
    let answers = futures::future::join_all(deliveries).await;
    assert!(answers.iter().all(|a| a.status() == 202));
    w.until_signed_out(&w.megan).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let runs = w.runs().await;
    assert_eq!(runs.len(), 1, "{runs:?}");

    let lease = gatehouse::reconciler::lease::Lease::acquire(&w.app.state.db, &w.tenant_id)
        .await
        .unwrap()
        .expect("the lease is free");
    w.emu.disable_in_entra(ALEX).await;
    assert_eq!(deliver_to(&other, &genuine(ALEX)).await.status(), 202);
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(
        w.signed_in(&w.alex).await,
        "nobody runs while the lease is held"
    );
    assert_eq!(
        w.runs().await.len(),
        1,
        "a run that could not start is not recorded"
    );
    lease.release().await;
    w.until_signed_out(&w.alex).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let runs = w.runs().await;
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert_eq!(
        (runs[0].trigger.as_str(), runs[0].offboarded),
        ("notification", 1)
    );
}

/// Waits (up to 15 s) until the tenant's subscription on record is not `previous`; the new one.
async fn subscription_other_than(
    app: &TestApp,
    tenant_id: &gatehouse::domain::TenantId,
    previous: Option<&SubscriptionId>,
) -> Option<store::Subscription> {
    let started = Instant::now();
    loop {
        let now_on_record = store::of_tenant(&app.state.db, tenant_id).await.unwrap();
        if now_on_record.as_ref().map(|s| &s.subscription_id) != previous {
            return now_on_record;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the subscription on record is still {previous:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `acme` connected to Contoso on an app that subscribes for real (the emulator delivers), once
/// its subscription is on record.
async fn connected_and_subscribed() -> (
    TestApp,
    Emu,
    gatehouse::domain::TenantId,
    store::Subscription,
) {
    let (app, emu) = crate::emulator::spawn_app_with_notifications().await;
    app.create_tenant("acme", "Acme MSP", "admin@acme.com")
        .await;
    let tenant_id = connect_contoso(&app, "acme").await;
    let sub = subscription_other_than(&app, &tenant_id, None)
        .await
        .expect("a subscription");
    (app, emu, tenant_id, sub)
}

/// The keeper makes a pass now, as its hourly pass would, brought forward (it passes when a
/// tenant changes).
async fn keeper_passes(app: &TestApp, tenant_id: &gatehouse::domain::TenantId) {
    app.state
        .bus
        .publish(gatehouse::server::bus::Event::TenantChanged {
            tenant_id: tenant_id.clone(),
        })
        .await;
}

/// The subscription on record now expires at `at`, and the keeper looks (as its hourly pass
/// would, brought forward).
async fn expires_at(
    app: &TestApp,
    tenant_id: &gatehouse::domain::TenantId,
    subscription_id: &SubscriptionId,
    at: i64,
) {
    store::renewed(&app.state.db, subscription_id, at)
        .await
        .unwrap();
    keeper_passes(app, tenant_id).await;
}

/// The subscriptions Graph holds for Gatehouse's app in Contoso.
async fn at_microsoft(emu: &Emu) -> Vec<Value> {
    let token = emu.app_token().await;
    let (status, _, body) = emu.graph(&token, "/v1.0/subscriptions").await;
    assert_eq!(status, 200, "{body}");
    body["value"].as_array().cloned().unwrap_or_default()
}

/// The whole path with Microsoft's side played by the emulator: connecting the tenant
/// subscribes (Graph's handshake on both URLs passes), and deleting Alex in Entra signs his
/// browser out by itself, polling a day away.
#[tokio::test]
async fn connecting_subscribes_and_a_deletion_in_entra_signs_the_user_out_by_itself() {
    let (app, emu, tenant_id, sub) = connected_and_subscribed().await;
    let listed = at_microsoft(&emu).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["id"], sub.subscription_id.as_str());
    assert_eq!(listed[0]["resource"], "users");
    assert_eq!(listed[0]["changeType"], "updated,deleted");
    assert!(
        sub.expires_at > now() + 20 * 86_400,
        "asked for Microsoft's longest lifetime"
    );
    let alex = app.onboard("acme", "alex@contoso.com").await;
    let megan = app.onboard("acme", "megan@contoso.com").await;
    emu.remove_in_entra(ALEX).await;
    let started = Instant::now();
    while alex.browser.get("acme", "/home").await.status() == 200 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "Alex is still signed in"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(megan.browser.get("acme", "/home").await.status(), 200);
    let runs = gatehouse::reconciler::view(&app.state.db, &tenant_id)
        .await
        .unwrap()
        .runs;
    assert_eq!(runs[0].trigger, "notification", "{runs:?}");
    let heard = store::of_tenant(&app.state.db, &tenant_id).await.unwrap();
    assert!(heard.and_then(|s| s.last_notification_at).is_some());
    let page = gatehouse::reconciler::view(&app.state.db, &tenant_id)
        .await
        .unwrap();
    let live = page
        .notifications
        .expect("the page says notifications are live");
    assert_eq!(live.subscription, sub.subscription_id.as_str());
    assert!(live.last_heard.is_some(), "and when Microsoft last spoke");
}

/// Days before it would lapse, the subscription is renewed (the same one, a new expiry).
#[tokio::test]
async fn a_subscription_is_renewed_days_before_it_expires() {
    let (app, emu, tenant_id, sub) = connected_and_subscribed().await;
    // Two days left, as after four weeks: the next pass renews it.
    expires_at(&app, &tenant_id, &sub.subscription_id, now() + 2 * 86_400).await;
    let started = Instant::now();
    loop {
        let kept = store::of_tenant(&app.state.db, &tenant_id)
            .await
            .unwrap()
            .expect("still subscribed");
        if kept.expires_at > now() + 20 * 86_400 {
            assert_eq!(
                kept.subscription_id, sub.subscription_id,
                "renewed, not replaced"
            );
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(15), "not renewed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(emu.counts().await["PATCH /v1.0/subscriptions/{id}"], 1);
    assert_eq!(at_microsoft(&emu).await.len(), 1);
}

/// Microsoft's `reauthorizationRequired` lifecycle event renews the subscription at once.
#[tokio::test]
async fn a_reauthorization_request_renews_the_subscription() {
    let (app, emu, tenant_id, sub) = connected_and_subscribed().await;
    let res = emu
        .control(
            reqwest::Method::POST,
            &format!("/_emulator/subscriptions/{}/lifecycle", sub.subscription_id),
            Some(json!({"event": "reauthorizationRequired"})),
        )
        .await;
    assert!(res.status().is_success(), "{}", res.text().await.unwrap());
    let started = Instant::now();
    while emu.counts().await["PATCH /v1.0/subscriptions/{id}"].as_u64() != Some(1) {
        assert!(started.elapsed() < Duration::from_secs(15), "not renewed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let kept = subscription_other_than(&app, &tenant_id, None)
        .await
        .expect("still subscribed");
    assert_eq!(
        kept.subscription_id, sub.subscription_id,
        "the same one, renewed"
    );
}

/// A subscription Microsoft no longer has (expired, or removed) is made anew at its next
/// renewal; a tenant that goes back to its own directory ends its subscription at Microsoft.
#[tokio::test]
async fn a_lost_subscription_is_made_anew_and_disconnecting_ends_it() {
    let (app, emu, tenant_id, first) = connected_and_subscribed().await;
    emu.drop_subscription(first.subscription_id.as_str()).await;
    // Its renewal comes due (the hourly pass, brought forward).
    expires_at(&app, &tenant_id, &first.subscription_id, 0).await;
    let second = subscription_other_than(&app, &tenant_id, Some(&first.subscription_id))
        .await
        .expect("a new subscription");
    let listed = at_microsoft(&emu).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["id"], second.subscription_id.as_str());

    // The tenant goes back to its own directory.
    let db = &app.state.db;
    let mut tx = db.pool.begin().await.unwrap();
    gatehouse::tenants::store::use_local_directory(
        &mut tx,
        &tenant_id,
        &gatehouse::domain::UsernamePrefix::default(),
    )
    .await
    .unwrap();
    let changed = gatehouse::server::bus::Event::TenantChanged {
        tenant_id: tenant_id.clone(),
    };
    app.state.bus.commit_and_publish(tx, changed).await.unwrap();
    assert!(
        subscription_other_than(&app, &tenant_id, Some(&second.subscription_id))
            .await
            .is_none(),
        "forgotten here"
    );
    assert!(at_microsoft(&emu).await.is_empty(), "ended at Microsoft");
}

/// Microsoft removes a subscription on users without a word (no lifecycle event for users):
/// the keeper's hourly look finds it gone and makes a new one; a subscription still there is
/// left as it is.
#[tokio::test]
async fn the_hourly_look_finds_a_subscription_microsoft_dropped_silently() {
    let (app, emu, tenant_id, first) = connected_and_subscribed().await;
    // An hour passes: the look finds it there and leaves it.
    let an_hour_ago = looked_at_an_hour_ago(&app, &tenant_id, &first.subscription_id).await;
    let started = Instant::now();
    loop {
        let now_on_record = store::of_tenant(&app.state.db, &tenant_id)
            .await
            .unwrap()
            .expect("still on record");
        assert_eq!(now_on_record.subscription_id, first.subscription_id);
        if now_on_record.checked_at > an_hour_ago + 60 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "never looked at"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(at_microsoft(&emu).await.len(), 1);

    // Microsoft drops it; its expiry is weeks away, so only the look can tell.
    emu.drop_subscription(first.subscription_id.as_str()).await;
    looked_at_an_hour_ago(&app, &tenant_id, &first.subscription_id).await;
    let second = subscription_other_than(&app, &tenant_id, Some(&first.subscription_id))
        .await
        .expect("a new subscription");
    let listed = at_microsoft(&emu).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["id"], second.subscription_id.as_str());
}

/// Graph was last asked about the subscription an hour ago, and the keeper passes (as its
/// hourly pass would, brought forward). Returns that hour ago.
async fn looked_at_an_hour_ago(
    app: &TestApp,
    tenant_id: &gatehouse::domain::TenantId,
    subscription_id: &SubscriptionId,
) -> i64 {
    let an_hour_ago = now() - 3600;
    store::checked(&app.state.db, subscription_id, an_hour_ago)
        .await
        .unwrap();
    keeper_passes(app, tenant_id).await;
    an_hour_ago
}

/// Consent withdrawn in the customer's Entra tenant: no subscription can be made, and the
/// tenant's health says so, as a failed run would.
#[tokio::test]
async fn a_tenant_whose_consent_is_gone_is_told_so_and_nothing_is_subscribed() {
    let (app, emu) = crate::emulator::spawn_app_with_notifications().await;
    app.create_tenant("acme", "Acme MSP", "admin@acme.com")
        .await;
    emu.revoke_consent().await;
    let tenant_id = connect_contoso(&app, "acme").await;
    let started = Instant::now();
    while app.entra_health(&tenant_id).await != Some(gatehouse::domain::EntraHealth::ConsentRevoked)
    {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "health: {:?}",
            app.entra_health(&tenant_id).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(store::of_tenant(&app.state.db, &tenant_id)
        .await
        .unwrap()
        .is_none());
    assert!(gatehouse::reconciler::view(&app.state.db, &tenant_id)
        .await
        .unwrap()
        .notifications
        .is_none());
}

/// The admin reconnects Acme from Contoso to Tailspin Toys. The subscription in Contoso is ended
/// there (its notifications would be refused for up to 29 days), and one is made in
/// Tailspin Toys.
#[tokio::test]
async fn reconnecting_to_another_entra_tenant_ends_the_subscription_in_the_first() {
    const TAILSPIN: &str = "3c9e1f42-7d6a-4b1e-9f2c-5a8d0e4b7c61";
    let (app, emu, tenant_id, old) = connected_and_subscribed().await;
    let res = emu
        .control(
            reqwest::Method::POST,
            "/_emulator/directories",
            Some(json!({
                "tenantId": TAILSPIN, "displayName": "Tailspin Toys",
                "domains": [{ "name": "tailspintoys.com", "isVerified": true, "isDefault": true }],
                "users": [],
                "consents": [{ "clientId": emu.app.client_id,
                    "roles": ["User.Read.All", "Domain.Read.All", "GroupMember.Read.All"] }]
            })),
        )
        .await;
    assert!(res.status().is_success(), "{}", res.status());
    let contoso_token = emu.app_token().await;
    let path = format!("/v1.0/subscriptions/{}", old.subscription_id);
    let (status, _, _) = emu.graph(&contoso_token, &path).await;
    assert_eq!(status, 200, "Contoso has the subscription");

    // Reconnected as saving the User source page does.
    let db = &app.state.db;
    let prefix = gatehouse::domain::UsernamePrefix::parse("msp-", false).unwrap();
    let mut tx = db.pool.begin().await.unwrap();
    gatehouse::tenants::store::connect_entra(
        &mut tx,
        &tenant_id,
        &gatehouse::tenants::store::EntraConnection {
            prefix: &prefix,
            entra_tenant_id: &gatehouse::domain::EntraTenantId::from_microsoft(TAILSPIN),
            domain: "tailspintoys.com",
            org_name: "Tailspin Toys",
            by: "the test",
            at: now(),
        },
    )
    .await
    .unwrap();
    let changed = gatehouse::server::bus::Event::TenantChanged {
        tenant_id: tenant_id.clone(),
    };
    app.state.bus.commit_and_publish(tx, changed).await.unwrap();

    let new = subscription_other_than(&app, &tenant_id, Some(&old.subscription_id))
        .await
        .expect("a subscription in Tailspin Toys");
    assert_eq!(
        new.made_in.as_ref().map(|t| t.to_string()),
        Some(TAILSPIN.to_string())
    );
    let (status, _, _) = emu.graph(&contoso_token, &path).await;
    assert_eq!(status, 404, "the subscription in Contoso was ended");
}
