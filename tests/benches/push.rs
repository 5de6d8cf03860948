//! Web Push benchmark (issue 5), release build: messages encrypted (RFC 8291),
//! signed (VAPID, RFC 8292) and delivered per second to a local HTTPS sink that
//! answers 201, beside the npm package `web-push` on the same sink in the same run,
//! and the machine's raw P-256 limit (one ephemeral key pair and one ECDH per
//! message, the unavoidable cost of RFC 8291).
//!
//! Run: `cargo bench -p attune-tests --bench push` (needs `node` and `npm`; the
//! npm comparison is skipped with a note when npm cannot install `web-push`).

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a benchmark: failing loudly is right")]

use std::{
    io::Write,
    process::{Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use attune_shared::push::{PushClient, PushPolicy, SendOutcome, ValidSubscription, VapidKey, VapidSigner};
use attune_tests::{
    bench_support::{reset_peak_rss, sample_reminder_message},
    load::peak_rss_mib,
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

#[path = "support/https_sink.rs"]
mod https_sink;

const SECONDS: u64 = 10;
const CONCURRENCY: usize = 64;

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

/// Ephemeral key pair + ECDH per message, on every core: the RFC 8291 floor.
fn raw_p256_per_second(peer: &[u8]) -> f64 {
    use ring::{agreement, rand::SystemRandom};
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (stop, count, peer) = (stop.clone(), count.clone(), peer.to_vec());
            std::thread::spawn(move || {
                let rng = SystemRandom::new();
                let peer = agreement::UnparsedPublicKey::new(&agreement::ECDH_P256, peer);
                let mut local = 0;
                while !stop.load(Ordering::Relaxed) {
                    let key = agreement::EphemeralPrivateKey::generate(&agreement::ECDH_P256, &rng).unwrap();
                    let _public = key.compute_public_key().unwrap();
                    agreement::agree_ephemeral(key, &peer, |secret| secret.len()).unwrap();
                    local += 1;
                }
                count.fetch_add(local, Ordering::Relaxed);
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(3));
    stop.store(true, Ordering::Relaxed);
    for handle in handles {
        handle.join().unwrap();
    }
    count.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

async fn attune_per_second(endpoint: &str, p256dh: &str, auth: &str, cert_der: &[u8], vapid: VapidKey) -> (f64, u64) {
    let policy = PushPolicy::new(&["127.0.0.1".to_owned()], true);
    let subscription = ValidSubscription::from_parts(endpoint, p256dh, auth, None, &policy).unwrap();
    let client =
        PushClient::with_root_certificates(policy, vec![reqwest::Certificate::from_der(cert_der).unwrap()]).unwrap();
    let signer = Arc::new(VapidSigner::new(vapid, "mailto:bench@attune.test").unwrap());
    let message = sample_reminder_message();
    // Warm the connection pool and the VAPID cache.
    assert!(matches!(client.send(&subscription, &message, &signer, chrono::Utc::now()).await, SendOutcome::Delivered));
    let delivered = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(SECONDS);
    let started = Instant::now();
    let tasks: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let (client, signer, subscription, message) =
                (client.clone(), signer.clone(), subscription.clone(), message.clone());
            let (delivered, failed) = (delivered.clone(), failed.clone());
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    match client.send(&subscription, &message, &signer, chrono::Utc::now()).await {
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
    (delivered.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64(), failed.load(Ordering::Relaxed))
}

const NODE_BENCH: &str = r#"
const webpush = require('web-push');
const https = require('https');
const [endpoint, p256dh, auth, publicKey, privateKey, seconds, concurrency] = process.argv.slice(2);
const agent = new https.Agent({ keepAlive: true, maxSockets: Number(concurrency), rejectUnauthorized: false });
const sub = { endpoint, keys: { p256dh, auth } };
const payload = JSON.stringify({ type: 'reminder', title: 'A quiet moment for you',
  body: "Whenever you're ready, there's something gentle waiting.", url: '/today', delivery_id: 'x' });
const options = { vapidDetails: { subject: 'mailto:bench@attune.test', publicKey, privateKey },
  TTL: 14400, urgency: 'low', agent };
let delivered = 0, failed = 0;
const deadline = Date.now() + Number(seconds) * 1000;
async function loop() {
  while (Date.now() < deadline) {
    try { await webpush.sendNotification(sub, payload, options); delivered++; } catch (e) { failed++; }
  }
}
const started = Date.now();
Promise.all(Array.from({ length: Number(concurrency) }, loop)).then(() => {
  const secs = (Date.now() - started) / 1000;
  console.log(JSON.stringify({ rate: delivered / secs, delivered, failed }));
});
"#;

/// The same sends with npm's `web-push`, or why it could not run.
fn npm_per_second(
    endpoint: &str,
    p256dh: &str,
    auth: &str,
    public: &str,
    private: &str,
) -> Result<(f64, String), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let install = Command::new("npm")
        .args(["install", "--silent", "--no-audit", "--no-fund", "web-push@3"])
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .status()
        .map_err(|e| format!("npm not available: {e}"))?;
    if !install.success() {
        return Err("npm could not install web-push".into());
    }
    let version = std::fs::read_to_string(dir.path().join("node_modules/web-push/package.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v["version"].as_str().map(str::to_owned))
        .unwrap_or_default();
    std::fs::File::create(dir.path().join("bench.js")).unwrap().write_all(NODE_BENCH.as_bytes()).unwrap();
    let output = Command::new("node")
        .arg("bench.js")
        .args([endpoint, p256dh, auth, public, private, &SECONDS.to_string(), &CONCURRENCY.to_string()])
        .current_dir(dir.path())
        .env("NODE_TLS_REJECT_UNAUTHORIZED", "0")
        .output()
        .map_err(|e| e.to_string())?;
    let result: serde_json::Value = serde_json::from_slice(&output.stdout)
        .map_err(|_| format!("node failed: {}", String::from_utf8_lossy(&output.stderr)))?;
    Ok((result["rate"].as_f64().unwrap_or(0.0), format!("web-push {version}, failed {}", result["failed"])))
}

async fn run() {
    let sink = https_sink::start();
    let (port, cert_der) = (sink.port, sink.cert_der.clone());

    // A browser's subscription: a P-256 key pair and a 16-byte auth secret.
    let browser = p256::SecretKey::random(&mut p256::elliptic_curve::rand_core::OsRng);
    let browser_public = browser.public_key().to_sec1_bytes();
    let p256dh = URL_SAFE_NO_PAD.encode(&browser_public);
    let auth = URL_SAFE_NO_PAD.encode([7u8; 16]);
    let endpoint = format!("https://127.0.0.1:{port}/push/bench");
    let vapid = VapidKey::generate().unwrap();
    let vapid_key = VapidKey::from_base64url(vapid.private_key.expose()).unwrap();

    let raw = raw_p256_per_second(&browser_public);
    reset_peak_rss(std::process::id());
    let (attune, attune_failed) = attune_per_second(&endpoint, &p256dh, &auth, &cert_der, vapid_key).await;
    let peak = peak_rss_mib(std::process::id()).unwrap_or(f64::NAN);
    let npm = npm_per_second(&endpoint, &p256dh, &auth, &vapid.public_key, vapid.private_key.expose());
    drop(sink);

    println!(
        "attune push benchmark · release build · local HTTPS sink answering 201 · {CONCURRENCY} in flight, {SECONDS} s"
    );
    println!("  raw P-256 (ephemeral key + ECDH), all cores   {raw:>9.0} /s");
    println!(
        "  attune (encrypt + cached VAPID + HTTPS POST)   {attune:>9.0} /s   {:.0} % of raw P-256   failed {attune_failed}",
        100.0 * attune / raw
    );
    match npm {
        Ok((rate, detail)) => {
            println!("  npm {detail:<40} {rate:>9.0} /s");
            println!("  attune / npm web-push: {:.1}x", attune / rate);
        }
        Err(why) => println!("  npm web-push: not measured ({why})"),
    }
    println!("  peak RSS of the sending process: {peak:.1} MiB");
}
