//! Re-authentication: what a thief holding an unlocked phone, or a partner who
//! picked it up, would use (export, deletion, a new email, a new password) takes
//! the current password again, or a token that proves it was given moments ago.

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect};

use super::{AccountError, Accounts, Authenticated, password, throttle, tokens::REAUTH_TOKEN_TTL};
use crate::entities::user::{self, Entity as User};

/// What a request offers as proof that the person, not just their phone, is there.
#[derive(Clone, Default)]
pub enum ReauthProof {
    /// The current password, from the JSON body.
    Password(String),
    /// A token from `POST /v1/auth/reauth`, from the `X-Reauth-Token` header.
    Token(String),
    #[default]
    Missing,
}

impl std::fmt::Debug for ReauthProof {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Password(_) => "Password([redacted])",
            Self::Token(_) => "Token([redacted])",
            Self::Missing => "Missing",
        })
    }
}

impl ReauthProof {
    /// The password when the body has one, else the header's token.
    pub fn from_parts(password: Option<String>, token: Option<String>) -> Self {
        match (password, token) {
            (Some(password), _) => Self::Password(password),
            (None, Some(token)) => Self::Token(token),
            (None, None) => Self::Missing,
        }
    }
}

/// A token standing in for the password for [`REAUTH_TOKEN_TTL`], in the session
/// that asked for it only.
#[derive(Clone)]
pub struct ReauthToken {
    pub token: String,
    pub expires_in_secs: i64,
}

impl std::fmt::Debug for ReauthToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReauthToken").field("expires_in_secs", &self.expires_in_secs).finish_non_exhaustive()
    }
}

impl Accounts {
    /// Checks `proof` for the person and session behind `who`. A password attempt
    /// counts in the sign-in throttle exactly as a sign-in does, so this is no way
    /// around it.
    #[tracing::instrument(skip_all, fields(user_id = %who.user.id))]
    pub async fn reauthenticate(
        &self,
        who: &Authenticated,
        proof: ReauthProof,
        client_address: &str,
    ) -> Result<(), AccountError> {
        match proof {
            ReauthProof::Missing => Err(AccountError::ReauthenticationRequired),
            ReauthProof::Token(token) => {
                let claims = self.keys.verify_reauth(&token, self.clock.now().timestamp());
                // Bound to the session that asked: a token copied to another
                // device, or kept past a sign-out, proves nothing.
                match claims {
                    Some(c) if c.sid == who.session_id && c.sub == who.user.id => Ok(()),
                    _ => Err(AccountError::ReauthenticationRequired),
                }
            }
            ReauthProof::Password(given) => {
                let now = self.clock.now_ms();
                let account_key = throttle::account_key(&who.user.email);
                let address_key = throttle::address_key(client_address);
                self.count_attempt(&account_key, &address_key, now).await?;
                // The stored hash, not the copy read with the session (up to a
                // second old): a password just changed elsewhere counts at once.
                let stored = User::find_by_id(who.user.id)
                    .select_only()
                    .column(user::Column::PasswordHash)
                    .filter(user::Column::DeletedAt.is_null())
                    .into_tuple::<String>()
                    .one(&self.db)
                    .await?;
                let ok = password::verify(&given, stored.as_deref()).await?;
                if !ok {
                    tracing::info!("re-authentication refused");
                    return Err(AccountError::ReauthenticationRequired);
                }
                throttle::clear(&self.db, &account_key).await?;
                throttle::release(&self.db, &address_key).await?;
                Ok(())
            }
        }
    }

    /// `POST /v1/auth/reauth`: the password, once, for a token the app can send
    /// with the next few sensitive requests.
    pub async fn issue_reauth_token(
        &self,
        who: &Authenticated,
        password: String,
        client_address: &str,
    ) -> Result<ReauthToken, AccountError> {
        self.reauthenticate(who, ReauthProof::Password(password), client_address).await?;
        let token = self.keys.issue_reauth(who.user.id, who.session_id, self.clock.now().timestamp())?;
        Ok(ReauthToken { token, expires_in_secs: REAUTH_TOKEN_TTL.num_seconds() })
    }

    /// Counts one password attempt against the client's address and the account,
    /// and refuses it when either is over its allowance.
    pub(super) async fn count_attempt(
        &self,
        account_key: &str,
        address_key: &str,
        now: i64,
    ) -> Result<(), AccountError> {
        let by_address = throttle::attempt(&self.db, address_key, throttle::PER_ADDRESS, now).await?;
        let by_account = throttle::attempt(&self.db, account_key, throttle::PER_ACCOUNT, now).await?;
        let wait_ms = [by_address, by_account]
            .into_iter()
            .filter_map(|a| match a {
                throttle::Attempt::Refused { retry_after_ms } => Some(retry_after_ms),
                throttle::Attempt::Allowed => None,
            })
            .max();
        match wait_ms {
            Some(ms) => Err(AccountError::Throttled { retry_after_secs: (ms as u64).div_ceil(1000) }),
            None => Ok(()),
        }
    }
}
