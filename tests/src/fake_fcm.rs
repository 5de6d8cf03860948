//! A fake FCM (HTTP v1) and its OAuth token endpoint for end-to-end tests.
//!
//! It hands out a service account (a fresh RSA key, its JSON as the Firebase
//! console gives it, `token_uri` pointing at the fake). `POST /token` checks
//! the RS256 assertion as Google does: the signature against the account's
//! public key, `iss` = its e-mail, `aud` = the `token_uri`, `scope` =
//! firebase.messaging, `exp` in the future (by the test's clock) and at most an
//! hour after `iat`; it answers an access token valid for an hour.
//! `POST /v1/projects/<project>/messages:send` takes only a bearer token it
//! issued and that has not expired (401 otherwise), checks the message
//! (`token`, `notification`, string-only `data`, `android.ttl` as `"<n>s"`),
//! and answers 200 or what a test scripted per registration token.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex, MutexGuard, OnceLock},
    time::Duration,
};

use attune_shared::{Clock, config::Settings, push::FCM_SCOPE, secrets::Secret};
use axum::{
    Form, Json, Router,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::post,
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use rsa::{
    RsaPrivateKey,
    pkcs8::{EncodePrivateKey, LineEnding},
    traits::PublicKeyParts,
};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use crate::fake_apns::{rand_bytes, wait_until};

pub const PROJECT_ID: &str = "attune-test";
pub const CLIENT_EMAIL: &str = "attune-push@attune-test.iam.gserviceaccount.com";

/// A message the fake accepted.
#[derive(Debug, Clone)]
pub struct FcmDelivery {
    pub token: String,
    /// The `message` object as sent.
    pub message: Value,
}

/// A scripted answer.
#[derive(Debug, Clone)]
pub struct FcmAnswer {
    pub status: StatusCode,
    pub code: &'static str,
    pub retry_after: Option<&'static str>,
}

impl FcmAnswer {
    pub fn unregistered() -> Self {
        Self { status: StatusCode::NOT_FOUND, code: "UNREGISTERED", retry_after: None }
    }
    pub fn invalid_token() -> Self {
        Self { status: StatusCode::BAD_REQUEST, code: "INVALID_ARGUMENT", retry_after: None }
    }
    pub fn quota_exceeded(retry_after: &'static str) -> Self {
        Self { status: StatusCode::TOO_MANY_REQUESTS, code: "QUOTA_EXCEEDED", retry_after: Some(retry_after) }
    }
    pub fn unavailable() -> Self {
        Self { status: StatusCode::SERVICE_UNAVAILABLE, code: "UNAVAILABLE", retry_after: None }
    }
}

struct FcmState {
    clock: Arc<dyn Clock>,
    decoding: DecodingKey,
    token_uri: String,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Access tokens issued, with when they expire.
    issued: HashMap<String, DateTime<Utc>>,
    token_requests: usize,
    /// Why token requests were refused.
    token_refusals: Vec<String>,
    requests: Vec<String>,
    unauthenticated: usize,
    deliveries: Vec<FcmDelivery>,
    refusals: Vec<(u16, String)>,
    scripted: HashMap<String, VecDeque<FcmAnswer>>,
}

pub struct FakeFcm {
    state: Arc<FcmState>,
    server: JoinHandle<()>,
    origin: String,
    service_account: String,
}

/// One RSA key per test process: generating one takes a while even optimised.
fn service_account_key() -> &'static RsaPrivateKey {
    static KEY: OnceLock<RsaPrivateKey> = OnceLock::new();
    KEY.get_or_init(|| RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).expect("RSA key"))
}

