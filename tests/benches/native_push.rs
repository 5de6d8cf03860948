//! Native push benchmark (issue 18), release build: APNs and FCM sends per
//! second from Attune's clients (`ApnsClient`: HTTP/2, cached ES256 provider
//! token; `FcmClient`: cached OAuth access token) to local HTTPS sinks (child
//! processes: for APNs HTTP/2 answering 200 to `/3/device/<token>`; for FCM
//! HTTP/2 and HTTP/1.1 answering `messages:send`, and an access token to
//! `/token`), beside npm's `@parse/node-apn` sending to the same APNs sink in
//! the same run, taking turns with Attune's. Printed: sends per second, the CPU
//! each send took of the sender and of the sink, and the peak RSS of the
//! sending process.
//!
//! Run: `cargo bench -p attune-tests --bench native_push` (needs `node` and
//! `npm`: the peer's pinned packages, `tests/bench-apn/package-lock.json`, are
//! installed with `npm ci` when missing; without them the peer is skipped with
//! a note). `ATTUNE_BENCH_LOG=1` prints the senders' warnings on stderr, which
//! say why a send failed; `ATTUNE_BENCH_APNS_SINK=axum` sends APNs to the FCM
//! sink (hyper and axum) instead of APNs's own.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a benchmark: failing loudly is right")]

use std::{
    path::Path,
    process::Command,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use attune_shared::{
    config::Settings,
    push::{ApnsClient, ApnsConfig, FcmClient, FcmConfig, NativeDevice, PushPolicy, SendOutcome},
    secrets::Secret,
};
use attune_tests::{
    bench_support::{median, reset_peak_rss, rounds, sample_reminder_message},
    load::{cpu_seconds, peak_rss_mib},
};
use p256::pkcs8::{EncodePrivateKey, LineEnding};

/// The worker's allocator (`worker/src/main.rs`), so that the sends measured
/// here cost what they cost in `attune-worker`.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[path = "support/https_sink.rs"]
#[allow(dead_code, reason = "its Web Push routes are the other benchmarks'")]
mod https_sink;

const SECONDS: u64 = 10;
/// Turns of each APNs sender; the medians are the figures.
const ROUNDS: usize = 3;
const CONCURRENCY: usize = 64;
const APNS_TOKEN: &str = "740f4707bebcf74f9b7c25d48e3358945f6aa01da5ddb387462c7eaf61bb78ad";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--sink") {
        let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
        runtime.block_on(https_sink::serve(args[2].parse().unwrap(), &args[3], &args[4], routes()));
        return;
    }
    if args.get(1).map(String::as_str) == Some("--apns-sink") {
        let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
        runtime.block_on(https_sink::serve_apns(args[2].parse().unwrap(), &args[3], &args[4]));
        return;
    }
    if args.iter().any(|a| a == "--list" || a == "--test") {
        return;
    }
    if std::env::var_os("ATTUNE_BENCH_LOG").is_some() {
        tracing_subscriber::fmt().with_env_filter("warn").with_writer(std::io::stderr).init();
    }
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap().block_on(run());
}

