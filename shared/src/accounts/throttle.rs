//! Sign-in throttling, per account and per client address, kept in the database
//! so every API replica sees the same counts.
//!
//! Each password attempt is counted *before* the password is checked, by one
//! atomic upsert that returns the new count; the attempt goes ahead only if that
//! count is within the limit. So of 40 concurrent guesses exactly the limit's worth
//! reach the password check, on SQLite and PostgreSQL alike; a read-then-write
//! would let every one of them through and could lose counts. A successful sign-in
//! hands its attempt back (`release`), so only failures use up the allowance.
//!
//! Windows are fixed: the count starts at the first attempt and the allowance
//! returns `window_ms` later.

use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, ExprTrait, QueryFilter,
    sea_query::{CaseStatement, Expr, OnConflict},
};
use sha2::{Digest, Sha256};

use crate::entities::login_throttle::{self, Column, Entity as LoginThrottle};

#[derive(Debug, Clone, Copy)]
pub struct ThrottlePolicy {
    pub max_failures: i32,
    pub window_ms: i64,
}

/// Five wrong passwords for one account in 15 minutes lock it until the 15
/// minutes are over.
pub const PER_ACCOUNT: ThrottlePolicy = ThrottlePolicy { max_failures: 5, window_ms: 15 * 60_000 };
/// One address may fail 20 times in 15 minutes, across accounts.
pub const PER_ADDRESS: ThrottlePolicy = ThrottlePolicy { max_failures: 20, window_ms: 15 * 60_000 };

/// The key for an account: a hash, so no email is stored in the throttle table.
pub fn account_key(email: &str) -> String {
    format!("acct:{}", &hex::encode(Sha256::digest(email.as_bytes()))[..40])
}

pub fn address_key(address: &str) -> String {
    format!("addr:{}", &hex::encode(Sha256::digest(address.as_bytes()))[..40])
}

/// The key counting password-reset requests for one address: apart from the
/// sign-in keys, so asking for resets never locks anyone out of signing in.
pub fn reset_email_key(email: &str) -> String {
    format!("reset-acct:{}", &hex::encode(Sha256::digest(email.as_bytes()))[..40])
}

pub fn reset_address_key(address: &str) -> String {
    format!("reset-addr:{}", &hex::encode(Sha256::digest(address.as_bytes()))[..40])
}

/// What counting one attempt decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// Within the allowance: check the password.
    Allowed,
    /// Over it: refuse without checking, for this long.
    Refused { retry_after_ms: i64 },
}

/// Counts one attempt for `key` in a single statement and says whether it may go
/// ahead. Refused attempts count too, so hammering a locked key keeps it locked
/// no longer, but shows in the count.
pub async fn attempt(
    db: &impl ConnectionTrait,
    key: &str,
    policy: ThrottlePolicy,
    now_ms: i64,
) -> Result<Attempt, DbErr> {
    let failures = Expr::col((LoginThrottle, Column::Failures));
    let window_started_at = Expr::col((LoginThrottle, Column::WindowStartedAt));
    // The stored row's window is over: this attempt starts a new one.
    let expired = window_started_at.clone().lte(now_ms - policy.window_ms);
    let row = login_throttle::ActiveModel {
        key: Set(key.to_owned()),
        failures: Set(1),
        window_started_at: Set(now_ms),
        locked_until: Set(None),
    };
    let on_conflict = OnConflict::column(Column::Key)
        .value(Column::Failures, CaseStatement::new().case(expired.clone(), 1).finally(failures.clone().add(1)))
        .value(
            Column::WindowStartedAt,
            CaseStatement::new().case(expired.clone(), now_ms).finally(window_started_at.clone()),
        )
        // Kept for operators reading the table: when a locked key may try again.
        .value(
            Column::LockedUntil,
            CaseStatement::new()
                .case(expired, Expr::val(None::<i64>))
                .case(failures.add(1).gt(policy.max_failures), window_started_at.add(policy.window_ms))
                .finally(Expr::val(None::<i64>)),
        )
        .to_owned();
    let counted = LoginThrottle::insert(row).on_conflict(on_conflict).exec_with_returning(db).await?;
    if counted.failures <= policy.max_failures {
        return Ok(Attempt::Allowed);
    }
    let retry_after_ms = Ord::max(counted.window_started_at + policy.window_ms - now_ms, 1);
    Ok(Attempt::Refused { retry_after_ms })
}

/// Hands back an attempt that turned out to be a success, so it does not count
/// against the allowance (one statement; never below zero).
pub async fn release(db: &impl ConnectionTrait, key: &str) -> Result<(), DbErr> {
    LoginThrottle::update_many()
        .col_expr(Column::Failures, Expr::col(Column::Failures).sub(1))
        .filter(Column::Key.eq(key))
        .filter(Column::Failures.gt(0))
        .exec(db)
        .await
        .map(|_| ())
}

/// Forgets the attempts of `key` (after a successful sign-in for that account).
pub async fn clear(db: &impl ConnectionTrait, key: &str) -> Result<(), DbErr> {
    LoginThrottle::delete_by_id(key.to_owned()).exec(db).await.map(|_| ())
}
