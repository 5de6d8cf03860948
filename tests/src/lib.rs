//! The end-to-end test harness: `TestApp::spawn()` starts the real API (with its
//! worker) on port 0 with a fresh database and job queue, and a manual clock.
//!
//! By default each test gets its own SQLite files in a temporary directory. With
//! `ATTUNE_TEST_DATABASE_URL` (a PostgreSQL server URL) and `ATTUNE_TEST_REDIS_URL`
//! set, each test gets a fresh PostgreSQL database (dropped afterwards) and its own
//! Redis key prefix (deleted afterwards) instead.

#![allow(clippy::expect_used, clippy::unwrap_used, reason = "test harness: a failed expectation is a failed test")]

pub mod bench_support;
pub mod chromium;
pub mod fake_apns;
pub mod fake_fcm;
pub mod fake_push;
pub mod fake_smtp;
pub mod load;
pub mod replicas;

use std::{future::Future, sync::Arc, time::Duration};

use attune_api::{Application, BuildOptions, WorkerMode};
use attune_shared::{ManualClock, config::Settings, secrets::Secret};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement};
use serde_json::{Value, json};
use tokio::{sync::oneshot, task::JoinHandle};
use uuid::Uuid;

pub const PASSWORD: &str = "a calm and steady passphrase";

/// Test-only secrets: never used outside tests.
const TEST_JWT_SECRET: &str = "test-only-jwt-secret-0123456789abcdef";
pub const TEST_DATA_KEYS: &str = "t1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Per-test database on PostgreSQL: created on spawn, dropped on stop.
struct PgDatabase {
    admin_url: String,
    name: String,
}

pub struct TestApp {
    pub base_url: String,
    pub client: reqwest::Client,
    pub clock: ManualClock,
    /// A separate connection to the app's database, for checking what is stored.
    pub db: DatabaseConnection,
    pub backend: Backend,
    pub settings: Settings,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<anyhow::Result<()>>>,
    pg: Option<PgDatabase>,
    redis: Option<(String, String)>,
    _dir: tempfile::TempDir,
}

/// A signed-in test user.
#[derive(Debug, Clone)]
pub struct TestUser {
    pub id: String,
    pub email: String,
    pub access_token: String,
    pub refresh_token: String,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// Spawns with settings adjusted by `adjust` (after the harness's own).
    pub async fn spawn_with(adjust: impl FnOnce(&mut Settings)) -> Self {
        Self::spawn_as(WorkerMode::InProcess, adjust).await
    }

    /// Spawns the API alone, as a scaled install runs it: it only enqueues, and
    /// separate `attune-worker` processes consume.
    pub async fn spawn_api_only(adjust: impl FnOnce(&mut Settings)) -> Self {
        Self::spawn_as(WorkerMode::None, adjust).await
    }

    async fn spawn_as(worker: WorkerMode, adjust: impl FnOnce(&mut Settings)) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut settings = Settings::from_args([
            "--bind",
            "127.0.0.1:0",
            "--data-dir",
            dir.path().to_str().expect("utf-8 temp path"),
            "--push-allow-http",
        ])
        .expect("test settings");
        settings.jwt_secret = Some(Secret::new(TEST_JWT_SECRET));
        settings.data_keys = Some(Secret::new(TEST_DATA_KEYS));
        let vapid = attune_shared::push::VapidKey::generate().expect("VAPID key");
        settings.vapid_private_key = Some(vapid.private_key);
        settings.vapid_subject = "mailto:ops@attune.test".into();
        // Tests retry pushes as soon as `Retry-After` allows, not 30 s later.
        settings.push_retry_base_secs = 0;
        settings.cors_origins = vec![];
        settings.database_url = None;
        settings.redis_url = None;
        settings.queue_namespace = format!("attune-test-{}", Uuid::new_v4().simple());

        let mut pg = None;
        if let Some(admin_url) = env_nonempty("ATTUNE_TEST_DATABASE_URL") {
            let name = format!("attune_test_{}", Uuid::new_v4().simple());
            let admin = Database::connect(admin_url.as_str()).await.expect("connect to ATTUNE_TEST_DATABASE_URL");
            admin.execute_unprepared(&format!("CREATE DATABASE {name}")).await.expect("create test database");
            admin.close().await.ok();
            settings.database_url = Some(Secret::new(replace_database(&admin_url, &name)));
            pg = Some(PgDatabase { admin_url, name });
        }
        let redis = env_nonempty("ATTUNE_TEST_REDIS_URL").map(|url| {
            settings.redis_url = Some(Secret::new(url.clone()));
            (url, settings.queue_namespace.clone())
        });
        adjust(&mut settings);

