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
//! client and OpenSSL or its own TLS setup), takes its key from a reader at
//! construction without our allow-list check before each request, and gives no
//! hook to inject a clock for the token's lifetime. The protocol is one POST
//! with a few headers; jsonwebtoken (ES256 already in the tree) signs the token.
//!
//! Why `h2` directly rather than reqwest (which this client used before, over
//! the same h2 crate): reqwest's general-purpose path costs more per request
//! than the request itself: a URL parsed and converted to a URI per send, a
//! header map built and merged with the defaults, a pool checkout keyed by
//! origin, a timer, and hyper's dispatch channel to the connection task. APNs
//! is one origin, one method and a handful of headers, so [`ApnsClient`] keeps
//! `APNS_CONNECTIONS` `h2` connections per origin (`apns_conn.rs`, which
//! also says what of reqwest's setup it keeps: resolver, timeouts, TLS roots,
//! HTTP/2 settings), checks the configured base URL against the push policy
//! once per environment (it is configuration; a device token of anything but
//! letters and digits is joined and checked per send, as before), and builds
//! each request from header values made once.

use std::{
    fmt,
    sync::{Arc, Mutex},
};

use bytes::Bytes;
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use http::{
    Method, Request, StatusCode, Version,
    header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER, USER_AGENT},
    uri::PathAndQuery,
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use serde::Serialize;
use serde_json::Value;
use tokio_rustls::rustls;
use url::Url;

