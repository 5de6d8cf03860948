//! A person's place in a program: one per person.
//!
//! `mode` and `pace` are stored through [`StoredMode`] and [`StoredPace`], the
//! entity's own enums: the domain's [`ProgramMode`] and [`Pace`] stay free of
//! sea-orm, and the conversions between the two are exhaustive matches the
//! compiler checks. An unknown stored value is a `DbErr::Type` when the row is
//! read, never a default.

use sea_orm::entity::prelude::*;

use crate::{content::ProgramMode, domain::pacing::Pace};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "enrollments")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    #[sea_orm(unique)]
    pub user_id: Uuid,
    pub program: String,
    pub mode: StoredMode,
    pub pace: StoredPace,
    pub step: i64,
    pub step_started_at: i64,
    pub paused_at: Option<i64>,
    /// When this enrollment left couple mode because the link ended (it is
    /// `partnered` since); cleared when the mode is chosen again.
    pub couple_ended_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// [`ProgramMode`] as the `mode` column stores it (`VARCHAR(16)`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum StoredMode {
    #[sea_orm(string_value = "solo")]
    Solo,
    #[sea_orm(string_value = "partnered")]
    Partnered,
    #[sea_orm(string_value = "couple")]
    Couple,
}

/// [`Pace`] as the `pace` column stores it (`VARCHAR(16)`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum StoredPace {
    #[sea_orm(string_value = "gentle")]
    Gentle,
    #[sea_orm(string_value = "steady")]
    Steady,
    #[sea_orm(string_value = "committed")]
    Committed,
}

impl From<ProgramMode> for StoredMode {
    fn from(mode: ProgramMode) -> Self {
        match mode {
            ProgramMode::Solo => Self::Solo,
            ProgramMode::Partnered => Self::Partnered,
            ProgramMode::Couple => Self::Couple,
        }
    }
}

impl From<StoredMode> for ProgramMode {
    fn from(mode: StoredMode) -> Self {
        match mode {
            StoredMode::Solo => Self::Solo,
            StoredMode::Partnered => Self::Partnered,
            StoredMode::Couple => Self::Couple,
        }
    }
}

impl From<Pace> for StoredPace {
    fn from(pace: Pace) -> Self {
        match pace {
            Pace::Gentle => Self::Gentle,
            Pace::Steady => Self::Steady,
            Pace::Committed => Self::Committed,
        }
    }
}

impl From<StoredPace> for Pace {
    fn from(pace: StoredPace) -> Self {
        match pace {
            StoredPace::Gentle => Self::Gentle,
            StoredPace::Steady => Self::Steady,
            StoredPace::Committed => Self::Committed,
        }
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

#[cfg(test)]
mod tests {
    use sea_orm::{ActiveEnum, Iterable};

    use super::*;

    #[test]
    fn stored_values_are_the_ones_the_api_speaks() {
        for pace in StoredPace::iter() {
            assert_eq!(pace.to_value(), Pace::from(pace).as_str());
        }
        for mode in StoredMode::iter() {
            let json = serde_json::to_value(ProgramMode::from(mode)).unwrap();
            assert_eq!(Some(mode.to_value().as_str()), json.as_str());
        }
    }

    #[test]
    fn an_unknown_stored_value_is_an_error() {
        assert!(StoredMode::try_from_value(&"duo".to_owned()).is_err());
        assert!(StoredPace::try_from_value(&"fast".to_owned()).is_err());
    }
}
