//! Reminder dispatch benchmark (issue 6), release build, PostgreSQL + Redis: the
//! time for `dispatch_due_reminders` to claim 100,000 due reminders (one device
//! each) and queue their pushes (in jobs of `PUSH_BATCH` pushes, as the Redis
//! queue carries them), and this process's peak RSS meanwhile. The jobs land in
//! Redis; nothing sends them.
//!
//! Baseline in the same run, the least any dispatcher that records and queues
//! each reminder must do: multi-row `INSERT`s of as many rows shaped like the
//! deliveries (same keys) into a scratch table, as large as the claim's own
//! statements, plus as many items of a queued job's size pushed to a Redis list
//! in one pipeline.
//!
//! Five rounds, the reminders due again before each (at a slot of their own,
//! the earlier rounds' deliveries kept as a history would be, the queue emptied,
//! the tables vacuumed, a checkpoint taken); the median is the figure.
//!
//! Run: `cargo bench -p attune-tests --bench reminders` (`REMINDERS=10000` for a
//! smaller run; `BENCH_TRACE=1` prints the dispatcher's span timings).

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a benchmark: failing loudly is right")]

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use attune_shared::{
    clock::ManualClock,
    config::Settings,
    db,
    domain::reminders::ReminderSettings,
    jobs::{JobQueue, PUSH_BATCH},
    push::PushMessage,
    secrets::{Secret, Secrets},
    services::Services,
};
use attune_tests::{
    bench_support::{BENCH_JWT, BENCH_KEYS, BenchDatabase, reset_peak_rss, sample_reminder_message},
    load::peak_rss_mib,
};
use attune_worker::{
    WorkerDeps,
    jobs::dispatch_reminders::{BATCH, dispatch_due_reminders},
};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};

/// Past reminders per person, two days apart, every seventh opened: some two
/// months of history at a steady pace, which the claim must not read through.
const HISTORY: i64 = 26;
/// Dispatches measured; the median is the figure.
const ROUNDS: usize = 5;

fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap().block_on(run());
}

async fn run() {
    if std::env::var("BENCH_TRACE").is_ok() {
        // Span timings of the dispatcher's steps, for finding where time goes.
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("attune_shared=debug,attune_worker=debug,sqlx=warn"))
            .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
            .init();
    }
    let reminders: i64 = std::env::var("REMINDERS").ok().and_then(|n| n.parse().ok()).unwrap_or(100_000);
    let bench = BenchDatabase::create().await;
    let conn = db::connect(&bench.url).await.unwrap();
    db::migrate(&conn).await.unwrap();
    let seeding = Instant::now();
    // One instant for the seeding and the dispatcher's clock alike.
    let now = bench_now();
    let seeded_at = seed(&conn, reminders, now).await;
    println!(
        "seeded {reminders} people with a due reminder, one device and {HISTORY} past reminders each in {:.1} s",
        seeding.elapsed().as_secs_f64()
    );

    let dir = tempfile::tempdir().unwrap();
    let settings = settings(&bench, dir.path());
    let deps = worker_deps(&settings, conn.clone(), now).await;
    let pid = std::process::id();
    let mut rounds = Vec::with_capacity(ROUNDS);
    let mut peak = 0.0_f64;
    let mut wal = Vec::with_capacity(ROUNDS);
    for round in 0..ROUNDS {
        if round > 0 {
            due_again(&conn, &bench.name, seeded_at, round).await;
        }
        reset_peak_rss(pid);
        let wal_before = wal_position(&conn).await;
        let started = Instant::now();
        let sent = dispatch_due_reminders(&deps, deps.clock.now(), BATCH).await.unwrap();
        rounds.push(started.elapsed());
        wal.push((wal_position(&conn).await - wal_before) as f64 / (1024.0 * 1024.0));
        peak = peak.max(peak_rss_mib(pid).unwrap_or(f64::NAN));
        assert_eq!(sent as i64, reminders, "every due reminder dispatched");
        let recorded = scalar(&conn, "SELECT COUNT(*) FROM reminder_deliveries").await;
        assert_eq!(recorded, reminders * (HISTORY + round as i64 + 1), "one delivery per reminder");
        let jobs = deps.queue.depth().await.unwrap().pending as i64;
        assert!(batches(reminders).contains(&jobs), "the reminders' pushes in batches, ready on Redis: {jobs}");
    }
    let (insert, push) = baseline(&conn, &settings, reminders).await;
    let floor = insert + push;

    let mut sorted = rounds.clone();
    sorted.sort();
    let (best, median) = (sorted[0], sorted[ROUNDS / 2]);
    let per_second = |d: Duration| reminders as f64 / d.as_secs_f64();
    println!("reminder dispatch, {reminders} due (release, PostgreSQL + Redis, claims of {BATCH}, {ROUNDS} rounds):");
    println!(
        "  dispatch_due_reminders, claim + record + queue: median {:.2} s ({:.0} reminders/s), best {:.2} s ({:.0}/s); rounds {}",
        median.as_secs_f64(),
        per_second(median),
        best.as_secs_f64(),
        per_second(best),
        rounds.iter().map(|d| format!("{:.2} s", d.as_secs_f64())).collect::<Vec<_>>().join(", ")
    );
    println!(
        "  baseline, plain multi-row INSERTs {:.2} s + Redis pipeline RPUSH {:.2} s = {:.2} s (median ratio {:.1}×)",
        insert.as_secs_f64(),
        push.as_secs_f64(),
        floor.as_secs_f64(),
        median.as_secs_f64() / floor.as_secs_f64()
    );
    println!("  peak RSS of this process during a dispatch: {peak:.1} MiB");
    println!(
        "  PostgreSQL write-ahead log per dispatch: {}",
        wal.iter().map(|m| format!("{m:.0} MiB")).collect::<Vec<_>>().join(", ")
    );

    delete_redis_prefix(&bench.name).await;
    conn.close().await.ok();
    bench.drop_database().await;
}

