//! The use cases that change more than one service's data. Each is one method of
//! [`Services`] that opens one transaction, runs its steps on it (service
//! methods that take the connection they run on) and commits: should any step
//! fail, nothing of the others remains. Whoever needs one of these changes (a
//! handler today; a CLI command or a job tomorrow) calls the use case, never its
//! steps one after another.
//!
//! What must happen before the transaction (re-authentication, which counts a
//! wrong password even when nothing changes) or after it (enqueueing on a queue
//! that is not the database) is said at each.

mod partners;

pub use partners::Partnership;

use sea_orm::DbErr;
use serde_json::Value;
use uuid::Uuid;

use crate::{
    accounts::{
        AccountError, Authenticated, IssuedTokens, ProfilePatch, ReauthProof, RegisterInput, mail::AccountMailError,
    },
    enrollment::{Current, EnrollmentError, EnrollmentPatch},
    entities::user,
    notifications::choices::ChoicesError,
    services::Services,
    sync::{Pushed, SyncError, tables::CHECKINS},
};

/// Why a profile change was refused.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error(transparent)]
    Account(#[from] AccountError),
    /// The deprecated `descriptive_notifications` could not be applied.
    #[error(transparent)]
    Choices(#[from] ChoicesError),
    /// A new email, where no mail can be sent to confirm it and warn the old one.
    #[error(transparent)]
    Mail(#[from] AccountMailError),
}

impl From<DbErr> for ProfileError {
    fn from(error: DbErr) -> Self {
        Self::Account(AccountError::Database(error))
    }
}

/// A changed profile.
#[derive(Debug, Clone)]
pub struct ProfileUpdate {
    pub patch: ProfilePatch,
    /// The deprecated alias of the notification choice `descriptive`.
    pub descriptive: Option<bool>,
}

impl Services {
    /// Opens an account and its first session (one transaction in
    /// `Accounts::register`); once committed, queues the verification mail. The
    /// account stands without it (no mail configured, or the queue down: logged).
    pub async fn register(&self, input: RegisterInput) -> Result<(user::Model, IssuedTokens), AccountError> {
        let (user, tokens) = self.accounts.register(input).await?;
        self.account_mail.queue_verification(user.id).await;
        Ok((user, tokens))
    }

    /// Enrolls at step 1 and schedules the first reminder; couple mode needs a
    /// linked partner.
    pub async fn enroll(
        &self,
        user_id: Uuid,
        program: &str,
        mode: &str,
        pace: &str,
    ) -> Result<Current, EnrollmentError> {
        let txn = crate::db::begin(&self.db).await?;
        let linked = self.partners.partner_of(&txn, user_id).await?.is_some();
        let current = self.enrollments.enroll(&txn, user_id, program, mode, pace, linked).await?;
        self.reminders.recompute(&txn, user_id).await?;
        txn.commit().await?;
        self.changes.changed(user_id).await;
        Ok(current)
    }

    /// Changes pace or mode, pauses or resumes, and moves the next reminder to
    /// match (pace and the pause decide when reminders fall).
    pub async fn update_enrollment(&self, user_id: Uuid, patch: EnrollmentPatch) -> Result<Current, EnrollmentError> {
        let txn = crate::db::begin(&self.db).await?;
        let linked = self.partners.partner_of(&txn, user_id).await?.is_some();
        let current = self.enrollments.update(&txn, user_id, patch, linked).await?;
        self.reminders.recompute(&txn, user_id).await?;
        txn.commit().await?;
        self.changes.changed(user_id).await;
        Ok(current)
    }

    /// Changes the profile; a new time zone moves the next reminder (reminders
    /// fall at local times). Once committed, the change is announced, so the next
    /// request here reads the new profile, and other replicas' within a second. A new email is re-authenticated before the
    /// transaction opens, is refused (409) where no mail can be sent, and once
    /// committed gets a verification mail while the old address gets a notice
    /// (queued after the commit: the queue is not the database).
    pub async fn update_profile(
        &self,
        who: &Authenticated,
        update: ProfileUpdate,
        proof: ReauthProof,
        client_address: &str,
    ) -> Result<user::Model, ProfileError> {
        let change = self.accounts.check_profile_change(who, update.patch, proof, client_address).await?;
        let new_email = change.changes_email();
        if new_email && !self.account_mail.mailer().can_send() {
            return Err(AccountMailError::MailNotConfigured.into());
        }
        let txn = crate::db::begin(&self.db).await?;
        let user = self.accounts.save_profile(&txn, change).await?;
        if let Some(descriptive) = update.descriptive {
            self.notification_settings.set_descriptive(&txn, user.id, descriptive).await?;
        }
        if user.timezone != who.user.timezone {
            self.reminders.recompute(&txn, user.id).await?;
        }
        txn.commit().await?;
        self.changes.changed(user.id).await;
        if new_email {
            self.account_mail.queue_verification(user.id).await;
            if let Err(error) = self.account_mail.queue_email_changed_notice(user.id, &who.user.email).await {
                tracing::error!(user_id = %user.id, %error, "could not queue the notice to the old address");
            }
        }
        Ok(user)
    }

    /// Applies a sync push; a check-in in it answers any reminder, so spacing
    /// returns to normal at once; the boundaries and journal entries it touched
    /// reach (or leave) the partner's items. Once committed, something newly
    /// shared queues the partner's opt-in notice (`partners::updates`; the share
    /// stands without it should the queue be down: logged).
    pub async fn push_changes(
        &self,
        user_id: Uuid,
        last_pulled_at: Option<i64>,
        body: &Value,
    ) -> Result<Pushed, SyncError> {
        let (txn, partner) = self.begin_with_partner(user_id).await?;
        let pushed = self.sync.push(&txn, user_id, last_pulled_at, body).await?;
        if pushed.wrote("checkins") {
            self.reminders.checked_in(&txn, user_id).await?;
        }
        let newly_shared = match partner {
            Some(partner) => self.sync.deliver_to_partner(&txn, user_id, partner, &pushed.touched).await?,
            None => 0,
        };
        txn.commit().await?;
        if pushed.touched_table(CHECKINS) {
            // What `today` reads of the person (and of them as a partner) changed.
            self.changes.changed(user_id).await;
        }
        if let Some(partner) = partner.filter(|_| newly_shared > 0) {
            self.queue_partner_update(partner).await;
        }
        Ok(pushed)
    }

    /// Deletes the account: re-authenticated first; then, in one transaction, the
    /// account is closed (no sign-in, every token dead, the email released) and
    /// its reminders stop. Once committed, the change is announced to every
    /// replica and the purge of every row it had is queued (the worker's sweep
    /// catches a purge that could not be queued).
    pub async fn delete_account(
        &self,
        who: &Authenticated,
        proof: ReauthProof,
        client_address: &str,
    ) -> Result<(), AccountError> {
        self.accounts.reauthenticate(who, proof, client_address).await?;
        let (txn, partner) = self.begin_with_partner(who.user.id).await?;
        self.accounts.mark_deleted(&txn, who).await?;
        self.reminders.recompute(&txn, who.user.id).await?;
        // Unlinked at once, like any unlinking: the partner is not told, and
        // what was shared leaves their devices at their next pull.
        self.unlink_on(&txn, who.user.id, partner).await?;
        self.partners.forget(&txn, who.user.id).await?;
        txn.commit().await?;
        self.changes.changed(who.user.id).await;
        if let Some(partner) = partner {
            // Their couple mode ended with the link.
            self.changes.changed(partner).await;
        }
        self.accounts.enqueue_purge(who.user.id).await;
        tracing::info!(user_id = %who.user.id, "account deleted; purge queued");
        Ok(())
    }
}
