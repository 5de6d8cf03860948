//! What the program's rules need of a person's check-ins, kept up to date as
//! check-ins are written (`attune_shared::domain::history`), so `today`,
//! advancing and descriptive reminders cost the same after ten check-ins or ten
//! thousand:
//! - `checkin_exercise_tallies`: per person and exercise, completed check-ins,
//!   how many of them were comfortable, and the latest;
//! - `checkin_distress`: per person, distress check-ins and the latest;
//! - `checkin_session_slots`: per person and quarter hour, completed check-ins
//!   with an exercise (this week's sessions are the local days among them).
//!
//! Two partial indexes on `checkins` find a new latest completion or distress
//! signal in one index step when the latest one is edited or deleted. Each
//! covers its query (the condition's columns included), so SQLite picks it even
//! before it has statistics, over the covering `idx_checkins_weekly`.
//!
//! Existing people's summaries are computed from their check-ins here.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden, Clone, Copy)]
enum Checkins {
    Table,
    UserId,
    OccurredAt,
    Anxiety,
    Comfort,
    ExerciseId,
    Completed,
}

#[derive(DeriveIden, Clone, Copy)]
enum CheckinExerciseTallies {
    Table,
    UserId,
    ExerciseId,
    Completions,
    Comfortable,
    LastCompletedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum CheckinDistress {
    Table,
    UserId,
    Checkins,
    LastAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum CheckinSessionSlots {
    Table,
    UserId,
    SlotAt,
    Completions,
}

fn owned_by_user(
    table: impl IntoIden + Clone + 'static,
    user_id: impl IntoIden + Clone + 'static,
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from(table, user_id)
        .to(Users::Table, Users::Id)
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

/// Filling the tables from existing check-ins: the same sums the store keeps.
const BACKFILL: [&str; 3] = [
    "INSERT INTO checkin_exercise_tallies (user_id, exercise_id, completions, comfortable, last_completed_at) \
     SELECT user_id, exercise_id, COUNT(*), SUM(CASE WHEN comfort >= 3 THEN 1 ELSE 0 END), MAX(occurred_at) \
     FROM checkins WHERE completed = TRUE AND exercise_id IS NOT NULL GROUP BY user_id, exercise_id",
    "INSERT INTO checkin_distress (user_id, checkins, last_at) \
     SELECT user_id, COUNT(*), MAX(occurred_at) FROM checkins WHERE anxiety >= 8 OR comfort <= 1 GROUP BY user_id",
    "INSERT INTO checkin_session_slots (user_id, slot_at, completions) \
     SELECT user_id, occurred_at - ((occurred_at % 900000) + 900000) % 900000, COUNT(*) \
     FROM checkins WHERE completed = TRUE AND exercise_id IS NOT NULL \
     GROUP BY user_id, occurred_at - ((occurred_at % 900000) + 900000) % 900000",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(CheckinExerciseTallies::Table)
                    .col(uuid(CheckinExerciseTallies::UserId))
                    .col(string_len(CheckinExerciseTallies::ExerciseId, 64))
                    .col(big_integer(CheckinExerciseTallies::Completions))
                    .col(big_integer(CheckinExerciseTallies::Comfortable))
                    .col(big_integer(CheckinExerciseTallies::LastCompletedAt))
                    .primary_key(
                        Index::create().col(CheckinExerciseTallies::UserId).col(CheckinExerciseTallies::ExerciseId),
                    )
                    .foreign_key(&mut owned_by_user(CheckinExerciseTallies::Table, CheckinExerciseTallies::UserId))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(CheckinDistress::Table)
                    .col(uuid(CheckinDistress::UserId).primary_key())
                    .col(big_integer(CheckinDistress::Checkins))
                    .col(big_integer(CheckinDistress::LastAt))
                    .foreign_key(&mut owned_by_user(CheckinDistress::Table, CheckinDistress::UserId))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(CheckinSessionSlots::Table)
                    .col(uuid(CheckinSessionSlots::UserId))
                    .col(big_integer(CheckinSessionSlots::SlotAt))
                    .col(big_integer(CheckinSessionSlots::Completions))
                    .primary_key(Index::create().col(CheckinSessionSlots::UserId).col(CheckinSessionSlots::SlotAt))
                    .foreign_key(&mut owned_by_user(CheckinSessionSlots::Table, CheckinSessionSlots::UserId))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_checkins_completions")
                    .table(Checkins::Table)
                    .col(Checkins::UserId)
                    .col(Checkins::ExerciseId)
                    .col(Checkins::Completed)
                    .col(Checkins::OccurredAt)
                    // Repeated literally by `attune_shared::sync::sql::latest_completion`.
                    .and_where(Expr::cust("completed = TRUE"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_checkins_distress")
                    .table(Checkins::Table)
                    .col(Checkins::UserId)
                    .col(Checkins::OccurredAt)
                    .col(Checkins::Anxiety)
                    .col(Checkins::Comfort)
                    // `domain::pacing::DISTRESS_*`, repeated literally by
                    // `attune_shared::sync::sql::latest_distress`.
                    .and_where(Expr::cust("anxiety >= 8 OR comfort <= 1"))
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        for statement in BACKFILL {
            db.execute_unprepared(statement).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for index in ["idx_checkins_distress", "idx_checkins_completions"] {
            manager.drop_index(Index::drop().name(index).table(Checkins::Table).to_owned()).await?;
        }
        for table in [
            CheckinSessionSlots::Table.into_iden(),
            CheckinDistress::Table.into_iden(),
            CheckinExerciseTallies::Table.into_iden(),
        ] {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
