//! Sync benchmarks (issue 3), release build, on PostgreSQL:
//! - pushes of 100 and of 1,000 check-ins per request, in records stored per
//!   second, next to a plain batched `INSERT` of the same rows into the same
//!   PostgreSQL: the two take turns, three rounds each, and the medians are the
//!   figures (in single rounds PostgreSQL's own background work, autovacuum and
//!   checkpoints, moved either by up to half);
//! - first pulls of 1,000 and of 10,000 changes: p50/p99 latency to the last
//!   byte of the answer (and with the client's JSON parse, as the figures
//!   before 2026-12-03 were taken), and the API's peak RSS.
//!
//! Run: `cargo bench -p attune-tests --bench sync`.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a benchmark: failing loudly is right")]

use std::time::{Duration, Instant};

use attune_tests::{
    bench_support::{
        BenchDatabase, PullLatencies, build_release_binaries, command, first_pull_latencies, free_port, median,
        register, reset_peak_rss, rounds, start_until_ready,
    },
    load::peak_rss_mib,
};
use sea_orm::{
    ConnectionTrait, Database, DatabaseConnection, Value as DbValue,
    sea_query::{Alias, Expr, Query},
};
use serde_json::{Value, json};

/// Parallel clients, each its own user (one user's pushes are serialised by design).
const CLIENTS: usize = 4;
const RECORDS_PER_CLIENT: usize = 10_000;
/// Enough rounds that p99 is not simply the slowest one.
const PULL_ROUNDS: usize = 100;
/// Turns of Attune's pushes and the plain `INSERT`s, at each batch size.
const PUSH_ROUNDS: usize = 3;

