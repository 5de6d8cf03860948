//! Account mail: password reset by email, email verification, and the notice to
//! the old address after an email change.
//!
//! **Where the tokens are made.** The API never sees one: a request queues a job
//! that names the account (or, for a reset, carries the typed address sealed with
//! the data key, since it may belong to nobody), and the worker mints the token,
//! stores its hash and sends the mail in the same run. So no token ever sits in
//! the queue (Redis or SQLite), and a reset request runs the same code for an
//! address with an account and one without: count it, seal the address, queue
//! one job, answer 202. Only the worker, out of sight of the requester, finds
//! there is no account and sends nothing.

use std::sync::Arc;

use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{
    one_time::{self, Purpose, Refusal},
    password, revoke_sessions,
    throttle::{self, ThrottlePolicy},
};
use crate::{
    Clock,
    config::Settings,
    crypto::{Binding, CryptoError, DataCipher},
    domain::{Email, Password, ValidationErrors},
    entities::{
        session,
        user::{self, Entity as User},
    },
    jobs::{Job, JobQueue, QueueError},
    mail::{MailConfigError, MailMessage, Mailer, texts},
    person_cache::PersonChanges,
    secrets::Secrets,
};

/// Three reset mails an hour for one address is plenty for a person and little
/// for someone flooding their inbox.
pub const RESET_PER_EMAIL: ThrottlePolicy = ThrottlePolicy { max_failures: 3, window_ms: 60 * 60_000 };
/// Twenty reset requests an hour from one client address, across emails.
pub const RESET_PER_ADDRESS: ThrottlePolicy = ThrottlePolicy { max_failures: 20, window_ms: 60 * 60_000 };

/// A mail the worker is to render and send. Addresses travel sealed with the
/// data key (`DataCipher`); tokens do not travel at all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mail", rename_all = "snake_case")]
pub enum MailJob {
    /// A reset code for whichever account uses the sealed address, if any.
    PasswordReset { id: Uuid, to: String },
    /// A verification code to the account's current address.
    VerifyEmail { user_id: Uuid },
    /// The notice to the address the account used before.
    EmailChanged { id: Uuid, user_id: Uuid, old_address: String },
}

#[derive(Debug, thiserror::Error)]
pub enum AccountMailError {
    #[error("{0}")]
    Validation(ValidationErrors),
    #[error("too many password-reset requests")]
    Throttled { retry_after_secs: u64 },
    #[error("this install sends no mail")]
    MailNotConfigured,
    #[error("the code {}", .0.message())]
    Token(Refusal),
    #[error("database error: {0}")]
    Database(#[from] DbErr),
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error("a queued mail's address does not open: {0}")]
    Sealed(#[from] CryptoError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<ValidationErrors> for AccountMailError {
    fn from(errors: ValidationErrors) -> Self {
        Self::Validation(errors)
    }
}

#[derive(Clone)]
pub struct AccountMail {
    db: DatabaseConnection,
    clock: Arc<dyn Clock>,
    cipher: DataCipher,
    queue: JobQueue,
    mailer: Mailer,
    /// Told when a reset or a verification changes the person.
    changes: PersonChanges,
}

impl std::fmt::Debug for AccountMail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountMail").field("mailer", &self.mailer).finish_non_exhaustive()
    }
}

impl AccountMail {
    /// The same for the API (which queues) and the worker (which renders and sends).
    pub fn new(
        db: DatabaseConnection,
        clock: Arc<dyn Clock>,
        settings: &Settings,
        secrets: &Secrets,
        queue: JobQueue,
        changes: PersonChanges,
    ) -> Result<Self, MailConfigError> {
        let mailer = Mailer::from_settings(settings)?;
        Ok(Self { db, clock, cipher: DataCipher::new(secrets.data_keys.clone()), queue, mailer, changes })
    }

    pub fn mailer(&self) -> &Mailer {
        &self.mailer
    }

