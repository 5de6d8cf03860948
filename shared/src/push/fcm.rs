//! Firebase Cloud Messaging, HTTP v1 API.
//!
//! - Authorisation is OAuth 2.0 for a service account (RFC 7523): an RS256 JWT
//!   assertion (`iss` the account's e-mail, `scope` firebase.messaging, `aud`
//!   its `token_uri`, an hour's `exp`) is exchanged at `token_uri` for an access
//!   token, which is cached until [`ACCESS_TOKEN_MARGIN`] before it expires.
//! - `POST /v1/projects/<project>/messages:send` with `notification` (the
//!   lock-screen text, the same as every kind's), `data` (`type`, `url`,
//!   `delivery_id`, all strings as FCM requires) and `android` (`ttl`,
//!   `collapse_key` from the Topic, normal priority).
//! - 404 `UNREGISTERED`, and 400 `INVALID_ARGUMENT` about the token, remove the
//!   device; 429 and 5xx are retried honouring `Retry-After`; a 401 means the
//!   access token went stale: one fresh token and one more try.
//!
//! Built on reqwest and jsonwebtoken for the same reasons as APNs (see
//! `apns.rs`): Google's Rust SDKs are unofficial, pull in another HTTP stack
//! and an OAuth library, and would not check our allow list per request.

use std::{fmt, sync::Arc, time::Duration};

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{
    Client, StatusCode,
    header::{AUTHORIZATION, HeaderValue, RETRY_AFTER},
};
use rsa::{pkcs1::EncodeRsaPrivateKey, pkcs8::DecodePrivateKey};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use url::Url;

use super::{
    DeviceKind, NativeDevice, NativePushError, PushMessage, PushPolicy, Rejection, SendOutcome, parse_retry_after,
    send::{http_client, loggable, read_body},
};
use crate::config::Settings;

pub const FCM_SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";
const DEFAULT_ENDPOINT: &str = "https://fcm.googleapis.com/";
/// An access token is replaced this long before Google says it expires.
pub const ACCESS_TOKEN_MARGIN: ChronoDuration = ChronoDuration::minutes(5);
/// The assertion's lifetime; Google accepts at most an hour.
const ASSERTION_LIFETIME_SECS: i64 = 3600;

/// The service account key as the Firebase console downloads it (only the
/// fields we use).
#[derive(Deserialize)]
struct ServiceAccountJson {
    #[serde(rename = "type")]
    kind: Option<String>,
    project_id: Option<String>,
    private_key_id: Option<String>,
    private_key: Option<String>,
    client_email: Option<String>,
    token_uri: Option<String>,
}

/// FCM's settings, checked.
#[derive(Clone)]
pub struct FcmConfig {
    project_id: String,
    client_email: String,
    private_key_id: Option<String>,
    key: EncodingKey,
    token_uri: Url,
    endpoint: Url,
}

impl fmt::Debug for FcmConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FcmConfig")
            .field("project_id", &self.project_id)
            .field("token_uri", &self.token_uri.as_str())
            .field("endpoint", &self.endpoint.as_str())
            .finish_non_exhaustive()
    }
}

const ACCOUNT: &str = "ATTUNE_FCM_SERVICE_ACCOUNT";

