//! VAPID (RFC 8292): proving to a push service that a message comes from the
//! application server a subscription was made for.
//!
//! The key is the one whose public half browsers received as
//! `applicationServerKey`; changing it orphans every subscription. The signed
//! JWT may be valid for up to 24 h (§2), so one is signed per push-service
//! origin, valid for 12 h, and reused until an hour before it expires: the send
//! path then costs a map lookup instead of an ECDSA signature.

use std::{
    collections::HashMap,
    fmt,
    sync::{Arc, PoisonError, RwLock},
};

use chrono::{DateTime, Utc};
use p256::{SecretKey, elliptic_curve::sec1::ToEncodedPoint, elliptic_curve::zeroize::Zeroizing};
use ring::{
    rand::{SecureRandom, SystemRandom},
    signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair},
};
use serde::Serialize;
use url::Url;

use super::{P256_POINT_LEN, base64url_decode, base64url_encode};
use crate::secrets::Secret;

/// How long a signed JWT is valid (RFC 8292 §2 allows at most 24 h).
pub const VAPID_VALIDITY_SECS: i64 = 12 * 60 * 60;
/// A cached JWT is replaced once it has less than this left, so a message never
/// reaches the push service with a token about to expire.
pub const VAPID_RENEW_BEFORE_SECS: i64 = 60 * 60;
/// Bounds the cache should wildcard hosts produce many origins.
const MAX_CACHED_ORIGINS: usize = 1024;

/// `{"typ":"JWT","alg":"ES256"}`, RFC 8292 §2 / RFC 7515.
const JWT_HEADER: &str = r#"{"typ":"JWT","alg":"ES256"}"#;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VapidError {
    #[error("the VAPID private key must be base64url")]
    Encoding,
    #[error("the VAPID private key must be 32 bytes, not {0}")]
    Length(usize),
    #[error("the VAPID private key is not a valid P-256 private key")]
    InvalidKey,
    #[error("the VAPID subject must be a mailto: or https: URL")]
    Subject,
    #[error("the endpoint has no origin to sign for")]
    Origin,
    #[error("signing the VAPID token failed")]
    Signing,
}

/// The application server's P-256 key pair. Cheap to clone.
#[derive(Clone)]
pub struct VapidKey(Arc<KeyPair>);

struct KeyPair {
    signing: EcdsaKeyPair,
    public_key: [u8; P256_POINT_LEN],
    public_key_base64url: String,
}

/// A freshly generated key pair, as `attune-api vapid-keys` prints it.
#[derive(Debug, Clone)]
pub struct GeneratedVapidKey {
    /// For `ATTUNE_VAPID_PRIVATE_KEY`: base64url of the 32-byte scalar.
    pub private_key: Secret,
    /// For browsers' `applicationServerKey`: base64url of the 65-byte point.
    pub public_key: String,
}

impl VapidKey {
    /// Parses `ATTUNE_VAPID_PRIVATE_KEY`: base64url (padded or not) of a 32-byte
    /// P-256 private scalar.
    pub fn from_base64url(private_key: &str) -> Result<Self, VapidError> {
        let scalar = Zeroizing::new(base64url_decode(private_key).ok_or(VapidError::Encoding)?);
        if scalar.len() != 32 {
            return Err(VapidError::Length(scalar.len()));
        }
        // ring cannot derive the public point from a raw scalar; p256 can, and
        // refuses zero and values not below the group order.
        let secret = SecretKey::from_slice(&scalar).map_err(|_| VapidError::InvalidKey)?;
        let point = secret.public_key().to_encoded_point(false);
        let public_key: [u8; P256_POINT_LEN] = point.as_bytes().try_into().map_err(|_| VapidError::InvalidKey)?;
        let signing = EcdsaKeyPair::from_private_key_and_public_key(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            &scalar,
            &public_key,
            &SystemRandom::new(),
        )
        .map_err(|_| VapidError::InvalidKey)?;
        Ok(Self(Arc::new(KeyPair { signing, public_key, public_key_base64url: base64url_encode(&public_key) })))
    }

    /// A new random key pair.
    pub fn generate() -> Result<GeneratedVapidKey, VapidError> {
        let rng = SystemRandom::new();
        let mut scalar = Zeroizing::new([0u8; 32]);
        // A random 32-byte string is a valid scalar with probability 1 − 2⁻³²;
        // the loop only guards against that.
        let secret = loop {
            rng.fill(&mut *scalar).map_err(|_| VapidError::Signing)?;
            if let Ok(secret) = SecretKey::from_slice(&*scalar) {
                break secret;
            }
        };
        let private_key = Secret::new(base64url_encode(&*scalar));
        let public_key = base64url_encode(secret.public_key().to_encoded_point(false).as_bytes());
        Ok(GeneratedVapidKey { private_key, public_key })
    }

    /// The 65-byte uncompressed public point, base64url without padding: the
    /// browser's `applicationServerKey` and the VAPID `k` parameter.
    pub fn public_key_base64url(&self) -> &str {
        &self.0.public_key_base64url
    }