fn checkin(n: usize) -> Value {
    json!({"id": format!("c{n:08}"), "occurred_at": 1_795_000_000_000_i64 + n as i64, "mood": 1 + n % 5,
           "anxiety": n % 11, "comfort": 1 + n % 5, "exercise_id": "s1-barrier-map", "completed": n.is_multiple_of(3),
           "note": "Felt a little tense before the talk, then calmer after we agreed on a signal.",
           "tags": r#"["evening","talk"]"#})
}

/// Each client pushes [`RECORDS_PER_CLIENT`] new check-ins in requests of
/// `batch`; `round` keeps the ids of one client's rounds apart.
async fn push_rate(base: &str, tokens: &[String], batch: usize, round: usize) -> f64 {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (c, token) in tokens.iter().enumerate() {
        let (base, token) = (base.to_owned(), token.clone());
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            for chunk_start in (0..RECORDS_PER_CLIENT).step_by(batch) {
                let first = c * 10_000_000 + batch * 100_000 + round * RECORDS_PER_CLIENT;
                let records: Vec<Value> = (chunk_start..chunk_start + batch).map(|n| checkin(first + n)).collect();
                let body = json!({"changes": {"checkins": {"created": records, "updated": [], "deleted": []}}});
                let response = client
                    .post(format!("{base}/v1/sync?last_pulled_at=0"))
                    .bearer_auth(&token)
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    (tokens.len() * RECORDS_PER_CLIENT) as f64 / started.elapsed().as_secs_f64()
}

/// The baseline: the same rows, plaintext, in multi-row `INSERT`s of `batch` rows,
/// from the same number of parallel connections, into the same PostgreSQL.
async fn plain_insert_rate(db: &DatabaseConnection, batch: usize) -> f64 {
    db.execute_unprepared(
        "CREATE TABLE IF NOT EXISTS plain_checkins (user_id uuid NOT NULL, id varchar(64) NOT NULL, \
         version bigint NOT NULL, created_version bigint NOT NULL, occurred_at bigint NOT NULL, mood bigint NOT NULL, \
         anxiety bigint NOT NULL, comfort bigint NOT NULL, exercise_id varchar(64), completed boolean NOT NULL, \
         note text, tags text, PRIMARY KEY (user_id, id))",
    )
    .await
    .unwrap();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let db = db.clone();
        tasks.push(tokio::spawn(async move {
            let user = uuid::Uuid::new_v4();
            for chunk_start in (0..RECORDS_PER_CLIENT).step_by(batch) {
                let mut insert = Query::insert();
                insert.into_table(Alias::new("plain_checkins")).columns(
                    [
                        "user_id",
                        "id",
                        "version",
                        "created_version",
                        "occurred_at",
                        "mood",
                        "anxiety",
                        "comfort",
                        "exercise_id",
                        "completed",
                        "note",
                        "tags",
                    ]
                    .map(Alias::new),
                );
                for n in chunk_start..chunk_start + batch {
                    let r = checkin(c * 10_000_000 + batch * 100_000 + n);
                    let values: Vec<DbValue> = vec![
                        user.into(),
                        r["id"].as_str().unwrap().into(),
                        1_i64.into(),
                        1_i64.into(),
                        r["occurred_at"].as_i64().unwrap().into(),
                        r["mood"].as_i64().unwrap().into(),
                        r["anxiety"].as_i64().unwrap().into(),
                        r["comfort"].as_i64().unwrap().into(),
                        r["exercise_id"].as_str().unwrap().into(),
                        r["completed"].as_bool().unwrap().into(),
                        r["note"].as_str().unwrap().into(),
                        r["tags"].as_str().unwrap().into(),
                    ];
                    insert.values_panic(values.into_iter().map(Expr::val));
                }
                db.execute_raw(db.get_database_backend().build(&insert)).await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    (CLIENTS * RECORDS_PER_CLIENT) as f64 / started.elapsed().as_secs_f64()
}

/// One pull to warm the caches (the first of a run is an outlier), then
/// [`PULL_ROUNDS`] measured.
async fn pull_latencies(base: &str, token: &str, expected: usize) -> PullLatencies {
    first_pull_latencies(base, token, "", 1, |_| {}).await;
    first_pull_latencies(base, token, "", PULL_ROUNDS, |body| {
        assert_eq!(body["changes"]["checkins"]["updated"].as_array().unwrap().len(), expected);
    })
    .await
}

async fn push_all(base: &str, token: &str, count: usize) {
    let client = reqwest::Client::new();
    for chunk_start in (0..count).step_by(1_000) {
        let records: Vec<Value> = (chunk_start..(chunk_start + 1_000).min(count)).map(checkin).collect();
        let body = json!({"changes": {"checkins": {"created": records, "updated": [], "deleted": []}}});
        let response = client
            .post(format!("{base}/v1/sync?last_pulled_at=0"))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    build_release_binaries();
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap().block_on(run());
}

async fn run() {
    println!("attune sync benchmark · release build · PostgreSQL · {CLIENTS} parallel clients");
    let dir = tempfile::tempdir().unwrap();
    let database = BenchDatabase::create().await;
    let port = free_port();
    let env = database.scaled_env(port, dir.path());
    assert!(command("attune-api", &env).arg("migrate").status().unwrap().success());
    let (api, _) = start_until_ready(command("attune-api", &env), port).await;
    let base = format!("http://127.0.0.1:{port}");
    let db = Database::connect(database.url.as_str()).await.unwrap();

    let mut tokens = Vec::new();
    for c in 0..CLIENTS {
        tokens.push(register(&base, &format!("pusher{c}@example.org")).await.0);
    }
    let mut rows = Vec::new();
    for batch in [100, 1_000] {
        let (mut attune, mut plain) = (Vec::new(), Vec::new());
        for round in 0..PUSH_ROUNDS {
            attune.push(push_rate(&base, &tokens, batch, round).await);
            plain.push(plain_insert_rate(&db, batch).await);
        }
        rows.push((batch, attune, plain));
    }

    let (small, _) = register(&base, "pull1k@example.org").await;
    push_all(&base, &small, 1_000).await;
    let (large, _) = register(&base, "pull10k@example.org").await;
    push_all(&base, &large, 10_000).await;
    reset_peak_rss(api.pid());
    let small_pulls = pull_latencies(&base, &small, 1_000).await;
    let peak_1k = peak_rss_mib(api.pid()).unwrap_or(f64::NAN);
    reset_peak_rss(api.pid());
    let large_pulls = pull_latencies(&base, &large, 10_000).await;
    let peak_10k = peak_rss_mib(api.pid()).unwrap_or(f64::NAN);
    drop(api);
    db.close().await.ok();
    database.drop_database().await;

    println!();
    println!(
        "push: check-ins stored per second ({CLIENTS} clients × {RECORDS_PER_CLIENT} records; medians of {PUSH_ROUNDS} alternating rounds)"
    );
    for (batch, attune, plain) in rows {
        let (a, p) = (median(&attune), median(&plain));
        println!(
            "  {batch:>5} per request   attune {a:>9.0}/s   plain INSERT {p:>9.0}/s   ratio {:.2}   (rounds: attune {}; plain {})",
            a / p,
            rounds(&attune),
            rounds(&plain)
        );
    }
    println!(
        "pull (first sync, {PULL_ROUNDS} rounds each after one warm-up; to the last byte, and with the client's parse)"
    );
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    for (label, pulls, peak) in [("1,000", small_pulls, peak_1k), ("10,000", large_pulls, peak_10k)] {
        println!(
            "  {label:>6} changes   p50 {:>6.1} ms   p99 {:>6.1} ms   (parsed: p50 {:>6.1} ms   p99 {:>6.1} ms)   API peak RSS {peak:.1} MiB",
            ms(pulls.served.p50),
            ms(pulls.served.p99),
            ms(pulls.parsed.p50),
            ms(pulls.parsed.p99),
        );
    }
}
