//! Partners: invitations by code, the link between two accounts, and leaving it.
//!
//! Safety first: a person leaving a controlling relationship must be able to
//! unlink alone, at once, and without the other being told; nothing here sends
//! anything to the other person but the opt-in, discreet notice of `updates`. Which invitations exist is never told either:
//! an unknown, expired, used or withdrawn code all answer "not found", and wrong
//! codes are throttled per account and per address.
//!
//! Accepting is the use case `Services::accept_partner_invitation`; the steps
//! here take the connection they run on.

pub mod guessing;
pub mod updates;

use std::sync::Arc;

use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter,
    SqlErr, sea_query::OnConflict,
};
use uuid::Uuid;

use crate::{
    Clock,
    domain::invitation_code::InvitationCode,
    entities::{
        partner_invitation::{self, Entity as PartnerInvitation},
        partner_link::{self, Entity as PartnerLink},
        user::{self, Entity as User},
    },
};

/// How long an invitation code works.
pub const INVITATION_TTL_MS: i64 = 24 * 60 * 60 * 1000;

#[derive(Debug, thiserror::Error)]
pub enum PartnerError {
    /// Unknown, expired, used or withdrawn: one answer for all, so nobody
    /// learns which codes exist.
    #[error("no such invitation")]
    InvitationNotFound,
    #[error("the invitation is the person's own")]
    OwnInvitation,
    /// The person asking is linked already.
    #[error("already linked with a partner")]
    AlreadyLinked,
    /// The inviter is linked already (said without any detail).
    #[error("the inviter is no longer available")]
    InviterUnavailable,
    #[error("not linked with a partner")]
    NotLinked,
    /// Too many unknown codes from this account or address.
    #[error("too many unknown invitation codes")]
    Throttled { retry_after_secs: u64 },
    /// The shared items could not be handed to the new partner.
    #[error("sharing failed: {0}")]
    Sharing(#[from] crate::sync::SyncError),
    #[error("database error: {0}")]
    Database(#[from] DbErr),
}

/// A new invitation: the code is shown once, to the inviter.
#[derive(Debug, Clone)]
pub struct NewInvitation {
    pub code: InvitationCode,
    pub expires_at: i64,
}

/// What the invitee sees before accepting.
#[derive(Debug, Clone)]
pub struct InvitationPreview {
    pub inviter_id: Uuid,
    pub inviter_display_name: String,
    pub expires_at: i64,
}

/// The person's link, as they see it.
#[derive(Debug, Clone)]
pub struct Link {
    pub partner_id: Uuid,
    pub partner_display_name: String,
    pub linked_at: i64,
}

#[derive(Clone)]
pub struct Partners {
    db: DatabaseConnection,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Partners {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Partners").finish_non_exhaustive()
    }
}

impl Partners {
    pub fn new(db: DatabaseConnection, clock: Arc<dyn Clock>) -> Self {
        Self { db, clock }
    }

    /// A new invitation code, valid 24 hours; it replaces the person's open one.
    #[tracing::instrument(skip_all, fields(%user_id))]
    pub async fn invite(&self, user_id: Uuid) -> Result<NewInvitation, PartnerError> {
        if link_row(&self.db, user_id).await?.is_some() {
            return Err(PartnerError::AlreadyLinked);
        }
        let now = self.clock.now_ms();
        let code = InvitationCode::generate(&mut rand::rng());
        let expires_at = now + INVITATION_TTL_MS;
        let row = partner_invitation::ActiveModel {
            inviter_id: Set(user_id),
            code_hash: Set(code.hash()),
            created_at: Set(now),
            expires_at: Set(expires_at),
        };
        // One statement: the old code stops working as the new one starts.
        let replace = OnConflict::column(partner_invitation::Column::InviterId)
            .update_columns([
                partner_invitation::Column::CodeHash,
                partner_invitation::Column::CreatedAt,
                partner_invitation::Column::ExpiresAt,
            ])
            .to_owned();
        PartnerInvitation::insert(row).on_conflict(replace).exec_without_returning(&self.db).await?;
        Ok(NewInvitation { code, expires_at })
    }

    /// Withdraws the person's open invitation, if any.
    #[tracing::instrument(skip_all, fields(%user_id))]
    pub async fn withdraw(&self, user_id: Uuid) -> Result<(), PartnerError> {
        PartnerInvitation::delete_by_id(user_id).exec(&self.db).await?;
        Ok(())
    }

    /// The open invitation with this code, and who made it.
    pub async fn open_invitation(
        &self,
        conn: &impl ConnectionTrait,
        code: &InvitationCode,
    ) -> Result<InvitationPreview, PartnerError> {
        let found = PartnerInvitation::find()
            .filter(partner_invitation::Column::CodeHash.eq(code.hash()))
            .filter(partner_invitation::Column::ExpiresAt.gt(self.clock.now_ms()))
            .one(conn)
            .await?
            .ok_or(PartnerError::InvitationNotFound)?;
        let inviter = live_user(conn, found.inviter_id).await?.ok_or(PartnerError::InvitationNotFound)?;
        Ok(InvitationPreview {
            inviter_id: inviter.id,
            inviter_display_name: inviter.display_name,
            expires_at: found.expires_at,
        })
    }

    /// Links `who` with the inviter of `invitation`: the code is used up and the
    /// link made, on `conn` (a step of the accept use case). Should another
    /// accept of the same code, or a link of either person, commit first, this
    /// one finds the code gone or meets the link table's unique keys.
    #[tracing::instrument(skip_all, fields(user_id = %who))]
    pub async fn link(
        &self,
        conn: &impl ConnectionTrait,
        who: Uuid,
        invitation: &InvitationPreview,
        code: &InvitationCode,
    ) -> Result<Link, PartnerError> {
        let inviter = invitation.inviter_id;
        if inviter == who {
            return Err(PartnerError::OwnInvitation);
        }
        if link_row(conn, who).await?.is_some() {
            return Err(PartnerError::AlreadyLinked);
        }
        if link_row(conn, inviter).await?.is_some() {
            return Err(PartnerError::InviterUnavailable);
        }
        let used = PartnerInvitation::delete_many()
            .filter(partner_invitation::Column::InviterId.eq(inviter))
            .filter(partner_invitation::Column::CodeHash.eq(code.hash()))
            .exec(conn)
            .await?;
        if used.rows_affected != 1 {
            return Err(PartnerError::InvitationNotFound);
        }
        // The invitee's own open invitation stays until it expires: whoever holds
        // it is told that the inviter is no longer available, nothing more.
        let now = self.clock.now_ms();
        let side = |user_id, partner_id| partner_link::ActiveModel {
            user_id: Set(user_id),
            partner_id: Set(partner_id),
            linked_at: Set(now),
            notified_at: Set(None),
        };
        PartnerLink::insert_many([side(who, inviter), side(inviter, who)]).exec_without_returning(conn).await.map_err(
            |e| match e.sql_err() {
                // Either person was linked by a concurrent accept; which one is not told.
                Some(SqlErr::UniqueConstraintViolation(_)) => PartnerError::InviterUnavailable,
                _ => PartnerError::Database(e),
            },
        )?;
        tracing::info!("partners linked");
        Ok(Link { partner_id: inviter, partner_display_name: invitation.inviter_display_name.clone(), linked_at: now })
    }

    /// The person's partner, if linked.
    pub async fn partner_of(&self, conn: &impl ConnectionTrait, user_id: Uuid) -> Result<Option<Uuid>, DbErr> {
        Ok(link_row(conn, user_id).await?.map(|row| row.partner_id))
    }

    /// The person's link, if linked.
    pub async fn current(&self, conn: &impl ConnectionTrait, user_id: Uuid) -> Result<Option<Link>, PartnerError> {
        let Some(row) = link_row(conn, user_id).await? else {
            return Ok(None);
        };
        let Some(partner) = live_user(conn, row.partner_id).await? else {
            return Ok(None);
        };
        Ok(Some(Link { partner_id: partner.id, partner_display_name: partner.display_name, linked_at: row.linked_at }))
    }

    /// Ends the person's link, both sides at once; nothing tells the partner.
    /// The partner it was with, if there was a link.
    #[tracing::instrument(skip_all, fields(%user_id))]
    pub async fn unlink(&self, conn: &impl ConnectionTrait, user_id: Uuid) -> Result<Option<Uuid>, DbErr> {
        let Some(row) = link_row(conn, user_id).await? else {
            return Ok(None);
        };
        PartnerLink::delete_many()
            .filter(
                Condition::any()
                    .add(partner_link::Column::UserId.is_in([user_id, row.partner_id]))
                    .add(partner_link::Column::PartnerId.is_in([user_id, row.partner_id])),
            )
            .exec(conn)
            .await?;
        tracing::info!("partners unlinked");
        Ok(Some(row.partner_id))
    }

    /// For a deleted account: unlinked, and its open invitation gone.
    pub async fn forget(&self, conn: &impl ConnectionTrait, user_id: Uuid) -> Result<(), DbErr> {
        self.unlink(conn, user_id).await?;
        PartnerInvitation::delete_by_id(user_id).exec(conn).await?;
        Ok(())
    }

    pub(crate) fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    pub(crate) fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }
}

async fn link_row(conn: &impl ConnectionTrait, user_id: Uuid) -> Result<Option<partner_link::Model>, DbErr> {
    PartnerLink::find_by_id(user_id).one(conn).await
}

async fn live_user(conn: &impl ConnectionTrait, user_id: Uuid) -> Result<Option<user::Model>, DbErr> {
    User::find_by_id(user_id).filter(user::Column::DeletedAt.is_null()).one(conn).await
}

/// How many items a person shares with their partner.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SharedCounts {
    pub boundaries: u64,
    pub journal_entries: u64,
}

/// What each of the two shares.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sharing {
    pub yours: SharedCounts,
    pub partners: SharedCounts,
}

impl Partners {
    /// What each person of a link shares.
    pub async fn sharing(&self, conn: &impl ConnectionTrait, link: &Link, user_id: Uuid) -> Result<Sharing, DbErr> {
        Ok(Sharing {
            yours: shared_counts(conn, user_id).await?,
            partners: shared_counts(conn, link.partner_id).await?,
        })
    }
}

async fn shared_counts(conn: &impl ConnectionTrait, user_id: Uuid) -> Result<SharedCounts, DbErr> {
    use crate::entities::{
        boundary::{self, Entity as Boundary},
        journal_entry::{self, Entity as JournalEntry},
    };
    use sea_orm::PaginatorTrait;
    let boundaries = Boundary::find()
        .filter(boundary::Column::UserId.eq(user_id))
        .filter(boundary::Column::SharedWithPartner.eq(true))
        .count(conn)
        .await?;
    let journal_entries = JournalEntry::find()
        .filter(journal_entry::Column::UserId.eq(user_id))
        .filter(journal_entry::Column::SharedWithPartner.eq(true))
        .count(conn)
        .await?;
    Ok(SharedCounts { boundaries, journal_entries })
}