        let clock = ManualClock::new(chrono::Utc::now());
        let options = BuildOptions { clock: Arc::new(clock.clone()), migrate: true, worker };
        let app = Application::build(settings.clone(), options).await.expect("build the app");
        let addr = app.local_addr().expect("bound address");
        let (tx, rx) = oneshot::channel();
        let server = tokio::spawn(app.run_until(async move {
            let _ = rx.await;
        }));
        let db = attune_shared::db::connect(&settings.database_url()).await.expect("test db handle");
        let backend =
            if db.get_database_backend() == DbBackend::Postgres { Backend::Postgres } else { Backend::Sqlite };
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .expect("http client");
        Self {
            base_url: format!("http://{addr}"),
            client,
            clock,
            db,
            backend,
            settings,
            shutdown: Some(tx),
            server: Some(server),
            pg,
            redis,
            _dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, self.url(path))
    }

    pub fn get(&self, path: &str) -> RequestBuilder {
        self.request(Method::GET, path)
    }

    pub fn post(&self, path: &str) -> RequestBuilder {
        self.request(Method::POST, path)
    }

    /// Registers a user with `email` and [`PASSWORD`].
    pub async fn register(&self, email: &str) -> TestUser {
        let response = self
            .post("/v1/auth/register")
            .json(&json!({
                "email": email,
                "password": PASSWORD,
                "display_name": "Sam",
                "timezone": "Europe/Berlin",
            }))
            .send()
            .await
            .expect("register request");
        let status = response.status();
        let body: Value = response.json().await.expect("register body");
        assert_eq!(status, StatusCode::CREATED, "register failed: {body}");
        TestUser::from_token_response(email, &body)
    }

    pub async fn login(&self, email: &str, password: &str) -> Response {
        self.post("/v1/auth/login")
            .json(&json!({"email": email, "password": password}))
            .send()
            .await
            .expect("login request")
    }

    /// A re-authentication token for `user`'s session (`POST /v1/auth/reauth`).
    pub async fn reauth_token(&self, user: &TestUser) -> String {
        let response = self
            .post("/v1/auth/reauth")
            .bearer_auth(&user.access_token)
            .json(&json!({"password": PASSWORD}))
            .send()
            .await
            .expect("reauth request");
        let (status, _, body) = read(response).await;
        assert_eq!(status, StatusCode::OK, "reauth failed: {body}");
        body["reauth_token"].as_str().expect("reauth token").to_owned()
    }

    /// `GET /v1/me/export` as `user`, re-authenticated as the route requires.
    pub async fn export(&self, user: &TestUser) -> Response {
        let token = self.reauth_token(user).await;
        self.get("/v1/me/export")
            .bearer_auth(&user.access_token)
            .header("x-reauth-token", token)
            .send()
            .await
            .expect("export request")
    }

    /// `DELETE /v1/me` as `user`, confirming with [`PASSWORD`].
    pub async fn delete_account(&self, user: &TestUser) -> Response {
        self.request(Method::DELETE, "/v1/me")
            .bearer_auth(&user.access_token)
            .json(&json!({"password": PASSWORD}))
            .send()
            .await
            .expect("delete request")
    }

    /// Counts rows of `table` matching `column = value` (a UUID compared as the
    /// backend stores it).
    pub async fn count_rows_for_user(&self, table: &str, column: &str, user_id: Uuid) -> i64 {
        let (sql, values) = match self.backend {
            Backend::Postgres => {
                (format!("SELECT COUNT(*) AS n FROM {table} WHERE {column} = $1"), vec![user_id.into()])
            }
            Backend::Sqlite => (format!("SELECT COUNT(*) AS n FROM {table} WHERE {column} = ?"), vec![user_id.into()]),
        };
        let row = self
            .db
            .query_one_raw(Statement::from_sql_and_values(self.db.get_database_backend(), sql, values))
            .await
            .expect("count query")
            .expect("a row");
        row.try_get::<i64>("", "n").expect("count value")
    }

    /// `GET /v1/sync` as `user`, with `last_pulled_at` (None sends `null`, as
    /// WatermelonDB's own example does on a first sync).
    pub async fn pull(&self, user: &TestUser, last_pulled_at: Option<i64>) -> Value {
        let since = last_pulled_at.map_or_else(|| "null".to_owned(), |t| t.to_string());
        let response = self
            .get(&format!("/v1/sync?last_pulled_at={since}&schema_version=1&migration=null"))
            .bearer_auth(&user.access_token)
            .send()
            .await
            .expect("pull request");
        let (status, _, body) = read(response).await;
        assert_eq!(status, StatusCode::OK, "pull failed: {body}");
        // The protocol the README promises: records only ever come as `updated`, so a
        // WatermelonDB client (`sendCreatedAsUpdated: true`) never recreates what it
        // deleted locally.
        for (table, changes) in body["changes"].as_object().expect("changes object") {
            assert_eq!(changes["created"], serde_json::json!([]), "{table} sent records as created: {body}");
        }
        body
    }

    /// Links two people as partners: `inviter` makes an invitation, `invitee`
    /// accepts its code.
    pub async fn link_partners(&self, inviter: &TestUser, invitee: &TestUser) {
        let (status, _, invitation) =
            read(self.post("/v1/partner/invitations").bearer_auth(&inviter.access_token).send().await.expect("invite"))
                .await;
        assert_eq!(status, StatusCode::CREATED, "{invitation}");
        let code = invitation["code"].as_str().expect("a code");
        let accept = self.post(&format!("/v1/partner/invitations/{code}/accept")).bearer_auth(&invitee.access_token);
        assert_eq!(accept.send().await.expect("accept").status(), StatusCode::CREATED);
    }

    /// Enrolls `user` in the program, solo, at `pace`.
    pub async fn enroll(&self, user: &TestUser, pace: &str) {
        let response = self
            .post("/v1/enrollments")
            .bearer_auth(&user.access_token)
            .json(&json!({"program": "closer", "mode": "solo", "pace": pace}))
            .send()
            .await
            .expect("enroll request");
        assert_eq!(response.status(), StatusCode::CREATED, "enrollment failed");
    }

    /// Runs one SQL statement (in the backend's placeholder style) on the app's
    /// database; returns the rows it affected.
    pub async fn execute(&self, sql: &str, values: Vec<sea_orm::Value>) -> u64 {
        let statement = Statement::from_sql_and_values(self.db.get_database_backend(), sql, values);
        self.db.execute_raw(statement).await.expect(sql).rows_affected()
    }

    /// Makes every `op` (`INSERT`, `UPDATE` or `DELETE`) on `table` fail inside the
    /// database, as a full disk or a lost connection would fail that one step:
    /// for proving that a use case whose later step fails leaves nothing of its
    /// earlier steps. [`TestApp::allow_writes`] undoes it.
    pub async fn fail_writes(&self, table: &str, op: &str) {
        let trigger = format!("attune_test_fail_{table}_{}", op.to_lowercase());
        let statements = match self.backend {
            Backend::Sqlite => vec![format!(
                "CREATE TRIGGER {trigger} BEFORE {op} ON {table} BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
            )],
            Backend::Postgres => vec![
                "CREATE OR REPLACE FUNCTION attune_test_fail() RETURNS trigger LANGUAGE plpgsql AS \
                 $$ BEGIN RAISE EXCEPTION 'injected failure'; END $$"
                    .to_owned(),
                format!(
                    "CREATE TRIGGER {trigger} BEFORE {op} ON {table} FOR EACH ROW EXECUTE FUNCTION attune_test_fail()"
                ),
            ],
        };
        for statement in statements {
            self.db.execute_unprepared(&statement).await.expect("create the failing trigger");
        }
    }

    /// Undoes [`TestApp::fail_writes`].
    pub async fn allow_writes(&self, table: &str, op: &str) {
        let trigger = format!("attune_test_fail_{table}_{}", op.to_lowercase());
        let statement = match self.backend {
            Backend::Sqlite => format!("DROP TRIGGER {trigger}"),
            Backend::Postgres => format!("DROP TRIGGER {trigger} ON {table}"),
        };
        self.db.execute_unprepared(&statement).await.expect("drop the failing trigger");
    }

    /// `POST /v1/sync` as `user`; returns the raw response.
    pub async fn push(&self, user: &TestUser, last_pulled_at: Option<i64>, changes: Value) -> Response {
        let since = last_pulled_at.map_or_else(|| "null".to_owned(), |t| t.to_string());
        self.post(&format!("/v1/sync?last_pulled_at={since}"))
            .bearer_auth(&user.access_token)
            .json(&json!({ "changes": changes }))
            .send()
            .await
            .expect("push request")
    }

    /// A sync service over the app's database, with the app's keys and clock
    /// (for running worker jobs and operator commands by hand).
    pub fn sync_service(&self, data_keys: &str) -> attune_shared::sync::SyncService {
        attune_shared::sync::SyncService::new(
            self.db.clone(),
            attune_shared::crypto::DataCipher::new(
                attune_shared::secrets::KeyRing::parse(data_keys).expect("key ring"),
            ),
            Arc::new(self.clock.clone()),
            self.settings.tombstone_retention_days,
        )
    }

    /// What a worker would have: services built as `attune-worker` builds them,
    /// over the harness's database handle (on SQLite one connection per database,
    /// as in one process: two would fail each other's lock upgrades), its own
    /// job-queue connection, the app's keys and clock (for running worker jobs by
    /// hand, one or several at once).
    pub async fn worker_deps(&self) -> attune_worker::WorkerDeps {
        let secrets = attune_shared::secrets::Secrets::resolve(&self.settings).expect("test secrets");
        let queue = attune_shared::jobs::JobQueue::connect(&self.settings).await.expect("job queue");
        let clock = Arc::new(self.clock.clone());
        let services = attune_shared::services::Services::new(&self.settings, self.db.clone(), queue, secrets, clock)
            .expect("the services");
        attune_worker::WorkerDeps::new(services, &self.settings).expect("worker deps")
    }

    /// Signs `user` in again, e.g. after the clock moved past their access token.
    pub async fn sign_in_again(&self, user: &TestUser) -> TestUser {
        let (status, _, body) = read(self.login(&user.email, PASSWORD).await).await;
        assert_eq!(status, StatusCode::OK, "sign-in failed: {body}");
        TestUser::from_token_response(&user.email, &body)
    }

    /// Counts all rows of `table`.
    pub async fn count_rows(&self, table: &str) -> i64 {
        let sql = format!("SELECT COUNT(*) AS n FROM {table}");
        let row = self
            .db
            .query_one_raw(Statement::from_string(self.db.get_database_backend(), sql))
            .await
            .expect("count query")
            .expect("a row");
        row.try_get::<i64>("", "n").expect("count value")
    }

    /// Every (table, column) pair of the schema whose column names a user.
    pub async fn user_columns(&self) -> Vec<(String, String)> {
        let sql = match self.backend {
            Backend::Postgres => "SELECT table_name AS t, column_name AS c FROM information_schema.columns \
                 WHERE table_schema = 'public' AND (column_name = 'user_id' OR (table_name = 'users' AND column_name = 'id'))"
                .to_owned(),
            Backend::Sqlite => "SELECT m.name AS t, p.name AS c FROM sqlite_master m JOIN pragma_table_info(m.name) p \
                 WHERE m.type = 'table' AND (p.name = 'user_id' OR (m.name = 'users' AND p.name = 'id'))"
                .to_owned(),
        };
        let rows = self
            .db
            .query_all_raw(Statement::from_string(self.db.get_database_backend(), sql))
            .await
            .expect("schema query");
        rows.iter()
            .map(|r| (r.try_get::<String>("", "t").expect("t"), r.try_get::<String>("", "c").expect("c")))
            .collect()
    }

    /// Stops the app gracefully and removes its database and queue keys.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            let result = tokio::time::timeout(Duration::from_secs(60), server).await;
            assert!(matches!(result, Ok(Ok(Ok(())))), "the app did not stop cleanly: {result:?}");
        }
        self.cleanup().await;
    }

    async fn cleanup(&mut self) {
        if let Some(pg) = self.pg.take() {
            drop_database(&pg).await;
        }
        if let Some((url, prefix)) = self.redis.take() {
            delete_redis_prefix(&url, &prefix).await;
        }
    }
}

