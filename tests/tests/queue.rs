//! The job queue stays bounded: finished jobs are deleted once they are older
//! than `ATTUNE_QUEUE_RETENTION_SECS`, and nothing else is (SQLite queue by
//! default, Redis with `ATTUNE_TEST_REDIS_URL`). Time moves on the app's clock;
//! nothing here waits for it.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "integration tests")]

use std::{sync::Arc, time::Duration};

use attune_shared::{
    Clock,
    jobs::{Job, JobQueue, QueueBackend, UniqueJob},
};
use attune_tests::{TestApp, TestUser, bench_support::sample_reminder_message, fake_push::FakePushService, read};
use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use serde_json::Value;
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(30);
/// One hour: shorter than the idempotency keys' day, to show they outlive it.
const RETENTION_SECS: u64 = 3600;

/// The app with a device subscribed at the fake push service: the app's id for
/// the subscription, and the fake's.
async fn setup(retention_secs: u64) -> (TestApp, FakePushService, TestUser, Uuid, String) {
    let fake = FakePushService::start(Arc::new(attune_shared::SystemClock)).await;
    let host = fake.host().to_owned();
    let app = TestApp::spawn_with(|s| {
        s.push_allowed_hosts = vec![host];
        s.queue_retention_secs = retention_secs;
    })
    .await;
    let (_, _, key) = read(app.get("/v1/push/vapid-public-key").send().await.unwrap()).await;
    fake.set_application_server_key(key["public_key"].as_str().unwrap());
    let user = app.register("kept@example.org").await;
    forget_the_registration_mail(&app).await;
    let device = fake.new_subscription();
    let response =
        app.post("/v1/push/subscriptions").bearer_auth(&user.access_token).json(&device.json).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let (_, _, listed) =
        read(app.get("/v1/push/subscriptions").bearer_auth(&user.access_token).send().await.unwrap()).await;
    let subscription_id = listed[0]["id"].as_str().unwrap().parse().unwrap();
    (app, fake, user, subscription_id, device.id)
}

/// Registration queues a verification mail where mail can go (embedded: the
/// outbox); a scaled install without SMTP queues none. These tests count the
/// jobs they queue themselves, so the mail's job, once finished, is removed
/// from the queue's storage before they start.
async fn forget_the_registration_mail(app: &TestApp) {
    let queue = JobQueue::connect(&app.settings).await.unwrap();
    attune_tests::queue_drained(&queue).await;
    match queue.backend().clone() {
        QueueBackend::Sqlite(storage) => {
            let removed = sea_orm::sqlx::query("DELETE FROM Jobs").execute(storage.pool()).await.unwrap();
            assert_eq!(removed.rows_affected(), 1, "the registration's one mail job");
        }
        QueueBackend::Redis(_) => {
            assert!(stored(&queue, app).await.finished.is_empty(), "no SMTP, no mail job");
        }
    }
}

