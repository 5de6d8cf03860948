//! A person's reminder settings and their next slot; the dispatcher claims rows
//! whose `next_slot_at` has passed.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "reminder_schedules")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: Uuid,
    /// `ReminderSettings` as JSON.
    pub settings: String,
    pub next_slot_at: Option<i64>,
    /// Reminders in a row left unanswered; spaces the next ones out.
    pub unanswered: i32,
    pub last_sent_at: Option<i64>,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