/// How many push jobs a dispatch of `reminders` may queue: each claim's pushes
/// (one a reminder) in batches of [`PUSH_BATCH`], so at most one batch a claim
/// short of full: a claim per [`BATCH`], and one more per lane where the lanes'
/// last claims race for the remaining rows and split them unevenly.
fn batches(reminders: i64) -> std::ops::RangeInclusive<i64> {
    let reminders = reminders as u64;
    let fewest = reminders.div_ceil(PUSH_BATCH as u64);
    fewest as i64..=(fewest + reminders.div_ceil(BATCH) + 4) as i64
}

/// The benchmark's "now": today at 11:00 UTC, midday in Berlin where the seeded
/// people live, outside the default quiet hours (22:00–07:00) whenever the
/// benchmark runs. (With the machine's clock, a run at 23:10 UTC found every
/// reminder in its quiet hours and dispatched none.)
fn bench_now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now().date_naive().and_hms_opt(11, 0, 0).unwrap().and_utc()
}

/// When a seeded person's reminder is due: within the hour before `seeded_at`.
fn due_at(seeded_at: i64) -> String {
    format!("{seeded_at} - 60000 - (abs(hashtext(email)) % 3600000)")
}

/// Another round: every reminder due again at a slot of its own (a millisecond
/// per round earlier, so the deliveries of earlier rounds stay, as a history
/// would), nothing unanswered, the queue empty, the tables vacuumed and analysed.
async fn due_again(conn: &DatabaseConnection, prefix: &str, seeded_at: i64, round: usize) {
    delete_redis_prefix(prefix).await;
    let due = due_at(seeded_at - round as i64);
    for sql in [
        format!(
            "UPDATE reminder_schedules s SET next_slot_at = {due}, unanswered = 0, last_sent_at = NULL \
             FROM users u WHERE u.id = s.user_id"
        ),
        "VACUUM ANALYZE reminder_deliveries".to_owned(),
        "VACUUM ANALYZE reminder_schedules".to_owned(),
        // Each round starts with no dirty pages of the last one left to write out.
        "CHECKPOINT".to_owned(),
    ] {
        conn.execute_unprepared(&sql).await.unwrap();
    }
}

