//! Real `attune-api` processes side by side on one PostgreSQL database and one
//! Redis namespace, as the replicas of a scaled install run. PostgreSQL + Redis
//! only (`ATTUNE_TEST_DATABASE_URL` and `ATTUNE_TEST_REDIS_URL`): embedded is
//! one process by design.
//!
//! The binary is built the way the benchmarks build theirs (`cargo build`, here
//! the debug profile the tests themselves were built with), so a test runs the
//! API exactly as an operator starts it.

use std::{
    path::PathBuf,
    process::{Command, Stdio},
    sync::OnceLock,
    time::Duration,
};

use reqwest::{RequestBuilder, StatusCode};
use sea_orm::{ConnectionTrait, Database};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    PASSWORD, PgDatabase, TEST_DATA_KEYS, TEST_JWT_SECRET, TestUser,
    bench_support::{Proc, free_port},
    clean_up_blocking, delete_redis_prefix, drop_database, env_nonempty, poll_until, replace_database,
};

/// One running `attune-api` process.
pub struct Replica {
    pub base_url: String,
    pub client: reqwest::Client,
    _process: Proc,
}

/// Several replicas of one install, stopped (and their database and Redis keys
/// removed) when dropped.
pub struct Replicas {
    replicas: Vec<Replica>,
    pg: Option<PgDatabase>,
    redis: Option<(String, String)>,
    _dir: tempfile::TempDir,
}

/// `target/<profile>/attune-api`, built once per test process. Built for the
/// whole workspace with its tests (`--workspace --tests`), so the dependencies
/// are resolved with the features `cargo test --workspace` used and only the
/// binary is linked anew.
fn api_binary() -> &'static PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let mut cargo = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        cargo.args(["build", "--workspace", "--tests", "--bins"]);
        // What cargo sets for running this test (the package's name, manifest
        // directory, …) is not this build's: build scripts that watch those
        // variables (ring's) would rebuild half the dependencies.
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy();
            let set_for_the_test = ["CARGO_PKG_", "CARGO_MANIFEST_", "CARGO_CRATE_", "CARGO_BIN_"]
                .iter()
                .any(|prefix| name.starts_with(prefix))
                || ["CARGO_PRIMARY_PACKAGE", "CARGO_TARGET_TMPDIR", "CARGO_RUSTC_CURRENT_DIR", "OUT_DIR"]
                    .contains(&name.as_ref());
            if set_for_the_test {
                cargo.env_remove(name.as_ref());
            }
        }
        let status = cargo.status().expect("run cargo build");
        assert!(status.success(), "cargo build of attune-api failed");
        // This test's executable is target/<profile>/deps/<name>; the binary sits in target/<profile>.
        let exe = std::env::current_exe().expect("the test's path");
        exe.parent().and_then(|deps| deps.parent()).expect("target/<profile>").join("attune-api")
    })
}

impl Replicas {
    /// Migrates a fresh database and starts `count` replicas on it, each ready
    /// (`/readyz`) and listening for the others' changes. `None` without
    /// PostgreSQL and Redis to run on.
    pub async fn start(count: usize) -> Option<Self> {
        let admin_url = env_nonempty("ATTUNE_TEST_DATABASE_URL")?;
        let redis_url = env_nonempty("ATTUNE_TEST_REDIS_URL")?;
        let binary = api_binary();
        let name = format!("attune_test_{}", Uuid::new_v4().simple());
        let admin = Database::connect(admin_url.as_str()).await.expect("connect to ATTUNE_TEST_DATABASE_URL");
        admin.execute_unprepared(&format!("CREATE DATABASE {name}")).await.expect("create test database");
        admin.close().await.ok();
        let namespace = format!("attune-test-{}", Uuid::new_v4().simple());
        let dir = tempfile::tempdir().expect("temp dir");
        let mut replicas = Self {
            replicas: Vec::new(),
            pg: Some(PgDatabase { admin_url: admin_url.clone(), name: name.clone() }),
            redis: Some((redis_url.clone(), namespace.clone())),
            _dir: dir,
        };
        let vapid = attune_shared::push::VapidKey::generate().expect("VAPID key");
        let env = [
            ("DATABASE_URL", replace_database(&admin_url, &name)),
            ("REDIS_URL", redis_url),
            ("ATTUNE_QUEUE_NAMESPACE", namespace),
            ("ATTUNE_JWT_SECRET", TEST_JWT_SECRET.to_owned()),
            ("ATTUNE_DATA_KEYS", TEST_DATA_KEYS.to_owned()),
            ("ATTUNE_VAPID_PRIVATE_KEY", vapid.private_key.expose().to_owned()),
            ("ATTUNE_DATA_DIR", replicas._dir.path().display().to_string()),
            ("RUST_LOG", "warn".to_owned()),
        ];
        let command = || {
            let mut command = Command::new(binary);
            for var in ["ATTUNE_BIND", "ATTUNE_CORS_ORIGINS", "ATTUNE_SMTP_URL", "ATTUNE_MAIL_FROM"] {
                command.env_remove(var);
            }
            // Errors reach the test's output, so a replica that cannot start says why.
            command.envs(env.iter().map(|(k, v)| (k, v))).stdout(Stdio::null()).stderr(Stdio::inherit());
            command
        };
        let migrated = command().arg("migrate").status().expect("run attune-api migrate");
        assert!(migrated.success(), "attune-api migrate failed");
        for _ in 0..count {
            let port = free_port();
            let process = Proc(command().env("ATTUNE_BIND", format!("127.0.0.1:{port}")).spawn().expect("start"));
            let replica = Replica {
                base_url: format!("http://127.0.0.1:{port}"),
                client: reqwest::Client::new(),
                _process: process,
            };
            replica.wait_until_ready().await;
            replicas.replicas.push(replica);
        }
        Some(replicas)
    }

