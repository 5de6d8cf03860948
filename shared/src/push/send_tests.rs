use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use chrono::TimeZone;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};

use super::*;
use crate::push::{
    PushKind, PushPayload, Topic, Urgency, VapidKey, base64url_encode, decrypt, encrypt::tests::browser_keys,
};

/// What the minimal push service below received.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

/// A one-trick HTTP/1.1 server: answers every request with `status` and
/// `extra_headers`, recording what it got.
async fn sink(status: u16, extra_headers: &'static str) -> (String, Arc<Mutex<Vec<Received>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let received = Arc::new(Mutex::new(Vec::new()));
    let log = received.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut data = Vec::new();
            let mut buf = [0u8; 8192];
            let head_end = loop {
                let n = stream.read(&mut buf).await.unwrap();
                assert!(n > 0, "connection closed mid-request");
                data.extend_from_slice(&buf[..n]);
                if let Some(at) = data.windows(4).position(|w| w == b"\r\n\r\n") {
                    break at + 4;
                }
            };
            let head = String::from_utf8(data[..head_end].to_vec()).unwrap();
            let mut lines = head.split("\r\n");
            let path = lines.next().unwrap().split(' ').nth(1).unwrap().to_owned();
            let headers: HashMap<String, String> =
                lines.filter_map(|l| l.split_once(": ")).map(|(k, v)| (k.to_ascii_lowercase(), v.to_owned())).collect();
            let len: usize = headers.get("content-length").map_or(0, |v| v.parse().unwrap());
            while data.len() < head_end + len {
                let n = stream.read(&mut buf).await.unwrap();
                data.extend_from_slice(&buf[..n]);
            }
            let body = data[head_end..head_end + len].to_vec();
            log.lock().unwrap().push(Received { path, headers, body });
            let response =
                format!("HTTP/1.1 {status} X\r\n{extra_headers}content-length: 0\r\nconnection: close\r\n\r\n");
            stream.write_all(response.as_bytes()).await.unwrap();
        }
    });
    (origin, received)
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
}

fn message() -> PushMessage {
    PushMessage::new(
        PushPayload {
            r#type: PushKind::Reminder,
            title: "A moment for you".into(),
            body: "Ready when you are.".into(),
            url: "/today".into(),
            delivery_id: None,
        },
        600,
        Urgency::High,
    )
    .with_topic(Topic::parse("reminder").unwrap())
}

fn signer() -> VapidSigner {
    let key = VapidKey::from_base64url(VapidKey::generate().unwrap().private_key.expose()).unwrap();
    VapidSigner::new(key, "mailto:ops@attune.example").unwrap()
}

fn local_policy() -> PushPolicy {
    PushPolicy::new(&["127.0.0.1".into()], true)
}

struct Device {
    secret: p256::SecretKey,
    auth: [u8; 16],
    subscription: ValidSubscription,
}

fn device(endpoint: &str) -> Device {
    let (secret, public, auth) = browser_keys();
    let subscription = ValidSubscription::from_parts(
        endpoint,
        &base64url_encode(&public),
        &base64url_encode(&auth),
        None,
        &local_policy(),
    )
    .unwrap();
    Device { secret, auth, subscription }
}

async fn send_to(status: u16, extra_headers: &'static str) -> (SendOutcome, Vec<Received>) {
    let (origin, received) = sink(status, extra_headers).await;
    let device = device(&format!("{origin}/push/abc"));
    let client = PushClient::new(local_policy()).unwrap();
    let outcome = client.send(&device.subscription, &message(), &signer(), now()).await;
    let received = received.lock().unwrap().clone();
    (outcome, received)
}

#[tokio::test]
async fn a_message_is_posted_encrypted_with_the_rfc_headers() {
    let (origin, received) = sink(201, "location: /m/1\r\n").await;
    let device = device(&format!("{origin}/push/abc"));
    let signer = signer();
    let client = PushClient::new(local_policy()).unwrap();
    let outcome = client.send(&device.subscription, &message(), &signer, now()).await;
    assert_eq!(outcome, SendOutcome::Delivered);

    let received = received.lock().unwrap().clone();
    assert_eq!(received.len(), 1);
    let request = &received[0];
    assert_eq!(request.path, "/push/abc");
    assert_eq!(request.headers["content-encoding"], "aes128gcm");
    assert_eq!(request.headers["content-type"], "application/octet-stream");
    assert_eq!(request.headers["ttl"], "600");
    assert_eq!(request.headers["urgency"], "high");
    assert_eq!(request.headers["topic"], "reminder");
    let authorization = &request.headers["authorization"];
    assert!(authorization.starts_with("vapid t="), "{authorization}");
    assert!(authorization.ends_with(&format!(", k={}", signer.key().public_key_base64url())));

    let payload = decrypt(&request.body, &device.secret, &device.auth).unwrap();
    let payload: serde_json::Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(
        payload,
        serde_json::json!({
            "type": "reminder",
            "title": "A moment for you",
            "body": "Ready when you are.",
            "url": "/today",
            "delivery_id": null,
        })
    );
}