    /// `POST /v1/auth/password-reset`. The same work and the same answer whether
    /// or not an account uses `email` (see the module's note).
    #[tracing::instrument(skip_all)]
    pub async fn request_password_reset(&self, email: &str, client_address: &str) -> Result<(), AccountMailError> {
        if !self.mailer.can_send() {
            return Err(AccountMailError::MailNotConfigured);
        }
        let email = Email::parse(email).map_err(|message| ValidationErrors::single("email", message))?;
        let now = self.clock.now_ms();
        let by_address =
            throttle::attempt(&self.db, &throttle::reset_address_key(client_address), RESET_PER_ADDRESS, now).await?;
        let by_email =
            throttle::attempt(&self.db, &throttle::reset_email_key(email.as_str()), RESET_PER_EMAIL, now).await?;
        let wait_ms = [by_address, by_email]
            .into_iter()
            .filter_map(|attempt| match attempt {
                throttle::Attempt::Refused { retry_after_ms } => Some(retry_after_ms),
                throttle::Attempt::Allowed => None,
            })
            .max();
        if let Some(ms) = wait_ms {
            return Err(AccountMailError::Throttled { retry_after_secs: (ms as u64).div_ceil(1000) });
        }
        let id = Uuid::now_v7();
        let to = self.seal_address(email.as_str(), Uuid::nil(), id);
        self.queue.enqueue(Job::SendMail { mail: MailJob::PasswordReset { id, to }, attempt: 0 }).await?;
        tracing::info!("password reset requested");
        Ok(())
    }

    /// `POST /v1/auth/password-reset/confirm`: sets the new password and ends every
    /// session, in one transaction with using the token up.
    #[tracing::instrument(skip_all)]
    pub async fn confirm_password_reset(&self, token: &str, new_password: &str) -> Result<(), AccountMailError> {
        let new_password =
            Password::parse(new_password).map_err(|message| ValidationErrors::single("new_password", message))?;
        let now = self.clock.now_ms();
        // A code that cannot work costs no password hash.
        self.check(token, Purpose::PasswordReset, now).await?;
        let hash = password::hash(&new_password).await.map_err(|e| AccountMailError::Internal(e.to_string()))?;
        let txn = crate::db::begin(&self.db).await?;
        let user = self.claim(&txn, token, Purpose::PasswordReset, now).await?;
        let mut model: user::ActiveModel = user.clone().into();
        model.password_hash = Set(hash);
        model.updated_at = Set(now);
        // The mail reached the person at this address: it is theirs.
        model.email_verified_at = Set(Some(user.email_verified_at.unwrap_or(now)));
        model.update(&txn).await?;
        let ended = revoke_sessions(&txn, session::Column::UserId.eq(user.id), now).await?;
        one_time::retire_all(&txn, user.id, Purpose::PasswordReset, now).await?;
        txn.commit().await?;
        self.changes.changed(user.id).await;
        // Whoever was guessing the old password is locked out by the reset itself.
        throttle::clear(&self.db, &throttle::account_key(&user.email)).await?;
        tracing::info!(user_id = %user.id, ended, "password reset; every session ended");
        Ok(())
    }

    /// `POST /v1/auth/verify-email`.
    #[tracing::instrument(skip_all)]
    pub async fn verify_email(&self, token: &str) -> Result<(), AccountMailError> {
        let now = self.clock.now_ms();
        let txn = crate::db::begin(&self.db).await?;
        let user = self.claim(&txn, token, Purpose::VerifyEmail, now).await?;
        if user.email_verified_at.is_none() {
            let mut model: user::ActiveModel = user.clone().into();
            model.email_verified_at = Set(Some(now));
            model.updated_at = Set(now);
            model.update(&txn).await?;
        }
        txn.commit().await?;
        self.changes.changed(user.id).await;
        tracing::info!(user_id = %user.id, "email verified");
        Ok(())
    }

    /// Queues the verification mail for the account's current address. Never
    /// fails its caller (a registration stands without it): without mail it is
    /// skipped, and a queue error is logged.
    pub async fn queue_verification(&self, user_id: Uuid) {
        if !self.mailer.can_send() {
            tracing::info!(%user_id, "no mail configured: no verification mail sent");
            return;
        }
        let job = Job::SendMail { mail: MailJob::VerifyEmail { user_id }, attempt: 0 };
        if let Err(error) = self.queue.enqueue(job).await {
            tracing::error!(%user_id, %error, "could not queue the verification mail");
        }
    }

