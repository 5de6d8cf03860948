//! A reminder delivery's foreign key points at the person's reminder schedule
//! instead of their account, on PostgreSQL.
//!
//! Recording a delivery checks its key: against `users`, that takes a share lock
//! on the person's row, which writes to it (and, after a checkpoint, logs the
//! whole page), 100,000 times in a dispatch of as many reminders. The claim that
//! records a delivery already holds its schedule's row locked, so checking the
//! key against `reminder_schedules` writes nothing more. Deleting an account still
//! removes its deliveries: the account's deletion cascades to its schedule, and
//! the schedule's to the deliveries. Every delivery is recorded from a schedule,
//! and schedules go only with their account, so the existing rows all pass.
//!
//! SQLite keeps the key on `users`: changing a foreign key there means rebuilding
//! the table, and the embedded default is not where 100,000 reminders go out in
//! one dispatch.
//!
//! Compatible with the previous release, which records deliveries only from
//! schedules too and deletes accounts the same way.

use sea_orm_migration::{prelude::*, sea_orm::DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

const TO_USERS: &str = "reminder_deliveries_user_id_fkey";
const TO_SCHEDULES: &str = "reminder_deliveries_schedule_fkey";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        repoint(manager, TO_SCHEDULES, "reminder_schedules (user_id)", TO_USERS).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        repoint(manager, TO_USERS, "users (id)", TO_SCHEDULES).await
    }
}

/// On PostgreSQL, replaces the deliveries' foreign key `old` by `new`, on
/// `references`, cascading deletes. Added unvalidated, then validated: the check
/// of existing rows does not hold off writes to either table meanwhile.
async fn repoint(manager: &SchemaManager<'_>, new: &str, references: &str, old: &str) -> Result<(), DbErr> {
    if manager.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    manager
        .get_connection()
        .execute_unprepared(&format!(
            "ALTER TABLE reminder_deliveries ADD CONSTRAINT {new} FOREIGN KEY (user_id) \
             REFERENCES {references} ON DELETE CASCADE NOT VALID; \
             ALTER TABLE reminder_deliveries VALIDATE CONSTRAINT {new}; \
             ALTER TABLE reminder_deliveries DROP CONSTRAINT {old}"
        ))
        .await
        .map(|_| ())
}