impl Drop for TestApp {
    // A test that panicked before `stop` still cleans up after itself.
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        clean_up_blocking(self.pg.take(), self.redis.take());
    }
}

/// Drops a test's PostgreSQL database and deletes its Redis keys from a `Drop`
/// (on a thread of its own, which may block on a runtime of its own).
fn clean_up_blocking(pg: Option<PgDatabase>, redis: Option<(String, String)>) {
    if pg.is_none() && redis.is_none() {
        return;
    }
    let _ = std::thread::spawn(move || {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
            return;
        };
        runtime.block_on(async move {
            if let Some(pg) = pg {
                drop_database(&pg).await;
            }
            if let Some((url, prefix)) = redis {
                delete_redis_prefix(&url, &prefix).await;
            }
        });
    })
    .join();
}

impl TestUser {
    pub fn from_token_response(email: &str, body: &Value) -> Self {
        Self {
            id: body["user"]["id"].as_str().expect("user id").to_owned(),
            email: email.to_owned(),
            access_token: body["access_token"].as_str().expect("access token").to_owned(),
            refresh_token: body["refresh_token"].as_str().expect("refresh token").to_owned(),
        }
    }

    pub fn uuid(&self) -> Uuid {
        self.id.parse().expect("uuid")
    }
}

/// How many migrations to take down to undo `name` and every one after it, so a
/// migration test keeps working as later migrations are added.
pub fn migrations_back_through(name: &str) -> u32 {
    use attune_migrations::MigratorTrait;
    let migrations = attune_migrations::Migrator::migrations();
    let from_end = migrations.iter().rev().position(|m| m.name() == name).expect("a migration of that name");
    u32::try_from(from_end + 1).expect("a few migrations")
}

