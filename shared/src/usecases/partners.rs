//! The partner use cases: looking at and accepting an invitation (throttled
//! against guessing), leaving a link.

use sea_orm::TransactionTrait;
use uuid::Uuid;

use crate::{
    domain::invitation_code::InvitationCode,
    partners::{InvitationPreview, Link, PartnerError, Sharing, guessing},
    services::Services,
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
        let txn = self.db.begin().await?;
        let link = self.partners.link(&txn, who, &invitation, &code).await?;
        txn.commit().await?;
        Ok(link)
    }

    /// The person's link and what each shares (read in one transaction, so
    /// the counts belong to that link).
    pub async fn partnership(&self, who: Uuid) -> Result<Partnership, PartnerError> {
        let txn = self.db.begin().await?;
        let link = self.partners.current(&txn, who).await?.ok_or(PartnerError::NotLinked)?;
        let sharing = self.partners.sharing(&txn, &link, who).await?;
        txn.commit().await?;
        Ok(Partnership { link, sharing })
    }

    /// Leaves the link at once, alone; the partner is not told.
    pub async fn unlink_partner(&self, who: Uuid) -> Result<(), PartnerError> {
        let txn = self.db.begin().await?;
        self.partners.unlink(&txn, who).await?;
        txn.commit().await?;
        Ok(())
    }
}
