//! Accounts: registration, sign-in, token rotation, profile, deletion and purge.

mod authentication;
pub mod mail;
pub mod one_time;
pub mod password;
pub mod reauth;
pub mod sessions;
pub mod throttle;
pub mod tokens;

use std::sync::Arc;

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    QueryFilter, QueryOrder, SqlErr, sea_query::Expr,
};
use uuid::Uuid;

use crate::{
    Clock,
    domain::{Country, DisplayName, Email, Password, Timezone, ValidationErrors, device_label},
    entities::{
        refresh_token::{self, Entity as RefreshToken},
        session::{self, Entity as Session},
        user::{self, Entity as User},
    },
    jobs::{Job, JobQueue},
    person_cache::PersonChanges,
    secrets::Secrets,
};
pub use authentication::{CachedSession, SessionCache};
pub use reauth::{ReauthProof, ReauthToken};
pub use sessions::SessionSummary;
use tokens::{ACCESS_TOKEN_TTL, SESSION_IDLE_TTL, TokenKeys};

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("{0}")]
    Validation(ValidationErrors),
    #[error("an account with this email already exists")]
    EmailTaken,
    #[error("the email or password is not right")]
    InvalidCredentials,
    #[error("too many failed sign-ins; try again later")]
    Throttled { retry_after_secs: u64 },
    #[error("the refresh token is not valid")]
    InvalidRefreshToken,
    #[error("missing, expired or revoked access token")]
    Unauthenticated,
    /// The action needs the current password (or a fresh re-authentication token),
    /// and none, a wrong one or an expired token was given.
    #[error("re-authentication required")]
    ReauthenticationRequired,
    /// No live session of this person has that id (someone else's answers alike).
    #[error("no such session")]
    SessionNotFound,
    #[error("database error: {0}")]
    Database(#[from] DbErr),
    #[error("password hashing failed")]
    Hashing(#[from] password::HashingError),
    #[error("a token could not be signed")]
    Signing(#[from] jsonwebtoken::errors::Error),
}

impl From<ValidationErrors> for AccountError {
    fn from(errors: ValidationErrors) -> Self {
        Self::Validation(errors)
    }
}

/// Tokens handed to a client after sign-in or refresh.
#[derive(Debug, Clone)]
pub struct IssuedTokens {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in_secs: i64,
}

/// Who a valid access token speaks for.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub user: user::Model,
    pub session_id: Uuid,
}

#[derive(Debug, Clone, Default)]
pub struct RegisterInput {
    pub email: String,
    pub password: String,
    pub display_name: String,
    pub timezone: String,
    pub device: DeviceInfo,
}

/// What a sign-in says about the device, for the session's label.
#[derive(Debug, Clone, Default)]
pub struct DeviceInfo {
    /// The `device_name` the app sent, if any.
    pub name: Option<String>,
    pub user_agent: Option<String>,
}

impl DeviceInfo {
    /// The label to store: the app's name for the device, else one derived from
    /// the `User-Agent`. An unusable `device_name` is a validation error.
    fn label(&self, errors: &mut ValidationErrors) -> Option<String> {
        match &self.name {
            Some(name) => errors.check("device_name", device_label::parse_device_name(name)),
            None => self.user_agent.as_deref().and_then(device_label::from_user_agent),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct ProfilePatch {
    pub display_name: Option<String>,
    pub timezone: Option<String>,
    /// `Some(None)` clears the country.
    pub country: Option<Option<String>>,
    /// A new email: needs re-authentication.
    pub email: Option<String>,
}

/// A profile change that passed [`Accounts::check_profile_change`], ready to store.
#[derive(Debug)]
pub struct ProfileChange {
    model: user::ActiveModel,
}

impl ProfileChange {
    /// Whether it gives the account a new email.
    pub fn changes_email(&self) -> bool {
        self.model.email.is_set()
    }
}

/// Everything the account has, for `GET /v1/me/export`.
#[derive(Debug, Clone)]
pub struct AccountExport {
    pub user: user::Model,
    pub sessions: Vec<session::Model>,
}

#[derive(Clone)]
pub struct Accounts {
    db: DatabaseConnection,
    clock: Arc<dyn Clock>,
    keys: TokenKeys,
    queue: JobQueue,
    /// Live sessions read within the last second (`authentication`).
    sessions: Arc<SessionCache>,
    /// Told of every change to a person's sessions or profile, once committed.
    changes: PersonChanges,
}

impl std::fmt::Debug for Accounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Accounts").finish_non_exhaustive()
    }
}

impl Accounts {
    pub fn new(
        db: DatabaseConnection,
        clock: Arc<dyn Clock>,
        secrets: &Secrets,
        queue: JobQueue,
        sessions: Arc<SessionCache>,
        changes: PersonChanges,
    ) -> Self {
        Self { db, clock, keys: TokenKeys::new(&secrets.jwt_secret), queue, sessions, changes }
    }

    #[tracing::instrument(skip_all)]
    pub async fn register(&self, input: RegisterInput) -> Result<(user::Model, IssuedTokens), AccountError> {
        let mut errors = ValidationErrors::new();
        let email = errors.check("email", Email::parse(&input.email));
        let password = errors.check("password", Password::parse(&input.password));
        let name = errors.check("display_name", DisplayName::parse(&input.display_name));
        let tz = errors.check("timezone", Timezone::parse(&input.timezone));
        let device = input.device.label(&mut errors);
        let (Some(email), Some(password), Some(name), Some(tz)) = (email, password, name, tz) else {
            return Err(errors.into());
        };
        errors.into_result()?;
        let password_hash = password::hash(&password).await?;
        let now = self.clock.now_ms();
        let txn = crate::db::begin(&self.db).await?;
        let user = user::ActiveModel {
            id: Set(Uuid::now_v7()),
            email: Set(email.as_str().to_owned()),
            password_hash: Set(password_hash),
            display_name: Set(name.as_str().to_owned()),
            timezone: Set(tz.name().to_owned()),
            created_at: Set(now),
            updated_at: Set(now),
            deleted_at: Set(None),
            country: Set(None),
            email_verified_at: Set(None),
        }
        .insert(&txn)
        .await
        .map_err(|e| match e.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(_)) => AccountError::EmailTaken,
            _ => AccountError::Database(e),
        })?;
        let tokens = self.start_session(&txn, user.id, device, now).await?;
        txn.commit().await?;
        tracing::info!(user_id = %user.id, "account registered");
        Ok((user, tokens))
    }

    /// Signs in. An unknown email and a wrong password answer alike and cost alike.
    #[tracing::instrument(skip_all)]
    pub async fn login(
        &self,
        email: &str,
        password: &str,
        client_address: &str,
        device: &DeviceInfo,
    ) -> Result<(user::Model, IssuedTokens), AccountError> {
        let mut errors = ValidationErrors::new();
        let device = device.label(&mut errors);
        errors.into_result()?;
        let now = self.clock.now_ms();
        let normalised = email.trim().to_lowercase();
        let account_key = throttle::account_key(&normalised);
        let address_key = throttle::address_key(client_address);
        self.count_attempt(&account_key, &address_key, now).await?;
        let user = User::find()
            .filter(user::Column::Email.eq(normalised.as_str()))
            .filter(user::Column::DeletedAt.is_null())
            .one(&self.db)
            .await?;
        let ok = password::verify(password, user.as_ref().map(|u| u.password_hash.as_str())).await?;
        let Some(user) = user.filter(|_| ok) else {
            // The attempt was counted before the check: nothing more to record.
            tracing::info!("sign-in refused");
            return Err(AccountError::InvalidCredentials);
        };
        throttle::clear(&self.db, &account_key).await?;
        throttle::release(&self.db, &address_key).await?;
        let txn = crate::db::begin(&self.db).await?;
        let tokens = self.start_session(&txn, user.id, device, now).await?;
        txn.commit().await?;
        tracing::info!(user_id = %user.id, "signed in");
        Ok((user, tokens))
    }

    /// Rotates a refresh token. Presenting one that was already used means it was
    /// copied: the whole session (token family) is revoked.
    #[tracing::instrument(skip_all)]
    pub async fn refresh(&self, presented: &str) -> Result<(user::Model, IssuedTokens), AccountError> {
        let now = self.clock.now_ms();
        let hash = tokens::hash_refresh_token(presented);
        let txn = crate::db::begin(&self.db).await?;
        let Some((token, Some(session))) = RefreshToken::find()
            .filter(refresh_token::Column::TokenHash.eq(hash))
            .find_also_related(Session)
            .one(&txn)
            .await?
        else {
            return Err(AccountError::InvalidRefreshToken);
        };
        if session.revoked_at.is_some() || session.expires_at <= now {
            return Err(AccountError::InvalidRefreshToken);
        }
        // Conditional on `used_at IS NULL`, so of two concurrent uses exactly one wins.
        let claimed = RefreshToken::update_many()
            .col_expr(refresh_token::Column::UsedAt, Expr::value(now))
            .filter(refresh_token::Column::Id.eq(token.id))
            .filter(refresh_token::Column::UsedAt.is_null())
            .exec(&txn)
            .await?;
        if token.used_at.is_some() || claimed.rows_affected == 0 {
            revoke_sessions(&txn, session::Column::Id.eq(session.id), now).await?;
            txn.commit().await?;
            self.changes.changed(session.user_id).await;
            tracing::warn!(user_id = %session.user_id, session_id = %session.id, "refresh token reused; session revoked");
            return Err(AccountError::InvalidRefreshToken);
        }
        let Some(user) = User::find_by_id(session.user_id).one(&txn).await?.filter(|u| u.deleted_at.is_none()) else {
            return Err(AccountError::InvalidRefreshToken);
        };
        Session::update_many()
            .col_expr(session::Column::LastUsedAt, Expr::value(now))
            .col_expr(session::Column::ExpiresAt, Expr::value(now + SESSION_IDLE_TTL.num_milliseconds()))
            .filter(session::Column::Id.eq(session.id))
            .exec(&txn)
            .await?;
        let tokens = self.issue_tokens(&txn, user.id, session.id, now).await?;
        txn.commit().await?;
        Ok((user, tokens))
    }

    #[tracing::instrument(skip_all, fields(user_id = %who.user.id))]
    pub async fn logout(&self, who: &Authenticated) -> Result<(), AccountError> {
        revoke_sessions(&self.db, session::Column::Id.eq(who.session_id), self.clock.now_ms()).await?;
        self.changes.changed(who.user.id).await;
        Ok(())
    }

    /// Checks a profile change: every field valid, and the password (or a
    /// re-authentication token) when it changes the email — whoever holds an
    /// unlocked phone must not be able to take the account over through it. On
    /// the service's own connection, before the use case's transaction opens, so
    /// a wrong password is counted even though nothing changes.
    #[tracing::instrument(skip_all, fields(user_id = %who.user.id))]
    pub async fn check_profile_change(
        &self,
        who: &Authenticated,
        patch: ProfilePatch,
        proof: ReauthProof,
        client_address: &str,
    ) -> Result<ProfileChange, AccountError> {
        let mut errors = ValidationErrors::new();
        let name = patch.display_name.map(|n| errors.check("display_name", DisplayName::parse(&n)));
        let tz = patch.timezone.map(|t| errors.check("timezone", Timezone::parse(&t)));
        let country = patch.country.map(|c| c.map(|c| errors.check("country", Country::parse(&c))));
        let email = patch.email.and_then(|e| errors.check("email", Email::parse(&e)));
        errors.into_result()?;
        let new_email = email.filter(|e| e.as_str() != who.user.email);
        if new_email.is_some() {
            self.reauthenticate(who, proof, client_address).await?;
        }
        let mut model: user::ActiveModel = who.user.clone().into();
        if let Some(email) = new_email {
            model.email = Set(email.as_str().to_owned());
            // Unverified until the code mailed to the new address comes back.
            model.email_verified_at = Set(None);
        }
        if let Some(Some(name)) = name {
            model.display_name = Set(name.as_str().to_owned());
        }
        if let Some(Some(tz)) = tz {
            model.timezone = Set(tz.name().to_owned());
        }
        match country {
            Some(Some(Some(country))) => model.country = Set(Some(country.as_str().to_owned())),
            Some(None) => model.country = Set(None),
            _ => {}
        }
        Ok(ProfileChange { model })
    }

    /// Stores a checked profile change on `conn`: a step of the use case
    /// `Services::update_profile`, which announces the change once committed.
    pub async fn save_profile(
        &self,
        conn: &impl ConnectionTrait,
        change: ProfileChange,
    ) -> Result<user::Model, AccountError> {
        let mut model = change.model;
        model.updated_at = Set(self.clock.now_ms());
        model.update(conn).await.map_err(|e| match e.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(_)) => AccountError::EmailTaken,
            _ => AccountError::Database(e),
        })
    }

    /// What `GET /v1/me/export` returns: it holds every private note decrypted, so
    /// it takes a fresh re-authentication. The profile is read afresh, not taken
    /// from the session cache.
    pub async fn export(
        &self,
        who: &Authenticated,
        proof: ReauthProof,
        client_address: &str,
    ) -> Result<AccountExport, AccountError> {
        self.reauthenticate(who, proof, client_address).await?;
        let user = User::find_by_id(who.user.id)
            .filter(user::Column::DeletedAt.is_null())
            .one(&self.db)
            .await?
            .ok_or(AccountError::Unauthenticated)?;
        let sessions = Session::find()
            .filter(session::Column::UserId.eq(who.user.id))
            .order_by_asc(session::Column::CreatedAt)
            .all(&self.db)
            .await?;
        Ok(AccountExport { user, sessions })
    }

    /// Deletes the account on `conn`: from this moment it cannot sign in and
    /// every token it holds is dead. Its email is released at once, so the person
    /// may start afresh. A step of the use case `Services::delete_account`, which
    /// re-authenticates first and, once committed, announces the change and
    /// enqueues the purge of every row.
    #[tracing::instrument(skip_all, fields(user_id = %who.user.id))]
    pub async fn mark_deleted(&self, conn: &impl ConnectionTrait, who: &Authenticated) -> Result<(), AccountError> {
        let now = self.clock.now_ms();
        let user_id = who.user.id;
        User::update_many()
            .col_expr(user::Column::DeletedAt, Expr::value(now))
            .col_expr(user::Column::UpdatedAt, Expr::value(now))
            .col_expr(user::Column::Email, Expr::value(format!("deleted-{user_id}@deleted.invalid")))
            .col_expr(user::Column::PasswordHash, Expr::value(String::new()))
            .filter(user::Column::Id.eq(user_id))
            .exec(conn)
            .await?;
        revoke_sessions(conn, session::Column::UserId.eq(user_id), now).await?;
        throttle::clear(conn, &throttle::account_key(&who.user.email)).await?;
        Ok(())
    }

    /// Queues the purge of a deleted account's rows. Should enqueueing fail, the
    /// worker's sweep of deleted accounts purges it.
    pub async fn enqueue_purge(&self, user_id: Uuid) {
        if let Err(error) = self.queue.enqueue(Job::PurgeAccount { user_id }).await {
            let error = anyhow::Error::from(error);
            tracing::error!(error = %format!("{error:#}"), "could not enqueue the purge; the sweep will purge the account");
        }
    }

    async fn start_session(
        &self,
        db: &impl ConnectionTrait,
        user_id: Uuid,
        device: Option<String>,
        now: i64,
    ) -> Result<IssuedTokens, AccountError> {
        let session = session::ActiveModel {
            id: Set(Uuid::now_v7()),
            user_id: Set(user_id),
            created_at: Set(now),
            last_used_at: Set(now),
            expires_at: Set(now + SESSION_IDLE_TTL.num_milliseconds()),
            revoked_at: Set(None),
            device: Set(device),
        }
        .insert(db)
        .await?;
        self.issue_tokens(db, user_id, session.id, now).await
    }

    async fn issue_tokens(
        &self,
        db: &impl ConnectionTrait,
        user_id: Uuid,
        session_id: Uuid,
        now: i64,
    ) -> Result<IssuedTokens, AccountError> {
        let refresh_token = tokens::new_refresh_token();
        refresh_token::ActiveModel {
            id: Set(Uuid::now_v7()),
            session_id: Set(session_id),
            user_id: Set(user_id),
            token_hash: Set(tokens::hash_refresh_token(&refresh_token)),
            created_at: Set(now),
            used_at: Set(None),
        }
        .insert(db)
        .await?;
        let access_token = self.keys.issue(user_id, session_id, now.div_euclid(1000))?;
        Ok(IssuedTokens { access_token, refresh_token, expires_in_secs: ACCESS_TOKEN_TTL.num_seconds() })
    }
}

