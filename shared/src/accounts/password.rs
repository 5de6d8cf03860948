//! Password hashing: argon2id, off the async runtime on a small fixed pool of
//! threads, one per core. Each hash takes 19 MiB; on tokio's elastic blocking pool
//! every new thread would keep its own malloc arena of those, and memory under a
//! burst of sign-ins grew past half a gigabyte. A fixed pool reuses a few arenas.

use std::sync::{Arc, LazyLock, Mutex, mpsc};

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

type HashJob = Box<dyn FnOnce() + Send>;

struct HashPool {
    jobs: Mutex<mpsc::Sender<HashJob>>,
    /// Hashes queued or running; callers beyond it wait (and give up with their
    /// request's timeout) without queueing work nobody will read.
    admitted: Arc<Semaphore>,
}

static POOL: LazyLock<HashPool> = LazyLock::new(|| {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let (tx, rx) = mpsc::channel::<HashJob>();
    let rx = Arc::new(Mutex::new(rx));
    for n in 0..threads {
        let rx = rx.clone();
        let spawned = std::thread::Builder::new().name(format!("argon2-{n}")).spawn(move || {
            loop {
                let job = match rx.lock() {
                    Ok(rx) => rx.recv(),
                    Err(poisoned) => poisoned.into_inner().recv(),
                };
                match job {
                    Ok(job) => job(),
                    Err(_) => return,
                }
            }
        });
        if let Err(error) = spawned {
            tracing::error!(%error, "cannot start a password-hashing thread");
        }
    }
    HashPool { jobs: Mutex::new(tx), admitted: Arc::new(Semaphore::new(threads * 4)) }
});

/// Runs `work` on the hashing pool.
async fn on_hash_pool<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T, HashingError> {
    let _admitted = POOL.admitted.clone().acquire_owned().await.map_err(|e| HashingError(e.to_string()))?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job: HashJob = Box::new(move || {
        let _ = tx.send(work());
    });
    POOL.jobs
        .lock()
        .map_err(|_| HashingError("hashing pool poisoned".into()))?
        .send(job)
        .map_err(|_| HashingError("hashing pool stopped".into()))?;
    rx.await.map_err(|_| HashingError("hashing thread ended".into()))
}

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
    let password = password.expose().to_owned();
    on_hash_pool(move || hash_blocking(&password)).await?.map_err(|e| HashingError(e.to_string()))
}

/// Verifies `password` against `hash`, or against a dummy hash when there is no
/// account, so both cases cost the same.
pub async fn verify(password: &str, hash: Option<&str>) -> Result<bool, HashingError> {
    let password = password.to_owned();
    let real = hash.map(str::to_owned);
    on_hash_pool(move || match real {
        Some(hash) => verify_blocking(&password, &hash),
        None => {
            if let Some(dummy) = DUMMY_HASH.as_deref() {
                verify_blocking(&password, dummy);
            }
            false
        }
    })
    .await
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