/// What the sink answers: as APNs, FCM and Google's token endpoint do when all
/// is well.
fn routes() -> axum::Router {
    use axum::{Json, routing::post};
    axum::Router::new()
        .route(
            "/3/device/{token}",
            post(|body: axum::body::Bytes| async move {
                assert!(body.len() > 20);
                axum::http::StatusCode::OK
            }),
        )
        .route("/token", post(|| async { Json(serde_json::json!({"access_token": "ya29.bench", "expires_in": 3599})) }))
        .route(
            "/v1/projects/{project}/{action}",
            // The body is read, as FCM does: a handler that answers without
            // reading it leaves hyper to reset each stream, and after 1,024
            // such resets h2 closes the connection (its rapid-reset guard),
            // failing every send in flight on it.
            post(|body: axum::body::Bytes| async move {
                assert!(body.starts_with(br#"{"message""#));
                Json(serde_json::json!({"name": "projects/bench/messages/1"}))
            }),
        )
}

/// One turn of a sender: sends per second, failures, and the CPU time it took
/// per delivered send, in µs (its own process; the sink's apart).
struct Turn {
    rate: f64,
    delivered: f64,
    failed: u64,
    cpu_us: f64,
}

/// Sends `send` from [`CONCURRENCY`] tasks for [`SECONDS`].
async fn per_second<F, Fut>(send: F) -> Turn
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = SendOutcome> + Send,
{
    assert_eq!(send().await, SendOutcome::Delivered, "warm-up send");
    let delivered = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(SECONDS);
    let started = Instant::now();
    let cpu_before = cpu_seconds(std::process::id()).unwrap_or(f64::NAN);
    let tasks: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let (send, delivered, failed) = (send.clone(), delivered.clone(), failed.clone());
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    match send().await {
                        SendOutcome::Delivered => delivered.fetch_add(1, Ordering::Relaxed),
                        _ => failed.fetch_add(1, Ordering::Relaxed),
                    };
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let cpu = cpu_seconds(std::process::id()).unwrap_or(f64::NAN) - cpu_before;
    let delivered = delivered.load(Ordering::Relaxed) as f64;
    Turn {
        rate: delivered / started.elapsed().as_secs_f64(),
        delivered,
        failed: failed.load(Ordering::Relaxed),
        cpu_us: cpu * 1e6 / delivered,
    }
}

fn settings() -> Settings {
    let mut settings = Settings::from_args(["--push-allowed-hosts", "127.0.0.1", "--push-allow-http"]).unwrap();
    settings.push_allowed_hosts = vec!["127.0.0.1".into()];
    settings
}

const NODE_BENCH: &str = r#"
const apn = require('@parse/node-apn');
const [port, key, keyId, teamId, topic, token, seconds, concurrency] = process.argv.slice(1);
const provider = new apn.Provider({ token: { key, keyId, teamId }, production: false,
  address: '127.0.0.1', port: Number(port), rejectUnauthorized: false });
const note = () => {
  const n = new apn.Notification();
  n.alert = { title: 'A quiet moment for you', body: "Whenever you're ready, there's something gentle waiting." };
  n.topic = topic; n.pushType = 'alert'; n.priority = 5; n.collapseId = 'reminder';
  n.expiry = Math.floor(Date.now() / 1000) + 14400;
  n.payload = { type: 'reminder', url: '/today', delivery_id: 'x' };
  return n;
};
let delivered = 0, failed = 0;
const deadline = Date.now() + Number(seconds) * 1000;
async function loop() {
  while (Date.now() < deadline) {
    const result = await provider.send(note(), token);
    delivered += result.sent.length; failed += result.failed.length;
  }
}
(async () => {
  const warm = await provider.send(note(), token);
  if (warm.sent.length !== 1) { console.error(JSON.stringify(warm.failed)); process.exit(1); }
  const started = Date.now();
  const cpuBefore = process.cpuUsage();
  await Promise.all(Array.from({ length: Number(concurrency) }, loop));
  const secs = (Date.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  console.log(JSON.stringify({ rate: delivered / secs, cpu_us: (cpu.user + cpu.system) / delivered, delivered, failed }));
  provider.shutdown();
})();
"#;

/// The same APNs sends with `@parse/node-apn` (its turn and a description), or
/// why it could not run.
fn node_apn_per_second(port: u16, pem: &str) -> Result<(Turn, String), String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench-apn");
    if !dir.join("node_modules/@parse/node-apn").exists() {
        let cache = std::env::var("HOME").map(|home| format!("{home}/.cache/attune-npm")).unwrap_or_default();
        let installed = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error", "--cache", &cache])
            .current_dir(&dir)
            .status()
            .map_err(|e| format!("npm not available: {e}"))?;
        if !installed.success() {
            return Err("npm ci failed in tests/bench-apn".into());
        }
    }
    let version = std::fs::read_to_string(dir.join("node_modules/@parse/node-apn/package.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v["version"].as_str().map(str::to_owned))
        .unwrap_or_default();
    let output = Command::new("node")
        .args(["-e", NODE_BENCH, "--"])
        .args([&port.to_string(), pem, "KEY1234567", "TEAM123456", "org.attune.bench", APNS_TOKEN])
        .args([&SECONDS.to_string(), &CONCURRENCY.to_string()])
        .current_dir(&dir)
        .output()
        .map_err(|e| e.to_string())?;
    let result: serde_json::Value = serde_json::from_slice(&output.stdout)
        .map_err(|_| format!("node failed: {}", String::from_utf8_lossy(&output.stderr)))?;
    let turn = Turn {
        rate: result["rate"].as_f64().unwrap_or(0.0),
        delivered: result["delivered"].as_f64().unwrap_or(f64::NAN),
        failed: result["failed"].as_u64().unwrap_or(0),
        cpu_us: result["cpu_us"].as_f64().unwrap_or(f64::NAN),
    };
    let detail = format!("@parse/node-apn {version}, failed {}", turn.failed);
    Ok((turn, detail))
}

async fn run() {
    let sink = https_sink::start();
    let origin = format!("https://127.0.0.1:{}", sink.port);
    // APNs has a sink of its own, `h2` alone (see `serve_apns`), unless
    // `ATTUNE_BENCH_APNS_SINK=axum` asks for the FCM sink's hyper and axum.
    let apns_sink = match std::env::var("ATTUNE_BENCH_APNS_SINK").as_deref() {
        Ok("axum") => https_sink::start(),
        _ => https_sink::start_as("--apns-sink"),
    };
    let roots = vec![reqwest::Certificate::from_der(&sink.cert_der).unwrap()];
    let policy = PushPolicy::new(&["127.0.0.1".to_owned()], true);
    let message = Arc::new(sample_reminder_message());

    let p8 = p256::SecretKey::random(&mut p256::elliptic_curve::rand_core::OsRng);
    let pem = p8.to_pkcs8_pem(LineEnding::LF).unwrap().to_string();
    let mut apns_settings = settings();
    apns_settings.apns_key = Some(Secret::new(pem.clone()));
    apns_settings.apns_key_id = Some("KEY1234567".into());
    apns_settings.apns_team_id = Some("TEAM123456".into());
    apns_settings.apns_topic = Some("org.attune.bench".into());
    apns_settings.apns_endpoint = Some(format!("https://127.0.0.1:{}", apns_sink.port));
    let apns_config = ApnsConfig::from_settings(&apns_settings, &policy).unwrap().unwrap();
    let apns = ApnsClient::new(apns_config, policy.clone(), vec![apns_sink.cert_der.clone()]).unwrap();
    let iphone = Arc::new(
        NativeDevice::from_stored(
            attune_shared::push::DeviceKind::Apns,
            &format!("apns:{APNS_TOKEN}"),
            Some("production"),
        )
        .unwrap(),
    );

    let rsa = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
    let mut fcm_settings = settings();
    let account = serde_json::json!({"type": "service_account", "project_id": "attune-bench",
        "private_key_id": "bench", "private_key": rsa.to_pkcs8_pem(LineEnding::LF).unwrap().to_string(),
        "client_email": "bench@attune-bench.iam.gserviceaccount.com", "token_uri": format!("{origin}/token")});
    fcm_settings.fcm_service_account = Some(Secret::new(account.to_string()));
    fcm_settings.fcm_endpoint = Some(origin.clone());
    let fcm_config = FcmConfig::from_settings(&fcm_settings, &policy).unwrap().unwrap();
    let fcm = FcmClient::new(fcm_config, policy, roots).unwrap();
    let android = Arc::new(
        NativeDevice::from_stored(attune_shared::push::DeviceKind::Fcm, "fcm:bench-token:APA91bBENCH", None).unwrap(),
    );

    reset_peak_rss(std::process::id());
    let apns_once = || {
        let (apns, iphone, message) = (apns.clone(), iphone.clone(), message.clone());
        per_second(move || {
            let (apns, iphone, message) = (apns.clone(), iphone.clone(), message.clone());
            async move { apns.send(&iphone, &message, chrono::Utc::now()).await }
        })
    };
    let fcm_turn = {
        let (fcm, android, message) = (fcm.clone(), android.clone(), message.clone());
        per_second(move || {
            let (fcm, android, message) = (fcm.clone(), android.clone(), message.clone());
            async move { fcm.send(&android, &message, chrono::Utc::now()).await }
        })
        .await
    };
    // The two APNs senders take turns, so that a change in the machine's speed
    // over the minutes of the run reaches both alike. The sink's CPU per send
    // is what it took from the two cores the sender shares with it.
    let sink_cpu = || cpu_seconds(apns_sink.pid()).unwrap_or(f64::NAN);
    let (mut apns_turns, mut node_turns) = (Vec::with_capacity(ROUNDS), Vec::with_capacity(ROUNDS));
    let (mut apns_sink_us, mut node_sink_us) = (Vec::with_capacity(ROUNDS), Vec::with_capacity(ROUNDS));
    let mut node = Ok(String::new());
    for _ in 0..ROUNDS {
        let before = sink_cpu();
        let turn = apns_once().await;
        apns_sink_us.push((sink_cpu() - before) * 1e6 / turn.delivered);
        apns_turns.push(turn);
        if node.is_ok() {
            let before = sink_cpu();
            node = node_apn_per_second(apns_sink.port, &pem).map(|(turn, detail)| {
                node_sink_us.push((sink_cpu() - before) * 1e6 / turn.delivered);
                node_turns.push(turn);
                detail
            });
        }
    }
    let peak = peak_rss_mib(std::process::id()).unwrap_or(f64::NAN);
    drop((sink, apns_sink));

    let rates = |turns: &[Turn]| turns.iter().map(|t| t.rate).collect::<Vec<_>>();
    let cpu = |turns: &[Turn]| median(&turns.iter().map(|t| t.cpu_us).collect::<Vec<_>>());
    println!(
        "attune native push benchmark · release build · local HTTPS sink · {CONCURRENCY} in flight, {SECONDS} s each"
    );
    let apns_rates = rates(&apns_turns);
    let apns_rate = median(&apns_rates);
    let apns_failed: u64 = apns_turns.iter().map(|t| t.failed).sum();
    println!(
        "  attune APNs (HTTP/2, cached ES256 token)       {apns_rate:>9.0} /s   failed {apns_failed}   (median of {})",
        rounds(&apns_rates)
    );
    println!("  attune FCM  (cached OAuth token)               {:>9.0} /s   failed {}", fcm_turn.rate, fcm_turn.failed);
    match node {
        Ok(detail) => {
            let node_rates = rates(&node_turns);
            let rate = median(&node_rates);
            println!("  npm {detail:<42} {rate:>9.0} /s   (median of {})", rounds(&node_rates));
            println!("  attune APNs / @parse/node-apn: {:.1}x (medians)", apns_rate / rate);
            let (ours, theirs) = (cpu(&apns_turns), cpu(&node_turns));
            println!(
                "  CPU per send (medians), sender / sink: attune APNs {ours:.1} / {:.1} µs, @parse/node-apn {theirs:.1} / {:.1} µs: {:.1}x less",
                median(&apns_sink_us),
                median(&node_sink_us),
                theirs / ours
            );
        }
        Err(why) => println!("  @parse/node-apn: not measured ({why})"),
    }
    println!("  CPU per send, attune FCM: {:.1} µs", fcm_turn.cpu_us);
    println!("  peak RSS of the sending process: {peak:.1} MiB");
}