/// People enrolled at a steady pace, each with the default reminder settings, a
/// reminder due within the last hour, one device and [`HISTORY`] past reminders.
/// Returns the seeding time.
async fn seed(conn: &DatabaseConnection, people: i64, now: chrono::DateTime<chrono::Utc>) -> i64 {
    let now = now.timestamp_millis();
    let due = due_at(now);
    let settings = serde_json::to_string(&ReminderSettings::default()).unwrap().replace('\'', "''");
    let statements = [
        format!(
            "INSERT INTO users (id, email, password_hash, display_name, timezone, created_at, updated_at, deleted_at, \
             country, descriptive_notifications) \
             SELECT gen_random_uuid(), 'bench' || i || '@example.org', 'x', 'Bench', 'Europe/Berlin', {now}, {now}, \
             NULL, NULL, FALSE FROM generate_series(1, {people}) AS i"
        ),
        format!(
            "INSERT INTO enrollments (id, user_id, program, mode, pace, step, step_started_at, paused_at, created_at, \
             updated_at) SELECT gen_random_uuid(), id, 'closer', 'solo', 'steady', 1, {now}, NULL, {now}, {now} \
             FROM users"
        ),
        format!(
            "INSERT INTO reminder_schedules (user_id, settings, next_slot_at, unanswered, last_sent_at, updated_at) \
             SELECT id, '{settings}', {due}, 0, NULL, {now} FROM users"
        ),
        format!(
            "INSERT INTO push_subscriptions (id, user_id, endpoint, p256dh, auth, expires_at, created_at, updated_at) \
             SELECT gen_random_uuid(), id, 'https://fcm.googleapis.com/fcm/send/bench-' || id, \
             'BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4', \
             'BTBZMqHH6r4Tts7J_aSIgg', NULL, {now}, {now} FROM users"
        ),
        format!(
            "INSERT INTO reminder_deliveries (id, user_id, slot_at, sent_at, opened_at, queued_at) \
             SELECT gen_random_uuid(), u.id, {now} - g * 172800000, {now} - g * 172800000, \
             CASE WHEN g % 7 = 0 THEN {now} - g * 172800000 + 600000 END, {now} - g * 172800000 \
             FROM users u CROSS JOIN generate_series(1::bigint, {HISTORY}::bigint) AS g"
        ),
        // What autovacuum does to tables after bulk inserts: statistics, hint bits
        // and the visibility map, as a dispatch finds them in a running service.
        "VACUUM ANALYZE".to_owned(),
        "CHECKPOINT".to_owned(),
    ];
    for sql in statements {
        conn.execute_unprepared(&sql).await.unwrap();
    }
    now
}

/// A scaled worker's settings on this database, with its own Redis prefix.
fn settings(bench: &BenchDatabase, dir: &std::path::Path) -> Settings {
    let mut settings = Settings::from_args(["--data-dir", dir.to_str().unwrap()]).unwrap();
    settings.database_url = Some(Secret::new(bench.url.clone()));
    settings.redis_url = Some(Secret::new(BenchDatabase::redis_url()));
    settings.queue_namespace = bench.name.clone();
    settings.jwt_secret = Some(Secret::new(BENCH_JWT));
    settings.data_keys = Some(Secret::new(BENCH_KEYS));
    settings.vapid_private_key = Some(attune_shared::push::VapidKey::generate().unwrap().private_key);
    settings
}

/// What an `attune-worker` process has, its clock stopped at `now`.
async fn worker_deps(settings: &Settings, db: DatabaseConnection, now: chrono::DateTime<chrono::Utc>) -> WorkerDeps {
    let secrets = Secrets::resolve(settings).unwrap();
    let queue = JobQueue::connect(settings).await.unwrap();
    let services = Services::new(settings, db, queue, secrets, Arc::new(ManualClock::new(now))).unwrap();
    WorkerDeps::new(services, settings).unwrap()
}

