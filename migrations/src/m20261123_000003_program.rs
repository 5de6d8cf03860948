//! The program: each person's enrollment, the history of their step changes, and
//! the country that picks their professional-help resources.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    Country,
}

#[derive(DeriveIden)]
enum Enrollments {
    Table,
    Id,
    UserId,
    Program,
    Mode,
    Pace,
    Step,
    StepStartedAt,
    PausedAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum StepChanges {
    Table,
    Id,
    UserId,
    FromStep,
    ToStep,
    ChangedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(Table::alter().table(Users::Table).add_column(string_len_null(Users::Country, 2)).to_owned())
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Enrollments::Table)
                    .col(pk_uuid(Enrollments::Id))
                    // One enrollment per person.
                    .col(uuid_uniq(Enrollments::UserId))
                    .col(string_len(Enrollments::Program, 64))
                    .col(string_len(Enrollments::Mode, 16))
                    .col(string_len(Enrollments::Pace, 16))
                    .col(big_integer(Enrollments::Step))
                    .col(big_integer(Enrollments::StepStartedAt))
                    .col(big_integer_null(Enrollments::PausedAt))
                    .col(big_integer(Enrollments::CreatedAt))
                    .col(big_integer(Enrollments::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Enrollments::Table, Enrollments::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(StepChanges::Table)
                    .col(pk_uuid(StepChanges::Id))
                    .col(uuid(StepChanges::UserId))
                    .col(big_integer(StepChanges::FromStep))
                    .col(big_integer(StepChanges::ToStep))
                    .col(big_integer(StepChanges::ChangedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(StepChanges::Table, StepChanges::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_step_changes_user_time")
                    .table(StepChanges::Table)
                    .col(StepChanges::UserId)
                    .col(StepChanges::ChangedAt)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(StepChanges::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(Enrollments::Table).to_owned()).await?;
        manager.alter_table(Table::alter().table(Users::Table).drop_column(Users::Country).to_owned()).await?;
        Ok(())
    }
}
