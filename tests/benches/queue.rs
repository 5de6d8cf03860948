//! Queue retention benchmark (issue 15), release build, PostgreSQL + Redis:
//! 100,000 pushes queued and sent through the real worker (apalis on Redis,
//! encryption, VAPID, HTTPS to a local sink answering 201), then the retention
//! sweep. Reports Redis `used_memory` before, at its peak and after the sweep,
//! and the sweep's longest Redis command from `SLOWLOG` (logging every command
//! for the sweep, the previous settings restored afterwards).
//!
//! Run: `cargo bench -p attune-tests --bench queue` (`PUSHES=10000` for a
//! smaller run). Use a Redis of its own (`ATTUNE_BENCH_REDIS_URL`): memory is
//! the whole instance's, so other clients' keys would blur the figures.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a benchmark: failing loudly is right")]

#[path = "support/https_sink.rs"]
mod https_sink;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use attune_shared::{
    Clock, SystemClock,
    config::Settings,
    db,
    jobs::{Job, JobQueue, PUSH_BATCH, UniqueJob},
    push::{PushClient, PushPolicy, RetryPolicy, VapidKey, VapidSigner},
    secrets::{Secret, Secrets},
    services::Services,
};
use attune_tests::bench_support::{BENCH_JWT, BENCH_KEYS, BenchDatabase, sample_reminder_message};
use attune_worker::{PushDeps, WorkerDeps};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};

/// Devices the pushes go to (each gets `PUSHES / DEVICES`).
const DEVICES: i64 = 1_000;
/// Pushes sent and swept before the measured run.
const WARM_UP: i64 = 1_000;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--sink") {
        let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
        runtime.block_on(https_sink::serve(
            args[2].parse().unwrap(),
            &args[3],
            &args[4],
            https_sink::web_push_routes(),
        ));
        return;
    }
    if args.iter().any(|a| a == "--list" || a == "--test") {
        return;
    }
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap().block_on(run());
}

