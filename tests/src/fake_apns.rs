//! A fake APNs for end-to-end tests, strict like Apple's.
//!
//! It speaks HTTP/2 only, over TLS (a fresh self-signed certificate for
//! 127.0.0.1, which [`FakeApns::configure`] puts among the app's trusted test
//! roots), and takes `POST /3/device/<token>`. Before it accepts a notification
//! it checks what Apple checks: the provider token (an ES256 JWT verified
//! against the public half of the `.p8` key it handed out, `kid` = the key id,
//! `iss` = the team id, `iat` within the last hour of the test's clock),
//! `apns-topic` = the bundle id, `apns-push-type: alert`, `apns-priority`,
//! `apns-expiration`, `apns-collapse-id` and an `aps.alert` body. It answers
//! Apple's errors (403 `InvalidProviderToken`/`ExpiredProviderToken`, 400
//! `BadTopic`, `BadDeviceToken`, …) and whatever a test scripted per device.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use attune_shared::{Clock, config::Settings, secrets::Secret};
use axum::{
    Router,
    body::Bytes,
    extract::{Path, Request, State},
    http::{HeaderMap, StatusCode, Version},
    response::{IntoResponse, Response},
    routing::post,
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use p256::{
    elliptic_curve::{rand_core::OsRng, sec1::ToEncodedPoint},
    pkcs8::{EncodePrivateKey, LineEnding},
};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

pub const KEY_ID: &str = "KEY1234567";
pub const TEAM_ID: &str = "TEAM123456";
pub const TOPIC: &str = "org.attune.app";

/// A notification the fake accepted.
#[derive(Debug, Clone)]
pub struct ApnsDelivery {
    pub token: String,
    pub payload: Value,
    pub priority: String,
    pub expiration: i64,
    pub collapse_id: Option<String>,
    /// The provider token it came with.
    pub jwt: String,
}

/// A scripted answer: a status and Apple's `reason`.
#[derive(Debug, Clone)]
pub struct ApnsAnswer {
    pub status: StatusCode,
    pub reason: &'static str,
}

impl ApnsAnswer {
    pub fn unregistered() -> Self {
        Self { status: StatusCode::GONE, reason: "Unregistered" }
    }
    pub fn bad_device_token() -> Self {
        Self { status: StatusCode::BAD_REQUEST, reason: "BadDeviceToken" }
    }
    pub fn too_many_requests() -> Self {
        Self { status: StatusCode::TOO_MANY_REQUESTS, reason: "TooManyRequests" }
    }
    pub fn service_unavailable() -> Self {
        Self { status: StatusCode::SERVICE_UNAVAILABLE, reason: "ServiceUnavailable" }
    }
}

struct ApnsState {
    clock: Arc<dyn Clock>,
    decoding: DecodingKey,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    requests: Vec<String>,
    deliveries: Vec<ApnsDelivery>,
    /// (status, reason) of every refusal the fake made on its own.
    refusals: Vec<(u16, String)>,
    scripted: HashMap<String, VecDeque<ApnsAnswer>>,
    /// Every distinct provider token seen.
    jwts: HashSet<String>,
    /// Answer 403 to every request from now on (a revoked key).
    revoked: bool,
}

pub struct FakeApns {
    state: Arc<ApnsState>,
    server: JoinHandle<()>,
    port: u16,
    cert_der: Vec<u8>,
    key_pem: String,
}

impl FakeApns {
    /// Starts the fake on `127.0.0.1:0` with a fresh `.p8` key; `clock` judges
    /// provider tokens' age.
    pub async fn start(clock: Arc<dyn Clock>) -> Self {
        let secret = p256::SecretKey::random(&mut OsRng);
        let key_pem = secret.to_pkcs8_pem(LineEnding::LF).expect("PKCS#8 PEM").to_string();
        let point = secret.public_key().to_encoded_point(false);
        let decoding = DecodingKey::from_ec_components(
            &URL_SAFE_NO_PAD.encode(point.x().expect("x")),
            &URL_SAFE_NO_PAD.encode(point.y().expect("y")),
        )
        .expect("public key");
        let state = Arc::new(ApnsState { clock, decoding, inner: Mutex::default() });
        let router = Router::new().route("/3/device/{token}", post(receive)).with_state(state.clone());
        let (port, cert_der, server) = serve_tls(router, true).await;
        Self { state, server, port, cert_der, key_pem }
    }

    /// Points the app's APNs settings at the fake (the allow list must admit
    /// `127.0.0.1`).
    pub fn configure(&self, settings: &mut Settings) {
        settings.apns_key = Some(Secret::new(self.key_pem.clone()));
        settings.apns_key_id = Some(KEY_ID.into());
        settings.apns_team_id = Some(TEAM_ID.into());
        settings.apns_topic = Some(TOPIC.into());
        settings.apns_endpoint = Some(format!("https://127.0.0.1:{}", self.port));
        settings.push_test_roots.push(self.cert_der.clone());
    }

    /// A device token as an iPhone's app would get it (64 hex characters).
    pub fn new_token(&self) -> String {
        hex::encode(rand_bytes::<32>())
    }

    /// Answers the next requests for `token` with `answers`, in order.
    pub fn respond_with(&self, token: &str, answers: Vec<ApnsAnswer>) {
        self.lock().scripted.entry(token.to_owned()).or_default().extend(answers);
    }

    /// Refuses every request from now on with 403 `InvalidProviderToken`, as
    /// after the key was revoked in the developer account.
    pub fn revoke_key(&self) {
        self.lock().revoked = true;
    }

    pub fn deliveries(&self) -> Vec<ApnsDelivery> {
        self.lock().deliveries.clone()
    }

    pub fn requests_for(&self, token: &str) -> usize {
        self.lock().requests.iter().filter(|t| *t == token).count()
    }

    pub fn refusals(&self) -> Vec<(u16, String)> {
        self.lock().refusals.clone()
    }

    /// How many different provider tokens arrived.
    pub fn distinct_provider_tokens(&self) -> usize {
        self.lock().jwts.len()
    }

    pub async fn wait_for_deliveries(&self, n: usize, timeout: Duration) -> Vec<ApnsDelivery> {
        let what = format!("{n} APNs deliveries");
        wait_until(&what, timeout, || self.lock().deliveries.len() >= n).await;
        self.deliveries()
    }

    pub async fn wait_for_requests(&self, token: &str, n: usize, timeout: Duration) {
        wait_until(&format!("{n} APNs requests"), timeout, || self.requests_for(token) >= n).await;
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.state.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for FakeApns {
    fn drop(&mut self) {
        self.server.abort();
    }
}

#[derive(serde::Deserialize)]
struct ProviderClaims {
    iss: String,
    iat: i64,
}

fn refuse(state: &ApnsState, status: StatusCode, reason: &str) -> Response {
    state.inner.lock().unwrap_or_else(|p| p.into_inner()).refusals.push((status.as_u16(), reason.to_owned()));
    (status, axum::Json(json!({"reason": reason}))).into_response()
}

async fn receive(State(state): State<Arc<ApnsState>>, Path(token): Path<String>, request: Request) -> Response {
    let version = request.version();
    let headers = request.headers().clone();
    let body = axum::body::to_bytes(request.into_body(), 4096).await.unwrap_or_default();
    state.inner.lock().unwrap_or_else(|p| p.into_inner()).requests.push(token.clone());
    if version != Version::HTTP_2 {
        return refuse(&state, StatusCode::HTTP_VERSION_NOT_SUPPORTED, "HTTP/2 only");
    }
    match check(&state, &token, &headers, &body) {
        Err((status, reason)) => refuse(&state, status, reason),
        Ok(delivery) => {
            let mut inner = state.inner.lock().unwrap_or_else(|p| p.into_inner());
            inner.jwts.insert(delivery.jwt.clone());
            if let Some(answer) = inner.scripted.get_mut(&token).and_then(VecDeque::pop_front) {
                return (answer.status, axum::Json(json!({"reason": answer.reason}))).into_response();
            }
            inner.deliveries.push(delivery);
            (StatusCode::OK, [("apns-id", uuid::Uuid::new_v4().to_string())]).into_response()
        }
    }
}

fn check(
    state: &ApnsState,
    token: &str,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<ApnsDelivery, (StatusCode, &'static str)> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let jwt = header("authorization")
        .and_then(|v| v.strip_prefix("bearer ").map(str::to_owned))
        .ok_or((StatusCode::FORBIDDEN, "MissingProviderToken"))?;
    if state.inner.lock().unwrap_or_else(|p| p.into_inner()).revoked {
        return Err((StatusCode::FORBIDDEN, "InvalidProviderToken"));
    }
    let jwt_header = jsonwebtoken::decode_header(&jwt).map_err(|_| (StatusCode::FORBIDDEN, "InvalidProviderToken"))?;
    if jwt_header.alg != Algorithm::ES256 || jwt_header.kid.as_deref() != Some(KEY_ID) {
        return Err((StatusCode::FORBIDDEN, "InvalidProviderToken"));
    }
    let mut validation = Validation::new(Algorithm::ES256);
    validation.required_spec_claims = HashSet::new();
    validation.validate_exp = false;
    validation.set_issuer(&[TEAM_ID]);
    let claims = jsonwebtoken::decode::<ProviderClaims>(&jwt, &state.decoding, &validation)
        .map_err(|_| (StatusCode::FORBIDDEN, "InvalidProviderToken"))?
        .claims;
    let now = state.clock.now().timestamp();
    if claims.iss != TEAM_ID || claims.iat > now + 60 {
        return Err((StatusCode::FORBIDDEN, "InvalidProviderToken"));
    }
    if now - claims.iat > 3600 {
        return Err((StatusCode::FORBIDDEN, "ExpiredProviderToken"));
    }
    if header("apns-topic").as_deref() != Some(TOPIC) {
        return Err((StatusCode::BAD_REQUEST, "BadTopic"));
    }
    if header("apns-push-type").as_deref() != Some("alert") {
        return Err((StatusCode::BAD_REQUEST, "InvalidPushType"));
    }
    let priority = header("apns-priority").unwrap_or_else(|| "10".into());
    if !["5", "10"].contains(&priority.as_str()) {
        return Err((StatusCode::BAD_REQUEST, "BadPriority"));
    }
    let expiration = header("apns-expiration")
        .map(|v| v.parse::<i64>().map_err(|_| (StatusCode::BAD_REQUEST, "BadExpirationDate")))
        .transpose()?
        .unwrap_or(0);
    let collapse_id = header("apns-collapse-id");
    if collapse_id.as_ref().is_some_and(|c| c.len() > 64) {
        return Err((StatusCode::BAD_REQUEST, "BadCollapseId"));
    }
    if token.len() < 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err((StatusCode::BAD_REQUEST, "BadDeviceToken"));
    }
    let payload: Value = serde_json::from_slice(body).map_err(|_| (StatusCode::BAD_REQUEST, "PayloadEmpty"))?;
    let alert = &payload["aps"]["alert"];
    if !alert["title"].is_string() || !alert["body"].is_string() {
        return Err((StatusCode::BAD_REQUEST, "PayloadEmpty"));
    }
    Ok(ApnsDelivery { token: token.to_owned(), payload, priority, expiration, collapse_id, jwt })
}

pub(crate) fn rand_bytes<const N: usize>() -> [u8; N] {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; N];
    ring::rand::SystemRandom::new().fill(&mut bytes).expect("random bytes");
    bytes
}

pub(crate) async fn wait_until(what: &str, timeout: Duration, done: impl Fn() -> bool) {
    crate::eventually(what, timeout, || std::future::ready(done())).await;
}

/// Serves `router` over TLS on `127.0.0.1:0` with a fresh self-signed
/// certificate; `http2_only` offers only `h2` in ALPN. Returns the port, the
/// certificate (DER) and the server task.
pub async fn serve_tls(router: Router, http2_only: bool) -> (u16, Vec<u8>, JoinHandle<()>) {
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).expect("certificate");
    let cert_der = certified.cert.der().to_vec();
    let alpn = if http2_only { vec![b"h2".to_vec()] } else { vec![b"h2".to_vec(), b"http/1.1".to_vec()] };
    let acceptor = tls_acceptor(cert_der.clone(), certified.signing_key.serialize_der(), alpn);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a TLS fake");
    let port = listener.local_addr().expect("address").port();
    let server = tokio::spawn(serve_https(listener, acceptor, router));
    (port, cert_der, server)
}

/// A TLS acceptor (ring, TLS 1.2 and 1.3) for one certificate and its PKCS#8
/// key, both DER, offering `alpn`.
pub fn tls_acceptor(cert_der: Vec<u8>, key_der: Vec<u8>, alpn: Vec<Vec<u8>>) -> tokio_rustls::TlsAcceptor {
    use tokio_rustls::rustls::{
        ServerConfig,
        pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer},
    };
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_der));
    let mut config =
        ServerConfig::builder_with_provider(Arc::new(tokio_rustls::rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(vec![CertificateDer::from(cert_der)], key)
            .expect("TLS config");
    config.alpn_protocols = alpn;
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

/// Serves `router` on every TLS connection `listener` accepts (hyper, HTTP/2
/// or HTTP/1.1 as ALPN chose), until accepting fails.
pub async fn serve_https(listener: tokio::net::TcpListener, acceptor: tokio_rustls::TlsAcceptor, router: Router) {
    loop {
        let Ok((stream, _)) = listener.accept().await else { return };
        let (acceptor, router) = (acceptor.clone(), router.clone());
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(stream).await else { return };
            let service = hyper_util::service::TowerToHyperService::new(router);
            let _ = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new())
                .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                .await;
        });
    }
}