#[tokio::test]
async fn a_message_without_a_topic_sends_no_topic_header() {
    let (origin, received) = sink(201, "").await;
    let device = device(&format!("{origin}/push/abc"));
    let mut message = message();
    message.topic = None;
    message.urgency = Urgency::VeryLow;
    let client = PushClient::new(local_policy()).unwrap();
    assert_eq!(client.send(&device.subscription, &message, &signer(), now()).await, SendOutcome::Delivered);
    let received = received.lock().unwrap();
    assert!(!received[0].headers.contains_key("topic"));
    assert_eq!(received[0].headers["urgency"], "very-low");
}

#[tokio::test]
async fn answers_are_classified() {
    assert_eq!(send_to(202, "").await.0, SendOutcome::Delivered);
    assert_eq!(send_to(410, "").await.0, SendOutcome::Gone);
    assert_eq!(send_to(404, "").await.0, SendOutcome::Gone);
    assert_eq!(send_to(429, "retry-after: 7\r\n").await.0, SendOutcome::Retry { after: Some(Duration::from_secs(7)) });
    assert_eq!(
        send_to(503, "retry-after: Sun, 01 Mar 2026 12:01:00 GMT\r\n").await.0,
        SendOutcome::Retry { after: Some(Duration::from_secs(60)) }
    );
    assert_eq!(send_to(500, "").await.0, SendOutcome::Retry { after: None });
    assert_eq!(send_to(413, "").await.0, SendOutcome::Rejected(Rejection::Status(StatusCode::PAYLOAD_TOO_LARGE)));
    assert_eq!(send_to(403, "").await.0, SendOutcome::Rejected(Rejection::Status(StatusCode::FORBIDDEN)));
}

#[tokio::test]
async fn a_redirect_is_not_followed() {
    let (target, target_received) = sink(201, "").await;
    let location: &'static str = Box::leak(format!("location: {target}/push/abc\r\n").into_boxed_str());
    let (outcome, received) = send_to(307, location).await;
    assert_eq!(outcome, SendOutcome::Rejected(Rejection::Status(StatusCode::TEMPORARY_REDIRECT)));
    assert_eq!(received.len(), 1);
    assert!(target_received.lock().unwrap().is_empty(), "the redirect was followed");
}

