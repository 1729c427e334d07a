//! The benchmark: a full `/users/delta` walk over 100 000 users, then the same after
//! 1 % of them changed. Ignored by default (slow in debug builds); run with
//! `cargo test --release --features ssr --test api benchmark -- --ignored --nocapture`.

use super::*;
use serde_json::json;
use std::time::Instant;

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
        })
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

async fn walk(emu: &Emu, token: &str, start: &str) -> (usize, usize, String) {
    let (mut items, mut pages) = (0, 0);
    let mut url = start.to_string();
    loop {
        let (status, _, body) = emu.graph(token, &url).await;
        assert_eq!(status, 200);
        pages += 1;
        items += body["value"].as_array().unwrap().len();
        match body["@odata.nextLink"].as_str() {
            Some(next) => url = next.to_string(),
            None => {
                return (
                    items,
                    pages,
                    body["@odata.deltaLink"].as_str().unwrap().to_string(),
                )
            }
        }
    }
}

#[tokio::test]
#[ignore]
async fn benchmark_a_delta_walk_over_100_000_users() {
    let emu = spawn_emulator().await;
    let token = emu.app_token().await;
    let started = Instant::now();
    let res = emu
        .control(
            reqwest::Method::POST,
            &format!("/_emulator/directories/{CONTOSO_TENANT_ID}/users/generate"),
            Some(json!({"count": 100_000})),
        )
        .await;
    assert_eq!(res.status(), 201);
    println!("generate 100 000 users: {:?}", started.elapsed());

    let started = Instant::now();
    let (items, pages, link) = walk(
        &emu,
        &token,
        "/v1.0/users/delta?$select=id,accountEnabled,userPrincipalName,mail",
    )
    .await;
    println!(
        "full walk: {items} users, {pages} pages, {:?}, peak RSS {:.0} MB",
        started.elapsed(),
        peak_rss_mb()
    );
    assert_eq!(items, 100_006);

    // 1 %: disable every hundredth synthetic user.
    let mut changed = 0;
    let mut url = Some("/v1.0/users?$top=999&$select=id".to_string());
    let mut n = 0usize;
    while let Some(u) = url {
        let (_, _, body) = emu.graph(&token, &u).await;
        for user in body["value"].as_array().unwrap() {
            n += 1;
            if n.is_multiple_of(100) {
                let id = user["id"].as_str().unwrap();
                let res = emu
                    .control(
                        reqwest::Method::POST,
                        &format!("/_emulator/directories/{CONTOSO_TENANT_ID}/users/{id}/disable"),
                        None,
                    )
                    .await;
                assert_eq!(res.status(), 200);
                changed += 1;
            }
        }
        url = body["@odata.nextLink"].as_str().map(String::from);
    }
    let started = Instant::now();
    let (items, pages, _) = walk(&emu, &token, &link).await;
    println!(
        "1 % changed ({changed}): {items} users, {pages} pages, {:?}, peak RSS {:.0} MB",
        started.elapsed(),
        peak_rss_mb()
    );
    assert_eq!(items, changed);
}