async fn run() {
    let pushes: i64 = std::env::var("PUSHES").ok().and_then(|n| n.parse().ok()).unwrap_or(100_000);
    let sink = https_sink::start();
    let bench = BenchDatabase::create().await;
    let conn = db::connect(&bench.url).await.unwrap();
    db::migrate(&conn).await.unwrap();
    let devices = seed(&conn, sink.port).await;

    let dir = tempfile::tempdir().unwrap();
    let settings = settings(&bench, dir.path());
    let deps = worker_deps(&settings, conn.clone(), &sink.cert_der).await;
    let queue = deps.queue.clone();
    let redis_client = redis::Client::open(BenchDatabase::redis_url()).unwrap();
    // A loaded machine can hold a reply past the client's default timeout.
    let config = redis::AsyncConnectionConfig::new().set_response_timeout(Some(Duration::from_secs(60)));
    let mut redis = redis_client.get_multiplexed_async_connection_with_config(&config).await.unwrap();

    // The worker, as `attune-worker` runs it, with a retention longer than the
    // run: nothing is swept while the pushes go out.
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(attune_worker::run(deps, queue.clone(), async move {
        let _ = stopped.await;
    }));
    // A warm-up round, swept the same way, so "before" is a queue that has run
    // (Lua scripts loaded, the keyspace's tables grown and shrunk once), not a
    // fresh Redis.
    send_and_wait(&queue, &devices, 0..WARM_UP, &mut redis).await;
    let warm = JobQueue::connect(&Settings { queue_retention_secs: 1, ..settings.clone() }).await.unwrap();
    warm.sweep_finished(SystemClock.now() + chrono::Duration::seconds(2)).await.unwrap();
    let warm_keys = idempotency_keys(&mut redis, &bench.name).await;
    unlink(&mut redis, &warm_keys).await;
    let before = settle_and_measure(&mut redis).await;
    eprintln!("seeded {DEVICES} devices; queuing {pushes} pushes");

    let started = Instant::now();
    let (queued, peak) = send_and_wait(&queue, &devices, WARM_UP..WARM_UP + pushes, &mut redis).await;
    let sent = started.elapsed();
    let finished: u64 =
        redis::cmd("SCARD").arg(format!("{}:jobs:done", bench.name)).query_async(&mut redis).await.unwrap();
    assert_eq!(finished as i64, jobs(pushes), "every push's job finished and kept until the sweep");
    eprintln!("all sent in {:.1} s; stopping the worker", sent.as_secs_f64());
    let _ = stop.send(());
    worker.await.unwrap().unwrap();
    eprintln!("worker stopped; sweeping");

    // The sweep, with a one-second retention, every Redis command it makes logged.
    let slower_than: Vec<String> =
        redis::cmd("CONFIG").arg("GET").arg("slowlog-log-slower-than").query_async(&mut redis).await.unwrap();
    let max_len: Vec<String> =
        redis::cmd("CONFIG").arg("GET").arg("slowlog-max-len").query_async(&mut redis).await.unwrap();
    config_set(&mut redis, "slowlog-max-len", "1000000").await;
    config_set(&mut redis, "slowlog-log-slower-than", "0").await;
    let _: () = redis::cmd("SLOWLOG").arg("RESET").query_async(&mut redis).await.unwrap();
    let mut short = settings.clone();
    short.queue_retention_secs = 1;
    let sweeper = JobQueue::connect(&short).await.unwrap();
    let sweep_started = Instant::now();
    let deleted = sweeper.sweep_finished(SystemClock.now() + chrono::Duration::seconds(2)).await.unwrap();
    let swept = sweep_started.elapsed();
    let log: Vec<redis::Value> = redis::cmd("SLOWLOG").arg("GET").arg("-1").query_async(&mut redis).await.unwrap();
    config_set(&mut redis, "slowlog-log-slower-than", &slower_than[1]).await;
    // The log itself holds every command's arguments: emptied, so the memory
    // figures below are the queue's alone.
    let _: () = redis::cmd("SLOWLOG").arg("RESET").query_async(&mut redis).await.unwrap();
    config_set(&mut redis, "slowlog-max-len", &max_len[1]).await;
    let calls = sweep_call_durations(&log);
    let percentile =
        |p: usize| calls.get((calls.len() * p / 100).min(calls.len().saturating_sub(1))).copied().unwrap_or(0);
    let over_10ms = calls.iter().filter(|us| **us > 10_000).count();
    assert_eq!(deleted as i64, jobs(pushes), "the sweep deleted every finished job");

    let after = settle_and_measure(&mut redis).await;
    let keys = idempotency_keys(&mut redis, &bench.name).await;
    // What remains once the idempotency keys expire on their own (24 h).
    unlink(&mut redis, &keys).await;
    let after_keys = settle_and_measure(&mut redis).await;

    let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
    let change = |bytes: u64| 100.0 * (bytes as f64 - before as f64) / before as f64;
    println!("queue retention, {pushes} pushes (release, PostgreSQL + Redis, local HTTPS sink answering 201):");
    println!(
        "  queued in {:.2} s; all sent and finished {:.2} s after queuing began ({:.0} pushes/s)",
        queued.as_secs_f64(),
        sent.as_secs_f64(),
        pushes as f64 / sent.as_secs_f64()
    );
    println!("  Redis used_memory before: {:.2} MiB", mib(before));
    println!("  Redis used_memory at peak (sampled every 100 ms): {:.2} MiB", mib(peak));
    println!(
        "  sweep: {deleted} finished jobs ({PUSH_BATCH} pushes a job) deleted in {:.2} s by {} script calls: median {} µs, p99 {} µs, \
         longest {} µs; {over_10ms} over 10 ms",
        swept.as_secs_f64(),
        calls.len(),
        percentile(50),
        percentile(99),
        calls.last().copied().unwrap_or(0),
    );
    println!(
        "  Redis used_memory after the sweep: {:.2} MiB ({:+.1} % of before), of which {} idempotency keys and marks kept for their 24 h",
        mib(after),
        change(after),
        keys.len()
    );
    println!(
        "  Redis used_memory once those keys expire: {:.2} MiB ({:+.1} % of before)",
        mib(after_keys),
        change(after_keys)
    );
    delete_redis_prefix(&mut redis, &bench.name).await;
    bench.drop_database().await;
}

