//! Apple Push Notification service: HTTP/2 requests with token-based
//! authentication, as Apple's "Sending notification requests to APNs" and
//! "Establishing a token-based connection to APNs" describe them.
//!
//! - `POST /3/device/<token>` on `api.push.apple.com` (or the sandbox host for a
//!   development build's token), over HTTP/2 only.
//! - `authorization: bearer <JWT>`: ES256 with the team's `.p8` key, header
//!   `kid` = key id, claims `iss` = team id and `iat`. Apple refuses a token
//!   renewed more often than every 20 minutes and one older than 60, so one
//!   token is cached and renewed after [`PROVIDER_TOKEN_RENEW_AFTER`].
//! - `apns-topic` (the bundle id), `apns-push-type: alert`, `apns-priority`
//!   (5, "conserve power", unless the message is urgent), `apns-expiration`
//!   from the TTL and `apns-collapse-id` from the Topic, so a newer reminder
//!   replaces an older one as with Web Push.
//!
//! Why not the `a2` crate: it brings its own HTTP/2 stack (hyper 0.14-era
//! client and OpenSSL or its own TLS setup) beside reqwest's, takes its key
//! from a reader at construction without our allow-list check before each
//! request, and gives no hook to inject a clock for the token's lifetime. The
//! protocol is one POST with six headers; reqwest (HTTP/2 already enabled) and
//! jsonwebtoken (ES256 already in the tree) cover it in this file.

use std::{fmt, sync::Mutex};

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use reqwest::{
    Client, StatusCode,
    header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue, RETRY_AFTER},
};
use serde::Serialize;
use serde_json::{Value, json};
use url::Url;

use super::{
    ApnsEnvironment, DeviceKind, NativeDevice, NativePushError, PushMessage, PushPolicy, Rejection, SendOutcome,
    Urgency, parse_retry_after,
    send::{http_client, loggable, read_body},
};
use crate::config::Settings;

/// Renewed after 50 minutes: inside Apple's window of 20 to 60.
pub const PROVIDER_TOKEN_RENEW_AFTER: ChronoDuration = ChronoDuration::minutes(50);
/// Apple's floor between two renewals (`TooManyProviderTokenUpdates` below it).
const PROVIDER_TOKEN_MIN_AGE: ChronoDuration = ChronoDuration::minutes(20);
/// `apns-collapse-id` is at most 64 bytes; our Topics are at most 32.
const MAX_COLLAPSE_ID: usize = 64;

/// The 400 reasons that mean the device token is no good (remove the device).
const DEAD_TOKEN_REASONS: [&str; 3] = ["BadDeviceToken", "DeviceTokenNotForTopic", "Unregistered"];

/// APNs' settings, checked.
#[derive(Clone)]
pub struct ApnsConfig {
    key: EncodingKey,
    key_id: String,
    team_id: String,
    topic: String,
    /// `ATTUNE_APNS_ENDPOINT`, for both environments; Apple's hosts otherwise.
    endpoint: Option<Url>,
}

impl fmt::Debug for ApnsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApnsConfig")
            .field("key_id", &self.key_id)
            .field("team_id", &self.team_id)
            .field("topic", &self.topic)
            .field("endpoint", &self.endpoint.as_ref().map(Url::as_str))
            .finish_non_exhaustive()
    }
}

pub(crate) const APNS_SETTINGS: [&str; 4] =
    ["ATTUNE_APNS_KEY", "ATTUNE_APNS_KEY_ID", "ATTUNE_APNS_TEAM_ID", "ATTUNE_APNS_TOPIC"];