    /// Queues the notice to `old_email` that the account's email changed.
    pub async fn queue_email_changed_notice(&self, user_id: Uuid, old_email: &str) -> Result<(), AccountMailError> {
        if !self.mailer.can_send() {
            return Err(AccountMailError::MailNotConfigured);
        }
        let id = Uuid::now_v7();
        let old_address = self.seal_address(old_email, user_id, id);
        let job = Job::SendMail { mail: MailJob::EmailChanged { id, user_id, old_address }, attempt: 0 };
        self.queue.enqueue(job).await?;
        Ok(())
    }

    /// The worker's half: the mail a job stands for, minting and storing its
    /// token if it carries one. `None` when there is nothing to send: no account
    /// uses the address, the account is gone, or it is verified already.
    pub async fn render(&self, job: &MailJob) -> Result<Option<MailMessage>, AccountMailError> {
        let now = self.clock.now_ms();
        match job {
            MailJob::PasswordReset { id, to } => {
                let email = self.open_address(to, Uuid::nil(), *id)?;
                let user = User::find()
                    .filter(user::Column::Email.eq(email.as_str()))
                    .filter(user::Column::DeletedAt.is_null())
                    .one(&self.db)
                    .await?;
                let Some(user) = user else {
                    tracing::info!("password reset for an address no account uses: nothing sent");
                    return Ok(None);
                };
                let token = one_time::issue(&self.db, user.id, &user.email, Purpose::PasswordReset, now).await?;
                Ok(Some(texts::password_reset(&user.email, &token)))
            }
            MailJob::VerifyEmail { user_id } => {
                let Some(user) = self.live_user(*user_id).await? else { return Ok(None) };
                if user.email_verified_at.is_some() {
                    return Ok(None);
                }
                let token = one_time::issue(&self.db, user.id, &user.email, Purpose::VerifyEmail, now).await?;
                Ok(Some(texts::verify_email(&user.email, &token)))
            }
            MailJob::EmailChanged { id, user_id, old_address } => {
                if self.live_user(*user_id).await?.is_none() {
                    return Ok(None);
                }
                let old = self.open_address(old_address, *user_id, *id)?;
                Ok(Some(texts::email_changed(&old)))
            }
        }
    }

    async fn live_user(&self, user_id: Uuid) -> Result<Option<user::Model>, DbErr> {
        Ok(User::find_by_id(user_id).one(&self.db).await?.filter(|u| u.deleted_at.is_none()))
    }

    /// Would `token` work now? Read-only.
    async fn check(&self, token: &str, purpose: Purpose, now: i64) -> Result<(), AccountMailError> {
        let row = one_time::find(&self.db, token, purpose).await?;
        one_time::judge(row.as_ref(), now).map_err(AccountMailError::Token)
    }

    /// Uses `token` up and answers its live account, whose address must still be
    /// the one the token was mailed to.
    async fn claim(
        &self,
        txn: &sea_orm::DatabaseTransaction,
        token: &str,
        purpose: Purpose,
        now: i64,
    ) -> Result<user::Model, AccountMailError> {
        let row = one_time::claim(txn, token, purpose, now).await?.map_err(AccountMailError::Token)?;
        let user = User::find_by_id(row.user_id)
            .one(txn)
            .await?
            .filter(|u| u.deleted_at.is_none())
            .ok_or(AccountMailError::Token(Refusal::Unknown))?;
        if one_time::email_hash(&user.email) != row.email_hash {
            return Err(AccountMailError::Token(Refusal::Superseded));
        }
        Ok(user)
    }
}

impl AccountMail {
    /// Seals an address for the queue, bound to its job (and account, if any),
    /// so a sealed value copied into another job does not open.
    fn seal_address(&self, address: &str, user_id: Uuid, job_id: Uuid) -> String {
        let record_id = job_id.to_string();
        self.cipher.seal(address, &Binding { user_id, table: "mail_jobs", column: "to", record_id: &record_id })
    }

    fn open_address(&self, sealed: &str, user_id: Uuid, job_id: Uuid) -> Result<String, CryptoError> {
        let record_id = job_id.to_string();
        self.cipher.open(sealed, &Binding { user_id, table: "mail_jobs", column: "to", record_id: &record_id })
    }
}
