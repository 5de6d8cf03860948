//! Foundation benchmarks (issue 2), release build:
//! - start-up time to `/readyz` = 200 and idle RSS of the API, embedded and scaled
//!   (and of `attune-worker`);
//! - requests/s and p99 of `GET /v1/me` with a valid token, next to a bare axum
//!   handler answering the same JSON in the same run;
//! - sign-ins per second (argon2id-bound).
//!
//! Run: `cargo bench -p attune-tests --bench foundation`. The scaled part uses
//! `ATTUNE_BENCH_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/test`)
//! and `ATTUNE_BENCH_REDIS_URL` (default `redis://127.0.0.1:6379`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark: failing loudly is right"
)]

use std::{
    net::TcpListener,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use attune_tests::load::{self, Target, peak_rss_mib, rss_mib};
use reqwest::Method;
use sea_orm::{ConnectionTrait, Database};
use serde_json::{Value, json};

const LOAD_SECONDS: u64 = 10;
const CONCURRENCY: usize = 32;
const JWT: &str = "bench-only-jwt-secret-0123456789abcdef";
const KEYS: &str = "b1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

fn binary(name: &str) -> PathBuf {
    target_dir().join("release").join(name)
}

fn build_release_binaries() {
    let status = Command::new(env!("CARGO"))
        .args([
            "build",
            "--release",
            "-p",
            "attune-api",
            "-p",
            "attune-worker",
        ])
        .status()
        .unwrap();
    assert!(status.success(), "release build failed");
}

fn command(bin: &str, env: &[(&str, String)]) -> Command {
    let mut cmd = Command::new(binary(bin));
    for var in [
        "DATABASE_URL",
        "REDIS_URL",
        "ATTUNE_JWT_SECRET",
        "ATTUNE_DATA_KEYS",
        "ATTUNE_CORS_ORIGINS",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Starts a server and returns it with the time until `/readyz` answered 200.
async fn start_until_ready(mut cmd: Command, port: u16) -> (Proc, Duration) {
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
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "server did not become ready"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

async fn register(base: &str) -> (String, Value) {
    let client = reqwest::Client::new();
    let body = json!({"email": "bench@example.org", "password": "a calm and steady passphrase",
                      "display_name": "Bench", "timezone": "Europe/Berlin"});
    let response = client
        .post(format!("{base}/v1/auth/register"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let tokens: Value = response.json().await.unwrap();
    let me: Value = client
        .get(format!("{base}/v1/me"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    (tokens["access_token"].as_str().unwrap().to_owned(), me)
}

async fn me_load(base: &str, token: &str) -> load::LoadReport {
    let target = Target {
        method: Method::GET,
        url: format!("{base}/v1/me"),
        bearer: Some(token.to_owned()),
        json: None,
    };
    load::run(target.clone(), CONCURRENCY, Duration::from_secs(1)).await; // warm-up
    load::run(target, CONCURRENCY, Duration::from_secs(LOAD_SECONDS)).await
}

async fn login_load(base: &str) -> load::LoadReport {
    let target = Target {
        method: Method::POST,
        url: format!("{base}/v1/auth/login"),
        bearer: None,
        json: Some(
            json!({"email": "bench@example.org", "password": "a calm and steady passphrase"}),
        ),
    };
    load::run(target, 8, Duration::from_secs(LOAD_SECONDS)).await
}

async fn idle_rss(pid: u32) -> f64 {
    tokio::time::sleep(Duration::from_secs(2)).await;
    rss_mib(pid).unwrap_or(f64::NAN)
}

/// The baseline: a bare axum handler answering the same JSON as `GET /v1/me`.
async fn bare_server(port: u16, body: String) {
    use axum::{Router, http::header, routing::get};
    let app = Router::new()
        .route(
            "/v1/me",
            get(
                move || async move { ([(header::CONTENT_TYPE, "application/json")], body.clone()) },
            ),
        )
        .route("/readyz", get(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    axum::serve(listener, app).await.unwrap();
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--bare-server") {
        let port: u16 = args[2].parse().unwrap();
        let body = args[3].clone();
        tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(bare_server(port, body));
        return;
    }
    if args.iter().any(|a| a == "--list" || a == "--test") {
        return; // `cargo test --benches` probes bench binaries; nothing to list.
    }
    build_release_binaries();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(run());
}

async fn run() {
    println!(
        "attune foundation benchmark · release build · {} cores · {CONCURRENCY} connections, {LOAD_SECONDS} s per load",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    // ---- embedded ----
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let env = vec![
        ("ATTUNE_DATA_DIR", dir.path().display().to_string()),
        ("ATTUNE_BIND", format!("127.0.0.1:{port}")),
    ];
    let (api, first_start) = start_until_ready(command("attune-api", &env), port).await;
    drop(api);
    let (api, warm_start) = start_until_ready(command("attune-api", &env), port).await;
    let embedded_idle = idle_rss(api.0.id()).await;
    let base = format!("http://127.0.0.1:{port}");
    let (token, me) = register(&base).await;
    let embedded_me = me_load(&base, &token).await;
    let embedded_login = login_load(&base).await;
    let embedded_peak = peak_rss_mib(api.0.id()).unwrap_or(f64::NAN);
    drop(api);

    // ---- bare axum baseline, same JSON ----
    let bare_port = free_port();
    let mut bare_cmd = Command::new(std::env::current_exe().unwrap());
    bare_cmd.args(["--bare-server", &bare_port.to_string(), &me.to_string()]);
    let (bare, _) = start_until_ready(bare_cmd, bare_port).await;
    let bare_idle = idle_rss(bare.0.id()).await;
    let bare_me = me_load(&format!("http://127.0.0.1:{bare_port}"), "unused").await;
    drop(bare);

    // ---- scaled: PostgreSQL + Redis, separate worker ----
    let pg_admin = std::env::var("ATTUNE_BENCH_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let redis =
        std::env::var("ATTUNE_BENCH_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let db_name = format!("attune_bench_{}", uuid::Uuid::new_v4().simple());
    let admin = Database::connect(pg_admin.as_str()).await.unwrap();
    admin
        .execute_unprepared(&format!("CREATE DATABASE {db_name}"))
        .await
        .unwrap();
    let db_url = format!("{}/{db_name}", pg_admin.rsplit_once('/').unwrap().0);
    let port = free_port();
    let scaled_env = vec![
        ("DATABASE_URL", db_url),
        ("REDIS_URL", redis),
        ("ATTUNE_QUEUE_NAMESPACE", db_name.clone()),
        ("ATTUNE_JWT_SECRET", JWT.to_owned()),
        ("ATTUNE_DATA_KEYS", KEYS.to_owned()),
        (
            "ATTUNE_DATA_DIR",
            dir.path().join("scaled").display().to_string(),
        ),
        ("ATTUNE_BIND", format!("127.0.0.1:{port}")),
    ];
    let migrated = command("attune-api", &scaled_env)
        .arg("migrate")
        .status()
        .unwrap();
    assert!(migrated.success());
    let worker = Proc(command("attune-worker", &scaled_env).spawn().unwrap());
    let (api, scaled_start) = start_until_ready(command("attune-api", &scaled_env), port).await;
    let scaled_idle = idle_rss(api.0.id()).await;
    let worker_idle = rss_mib(worker.0.id()).unwrap_or(f64::NAN);
    let base = format!("http://127.0.0.1:{port}");
    let (token, _) = register(&base).await;
    let scaled_me = me_load(&base, &token).await;
    let scaled_login = login_load(&base).await;
    let scaled_peak = peak_rss_mib(api.0.id()).unwrap_or(f64::NAN);
    drop(api);
    drop(worker);
    admin
        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {db_name} WITH (FORCE)"))
        .await
        .unwrap();

    println!();
    println!("start-up to /readyz 200");
    println!(
        "  embedded, first start (migrations, secrets)  {:>8.1} ms",
        first_start.as_secs_f64() * 1e3
    );
    println!(
        "  embedded, later start                        {:>8.1} ms",
        warm_start.as_secs_f64() * 1e3
    );
    println!(
        "  scaled (PostgreSQL + Redis)                  {:>8.1} ms",
        scaled_start.as_secs_f64() * 1e3
    );
    println!("idle RSS");
    println!("  attune-api embedded (API + worker)           {embedded_idle:>8.1} MiB");
    println!("  attune-api scaled                            {scaled_idle:>8.1} MiB");
    println!("  attune-worker scaled                         {worker_idle:>8.1} MiB");
    println!("  bare axum baseline                           {bare_idle:>8.1} MiB");
    println!("GET /v1/me with a valid token ({CONCURRENCY} connections)");
    println!("  bare axum, same JSON      {bare_me}");
    println!("  attune embedded (SQLite)  {embedded_me}");
    println!("  attune scaled (Postgres)  {scaled_me}");
    println!(
        "  ratio to bare axum: embedded {:.2}, scaled {:.2}",
        embedded_me.per_second() / bare_me.per_second(),
        scaled_me.per_second() / bare_me.per_second()
    );
    println!("POST /v1/auth/login (argon2id m=19 MiB, t=2, p=1; 8 connections)");
    println!("  embedded                  {embedded_login}");
    println!("  scaled                    {scaled_login}");
    println!("peak RSS under load: embedded {embedded_peak:.1} MiB, scaled {scaled_peak:.1} MiB");
}