#[tokio::test]
async fn a_host_off_the_allow_list_is_never_contacted() {
    let (origin, received) = sink(201, "").await;
    let device = device(&format!("{origin}/push/abc"));
    let strict = PushClient::new(PushPolicy::new(&["fcm.googleapis.com".into()], true)).unwrap();
    assert_eq!(
        strict.send(&device.subscription, &message(), &signer(), now()).await,
        SendOutcome::Rejected(Rejection::EndpointNotAllowed(EndpointError::HostNotAllowed))
    );
    let https_only = PushClient::new(PushPolicy::new(&["127.0.0.1".into()], false)).unwrap();
    assert_eq!(
        https_only.send(&device.subscription, &message(), &signer(), now()).await,
        SendOutcome::Rejected(Rejection::EndpointNotAllowed(EndpointError::NotHttps))
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(received.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_network_failure_is_retried() {
    // Bind, learn the port, close: nothing listens there.
    let port = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port();
    let device = device(&format!("http://127.0.0.1:{port}/push/abc"));
    let client = PushClient::new(local_policy()).unwrap();
    assert_eq!(
        client.send(&device.subscription, &message(), &signer(), now()).await,
        SendOutcome::Retry { after: None }
    );
}

#[test]
fn statuses_map_to_outcomes() {
    let retry = Some(Duration::from_secs(3));
    for (status, expected) in [
        (200, SendOutcome::Delivered),
        (201, SendOutcome::Delivered),
        (202, SendOutcome::Delivered),
        (404, SendOutcome::Gone),
        (410, SendOutcome::Gone),
        (429, SendOutcome::Retry { after: retry }),
        (500, SendOutcome::Retry { after: retry }),
        (502, SendOutcome::Retry { after: retry }),
        (503, SendOutcome::Retry { after: retry }),
    ] {
        assert_eq!(classify_response(StatusCode::from_u16(status).unwrap(), retry), expected);
    }
    for status in [301, 302, 307, 308, 400, 401, 403, 405, 413] {
        let status = StatusCode::from_u16(status).unwrap();
        assert_eq!(classify_response(status, retry), SendOutcome::Rejected(Rejection::Status(status)));
    }
}

#[test]
fn retry_after_reads_seconds_and_http_dates() {
    let now = now();
    let parse = |v: &str| parse_retry_after(v, now);
    assert_eq!(parse("2"), Some(Duration::from_secs(2)));
    assert_eq!(parse(" 120 "), Some(Duration::from_secs(120)));
    assert_eq!(parse("0"), Some(Duration::ZERO));
    assert_eq!(parse("99999999999999999999999"), Some(Duration::from_secs(u64::MAX)));
    assert_eq!(parse("Sun, 01 Mar 2026 12:00:30 GMT"), Some(Duration::from_secs(30)));
    assert_eq!(parse("Sunday, 01-Mar-26 12:00:30 GMT"), Some(Duration::from_secs(30)));
    assert_eq!(parse("Sun Mar  1 12:00:30 2026"), Some(Duration::from_secs(30)));
    assert_eq!(parse("Sun, 01 Mar 2026 11:00:00 GMT"), Some(Duration::ZERO), "a past date");
    for garbage in ["", "-5", "1.5", "soon", "2 s"] {
        assert_eq!(parse(garbage), None, "{garbage:?}");
    }
}

#[test]
fn backoff_doubles_from_30_seconds_to_an_hour_with_some_jitter() {
    let policy = RetryPolicy::default();
    let at = |attempt, draw| policy.delay_with_jitter(attempt, None, draw);
    assert_eq!(at(1, 0.0), Duration::from_secs(30));
    assert_eq!(at(2, 0.0), Duration::from_secs(60));
    assert_eq!(at(3, 0.0), Duration::from_secs(120));
    assert_eq!(at(0, 0.0), Duration::from_secs(30));
    assert_eq!(at(8, 0.0), Duration::from_secs(3600));
    assert_eq!(at(u32::MAX, 0.0), Duration::from_secs(3600));
    assert_eq!(at(1, 0.5), Duration::from_millis(31_500));
    assert!(at(1, 0.999_999) < Duration::from_secs(33));
    for _ in 0..100 {
        let delay = policy.delay(2, None);
        assert!(delay >= Duration::from_secs(60) && delay < Duration::from_secs(66), "{delay:?}");
    }
}

#[test]
fn backoff_honours_retry_after_up_to_six_hours() {
    let delay = |after| RetryPolicy::default().delay_with_jitter(1, Some(after), 0.0);
    assert_eq!(delay(Duration::from_secs(2)), Duration::from_secs(30));
    assert_eq!(delay(Duration::from_secs(600)), Duration::from_secs(600));
    assert_eq!(delay(Duration::from_secs(86_400 * 30)), MAX_RETRY_AFTER);
}

#[test]
fn backoff_starts_from_the_configured_base() {
    let immediate = RetryPolicy { base: Duration::ZERO };
    assert_eq!(immediate.delay(3, None), Duration::ZERO, "tests retry at once");
    assert_eq!(immediate.delay(3, Some(Duration::from_secs(1))), Duration::from_secs(1), "but after Retry-After");
    let slow = RetryPolicy { base: Duration::from_secs(100) };
    assert_eq!(slow.delay_with_jitter(2, None, 0.0), Duration::from_secs(200));
}

#[test]
fn outcomes_have_metric_labels() {
    assert_eq!(SendOutcome::Delivered.metric_label(), "delivered");
    assert_eq!(SendOutcome::Gone.metric_label(), "gone");
    assert_eq!(SendOutcome::Retry { after: None }.metric_label(), "retried");
    assert_eq!(SendOutcome::Rejected(Rejection::Status(StatusCode::BAD_REQUEST)).metric_label(), "failed");
}
