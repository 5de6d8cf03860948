//! Reminder deliveries' keys in slot order.
//!
//! Each delivery landed at a random place in the unique `(user_id, slot_at)` index,
//! which a history makes larger than the cache: with two months of history per
//! person, most of a dispatch's time and write-ahead log. The same unique key with
//! the slot first takes a dispatch's deliveries at its end instead (so do their
//! ids, now derived from the slot: `reminders::delivery_id`). Looking a person's
//! deliveries up (an account's purge) takes a plain index on `user_id`, whose
//! duplicates PostgreSQL stores once.
//!
//! Compatible with the previous release, whose workers may still run while this
//! one rolls out (or after a rollback): their `ON CONFLICT (user_id, slot_at)`
//! finds the new unique index (both backends match its columns in any order), and
//! `queued_at` stays, written by this release as the claim's own time.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ReminderDeliveries {
    Table,
    UserId,
    SlotAt,
}

const USER_SLOT_INDEX: &str = "idx_reminder_deliveries_user_slot";
const SLOT_USER_INDEX: &str = "idx_reminder_deliveries_slot_user";
const USER_INDEX: &str = "idx_reminder_deliveries_user";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // The new unique index first: the key is enforced throughout.
        manager
            .create_index(
                Index::create()
                    .name(SLOT_USER_INDEX)
                    .table(ReminderDeliveries::Table)
                    .col(ReminderDeliveries::SlotAt)
                    .col(ReminderDeliveries::UserId)
                    .unique()
                    .to_owned(),
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
            .await?;
        manager.drop_index(Index::drop().name(USER_SLOT_INDEX).table(ReminderDeliveries::Table).to_owned()).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
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
            .await?;
        for index in [USER_INDEX, SLOT_USER_INDEX] {
            manager.drop_index(Index::drop().name(index).table(ReminderDeliveries::Table).to_owned()).await?;
        }
        Ok(())
    }
}
