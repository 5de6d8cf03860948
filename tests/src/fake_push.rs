//! A fake Web Push service for end-to-end tests, strict like a real one.
//!
//! It listens on `http://127.0.0.1:<port>` and takes `POST /push/{id}`. Before it
//! accepts a message it checks what FCM, autopush or Apple check: the VAPID
//! token of RFC 8292 (ES256 over the token against `k`, `k` the key the
//! subscription was made with, `aud` its own origin, `exp` in the future and at
//! most 24 h ahead of the test's clock, `sub` a contact URL), the RFC 8030
//! headers (`TTL` required, `Urgency` and `Topic` well-formed) and the RFC 8291
//! `aes128gcm` body, which it decrypts with the subscription's private key like a
//! browser would. A request that fails a check is answered 400/401/403/413 and
//! recorded as a [`Rejection`]; an accepted one is answered 201 and recorded as a
//! [`Delivery`] with its decrypted JSON payload.
//!
//! Tests can script answers per subscription ([`FakePushService::respond_with`],
//! [`FakePushService::gone`]), and `POST /redirect/{id}` answers 307 to the push
//! URL, to show that redirects are not followed.
//!
//! To let the app reach it, allow its host: `settings.push_allowed_hosts =
//! vec![fake.host().into()]` (the harness already allows plain http).

use std::{
    collections::{HashMap, HashSet, VecDeque},
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use attune_shared::{Clock, push::decrypt};
use axum::{
    Json, Router,
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::post,
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use p256::{SecretKey, elliptic_curve::sec1::ToEncodedPoint};
use ring::{
    rand::{SecureRandom, SystemRandom},
    signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey},
};
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use uuid::Uuid;

/// RFC 8030 §7.2: push services must take 4096 bytes of body; like most, we take
/// no more, so an oversized message fails the tests as it would in production.
const MAX_BODY: usize = 4096;
/// RFC 8292 §2: a token must not be valid for more than 24 hours.
const MAX_TOKEN_LIFETIME_SECS: i64 = 24 * 60 * 60;

/// A message the fake accepted.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub subscription_id: String,
    /// The decrypted payload.
    pub payload: Value,
    pub ttl: u32,
    pub urgency: Option<String>,
    pub topic: Option<String>,
    /// The VAPID token's `sub`.
    pub vapid_subject: String,
    pub received_at: DateTime<Utc>,
}

/// A request the fake refused as invalid.
#[derive(Debug, Clone)]
pub struct Rejection {
    pub subscription_id: String,
    pub status: StatusCode,
    pub reason: String,
    pub received_at: DateTime<Utc>,
}

/// A scripted answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeResponse {
    pub status: StatusCode,
    pub retry_after: Option<String>,
}

impl FakeResponse {
    pub fn status(status: StatusCode) -> Self {
        Self { status, retry_after: None }
    }

    pub fn with_retry_after(mut self, value: &str) -> Self {
        self.retry_after = Some(value.to_owned());
        self
    }
}

/// A browser's subscription at the fake, with its private key.
#[derive(Debug, Clone)]
pub struct FakeSubscription {
    pub id: String,
    pub endpoint: String,
    pub p256dh_b64url: String,
    pub auth_b64url: String,
    /// `PushSubscription.toJSON()`: what the app's client posts.
    pub json: Value,
    pub secret_key: SecretKey,
    pub auth_secret: [u8; 16],
}

impl FakeSubscription {
    /// The same subscription with another endpoint (e.g. a host off the list).
    pub fn json_with_endpoint(&self, endpoint: &str) -> Value {
        let mut json = self.json.clone();
        json["endpoint"] = json!(endpoint);
        json
    }
}

pub struct FakePushService {
    state: Arc<ServiceState>,
    server: JoinHandle<()>,
}

struct ServiceState {
    clock: Arc<dyn Clock>,
    origin: String,
    inner: Mutex<Inner>,
    /// Set once held requests may be answered (see [`FakePushService::release_held`]).
    released: tokio::sync::watch::Sender<bool>,
}