async fn test_push(app: &TestApp, user: &TestUser) {
    let (status, _, body) = read(app.post("/v1/push/test").bearer_auth(&user.access_token).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
}

/// What the queue's storage holds, read straight from Redis or SQLite.
#[derive(Debug, PartialEq, Eq)]
struct Stored {
    /// Ids of finished jobs still kept (Redis: the done and dead sets; SQLite:
    /// `Done`, `Killed` and `Failed` rows).
    finished: Vec<String>,
    /// Jobs whose payload is stored (Redis: fields of the data hash; SQLite: rows).
    payloads: usize,
    /// Jobs with a metadata record (Redis: `<queue>:meta:<id>` keys; SQLite: rows).
    metadata: usize,
}

async fn stored(queue: &JobQueue, app: &TestApp) -> Stored {
    match queue.backend().clone() {
        QueueBackend::Redis(mut storage) => {
            let config = storage.get_config().clone();
            let conn = storage.get_connection();
            let mut finished: Vec<String> = redis::cmd("SUNION")
                .arg(config.done_jobs_set())
                .arg(config.dead_jobs_set())
                .query_async(conn)
                .await
                .unwrap();
            finished.sort();
            let ids: Vec<String> = redis::cmd("HKEYS").arg(config.job_data_hash()).query_async(conn).await.unwrap();
            let payloads = ids.len();
            // The ids of every job ever enqueued in this test: the data hash's and
            // the done set's (a job stripped of its payload but not its metadata
            // would still be found).
            let mut metadata = 0;
            for id in ids.iter().chain(&finished).collect::<std::collections::BTreeSet<_>>() {
                let exists: bool = redis::cmd("EXISTS")
                    .arg(format!("{}:{id}", config.job_meta_hash()))
                    .query_async(conn)
                    .await
                    .unwrap();
                metadata += usize::from(exists);
            }
            Stored { finished, payloads, metadata }
        }
        QueueBackend::Sqlite(storage) => {
            let name = format!("{}:jobs", app.settings.queue_namespace);
            let finished: Vec<String> = sea_orm::sqlx::query_scalar(
                "SELECT id FROM Jobs WHERE job_type = ? AND status IN ('Done', 'Killed', 'Failed') ORDER BY id",
            )
            .bind(&name)
            .fetch_all(storage.pool())
            .await
            .unwrap();
            let rows: i64 = sea_orm::sqlx::query_scalar("SELECT COUNT(*) FROM Jobs WHERE job_type = ?")
                .bind(&name)
                .fetch_one(storage.pool())
                .await
                .unwrap();
            let rows = usize::try_from(rows).unwrap();
            Stored { finished, payloads: rows, metadata: rows }
        }
    }
}

/// Marks the finished job `id` as given up, as apalis records a job that ran
/// out of attempts (on Redis in the dead set; on SQLite `Failed` with no
/// attempts left): failing a job 25 times for real would take minutes.
async fn give_up(queue: &JobQueue, id: &str) {
    match queue.backend().clone() {
        QueueBackend::Redis(mut storage) => {
            let config = storage.get_config().clone();
            let _: () = redis::pipe()
                .cmd("SMOVE")
                .arg(config.done_jobs_set())
                .arg(config.dead_jobs_set())
                .arg(id)
                .ignore()
                .cmd("HSET")
                .arg(format!("{}:{id}", config.job_meta_hash()))
                .arg("status")
                .arg("Failed")
                .ignore()
                .query_async(storage.get_connection())
                .await
                .unwrap();
        }
        QueueBackend::Sqlite(storage) => {
            sea_orm::sqlx::query("UPDATE Jobs SET status = 'Failed', attempts = max_attempts WHERE id = ?")
                .bind(id)
                .execute(storage.pool())
                .await
                .unwrap();
        }
    }
}

/// How many of the jobs `ids` leave any trace: on Redis a payload, a metadata
/// key or a done- or dead-set entry; on SQLite a row.
async fn traces_of(queue: &JobQueue, ids: &[String]) -> usize {
    let mut traces = 0;
    for id in ids {
        traces += match queue.backend().clone() {
            QueueBackend::Redis(mut storage) => {
                let config = storage.get_config().clone();
                let (payload, metadata, done, dead): (bool, bool, bool, bool) = redis::pipe()
                    .cmd("HEXISTS")
                    .arg(config.job_data_hash())
                    .arg(id)
                    .cmd("EXISTS")
                    .arg(format!("{}:{id}", config.job_meta_hash()))
                    .cmd("SISMEMBER")
                    .arg(config.done_jobs_set())
                    .arg(id)
                    .cmd("SISMEMBER")
                    .arg(config.dead_jobs_set())
                    .arg(id)
                    .query_async(storage.get_connection())
                    .await
                    .unwrap();
                usize::from(payload) + usize::from(metadata) + usize::from(done) + usize::from(dead)
            }
            QueueBackend::Sqlite(storage) => {
                let rows: i64 = sea_orm::sqlx::query_scalar("SELECT COUNT(*) FROM Jobs WHERE id = ?")
                    .bind(id)
                    .fetch_one(storage.pool())
                    .await
                    .unwrap();
                usize::try_from(rows).unwrap()
            }
        };
    }
    traces
}

/// The id of the job that carries the push queued alone under `key` (on Redis
/// a batch of one, under the batch's key).
async fn keyed_job(queue: &JobQueue, key: &str) -> String {
    match queue.backend().clone() {
        QueueBackend::Redis(mut storage) => {
            let config = storage.get_config().clone();
            redis::cmd("GET")
                .arg(format!("{}:{}", config.idempotency_key_set(), attune_shared::jobs::push_batch_key([key])))
                .query_async(storage.get_connection())
                .await
                .unwrap()
        }
        QueueBackend::Sqlite(storage) => sea_orm::sqlx::query_scalar("SELECT id FROM Jobs WHERE idempotency_key = ?")
            .bind(key)
            .fetch_one(storage.pool())
            .await
            .unwrap(),
    }
}

fn a_reminder(user: &TestUser, subscription_id: Uuid, key: &str) -> UniqueJob {
    let message = sample_reminder_message();
    UniqueJob { key: key.to_owned(), job: Job::SendPush { user_id: user.uuid(), subscription_id, message, attempt: 0 } }
}

fn after(now: DateTime<Utc>, secs: u64) -> DateTime<Utc> {
    now + chrono::Duration::seconds(i64::try_from(secs).unwrap())
}

#[tokio::test]
async fn finished_jobs_are_deleted_after_the_retention_and_nothing_else_is() {
    let (app, fake, user, subscription_id, _) = setup(RETENTION_SECS).await;
    let queue = JobQueue::connect(&app.settings).await.unwrap();
    // Two test pushes and a keyed reminder push run to the end...
    test_push(&app, &user).await;
    test_push(&app, &user).await;
    queue.enqueue_unique(vec![a_reminder(&user, subscription_id, "reminder-1")]).await.unwrap();
    fake.wait_for_deliveries(3, WAIT).await;
    attune_tests::queue_drained(&queue).await;
    // ...and an account purge waits for tomorrow (queue time).
    let waiting = Job::PurgeAccount { user_id: Uuid::now_v7() };
    queue.enqueue_after(waiting, Duration::from_secs(24 * 3600)).await.unwrap();
    // One of the test pushes ran out of attempts instead.
    let test_pushes = stored(&queue, &app).await.finished;
    let reminder = keyed_job(&queue, "reminder-1").await;
    let given_up = test_pushes.iter().find(|id| **id != reminder).unwrap();
    give_up(&queue, given_up).await;
    let before = stored(&queue, &app).await;
    assert_eq!(before.finished.len(), 3, "{before:?}");
    assert_eq!((before.payloads, before.metadata), (4, 4), "three finished and one waiting: {before:?}");

    // Just inside the retention, a sweep keeps everything.
    let now = app.clock.now();
    assert_eq!(queue.sweep_finished(after(now, RETENTION_SECS - 60)).await.unwrap(), 0);
    assert_eq!(stored(&queue, &app).await, before, "recent jobs are kept");

    // Past it, the finished jobs go, payload, metadata and done-set entry alike.
    app.clock.set(after(now, RETENTION_SECS + 60));
    let deleted = queue.sweep_finished(app.clock.now()).await.unwrap();
    let after_sweep = stored(&queue, &app).await;
    match app.settings.redis_url {
        Some(_) => {
            assert_eq!(deleted, 3);
            assert_eq!(traces_of(&queue, &before.finished).await, 0, "no payload, metadata or set entry left");
            assert_eq!(after_sweep, Stored { finished: vec![], payloads: 1, metadata: 1 }, "only the waiting job");
        }
        None => {
            // On SQLite a keyed job's row is its idempotency key: it stays as
            // long as the key would on Redis.
            assert_eq!(deleted, 2);
            let unkeyed: Vec<String> =
                before.finished.iter().filter(|id| !after_sweep.finished.contains(id)).cloned().collect();
            assert_eq!(traces_of(&queue, &unkeyed).await, 0, "the test pushes' rows are gone");
            assert_eq!(after_sweep.finished.len(), 1, "the keyed reminder: {after_sweep:?}");
            assert_eq!(after_sweep.payloads, 2, "the keyed reminder and the waiting job");
        }
    }
    let depth = queue.depth().await.unwrap();
    assert_eq!((depth.pending, depth.running, depth.scheduled), (0, 0, 1), "the waiting job is still scheduled");

    // The reminder's idempotency key outlives its job: queuing it again, as a
    // dispatch that rolled back would, sends nothing twice.
    queue.enqueue_unique(vec![a_reminder(&user, subscription_id, "reminder-1")]).await.unwrap();
    queue.enqueue_unique(vec![a_reminder(&user, subscription_id, "reminder-2")]).await.unwrap();
    fake.wait_for_deliveries(4, WAIT).await;
    wait_until_only_scheduled_remain(&queue).await;
    assert_eq!(fake.deliveries().len(), 4, "the first reminder was not sent again");
    let payloads: Vec<Value> = fake.deliveries().iter().map(|d| d.payload.clone()).collect();
    assert_eq!(payloads.iter().filter(|p| p["type"] == "reminder").count(), 2, "{payloads:?}");

    // A day on, the SQLite key's row goes too.
    let a_day_on = after(app.clock.now(), 24 * 3600);
    queue.sweep_finished(a_day_on).await.unwrap();
    let finally = stored(&queue, &app).await;
    assert!(finally.finished.is_empty(), "{finally:?}");
    assert_eq!(traces_of(&queue, &before.finished).await, 0);
    assert_eq!(finally.payloads, 1, "only the waiting job: {finally:?}");
    app.stop().await;
}

/// As [`attune_tests::queue_drained`], but a job scheduled for later may remain.
async fn wait_until_only_scheduled_remain(queue: &JobQueue) {
    attune_tests::eventually("every due job finished", WAIT, || {
        let queue = queue.clone();
        async move {
            let depth = queue.depth().await.unwrap();
            depth.pending == 0 && depth.running == 0
        }
    })
    .await;
}

#[tokio::test]
async fn the_worker_sweeps_on_its_own_once_the_retention_has_passed() {
    // A one-second retention: the worker sweeps every second.
    let (app, fake, user, _, _) = setup(1).await;
    let queue = JobQueue::connect(&app.settings).await.unwrap();
    test_push(&app, &user).await;
    fake.wait_for_deliveries(1, WAIT).await;
    attune_tests::queue_drained(&queue).await;
    let finished = stored(&queue, &app).await.finished;
    assert_eq!(finished.len(), 1, "kept until the clock moves");

    app.clock.advance(chrono::Duration::minutes(5));
    attune_tests::eventually("the worker's sweep deleted the finished job", WAIT, || {
        let (queue, app, finished) = (queue.clone(), &app, &finished);
        async move {
            stored(&queue, app).await == Stored { finished: vec![], payloads: 0, metadata: 0 }
                && traces_of(&queue, finished).await == 0
        }
    })
    .await;
    app.stop().await;
}

#[tokio::test]
async fn the_queue_depth_metric_tells_waiting_running_and_later_jobs_apart() {
    let (app, fake, user, subscription_id, device) = setup(RETENTION_SECS).await;
    let queue = JobQueue::connect(&app.settings).await.unwrap();
    // A push the push service has not answered yet, and a retry for later.
    fake.hold_next(&device);
    test_push(&app, &user).await;
    fake.wait_for_held(1, WAIT).await;
    let retry = a_reminder(&user, subscription_id, "later").job;
    queue.enqueue_after(retry, Duration::from_secs(3600)).await.unwrap();

    let scraped = metrics(&app).await;
    for line in [
        r#"attune_queue_depth{state="pending"} 0"#,
        r#"attune_queue_depth{state="running"} 1"#,
        r#"attune_queue_depth{state="scheduled"} 1"#,
    ] {
        assert!(scraped.lines().any(|l| l == line), "{line} in:\n{scraped}");
    }

    // Answered, the push finishes; the retry is still to come.
    fake.release_held();
    fake.wait_for_deliveries(1, WAIT).await;
    wait_until_only_scheduled_remain(&queue).await;
    let scraped = metrics(&app).await;
    assert!(scraped.lines().any(|l| l == r#"attune_queue_depth{state="running"} 0"#), "{scraped}");
    assert!(scraped.lines().any(|l| l == r#"attune_queue_depth{state="scheduled"} 1"#), "{scraped}");
    app.stop().await;
}

async fn metrics(app: &TestApp) -> String {
    app.get("/metrics").send().await.unwrap().text().await.unwrap()
}
