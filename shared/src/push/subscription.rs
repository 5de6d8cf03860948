//! A browser's push subscription, parsed once at the edge.
//!
//! The API receives `PushSubscription.toJSON()`; a [`ValidSubscription`] is one
//! whose endpoint is on an allowed push service and whose keys can really be
//! encrypted to, so a bad subscription is refused with a 422 naming the field
//! instead of failing later in the worker.

use std::fmt;

use chrono::{DateTime, Utc};
use p256::PublicKey;
use serde::{Deserialize, Serialize};
use url::Url;

use super::{AUTH_SECRET_LEN, P256_POINT_LEN, PushPolicy, base64url_decode, base64url_decode_array, base64url_encode};
use crate::domain::ValidationErrors;

/// `PushSubscription.toJSON()` as a browser sends it. Every field is optional here
/// so that a missing one is reported by name rather than as unreadable JSON.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct PushSubscriptionJson {
    /// The push service URL to POST messages to.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// When the subscription expires, in milliseconds since the epoch, or null.
    #[serde(default, rename = "expirationTime")]
    pub expiration_time: Option<f64>,
    #[serde(default)]
    pub keys: Option<PushSubscriptionKeysJson>,
}

#[derive(Clone, Default, Serialize, Deserialize)]
pub struct PushSubscriptionKeysJson {
    /// The browser's P-256 public key, base64url of the 65-byte uncompressed point.
    #[serde(default)]
    pub p256dh: Option<String>,
    /// The 16-byte authentication secret, base64url.
    #[serde(default)]
    pub auth: Option<String>,
}

// The endpoint is a bearer capability and the keys are secrets: never shown.
impl fmt::Debug for PushSubscriptionJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PushSubscriptionJson").field("expiration_time", &self.expiration_time).finish_non_exhaustive()
    }
}

impl fmt::Debug for PushSubscriptionKeysJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PushSubscriptionKeysJson").finish_non_exhaustive()
    }
}

/// A subscription we can deliver to.
#[derive(Clone, PartialEq, Eq)]
pub struct ValidSubscription {
    endpoint: Url,
    p256dh: [u8; P256_POINT_LEN],
    auth: [u8; AUTH_SECRET_LEN],
    expiration_time: Option<DateTime<Utc>>,
}

impl ValidSubscription {
    /// Validates a browser's subscription; errors name `endpoint`,
    /// `expirationTime`, `keys.p256dh` and `keys.auth`.
    pub fn parse(json: &PushSubscriptionJson, policy: &PushPolicy) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let keys = json.keys.clone().unwrap_or_default();
        let endpoint = errors.check("endpoint", required(&json.endpoint).and_then(|e| endpoint(e, policy)));
        let expiration_time = errors.check("expirationTime", expiration_time(json.expiration_time));
        let p256dh = errors.check("keys.p256dh", required(&keys.p256dh).and_then(p256dh));
        let auth = errors.check("keys.auth", required(&keys.auth).and_then(auth));
        match (endpoint, expiration_time, p256dh, auth) {
            (Some(endpoint), Some(expiration_time), Some(p256dh), Some(auth)) if errors.is_empty() => {
                Ok(Self { endpoint, p256dh, auth, expiration_time })
            }
            _ => Err(errors),
        }
    }

    /// Rebuilds a stored subscription (the worker's path), checking it against
    /// today's policy: the allow list may have shrunk since it was stored.
    pub fn from_parts(
        endpoint: &str,
        p256dh: &str,
        auth: &str,
        expiration_time: Option<DateTime<Utc>>,
        policy: &PushPolicy,
    ) -> Result<Self, ValidationErrors> {
        let json = PushSubscriptionJson {
            endpoint: Some(endpoint.to_owned()),
            expiration_time: None,
            keys: Some(PushSubscriptionKeysJson { p256dh: Some(p256dh.to_owned()), auth: Some(auth.to_owned()) }),
        };
        let mut subscription = Self::parse(&json, policy)?;
        subscription.expiration_time = expiration_time;
        Ok(subscription)
    }

    pub fn endpoint(&self) -> &Url {
        &self.endpoint
    }

    /// The push service's host: the only part of the endpoint fit for logs.
    pub fn host(&self) -> &str {
        self.endpoint.host_str().unwrap_or_default()
    }

    pub fn p256dh(&self) -> &[u8; P256_POINT_LEN] {
        &self.p256dh
    }

    pub fn auth(&self) -> &[u8; AUTH_SECRET_LEN] {
        &self.auth
    }

    /// The key in its canonical (unpadded base64url) form, for storage.
    pub fn p256dh_base64url(&self) -> String {
        base64url_encode(&self.p256dh)
    }

    /// The auth secret in its canonical form, for storage.
    pub fn auth_base64url(&self) -> String {
        base64url_encode(&self.auth)
    }

    pub fn expiration_time(&self) -> Option<DateTime<Utc>> {
        self.expiration_time
    }

    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expiration_time.is_some_and(|at| at <= now)
    }
}

impl fmt::Debug for ValidSubscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ValidSubscription")
            .field("host", &self.host())
            .field("expiration_time", &self.expiration_time)
            .finish_non_exhaustive()
    }
}

fn required(value: &Option<String>) -> Result<&str, String> {
    match value.as_deref().map(str::trim) {
        Some(value) if !value.is_empty() => Ok(value),
        _ => Err("is required".to_owned()),
    }
}

fn endpoint(value: &str, policy: &PushPolicy) -> Result<Url, String> {
    policy.parse_endpoint(value).map_err(|e| e.to_string())
}

fn expiration_time(value: Option<f64>) -> Result<Option<DateTime<Utc>>, String> {
    let Some(ms) = value else { return Ok(None) };
    if !ms.is_finite() || ms < 0.0 {
        return Err("must be null or a time in milliseconds since the epoch".to_owned());
    }
    // f64 → i64 saturates; out-of-range times then fail the conversion below.
    DateTime::from_timestamp_millis(ms.round() as i64).map(Some).ok_or_else(|| "is out of range".to_owned())
}

fn p256dh(value: &str) -> Result<[u8; P256_POINT_LEN], String> {
    let bytes = base64url_decode(value).ok_or("must be base64url")?;
    let point: [u8; P256_POINT_LEN] =
        bytes.try_into().map_err(|_| "must be a 65-byte uncompressed P-256 public key")?;
    // RFC 8291 uses the uncompressed (X9.62) form; the point must be on the curve
    // or ECDH with it would fail (or worse, leak) at send time.
    if point[0] != 0x04 || PublicKey::from_sec1_bytes(&point).is_err() {
        return Err("must be a valid P-256 public key".to_owned());
    }
    Ok(point)
}

fn auth(value: &str) -> Result<[u8; AUTH_SECRET_LEN], String> {
    if base64url_decode(value).is_none() {
        return Err("must be base64url".to_owned());
    }
    base64url_decode_array(value).ok_or_else(|| "must be 16 bytes".to_owned())
}

#[cfg(test)]
#[path = "subscription_tests.rs"]
mod tests;