/// Users with one device each at the sink; returns (user id, subscription id).
async fn seed(conn: &DatabaseConnection, port: u16) -> Vec<(uuid::Uuid, uuid::Uuid)> {
    let browser = p256::SecretKey::random(&mut p256::elliptic_curve::rand_core::OsRng);
    let p256dh = URL_SAFE_NO_PAD.encode(browser.public_key().to_sec1_bytes());
    let auth = URL_SAFE_NO_PAD.encode([7u8; 16]);
    let now = chrono::Utc::now().timestamp_millis();
    let statements = [
        format!(
            "INSERT INTO users (id, email, password_hash, display_name, timezone, created_at, updated_at, deleted_at, \
             country, descriptive_notifications) \
             SELECT gen_random_uuid(), 'push' || i || '@example.org', 'x', 'Bench', 'UTC', {now}, {now}, NULL, 'US', \
             FALSE FROM generate_series(1, {DEVICES}) AS i"
        ),
        format!(
            "INSERT INTO push_subscriptions (id, user_id, endpoint, p256dh, auth, expires_at, created_at, updated_at) \
             SELECT gen_random_uuid(), id, 'https://127.0.0.1:{port}/push/' || id, '{p256dh}', '{auth}', NULL, \
             {now}, {now} FROM users"
        ),
    ];
    for sql in statements {
        conn.execute_unprepared(&sql).await.unwrap();
    }
    let rows = conn
        .query_all_raw(Statement::from_string(
            conn.get_database_backend(),
            "SELECT user_id, id FROM push_subscriptions ORDER BY id".to_owned(),
        ))
        .await
        .unwrap();
    rows.iter().map(|r| (r.try_get_by_index(0).unwrap(), r.try_get_by_index(1).unwrap())).collect()
}

fn settings(bench: &BenchDatabase, dir: &std::path::Path) -> Settings {
    let mut settings = Settings::from_args(["--data-dir", dir.to_str().unwrap()]).unwrap();
    settings.database_url = Some(Secret::new(bench.url.clone()));
    settings.redis_url = Some(Secret::new(BenchDatabase::redis_url()));
    settings.queue_namespace = bench.name.clone();
    settings.jwt_secret = Some(Secret::new(BENCH_JWT));
    settings.data_keys = Some(Secret::new(BENCH_KEYS));
    settings.push_allowed_hosts = vec!["127.0.0.1".to_owned()];
    settings.queue_retention_secs = 86_400;
    settings
}

/// What an `attune-worker` process has, its push client trusting the sink.
async fn worker_deps(settings: &Settings, db: DatabaseConnection, cert_der: &[u8]) -> WorkerDeps {
    let mut settings = settings.clone();
    settings.vapid_private_key = Some(VapidKey::generate().unwrap().private_key);
    let secrets = Secrets::resolve(&settings).unwrap();
    let queue = JobQueue::connect(&settings).await.unwrap();
    let services = Services::new(&settings, db, queue, secrets, Arc::new(SystemClock)).unwrap();
    let policy = PushPolicy::new(&settings.push_allowed_hosts, false);
    let client =
        PushClient::with_root_certificates(policy, vec![reqwest::Certificate::from_der(cert_der).unwrap()]).unwrap();
    let signer = Arc::new(VapidSigner::new(vapid_key(), "mailto:bench@attune.test").unwrap());
    let mut deps = WorkerDeps::new(services, &settings).unwrap();
    deps.push = PushDeps { client, signer, native: Default::default(), retry: RetryPolicy::default() };
    deps
}

fn vapid_key() -> VapidKey {
    VapidKey::from_base64url(VapidKey::generate().unwrap().private_key.expose()).unwrap()
}

async fn used_memory(redis: &mut redis::aio::MultiplexedConnection) -> u64 {
    let info: String = redis::cmd("INFO").arg("memory").query_async(redis).await.unwrap();
    info_field(&info, "used_memory")
}

fn info_field(info: &str, name: &str) -> u64 {
    info.lines()
        .find_map(|line| line.strip_prefix(name).and_then(|rest| rest.strip_prefix(':')))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("INFO has no {name}"))
}

