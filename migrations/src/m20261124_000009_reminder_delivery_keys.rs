//! Reminder deliveries keyed by their slot, recorded only once queued.
//!
//! A delivery's id is now derived from its (user, slot), with the slot's time at
//! the front (`reminders::delivery_id`), so the primary key is the exactly-once key
//! and a dispatch appends its deliveries at the key's end. The unique index on
//! `(user_id, slot_at)` had every new delivery land at a random place in an index
//! as large as the whole history: with two months of history per person, most of a
//! dispatch's time and write-ahead log. Looking a person's deliveries up (an
//! account's purge) takes a plain index on `user_id`, whose duplicates PostgreSQL
//! stores once.
//!
//! The dispatcher now queues a claim's pushes before the claim commits, so a
//! recorded delivery is a queued one: the outbox's `queued_at` and its index go.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ReminderDeliveries {
    Table,
    UserId,
    SlotAt,
    SentAt,
    QueuedAt,
}

const USER_SLOT_INDEX: &str = "idx_reminder_deliveries_user_slot";
const UNQUEUED_INDEX: &str = "idx_reminder_deliveries_unqueued";
const USER_INDEX: &str = "idx_reminder_deliveries_user";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for index in [USER_SLOT_INDEX, UNQUEUED_INDEX] {
            manager.drop_index(Index::drop().name(index).table(ReminderDeliveries::Table).to_owned()).await?;
        }
        manager
            .alter_table(
                Table::alter().table(ReminderDeliveries::Table).drop_column(ReminderDeliveries::QueuedAt).to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(USER_INDEX)
                    .table(ReminderDeliveries::Table)
                    .col(ReminderDeliveries::UserId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_index(Index::drop().name(USER_INDEX).table(ReminderDeliveries::Table).to_owned()).await?;
        manager
            .alter_table(
                Table::alter()
                    .table(ReminderDeliveries::Table)
                    .add_column(big_integer_null(ReminderDeliveries::QueuedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .exec_stmt(
                Query::update()
                    .table(ReminderDeliveries::Table)
                    .value(ReminderDeliveries::QueuedAt, Expr::col(ReminderDeliveries::SentAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(UNQUEUED_INDEX)
                    .table(ReminderDeliveries::Table)
                    .col(ReminderDeliveries::SentAt)
                    .and_where(Expr::col(ReminderDeliveries::QueuedAt).is_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(USER_SLOT_INDEX)
                    .table(ReminderDeliveries::Table)
                    .col(ReminderDeliveries::UserId)
                    .col(ReminderDeliveries::SlotAt)
                    .unique()
                    .to_owned(),
            )
            .await
    }
}