impl ApnsConfig {
    /// `None` when APNs is not configured at all; an error naming what is
    /// missing when it is only partly configured, or naming what is wrong.
    pub fn from_settings(settings: &Settings, policy: &PushPolicy) -> Result<Option<Self>, NativePushError> {
        let key = given(settings.apns_key.as_ref().map(|k| k.expose()));
        let key_id = given(settings.apns_key_id.as_deref());
        let team_id = given(settings.apns_team_id.as_deref());
        let topic = given(settings.apns_topic.as_deref());
        let endpoint = given(settings.apns_endpoint.as_deref());
        let values = [key, key_id, team_id, topic];
        if values.iter().all(Option::is_none) && endpoint.is_none() {
            return Ok(None);
        }
        let missing: Vec<&'static str> =
            APNS_SETTINGS.iter().zip(values).filter(|(_, value)| value.is_none()).map(|(name, _)| *name).collect();
        let (Some(key), Some(key_id), Some(team_id), Some(topic)) = (key, key_id, team_id, topic) else {
            return Err(NativePushError::Partial { service: "APNs", missing, all: &APNS_SETTINGS });
        };
        // Environment files often carry a PEM on one line with `\n` escapes.
        let pem = key.replace("\\n", "\n");
        let secret = p256::SecretKey::from_pkcs8_pem(pem.trim()).map_err(|_| {
            NativePushError::Invalid(
                "ATTUNE_APNS_KEY",
                "must be the .p8 file's text (a PKCS#8 P-256 key in PEM)".into(),
            )
        })?;
        let der = secret
            .to_pkcs8_der()
            .map_err(|_| NativePushError::Invalid("ATTUNE_APNS_KEY", "could not be re-encoded".into()))?;
        let id_like = |value: &str| value.len() <= 64 && value.bytes().all(|b| b.is_ascii_alphanumeric());
        if !id_like(key_id) {
            return Err(NativePushError::Invalid(
                "ATTUNE_APNS_KEY_ID",
                "must be the key's id (letters and digits)".into(),
            ));
        }
        if !id_like(team_id) {
            return Err(NativePushError::Invalid(
                "ATTUNE_APNS_TEAM_ID",
                "must be the Team ID (letters and digits)".into(),
            ));
        }
        if topic.len() > 255 || !topic.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_')) {
            return Err(NativePushError::Invalid("ATTUNE_APNS_TOPIC", "must be the app's bundle id".into()));
        }
        let endpoint = match endpoint {
            Some(raw) => Some(checked_base_url(raw, policy, "ATTUNE_APNS_ENDPOINT")?),
            None => {
                for environment in [ApnsEnvironment::Production, ApnsEnvironment::Sandbox] {
                    if !policy.is_host_allowed(environment.apple_host()) {
                        return Err(NativePushError::HostNotAllowed(environment.apple_host().to_owned()));
                    }
                }
                None
            }
        };
        Ok(Some(Self {
            key: EncodingKey::from_ec_der(der.as_bytes()),
            key_id: key_id.to_owned(),
            team_id: team_id.to_owned(),
            topic: topic.to_owned(),
            endpoint,
        }))
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    fn base_url(&self, environment: ApnsEnvironment) -> Result<Url, url::ParseError> {
        match &self.endpoint {
            Some(endpoint) => Ok(endpoint.clone()),
            None => Url::parse(&format!("https://{}", environment.apple_host())),
        }
    }
}

/// A setting's value, if it is set to something other than blanks.
pub(crate) fn given(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|v| !v.is_empty())
}

/// A base URL from a setting, checked against the push policy.
pub(crate) fn checked_base_url(raw: &str, policy: &PushPolicy, setting: &'static str) -> Result<Url, NativePushError> {
    let url = policy.parse_endpoint(raw).map_err(|e| NativePushError::Invalid(setting, e.to_string()))?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err(NativePushError::Invalid(setting, "must be a base URL without query or fragment".into()));
    }
    Ok(url)
}

#[derive(Clone)]
struct ProviderToken {
    header: HeaderValue,
    issued_at: DateTime<Utc>,
}

#[derive(Serialize)]
struct ProviderClaims<'a> {
    iss: &'a str,
    iat: i64,
}

/// HTTP/2 connections per APNs host. Apple: "You can establish multiple
/// connections to APNs servers to improve performance"; one connection's
/// streams all pass through one connection task on each side, so a few
/// connections let a busy worker use more than one core.
pub const APNS_CONNECTIONS: usize = 4;

