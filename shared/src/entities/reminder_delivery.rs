//! One reminder sent: at most one per (user, slot), whose id is derived from the
//! two (`reminders::delivery_id`). Recorded in the transaction that queues its pushes.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "reminder_deliveries")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub user_id: Uuid,
    pub slot_at: i64,
    /// When the dispatcher claimed the slot.
    pub sent_at: i64,
    /// When its pushes were queued: the claim's own time, as they are queued
    /// before it commits. Kept for the previous release's workers, which recorded
    /// deliveries before queuing and read this to find unqueued ones.
    pub queued_at: Option<i64>,
    pub opened_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
