//! Sending one message to one subscription (RFC 8030 §5) and reading the answer.
//!
//! The caller (the worker's push job) decides what an outcome means for the job:
//! [`SendOutcome::Gone`] deletes the subscription, [`SendOutcome::Retry`] is
//! re-enqueued after [`RetryPolicy::delay`] until [`MAX_ATTEMPTS`], everything else ends.

use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};
use reqwest::{
    Certificate, Client, Response, StatusCode,
    header::{AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, HeaderValue, RETRY_AFTER},
    redirect,
};

use super::{
    DeviceKind, EncryptError, EndpointError, PushMessage, PushPolicy, ValidSubscription, VapidError, VapidSigner,
    encrypt,
};

pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Bounds the whole exchange, body included, so a stalled push service cannot
/// hold a worker slot.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// Sends per message before it is dropped (the first send included).
pub const MAX_ATTEMPTS: u32 = 5;
pub const RETRY_BASE_DELAY: Duration = Duration::from_secs(30);
pub const RETRY_MAX_DELAY: Duration = Duration::from_secs(60 * 60);
/// The longest `Retry-After` we honour; beyond it the message is stale anyway.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(6 * 60 * 60);
/// Backoff delays grow by up to this fraction, so retries of many messages that
/// failed together do not arrive together.
const JITTER: f64 = 0.1;
/// Enough of an error body to log its reason, not enough to be a sink.
pub(crate) const MAX_RESPONSE_BODY: usize = 4096;

/// What became of a send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// 2xx: the push service accepted the message (RFC 8030 §5: 201).
    Delivered,
    /// 404/410: the subscription is gone for good; delete it (RFC 8030 §7.3).
    Gone,
    /// 429, 5xx or a network failure: try again, no sooner than `after`.
    Retry { after: Option<Duration> },
    /// Will not succeed as sent; do not retry.
    Rejected(Rejection),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// The push service refused the request: 413 (our bug), 400/401/403 (bad
    /// request or VAPID key mismatch), a 3xx we do not follow, …
    Status(StatusCode),
    /// The endpoint is not (or no longer) on the allow list; nothing was sent.
    EndpointNotAllowed(EndpointError),
    /// The payload could not be encrypted (too large, or an unusable key).
    Payload(EncryptError),
    /// The VAPID token could not be made.
    Vapid(VapidError),
    /// APNs or FCM refused our credentials (APNs 403, FCM 401 after a fresh
    /// token, or the OAuth token endpoint's refusal): the operator's to fix, not
    /// a message's to retry.
    ProviderAuth { service: DeviceKind, reason: String },
    /// The service is not (or no longer) configured on this install.
    ServiceNotEnabled(DeviceKind),
}

impl SendOutcome {
    /// The outcome label of the pushes metric. A `Retry` of the last attempt is
    /// the caller's to count as `failed`.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Gone => "gone",
            Self::Retry { .. } => "retried",
            Self::Rejected(_) => "failed",
        }
    }
}

/// An HTTP client for push services: pooled connections, bounded timeouts, no
/// redirects, and the endpoint policy checked before every request.
#[derive(Debug, Clone)]
pub struct PushClient {
    http: Client,
    policy: PushPolicy,
}

impl PushClient {
    pub fn new(policy: PushPolicy) -> Result<Self, reqwest::Error> {
        Self::build(policy, Vec::new())
    }

    /// Also trusts `roots`: for a local HTTPS sink in tests and benchmarks.
    #[cfg(any(test, feature = "testing"))]
    pub fn with_root_certificates(policy: PushPolicy, roots: Vec<Certificate>) -> Result<Self, reqwest::Error> {
        Self::build(policy, roots)
    }

    /// The client for `settings`: with the `testing` feature, it also trusts
    /// the settings' test roots (a local HTTPS fake).
    pub fn from_settings(settings: &crate::config::Settings) -> Result<Self, reqwest::Error> {
        Self::build(PushPolicy::from_settings(settings), test_roots(settings))
    }

