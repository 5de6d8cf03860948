//! The one thing ever pushed about a partner, and only to whoever opted in
//! (`partner_updates`): "Something new is waiting in Attune" when the linked
//! partner shares an item. Discreet whatever the person's `descriptive` choice
//! (it never says what, nor who), at most one a day, held through quiet hours,
//! never sent while notifications are paused.
//!
//! A sharing push queues [`job`] once committed (the use case
//! `Services::push_changes`), when [`Partners::update_notice_possible`]: the
//! person opted in, is not paused, and was not told today. The worker asks the
//! choices again (they may have changed, or quiet hours begun), then takes the
//! day's notice with [`Partners::claim_update_notice`] in the transaction that
//! queues its pushes, so two shares at once send one notice.

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter, sea_query::Expr};
use uuid::Uuid;

use super::Partners;
use crate::{
    domain::notification_choices::{Delivery, NotificationKind},
    entities::partner_link::{self, Entity as PartnerLink},
    jobs::{Job, UniqueJob},
    notifications::choices,
    push::{PushKind, PushMessage, PushPayload, Topic, Urgency},
};

/// The notice's title and body, the same on every kind of device.
pub const PARTNER_UPDATE_NOTICE: (&str, &str) = ("Attune", "Something new is waiting in Attune");
/// A newer notice replaces an undelivered older one.
pub const PARTNER_UPDATE_TOPIC: &str = "partner-update";
/// At most one notice in this long.
pub const PARTNER_UPDATE_INTERVAL_MS: i64 = 24 * 60 * 60 * 1000;
/// Worth showing for a day, as the notice it is.
const PARTNER_UPDATE_TTL_SECS: u32 = 24 * 60 * 60;
/// Where a tap leads: the partner's shared items.
const PARTNER_UPDATE_URL: &str = "/partner";

/// The notice.
pub fn notice() -> PushMessage {
    let (title, body) = PARTNER_UPDATE_NOTICE;
    let payload = PushPayload {
        r#type: PushKind::PartnerUpdate,
        title: title.into(),
        body: body.into(),
        url: PARTNER_UPDATE_URL.into(),
        delivery_id: None,
    };
    let mut message = PushMessage::new(payload, PARTNER_UPDATE_TTL_SECS, Urgency::Low);
    message.topic = Topic::parse(PARTNER_UPDATE_TOPIC).ok();
    message
}

/// The job that considers telling `recipient` that something new is waiting,
/// unique per recipient and hour: a burst of shares queues one job, and the
/// queue never holds more than a day's 24 for anyone.
pub fn job(recipient: Uuid, now: DateTime<Utc>) -> UniqueJob {
    let hour = now.timestamp() / 3600;
    UniqueJob { key: format!("partner-update:{recipient}:{hour}"), job: Job::PartnerUpdate { user_id: recipient } }
}

impl Partners {
    /// Whether a share now could lead to a notice for `recipient`: linked, not
    /// told in the last [`PARTNER_UPDATE_INTERVAL_MS`], and their choices allow
    /// partner updates now or when quiet hours end. Keeps jobs that could only
    /// end without effect off the queue.
    pub async fn update_notice_possible(&self, conn: &impl ConnectionTrait, recipient: Uuid) -> Result<bool, DbErr> {
        let now = self.now_ms();
        let Some(link) = PartnerLink::find_by_id(recipient).one(conn).await? else {
            return Ok(false);
        };
        if link.notified_at.is_some_and(|at| at > now - PARTNER_UPDATE_INTERVAL_MS) {
            return Ok(false);
        }
        let stored = choices::stored_for(conn, &[recipient]).await?;
        let delivery = stored.get(&recipient).map_or(Delivery::Never, |person| {
            person.decide(recipient, NotificationKind::PartnerUpdate, self.clock.now())
        });
        Ok(delivery != Delivery::Never)
    }

    /// Takes the day's notice for `recipient`, on `conn`: true when they are
    /// linked and were not told anything in the last
    /// [`PARTNER_UPDATE_INTERVAL_MS`]. One conditional update, so of two
    /// workers at once one wins.
    pub async fn claim_update_notice(&self, conn: &impl ConnectionTrait, recipient: Uuid) -> Result<bool, DbErr> {
        let now = self.now_ms();
        let claimed = PartnerLink::update_many()
            .col_expr(partner_link::Column::NotifiedAt, Expr::value(now))
            .filter(partner_link::Column::UserId.eq(recipient))
            .filter(
                Condition::any()
                    .add(partner_link::Column::NotifiedAt.is_null())
                    .add(partner_link::Column::NotifiedAt.lte(now - PARTNER_UPDATE_INTERVAL_MS)),
            )
            .exec(conn)
            .await?;
        Ok(claimed.rows_affected == 1)
    }
}
