//! Where a person's notification choices are stored and read, and the one
//! question every sender asks before it queues a notification: [`decide`].
//!
//! Every kind of notification the worker sends (reminders, reflection notices,
//! and any kind added later) calls [`decide`] (or [`StoredChoices::decide`] for a
//! batch) with what it loaded, and sends only on [`Delivery::Now`]. Test pushes
//! are the one exception: the person asks for them that very moment.
//!
//! Stored choices fail closed: a row that no longer parses (or a profile zone
//! that no longer names a zone) sends that person nothing, is logged as an error
//! naming only the user id, and counts in [`INVALID_SETTINGS_METRIC`]. It is never
//! read as the defaults: the defaults may be exactly what the person turned off.

use std::{collections::HashMap, sync::Arc};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QuerySelect,
    sea_query::OnConflict,
};
use uuid::Uuid;

use crate::{
    db::{UUID_BIND_BYTES, rows_per_statement},
    domain::{
        ValidationErrors,
        notification_choices::{Delivery, NotificationChoices, NotificationChoicesInput, NotificationKind},
    },
    entities::{
        notification_setting::{self, Entity as NotificationSetting},
        user::{self, Entity as User},
    },
    person_cache::FreshCache,
    reminders::Reminders,
};

/// Counts every time stored choices could not be read (and so nothing was sent).
pub const INVALID_SETTINGS_METRIC: &str = "attune_notification_settings_invalid_total";

/// Stored choices that no longer parse. Already logged and counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the stored notification settings cannot be read")]
pub struct Unreadable;

/// A person's readable choices and the zone their quiet hours are in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonChoices {
    pub choices: NotificationChoices,
    pub tz: Tz,
}

/// What is stored for one person, as text: their choices row (`None` when they
/// never changed the defaults) and their profile's zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredChoices {
    pub settings: Option<String>,
    pub timezone: String,
}

impl StoredChoices {
    /// Reads the choices and zone; see [`read`].
    pub fn read(&self, user_id: Uuid) -> Result<PersonChoices, Unreadable> {
        read(user_id, self.settings.as_deref(), &self.timezone)
    }

    /// See [`decide`].
    pub fn decide(&self, user_id: Uuid, kind: NotificationKind, now: DateTime<Utc>) -> Delivery {
        decide(user_id, self.settings.as_deref(), &self.timezone, kind, now)
    }
}

/// Whether a notification of `kind` falling due at `now` goes out now, at the
/// end of quiet hours, or never, from what is stored for the person: the text
/// of their choices row (`None`: never changed, so the defaults) and their
/// profile's zone. Unreadable choices: never (logged and counted once here).
pub fn decide(
    user_id: Uuid,
    settings: Option<&str>,
    timezone: &str,
    kind: NotificationKind,
    now: DateTime<Utc>,
) -> Delivery {
    match read(user_id, settings, timezone) {
        Ok(PersonChoices { choices, tz }) => choices.decide(kind, tz, now),
        Err(Unreadable) => Delivery::Never,
    }
}

/// The person's choices and zone. A row or zone that does not parse is an
/// error, logged with the user id only (the text may hold anything) and counted.
pub fn read(user_id: Uuid, settings: Option<&str>, timezone: &str) -> Result<PersonChoices, Unreadable> {
    let choices = parse_choices(user_id, settings)?;
    let tz = timezone.parse::<Tz>().map_err(|_| unreadable(user_id, "time zone"))?;
    Ok(PersonChoices { choices, tz })
}

/// The choices alone (the API shows them without needing the zone).
pub fn parse_choices(user_id: Uuid, settings: Option<&str>) -> Result<NotificationChoices, Unreadable> {
    match settings {
        None => Ok(NotificationChoices::default()),
        Some(text) => serde_json::from_str(text).map_err(|_| unreadable(user_id, "choices")),
    }
}

/// Logs and counts an unreadable part of someone's stored settings.
pub(crate) fn unreadable(user_id: Uuid, part: &'static str) -> Unreadable {
    tracing::error!(%user_id, part, "stored notification settings do not parse; sending this person nothing");
    metrics::counter!(INVALID_SETTINGS_METRIC).increment(1);
    Unreadable
}

/// Each person's stored choices, for a sender's batch: one statement per
/// [`rows_per_statement`] people. People no longer there are left out.
pub async fn stored_for(conn: &impl ConnectionTrait, users: &[Uuid]) -> Result<HashMap<Uuid, StoredChoices>, DbErr> {
    let mut stored = HashMap::with_capacity(users.len());
    for chunk in users.chunks(rows_per_statement(UUID_BIND_BYTES)) {
        let zones = User::find()
            .select_only()
            .columns([user::Column::Id, user::Column::Timezone])
            .filter(user::Column::Id.is_in(chunk.iter().copied()))
            .into_tuple::<(Uuid, String)>()
            .all(conn)
            .await?;
        let mut rows: HashMap<Uuid, String> = NotificationSetting::find()
            .filter(notification_setting::Column::UserId.is_in(chunk.iter().copied()))
            .all(conn)
            .await?
            .into_iter()
            .map(|row| (row.user_id, row.settings))
            .collect();
        for (user_id, timezone) in zones {
            stored.insert(user_id, StoredChoices { settings: rows.remove(&user_id), timezone });
        }
    }
    Ok(stored)
}

