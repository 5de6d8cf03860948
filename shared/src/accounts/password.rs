//! Password hashing: argon2id, run on the blocking pool so it never stalls the
//! async runtime, with a bound on how many hashes run at once (each takes 19 MiB).

use std::sync::{Arc, LazyLock};

use argon2::{
    Algorithm, Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier, Version, password_hash::SaltString,
};
use tokio::sync::Semaphore;

use crate::domain::Password;

/// OWASP's argon2id baseline (m = 19 MiB, t = 2, p = 1): about 20–30 ms a hash on
/// one core of a current server, which keeps logins quick for a person and costly
/// for a guesser.
pub const MEMORY_KIB: u32 = 19 * 1024;
pub const ITERATIONS: u32 = 2;
pub const PARALLELISM: u32 = 1;

static HASHING_SLOTS: LazyLock<Arc<Semaphore>> = LazyLock::new(|| {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    Arc::new(Semaphore::new(cores * 2))
});

/// A valid hash of a random password, verified against when the email is unknown
/// so that an unknown account takes as long as a wrong password.
static DUMMY_HASH: LazyLock<Option<String>> = LazyLock::new(|| hash_blocking("not a password of anyone's").ok());

fn argon2() -> Argon2<'static> {
    // The parameters are constants within argon2's limits.
    let params = Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None).unwrap_or_else(|_| Params::default());
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

fn hash_blocking(password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    argon2().hash_password(password.as_bytes(), &salt).map(|h| h.to_string())
}

fn verify_blocking(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| argon2().verify_password(password.as_bytes(), &parsed).is_ok())
        .unwrap_or(false)
}

#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashingError(String);

pub async fn hash(password: &Password) -> Result<String, HashingError> {
    let _slot = HASHING_SLOTS.clone().acquire_owned().await.map_err(|e| HashingError(e.to_string()))?;
    let password = password.expose().to_owned();
    tokio::task::spawn_blocking(move || hash_blocking(&password))
        .await
        .map_err(|e| HashingError(e.to_string()))?
        .map_err(|e| HashingError(e.to_string()))
}

/// Verifies `password` against `hash`, or against a dummy hash when there is no
/// account, so both cases cost the same.
pub async fn verify(password: &str, hash: Option<&str>) -> Result<bool, HashingError> {
    let _slot = HASHING_SLOTS.clone().acquire_owned().await.map_err(|e| HashingError(e.to_string()))?;
    let password = password.to_owned();
    let real = hash.map(str::to_owned);
    tokio::task::spawn_blocking(move || match real {
        Some(hash) => verify_blocking(&password, &hash),
        None => {
            if let Some(dummy) = DUMMY_HASH.as_deref() {
                verify_blocking(&password, dummy);
            }
            false
        }
    })
    .await
    .map_err(|e| HashingError(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_only_the_right_password() {
        let password = Password::parse("a long enough secret").unwrap();
        let hash = hash(&password).await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
        assert!(verify("a long enough secret", Some(&hash)).await.unwrap());
        assert!(!verify("a long enough secreT", Some(&hash)).await.unwrap());
        assert!(!verify("a long enough secret", None).await.unwrap());
        assert!(!verify("a long enough secret", Some("not a hash")).await.unwrap());
    }
}
