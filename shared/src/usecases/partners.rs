//! The partner use cases: looking at and accepting an invitation (throttled
//! against guessing), leaving a link, and queueing the opt-in notice of a new
//! share.

use sea_orm::{DatabaseTransaction, DbErr};
use uuid::Uuid;

use crate::{
    domain::invitation_code::InvitationCode,
    partners::{InvitationPreview, Link, PartnerError, Sharing, guessing, updates},
    services::Services,
    sync::partner_items::lock_pair,
};

/// The person's link and what each of the two shares.
#[derive(Debug, Clone)]
pub struct Partnership {
    pub link: Link,
    pub sharing: Sharing,
}

impl Services {
    /// The open invitation with this code. Counted against guessing first; the
    /// count is kept for an unknown code (it commits on its own, before any
    /// transaction could roll it back) and handed back for a known one.
    async fn find_invitation(
        &self,
        who: Uuid,
        typed: &str,
        client_address: &str,
    ) -> Result<(InvitationCode, InvitationPreview), PartnerError> {
        let keys = guessing::keys(who, client_address);
        guessing::count(self.partners.db(), &keys, self.partners.now_ms()).await?;
        let code = InvitationCode::parse(typed).ok_or(PartnerError::InvitationNotFound)?;
        let preview = self.partners.open_invitation(&self.db, &code).await?;
        guessing::release(&self.db, &keys).await?;
        Ok((code, preview))
    }

    /// Who invited, so the invitee knows whom they would link with.
    pub async fn preview_partner_invitation(
        &self,
        who: Uuid,
        typed: &str,
        client_address: &str,
    ) -> Result<InvitationPreview, PartnerError> {
        Ok(self.find_invitation(who, typed, client_address).await?.1)
    }

    /// Accepts an invitation: in one transaction the code is used up and the
    /// link made. Of two accepts of one code, or two links of one person, at
    /// once, one commits and the other is refused (see `Partners::link`).
    pub async fn accept_partner_invitation(
        &self,
        who: Uuid,
        typed: &str,
        client_address: &str,
    ) -> Result<Link, PartnerError> {
        let (code, invitation) = self.find_invitation(who, typed, client_address).await?;
        let txn = crate::db::begin(&self.db).await?;
        lock_pair(&txn, who, Some(invitation.inviter_id), self.clock.now_ms()).await?;
        let link = self.partners.link(&txn, who, &invitation, &code).await?;
        self.sync.deliver_all_to_partner(&txn, who, invitation.inviter_id).await?;
        self.sync.deliver_all_to_partner(&txn, invitation.inviter_id, who).await?;
        txn.commit().await?;
        // Couple mode's partner exercises may now be possible for either.
        self.changes.changed(who).await;
        self.changes.changed(invitation.inviter_id).await;
        Ok(link)
    }

    /// The person's link and what each shares (read in one transaction, so
    /// the counts belong to that link).
    pub async fn partnership(&self, who: Uuid) -> Result<Partnership, PartnerError> {
        let txn = crate::db::begin(&self.db).await?;
        let link = self.partners.current(&txn, who).await?.ok_or(PartnerError::NotLinked)?;
        let sharing = self.partners.sharing(&txn, &link, who).await?;
        txn.commit().await?;
        Ok(Partnership { link, sharing })
    }

    /// Leaves the link at once, alone; the partner is not told. What each
    /// shared leaves the other's devices at their next pull.
    pub async fn unlink_partner(&self, who: Uuid) -> Result<(), PartnerError> {
        let (txn, partner) = self.begin_with_partner(who).await?;
        self.unlink_on(&txn, who, partner).await?;
        txn.commit().await?;
        // Couple mode ended for both (`Enrollments::leave_couple_mode`).
        self.changes.changed(who).await;
        if let Some(partner) = partner {
            self.changes.changed(partner).await;
        }
        Ok(())
    }

    /// The unlinking steps, on a transaction from [`Self::begin_with_partner`].
    pub(crate) async fn unlink_on(
        &self,
        txn: &DatabaseTransaction,
        who: Uuid,
        partner: Option<Uuid>,
    ) -> Result<(), DbErr> {
        if let Some(partner) = partner {
            self.sync.withdraw_partner_items(txn, who).await?;
            self.sync.withdraw_partner_items(txn, partner).await?;
            self.enrollments.leave_couple_mode(txn, &[who, partner]).await?;
        }
        self.partners.unlink(txn, who).await?;
        Ok(())
    }

    /// Queues the opt-in "something new is waiting" job for `recipient` when
    /// a notice could follow (`partners::updates`). After a commit: the share
    /// stands without it, so a failure is logged, not returned.
    pub(crate) async fn queue_partner_update(&self, recipient: Uuid) {
        let queued = async {
            if self.partners.update_notice_possible(&self.db, recipient).await? {
                self.queue.enqueue_unique(vec![updates::job(recipient, self.clock.now())]).await?;
            }
            anyhow::Ok(())
        };
        if let Err(error) = queued.await {
            tracing::error!(error = %format!("{error:#}"), "could not queue the partner's update notice");
        }
    }

    /// Opens a transaction holding the sync locks of the person and their
    /// partner, in the order of their ids (never a deadlock between two
    /// partners), and says who the partner is. The link is read again under
    /// the locks (a link is made or ended only under both): should it have
    /// changed since the first look, the transaction starts again with the
    /// right pair.
    pub(crate) async fn begin_with_partner(&self, who: Uuid) -> Result<(DatabaseTransaction, Option<Uuid>), DbErr> {
        let mut partner = self.partners.partner_of(&self.db, who).await?;
        loop {
            let txn = crate::db::begin(&self.db).await?;
            lock_pair(&txn, who, partner, self.clock.now_ms()).await?;
            let now = self.partners.partner_of(&txn, who).await?;
            if now == partner {
                return Ok((txn, partner));
            }
            txn.rollback().await?;
            partner = now;
        }
    }
}