    fn build(policy: PushPolicy, roots: Vec<Certificate>) -> Result<Self, reqwest::Error> {
        Ok(Self { http: http_client(&policy, roots)?, policy })
    }

    pub fn policy(&self) -> &PushPolicy {
        &self.policy
    }

    /// Encrypts, signs and POSTs `message` to `subscription`, and classifies the
    /// answer. Never panics and never returns an error: every failure is an
    /// outcome.
    #[tracing::instrument(name = "push.send", skip_all, fields(push.host = subscription.host()))]
    pub async fn send(
        &self,
        subscription: &ValidSubscription,
        message: &PushMessage,
        signer: &VapidSigner,
        now: DateTime<Utc>,
    ) -> SendOutcome {
        // Defence in depth: the subscription was checked when stored, but the
        // allow list may have changed since, and this is where a request leaves.
        if let Err(refused) = self.policy.check_endpoint(subscription.endpoint()) {
            tracing::warn!(reason = %refused, "push endpoint refused by policy; nothing sent");
            return SendOutcome::Rejected(Rejection::EndpointNotAllowed(refused));
        }
        let body = match message
            .payload
            .to_json()
            .map_err(|_| EncryptError::Crypto)
            .and_then(|json| encrypt(subscription.p256dh(), subscription.auth(), &json))
        {
            Ok(body) => body,
            Err(error) => {
                tracing::error!(%error, "push payload could not be encrypted");
                return SendOutcome::Rejected(Rejection::Payload(error));
            }
        };
        let authorization = match signer
            .authorization(subscription.endpoint(), now)
            .and_then(|h| HeaderValue::from_str(&h).map_err(|_| VapidError::Signing))
        {
            Ok(value) => value,
            Err(error) => {
                tracing::error!(%error, "VAPID token could not be made");
                return SendOutcome::Rejected(Rejection::Vapid(error));
            }
        };

        let mut request = self
            .http
            .post(subscription.endpoint().clone())
            .header(CONTENT_ENCODING, "aes128gcm")
            .header(CONTENT_TYPE, "application/octet-stream")
            .header("ttl", message.ttl_header())
            .header("urgency", message.urgency.as_str())
            .header(AUTHORIZATION, authorization);
        if let Some(topic) = &message.topic {
            request = request.header("topic", topic.as_str());
        }
        let response = match request.body(body).send().await {
            Ok(response) => response,
            Err(error) => {
                // Without the URL: the endpoint is a capability.
                tracing::warn!(error = %error.without_url(), "push request failed; will retry");
                return SendOutcome::Retry { after: None };
            }
        };
        let status = response.status();
        let retry_after =
            response.headers().get(RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(|v| parse_retry_after(v, now));
        // Reading the body returns the connection to the pool.
        let reason = read_reason(response).await;
        let outcome = classify_response(status, retry_after);
        log_outcome(&outcome, status, &reason);
        outcome
    }
}

/// The HTTP client every push service is reached with: pooled connections,
/// bounded timeouts, no redirects (one would lead past the allow list), https
/// only unless the policy allows http. (APNs has its own HTTP/2 client,
/// `apns_conn.rs`, set up the same way.)
pub(crate) fn http_client(policy: &PushPolicy, roots: Vec<Certificate>) -> reqwest::Result<Client> {
    let mut builder = Client::builder()
        .user_agent(concat!("attune/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .redirect(redirect::Policy::none())
        .referer(false)
        .https_only(!policy.allow_http())
        .pool_idle_timeout(Duration::from_secs(90))
        .tcp_keepalive(Duration::from_secs(60));
    for root in roots {
        builder = builder.add_root_certificate(root);
    }
    builder.build()
}

/// The extra roots a test put in the settings (none outside the `testing` feature).
pub(crate) fn test_roots(settings: &crate::config::Settings) -> Vec<Certificate> {
    test_root_ders(settings).iter().filter_map(|der| Certificate::from_der(der).ok()).collect()
}

/// [`test_roots`] as DER.
#[cfg(feature = "testing")]
pub(crate) fn test_root_ders(settings: &crate::config::Settings) -> Vec<Vec<u8>> {
    settings.push_test_roots.clone()
}

#[cfg(not(feature = "testing"))]
pub(crate) fn test_root_ders(_settings: &crate::config::Settings) -> Vec<Vec<u8>> {
    Vec::new()
}

/// Maps a push service's answer to an outcome: RFC 8030 §5 (201), §7.3 (404),
/// and what FCM, autopush, Apple and WNS answer besides (410, 413, 429, 5xx).
pub fn classify_response(status: StatusCode, retry_after: Option<Duration>) -> SendOutcome {
    match status.as_u16() {
        200..=299 => SendOutcome::Delivered,
        404 | 410 => SendOutcome::Gone,
        429 | 500..=599 => SendOutcome::Retry { after: retry_after },
        _ => SendOutcome::Rejected(Rejection::Status(status)),
    }
}

/// `Retry-After` (RFC 9110 §10.2.3): delta-seconds or an HTTP-date, as the time to
/// wait from `now`.
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Absurdly many digits saturate.
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let at = DateTime::parse_from_rfc2822(value).map(|at| at.with_timezone(&Utc)).ok().or_else(|| {
        // The obsolete RFC 850 and asctime forms HTTP-date still admits.
        ["%A, %d-%b-%y %H:%M:%S GMT", "%a %b %e %H:%M:%S %Y"]
            .iter()
            .find_map(|format| NaiveDateTime::parse_from_str(value, format).ok())
            .map(|naive| naive.and_utc())
    })?;
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

/// The one back-off the worker applies to a push the service asked to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The wait after the first failed send; it doubles with each further one.
    pub base: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { base: RETRY_BASE_DELAY }
    }
}

impl RetryPolicy {
    /// How long to wait before the next send of a message after `attempt` failed
    /// sends (1 after the first): `base`, twice that, four times … capped at an
    /// hour, plus up to 10 % jitter; never sooner than the service's `Retry-After`
    /// (up to 6 h).
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        self.delay_with_jitter(attempt, retry_after, rand::random::<f64>())
    }