/// `used_memory` once Redis has freed what its background thread still holds
/// and its periodic task has shrunk the tables emptied meanwhile: the figure
/// once it has not fallen for a second (at most ten).
async fn settle_and_measure(redis: &mut redis::aio::MultiplexedConnection) -> u64 {
    let started = Instant::now();
    let mut last = u64::MAX;
    loop {
        let info: String = redis::cmd("INFO").arg("memory").query_async(redis).await.unwrap();
        let used = info_field(&info, "used_memory");
        if (info_field(&info, "lazyfree_pending_objects") == 0 && used >= last)
            || started.elapsed() > Duration::from_secs(10)
        {
            return used.min(last);
        }
        last = used;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn config_set(redis: &mut redis::aio::MultiplexedConnection, name: &str, value: &str) {
    let _: () = redis::cmd("CONFIG").arg("SET").arg(name).arg(value).query_async(redis).await.unwrap();
}

/// The durations (µs, sorted) of the sweep's script calls among `SLOWLOG GET`
/// entries (the only scripts run while it is logged).
fn sweep_call_durations(log: &[redis::Value]) -> Vec<i64> {
    let mut calls: Vec<i64> = log
        .iter()
        .filter_map(|entry| {
            let redis::Value::Array(fields) = entry else { return None };
            let Some(redis::Value::Int(us)) = fields.get(2) else { return None };
            let Some(redis::Value::Array(args)) = fields.get(3) else { return None };
            let Some(redis::Value::BulkString(name)) = args.first() else { return None };
            String::from_utf8_lossy(name).to_uppercase().starts_with("EVAL").then_some(*us)
        })
        .collect();
    calls.sort_unstable();
    calls
}

/// Queues pushes `range` in bulk under idempotency keys, as reminder dispatch
/// does, and waits until every one has finished; returns the time to queue
/// them and Redis's peak `used_memory` meanwhile (sampled every 100 ms).
async fn send_and_wait(
    queue: &JobQueue,
    devices: &[(uuid::Uuid, uuid::Uuid)],
    range: std::ops::Range<i64>,
    redis: &mut redis::aio::MultiplexedConnection,
) -> (Duration, u64) {
    let started = Instant::now();
    let jobs: Vec<UniqueJob> = range
        .map(|n| {
            let (user_id, subscription_id) = devices[(n % DEVICES) as usize];
            let job = Job::SendPush { user_id, subscription_id, message: sample_reminder_message(), attempt: 0 };
            UniqueJob { key: format!("bench-push:{n}"), job }
        })
        .collect();
    queue.enqueue_unique(jobs).await.unwrap();
    let queued = started.elapsed();
    let mut peak = 0_u64;
    loop {
        peak = peak.max(used_memory(redis).await);
        if queue.depth().await.unwrap().is_finished() {
            return (queued, peak.max(used_memory(redis).await));
        }
        assert!(started.elapsed() < Duration::from_secs(1800), "the pushes did not finish");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The jobs `pushes` pushes queued in one bulk make: [`PUSH_BATCH`] a job.
fn jobs(pushes: i64) -> i64 {
    (pushes as u64).div_ceil(PUSH_BATCH as u64) as i64
}

/// This run's idempotency keys (the jobs') and the pushes' marks of having been
/// sent, both kept 24 h, found with a bounded SCAN.
async fn idempotency_keys(redis: &mut redis::aio::MultiplexedConnection, prefix: &str) -> Vec<String> {
    let mut keys = Vec::new();
    for pattern in [format!("{prefix}:jobs:idempotency:*"), format!("{prefix}:jobs:sent:*")] {
        keys.extend(scan(redis, &pattern).await);
    }
    keys
}

async fn scan(redis: &mut redis::aio::MultiplexedConnection, pattern: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut cursor = 0_u64;
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(redis)
            .await
            .unwrap();
        keys.extend(batch);
        if next == 0 {
            return keys;
        }
        cursor = next;
    }
}

async fn unlink(redis: &mut redis::aio::MultiplexedConnection, keys: &[String]) {
    for chunk in keys.chunks(1000) {
        let _: () = redis::cmd("UNLINK").arg(chunk).query_async(redis).await.unwrap();
    }
}

/// Deletes what is left of this run's keys.
async fn delete_redis_prefix(redis: &mut redis::aio::MultiplexedConnection, prefix: &str) {
    let mut cursor = 0_u64;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}*"))
            .arg("COUNT")
            .arg(1000)
            .query_async(redis)
            .await
            .unwrap();
        unlink(redis, &keys).await;
        if next == 0 {
            break;
        }
        cursor = next;
    }
    let _: () = redis::cmd("ZREM")
        .arg("core:apalis:queues:list")
        .arg(format!("{prefix}:jobs:workers"))
        .query_async(redis)
        .await
        .unwrap();
}
