//! Partners: an open invitation per person (its code stored only as a hash),
//! the links between two accounts, and sharing item by item (sync schema
//! version 2): `journal_entries.shared_with_partner`, and `partner_items`, the
//! partner's shared boundaries and journal entries as the recipient's device
//! receives them (a synced table of the *recipient*: its versions are the
//! recipient's, so the recipient's pull never misses one).
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

#[derive(DeriveIden)]
enum JournalEntries {
    Table,
    SharedWithPartner,
}

#[derive(DeriveIden)]
enum PartnerItems {
    Table,
    UserId,
    Id,
    Version,
    CreatedVersion,
    Kind,
    BoundaryKind,
    Text,
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
            .await?;
        // Null (a schema-1 device's write) is "not shared", as is false.
        manager
            .alter_table(
                Table::alter()
                    .table(JournalEntries::Table)
                    .add_column(boolean_null(JournalEntries::SharedWithPartner))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(PartnerItems::Table)
                    .col(uuid(PartnerItems::UserId))
                    .col(string_len(PartnerItems::Id, 64))
                    .col(big_integer(PartnerItems::Version))
                    .col(big_integer(PartnerItems::CreatedVersion))
                    .col(string_len(PartnerItems::Kind, 16))
                    .col(string_len_null(PartnerItems::BoundaryKind, 16))
                    // Ciphertext bound to the recipient, never the author's.
                    .col(text(PartnerItems::Text))
                    .primary_key(Index::create().col(PartnerItems::UserId).col(PartnerItems::Id))
                    .foreign_key(
                        ForeignKey::create()
                            .from(PartnerItems::Table, PartnerItems::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_partner_items_version")
                    .table(PartnerItems::Table)
                    .col(PartnerItems::UserId)
                    .col(PartnerItems::Version)
                    .col(PartnerItems::Id)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(PartnerItems::Table).to_owned()).await?;
        manager
            .alter_table(
                Table::alter().table(JournalEntries::Table).drop_column(JournalEntries::SharedWithPartner).to_owned(),
            )
            .await?;
        manager.drop_table(Table::drop().table(PartnerLinks::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(PartnerInvitations::Table).to_owned()).await
    }
}
