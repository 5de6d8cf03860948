//! Couple mode, day to day:
//! - `enrollments.couple_ended_at`: when a couple enrollment became `partnered`
//!   because the link ended, so `today` can say so kindly for a while.
//! - `partner_links.notified_at`: when this person was last told that something
//!   new is waiting (the opt-in `partner_updates` notice, at most one a day).

use sea_orm_migration::{prelude::*, schema::big_integer_null};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Enrollments {
    Table,
    CoupleEndedAt,
}

#[derive(DeriveIden)]
enum PartnerLinks {
    Table,
    NotifiedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Enrollments::Table)
                    .add_column(big_integer_null(Enrollments::CoupleEndedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(PartnerLinks::Table)
                    .add_column(big_integer_null(PartnerLinks::NotifiedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(Table::alter().table(PartnerLinks::Table).drop_column(PartnerLinks::NotifiedAt).to_owned())
            .await?;
        manager
            .alter_table(Table::alter().table(Enrollments::Table).drop_column(Enrollments::CoupleEndedAt).to_owned())
            .await
    }
}