impl FcmConfig {
    /// `None` when FCM is not configured; an error naming what is wrong.
    pub fn from_settings(settings: &Settings, policy: &PushPolicy) -> Result<Option<Self>, NativePushError> {
        let account = super::apns::given(settings.fcm_service_account.as_ref().map(|s| s.expose()));
        let endpoint = super::apns::given(settings.fcm_endpoint.as_deref());
        let Some(account) = account else {
            return match endpoint {
                None => Ok(None),
                Some(_) => Err(NativePushError::Partial { service: "FCM", missing: vec![ACCOUNT], all: &[ACCOUNT] }),
            };
        };
        let invalid = |message: String| NativePushError::Invalid(ACCOUNT, message);
        let json: ServiceAccountJson = serde_json::from_str(account)
            .map_err(|_| invalid("must be the service account's JSON key file, as downloaded".into()))?;
        if json.kind.as_deref().is_some_and(|kind| kind != "service_account") {
            return Err(invalid("is not a service account key (`type` must be `service_account`)".into()));
        }
        let field = |value: Option<String>, name: &str| {
            value.filter(|v| !v.trim().is_empty()).ok_or_else(|| invalid(format!("has no `{name}`")))
        };
        let project_id = field(json.project_id, "project_id")?;
        let client_email = field(json.client_email, "client_email")?;
        let private_key = field(json.private_key, "private_key")?;
        let token_uri = field(json.token_uri, "token_uri")?;
        let rsa = rsa::RsaPrivateKey::from_pkcs8_pem(private_key.trim())
            .map_err(|_| invalid("has a `private_key` that is not a PKCS#8 RSA key in PEM".into()))?;
        let der = rsa.to_pkcs1_der().map_err(|_| invalid("has a `private_key` that cannot be used".into()))?;
        if !project_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(invalid("has a `project_id` that is not a Firebase project id".into()));
        }
        let token_uri = policy
            .parse_endpoint(&token_uri)
            .map_err(|e| invalid(format!("has a `token_uri` that {e} (see ATTUNE_PUSH_ALLOWED_HOSTS)")))?;
        let endpoint = match endpoint {
            Some(raw) => super::apns::checked_base_url(raw, policy, "ATTUNE_FCM_ENDPOINT")?,
            None => {
                let default = Url::parse(DEFAULT_ENDPOINT).map_err(|e| invalid(e.to_string()))?;
                if policy.check_endpoint(&default).is_err() {
                    return Err(NativePushError::HostNotAllowed("fcm.googleapis.com".into()));
                }
                default
            }
        };
        Ok(Some(Self {
            project_id,
            client_email,
            private_key_id: json.private_key_id.filter(|id| !id.trim().is_empty()),
            key: EncodingKey::from_rsa_der(der.as_bytes()),
            token_uri,
            endpoint,
        }))
    }

    pub fn project_id(&self) -> &str {
        &self.project_id
    }
}

#[derive(Serialize)]
struct AssertionClaims<'a> {
    iss: &'a str,
    scope: &'a str,
    aud: &'a str,
    iat: i64,
    exp: i64,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: Option<i64>,
}

#[derive(Clone)]
struct AccessToken {
    header: HeaderValue,
    refresh_at: DateTime<Utc>,
}

/// Sends to FCM. Cheap to clone; clones share connections and the token.
#[derive(Clone)]
pub struct FcmClient {
    http: Client,
    policy: PushPolicy,
    config: Arc<FcmConfig>,
    /// Held while a token is fetched, so concurrent sends wait for one fetch.
    token: Arc<tokio::sync::Mutex<Option<AccessToken>>>,
}

impl fmt::Debug for FcmClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FcmClient").field("config", &self.config).finish_non_exhaustive()
    }
}

impl FcmClient {
    pub fn new(
        config: FcmConfig,
        policy: PushPolicy,
        roots: Vec<reqwest::Certificate>,
    ) -> Result<Self, reqwest::Error> {
        Ok(Self { http: http_client(&policy, roots)?, policy, config: Arc::new(config), token: Default::default() })
    }

    /// A usable access token: the cached one unless it is near its expiry or is
    /// `stale` (the one FCM just answered 401 to).
    async fn access_token(&self, now: DateTime<Utc>, stale: Option<&HeaderValue>) -> Result<HeaderValue, SendOutcome> {
        let mut cached = self.token.lock().await;
        if let Some(token) = cached.as_ref()
            && now < token.refresh_at
            && stale != Some(&token.header)
        {
            return Ok(token.header.clone());
        }
        let token = self.fetch_token(now).await?;
        let header = token.header.clone();
        *cached = Some(token);
        Ok(header)
    }