/// Sends to APNs. Cheap to clone; clones share connections and the token.
#[derive(Clone)]
pub struct ApnsClient {
    /// [`APNS_CONNECTIONS`] clients of one connection each, taken in turn.
    http: std::sync::Arc<[Client]>,
    next: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    policy: PushPolicy,
    config: std::sync::Arc<ApnsConfig>,
    token: std::sync::Arc<Mutex<Option<ProviderToken>>>,
}

impl fmt::Debug for ApnsClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApnsClient").field("config", &self.config).finish_non_exhaustive()
    }
}

impl ApnsClient {
    pub fn new(
        config: ApnsConfig,
        policy: PushPolicy,
        roots: Vec<reqwest::Certificate>,
    ) -> Result<Self, reqwest::Error> {
        let http =
            (0..APNS_CONNECTIONS).map(|_| http_client(&policy, roots.clone(), true)).collect::<Result<_, _>>()?;
        Ok(Self {
            http,
            next: Default::default(),
            policy,
            config: std::sync::Arc::new(config),
            token: Default::default(),
        })
    }

    /// The `authorization` header: the cached provider token while it is
    /// younger than [`PROVIDER_TOKEN_RENEW_AFTER`], a new one otherwise.
    pub fn authorization(&self, now: DateTime<Utc>) -> Result<HeaderValue, jsonwebtoken::errors::Error> {
        let mut cached = self.token.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(token) = cached.as_ref() {
            let age = now - token.issued_at;
            if age >= ChronoDuration::zero() && age < PROVIDER_TOKEN_RENEW_AFTER {
                return Ok(token.header.clone());
            }
        }
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.config.key_id.clone());
        let claims = ProviderClaims { iss: &self.config.team_id, iat: now.timestamp() };
        let jwt = jsonwebtoken::encode(&header, &claims, &self.config.key)?;
        let value = HeaderValue::from_str(&format!("bearer {jwt}"))
            .map_err(|_| jsonwebtoken::errors::Error::from(jsonwebtoken::errors::ErrorKind::InvalidToken))?;
        *cached = Some(ProviderToken { header: value.clone(), issued_at: now });
        Ok(value)
    }

    /// Apple says the token expired: sign a new one next time, unless this one
    /// is too young to be replaced (then the clocks disagree; the operator sees
    /// the 403s in the log).
    fn forget_expired_token(&self, now: DateTime<Utc>) {
        let mut cached = self.token.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if cached.as_ref().is_some_and(|token| now - token.issued_at >= PROVIDER_TOKEN_MIN_AGE) {
            *cached = None;
        }
    }

    /// Sends `message` to `device` and classifies the answer. Never panics and
    /// never returns an error: every failure is an outcome.
    #[tracing::instrument(name = "push.send", skip_all, fields(push.service = "apns"))]
    pub async fn send(&self, device: &NativeDevice, message: &PushMessage, now: DateTime<Utc>) -> SendOutcome {
        let Some(environment) = device.environment() else {
            return SendOutcome::Rejected(Rejection::Status(StatusCode::BAD_REQUEST));
        };
        let url =
            match self.config.base_url(environment).and_then(|base| base.join(&format!("3/device/{}", device.token())))
            {
                Ok(url) => url,
                Err(_) => return SendOutcome::Rejected(Rejection::Status(StatusCode::BAD_REQUEST)),
            };
        if let Err(refused) = self.policy.check_endpoint(&url) {
            tracing::warn!(reason = %refused, "APNs host refused by policy; nothing sent");
            return SendOutcome::Rejected(Rejection::EndpointNotAllowed(refused));
        }
        let authorization = match self.authorization(now) {
            Ok(value) => value,
            Err(error) => {
                tracing::error!(%error, "APNs provider token could not be made");
                return SendOutcome::Rejected(Rejection::ProviderAuth {
                    service: DeviceKind::Apns,
                    reason: "signing failed".into(),
                });
            }
        };
        let turn = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % self.http.len();
        let mut request = self.http[turn]
            .post(url)
            .header(AUTHORIZATION, authorization)
            .header(CONTENT_TYPE, "application/json")
            .header("apns-topic", &self.config.topic)
            .header("apns-push-type", "alert")
            .header("apns-priority", priority(message.urgency))
            .header("apns-expiration", expiration(message, now).to_string());
        if let Some(topic) = &message.topic {
            let collapse: String = topic.as_str().chars().take(MAX_COLLAPSE_ID).collect();
            request = request.header("apns-collapse-id", collapse);
        }
        let response = match request.body(request_body(message).to_string()).send().await {
            Ok(response) => response,
            Err(error) => {
                tracing::warn!(error = %error.without_url(), "APNs request failed; will retry");
                return SendOutcome::Retry { after: None };
            }
        };
        let status = response.status();
        let retry_after =
            response.headers().get(RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(|v| parse_retry_after(v, now));
        let body = read_body(response).await;
        let reason = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| v.get("reason").and_then(Value::as_str).map(loggable))
            .unwrap_or_default();
        let outcome = classify(status, &reason, retry_after);
        if reason == "ExpiredProviderToken" {
            self.forget_expired_token(now);
        }
        match &outcome {
            SendOutcome::Delivered => tracing::debug!(status = status.as_u16(), "APNs accepted the notification"),
            SendOutcome::Gone => tracing::info!(status = status.as_u16(), reason, "APNs says the device token is dead"),
            SendOutcome::Retry { .. } => tracing::warn!(status = status.as_u16(), reason, "APNs busy; will retry"),
            SendOutcome::Rejected(Rejection::ProviderAuth { .. }) => tracing::error!(
                status = status.as_u16(),
                reason,
                "APNs refused our credentials: check ATTUNE_APNS_KEY, ATTUNE_APNS_KEY_ID, ATTUNE_APNS_TEAM_ID and ATTUNE_APNS_TOPIC"
            ),
            SendOutcome::Rejected(_) => {
                tracing::warn!(status = status.as_u16(), reason, "APNs rejected the notification")
            }
        }
        outcome
    }
}

