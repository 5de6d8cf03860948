//! Per person and exercise: completed check-ins, the comfortable ones among
//! them, and the latest (`domain::history::ExerciseTally`). A row exists while
//! `completions > 0`.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "checkin_exercise_tallies")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub exercise_id: String,
    pub completions: i64,
    pub comfortable: i64,
    pub last_completed_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
