//! Guessing invitation codes is throttled: more than 10 unknown codes from one
//! account, or from one client address, in an hour are refused until the hour
//! (counted from the first) is over. It reuses the sign-in throttle's atomic
//! count (`accounts::throttle`), under keys of its own: each look-up is counted
//! *before* the code is checked, and a code that turns out to exist hands its
//! count back, so only unknown codes use up the allowance and 40 concurrent
//! guesses still get exactly 10 checks.

use sea_orm::ConnectionTrait;
use uuid::Uuid;

use super::PartnerError;
use crate::accounts::throttle::{self, Attempt, ThrottlePolicy};

/// Ten unknown codes an hour, per account and per address.
pub const POLICY: ThrottlePolicy = ThrottlePolicy { max_failures: 10, window_ms: 60 * 60_000 };

/// The throttle keys of one look-up: the account's and the address's.
pub fn keys(user_id: Uuid, client_address: &str) -> [String; 2] {
    [format!("pinv-acct:{user_id}"), format!("pinv-{}", throttle::address_key(client_address))]
}

/// Counts one look-up against both keys; refused when either is over.
pub async fn count(db: &impl ConnectionTrait, keys: &[String; 2], now_ms: i64) -> Result<(), PartnerError> {
    let mut retry_after_ms = None;
    for key in keys {
        if let Attempt::Refused { retry_after_ms: wait } = throttle::attempt(db, key, POLICY, now_ms).await? {
            retry_after_ms = Some(Ord::max(wait, retry_after_ms.unwrap_or(0)));
        }
    }
    match retry_after_ms {
        Some(ms) => Err(PartnerError::Throttled { retry_after_secs: u64::try_from(ms).unwrap_or(1).div_ceil(1000) }),
        None => Ok(()),
    }
}

/// Hands the look-up back: the code existed.
pub async fn release(db: &impl ConnectionTrait, keys: &[String; 2]) -> Result<(), PartnerError> {
    for key in keys {
        throttle::release(db, key).await?;
    }
    Ok(())
}
