//! Program benchmark (issues 4 and 21), release build, embedded (SQLite) and
//! scaled (PostgreSQL + Redis): what `GET /v1/today` and advancing cost for a
//! person with 10 check-ins and for one with 10,000, beside `GET /v1/programs`
//! and `GET /v1/programs/closer` (no database) on the same server in the same
//! run. The program's rules read a summary kept as check-ins are written, so
//! the two people's figures should be the same.
//!
//! Advancing is measured refused (409: the step's minimum time is not up), which
//! reads everything a successful advance reads, and can repeat.
//!
//! Run: `cargo bench -p attune-tests --bench program`.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a benchmark: failing loudly is right")]

use std::time::Duration;

use attune_tests::{
    bench_support::{BenchDatabase, build_release_binaries, command, free_port, register, start_until_ready},
    load::{self, LoadReport, Target},
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const CONCURRENCY: usize = 32;
const SECONDS: u64 = 10;
const FEW: usize = 10;
const MANY: usize = 10_000;
/// The most records one push may carry (`sync::MAX_PUSH_RECORDS`).
const PER_PUSH: usize = 5_000;

fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    build_release_binaries();
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap().block_on(run());
}

struct Figures {
    programs: LoadReport,
    closer: LoadReport,
    today: [LoadReport; 2],
    advance: [LoadReport; 2],
}

async fn run() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let env = vec![("ATTUNE_DATA_DIR", dir.path().display().to_string()), ("ATTUNE_BIND", format!("127.0.0.1:{port}"))];
    let (api, _) = start_until_ready(command("attune-api", &env), port).await;
    let embedded = measure(&format!("http://127.0.0.1:{port}")).await;
    drop(api);

    let dir = tempfile::tempdir().unwrap();
    let database = BenchDatabase::create().await;
    let port = free_port();
    let env = database.scaled_env(port, dir.path());
    assert!(command("attune-api", &env).arg("migrate").status().unwrap().success());
    let (api, _) = start_until_ready(command("attune-api", &env), port).await;
    let scaled = measure(&format!("http://127.0.0.1:{port}")).await;
    drop(api);
    database.drop_database().await;

    println!("attune program benchmark · release build · {CONCURRENCY} connections, {SECONDS} s each");
    for (name, f) in [("embedded (SQLite)", &embedded), ("scaled (PostgreSQL + Redis)", &scaled)] {
        println!("{name}");
        println!("  GET /v1/programs                        {}", f.programs);
        println!("  GET /v1/programs/closer                 {}", f.closer);
        for (n, (today, advance)) in [FEW, MANY].iter().zip(f.today.iter().zip(&f.advance)) {
            println!("  GET /v1/today, {n:>6} check-ins         {today}");
            println!("  POST advance (409), {n:>6} check-ins    {advance}");
        }
        let ratio = |a: &LoadReport, b: &LoadReport| a.per_second() / b.per_second();
        println!(
            "  today at {MANY} / at {FEW} check-ins: {:.2}; advance: {:.2}; today at {MANY} / GET /v1/programs: {:.2}",
            ratio(&f.today[1], &f.today[0]),
            ratio(&f.advance[1], &f.advance[0]),
            ratio(&f.today[1], &f.programs),
        );
    }
}

/// Two people, enrolled, with 10 and 10,000 check-ins (one an hour back from
/// now, every other one a completed exercise); then each load in turn.
async fn measure(base: &str) -> Figures {
    let client = reqwest::Client::new();
    let program: Value = client.get(format!("{base}/v1/programs/closer")).send().await.unwrap().json().await.unwrap();
    let exercises: Vec<String> = program["steps"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["exercises"].as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap().to_owned()))
        .collect();
    let mut tokens = Vec::new();
    for count in [FEW, MANY] {
        let (token, _) = register(base, &format!("history-{count}@example.org")).await;
        let enrolled = client
            .post(format!("{base}/v1/enrollments"))
            .bearer_auth(&token)
            .json(&json!({"program": "closer", "mode": "partnered", "pace": "committed"}))
            .send()
            .await
            .unwrap();
        assert_eq!(enrolled.status(), 201);
        let now = chrono::Utc::now().timestamp_millis();
        let records: Vec<Value> = (0..count)
            .map(|n| {
                json!({"id": format!("c{n}"), "occurred_at": now - (n as i64) * 3_600_000, "mood": 1 + n % 5,
                       "anxiety": n % 8, "comfort": 2 + n % 4, "exercise_id": exercises[n % exercises.len()],
                       "completed": n % 2 == 0, "note": "a short private note", "tags": ""})
            })
            .collect();
        for chunk in records.chunks(PER_PUSH) {
            let pushed = client
                .post(format!("{base}/v1/sync?last_pulled_at=0"))
                .bearer_auth(&token)
                .json(&json!({"changes": {"checkins": {"created": chunk, "updated": [], "deleted": []}}}))
                .send()
                .await
                .unwrap();
            assert_eq!(pushed.status(), 200);
        }
        let today: Value =
            client.get(format!("{base}/v1/today")).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
        assert!(today["kind"].is_string(), "{today}");
        tokens.push(token);
    }

    let target = |method: Method, path: &str, bearer: Option<&str>| Target {
        method,
        url: format!("{base}{path}"),
        bearer: bearer.map(str::to_owned),
        json: None,
    };
    let period = Duration::from_secs(SECONDS);
    load::run(target(Method::GET, "/v1/today", Some(&tokens[1])), CONCURRENCY, Duration::from_secs(1)).await;
    let programs = load::run(target(Method::GET, "/v1/programs", None), CONCURRENCY, period).await;
    let closer = load::run(target(Method::GET, "/v1/programs/closer", None), CONCURRENCY, period).await;
    let mut today = Vec::new();
    let mut advance = Vec::new();
    for token in &tokens {
        today.push(load::run(target(Method::GET, "/v1/today", Some(token)), CONCURRENCY, period).await);
        let refused = target(Method::POST, "/v1/enrollments/current/advance", Some(token));
        advance.push(load::run_expecting(refused, Some(StatusCode::CONFLICT), CONCURRENCY, period).await);
    }
    Figures { programs, closer, today: today.try_into().unwrap(), advance: advance.try_into().unwrap() }
}
