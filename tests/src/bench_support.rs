//! What the benchmarks share: release binaries run as real processes, a fresh
//! PostgreSQL database per run, and sign-up over HTTP.

use std::{
    net::TcpListener,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use serde_json::{Value, json};

pub const BENCH_JWT: &str = "bench-only-jwt-secret-0123456789abcdef";
pub const BENCH_KEYS: &str = "b1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
pub const BENCH_PASSWORD: &str = "a calm and steady passphrase";

/// A child process, killed when dropped.
pub struct Proc(pub Child);

impl Proc {
    pub fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

/// Where the benchmarks' servers are built: a target directory of their own.
/// `cargo bench` builds the shared dependencies into `target/release` with the
/// features the test crate unifies; `attune-api` built there with its own would
/// rebuild them, and the next `cargo bench` rebuild them back (3–4 minutes each
/// way on two cores).
fn servers_dir() -> PathBuf {
    target_dir().join("bench-servers")
}

/// Builds `attune-api` and `attune-worker` in release mode (in [`servers_dir`]).
pub fn build_release_binaries() {
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "--release", "-p", "attune-api", "-p", "attune-worker", "--target-dir"])
        .arg(servers_dir())
        .status()
        .unwrap();
    assert!(status.success(), "release build failed");
}

/// A release binary with a clean environment plus `env`.
pub fn command(bin: &str, env: &[(&str, String)]) -> Command {
    let mut cmd = Command::new(servers_dir().join("release").join(bin));
    for var in [
        "DATABASE_URL",
        "REDIS_URL",
        "ATTUNE_JWT_SECRET",
        "ATTUNE_DATA_KEYS",
        "ATTUNE_VAPID_PRIVATE_KEY",
        "ATTUNE_CORS_ORIGINS",
    ] {
        cmd.env_remove(var);
    }
    // Errors go to the benchmark's own stderr, so a server that cannot start says
    // why. `ATTUNE_BENCH_API_LOG`, a `RUST_LOG` filter, shows the servers' own log
    // as well, request by request (how a stall in a benchmark is found).
    match std::env::var("ATTUNE_BENCH_API_LOG") {
        Ok(filter) => cmd.env("RUST_LOG", filter).stdout(Stdio::inherit()),
        Err(_) => cmd.env("RUST_LOG", "warn").stdout(Stdio::null()),
    };
    cmd.stderr(Stdio::inherit());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Starts a server; returns it with the time until `/readyz` answered 200.
pub async fn start_until_ready(mut cmd: Command, port: u16) -> (Proc, Duration) {
    let client = reqwest::Client::new();
    let started = Instant::now();
    let child = Proc(cmd.spawn().unwrap());
    let url = format!("http://127.0.0.1:{port}/readyz");
    loop {
        if let Ok(r) = client.get(&url).send().await
            && r.status() == 200
        {
            return (child, started.elapsed());
        }
        assert!(started.elapsed() < Duration::from_secs(60), "server did not become ready");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// (p50, p99) of a set of latencies.
#[derive(Debug, Clone, Copy)]
pub struct Percentiles {
    pub p50: Duration,
    pub p99: Duration,
}

impl Percentiles {
    fn of(mut times: Vec<Duration>) -> Self {
        times.sort_unstable();
        Self { p50: times[times.len() / 2], p99: times[(times.len() * 99 / 100).min(times.len() - 1)] }
    }
}

/// A first pull's latencies: `served`, from the request to the answer's last
/// byte (the server's work and the transfer); `parsed`, with the benchmark's
/// own parse of the body into a `serde_json::Value` added (the client's work,
/// which earlier figures included).
#[derive(Debug, Clone, Copy)]
pub struct PullLatencies {
    pub served: Percentiles,
    pub parsed: Percentiles,
}

/// `rounds` first pulls (`last_pulled_at=null`, plus `query`) by `token`, each
/// answer handed to `check`.
pub async fn first_pull_latencies(
    base: &str,
    token: &str,
    query: &str,
    rounds: usize,
    check: impl Fn(&Value),
) -> PullLatencies {
    let client = reqwest::Client::new();
    let (mut served, mut parsed) = (Vec::with_capacity(rounds), Vec::with_capacity(rounds));
    for _ in 0..rounds {
        let started = Instant::now();
        let response = client.get(format!("{base}/v1/sync?last_pulled_at=null{query}")).bearer_auth(token).send();
        let bytes = response.await.unwrap().bytes().await.unwrap();
        served.push(started.elapsed());
        let body: Value = serde_json::from_slice(&bytes).unwrap();
        parsed.push(started.elapsed());
        check(&body);
    }
    PullLatencies { served: Percentiles::of(served), parsed: Percentiles::of(parsed) }
}

/// Registers `email`; returns its access token and its `/v1/me` body.
pub async fn register(base: &str, email: &str) -> (String, Value) {
    let client = reqwest::Client::new();
    let body =
        json!({"email": email, "password": BENCH_PASSWORD, "display_name": "Bench", "timezone": "Europe/Berlin"});
    let response = client.post(format!("{base}/v1/auth/register")).json(&body).send().await.unwrap();
    assert_eq!(response.status(), 201);
    let tokens: Value = response.json().await.unwrap();
    let token = tokens["access_token"].as_str().unwrap().to_owned();
    let me: Value = client.get(format!("{base}/v1/me")).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
    (token, me)
}

/// A fresh PostgreSQL database for one benchmark run, dropped afterwards.
pub struct BenchDatabase {
    admin: DatabaseConnection,
    /// A VAPID key made for this run.
    vapid_private_key: String,
    pub name: String,
    pub url: String,
}

impl BenchDatabase {
    pub async fn create() -> Self {
        let admin_url = std::env::var("ATTUNE_BENCH_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let name = format!("attune_bench_{}", uuid::Uuid::new_v4().simple());
        let admin = Database::connect(admin_url.as_str()).await.unwrap();
        admin.execute_unprepared(&format!("CREATE DATABASE {name}")).await.unwrap();
        let url = format!("{}/{name}", admin_url.rsplit_once('/').unwrap().0);
        let vapid = attune_shared::push::VapidKey::generate().unwrap();
        Self { admin, name, url, vapid_private_key: vapid.private_key.expose().to_owned() }
    }

    pub fn redis_url() -> String {
        std::env::var("ATTUNE_BENCH_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
    }

    /// The environment of a scaled process on this database, listening on `port`.
    pub fn scaled_env(&self, port: u16, data_dir: &std::path::Path) -> Vec<(&'static str, String)> {
        vec![
            ("DATABASE_URL", self.url.clone()),
            ("REDIS_URL", Self::redis_url()),
            ("ATTUNE_QUEUE_NAMESPACE", self.name.clone()),
            ("ATTUNE_JWT_SECRET", BENCH_JWT.to_owned()),
            ("ATTUNE_DATA_KEYS", BENCH_KEYS.to_owned()),
            ("ATTUNE_VAPID_PRIVATE_KEY", self.vapid_private_key.clone()),
            ("ATTUNE_DATA_DIR", data_dir.display().to_string()),
            ("ATTUNE_BIND", format!("127.0.0.1:{port}")),
            ("ATTUNE_MAX_BODY_BYTES", (16 * 1024 * 1024).to_string()),
        ]
    }

    pub async fn drop_database(self) {
        let _ = self.admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)).await;
    }
}

/// Resets a process's peak-RSS counter (`VmHWM`), so a later reading covers only
/// what followed. Needs the right to write `/proc/<pid>/clear_refs` (root, or the
/// process's owner).
pub fn reset_peak_rss(pid: u32) {
    let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
}

/// A reminder's push as the benchmarks send and queue it: the discreet text, a
/// delivery id, four hours to live, low urgency.
pub fn sample_reminder_message() -> attune_shared::push::PushMessage {
    use attune_shared::push::{PushKind, PushMessage, PushPayload, Urgency};
    let payload = PushPayload {
        r#type: PushKind::Reminder,
        title: "A quiet moment for you".into(),
        body: "Whenever you're ready, there's something gentle waiting.".into(),
        url: "/today".into(),
        delivery_id: Some(uuid::Uuid::now_v7()),
    };
    PushMessage::new(payload, 4 * 3600, Urgency::Low)
}

/// The middle of `rates` (of an odd count): the figure of a benchmark whose
/// contenders take turns, so that a change in the machine's speed during the
/// run reaches them alike.
pub fn median(rates: &[f64]) -> f64 {
    let mut sorted = rates.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Each round's rate, whole, for printing beside their [`median`].
pub fn rounds(rates: &[f64]) -> String {
    rates.iter().map(|r| format!("{r:.0}")).collect::<Vec<_>>().join(", ")
}