    /// The `n`th replica.
    pub fn replica(&self, n: usize) -> &Replica {
        &self.replicas[n]
    }

    /// Stops every replica and removes the database and the Redis keys.
    pub async fn stop(mut self) {
        self.replicas.clear();
        if let Some(pg) = self.pg.take() {
            drop_database(&pg).await;
        }
        if let Some((url, prefix)) = self.redis.take() {
            delete_redis_prefix(&url, &prefix).await;
        }
    }
}

impl Drop for Replicas {
    // A test that panicked before `stop` still cleans up after itself.
    fn drop(&mut self) {
        self.replicas.clear();
        clean_up_blocking(self.pg.take(), self.redis.take());
    }
}

impl Replica {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    pub fn request(&self, method: reqwest::Method, path: &str) -> RequestBuilder {
        self.client.request(method, self.url(path))
    }

    async fn wait_until_ready(&self) {
        poll_until("a replica to answer /readyz", Duration::from_secs(60), || async {
            match self.client.get(self.url("/readyz")).send().await {
                Ok(response) if response.status() == StatusCode::OK => Ok(()),
                Ok(response) => Err(format!("/readyz answered {}", response.status())),
                Err(error) => Err(error.to_string()),
            }
        })
        .await;
    }

    /// Registers `email` with [`PASSWORD`].
    pub async fn register(&self, email: &str) -> TestUser {
        let body = json!({"email": email, "password": PASSWORD, "display_name": "Sam", "timezone": "Europe/Berlin"});
        let response = self.request(reqwest::Method::POST, "/v1/auth/register").json(&body).send().await;
        let (status, _, body) = crate::read(response.expect("register request")).await;
        assert_eq!(status, StatusCode::CREATED, "register failed: {body}");
        TestUser::from_token_response(email, &body)
    }

    /// Signs `email` in again: a second session.
    pub async fn sign_in(&self, email: &str) -> TestUser {
        let body = json!({"email": email, "password": PASSWORD});
        let response = self.request(reqwest::Method::POST, "/v1/auth/login").json(&body).send().await;
        let (status, _, body) = crate::read(response.expect("login request")).await;
        assert_eq!(status, StatusCode::OK, "sign-in failed: {body}");
        TestUser::from_token_response(email, &body)
    }

    /// `GET /v1/me` with `access_token`: its status and body.
    pub async fn me(&self, access_token: &str) -> (StatusCode, Value) {
        let response = self.request(reqwest::Method::GET, "/v1/me").bearer_auth(access_token).send().await;
        let (status, _, body) = crate::read(response.expect("GET /v1/me")).await;
        (status, body)
    }

    /// The value of a metric without labels on this replica's `/metrics`; 0
    /// while it has none.
    pub async fn metric(&self, name: &str) -> f64 {
        let response = self.client.get(self.url("/metrics")).send().await.expect("GET /metrics");
        let text = response.text().await.expect("metrics text");
        text.lines()
            .filter_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
            .find_map(|value| value.trim().parse().ok())
            .unwrap_or(0.0)
    }
}
