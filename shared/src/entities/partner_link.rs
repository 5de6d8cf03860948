//! One side of a link between two partners: each link is two rows, one per
//! person, so "at most one link per person" is the primary key and the unique
//! `partner_id`.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "partner_links")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: Uuid,
    #[sea_orm(unique)]
    pub partner_id: Uuid,
    pub linked_at: i64,
    /// When this person was last told something new is waiting (the opt-in
    /// `partner_updates` notice, at most one a day).
    pub notified_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
