use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    #[sea_orm(unique)]
    pub email: String,
    pub password_hash: String,
    pub display_name: String,
    pub timezone: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub deleted_at: Option<i64>,
    /// ISO 3166-1 alpha-2, upper case; picks professional-help resources.
    pub country: Option<String>,
    /// When the person last proved they read mail at `email` (a verification
    /// link, or a password reset); null until then and after each change.
    pub email_verified_at: Option<i64>,
    // `descriptive_notifications` stays in the table for the previous release
    // only: the one descriptive setting is in the notification choices since
    // migration m20261201_000011, which says when the column goes.
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::session::Entity")]
    Session,
}

impl Related<super::session::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Session.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