    async fn fetch_token(&self, now: DateTime<Utc>) -> Result<AccessToken, SendOutcome> {
        let auth_failure =
            |reason: String| SendOutcome::Rejected(Rejection::ProviderAuth { service: DeviceKind::Fcm, reason });
        if let Err(refused) = self.policy.check_endpoint(&self.config.token_uri) {
            return Err(SendOutcome::Rejected(Rejection::EndpointNotAllowed(refused)));
        }
        let mut header = Header::new(Algorithm::RS256);
        header.kid = self.config.private_key_id.clone();
        let claims = AssertionClaims {
            iss: &self.config.client_email,
            scope: FCM_SCOPE,
            aud: self.config.token_uri.as_str(),
            iat: now.timestamp(),
            exp: now.timestamp() + ASSERTION_LIFETIME_SECS,
        };
        let assertion = jsonwebtoken::encode(&header, &claims, &self.config.key).map_err(|error| {
            tracing::error!(%error, "FCM assertion could not be signed");
            auth_failure("signing failed".into())
        })?;
        let form = [("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"), ("assertion", &assertion)];
        let response = match self.http.post(self.config.token_uri.clone()).form(&form).send().await {
            Ok(response) => response,
            Err(error) => {
                tracing::warn!(error = %error.without_url(), "FCM token request failed; will retry");
                return Err(SendOutcome::Retry { after: None });
            }
        };
        let status = response.status();
        let retry_after = retry_after(&response, now);
        let body = read_body(response).await;
        if status.is_success() {
            let parsed: TokenResponse = serde_json::from_slice(&body).map_err(|_| {
                tracing::error!("FCM token endpoint answered without an access token");
                SendOutcome::Retry { after: None }
            })?;
            let lifetime = ChronoDuration::seconds(parsed.expires_in.unwrap_or(3600).clamp(0, 86_400));
            let header = HeaderValue::from_str(&format!("Bearer {}", parsed.access_token))
                .map_err(|_| auth_failure("unusable access token".into()))?;
            return Ok(AccessToken { header, refresh_at: now + lifetime - ACCESS_TOKEN_MARGIN });
        }
        let reason = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| v.get("error").and_then(Value::as_str).map(loggable))
            .unwrap_or_default();
        if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            tracing::warn!(status = status.as_u16(), reason, "FCM token endpoint busy; will retry");
            return Err(SendOutcome::Retry { after: retry_after });
        }
        tracing::error!(
            status = status.as_u16(),
            reason,
            "FCM token endpoint refused the service account: check ATTUNE_FCM_SERVICE_ACCOUNT"
        );
        Err(auth_failure(reason))
    }

    /// Sends `message` to `device` and classifies the answer. Never panics and
    /// never returns an error: every failure is an outcome.
    #[tracing::instrument(name = "push.send", skip_all, fields(push.service = "fcm"))]
    pub async fn send(&self, device: &NativeDevice, message: &PushMessage, now: DateTime<Utc>) -> SendOutcome {
        let path = format!("v1/projects/{}/messages:send", self.config.project_id);
        let Ok(url) = self.config.endpoint.join(&path) else {
            return SendOutcome::Rejected(Rejection::Status(StatusCode::BAD_REQUEST));
        };
        if let Err(refused) = self.policy.check_endpoint(&url) {
            tracing::warn!(reason = %refused, "FCM host refused by policy; nothing sent");
            return SendOutcome::Rejected(Rejection::EndpointNotAllowed(refused));
        }
        let body = request_body(device.token(), message).to_string();
        let mut stale = None;
        // One more try with a fresh token after a 401, no more.
        for attempt in 0..2 {
            let token = match self.access_token(now, stale.as_ref()).await {
                Ok(token) => token,
                Err(outcome) => return outcome,
            };
            let request = self
                .http
                .post(url.clone())
                .header(AUTHORIZATION, token.clone())
                .header(reqwest::header::CONTENT_TYPE, "application/json; charset=utf-8")
                .body(body.clone());
            let response = match request.send().await {
                Ok(response) => response,
                Err(error) => {
                    tracing::warn!(error = %error.without_url(), "FCM request failed; will retry");
                    return SendOutcome::Retry { after: None };
                }
            };
            let status = response.status();
            if status == StatusCode::UNAUTHORIZED && attempt == 0 {
                tracing::info!("FCM refused the access token; fetching a new one");
                stale = Some(token);
                continue;
            }
            let retry_after = retry_after(&response, now);
            let answer = serde_json::from_slice::<Value>(&read_body(response).await).unwrap_or(Value::Null);
            let outcome = classify(status, &answer, retry_after);
            log_outcome(&outcome, status, &answer);
            return outcome;
        }
        SendOutcome::Rejected(Rejection::ProviderAuth { service: DeviceKind::Fcm, reason: "UNAUTHENTICATED".into() })
    }
}

