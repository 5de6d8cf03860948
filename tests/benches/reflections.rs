//! Weekly reflections benchmark (issue 6), release build, PostgreSQL + Redis:
//! the time for the `attune-worker` process to compute and store one week's
//! reflections for 100,000 people with 20 check-ins each, and its peak RSS.
//! Baseline in the same run: one plain `GROUP BY` pass over the same check-ins
//! (count and sums per person), read by a client — the least any computation of
//! per-person weekly figures must do.
//!
//! The people live in six zones from Auckland to Los Angeles; each one's
//! check-ins fall in the most recent week that is over in their zone, so the run
//! the worker starts with finds every week due.
//!
//! Run: `cargo bench -p attune-tests --bench reflections` (`PEOPLE=10000` for a
//! smaller run; `BENCH_TRACE=1` computes in this process instead of a worker's
//! and prints the span timings of each step, for finding where time goes).

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a benchmark: failing loudly is right")]

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use attune_shared::{SystemClock, db, domain::reflection::ReflectionWeek, reflections::Reflections};
use attune_tests::{
    bench_support::{BenchDatabase, Proc, build_release_binaries, command, free_port},
    load::peak_rss_mib,
};
use chrono::Utc;
use chrono_tz::Tz;
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};

const CHECKINS_PER_PERSON: i64 = 20;
const ZONES: [Tz; 6] = [
    chrono_tz::Pacific::Auckland,
    chrono_tz::Asia::Kolkata,
    chrono_tz::Europe::Berlin,
    chrono_tz::UTC,
    chrono_tz::America::New_York,
    chrono_tz::America::Los_Angeles,
];

fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap().block_on(run());
}

async fn run() {
    let trace = std::env::var("BENCH_TRACE").is_ok();
    if trace {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("attune_shared=debug,sqlx=warn"))
            .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
            .init();
    }
    let people: i64 = std::env::var("PEOPLE").ok().and_then(|n| n.parse().ok()).unwrap_or(100_000);
    if !trace {
        build_release_binaries();
    }
    let bench = BenchDatabase::create().await;
    let conn = db::connect(&bench.url).await.unwrap();
    db::migrate(&conn).await.unwrap();

    let seeding = Instant::now();
    seed(&conn, people).await;
    println!("seeded {people} people × {CHECKINS_PER_PERSON} check-ins in {:.1} s", seeding.elapsed().as_secs_f64());

    // Baseline: one aggregate pass over the same rows, read by a client.
    let mut baseline = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        let rows = conn
            .query_all_raw(Statement::from_string(
                conn.get_database_backend(),
                "SELECT user_id, COUNT(*) AS n, SUM(mood) AS mood, SUM(anxiety) AS anxiety, SUM(comfort) AS comfort \
                 FROM checkins GROUP BY user_id",
            ))
            .await
            .unwrap();
        assert_eq!(rows.len() as i64, people);
        baseline.push(started.elapsed());
    }
    let baseline = baseline.into_iter().min().unwrap();

    if trace {
        let started = Instant::now();
        let reflections = Reflections::new(conn.clone(), Arc::new(SystemClock));
        let stored = reflections.make_due(Utc::now()).await.unwrap();
        println!("in this process: {} stored in {:.2} s", stored.len(), started.elapsed().as_secs_f64());
        assert_eq!(stored.len() as i64, people);
        conn.close().await.ok();
        bench.drop_database().await;
        return;
    }

    // The worker's first scheduled run starts as it starts; it logs once it has
    // stored and announced everything that was due.
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let mut env = bench.scaled_env(port, dir.path());
    env.push(("RUST_LOG", "warn,attune_worker::jobs::reflections=info".to_owned()));
    env.push(("ATTUNE_LOG_FORMAT", "json".to_owned()));
    let mut cmd = command("attune-worker", &env);
    cmd.stdout(std::process::Stdio::piped());
    let started = Instant::now();
    let mut worker = Proc(cmd.spawn().unwrap());
    let (done, stored) = wait_for_the_run(&mut worker, started);
    let rss = peak_rss_mib(worker.pid()).unwrap_or(f64::NAN);
    drop(worker);
    assert_eq!(stored, people, "the worker's run stored every reflection");
    assert_eq!(count(&conn).await, people);
    check_a_sample(&conn).await;

    println!("reflections for {people} people × {CHECKINS_PER_PERSON} check-ins (release, PostgreSQL + Redis):");
    println!(
        "  attune-worker, process start to all stored and announced: {:.2} s ({:.0} reflections/s); peak RSS {rss:.1} MiB",
        done.as_secs_f64(),
        people as f64 / done.as_secs_f64()
    );
    println!(
        "  baseline, one plain GROUP BY pass read by a client: {:.2} s (ratio {:.1}×)",
        baseline.as_secs_f64(),
        done.as_secs_f64() / baseline.as_secs_f64()
    );
    conn.close().await.ok();
    bench.drop_database().await;
}

