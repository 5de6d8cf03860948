//! A person's open partner invitation; the code itself is never stored, only
//! its SHA-256.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "partner_invitations")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub inviter_id: Uuid,
    #[sea_orm(unique)]
    pub code_hash: String,
    pub created_at: i64,
    pub expires_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
