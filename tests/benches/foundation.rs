//! Foundation benchmarks (issue 2), release build:
//! - start-up time to `/readyz` = 200 and idle RSS of the API, embedded and scaled
//!   (and of `attune-worker`);
//! - requests/s and p99 of `GET /v1/me` with a valid token, next to a bare axum
//!   handler answering the same JSON in the same run;
//! - sign-ins per second (argon2id-bound), and the API's CPU time per sign-in,
//!   which moves less than the rate with what else the machine is doing;
//! - the time to open one PostgreSQL connection as the pool opens them (sqlx,
//!   TLS where the server offers it), next to one without TLS: what a request
//!   waits when the pool has to grow (sqlx 0.9.0, without `TCP_NODELAY`: 90 ms).
//!
//! Run: `cargo bench -p attune-tests --bench foundation`. The scaled part uses
//! `ATTUNE_BENCH_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/test`)
//! and `ATTUNE_BENCH_REDIS_URL` (default `redis://127.0.0.1:6379`).

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a benchmark: failing loudly is right")]

use std::{
    process::Command,
    time::{Duration, Instant},
};

use attune_tests::{
    bench_support::{BenchDatabase, build_release_binaries, command, free_port, median, register, start_until_ready},
    load::{self, Target, cpu_seconds, peak_rss_mib, rss_split_mib},
};
use reqwest::Method;
use serde_json::json;

const LOAD_SECONDS: u64 = 10;
/// Within one account's sign-in allowance (see [`login_load`]).
const LOGIN_CONNECTIONS: usize = 4;
const CONCURRENCY: usize = 32;

async fn me_load(base: &str, token: &str) -> load::LoadReport {
    let target =
        Target { method: Method::GET, url: format!("{base}/v1/me"), bearer: Some(token.to_owned()), json: None };
    load::run(target.clone(), CONCURRENCY, Duration::from_secs(1)).await; // warm-up
    load::run(target, CONCURRENCY, Duration::from_secs(LOAD_SECONDS)).await
}

/// Sign-ins with the right password from [`LOGIN_CONNECTIONS`] connections. The
/// sign-in throttle counts an attempt before checking it and gives a
/// successful one back, so more concurrent sign-ins to one account than its
/// allowance (5) would be refused, and the refused ones then lock the account:
/// the load stays within it. Two cores are busy with argon2id at 4.
async fn login_load(base: &str) -> load::LoadReport {
    let target = Target {
        method: Method::POST,
        url: format!("{base}/v1/auth/login"),
        bearer: None,
        json: Some(json!({"email": "bench@example.org", "password": "a calm and steady passphrase"})),
    };
    load::run(target, LOGIN_CONNECTIONS, Duration::from_secs(LOAD_SECONDS)).await
}

/// Resident memory after two idle seconds: (total, heap and stacks, mapped files).
async fn idle_rss(pid: u32) -> (f64, f64, f64) {
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (anon, file) = rss_split_mib(pid).unwrap_or((f64::NAN, f64::NAN));
    (anon + file, anon, file)
}

/// [`login_load`] on the API process `pid`, with the milliseconds of CPU it
/// spent per sign-in.
async fn login_load_measured(base: &str, pid: u32) -> (load::LoadReport, f64) {
    let before = cpu_seconds(pid).unwrap_or(f64::NAN);
    let report = login_load(base).await;
    let spent = cpu_seconds(pid).unwrap_or(f64::NAN) - before;
    let per_sign_in = spent * 1e3 / report.requests.max(1) as f64;
    (report, per_sign_in)
}

fn print_idle(label: &str, (total, anon, file): (f64, f64, f64)) {
    println!("  {label:<44} {total:>8.1} MiB  (heap and stacks {anon:.1}, mapped files {file:.1})");
}

