//! A synced journal entry (see `sync::tables`); read here for what partners share.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "journal_entries")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub version: i64,
    pub created_version: i64,
    pub step: Option<i64>,
    pub prompt_id: Option<String>,
    /// Ciphertext (`crypto`), never logged.
    pub body: String,
    pub occurred_at: i64,
    /// Null from schema-1 devices: not shared.
    pub shared_with_partner: Option<bool>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