    /// [`Self::delay`] with the jitter draw (in `[0, 1)`) given.
    pub(crate) fn delay_with_jitter(&self, attempt: u32, retry_after: Option<Duration>, draw: f64) -> Duration {
        let doublings = attempt.saturating_sub(1).min(20);
        let backoff = self.base.saturating_mul(1 << doublings).min(RETRY_MAX_DELAY);
        let backoff = backoff + backoff.mul_f64(JITTER * draw.clamp(0.0, 1.0));
        backoff.max(retry_after.unwrap_or_default().min(MAX_RETRY_AFTER))
    }
}

/// The start of a response body: enough to read an error's reason, never more.
pub(crate) async fn read_body(mut response: Response) -> Vec<u8> {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        let room = MAX_RESPONSE_BODY.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if room <= chunk.len() {
            break;
        }
    }
    body
}

/// A service's reason, fit for a log line: printable ASCII only, short.
pub(crate) fn loggable(text: &str) -> String {
    text.chars().filter(|c| c.is_ascii_graphic() || *c == ' ').take(200).collect()
}

async fn read_reason(response: Response) -> String {
    loggable(&String::from_utf8_lossy(&read_body(response).await))
}

fn log_outcome(outcome: &SendOutcome, status: StatusCode, reason: &str) {
    let status = status.as_u16();
    match outcome {
        SendOutcome::Delivered => tracing::debug!(status, "push delivered"),
        SendOutcome::Gone => tracing::info!(status, "push subscription gone"),
        SendOutcome::Retry { after } => {
            tracing::warn!(
                status,
                retry_after_secs = after.map(|a| a.as_secs()),
                reason,
                "push service busy; will retry"
            );
        }
        SendOutcome::Rejected(_) if status == 413 => {
            // We never send more than 4096 bytes; a 413 means that broke.
            tracing::error!(status, reason, "push service says the message is too large (a bug)");
        }
        SendOutcome::Rejected(_) => tracing::warn!(status, reason, "push service rejected the message"),
    }
}

#[cfg(test)]
#[path = "send_tests.rs"]
mod tests;