/// Polls `check` until it returns true, failing after `timeout`. For waiting on
/// real asynchronous work (the worker, a fake service), not for passing time:
/// tests move time with the manual clock.
pub async fn eventually<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    poll_until(what, timeout, || {
        let checked = check();
        async move { if checked.await { Ok(()) } else { Err(String::new()) } }
    })
    .await;
}

/// Polls `check` until it gives a value, failing after `timeout` with `what` and
/// what the last check said instead (its `Err`).
pub async fn poll_until<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match check().await {
            Ok(value) => return value,
            Err(state) => assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}; {state}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits (up to 30 s) until every job on `queue` has *finished*: none waiting,
/// none held by a worker whose outcome is not yet recorded, none scheduled for
/// a retry. A job that was merely fetched still counts, so whatever it does
/// (a duplicate push, say) has happened by the time this returns.
/// Pass an existing handle: connecting runs apalis's SQLite setup, which can
/// find the queue busy.
pub async fn queue_drained(queue: &attune_shared::jobs::JobQueue) {
    poll_until("the queue to finish", Duration::from_secs(30), || async {
        let depth = queue.depth().await.expect("queue depth");
        if depth.is_finished() { Ok(()) } else { Err(format!("{depth:?}")) }
    })
    .await;
}

/// Reads a response as JSON, with its status and content type.
pub async fn read(response: Response) -> (StatusCode, String, Value) {
    let status = response.status();
    let content_type =
        response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let text = response.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, content_type, body)
}

