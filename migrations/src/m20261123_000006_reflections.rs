//! Weekly reflections: one row per (user, local week), stored once however often
//! the job runs. `announce_at` makes the row its own outbox for the announcing push.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Checkins {
    Table,
    UserId,
    OccurredAt,
    Mood,
    Anxiety,
    Comfort,
    Completed,
    ExerciseId,
}

#[derive(DeriveIden)]
enum Reflections {
    Table,
    UserId,
    WeekStart,
    Body,
    CreatedAt,
    UpdatedAt,
    AnnounceAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Reflections::Table)
                    .col(uuid(Reflections::UserId))
                    // The week's Monday as `YYYY-MM-DD`: sorts as it reads.
                    .col(string_len(Reflections::WeekStart, 10))
                    // The reflection as JSON: read and written whole, never queried.
                    .col(text(Reflections::Body))
                    .col(big_integer(Reflections::CreatedAt))
                    .col(big_integer(Reflections::UpdatedAt))
                    // Set while the announcing push is not queued yet: when another worker
                    // may take it over. NULL once queued, and for operators'
                    // recomputations, which announce nothing.
                    .col(big_integer_null(Reflections::AnnounceAt))
                    .primary_key(Index::create().col(Reflections::UserId).col(Reflections::WeekStart))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Reflections::Table, Reflections::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_reflections_announce_at")
                    .table(Reflections::Table)
                    .col(Reflections::AnnounceAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                // Covers the weekly aggregate: one person's check-ins in a time range
                // come from adjacent index entries, never from scattered table rows.
                Index::create()
                    .name("idx_checkins_weekly")
                    .table(Checkins::Table)
                    .col(Checkins::UserId)
                    .col(Checkins::OccurredAt)
                    .col(Checkins::Mood)
                    .col(Checkins::Anxiety)
                    .col(Checkins::Comfort)
                    .col(Checkins::Completed)
                    .col(Checkins::ExerciseId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_index(Index::drop().name("idx_checkins_weekly").table(Checkins::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(Reflections::Table).to_owned()).await
    }
}