impl FakeFcm {
    /// Starts the fake on `127.0.0.1:0`; `clock` judges assertions and tokens.
    pub async fn start(clock: Arc<dyn Clock>) -> Self {
        let key = service_account_key();
        let decoding = DecodingKey::from_rsa_components(
            &URL_SAFE_NO_PAD.encode(key.n().to_bytes_be()),
            &URL_SAFE_NO_PAD.encode(key.e().to_bytes_be()),
        )
        .expect("public key");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the fake FCM");
        let origin = format!("http://{}", listener.local_addr().expect("address"));
        let token_uri = format!("{origin}/token");
        let service_account = json!({
            "type": "service_account",
            "project_id": PROJECT_ID,
            "private_key_id": hex::encode(rand_bytes::<20>()),
            "private_key": key.to_pkcs8_pem(LineEnding::LF).expect("PEM").to_string(),
            "client_email": CLIENT_EMAIL,
            "client_id": "100000000000000000000",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": token_uri,
        })
        .to_string();
        let state = Arc::new(FcmState { clock, decoding, token_uri, inner: Mutex::default() });
        let router = Router::new()
            .route("/token", post(issue_token))
            .route("/v1/projects/{project}/{action}", post(send))
            .with_state(state.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Self { state, server, origin, service_account }
    }

    /// Points the app's FCM settings at the fake (the allow list must admit
    /// `127.0.0.1`, over http).
    pub fn configure(&self, settings: &mut Settings) {
        settings.fcm_service_account = Some(Secret::new(self.service_account.clone()));
        settings.fcm_endpoint = Some(self.origin.clone());
    }

    /// The service account JSON, as the Firebase console gives it.
    pub fn service_account(&self) -> &str {
        &self.service_account
    }

    /// A registration token as an Android app would get it.
    pub fn new_token(&self) -> String {
        format!("{}:APA91b{}", URL_SAFE_NO_PAD.encode(rand_bytes::<16>()), URL_SAFE_NO_PAD.encode(rand_bytes::<96>()))
    }

    pub fn respond_with(&self, token: &str, answers: Vec<FcmAnswer>) {
        self.lock().scripted.entry(token.to_owned()).or_default().extend(answers);
    }

    /// Makes every access token issued so far invalid, as when Google revokes
    /// them early: the next send meets a 401.
    pub fn expire_access_tokens(&self) {
        self.lock().issued.clear();
    }

    pub fn deliveries(&self) -> Vec<FcmDelivery> {
        self.lock().deliveries.clone()
    }

    pub fn requests_for(&self, token: &str) -> usize {
        self.lock().requests.iter().filter(|t| *t == token).count()
    }

    /// Token requests answered with an access token or refused.
    pub fn token_requests(&self) -> usize {
        self.lock().token_requests
    }

    pub fn token_refusals(&self) -> Vec<String> {
        self.lock().token_refusals.clone()
    }

    /// Sends refused for want of a valid access token.
    pub fn unauthenticated(&self) -> usize {
        self.lock().unauthenticated
    }

    pub fn refusals(&self) -> Vec<(u16, String)> {
        self.lock().refusals.clone()
    }

    pub async fn wait_for_deliveries(&self, n: usize, timeout: Duration) -> Vec<FcmDelivery> {
        wait_until(&format!("{n} FCM deliveries"), timeout, || self.lock().deliveries.len() >= n).await;
        self.deliveries()
    }

    pub async fn wait_for_requests(&self, token: &str, n: usize, timeout: Duration) {
        wait_until(&format!("{n} FCM requests"), timeout, || self.requests_for(token) >= n).await;
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.state.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for FakeFcm {
    fn drop(&mut self) {
        self.server.abort();
    }
}

#[derive(serde::Deserialize)]
struct TokenForm {
    grant_type: String,
    assertion: String,
}

#[derive(serde::Deserialize)]
struct AssertionClaims {
    iss: String,
    scope: String,
    iat: i64,
    exp: i64,
}

async fn issue_token(State(state): State<Arc<FcmState>>, Form(form): Form<TokenForm>) -> Response {
    let checked = check_assertion(&state, &form);
    let mut inner = state.inner.lock().unwrap_or_else(|p| p.into_inner());
    inner.token_requests += 1;
    match checked {
        Err(reason) => {
            inner.token_refusals.push(reason.to_owned());
            (StatusCode::BAD_REQUEST, Json(json!({"error": "invalid_grant", "error_description": reason})))
                .into_response()
        }
        Ok(()) => {
            let token = format!("ya29.{}", URL_SAFE_NO_PAD.encode(rand_bytes::<32>()));
            inner.issued.insert(token.clone(), state.clock.now() + chrono::Duration::seconds(3599));
            Json(json!({"access_token": token, "expires_in": 3599, "token_type": "Bearer"})).into_response()
        }
    }
}

fn check_assertion(state: &FcmState, form: &TokenForm) -> Result<(), &'static str> {
    if form.grant_type != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
        return Err("unsupported grant_type");
    }
    let mut validation = Validation::new(Algorithm::RS256);
    validation.validate_exp = false;
    validation.set_audience(&[state.token_uri.as_str()]);
    validation.set_issuer(&[CLIENT_EMAIL]);
    let claims = jsonwebtoken::decode::<AssertionClaims>(&form.assertion, &state.decoding, &validation)
        .map_err(|_| "invalid signature, audience or issuer")?
        .claims;
    let now = state.clock.now().timestamp();
    if claims.iss != CLIENT_EMAIL || claims.scope != FCM_SCOPE {
        return Err("wrong issuer or scope");
    }
    if claims.exp <= now || claims.exp - claims.iat > 3600 || claims.iat > now + 60 {
        return Err("expired or too long-lived assertion");
    }
    Ok(())
}

fn error(status: StatusCode, code: &str, token_violation: bool) -> Response {
    let mut details = vec![json!({"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": code})];
    if token_violation {
        details.push(json!({"@type": "type.googleapis.com/google.rpc.BadRequest",
            "fieldViolations": [{"field": "message.token", "description": "Invalid registration token"}]}));
    }
    let status_text = match status.as_u16() {
        400 => "INVALID_ARGUMENT",
        404 => "NOT_FOUND",
        429 => "RESOURCE_EXHAUSTED",
        _ => "UNAVAILABLE",
    };
    (
        status,
        Json(json!({"error": {"code": status.as_u16(), "message": code, "status": status_text, "details": details}})),
    )
        .into_response()
}

async fn send(
    State(state): State<Arc<FcmState>>,
    Path((project, action)): Path<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let refuse = |status: StatusCode, reason: &str| {
        state.inner.lock().unwrap_or_else(|p| p.into_inner()).refusals.push((status.as_u16(), reason.to_owned()));
        (status, Json(json!({"error": {"code": status.as_u16(), "message": reason, "status": "INVALID_ARGUMENT"}})))
            .into_response()
    };
    if project != PROJECT_ID || action != "messages:send" {
        return refuse(StatusCode::NOT_FOUND, "no such project or method");
    }
    let bearer = headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    let now = state.clock.now();
    {
        let mut inner = state.inner.lock().unwrap_or_else(|p| p.into_inner());
        let valid = bearer.and_then(|token| inner.issued.get(token)).is_some_and(|expires| now < *expires);
        if !valid {
            inner.unauthenticated += 1;
            return (StatusCode::UNAUTHORIZED, Json(json!({"error": {"code": 401, "status": "UNAUTHENTICATED"}})))
                .into_response();
        }
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else { return refuse(StatusCode::BAD_REQUEST, "not JSON") };
    let message = &body["message"];
    let Some(token) = message["token"].as_str() else { return refuse(StatusCode::BAD_REQUEST, "no message.token") };
    state.inner.lock().unwrap_or_else(|p| p.into_inner()).requests.push(token.to_owned());
    if !message["notification"]["title"].is_string() || !message["notification"]["body"].is_string() {
        return refuse(StatusCode::BAD_REQUEST, "notification needs title and body");
    }
    let data_ok = message["data"].as_object().is_some_and(|data| data.values().all(Value::is_string));
    if !data_ok {
        return refuse(StatusCode::BAD_REQUEST, "data values must be strings");
    }
    let ttl = message["android"]["ttl"].as_str().unwrap_or_default();
    if !ttl.strip_suffix('s').is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())) {
        return refuse(StatusCode::BAD_REQUEST, "android.ttl must be like \"3600s\"");
    }
    if !["normal", "high", "NORMAL", "HIGH"].contains(&message["android"]["priority"].as_str().unwrap_or("normal")) {
        return refuse(StatusCode::BAD_REQUEST, "android.priority");
    }
    let mut inner = state.inner.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(answer) = inner.scripted.get_mut(token).and_then(VecDeque::pop_front) {
        drop(inner);
        let mut response = error(answer.status, answer.code, answer.code == "INVALID_ARGUMENT");
        if let Some(after) = answer.retry_after {
            response.headers_mut().insert("retry-after", after.parse().expect("header value"));
        }
        return response;
    }
    inner.deliveries.push(FcmDelivery { token: token.to_owned(), message: message.clone() });
    Json(json!({"name": format!("projects/{PROJECT_ID}/messages/{}", uuid::Uuid::new_v4().simple())})).into_response()
}