use super::{
    ApnsEnvironment, DeviceKind, EndpointError, NativeDevice, NativePushError, PushKind, PushMessage, PushPolicy,
    Rejection, SendOutcome, Urgency,
    apns_conn::{BoxError, Origin, tls_config},
    parse_retry_after,
    send::{MAX_RESPONSE_BODY, REQUEST_TIMEOUT, loggable},
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
    topic_header: HeaderValue,
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
        let topic_header = HeaderValue::from_str(topic)
            .map_err(|_| NativePushError::Invalid("ATTUNE_APNS_TOPIC", "must be the app's bundle id".into()))?;
        Ok(Some(Self {
            key: EncodingKey::from_ec_der(der.as_bytes()),
            key_id: key_id.to_owned(),
            team_id: team_id.to_owned(),
            topic: topic.to_owned(),
            topic_header,
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

/// Where one environment's notifications go.
struct Target {
    /// The configured base (or Apple's host).
    base: Url,
    /// The configured base joined with `3/device/`: what the policy checks,
    /// and the start of every request's path.
    prefix: Url,
    /// The policy's verdict on `prefix`. It looks at the scheme, credentials,
    /// host and port only, which a device token appended to the path cannot
    /// change, and the base is configuration: one verdict holds for every send.
    allowed: Result<(), EndpointError>,
    /// The connections, or why there can be none (reported per send).
    origin: Result<Origin, String>,
}

/// Sends to APNs. Cheap to clone; clones share connections and the token.
#[derive(Clone)]
pub struct ApnsClient {
    inner: Arc<Inner>,
}

struct Inner {
    policy: PushPolicy,
    config: ApnsConfig,
    token: Mutex<Option<ProviderToken>>,
    /// Production's and the sandbox's (the same one under `ATTUNE_APNS_ENDPOINT`);
    /// `None` if the base URL could not be made.
    production: Option<Arc<Target>>,
    sandbox: Option<Arc<Target>>,
}

impl fmt::Debug for ApnsClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApnsClient").field("config", &self.inner.config).finish_non_exhaustive()
    }
}

const USER_AGENT_VALUE: HeaderValue = HeaderValue::from_static(concat!("attune/", env!("CARGO_PKG_VERSION")));
const APNS_TOPIC: HeaderName = HeaderName::from_static("apns-topic");
const APNS_PUSH_TYPE: HeaderName = HeaderName::from_static("apns-push-type");
const APNS_PRIORITY: HeaderName = HeaderName::from_static("apns-priority");
const APNS_EXPIRATION: HeaderName = HeaderName::from_static("apns-expiration");
const APNS_COLLAPSE_ID: HeaderName = HeaderName::from_static("apns-collapse-id");

impl ApnsClient {
    /// `roots`: certificates (DER) trusted besides Mozilla's, for a local
    /// HTTPS sink in tests and benchmarks.
    pub fn new(config: ApnsConfig, policy: PushPolicy, roots: Vec<Vec<u8>>) -> Result<Self, rustls::Error> {
        let tls = tls_config(&roots)?;
        let target = |environment| {
            let base = config.base_url(environment).ok()?;
            let prefix = base.join("3/device/").ok()?;
            let allowed = policy.check_endpoint(&prefix);
            let origin = Origin::new(&prefix, &tls).map_err(|error| error.to_string());
            Some(Arc::new(Target { base, prefix, allowed, origin }))
        };
        let production = target(ApnsEnvironment::Production);
        let sandbox = match &production {
            Some(production) if config.endpoint.is_some() => Some(production.clone()),
            _ => target(ApnsEnvironment::Sandbox),
        };
        Ok(Self { inner: Arc::new(Inner { policy, config, token: Mutex::default(), production, sandbox }) })
    }

    /// The `authorization` header: the cached provider token while it is
    /// younger than [`PROVIDER_TOKEN_RENEW_AFTER`], a new one otherwise.
    pub fn authorization(&self, now: DateTime<Utc>) -> Result<HeaderValue, jsonwebtoken::errors::Error> {
        let mut cached = self.inner.token.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(token) = cached.as_ref() {
            let age = now - token.issued_at;
            if age >= ChronoDuration::zero() && age < PROVIDER_TOKEN_RENEW_AFTER {
                return Ok(token.header.clone());
            }
        }
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.inner.config.key_id.clone());
        let claims = ProviderClaims { iss: &self.inner.config.team_id, iat: now.timestamp() };
        let jwt = jsonwebtoken::encode(&header, &claims, &self.inner.config.key)?;
        let value = HeaderValue::from_str(&format!("bearer {jwt}"))
            .map_err(|_| jsonwebtoken::errors::Error::from(jsonwebtoken::errors::ErrorKind::InvalidToken))?;
        *cached = Some(ProviderToken { header: value.clone(), issued_at: now });
        Ok(value)
    }

    /// Apple says the token expired: sign a new one next time, unless this one
    /// is too young to be replaced (then the clocks disagree; the operator sees
    /// the 403s in the log).
    fn forget_expired_token(&self, now: DateTime<Utc>) {
        let mut cached = self.inner.token.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if cached.as_ref().is_some_and(|token| now - token.issued_at >= PROVIDER_TOKEN_MIN_AGE) {
            *cached = None;
        }
    }

    /// Sends `message` to `device` and classifies the answer. Never panics and
    /// never returns an error: every failure is an outcome.
    #[tracing::instrument(name = "push.send", skip_all, fields(push.service = "apns"))]
    pub async fn send(&self, device: &NativeDevice, message: &PushMessage, now: DateTime<Utc>) -> SendOutcome {
        let target = match device.environment() {
            Some(ApnsEnvironment::Production) => self.inner.production.as_ref(),
            Some(ApnsEnvironment::Sandbox) => self.inner.sandbox.as_ref(),
            None => None,
        };
        let Some(target) = target else {
            return SendOutcome::Rejected(Rejection::Status(StatusCode::BAD_REQUEST));
        };
        let path = match self.path(target, device) {
            Ok(path) => path,
            Err(outcome) => return outcome,
        };
        let origin = match &target.origin {
            Ok(origin) => origin,
            Err(error) => {
                tracing::warn!(%error, "APNs request failed; will retry");
                return SendOutcome::Retry { after: None };
            }
        };
        let Ok(uri) = origin.uri(path) else {
            return SendOutcome::Rejected(Rejection::Status(StatusCode::BAD_REQUEST));
        };
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
        let body = match serde_json::to_vec(&RequestBody::of(message)) {
            Ok(body) => Bytes::from(body),
            Err(error) => {
                tracing::error!(%error, "APNs request body could not be made");
                return SendOutcome::Rejected(Rejection::Status(StatusCode::BAD_REQUEST));
            }
        };
        // What APNs reads, and a user-agent for Apple's support to tell our
        // traffic by. No `accept` (APNs answers JSON or nothing) and no
        // `content-length` (HTTP/2 frames the body; `h2` never indexes that
        // header, so it was encoded afresh on every request).
        let mut headers = HeaderMap::with_capacity(8);
        headers.insert(USER_AGENT, USER_AGENT_VALUE);
        headers.insert(AUTHORIZATION, authorization);
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(APNS_TOPIC, self.inner.config.topic_header.clone());
        headers.insert(APNS_PUSH_TYPE, HeaderValue::from_static("alert"));
        headers.insert(APNS_PRIORITY, HeaderValue::from_static(priority(message.urgency)));
        headers.insert(APNS_EXPIRATION, HeaderValue::from(expiration(message, now)));
        if let Some(topic) = &message.topic {
            let collapse: String = topic.as_str().chars().take(MAX_COLLAPSE_ID).collect();
            if let Ok(value) = HeaderValue::from_str(&collapse) {
                headers.insert(APNS_COLLAPSE_ID, value);
            }
        }
        let (status, retry_after, body) =
            match tokio::time::timeout(REQUEST_TIMEOUT, exchange(origin, uri, headers, body)).await {
                Ok(Ok(answer)) => answer,
                Ok(Err(error)) => {
                    tracing::warn!(%error, "APNs request failed; will retry");
                    return SendOutcome::Retry { after: None };
                }
                Err(_) => {
                    tracing::warn!("APNs request timed out; will retry");
                    return SendOutcome::Retry { after: None };
                }
            };
        let retry_after = retry_after.as_ref().and_then(|v| v.to_str().ok()).and_then(|v| parse_retry_after(v, now));
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

    /// The request's path for `device` on `target`, or the outcome if the
    /// policy refuses it or no path can be made of the token.
    fn path(&self, target: &Target, device: &NativeDevice) -> Result<PathAndQuery, SendOutcome> {
        let token = device.token();
        let path = if !token.is_empty() && token.bytes().all(|b| b.is_ascii_alphanumeric()) {
            if let Err(refused) = target.allowed {
                tracing::warn!(reason = %refused, "APNs host refused by policy; nothing sent");
                return Err(SendOutcome::Rejected(Rejection::EndpointNotAllowed(refused)));
            }
            PathAndQuery::try_from(format!("{}{token}", target.prefix.path()))
        } else {
            // Anything else as before: joined to the base as a URL, and that
            // URL checked.
            let bad_request = SendOutcome::Rejected(Rejection::Status(StatusCode::BAD_REQUEST));
            let url = target.base.join(&format!("3/device/{token}")).map_err(|_| bad_request.clone())?;
            if let Err(refused) = self.inner.policy.check_endpoint(&url) {
                tracing::warn!(reason = %refused, "APNs host refused by policy; nothing sent");
                return Err(SendOutcome::Rejected(Rejection::EndpointNotAllowed(refused)));
            }
            if url.origin() != target.prefix.origin() {
                return Err(bad_request);
            }
            PathAndQuery::try_from(&url[url::Position::BeforePath..url::Position::AfterQuery])
        };
        path.map_err(|_| SendOutcome::Rejected(Rejection::Status(StatusCode::BAD_REQUEST)))
    }
}

/// POSTs on one of `origin`'s connections and reads the answer: the status,
/// `Retry-After` and the start of the body. A connection that fails before the
/// request leaves is replaced and the request sent once more on a new one (as
/// hyper's pool did); a failure after that is the caller's to retry.
async fn exchange(
    origin: &Origin,
    uri: http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Option<HeaderValue>, Vec<u8>), BoxError> {
    let mut request = Request::new(());
    *request.method_mut() = Method::POST;
    *request.uri_mut() = uri;
    *request.version_mut() = Version::HTTP_2;
    *request.headers_mut() = headers;
    let mut tries = 0;
    let (mut send, lease) = loop {
        tries += 1;
        let (send, lease) = origin.checkout().await?;
        match send.ready().await {
            Ok(send) => break (send, lease),
            Err(error) => {
                Origin::failed(&lease);
                if tries == 2 {
                    return Err(error.into());
                }
            }
        }
    };
    let (response, mut stream) = send.send_request(request, false).inspect_err(|_| Origin::failed(&lease))?;
    stream.send_data(body, true)?;
    let response = response.await?;
    let status = response.status();
    let retry_after = response.headers().get(RETRY_AFTER).cloned();
    let mut received = response.into_body();
    let mut body = Vec::new();
    while let Some(Ok(chunk)) = received.data().await {
        let _ = received.flow_control().release_capacity(chunk.len());
        let room = MAX_RESPONSE_BODY.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if room <= chunk.len() {
            break;
        }
    }
    Ok((status, retry_after, body))
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
/// Serialized straight from the message.
#[derive(Serialize)]
struct RequestBody<'a> {
    aps: Aps<'a>,
    r#type: PushKind,
    url: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    delivery_id: Option<uuid::Uuid>,
}

#[derive(Serialize)]
struct Aps<'a> {
    alert: Alert<'a>,
}

#[derive(Serialize)]
struct Alert<'a> {
    title: &'a str,
    body: &'a str,
}

impl<'a> RequestBody<'a> {
    fn of(message: &'a PushMessage) -> Self {
        let payload = &message.payload;
        Self {
            aps: Aps { alert: Alert { title: &payload.title, body: &payload.body } },
            r#type: payload.r#type,
            url: &payload.url,
            delivery_id: payload.delivery_id,
        }
    }
}

/// [`RequestBody`] written out as a `Value`, for the tests to hold it to.
#[cfg(test)]
pub fn request_body(message: &PushMessage) -> Value {
    let payload = &message.payload;
    let mut body = serde_json::json!({
        "aps": {"alert": {"title": payload.title, "body": payload.body}},
        "type": payload.r#type,
        "url": payload.url,
    });
    if let Some(delivery_id) = payload.delivery_id {
        body["delivery_id"] = serde_json::json!(delivery_id);
    }
    body
}

#[cfg(test)]
#[path = "apns_tests.rs"]
mod tests;
