//! Web Push subscriptions, and the choice between discreet and descriptive
//! notification texts.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    DescriptiveNotifications,
}

#[derive(DeriveIden)]
enum PushSubscriptions {
    Table,
    Id,
    UserId,
    Endpoint,
    P256dh,
    Auth,
    ExpiresAt,
    CreatedAt,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .add_column(boolean(Users::DescriptiveNotifications).default(false))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(PushSubscriptions::Table)
                    .col(pk_uuid(PushSubscriptions::Id))
                    .col(uuid(PushSubscriptions::UserId))
                    // A browser's endpoint is one device; posting it again updates it.
                    .col(text_uniq(PushSubscriptions::Endpoint))
                    .col(string_len(PushSubscriptions::P256dh, 100))
                    .col(string_len(PushSubscriptions::Auth, 32))
                    .col(big_integer_null(PushSubscriptions::ExpiresAt))
                    .col(big_integer(PushSubscriptions::CreatedAt))
                    .col(big_integer(PushSubscriptions::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(PushSubscriptions::Table, PushSubscriptions::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_push_subscriptions_user")
                    .table(PushSubscriptions::Table)
                    .col(PushSubscriptions::UserId)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(PushSubscriptions::Table).to_owned()).await?;
        manager
            .alter_table(Table::alter().table(Users::Table).drop_column(Users::DescriptiveNotifications).to_owned())
            .await?;
        Ok(())
    }
}