#[derive(Default)]
struct Inner {
    application_server_key: Option<String>,
    subscriptions: HashMap<String, DeviceKeys>,
    /// The subscription id of every request, in arrival order.
    requests: Vec<String>,
    deliveries: Vec<Delivery>,
    rejections: Vec<Rejection>,
    scripted: HashMap<String, VecDeque<FakeResponse>>,
    gone: HashSet<String>,
    /// Subscriptions whose next valid request is held unanswered.
    hold_next: HashSet<String>,
    /// Requests held so far (valid, never answered, never delivered).
    held: Vec<String>,
}

struct DeviceKeys {
    secret: SecretKey,
    auth: [u8; 16],
    /// The `applicationServerKey` the subscription was made with.
    application_server_key: Option<String>,
}

impl FakePushService {
    /// Starts the fake on `127.0.0.1:0`; `clock` judges token expiry.
    pub async fn start(clock: Arc<dyn Clock>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the fake push service");
        let addr = listener.local_addr().expect("fake push address");
        let state = Arc::new(ServiceState {
            clock,
            origin: format!("http://{addr}"),
            inner: Mutex::new(Inner::default()),
            released: tokio::sync::watch::Sender::new(false),
        });
        let router = Router::new()
            .route("/push/{id}", post(receive))
            .route("/redirect/{id}", post(redirect))
            .with_state(state.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Self { state, server }
    }

    /// `http://127.0.0.1:<port>`: the `aud` a token must name.
    pub fn origin(&self) -> &str {
        &self.state.origin
    }

    /// The host to put on the app's push allow list.
    pub fn host(&self) -> &str {
        "127.0.0.1"
    }

    /// The application server key (base64url) later subscriptions are made with,
    /// as a browser's `pushManager.subscribe({applicationServerKey})`.
    pub fn set_application_server_key(&self, public_key: &str) {
        self.lock().application_server_key = Some(public_key.to_owned());
    }

    /// A new subscription with a fresh P-256 key pair and auth secret.
    pub fn new_subscription(&self) -> FakeSubscription {
        let rng = SystemRandom::new();
        let mut scalar = [0u8; 32];
        let secret_key = loop {
            rng.fill(&mut scalar).expect("random bytes");
            if let Ok(key) = SecretKey::from_slice(&scalar) {
                break key;
            }
        };
        let mut auth_secret = [0u8; 16];
        rng.fill(&mut auth_secret).expect("random bytes");
        let id = Uuid::new_v4().simple().to_string();
        let endpoint = format!("{}/push/{id}", self.origin());
        let p256dh_b64url = URL_SAFE_NO_PAD.encode(secret_key.public_key().to_encoded_point(false).as_bytes());
        let auth_b64url = URL_SAFE_NO_PAD.encode(auth_secret);
        let json = json!({
            "endpoint": endpoint,
            "expirationTime": null,
            "keys": {"p256dh": p256dh_b64url, "auth": auth_b64url},
        });
        let mut inner = self.lock();
        let application_server_key = inner.application_server_key.clone();
        inner
            .subscriptions
            .insert(id.clone(), DeviceKeys { secret: secret_key.clone(), auth: auth_secret, application_server_key });
        FakeSubscription { id, endpoint, p256dh_b64url, auth_b64url, json, secret_key, auth_secret }
    }

    /// An endpoint for `subscription` that answers 307 to its real one.
    pub fn redirect_endpoint(&self, subscription: &FakeSubscription) -> String {
        format!("{}/redirect/{}", self.origin(), subscription.id)
    }

    /// Answers the next valid requests for `subscription_id` with `responses`,
    /// in order, instead of accepting them.
    pub fn respond_with(&self, subscription_id: &str, responses: Vec<FakeResponse>) {
        self.lock().scripted.entry(subscription_id.to_owned()).or_default().extend(responses);
    }

    /// Holds the next valid request for `subscription_id` unanswered until
    /// [`Self::release_held`], as a push service that has not yet accepted a
    /// message: it counts in [`Self::held`], and as a delivery only once
    /// released (a sender that died meanwhile never sees the answer).
    pub fn hold_next(&self, subscription_id: &str) {
        self.lock().hold_next.insert(subscription_id.to_owned());
    }

    /// Answers the held requests (and any held later) as usual.
    pub fn release_held(&self) {
        self.state.released.send_replace(true);
    }

    /// Requests held by [`Self::hold_next`] so far.
    pub fn held(&self) -> usize {
        self.lock().held.len()
    }

    /// Waits until `n` requests are being held.
    pub async fn wait_for_held(&self, n: usize, timeout: Duration) {
        self.wait_until(&format!("{n} held push requests"), timeout, |inner| inner.held.len() >= n).await;
    }

    /// From now on, answers 410 Gone for `subscription_id`.
    pub fn gone(&self, subscription_id: &str) {
        self.lock().gone.insert(subscription_id.to_owned());
    }

    pub fn deliveries(&self) -> Vec<Delivery> {
        self.lock().deliveries.clone()
    }

    pub fn deliveries_for(&self, subscription_id: &str) -> Vec<Delivery> {
        let inner = self.lock();
        let matching = inner.deliveries.iter().filter(|d| d.subscription_id == subscription_id);
        matching.cloned().collect()
    }

    pub fn rejections(&self) -> Vec<Rejection> {
        self.lock().rejections.clone()
    }

    /// How many requests arrived, answered however.
    pub fn request_count(&self) -> usize {
        self.lock().requests.len()
    }

    pub fn requests_for(&self, subscription_id: &str) -> usize {
        let inner = self.lock();
        inner.requests.iter().filter(|id| *id == subscription_id).count()
    }

    /// Waits (in real time) until at least `n` deliveries arrived; returns them.
    pub async fn wait_for_deliveries(&self, n: usize, timeout: Duration) -> Vec<Delivery> {
        self.wait_until(&format!("{n} push deliveries"), timeout, |inner| inner.deliveries.len() >= n).await;
        self.deliveries()
    }

    /// Waits until at least `n` requests for `subscription_id` arrived.
    pub async fn wait_for_requests(&self, subscription_id: &str, n: usize, timeout: Duration) {
        let what = format!("{n} push requests for {subscription_id}");
        self.wait_until(&what, timeout, |inner| inner.requests.iter().filter(|id| *id == subscription_id).count() >= n)
            .await;
    }

    async fn wait_until(&self, what: &str, timeout: Duration, done: impl Fn(&Inner) -> bool) {
        crate::poll_until(what, timeout, || {
            let inner = self.lock();
            std::future::ready(if done(&inner) {
                Ok(())
            } else {
                Err(format!(
                    "{} requests, {} deliveries, rejections: {:?}",
                    inner.requests.len(),
                    inner.deliveries.len(),
                    inner.rejections,
                ))
            })
        })
        .await;
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.state.lock()
    }
}

impl Drop for FakePushService {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl ServiceState {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

async fn redirect(State(state): State<Arc<ServiceState>>, Path(id): Path<String>) -> Response {
    state.lock().requests.push(id.clone());
    let location = format!("{}/push/{id}", state.origin);
    (StatusCode::TEMPORARY_REDIRECT, [(header::LOCATION, location)]).into_response()
}

async fn receive(
    State(state): State<Arc<ServiceState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let held = {
        let mut inner = state.lock();
        let hold = inner.hold_next.contains(&id)
            && inner
                .subscriptions
                .get(&id)
                .is_some_and(|keys| check_request(&state.origin, keys, &headers, &body, state.clock.now()).is_ok());
        if hold {
            inner.hold_next.remove(&id);
            inner.held.push(id.clone());
        }
        hold
    };
    if held {
        let mut released = state.released.subscribe();
        let _ = released.wait_for(|released| *released).await;
    }
    let now = state.clock.now();
    let mut inner = state.lock();
    inner.requests.push(id.clone());
    let checked = match inner.subscriptions.get(&id) {
        None => Err((StatusCode::NOT_FOUND, "unknown subscription".to_owned())),
        // An expired subscription is gone whatever the request says.
        Some(_) if inner.gone.contains(&id) => return StatusCode::GONE.into_response(),
        Some(keys) => check_request(&state.origin, keys, &headers, &body, now),
    };
    let accepted = match checked {
        Ok(accepted) => accepted,
        Err((status, reason)) => {
            inner.rejections.push(Rejection { subscription_id: id, status, reason: reason.clone(), received_at: now });
            return (status, Json(json!({ "reason": reason }))).into_response();
        }
    };
    if let Some(scripted) = inner.scripted.get_mut(&id).and_then(VecDeque::pop_front) {
        let mut response = scripted.status.into_response();
        if let Some(value) = scripted.retry_after.and_then(|v| HeaderValue::from_str(&v).ok()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        return response;
    }
    let Accepted { payload, ttl, urgency, topic, vapid_subject } = accepted;
    inner.deliveries.push(Delivery {
        subscription_id: id,
        payload,
        ttl,
        urgency,
        topic,
        vapid_subject,
        received_at: now,
    });
    let location = format!("{}/message/{}", state.origin, Uuid::new_v4().simple());
    (StatusCode::CREATED, [(header::LOCATION, location)]).into_response()
}

type Refusal = (StatusCode, String);

/// What a request that passed every check carried.
struct Accepted {
    payload: Value,
    ttl: u32,
    urgency: Option<String>,
    topic: Option<String>,
    vapid_subject: String,
}

fn refuse<T>(status: StatusCode, reason: &str) -> Result<T, Refusal> {
    Err((status, reason.to_owned()))
}

/// Every check a push service makes before accepting a message.
fn check_request(
    origin: &str,
    keys: &DeviceKeys,
    headers: &HeaderMap,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<Accepted, Refusal> {
    let vapid_subject = check_vapid(origin, keys, headers, now)?;
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if !header("content-encoding").is_some_and(|v| v.eq_ignore_ascii_case("aes128gcm")) {
        return refuse(StatusCode::BAD_REQUEST, "Content-Encoding must be aes128gcm");
    }
    let Some(ttl) = header("ttl").and_then(|v| v.trim().parse::<u32>().ok()) else {
        return refuse(StatusCode::BAD_REQUEST, "missing or invalid TTL");
    };
    let urgency = header("urgency").map(str::to_owned);
    if urgency.as_deref().is_some_and(|u| !["very-low", "low", "normal", "high"].contains(&u)) {
        return refuse(StatusCode::BAD_REQUEST, "invalid Urgency");
    }
    let topic = header("topic").map(str::to_owned);
    let topic_ok = |t: &str| {
        !t.is_empty() && t.len() <= 32 && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if topic.as_deref().is_some_and(|t| !topic_ok(t)) {
        return refuse(StatusCode::BAD_REQUEST, "invalid Topic");
    }
    if body.len() > MAX_BODY {
        return refuse(StatusCode::PAYLOAD_TOO_LARGE, "body larger than 4096 bytes");
    }
    let plaintext = decrypt(body, &keys.secret, &keys.auth)
        .map_err(|e| (StatusCode::BAD_REQUEST, format!("cannot decrypt: {e}")))?;
    let payload =
        serde_json::from_slice(&plaintext).map_err(|_| (StatusCode::BAD_REQUEST, "payload is not JSON".to_owned()))?;
    Ok(Accepted { payload, ttl, urgency, topic, vapid_subject })
}

/// RFC 8292: `Authorization: vapid t=<JWT>, k=<key>`; returns the token's `sub`.
fn check_vapid(origin: &str, keys: &DeviceKeys, headers: &HeaderMap, now: DateTime<Utc>) -> Result<String, Refusal> {
    let unauthorized = |reason: &str| (StatusCode::UNAUTHORIZED, reason.to_owned());
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| unauthorized("missing Authorization"))?;
    let (scheme, params) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("vapid") {
        return refuse(StatusCode::UNAUTHORIZED, "Authorization scheme must be vapid");
    }
    let mut token = None;
    let mut key = None;
    for param in params.split(',') {
        match param.trim().split_once('=') {
            Some(("t", v)) => token = Some(v.trim()),
            Some(("k", v)) => key = Some(v.trim()),
            _ => {}
        }
    }
    let (Some(token), Some(key)) = (token, key) else {
        return refuse(StatusCode::UNAUTHORIZED, "vapid needs t and k");
    };
    let decode = |part: &str| URL_SAFE_NO_PAD.decode(part).ok();
    let parts: Vec<&str> = token.split('.').collect();
    let [head, claims, signature] = parts[..] else {
        return refuse(StatusCode::UNAUTHORIZED, "the token is not a JWS");
    };
    let head: Value = decode(head)
        .and_then(|h| serde_json::from_slice(&h).ok())
        .ok_or_else(|| unauthorized("unreadable JWT header"))?;
    if head["alg"] != "ES256" || !(head["typ"].is_null() || head["typ"] == "JWT") {
        return refuse(StatusCode::UNAUTHORIZED, "the JWT must be ES256");
    }
    let public_key = decode(key)
        .filter(|k| k.len() == 65 && k[0] == 0x04)
        .ok_or_else(|| unauthorized("k is not an uncompressed P-256 key"))?;
    let signature =
        decode(signature).filter(|s| s.len() == 64).ok_or_else(|| unauthorized("the signature is not 64 bytes"))?;
    // The signing input is `header.claims`: everything before the last dot.
    let (signed, _) = token.rsplit_once('.').unwrap_or((token, ""));
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &public_key)
        .verify(signed.as_bytes(), &signature)
        .map_err(|_| unauthorized("the signature does not verify against k"))?;
    if keys.application_server_key.as_deref().is_some_and(|expected| expected != key) {
        return refuse(StatusCode::FORBIDDEN, "k is not the key the subscription was made with");
    }

    let claims: Value = decode(claims)
        .and_then(|c| serde_json::from_slice(&c).ok())
        .ok_or_else(|| unauthorized("unreadable JWT claims"))?;
    if claims["aud"] != origin {
        return refuse(StatusCode::UNAUTHORIZED, "aud is not this push service's origin");
    }
    let Some(exp) = claims["exp"].as_i64() else {
        return refuse(StatusCode::UNAUTHORIZED, "exp missing");
    };
    let now = now.timestamp();
    if exp <= now {
        return refuse(StatusCode::UNAUTHORIZED, "the token has expired");
    }
    if exp > now + MAX_TOKEN_LIFETIME_SECS {
        return refuse(StatusCode::UNAUTHORIZED, "exp is more than 24 hours ahead");
    }
    match claims["sub"].as_str() {
        Some(sub) if sub.starts_with("mailto:") || sub.starts_with("https:") => Ok(sub.to_owned()),
        _ => refuse(StatusCode::UNAUTHORIZED, "sub must be a mailto: or https: URL"),
    }
}

#[cfg(test)]
mod tests {
    use attune_shared::{
        ManualClock,
        push::{
            EndpointError, PushClient, PushKind, PushMessage, PushPayload, PushPolicy, PushSubscriptionJson,
            Rejection as Refused, SendOutcome, Topic, Urgency, ValidSubscription, VapidKey, VapidSigner, encrypt,
        },
    };
    use reqwest::Url;

    use super::*;

    const WAIT: Duration = Duration::from_secs(5);

    struct Setup {
        clock: ManualClock,
        fake: FakePushService,
        signer: VapidSigner,
        client: PushClient,
    }

    fn vapid_key() -> VapidKey {
        VapidKey::from_base64url(VapidKey::generate().unwrap().private_key.expose()).unwrap()
    }

    fn policy(hosts: &[&str]) -> PushPolicy {
        let hosts: Vec<String> = hosts.iter().map(|h| (*h).to_owned()).collect();
        PushPolicy::new(&hosts, true)
    }

    async fn setup() -> Setup {
        let clock = ManualClock::new(Utc::now());
        let fake = FakePushService::start(Arc::new(clock.clone())).await;
        let key = vapid_key();
        fake.set_application_server_key(key.public_key_base64url());
        let signer = VapidSigner::new(key, "mailto:ops@attune.example").unwrap();
        let client = PushClient::new(policy(&[fake.host()])).unwrap();
        Setup { clock, fake, signer, client }
    }

    fn valid(json: &Value, hosts: &[&str]) -> ValidSubscription {
        let json: PushSubscriptionJson = serde_json::from_value(json.clone()).unwrap();
        ValidSubscription::parse(&json, &policy(hosts)).unwrap()
    }

    fn message() -> PushMessage {
        PushMessage::new(
            PushPayload {
                r#type: PushKind::Test,
                title: "Notifications work".into(),
                body: "This is how Attune will reach you.".into(),
                url: "/settings/notifications".into(),
                delivery_id: None,
            },
            600,
            Urgency::High,
        )
        .with_topic(Topic::parse("test").unwrap())
    }

    impl Setup {
        async fn send(&self, subscription: &FakeSubscription) -> SendOutcome {
            self.send_at(subscription, self.clock.now()).await
        }

        async fn send_at(&self, subscription: &FakeSubscription, now: DateTime<Utc>) -> SendOutcome {
            let valid = valid(&subscription.json, &["127.0.0.1"]);
            self.client.send(&valid, &message(), &self.signer, now).await
        }

        /// A hand-made request, for what our client never sends.
        async fn post_raw(
            &self,
            subscription: &FakeSubscription,
            authorization: Option<String>,
            headers: &[(&str, &str)],
            body: Vec<u8>,
        ) -> StatusCode {
            let mut request = reqwest::Client::new().post(&subscription.endpoint).body(body);
            if let Some(authorization) = authorization {
                request = request.header("authorization", authorization);
            }
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            let status = request.send().await.unwrap().status().as_u16();
            StatusCode::from_u16(status).unwrap()
        }

        fn authorization_for(&self, audience: &str) -> String {
            let url = Url::parse(audience).unwrap();
            self.signer.authorization(&url, self.clock.now()).unwrap().to_string()
        }
    }

    fn body_for(subscription: &FakeSubscription, payload: &[u8]) -> Vec<u8> {
        let p256dh = URL_SAFE_NO_PAD.decode(&subscription.p256dh_b64url).unwrap();
        encrypt(&p256dh.try_into().unwrap(), &subscription.auth_secret, payload).unwrap()
    }

    const GOOD_HEADERS: &[(&str, &str)] = &[("content-encoding", "aes128gcm"), ("ttl", "60")];

    #[tokio::test]
    async fn a_message_is_decrypted_and_recorded() {
        let setup = setup().await;
        let subscription = setup.fake.new_subscription();
        assert_eq!(setup.send(&subscription).await, SendOutcome::Delivered);

        let deliveries = setup.fake.wait_for_deliveries(1, WAIT).await;
        assert_eq!(deliveries.len(), 1);
        let delivery = &setup.fake.deliveries_for(&subscription.id)[0];
        assert_eq!(
            delivery.payload,
            json!({
                "type": "test",
                "title": "Notifications work",
                "body": "This is how Attune will reach you.",
                "url": "/settings/notifications",
                "delivery_id": null,
            })
        );
        assert_eq!(delivery.ttl, 600);
        assert_eq!(delivery.urgency.as_deref(), Some("high"));
        assert_eq!(delivery.topic.as_deref(), Some("test"));
        assert_eq!(delivery.vapid_subject, "mailto:ops@attune.example");
        assert_eq!(delivery.received_at, setup.clock.now());
        assert!(setup.fake.rejections().is_empty());
        assert_eq!(setup.fake.request_count(), 1);
    }

    #[tokio::test]
    async fn the_subscription_json_is_what_a_browser_sends() {
        let setup = setup().await;
        let subscription = setup.fake.new_subscription();
        let json = &subscription.json;
        assert_eq!(json["endpoint"], format!("{}/push/{}", setup.fake.origin(), subscription.id));
        assert!(json["expirationTime"].is_null());
        assert_eq!(URL_SAFE_NO_PAD.decode(json["keys"]["p256dh"].as_str().unwrap()).unwrap().len(), 65);
        assert_eq!(URL_SAFE_NO_PAD.decode(json["keys"]["auth"].as_str().unwrap()).unwrap().len(), 16);
        assert_ne!(setup.fake.new_subscription().p256dh_b64url, subscription.p256dh_b64url);
    }

    #[tokio::test]
    async fn a_token_from_another_key_is_forbidden() {
        let setup = setup().await;
        let subscription = setup.fake.new_subscription();
        let stranger = VapidSigner::new(vapid_key(), "mailto:ops@attune.example").unwrap();
        let valid = valid(&subscription.json, &["127.0.0.1"]);
        let outcome = setup.client.send(&valid, &message(), &stranger, setup.clock.now()).await;
        assert_eq!(outcome, SendOutcome::Rejected(Refused::Status(StatusCode::FORBIDDEN)));
        let rejections = setup.fake.rejections();
        assert_eq!(rejections.len(), 1);
        assert_eq!(rejections[0].status, StatusCode::FORBIDDEN);
        assert_eq!(rejections[0].subscription_id, subscription.id);
        assert!(setup.fake.deliveries().is_empty());
    }

    #[tokio::test]
    async fn a_token_for_another_audience_is_unauthorized() {
        let setup = setup().await;
        let subscription = setup.fake.new_subscription();
        let body = body_for(&subscription, b"{}");
        let wrong_aud = setup.authorization_for("https://fcm.googleapis.com/fcm/send/x");
        assert_eq!(
            setup.post_raw(&subscription, Some(wrong_aud), GOOD_HEADERS, body.clone()).await,
            StatusCode::UNAUTHORIZED
        );
        assert!(setup.fake.rejections()[0].reason.contains("aud"));
        // The same request with the right audience passes: only aud was wrong.
        let right_aud = setup.authorization_for(setup.fake.origin());
        assert_eq!(setup.post_raw(&subscription, Some(right_aud), GOOD_HEADERS, body).await, StatusCode::CREATED);
    }

    #[tokio::test]
    async fn expired_and_far_future_tokens_are_unauthorized() {
        let setup = setup().await;
        let subscription = setup.fake.new_subscription();
        let now = setup.clock.now();
        // Signed 13 h ago: expired an hour ago.
        let outcome = setup.send_at(&subscription, now - chrono::Duration::hours(13)).await;
        assert_eq!(outcome, SendOutcome::Rejected(Refused::Status(StatusCode::UNAUTHORIZED)));
        // Signed by a clock 13 h fast: expires 25 h from the service's now.
        let outcome = setup.send_at(&subscription, now + chrono::Duration::hours(13)).await;
        assert_eq!(outcome, SendOutcome::Rejected(Refused::Status(StatusCode::UNAUTHORIZED)));
        let reasons: Vec<String> = setup.fake.rejections().into_iter().map(|r| r.reason).collect();
        assert_eq!(reasons, ["the token has expired", "exp is more than 24 hours ahead"]);
    }

    #[tokio::test]
    async fn malformed_requests_are_refused_like_a_real_service() {
        let setup = setup().await;
        let subscription = setup.fake.new_subscription();
        let auth = || Some(setup.authorization_for(setup.fake.origin()));
        let body = || body_for(&subscription, br#"{"type":"test"}"#);
        let post = |authorization, headers, body| setup.post_raw(&subscription, authorization, headers, body);

        assert_eq!(post(None, GOOD_HEADERS, body()).await, StatusCode::UNAUTHORIZED);
        let bearer = Some("Bearer abc".to_owned());
        assert_eq!(post(bearer, GOOD_HEADERS, body()).await, StatusCode::UNAUTHORIZED);
        let mut forged = auth().unwrap();
        forged.insert(forged.find('.').unwrap() + 3, 'x');
        assert_eq!(post(Some(forged), GOOD_HEADERS, body()).await, StatusCode::UNAUTHORIZED);

        let no_ttl: &[(&str, &str)] = &[("content-encoding", "aes128gcm")];
        assert_eq!(post(auth(), no_ttl, body()).await, StatusCode::BAD_REQUEST);
        let aesgcm: &[(&str, &str)] = &[("content-encoding", "aesgcm"), ("ttl", "60")];
        assert_eq!(post(auth(), aesgcm, body()).await, StatusCode::BAD_REQUEST);
        let urgent: &[(&str, &str)] = &[("content-encoding", "aes128gcm"), ("ttl", "60"), ("urgency", "urgent")];
        assert_eq!(post(auth(), urgent, body()).await, StatusCode::BAD_REQUEST);
        let topic: &[(&str, &str)] = &[("content-encoding", "aes128gcm"), ("ttl", "60"), ("topic", "not/a topic")];
        assert_eq!(post(auth(), topic, body()).await, StatusCode::BAD_REQUEST);

        let mut tampered = body();
        *tampered.last_mut().unwrap() ^= 1;
        assert_eq!(post(auth(), GOOD_HEADERS, tampered).await, StatusCode::BAD_REQUEST);
        assert_eq!(post(auth(), GOOD_HEADERS, vec![0; 4097]).await, StatusCode::PAYLOAD_TOO_LARGE);
        let not_json = body_for(&subscription, b"plain text");
        assert_eq!(post(auth(), GOOD_HEADERS, not_json).await, StatusCode::BAD_REQUEST);

        assert_eq!(setup.fake.rejections().len(), 10);
        assert!(setup.fake.deliveries().is_empty());
        assert_eq!(post(auth(), GOOD_HEADERS, body()).await, StatusCode::CREATED);
    }

    #[tokio::test]
    async fn a_gone_subscription_answers_410_every_time() {
        let setup = setup().await;
        let subscription = setup.fake.new_subscription();
        setup.fake.gone(&subscription.id);
        assert_eq!(setup.send(&subscription).await, SendOutcome::Gone);
        assert_eq!(setup.send(&subscription).await, SendOutcome::Gone);
        assert_eq!(setup.fake.requests_for(&subscription.id), 2);
        assert!(setup.fake.deliveries().is_empty());
    }

    #[tokio::test]
    async fn an_unknown_subscription_is_gone() {
        let setup = setup().await;
        let subscription = setup.fake.new_subscription();
        let mut unknown = subscription.clone();
        unknown.json = subscription.json_with_endpoint(&format!("{}/push/nobody", setup.fake.origin()));
        assert_eq!(setup.send(&unknown).await, SendOutcome::Gone);
    }

    #[tokio::test]
    async fn scripted_answers_are_given_in_order_then_delivery_resumes() {
        let setup = setup().await;
        let subscription = setup.fake.new_subscription();
        let other = setup.fake.new_subscription();
        setup.fake.respond_with(
            &subscription.id,
            vec![
                FakeResponse::status(StatusCode::TOO_MANY_REQUESTS).with_retry_after("2"),
                FakeResponse::status(StatusCode::INTERNAL_SERVER_ERROR),
            ],
        );
        assert_eq!(setup.send(&subscription).await, SendOutcome::Retry { after: Some(Duration::from_secs(2)) });
        // Another device is unaffected.
        assert_eq!(setup.send(&other).await, SendOutcome::Delivered);
        assert_eq!(setup.send(&subscription).await, SendOutcome::Retry { after: None });
        assert_eq!(setup.send(&subscription).await, SendOutcome::Delivered);
        setup.fake.wait_for_requests(&subscription.id, 3, WAIT).await;
        assert_eq!(setup.fake.requests_for(&subscription.id), 3);
        assert_eq!(setup.fake.deliveries_for(&subscription.id).len(), 1);
        assert_eq!(setup.fake.deliveries().len(), 2);
    }

    #[tokio::test]
    async fn a_redirect_is_not_followed() {
        let setup = setup().await;
        let subscription = setup.fake.new_subscription();
        let mut redirected = subscription.clone();
        redirected.json = subscription.json_with_endpoint(&setup.fake.redirect_endpoint(&subscription));
        assert_eq!(
            setup.send(&redirected).await,
            SendOutcome::Rejected(Refused::Status(StatusCode::TEMPORARY_REDIRECT))
        );
        assert_eq!(setup.fake.request_count(), 1);
        assert!(setup.fake.deliveries().is_empty());
    }

    #[tokio::test]
    async fn a_host_off_the_allow_list_is_refused_before_any_request() {
        let setup = setup().await;
        let subscription = setup.fake.new_subscription();
        let by_address = valid(&subscription.json, &["127.0.0.1"]);
        let strict = PushClient::new(policy(&["updates.push.services.mozilla.com"])).unwrap();
        assert_eq!(
            strict.send(&by_address, &message(), &setup.signer, setup.clock.now()).await,
            SendOutcome::Rejected(Refused::EndpointNotAllowed(EndpointError::HostNotAllowed))
        );
        // `localhost` reaches the same socket but is another host.
        let port = setup.fake.origin().rsplit(':').next().unwrap().to_owned();
        let by_name = subscription.json_with_endpoint(&format!("http://localhost:{port}/push/{}", subscription.id));
        let by_name = valid(&by_name, &["localhost"]);
        assert_eq!(
            setup.client.send(&by_name, &message(), &setup.signer, setup.clock.now()).await,
            SendOutcome::Rejected(Refused::EndpointNotAllowed(EndpointError::HostNotAllowed))
        );
        assert_eq!(setup.fake.request_count(), 0);
    }
}
