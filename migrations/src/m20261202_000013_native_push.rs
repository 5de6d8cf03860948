//! Native push: a device is a Web Push subscription, an APNs device token or an
//! FCM registration token. `kind` says which (existing rows are `web`);
//! `environment` is an APNs token's (`production` or `sandbox`). A native
//! token is kept in `endpoint` as `apns:<token>` / `fcm:<token>`, so the one
//! unique index on `endpoint` makes "the same token again" an update for every
//! kind, and `p256dh`/`auth` (NOT NULL, and SQLite cannot relax that without
//! rebuilding the table) hold empty strings for native devices.

use sea_orm_migration::{
    prelude::*,
    schema::{string_len, string_len_null},
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum PushSubscriptions {
    Table,
    Kind,
    Environment,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite takes one column per ALTER TABLE.
        manager
            .alter_table(
                Table::alter()
                    .table(PushSubscriptions::Table)
                    .add_column(string_len(PushSubscriptions::Kind, 8).default("web"))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(PushSubscriptions::Table)
                    .add_column(string_len_null(PushSubscriptions::Environment, 16))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Native devices cannot be expressed without these columns.
        manager
            .exec_stmt(
                Query::delete()
                    .from_table(PushSubscriptions::Table)
                    .and_where(Expr::col(PushSubscriptions::Kind).ne("web"))
                    .to_owned(),
            )
            .await?;
        for column in [PushSubscriptions::Environment, PushSubscriptions::Kind] {
            manager.alter_table(Table::alter().table(PushSubscriptions::Table).drop_column(column).to_owned()).await?;
        }
        Ok(())
    }
}
