//! Access tokens (short-lived JWTs, HS256) and refresh tokens (opaque, random,
//! stored only as SHA-256 hashes).

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::Duration;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::secrets::Secret;

pub const ACCESS_TOKEN_TTL: Duration = Duration::minutes(15);
/// A session that is not refreshed for this long ends.
pub const SESSION_IDLE_TTL: Duration = Duration::days(30);
/// How long a re-authentication token from `POST /v1/auth/reauth` stands in for
/// the password.
pub const REAUTH_TOKEN_TTL: Duration = Duration::minutes(5);
const ISSUER: &str = "attune";
/// Re-authentication tokens are JWTs under the same key with their own issuer, so
/// one can never pass for an access token, nor an access token for one.
const REAUTH_ISSUER: &str = "attune-reauth";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccessClaims {
    /// The user.
    pub sub: Uuid,
    /// The session (refresh-token family) the token belongs to.
    pub sid: Uuid,
    pub iat: i64,
    pub exp: i64,
    pub iss: String,
}

#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    /// What an access token must satisfy, built once: every authenticated
    /// request checks one, and building a `Validation` allocates.
    access: std::sync::Arc<Validation>,
    reauth: std::sync::Arc<Validation>,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKeys([redacted])")
    }
}

impl TokenKeys {
    pub fn new(secret: &Secret) -> Self {
        Self {
            encoding: EncodingKey::from_secret(secret.expose().as_bytes()),
            decoding: DecodingKey::from_secret(secret.expose().as_bytes()),
            access: std::sync::Arc::new(validation(ISSUER)),
            reauth: std::sync::Arc::new(validation(REAUTH_ISSUER)),
        }
    }

    pub fn issue(&self, user_id: Uuid, session_id: Uuid, now_secs: i64) -> Result<String, jsonwebtoken::errors::Error> {
        self.sign(user_id, session_id, now_secs, ACCESS_TOKEN_TTL, ISSUER)
    }

    /// Checks signature, issuer and expiry against `now_secs` (the injected clock,
    /// not the library's).
    pub fn verify(&self, token: &str, now_secs: i64) -> Option<AccessClaims> {
        self.check(token, now_secs, &self.access)
    }

    /// A re-authentication token: proof that the person behind `session_id` gave
    /// their password within [`REAUTH_TOKEN_TTL`].
    pub fn issue_reauth(
        &self,
        user_id: Uuid,
        session_id: Uuid,
        now_secs: i64,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        self.sign(user_id, session_id, now_secs, REAUTH_TOKEN_TTL, REAUTH_ISSUER)
    }

    pub fn verify_reauth(&self, token: &str, now_secs: i64) -> Option<AccessClaims> {
        self.check(token, now_secs, &self.reauth)
    }

    fn sign(
        &self,
        user_id: Uuid,
        session_id: Uuid,
        now_secs: i64,
        ttl: Duration,
        issuer: &str,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let claims = AccessClaims {
            sub: user_id,
            sid: session_id,
            iat: now_secs,
            exp: now_secs + ttl.num_seconds(),
            iss: issuer.to_owned(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
    }

    fn check(&self, token: &str, now_secs: i64, validation: &Validation) -> Option<AccessClaims> {
        let claims = jsonwebtoken::decode::<AccessClaims>(token, &self.decoding, validation).ok()?.claims;
        (claims.exp > now_secs).then_some(claims)
    }
}

/// HS256, this issuer, `exp`, `sub` and `iss` required; expiry is checked
/// against the injected clock in [`TokenKeys::check`], not the library's.
fn validation(issuer: &str) -> Validation {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.validate_exp = false;
    validation.required_spec_claims = ["exp", "sub", "iss"].iter().map(|s| (*s).to_owned()).collect();
    validation.set_issuer(&[issuer]);
    validation
}

/// A new opaque refresh token: 256 random bits.
pub fn new_refresh_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("rt_{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// What the database keeps of a refresh token.
pub fn hash_refresh_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> TokenKeys {
        TokenKeys::new(&Secret::new("0123456789abcdef0123456789abcdef"))
    }

    #[test]
    fn access_tokens_expire_after_fifteen_minutes() {
        let (user, session) = (Uuid::now_v7(), Uuid::now_v7());
        let token = keys().issue(user, session, 1_000).unwrap();
        let claims = keys().verify(&token, 1_000 + 899).unwrap();
        assert_eq!((claims.sub, claims.sid), (user, session));
        assert!(keys().verify(&token, 1_000 + 900).is_none());
    }

    #[test]
    fn tokens_from_another_key_or_tampered_are_refused() {
        let token = keys().issue(Uuid::now_v7(), Uuid::now_v7(), 1_000).unwrap();
        let other = TokenKeys::new(&Secret::new("another-secret-another-secret-xx"));
        assert!(other.verify(&token, 1_000).is_none());
        let mut tampered = token.clone();
        tampered.push('x');
        assert!(keys().verify(&tampered, 1_000).is_none());
        assert!(keys().verify("not.a.jwt", 1_000).is_none());
    }

    #[test]
    fn reauth_and_access_tokens_never_pass_for_each_other() {
        let (user, session) = (Uuid::now_v7(), Uuid::now_v7());
        let reauth = keys().issue_reauth(user, session, 1_000).unwrap();
        let access = keys().issue(user, session, 1_000).unwrap();
        assert!(keys().verify(&reauth, 1_000).is_none());
        assert!(keys().verify_reauth(&access, 1_000).is_none());
        assert_eq!(keys().verify_reauth(&reauth, 1_000 + 299).map(|c| c.sid), Some(session));
        assert!(keys().verify_reauth(&reauth, 1_000 + 300).is_none());
    }

    #[test]
    fn refresh_tokens_are_random_and_hashed() {
        let (a, b) = (new_refresh_token(), new_refresh_token());
        assert_ne!(a, b);
        assert_eq!(hash_refresh_token(&a).len(), 64);
        assert_ne!(hash_refresh_token(&a), hash_refresh_token(&b));
    }
}
