//! A person's weekly reflection: one per (user, local week).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "reflections")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: Uuid,
    /// The week's Monday, `YYYY-MM-DD`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub week_start: String,
    /// The `domain::reflection::Reflection` as JSON.
    pub body: String,
    pub created_at: i64,
    pub updated_at: i64,
    /// Set while the announcing push is not queued: when it is due (the end of
    /// the person's quiet hours) or another worker may take it over (epoch ms).
    /// NULL once queued, or when none is to be sent (notices off, or paused).
    pub announce_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
