//! Crash-safe reminders: `reminder_deliveries` becomes an outbox. The dispatcher's
//! claim records a delivery with `queued_at` NULL and sets `queued_at` once its
//! pushes are on the job queue, so a delivery whose worker died in between is
//! found again (and queued by another run) rather than lost.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ReminderDeliveries {
    Table,
    SentAt,
    QueuedAt,
}

const UNQUEUED_INDEX: &str = "idx_reminder_deliveries_unqueued";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(ReminderDeliveries::Table)
                    .add_column(big_integer_null(ReminderDeliveries::QueuedAt))
                    .to_owned(),
            )
            .await?;
        // Deliveries from before the outbox were pushed in the same run that claimed them.
        manager
            .exec_stmt(
                Query::update()
                    .table(ReminderDeliveries::Table)
                    .value(ReminderDeliveries::QueuedAt, Expr::col(ReminderDeliveries::SentAt))
                    .and_where(Expr::col(ReminderDeliveries::QueuedAt).is_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                // Partial: only the few deliveries claimed and not yet queued, oldest
                // claim first, which is exactly what the recovery step reads.
                Index::create()
                    .name(UNQUEUED_INDEX)
                    .table(ReminderDeliveries::Table)
                    .col(ReminderDeliveries::SentAt)
                    .and_where(Expr::col(ReminderDeliveries::QueuedAt).is_null())
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_index(Index::drop().name(UNQUEUED_INDEX).table(ReminderDeliveries::Table).to_owned()).await?;
        manager
            .alter_table(
                Table::alter().table(ReminderDeliveries::Table).drop_column(ReminderDeliveries::QueuedAt).to_owned(),
            )
            .await?;
        Ok(())
    }
}