    pub fn public_key(&self) -> &[u8; P256_POINT_LEN] {
        &self.0.public_key
    }

    /// ES256: a raw `r ‖ s` signature (64 bytes), as JWS wants it.
    fn sign(&self, message: &[u8]) -> Result<ring::signature::Signature, VapidError> {
        self.0.signing.sign(&SystemRandom::new(), message).map_err(|_| VapidError::Signing)
    }
}

impl fmt::Debug for VapidKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VapidKey").field("public_key", &self.public_key_base64url()).finish_non_exhaustive()
    }
}

/// Builds `Authorization: vapid t=<JWT>, k=<public key>` headers (RFC 8292 §3),
/// caching one per push-service origin. Share one per process (`Arc`).
pub struct VapidSigner {
    key: VapidKey,
    subject: String,
    cache: RwLock<HashMap<String, CachedAuthorization>>,
}

#[derive(Clone)]
struct CachedAuthorization {
    header: Arc<str>,
    expires_at: i64,
}

impl CachedAuthorization {
    /// Reusable at `now`: not about to expire, and not from a clock that has since
    /// moved back (a token more than the validity ahead would be refused).
    fn usable_at(&self, now: i64) -> bool {
        let remaining = self.expires_at - now;
        remaining > VAPID_RENEW_BEFORE_SECS && remaining <= VAPID_VALIDITY_SECS
    }
}

#[derive(Serialize)]
struct Claims<'a> {
    aud: &'a str,
    exp: i64,
    sub: &'a str,
}

impl VapidSigner {
    /// `subject` is the operator's contact (RFC 8292 §2.1): a `mailto:` or
    /// `https:` URL; push services use it when a sender misbehaves.
    pub fn new(key: VapidKey, subject: &str) -> Result<Self, VapidError> {
        let subject = subject.trim();
        let valid = if let Some(address) = subject.strip_prefix("mailto:") {
            address.contains('@') && !address.contains(char::is_whitespace)
        } else {
            subject.starts_with("https:") && Url::parse(subject).is_ok_and(|url| url.host_str().is_some())
        };
        if !valid {
            return Err(VapidError::Subject);
        }
        Ok(Self { key, subject: subject.to_owned(), cache: RwLock::new(HashMap::new()) })
    }

    pub fn key(&self) -> &VapidKey {
        &self.key
    }

    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The `Authorization` header for a request to `endpoint` at `now`.
    pub fn authorization(&self, endpoint: &Url, now: DateTime<Utc>) -> Result<Arc<str>, VapidError> {
        // The audience is the origin: scheme://host[:port], default port omitted.
        let origin = endpoint.origin();
        if !origin.is_tuple() {
            return Err(VapidError::Origin);
        }
        let audience = origin.ascii_serialization();
        let now = now.timestamp();
        if let Some(cached) = self
            .cache
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&audience)
            .filter(|cached| cached.usable_at(now))
        {
            return Ok(cached.header.clone());
        }
        // Signing happens outside the lock. Concurrent misses may each sign; the
        // first to store wins, so every sender converges on one token.
        let expires_at = now + VAPID_VALIDITY_SECS;
        let header: Arc<str> = self.sign_header(&audience, expires_at)?.into();
        let mut cache = self.cache.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(stored) = cache.get(&audience).filter(|c| c.usable_at(now)) {
            return Ok(stored.header.clone());
        }
        if cache.len() >= MAX_CACHED_ORIGINS && !cache.contains_key(&audience) {
            cache.retain(|_, cached| cached.usable_at(now));
            if cache.len() >= MAX_CACHED_ORIGINS {
                cache.clear();
            }
        }
        cache.insert(audience, CachedAuthorization { header: header.clone(), expires_at });
        Ok(header)
    }

    fn sign_header(&self, audience: &str, expires_at: i64) -> Result<String, VapidError> {
        let claims = serde_json::to_vec(&Claims { aud: audience, exp: expires_at, sub: &self.subject })
            .map_err(|_| VapidError::Signing)?;
        let public_key = self.key.public_key_base64url();
        let mut header = String::with_capacity(512);
        header.push_str("vapid t=");
        let jwt_start = header.len();
        header.push_str(&base64url_encode(JWT_HEADER.as_bytes()));
        header.push('.');
        header.push_str(&base64url_encode(&claims));
        let signature = self.key.sign(&header.as_bytes()[jwt_start..])?;
        header.push('.');
        header.push_str(&base64url_encode(signature.as_ref()));
        header.push_str(", k=");
        header.push_str(public_key);
        Ok(header)
    }

    #[cfg(test)]
    fn cached_origins(&self) -> usize {
        self.cache.read().unwrap_or_else(PoisonError::into_inner).len()
    }
}

impl fmt::Debug for VapidSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VapidSigner").field("key", &self.key).field("subject", &self.subject).finish_non_exhaustive()
    }
}

#[cfg(test)]
#[path = "vapid_tests.rs"]
mod tests;