/// The text of the person's choices row, if they have one.
pub async fn stored_text(conn: &impl ConnectionTrait, user_id: Uuid) -> Result<Option<String>, DbErr> {
    Ok(NotificationSetting::find_by_id(user_id).one(conn).await?.map(|row| row.settings))
}

/// The person's choices: the defaults when they never changed them.
pub async fn load(
    conn: &impl ConnectionTrait,
    user_id: Uuid,
) -> Result<Result<NotificationChoices, Unreadable>, DbErr> {
    Ok(parse_choices(user_id, stored_text(conn, user_id).await?.as_deref()))
}

/// Stores the person's choices, replacing any.
pub async fn save(
    conn: &impl ConnectionTrait,
    user_id: Uuid,
    choices: &NotificationChoices,
    now_ms: i64,
) -> Result<(), DbErr> {
    let settings = crate::db::to_json_text(choices)?;
    let model =
        notification_setting::ActiveModel { user_id: Set(user_id), settings: Set(settings), updated_at: Set(now_ms) };
    NotificationSetting::insert(model)
        .on_conflict(
            OnConflict::column(notification_setting::Column::UserId)
                .update_columns([notification_setting::Column::Settings, notification_setting::Column::UpdatedAt])
                .to_owned(),
        )
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum ChoicesError {
    #[error("{0}")]
    Validation(ValidationErrors),
    /// The stored choices no longer parse (logged and counted already); nothing
    /// is sent until the person saves new ones.
    #[error("{0}")]
    Unreadable(#[from] Unreadable),
    #[error("database error: {0}")]
    Database(#[from] DbErr),
}

/// The person's notification choices as the API offers them
/// (`/v1/notifications/settings`, and the deprecated aliases on the profile and
/// the reminder settings).
#[derive(Clone)]
pub struct NotificationSettings {
    db: DatabaseConnection,
    reminders: Reminders,
    /// `descriptive` by person, read within the last second: every profile
    /// shows it. A change of the choices forgets it (`Reminders::store`'s callers).
    descriptive: Arc<FreshCache<bool>>,
}

impl std::fmt::Debug for NotificationSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotificationSettings").finish_non_exhaustive()
    }
}

impl NotificationSettings {
    pub fn new(db: DatabaseConnection, reminders: Reminders, descriptive: Arc<FreshCache<bool>>) -> Self {
        Self { db, reminders, descriptive }
    }

    /// The person's choices (the defaults until changed).
    pub async fn get(&self, user_id: Uuid) -> Result<NotificationChoices, ChoicesError> {
        Ok(load(&self.db, user_id).await??)
    }

    /// Replaces the choices (a whole set; every problem named) and moves the
    /// next reminder to match, in one transaction. This also replaces choices
    /// that no longer parse.
    #[tracing::instrument(skip_all, fields(%user_id))]
    pub async fn put(
        &self,
        user_id: Uuid,
        input: NotificationChoicesInput,
    ) -> Result<NotificationChoices, ChoicesError> {
        // What is left out keeps its current value; unreadable choices are replaced whole.
        let current = load(&self.db, user_id).await?.unwrap_or_default();
        let choices = NotificationChoices::parse(input, &current).map_err(ChoicesError::Validation)?;
        self.reminders.put_choices(user_id, choices.clone()).await?;
        Ok(choices)
    }

    /// Whether texts may say what they are about; discreet (`false`) while the
    /// stored choices cannot be read. For showing on the profile: up to a second
    /// old when changed on another replica (`person_cache`); senders read the
    /// stored choices themselves.
    pub async fn descriptive(&self, user_id: Uuid) -> Result<bool, DbErr> {
        if let Some(descriptive) = self.descriptive.get(user_id) {
            return Ok(descriptive);
        }
        let start = self.descriptive.begin_read();
        let descriptive = load(&self.db, user_id).await?.is_ok_and(|choices| choices.descriptive);
        self.descriptive.keep(start, user_id, user_id, descriptive);
        Ok(descriptive)
    }

    /// Sets `descriptive` alone (the profile's deprecated
    /// `descriptive_notifications`), on `conn`: a step of the use case
    /// `Services::update_profile`. Choices that no longer parse refuse it, and
    /// the whole profile change with it.
    #[tracing::instrument(skip_all, fields(%user_id))]
    pub async fn set_descriptive(
        &self,
        conn: &impl ConnectionTrait,
        user_id: Uuid,
        descriptive: bool,
    ) -> Result<(), ChoicesError> {
        let current = load(conn, user_id).await??;
        if current.descriptive != descriptive {
            save(conn, user_id, &NotificationChoices { descriptive, ..current }, self.reminders.now_ms()).await?;
        }
        Ok(())
    }
}