/// The baseline: a bare axum handler answering the same JSON as `GET /v1/me`.
async fn bare_server(port: u16, body: String) {
    use axum::{Router, http::header, routing::get};
    let app = Router::new()
        .route("/v1/me", get(move || async move { ([(header::CONTENT_TYPE, "application/json")], body.clone()) }))
        .route("/readyz", get(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    axum::serve(listener, app).await.unwrap();
}

/// Connections opened by [`pg_connect_ms`] (odd, for [`median`]).
const CONNECTS: usize = 9;

/// The median time to open a PostgreSQL connection through sqlx at `url`, with
/// `sslmode` (the pool's default is `prefer`: TLS where the server offers it).
async fn pg_connect_ms(url: &str, sslmode: &str) -> f64 {
    use sea_orm::sqlx::{Connection, postgres::PgConnection};
    let url = format!("{url}{}sslmode={sslmode}", if url.contains('?') { '&' } else { '?' });
    let mut times = Vec::with_capacity(CONNECTS);
    for _ in 0..CONNECTS {
        let started = Instant::now();
        let connection = PgConnection::connect(&url).await.unwrap();
        times.push(started.elapsed().as_secs_f64() * 1e3);
        connection.close().await.unwrap();
    }
    median(&times)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--bare-server") {
        let port: u16 = args[2].parse().unwrap();
        let body = args[3].clone();
        tokio::runtime::Runtime::new().unwrap().block_on(bare_server(port, body));
        return;
    }
    if args.iter().any(|a| a == "--list" || a == "--test") {
        return; // `cargo test --benches` probes bench binaries; nothing to list.
    }
    build_release_binaries();
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap().block_on(run());
}

async fn run() {
    println!(
        "attune foundation benchmark · release build · {} cores · {CONCURRENCY} connections, {LOAD_SECONDS} s per load",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    // ---- embedded ----
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let env = vec![("ATTUNE_DATA_DIR", dir.path().display().to_string()), ("ATTUNE_BIND", format!("127.0.0.1:{port}"))];
    let (api, first_start) = start_until_ready(command("attune-api", &env), port).await;
    drop(api);
    let (api, warm_start) = start_until_ready(command("attune-api", &env), port).await;
    let embedded_idle = idle_rss(api.pid()).await;
    let base = format!("http://127.0.0.1:{port}");
    let (token, me) = register(&base, "bench@example.org").await;
    let embedded_me = me_load(&base, &token).await;
    let (embedded_login, embedded_login_cpu) = login_load_measured(&base, api.pid()).await;
    let embedded_peak = peak_rss_mib(api.pid()).unwrap_or(f64::NAN);
    drop(api);

    // ---- bare axum baseline, same JSON ----
    let bare_port = free_port();
    let mut bare_cmd = Command::new(std::env::current_exe().unwrap());
    bare_cmd.args(["--bare-server", &bare_port.to_string(), &me.to_string()]);
    let (bare, _) = start_until_ready(bare_cmd, bare_port).await;
    let bare_idle = idle_rss(bare.pid()).await;
    let bare_me = me_load(&format!("http://127.0.0.1:{bare_port}"), "unused").await;
    drop(bare);

    // ---- scaled: PostgreSQL + Redis, separate worker ----
    let database = BenchDatabase::create().await;
    let port = free_port();
    let scaled_env = database.scaled_env(port, &dir.path().join("scaled"));
    let migrated = command("attune-api", &scaled_env).arg("migrate").status().unwrap();
    assert!(migrated.success());
    let worker = attune_tests::bench_support::Proc(command("attune-worker", &scaled_env).spawn().unwrap());
    let (api, scaled_start) = start_until_ready(command("attune-api", &scaled_env), port).await;
    let scaled_idle = idle_rss(api.pid()).await;
    let worker_idle = idle_rss(worker.pid()).await;
    let base = format!("http://127.0.0.1:{port}");
    let (token, _) = register(&base, "bench@example.org").await;
    let scaled_me = me_load(&base, &token).await;
    let (scaled_login, scaled_login_cpu) = login_load_measured(&base, api.pid()).await;
    let scaled_peak = peak_rss_mib(api.pid()).unwrap_or(f64::NAN);
    drop(api);
    drop(worker);
    let connect_tls = pg_connect_ms(&database.url, "prefer").await;
    let connect_plain = pg_connect_ms(&database.url, "disable").await;
    database.drop_database().await;

    println!();
    println!("start-up to /readyz 200");
    println!("  embedded, first start (migrations, secrets)  {:>8.1} ms", first_start.as_secs_f64() * 1e3);
    println!("  embedded, later start                        {:>8.1} ms", warm_start.as_secs_f64() * 1e3);
    println!("  scaled (PostgreSQL + Redis)                  {:>8.1} ms", scaled_start.as_secs_f64() * 1e3);
    println!("idle RSS");
    print_idle("attune-api embedded (API + worker)", embedded_idle);
    print_idle("attune-api scaled", scaled_idle);
    print_idle("attune-worker scaled", worker_idle);
    print_idle("bare axum baseline", bare_idle);
    println!("GET /v1/me with a valid token ({CONCURRENCY} connections)");
    println!("  bare axum, same JSON      {bare_me}");
    println!("  attune embedded (SQLite)  {embedded_me}");
    println!("  attune scaled (Postgres)  {scaled_me}");
    println!(
        "  ratio to bare axum: embedded {:.2}, scaled {:.2}",
        embedded_me.per_second() / bare_me.per_second(),
        scaled_me.per_second() / bare_me.per_second()
    );
    println!("POST /v1/auth/login (argon2id m=19 MiB, t=2, p=1; {LOGIN_CONNECTIONS} connections)");
    println!("  embedded                  {embedded_login}");
    println!("  scaled                    {scaled_login}");
    println!("  API CPU per sign-in: embedded {embedded_login_cpu:.1} ms, scaled {scaled_login_cpu:.1} ms");
    println!("peak RSS under load: embedded {embedded_peak:.1} MiB, scaled {scaled_peak:.1} MiB");
    println!(
        "a new PostgreSQL connection (sqlx, median of {CONNECTS}): {connect_tls:.1} ms as the pool opens it \
         (sslmode=prefer), {connect_plain:.1} ms without TLS"
    );
}
