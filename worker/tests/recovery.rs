//! A worker that dies holding a job. On PostgreSQL + Redis: two real
//! `attune-worker` processes, one killed with SIGKILL mid-send; the other runs
//! the job and the push reaches the device exactly once. On SQLite (embedded
//! runs one process, its worker inside the API) the same job survives a restart:
//! the worker is killed mid-send and the process that replaces it, finding the
//! dead worker's heartbeat older than the orphan timeout, takes the job back and
//! sends it once (apalis-sqlite's orphan re-enqueue, as an embedded API's
//! restarted worker does).

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "integration tests")]

use std::{
    process::{Child, Command, Stdio},
    sync::Arc,
    time::Duration,
};

use attune_shared::jobs::JobQueue;
use attune_tests::{TestApp, fake_push::FakePushService, read};
use reqwest::StatusCode;

const WAIT: Duration = Duration::from_secs(60);

/// An `attune-worker` process for the app's database and queue (Redis, or the
/// SQLite queue in the app's data directory), with a one-second heartbeat and a
/// three-second orphan timeout.
struct WorkerProcess(Child);

impl WorkerProcess {
    fn start(app: &TestApp, push_host: &str) -> Self {
        let s = &app.settings;
        let secret = |value: &Option<attune_shared::secrets::Secret>| value.as_ref().unwrap().expose().to_owned();
        let mut command = Command::new(env!("CARGO_BIN_EXE_attune-worker"));
        command.env_clear();
        if let Some(redis) = &s.redis_url {
            command.env("REDIS_URL", redis.expose());
        }
        let child = command
            .env("DATABASE_URL", s.database_url())
            .env("ATTUNE_QUEUE_NAMESPACE", &s.queue_namespace)
            .env("ATTUNE_JWT_SECRET", secret(&s.jwt_secret))
            .env("ATTUNE_DATA_KEYS", secret(&s.data_keys))
            .env("ATTUNE_VAPID_PRIVATE_KEY", secret(&s.vapid_private_key))
            .env("ATTUNE_VAPID_SUBJECT", &s.vapid_subject)
            .env("ATTUNE_PUSH_ALLOWED_HOSTS", push_host)
            .env("ATTUNE_PUSH_ALLOW_HTTP", "true")
            .env("ATTUNE_BIND", "127.0.0.1:0")
            .env("ATTUNE_DATA_DIR", &s.data_dir)
            .env("ATTUNE_WORKER_HEARTBEAT_SECS", "1")
            .env("ATTUNE_WORKER_ORPHAN_TIMEOUT_SECS", "3")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("start attune-worker");
        Self(child)
    }

    /// SIGKILL: no graceful shutdown, no lease released, no goodbye to Redis.
    fn kill(&mut self) {
        self.0.kill().expect("SIGKILL the worker");
        self.0.wait().expect("reap the worker");
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn a_push_held_by_a_killed_worker_is_sent_by_another_exactly_once() {
    let fake = FakePushService::start(Arc::new(attune_shared::SystemClock)).await;
    let host = fake.host().to_owned();
    // The API only enqueues; the two processes below are the only workers.
    let app = TestApp::spawn_api_only(|s| s.push_allowed_hosts = vec![host.clone()]).await;
    let (_, _, key) = read(app.get("/v1/push/vapid-public-key").send().await.unwrap()).await;
    fake.set_application_server_key(key["public_key"].as_str().unwrap());
    let user = app.register("recovered@example.org").await;
    let phone = fake.new_subscription();
    let response =
        app.post("/v1/push/subscriptions").bearer_auth(&user.access_token).json(&phone.json).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);

    // The first worker takes the push and is still waiting for the push
    // service's answer when it dies. (It first sends the registration's
    // verification mail, where mail can go: that job ends before the push.)
    let mut first = WorkerProcess::start(&app, &host);
    let queue = JobQueue::connect(&app.settings).await.unwrap();
    attune_tests::queue_drained(&queue).await;
    fake.hold_next(&phone.id);
    let (status, _, _) = read(app.post("/v1/push/test").bearer_auth(&user.access_token).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    fake.wait_for_held(1, WAIT).await;
    assert_eq!(queue.depth().await.unwrap().running, 1, "the first worker holds the job");
    let _second = if app.settings.redis_url.is_some() {
        let second = WorkerProcess::start(&app, &host);
        first.kill();
        second
    } else {
        // Embedded: one process at a time; the second is the first's restart.
        first.kill();
        WorkerProcess::start(&app, &host)
    };

    // The second worker notices the first one's silence and sends the push itself.
    let delivered = fake.wait_for_deliveries(1, WAIT).await;
    assert_eq!(delivered[0].subscription_id, phone.id);
    assert_eq!(delivered[0].payload["type"], "test");
    attune_tests::queue_drained(&queue).await;
    assert_eq!(fake.deliveries().len(), 1, "delivered exactly once");
    assert_eq!(fake.held(), 1, "the killed worker's request, never answered");
    assert_eq!(fake.requests_for(&phone.id), 1, "the second worker's, answered");
    app.stop().await;
}
