//! Synced records (check-ins, journal entries, boundaries), their tombstones, and
//! each user's change counter.
//!
//! Every synced row carries `version` (the change that last wrote it) and
//! `created_version` (the change that created it). Versions come from the user's
//! row in `sync_state`, bumped under that row's lock by each push, so they strictly
//! increase per user and commit in order; they are millisecond timestamps where the
//! clock allows. Private text columns hold ciphertext (see `attune_shared::crypto`).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum SyncState {
    Table,
    UserId,
    Version,
}

#[derive(DeriveIden)]
enum SyncTombstones {
    Table,
    UserId,
    TableName,
    RecordId,
    Version,
}

#[derive(DeriveIden, Clone, Copy)]
enum Checkins {
    Table,
    OccurredAt,
    Mood,
    Anxiety,
    Comfort,
    ExerciseId,
    Completed,
    Note,
    Tags,
}

#[derive(DeriveIden, Clone, Copy)]
enum JournalEntries {
    Table,
    Step,
    PromptId,
    Body,
    OccurredAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Boundaries {
    Table,
    Kind,
    Text,
    SharedWithPartner,
    Active,
}

#[derive(DeriveIden)]
enum Synced {
    UserId,
    Id,
    Version,
    CreatedVersion,
}

/// The columns every synced table shares, with its key and foreign key.
fn synced_table(table: impl IntoIden + Clone + 'static) -> TableCreateStatement {
    Table::create()
        .table(table.clone())
        .col(uuid(Synced::UserId))
        .col(string_len(Synced::Id, 64))
        .col(big_integer(Synced::Version))
        .col(big_integer(Synced::CreatedVersion))
        .primary_key(Index::create().col(Synced::UserId).col(Synced::Id))
        .foreign_key(
            ForeignKey::create()
                .from(table, Synced::UserId)
                .to(Users::Table, Users::Id)
                .on_delete(ForeignKeyAction::Cascade),
        )
        .to_owned()
}

fn version_index(table: impl IntoIden + Clone + 'static, name: &str) -> IndexCreateStatement {
    Index::create().name(name).table(table).col(Synced::UserId).col(Synced::Version).col(Synced::Id).to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(SyncState::Table)
                    .col(uuid(SyncState::UserId).primary_key())
                    .col(big_integer(SyncState::Version))
                    .foreign_key(
                        ForeignKey::create()
                            .from(SyncState::Table, SyncState::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(SyncTombstones::Table)
                    .col(uuid(SyncTombstones::UserId))
                    .col(string_len(SyncTombstones::TableName, 32))
                    .col(string_len(SyncTombstones::RecordId, 64))
                    .col(big_integer(SyncTombstones::Version))
                    .primary_key(
                        Index::create()
                            .col(SyncTombstones::UserId)
                            .col(SyncTombstones::TableName)
                            .col(SyncTombstones::RecordId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(SyncTombstones::Table, SyncTombstones::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_sync_tombstones_version")
                    .table(SyncTombstones::Table)
                    .col(SyncTombstones::Version)
                    .to_owned(),
            )
            .await?;

        let mut checkins = synced_table(Checkins::Table);
        checkins
            .col(big_integer(Checkins::OccurredAt))
            .col(big_integer(Checkins::Mood))
            .col(big_integer(Checkins::Anxiety))
            .col(big_integer(Checkins::Comfort))
            .col(string_len_null(Checkins::ExerciseId, 64))
            .col(boolean(Checkins::Completed))
            .col(text_null(Checkins::Note))
            .col(text_null(Checkins::Tags));
        manager.create_table(checkins).await?;
        manager.create_index(version_index(Checkins::Table, "idx_checkins_version")).await?;

        let mut journal = synced_table(JournalEntries::Table);
        journal
            .col(big_integer_null(JournalEntries::Step))
            .col(string_len_null(JournalEntries::PromptId, 64))
            .col(text(JournalEntries::Body))
            .col(big_integer(JournalEntries::OccurredAt));
        manager.create_table(journal).await?;
        manager.create_index(version_index(JournalEntries::Table, "idx_journal_entries_version")).await?;

        let mut boundaries = synced_table(Boundaries::Table);
        boundaries
            .col(string_len(Boundaries::Kind, 16))
            .col(text(Boundaries::Text))
            .col(boolean(Boundaries::SharedWithPartner))
            .col(boolean(Boundaries::Active));
        manager.create_table(boundaries).await?;
        manager.create_index(version_index(Boundaries::Table, "idx_boundaries_version")).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Boundaries::Table.into_iden(),
            JournalEntries::Table.into_iden(),
            Checkins::Table.into_iden(),
            SyncTombstones::Table.into_iden(),
            SyncState::Table.into_iden(),
        ] {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
