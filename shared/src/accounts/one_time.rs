//! One-time tokens for mail: 256 random bits, URL-safe, stored only as a SHA-256
//! hash together with the hash of the address they were mailed to. Claiming one
//! is a single conditional update, so of two uses at once exactly one wins.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::Duration;
use rand::RngCore;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, sea_query::Expr,
};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::entities::one_time_token::{self, Column, Entity as OneTimeToken};

/// A password-reset token works for an hour.
pub const RESET_TTL: Duration = Duration::hours(1);
/// An email-verification token works for two days.
pub const VERIFY_TTL: Duration = Duration::days(2);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    PasswordReset,
    VerifyEmail,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PasswordReset => "password_reset",
            Self::VerifyEmail => "verify_email",
        }
    }

    pub fn ttl(self) -> Duration {
        match self {
            Self::PasswordReset => RESET_TTL,
            Self::VerifyEmail => VERIFY_TTL,
        }
    }
}

/// Why a presented token does nothing. Telling them apart reveals nothing: a
/// token cannot be guessed, so only its holder learns which it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Never issued, or issued for another purpose.
    Unknown,
    Used,
    Expired,
    /// Mailed to an address the account no longer uses.
    Superseded,
}

impl Refusal {
    pub fn message(self) -> &'static str {
        match self {
            Self::Unknown => "is not a valid code",
            Self::Used => "was already used",
            Self::Expired => "has expired; ask for a new one",
            Self::Superseded => "was sent to an address this account no longer uses",
        }
    }
}

/// A fresh token: 32 random bytes, base64url (43 characters).
pub fn generate() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.trim().as_bytes()))
}

/// What a token row keeps of the address it was mailed to.
pub fn email_hash(email: &str) -> String {
    hex::encode(Sha256::digest(email.trim().to_lowercase().as_bytes()))
}

/// Mints a token for `user_id`, mailed to `email`, and stores its hash.
pub async fn issue(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    email: &str,
    purpose: Purpose,
    now_ms: i64,
) -> Result<String, DbErr> {
    let token = generate();
    one_time_token::ActiveModel {
        id: Set(Uuid::now_v7()),
        user_id: Set(user_id),
        purpose: Set(purpose.as_str().to_owned()),
        token_hash: Set(hash(&token)),
        email_hash: Set(email_hash(email)),
        created_at: Set(now_ms),
        expires_at: Set(now_ms + purpose.ttl().num_milliseconds()),
        used_at: Set(None),
    }
    .insert(db)
    .await?;
    Ok(token)
}

/// Uses `token` up, if it is a live token of `purpose`: one conditional update,
/// then the row it claimed. Run it in the transaction of what the token allows.
pub async fn claim(
    db: &impl ConnectionTrait,
    token: &str,
    purpose: Purpose,
    now_ms: i64,
) -> Result<Result<one_time_token::Model, Refusal>, DbErr> {
    let token_hash = hash(token);
    let claimed = OneTimeToken::update_many()
        .col_expr(Column::UsedAt, Expr::value(now_ms))
        .filter(Column::TokenHash.eq(token_hash.as_str()))
        .filter(Column::Purpose.eq(purpose.as_str()))
        .filter(Column::UsedAt.is_null())
        .filter(Column::ExpiresAt.gt(now_ms))
        .exec(db)
        .await?;
    let row = find(db, token, purpose).await?;
    Ok(match row {
        Some(row) if claimed.rows_affected == 1 => Ok(row),
        // Unknown, expired, or used, perhaps by a concurrent request a moment ago.
        other => Err(judge(other.as_ref(), now_ms).err().unwrap_or(Refusal::Used)),
    })
}

/// The stored row of `token`, if it was issued for `purpose`.
pub async fn find(
    db: &impl ConnectionTrait,
    token: &str,
    purpose: Purpose,
) -> Result<Option<one_time_token::Model>, DbErr> {
    OneTimeToken::find()
        .filter(Column::TokenHash.eq(hash(token)))
        .filter(Column::Purpose.eq(purpose.as_str()))
        .one(db)
        .await
}

/// Whether a token's row lets it work at `now`.
pub fn judge(row: Option<&one_time_token::Model>, now_ms: i64) -> Result<(), Refusal> {
    match row {
        None => Err(Refusal::Unknown),
        Some(row) if row.used_at.is_some() => Err(Refusal::Used),
        Some(row) if row.expires_at <= now_ms => Err(Refusal::Expired),
        Some(_) => Ok(()),
    }
}

/// Uses up every live token of `purpose` the person holds (after a reset, the
/// other reset mails in their inbox do nothing).
pub async fn retire_all(db: &impl ConnectionTrait, user_id: Uuid, purpose: Purpose, now_ms: i64) -> Result<(), DbErr> {
    OneTimeToken::update_many()
        .col_expr(Column::UsedAt, Expr::value(now_ms))
        .filter(Column::UserId.eq(user_id))
        .filter(Column::Purpose.eq(purpose.as_str()))
        .filter(Column::UsedAt.is_null())
        .exec(db)
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_256_random_url_safe_bits_stored_as_hashes() {
        let (a, b) = (generate(), generate());
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'), "{a}");
        assert_eq!(URL_SAFE_NO_PAD.decode(&a).unwrap().len(), 32);
        assert_eq!(hash(&a).len(), 64);
        assert_ne!(hash(&a), a);
        assert_eq!(hash(&format!(" {a}\n")), hash(&a), "a pasted code with spaces still matches");
        assert_eq!(email_hash("Sam@Example.org "), email_hash("sam@example.org"));
    }
}
