//! Paced reminders: each person's schedule (settings and next slot) and one row per
//! reminder sent, keyed by (user, slot) so a slot is sent at most once.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum ReminderSchedules {
    Table,
    UserId,
    Settings,
    NextSlotAt,
    Unanswered,
    LastSentAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum ReminderDeliveries {
    Table,
    Id,
    UserId,
    SlotAt,
    SentAt,
    OpenedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ReminderSchedules::Table)
                    .col(uuid(ReminderSchedules::UserId).primary_key())
                    // The settings as JSON: read and written whole, never queried.
                    .col(text(ReminderSchedules::Settings))
                    // NULL: no reminder due (disabled, paused, not enrolled).
                    .col(big_integer_null(ReminderSchedules::NextSlotAt))
                    .col(integer(ReminderSchedules::Unanswered).default(0))
                    .col(big_integer_null(ReminderSchedules::LastSentAt))
                    .col(big_integer(ReminderSchedules::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(ReminderSchedules::Table, ReminderSchedules::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_reminder_schedules_next_slot")
                    .table(ReminderSchedules::Table)
                    .col(ReminderSchedules::NextSlotAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ReminderDeliveries::Table)
                    .col(pk_uuid(ReminderDeliveries::Id))
                    .col(uuid(ReminderDeliveries::UserId))
                    .col(big_integer(ReminderDeliveries::SlotAt))
                    .col(big_integer(ReminderDeliveries::SentAt))
                    .col(big_integer_null(ReminderDeliveries::OpenedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(ReminderDeliveries::Table, ReminderDeliveries::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                // Exactly once: a second dispatcher claiming the same slot conflicts here.
                Index::create()
                    .name("idx_reminder_deliveries_user_slot")
                    .table(ReminderDeliveries::Table)
                    .col(ReminderDeliveries::UserId)
                    .col(ReminderDeliveries::SlotAt)
                    .unique()
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(ReminderDeliveries::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(ReminderSchedules::Table).to_owned()).await?;
        Ok(())
    }
}
