//! Partners: an open invitation per person (its code stored only as a hash) and
//! the links between two accounts.
//!
//! A link is two rows of `partner_links`, one per person, keyed by the person:
//! the primary key on `user_id` and the unique `partner_id` make "each person is
//! in at most one link" a constraint, so two accepts racing for the same person
//! cannot both commit, on either backend.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum PartnerInvitations {
    Table,
    InviterId,
    CodeHash,
    CreatedAt,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum PartnerLinks {
    Table,
    UserId,
    PartnerId,
    LinkedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(PartnerInvitations::Table)
                    // One open invitation per person: a new one replaces the old.
                    .col(uuid(PartnerInvitations::InviterId).primary_key())
                    .col(string_len(PartnerInvitations::CodeHash, 64).unique_key())
                    .col(big_integer(PartnerInvitations::CreatedAt))
                    .col(big_integer(PartnerInvitations::ExpiresAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(PartnerInvitations::Table, PartnerInvitations::InviterId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(PartnerLinks::Table)
                    .col(uuid(PartnerLinks::UserId).primary_key())
                    .col(uuid(PartnerLinks::PartnerId).unique_key())
                    .col(big_integer(PartnerLinks::LinkedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(PartnerLinks::Table, PartnerLinks::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(PartnerLinks::Table, PartnerLinks::PartnerId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(PartnerLinks::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(PartnerInvitations::Table).to_owned()).await
    }
}