/// Apple's answer as an outcome: 200 delivered; 410, and 400 for a dead token,
/// remove the device; 403 is our credentials; 429 and 5xx are retried.
pub fn classify(status: StatusCode, reason: &str, retry_after: Option<std::time::Duration>) -> SendOutcome {
    match status.as_u16() {
        200 => SendOutcome::Delivered,
        410 => SendOutcome::Gone,
        400 if DEAD_TOKEN_REASONS.contains(&reason) => SendOutcome::Gone,
        403 => SendOutcome::Rejected(Rejection::ProviderAuth { service: DeviceKind::Apns, reason: reason.to_owned() }),
        429 | 500..=599 => SendOutcome::Retry { after: retry_after },
        _ => SendOutcome::Rejected(Rejection::Status(status)),
    }
}

/// `apns-priority`: 10 (at once) only for urgent messages; 5 lets the device
/// wait for a good moment, as reminders and reflection notices should.
fn priority(urgency: Urgency) -> &'static str {
    if urgency == Urgency::High { "10" } else { "5" }
}

/// `apns-expiration`: when Apple may drop an undelivered message (epoch
/// seconds); 0 means "now or never", as a TTL of 0.
fn expiration(message: &PushMessage, now: DateTime<Utc>) -> i64 {
    match message.ttl_header() {
        0 => 0,
        ttl => now.timestamp() + i64::from(ttl),
    }
}

/// The JSON Apple delivers: the alert (the lock-screen text, the same as every
/// kind's) and beside `aps` the keys the app reads, as in the Web Push payload.
pub fn request_body(message: &PushMessage) -> Value {
    let payload = &message.payload;
    let mut body = json!({
        "aps": {"alert": {"title": payload.title, "body": payload.body}},
        "type": payload.r#type,
        "url": payload.url,
    });
    if let Some(delivery_id) = payload.delivery_id {
        body["delivery_id"] = json!(delivery_id);
    }
    body
}

#[cfg(test)]
#[path = "apns_tests.rs"]
mod tests;