/// People, enrolled five weeks ago, and their check-ins spread over the most
/// recent week that is over in their zone; a quarter are completed exercises.
async fn seed(conn: &DatabaseConnection, people: i64) {
    let now = Utc::now();
    let enrolled = (now - chrono::Duration::weeks(5)).timestamp_millis();
    let zones: Vec<String> = ZONES
        .iter()
        .map(|tz| {
            let (start, end) = ReflectionWeek::last_due_week(now, *tz).bounds(*tz);
            let (start, end) = (start.timestamp_millis(), end.timestamp_millis());
            // Sunday's last check-in still before 18:00 local.
            let step = (end - start - 7 * 3_600_000) / CHECKINS_PER_PERSON;
            format!("('{}', {start}, {step})", tz.name())
        })
        .collect();
    let zone_names: Vec<String> = ZONES.iter().map(|tz| format!("'{}'", tz.name())).collect();
    let statements = [
        format!(
            "INSERT INTO users (id, email, password_hash, display_name, timezone, created_at, updated_at, deleted_at, \
             country, descriptive_notifications) \
             SELECT gen_random_uuid(), 'bench' || i || '@example.org', 'x', 'Bench', \
             (ARRAY[{zones}])[1 + i % {n}], {enrolled}, {enrolled}, NULL, 'US', FALSE \
             FROM generate_series(1, {people}) AS i",
            zones = zone_names.join(", "),
            n = ZONES.len(),
        ),
        format!(
            "INSERT INTO enrollments (id, user_id, program, mode, pace, step, step_started_at, paused_at, created_at, \
             updated_at) SELECT gen_random_uuid(), id, 'closer', 'solo', 'steady', 1, {enrolled}, NULL, {enrolled}, \
             {enrolled} FROM users"
        ),
        format!(
            "INSERT INTO checkins (user_id, id, version, created_version, occurred_at, mood, anxiety, comfort, \
             exercise_id, completed, note, tags) \
             SELECT u.id, 'c' || j, {enrolled}, {enrolled}, z.start + j * z.step + (abs(hashtext(u.email)) % 3600000), \
             1 + (j % 5), (j * 3) % 11, 1 + ((j + 2) % 5), \
             CASE WHEN j % 4 = 0 THEN 's1-arrival-breath' END, j % 4 = 0, NULL, NULL \
             FROM users u JOIN (VALUES {zones}) AS z(tz, start, step) ON u.timezone = z.tz \
             CROSS JOIN generate_series(0, {last}) AS j",
            zones = zones.join(", "),
            last = CHECKINS_PER_PERSON - 1,
        ),
        // What autovacuum does to a table after inserts (PostgreSQL 13+): statistics,
        // and the visibility map that lets the weekly aggregate read the index alone.
        "VACUUM ANALYZE".to_owned(),
    ];
    for sql in statements {
        conn.execute_unprepared(&sql).await.unwrap();
    }
}

async fn count(conn: &DatabaseConnection) -> i64 {
    let row = conn
        .query_one_raw(Statement::from_string(conn.get_database_backend(), "SELECT COUNT(*) AS n FROM reflections"))
        .await
        .unwrap()
        .unwrap();
    row.try_get("", "n").unwrap()
}

/// Reads the worker's JSON log until its reflections run reports what it stored;
/// returns the time from `started` and that count. Gives up after five minutes.
fn wait_for_the_run(worker: &mut Proc, started: Instant) -> (Duration, i64) {
    use std::io::BufRead;
    let stdout = std::io::BufReader::new(worker.0.stdout.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            let Ok(event) = serde_json::from_str::<serde_json::Value>(&line) else { continue };
            if event["message"] == "weekly reflections stored" {
                let _ = tx.send((started.elapsed(), event["stored"].as_i64().unwrap_or(-1)));
                return;
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(300)).expect("the worker's reflections run did not finish")
}

/// One stored reflection has the seeded figures.
async fn check_a_sample(conn: &DatabaseConnection) {
    let row = conn
        .query_one_raw(Statement::from_string(conn.get_database_backend(), "SELECT body FROM reflections LIMIT 1"))
        .await
        .unwrap()
        .unwrap();
    let body: serde_json::Value = serde_json::from_str(&row.try_get::<String>("", "body").unwrap()).unwrap();
    assert_eq!(body["checkin_count"], CHECKINS_PER_PERSON, "{body}");
    assert_eq!(body["exercises_completed"], serde_json::json!([{"step": 1, "count": 5}]), "{body}");
}