/// The baseline's two parts: rows shaped like the deliveries inserted by
/// multi-row `INSERT`s of a claim's size ([`BATCH`] rows, as the claim records
/// them), and a queued push's worth of bytes per reminder on Redis.
async fn baseline(conn: &DatabaseConnection, settings: &Settings, rows: i64) -> (Duration, Duration) {
    conn.execute_unprepared(
        "CREATE TABLE baseline_deliveries (id uuid PRIMARY KEY, user_id uuid NOT NULL, slot_at bigint NOT NULL, \
         sent_at bigint NOT NULL, queued_at bigint, opened_at bigint, UNIQUE (slot_at, user_id)); \
         CREATE INDEX ON baseline_deliveries (user_id)",
    )
    .await
    .unwrap();
    let now = chrono::Utc::now().timestamp_millis();
    let started = Instant::now();
    let mut done = 0;
    let per_statement = BATCH as i64;
    while done < rows {
        let n = std::cmp::min(per_statement, rows - done);
        let mut sql = String::from("INSERT INTO baseline_deliveries (id, user_id, slot_at, sent_at) VALUES ");
        let mut values = Vec::with_capacity(4 * n as usize);
        for i in 0..n {
            let p = 4 * i;
            if i > 0 {
                sql.push(',');
            }
            sql.push_str(&format!("(${}, ${}, ${}, ${})", p + 1, p + 2, p + 3, p + 4));
            values.extend([uuid::Uuid::now_v7().into(), uuid::Uuid::new_v4().into(), (now - i).into(), now.into()]);
        }
        conn.execute_raw(Statement::from_sql_and_values(conn.get_database_backend(), sql, values)).await.unwrap();
        done += n;
    }
    let insert = started.elapsed();

    let item = serde_json::to_vec(&attune_shared::jobs::Job::SendPush {
        user_id: uuid::Uuid::now_v7(),
        subscription_id: uuid::Uuid::now_v7(),
        message: sample_message(),
        attempt: 0,
    })
    .unwrap();
    let mut redis = redis_connection().await;
    let key = format!("{}:baseline", settings.queue_namespace);
    let started = Instant::now();
    let mut pipe = redis::pipe();
    for _ in 0..rows {
        pipe.cmd("RPUSH").arg(&key).arg(&item).ignore();
    }
    let () = pipe.query_async(&mut redis).await.unwrap();
    (insert, started.elapsed())
}

/// A queued reminder's message, with the Topic reminders share.
fn sample_message() -> PushMessage {
    let mut message = sample_reminder_message();
    message.topic = attune_shared::push::Topic::parse("reminder").ok();
    message
}

/// Where PostgreSQL's write-ahead log is, in bytes.
async fn wal_position(conn: &DatabaseConnection) -> i64 {
    scalar(conn, "SELECT (pg_current_wal_lsn() - '0/0')::bigint").await
}

async fn scalar(conn: &DatabaseConnection, sql: &str) -> i64 {
    let row =
        conn.query_one_raw(Statement::from_string(conn.get_database_backend(), sql.to_owned())).await.unwrap().unwrap();
    row.try_get_by_index(0).unwrap()
}

/// A Redis connection that waits for slow answers: a `KEYS` over a dispatch's
/// 200,000 keys, or the baseline's pipeline, can pass redis-rs's default 500 ms
/// on a busy machine, which failed whole runs.
async fn redis_connection() -> redis::aio::MultiplexedConnection {
    let client = redis::Client::open(BenchDatabase::redis_url()).unwrap();
    let config = redis::AsyncConnectionConfig::new().set_response_timeout(Some(Duration::from_secs(60)));
    client.get_multiplexed_async_connection_with_config(&config).await.unwrap()
}

/// Deletes this run's keys (jobs, their metadata and idempotency keys, the baseline list).
async fn delete_redis_prefix(prefix: &str) {
    let mut conn = redis_connection().await;
    let keys: Vec<String> = redis::cmd("KEYS").arg(format!("{prefix}*")).query_async(&mut conn).await.unwrap();
    for chunk in keys.chunks(10_000) {
        let _: () = redis::cmd("DEL").arg(chunk).query_async(&mut conn).await.unwrap();
    }
    let _: () = redis::cmd("ZREM")
        .arg("core:apalis:queues:list")
        .arg(format!("{prefix}:jobs:workers"))
        .query_async(&mut conn)
        .await
        .unwrap();
}