fn retry_after(response: &reqwest::Response, now: DateTime<Utc>) -> Option<Duration> {
    response.headers().get(RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(|v| parse_retry_after(v, now))
}

/// The error's `errorCode` (FCM's own) or else its `status` (Google's).
fn error_code(answer: &Value) -> String {
    let error = &answer["error"];
    let fcm = error["details"].as_array().and_then(|details| {
        details.iter().find_map(|detail| detail.get("errorCode").and_then(Value::as_str).map(str::to_owned))
    });
    loggable(&fcm.or_else(|| error["status"].as_str().map(str::to_owned)).unwrap_or_default())
}

/// Whether a 400 is about the registration token (rather than our message).
fn about_the_token(answer: &Value) -> bool {
    let error = &answer["error"];
    let named = error["details"].as_array().is_some_and(|details| {
        details.iter().any(|detail| {
            detail["fieldViolations"]
                .as_array()
                .is_some_and(|violations| violations.iter().any(|v| v["field"] == "message.token"))
        })
    });
    named || error["message"].as_str().is_some_and(|m| m.to_ascii_lowercase().contains("registration token"))
}

/// FCM's answer as an outcome.
pub fn classify(status: StatusCode, answer: &Value, retry_after: Option<Duration>) -> SendOutcome {
    let code = error_code(answer);
    match status.as_u16() {
        200..=299 => SendOutcome::Delivered,
        404 if code == "UNREGISTERED" => SendOutcome::Gone,
        400 if code == "INVALID_ARGUMENT" && about_the_token(answer) => SendOutcome::Gone,
        401 | 403 => SendOutcome::Rejected(Rejection::ProviderAuth { service: DeviceKind::Fcm, reason: code }),
        429 | 500..=599 => SendOutcome::Retry { after: retry_after },
        _ => SendOutcome::Rejected(Rejection::Status(status)),
    }
}

fn log_outcome(outcome: &SendOutcome, status: StatusCode, answer: &Value) {
    let (status, code) = (status.as_u16(), error_code(answer));
    match outcome {
        SendOutcome::Delivered => tracing::debug!(status, "FCM accepted the message"),
        SendOutcome::Gone => tracing::info!(status, code, "FCM says the registration token is dead"),
        SendOutcome::Retry { .. } => tracing::warn!(status, code, "FCM busy; will retry"),
        SendOutcome::Rejected(Rejection::ProviderAuth { .. }) => tracing::error!(
            status,
            code,
            "FCM refused our credentials: check ATTUNE_FCM_SERVICE_ACCOUNT and the project's FCM API"
        ),
        SendOutcome::Rejected(_) => tracing::warn!(status, code, "FCM rejected the message"),
    }
}

/// The `messages:send` body.
pub fn request_body(token: &str, message: &PushMessage) -> Value {
    let payload = &message.payload;
    let r#type = serde_json::to_value(payload.r#type).ok().and_then(|v| v.as_str().map(str::to_owned));
    let mut data = json!({"type": r#type.unwrap_or_default(), "url": payload.url});
    if let Some(delivery_id) = payload.delivery_id {
        data["delivery_id"] = json!(delivery_id.to_string());
    }
    let mut android = json!({"ttl": format!("{}s", message.ttl_header()), "priority": "normal"});
    if let Some(topic) = &message.topic {
        android["collapse_key"] = json!(topic.as_str());
    }
    json!({"message": {
        "token": token,
        "notification": {"title": payload.title, "body": payload.body},
        "data": data,
        "android": android,
    }})
}

#[cfg(test)]
#[path = "fcm_tests.rs"]
mod tests;