/// Asserts a problem+json answer with `status`, returning its body.
pub async fn expect_problem(response: Response, status: StatusCode) -> Value {
    let (actual, content_type, body) = read(response).await;
    assert_eq!(actual, status, "unexpected status; body: {body}");
    assert_eq!(content_type, "application/problem+json", "body: {body}");
    assert_eq!(body["status"], status.as_u16(), "body: {body}");
    assert!(body["title"].is_string() && body["type"].is_string(), "body: {body}");
    assert!(!body["detail"].as_str().unwrap_or_default().is_empty(), "problem without detail: {body}");
    body
}

/// The fields a validation problem names.
pub fn problem_fields(body: &Value) -> Vec<String> {
    body["errors"]
        .as_array()
        .map(|errors| errors.iter().filter_map(|e| e["field"].as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn replace_database(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let base = match base.rfind('/') {
        Some(slash) if slash > "postgres://".len() => &base[..slash],
        _ => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

async fn drop_database(pg: &PgDatabase) {
    if let Ok(admin) = Database::connect(pg.admin_url.as_str()).await {
        let _ = admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", pg.name)).await;
        let _ = admin.close().await;
    }
}

async fn delete_redis_prefix(url: &str, prefix: &str) {
    let Ok(client) = redis::Client::open(url) else {
        return;
    };
    let Ok(mut conn) = client.get_multiplexed_async_connection().await else {
        return;
    };
    let keys: Vec<String> =
        redis::cmd("KEYS").arg(format!("{prefix}*")).query_async(&mut conn).await.unwrap_or_default();
    if !keys.is_empty() {
        let _: Result<(), _> = redis::cmd("DEL").arg(keys).query_async(&mut conn).await;
    }
    // apalis lists every queue's worker set in one global sorted set.
    let _: Result<(), _> = redis::cmd("ZREM")
        .arg("core:apalis:queues:list")
        .arg(format!("{prefix}:jobs:workers"))
        .query_async(&mut conn)
        .await;
}

#[cfg(test)]
mod tests {
    use super::replace_database;

    #[test]
    fn swaps_the_database_of_a_postgres_url() {
        assert_eq!(replace_database("postgres://root@127.0.0.1:5432/test", "x"), "postgres://root@127.0.0.1:5432/x");
        assert_eq!(
            replace_database("postgres://root@127.0.0.1:5432/test?sslmode=disable", "x"),
            "postgres://root@127.0.0.1:5432/x?sslmode=disable"
        );
        assert_eq!(replace_database("postgres://root@127.0.0.1:5432", "x"), "postgres://root@127.0.0.1:5432/x");
    }
}
