//! Failed-login throttling, per account and per client address, kept in the
//! database so every API replica sees the same counts.

use sea_orm::{ActiveValue::Set, ConnectionTrait, DbErr, EntityTrait, sea_query::OnConflict};
use sha2::{Digest, Sha256};

use crate::entities::login_throttle::{self, Entity as LoginThrottle};

#[derive(Debug, Clone, Copy)]
pub struct ThrottlePolicy {
    pub max_failures: i32,
    pub window_ms: i64,
    pub lockout_ms: i64,
}

/// Five wrong passwords for one account in 15 minutes lock it for 15 minutes.
pub const PER_ACCOUNT: ThrottlePolicy =
    ThrottlePolicy { max_failures: 5, window_ms: 15 * 60_000, lockout_ms: 15 * 60_000 };
/// One address may fail 20 times in 15 minutes, across accounts.
pub const PER_ADDRESS: ThrottlePolicy =
    ThrottlePolicy { max_failures: 20, window_ms: 15 * 60_000, lockout_ms: 15 * 60_000 };

/// The key for an account: a hash, so no email is stored in the throttle table.
pub fn account_key(email: &str) -> String {
    format!("acct:{}", &hex::encode(Sha256::digest(email.as_bytes()))[..40])
}

pub fn address_key(address: &str) -> String {
    format!("addr:{}", &hex::encode(Sha256::digest(address.as_bytes()))[..40])
}

/// Milliseconds until `key` may try again, if it is locked out now.
pub async fn locked_for(db: &impl ConnectionTrait, key: &str, now_ms: i64) -> Result<Option<i64>, DbErr> {
    let row = LoginThrottle::find_by_id(key.to_owned()).one(db).await?;
    Ok(row.and_then(|r| r.locked_until).filter(|until| *until > now_ms).map(|until| until - now_ms))
}

/// Counts one failure for `key`, locking it once the policy's limit is reached.
pub async fn record_failure(
    db: &impl ConnectionTrait,
    key: &str,
    policy: ThrottlePolicy,
    now_ms: i64,
) -> Result<(), DbErr> {
    let current = LoginThrottle::find_by_id(key.to_owned()).one(db).await?;
    let (failures, window_started_at) = match current {
        Some(row) if now_ms - row.window_started_at < policy.window_ms => (row.failures + 1, row.window_started_at),
        _ => (1, now_ms),
    };
    let locked_until = (failures >= policy.max_failures).then_some(now_ms + policy.lockout_ms);
    let row = login_throttle::ActiveModel {
        key: Set(key.to_owned()),
        failures: Set(if locked_until.is_some() { 0 } else { failures }),
        window_started_at: Set(window_started_at),
        locked_until: Set(locked_until),
    };
    LoginThrottle::insert(row)
        .on_conflict(
            OnConflict::column(login_throttle::Column::Key)
                .update_columns([
                    login_throttle::Column::Failures,
                    login_throttle::Column::WindowStartedAt,
                    login_throttle::Column::LockedUntil,
                ])
                .to_owned(),
        )
        .exec(db)
        .await
        .map(|_| ())
}

/// Forgets the failures of `key` (after a successful login).
pub async fn clear(db: &impl ConnectionTrait, key: &str) -> Result<(), DbErr> {
    LoginThrottle::delete_by_id(key.to_owned()).exec(db).await.map(|_| ())
}
