//! Partner sharing benchmark (issue 17), release build, on PostgreSQL: the first
//! pull (sync schema 2) of a person holding 1,000 boundaries of their own and
//! 1,000 items their partner shares, p50/p99, next to the same person's pull
//! before the partner shared anything (1,000 own) and a person with 2,000 own
//! (the same number of rows, no partner), measured in the same run.
//!
//! Run: `cargo bench -p attune-tests --bench partners`.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a benchmark: failing loudly is right")]

use std::time::Duration;

use attune_tests::bench_support::{
    BenchDatabase, build_release_binaries, command, first_pull_latencies, free_port, register, start_until_ready,
};
use serde_json::{Value, json};

const ROUNDS: usize = 50;
const ITEMS: usize = 1_000;

fn boundary(prefix: &str, n: usize, shared: bool) -> Value {
    json!({"id": format!("{prefix}{n:06}"), "kind": "emotional", "shared_with_partner": shared, "active": true,
           "text": "Ask before a hug when I have had a long day, and take a no as a kindness, not a rejection."})
}

async fn push_boundaries(client: &reqwest::Client, base: &str, token: &str, prefix: &str, count: usize, shared: bool) {
    for start in (0..count).step_by(250) {
        let records: Vec<Value> = (start..(start + 250).min(count)).map(|n| boundary(prefix, n, shared)).collect();
        let body = json!({"changes": {"boundaries": {"created": records, "updated": [], "deleted": []}}});
        let response = client
            .post(format!("{base}/v1/sync?last_pulled_at=0"))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    }
}

/// (p50, p99) of the first pull at schema 2, checking what it holds, after
/// one pull that warms the caches (the first of a run is an outlier).
async fn pulls(base: &str, token: &str, own: usize, partner: usize) -> (Duration, Duration) {
    first_pull_latencies(base, token, "&schema_version=2&migration=null", 1, |_| {}).await;
    let latencies = first_pull_latencies(base, token, "&schema_version=2&migration=null", ROUNDS, |body| {
        let count = |table: &str| body["changes"][table]["updated"].as_array().unwrap().len();
        assert_eq!((count("boundaries"), count("partner_items")), (own, partner));
    })
    .await;
    (latencies.served.p50, latencies.served.p99)
}

fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    build_release_binaries();
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap().block_on(run());
}

async fn run() {
    println!("attune partner sharing benchmark · release build · PostgreSQL · first pull, sync schema 2");
    let dir = tempfile::tempdir().unwrap();
    let database = BenchDatabase::create().await;
    let port = free_port();
    let env = database.scaled_env(port, dir.path());
    assert!(command("attune-api", &env).arg("migrate").status().unwrap().success());
    let (api, _) = start_until_ready(command("attune-api", &env), port).await;
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();

    let (ana, _) = register(&base, "ana@example.org").await;
    let (ben, _) = register(&base, "ben@example.org").await;
    let (solo, _) = register(&base, "solo@example.org").await;
    push_boundaries(&client, &base, &ana, "own", ITEMS, false).await;
    push_boundaries(&client, &base, &solo, "own", 2 * ITEMS, false).await;
    let alone = pulls(&base, &ana, ITEMS, 0).await;

    let invitation: Value = client
        .post(format!("{base}/v1/partner/invitations"))
        .bearer_auth(&ana)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let code = invitation["code"].as_str().unwrap();
    let accept = client.post(format!("{base}/v1/partner/invitations/{code}/accept")).bearer_auth(&ben);
    assert_eq!(accept.send().await.unwrap().status(), 201);
    push_boundaries(&client, &base, &ben, "shared", ITEMS, true).await;
    let with_partner = pulls(&base, &ana, ITEMS, ITEMS).await;
    let same_rows = pulls(&base, &solo, 2 * ITEMS, 0).await;
    drop(api);
    database.drop_database().await;

    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!("first pull ({ROUNDS} rounds each)");
    for (label, (p50, p99)) in [
        ("1,000 own, no partner            ", alone),
        ("1,000 own + 1,000 partner items  ", with_partner),
        ("2,000 own, no partner (same rows)", same_rows),
    ] {
        println!("  {label}   p50 {:>7.1} ms   p99 {:>7.1} ms", ms(p50), ms(p99));
    }
    println!(
        "  partner items' p99 against the same rows of one's own: {:.2}x",
        with_partner.1.as_secs_f64() / same_rows.1.as_secs_f64()
    );
}