/// Ends the matching sessions that are still live; how many it ended.
async fn revoke_sessions(
    db: &impl ConnectionTrait,
    which: sea_orm::sea_query::SimpleExpr,
    now: i64,
) -> Result<u64, DbErr> {
    Session::update_many()
        .col_expr(session::Column::RevokedAt, Expr::value(now))
        .filter(which)
        .filter(session::Column::RevokedAt.is_null())
        .exec(db)
        .await
        .map(|r| r.rows_affected)
}

/// Removes every row a deleted account had (child rows go by `ON DELETE CASCADE`).
/// Does nothing for an account that is not deleted, or already purged.
#[tracing::instrument(skip_all, fields(%user_id))]
pub async fn purge_account(db: &DatabaseConnection, user_id: Uuid) -> Result<bool, DbErr> {
    let result = User::delete_many()
        .filter(user::Column::Id.eq(user_id))
        .filter(user::Column::DeletedAt.is_not_null())
        .exec(db)
        .await?;
    Ok(result.rows_affected > 0)
}

/// Accounts deleted longer ago than `older_than_ms` and still present: the sweep
/// purges them in case their purge job was lost.
pub async fn deleted_accounts_pending_purge(
    db: &DatabaseConnection,
    deleted_before_ms: i64,
) -> Result<Vec<Uuid>, DbErr> {
    Ok(User::find()
        .filter(user::Column::DeletedAt.lt(deleted_before_ms))
        .all(db)
        .await?
        .into_iter()
        .map(|u| u.id)
        .collect())
}
