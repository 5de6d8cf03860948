//! Program benchmark (issue 4), release build, PostgreSQL + Redis: `GET /v1/today`
//! for a person with 1,000 check-ins, beside `GET /v1/programs/closer` in the
//! same run.
//!
//! Run: `cargo bench -p attune-tests --bench program`.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a benchmark: failing loudly is right")]

use std::time::Duration;

use attune_tests::{
    bench_support::{BenchDatabase, build_release_binaries, command, free_port, register, start_until_ready},
    load::{self, Target},
};
use reqwest::Method;
use serde_json::{Value, json};

const CONCURRENCY: usize = 32;
const SECONDS: u64 = 10;
const CHECKINS: usize = 1_000;

fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    build_release_binaries();
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap().block_on(run());
}

async fn run() {
    let dir = tempfile::tempdir().unwrap();
    let database = BenchDatabase::create().await;
    let port = free_port();
    let env = database.scaled_env(port, dir.path());
    assert!(command("attune-api", &env).arg("migrate").status().unwrap().success());
    let (api, _) = start_until_ready(command("attune-api", &env), port).await;
    let base = format!("http://127.0.0.1:{port}");
    let (token, _) = register(&base, "today@example.org").await;
    let client = reqwest::Client::new();
    let enrolled = client
        .post(format!("{base}/v1/enrollments"))
        .bearer_auth(&token)
        .json(&json!({"program": "closer", "mode": "partnered", "pace": "committed"}))
        .send()
        .await
        .unwrap();
    assert_eq!(enrolled.status(), 201);
    let program: Value = client.get(format!("{base}/v1/programs/closer")).send().await.unwrap().json().await.unwrap();
    let exercises: Vec<String> = program["steps"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["exercises"].as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap().to_owned()))
        .collect();
    let now = chrono::Utc::now().timestamp_millis();
    let records: Vec<Value> = (0..CHECKINS)
        .map(|n| {
            json!({"id": format!("c{n}"), "occurred_at": now - (n as i64) * 3_600_000, "mood": 1 + n % 5,
                   "anxiety": n % 8, "comfort": 2 + n % 4, "exercise_id": exercises[n % exercises.len()],
                   "completed": n % 2 == 0, "note": "a short private note", "tags": ""})
        })
        .collect();
    let pushed = client
        .post(format!("{base}/v1/sync?last_pulled_at=0"))
        .bearer_auth(&token)
        .json(&json!({"changes": {"checkins": {"created": records, "updated": [], "deleted": []}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(pushed.status(), 200);
    let today: Value =
        client.get(format!("{base}/v1/today")).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
    assert!(today["kind"].is_string(), "{today}");

    let get = |path: &str, bearer: Option<&str>| Target {
        method: Method::GET,
        url: format!("{base}{path}"),
        bearer: bearer.map(str::to_owned),
        json: None,
    };
    load::run(get("/v1/today", Some(&token)), CONCURRENCY, Duration::from_secs(1)).await;
    let program_load = load::run(get("/v1/programs/closer", None), CONCURRENCY, Duration::from_secs(SECONDS)).await;
    let today_load = load::run(get("/v1/today", Some(&token)), CONCURRENCY, Duration::from_secs(SECONDS)).await;
    drop(api);
    database.drop_database().await;

    println!("attune program benchmark · release build · PostgreSQL · {CONCURRENCY} connections, {SECONDS} s each");
    println!("  GET /v1/programs/closer              {program_load}");
    println!("  GET /v1/today ({CHECKINS} check-ins)     {today_load}");
}
