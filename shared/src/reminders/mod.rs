//! Paced reminders: each person's reminder plan (days, window) and next slot, the
//! dispatcher's claim of due slots, and what a reminder says. On/off, quiet
//! hours, the pause and the texts are the person's notification choices
//! (`notifications::choices`), shared with every notification. When slots fall
//! is decided by the pure rules in `domain::reminders`; this module loads their
//! inputs and stores the result. The claim is in `claim`.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use sea_orm::{
    ActiveEnum,
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, FromQueryResult, QueryFilter, QuerySelect,
    TransactionSession, TransactionTrait,
    sea_query::{Alias, Expr, ExprTrait, OnConflict, Query},
};
use uuid::Uuid;

use crate::{
    Clock,
    domain::{
        ValidationErrors,
        notification_choices::NotificationChoices,
        pacing::Pace,
        reminders::{
            ReminderPlan, ReminderSettings, ReminderSettingsInput, Spacing, next_slot, recompute_after, reminder_text,
        },
    },
    enrollment::today,
    entities::{
        enrollment::{self, Entity as Enrollment, StoredPace},
        notification_setting::{self, Entity as NotificationSetting},
        reminder_delivery::{self, Entity as ReminderDelivery},
        reminder_schedule::{self, Entity as ReminderSchedule},
        user::{self, Entity as User},
    },
    notifications::choices::{self, Unreadable},
    person_cache::PersonChanges,
    push::{PushKind, PushMessage, PushPayload, Topic, Urgency},
};

mod claim;
mod sql;

pub use claim::{MAX_CLAIM_BATCH, delivery_id};

/// Every reminder shares one topic, so a newer one replaces an undelivered older one.
pub const REMINDER_TOPIC: &str = "reminder";
/// A reminder still worth showing a few hours late, not the next day.
pub const REMINDER_TTL_SECS: u32 = 4 * 60 * 60;
/// Where a tap on a reminder leads.
const REMINDER_URL: &str = "/today";

#[derive(Debug, thiserror::Error)]
pub enum ReminderError {
    #[error("{0}")]
    Validation(ValidationErrors),
    #[error("no such reminder")]
    NotFound,
    /// The stored settings no longer parse (logged and counted already); nothing
    /// is sent until the person saves new ones.
    #[error("{0}")]
    Unreadable(#[from] Unreadable),
    #[error("database error: {0}")]
    Database(#[from] DbErr),
}

/// The settings with the next reminder they give.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReminderView {
    pub settings: ReminderSettings,
    pub next_reminder_at: Option<DateTime<Utc>>,
}

/// A reminder claimed by the dispatcher and recorded as sent: its pushes must be
/// queued before the claim's transaction commits (see [`Reminders::claim_due`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueReminder {
    pub delivery_id: Uuid,
    pub user_id: Uuid,
    pub slot_at: i64,
    /// The person's push subscriptions: one push each.
    pub devices: Vec<Uuid>,
    /// Whether the text may name today's exercise: the person's one
    /// `descriptive` choice (`NotificationChoices::descriptive`).
    pub descriptive: bool,
}

#[derive(Clone)]
pub struct Reminders {
    db: DatabaseConnection,
    clock: Arc<dyn Clock>,
    /// Told when the notification choices change (`descriptive` shows on the profile).
    changes: PersonChanges,
}

impl std::fmt::Debug for Reminders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reminders").finish_non_exhaustive()
    }
}

/// What the slot rules need besides the settings: the pace of an active (not
/// paused) enrollment, and the zone. `None`: no reminders.
#[derive(Debug, Clone, Copy)]
struct Pacing {
    pace: Pace,
    tz: Tz,
}

/// What [`Reminders::pacing_of`] reads of a person: a row of `users` with their
/// enrollment and notification settings, if any.
#[derive(Debug, FromQueryResult)]
struct PacingRow {
    timezone: String,
    deleted_at: Option<i64>,
    pace: Option<String>,
    paused_at: Option<i64>,
    /// The stored `notification_settings.settings`.
    choices: Option<String>,
}

/// The pace of an active enrollment of an account still there. A stored pace
/// this release does not know sends nothing, logged and counted like other
/// unreadable settings, rather than failing a whole claim.
fn active_pace(user_id: Uuid, pace: Option<&String>, paused_at: Option<i64>, deleted: bool) -> Option<Pace> {
    if deleted || paused_at.is_some() {
        return None;
    }
    let stored = StoredPace::try_from_value(pace?).map_err(|_| choices::unreadable(user_id, "enrollment pace")).ok()?;
    Some(stored.into())
}

/// The stored plan: the defaults when there is no schedule yet; an error
/// (logged and counted) when the stored one no longer parses.
fn plan_of(user_id: Uuid, row: Option<&reminder_schedule::Model>) -> Result<ReminderPlan, Unreadable> {
    row.map_or_else(
        || Ok(ReminderPlan::default()),
        |row| serde_json::from_str(&row.settings).map_err(|_| choices::unreadable(user_id, "reminder plan")),
    )
}

fn ms_to_time(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

fn spacing(unanswered: i32) -> Spacing {
    Spacing { unanswered: u32::try_from(unanswered).unwrap_or(0) }
}

fn plan_json(plan: &ReminderPlan) -> Result<String, DbErr> {
    crate::db::to_json_text(plan)
}

/// What [`Reminders::store`] changes besides the next slot.
#[derive(Debug, Default)]
struct Change {
    plan: Option<ReminderPlan>,
    choices: Option<NotificationChoices>,
    unanswered: Option<i32>,
}

impl Reminders {
    /// `changes`: [`PersonChanges::none`] where no request is served from a cache.
    pub fn new(db: DatabaseConnection, clock: Arc<dyn Clock>, changes: PersonChanges) -> Self {
        Self { db, clock, changes }
    }

    /// The person's settings (the defaults when none are stored) and next reminder.
    pub async fn settings(&self, user_id: Uuid) -> Result<ReminderView, ReminderError> {
        let row = ReminderSchedule::find_by_id(user_id).one(&self.db).await?;
        let choices = choices::load(&self.db, user_id).await??;
        let plan = plan_of(user_id, row.as_ref())?;
        let next_reminder_at = match row {
            Some(row) => row.next_slot_at.map(ms_to_time),
            None => self.recompute(&self.db, user_id).await?,
        };
        Ok(ReminderView { settings: ReminderSettings::from_parts(&plan, &choices), next_reminder_at })
    }

    /// Replaces the reminder plan, and whichever of the notification choices the
    /// request names (`enabled`, `quiet_hours`, `descriptive`, `paused_until`,
    /// the deprecated aliases); recomputes the next reminder at once. Choices
    /// that no longer parse are replaced only by a request that names all four.
    #[tracing::instrument(skip_all, fields(%user_id))]
    pub async fn put_settings(
        &self,
        user_id: Uuid,
        input: ReminderSettingsInput,
    ) -> Result<ReminderView, ReminderError> {
        let names_every_choice = input.enabled.is_some()
            && input.quiet_hours.is_some()
            && input.descriptive.is_some()
            && input.paused_until.is_some();
        let current = match choices::load(&self.db, user_id).await? {
            Ok(current) => current,
            Err(_) if names_every_choice => NotificationChoices::default(),
            Err(unreadable) => return Err(unreadable.into()),
        };
        let settings = ReminderSettings::parse_over(input, &current).map_err(ReminderError::Validation)?;
        let updated = settings.onto(&current);
        let choices = (updated != current || names_every_choice).then_some(updated);
        let changes_choices = choices.is_some();
        let next_reminder_at =
            self.store(&self.db, user_id, Change { plan: Some(settings.plan()), choices, ..Change::default() }).await?;
        if changes_choices {
            self.changes.changed(user_id).await;
        }
        Ok(ReminderView { settings, next_reminder_at })
    }

    /// Replaces the person's notification choices and recomputes the next
    /// reminder (on/off, quiet hours and the pause move it), in one transaction.
    #[tracing::instrument(skip_all, fields(%user_id))]
    pub async fn put_choices(&self, user_id: Uuid, choices: NotificationChoices) -> Result<(), DbErr> {
        self.store(&self.db, user_id, Change { choices: Some(choices), ..Change::default() }).await?;
        self.changes.changed(user_id).await;
        Ok(())
    }

    /// Recomputes the next reminder from the stored settings, the enrollment's pace
    /// and pause, and the time zone, on `conn`: the step that follows any change
    /// of them, inside that change's transaction.
    #[tracing::instrument(skip_all, fields(%user_id))]
    pub async fn recompute<C>(&self, conn: &C, user_id: Uuid) -> Result<Option<DateTime<Utc>>, DbErr>
    where
        C: ConnectionTrait + TransactionTrait,
    {
        self.store(conn, user_id, Change::default()).await
    }

    pub(crate) fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// The person opened a reminder: it was answered, so spacing returns to
    /// normal. The mark and the new spacing are one transaction.
    #[tracing::instrument(skip_all, fields(%user_id, %delivery_id))]
    pub async fn opened(&self, user_id: Uuid, delivery_id: Uuid) -> Result<(), ReminderError> {
        let txn = crate::db::begin(&self.db).await?;
        let delivery = ReminderDelivery::find_by_id(delivery_id)
            .filter(reminder_delivery::Column::UserId.eq(user_id))
            .one(&txn)
            .await?
            .ok_or(ReminderError::NotFound)?;
        if delivery.opened_at.is_none() {
            ReminderDelivery::update_many()
                .col_expr(reminder_delivery::Column::OpenedAt, Expr::value(self.clock.now_ms()))
                .filter(reminder_delivery::Column::Id.eq(delivery_id))
                .exec(&txn)
                .await?;
        }
        self.store(&txn, user_id, Change { unanswered: Some(0), ..Change::default() }).await?;
        txn.commit().await?;
        Ok(())
    }

    /// The person checked in, which answers any reminder: spacing returns to
    /// normal at once, rather than at the next claim. Nothing to do (one read)
    /// without a schedule or with nothing unanswered. On `conn`: a step of the
    /// use case `Services::push_changes`, in the push's transaction.
    #[tracing::instrument(skip_all, fields(%user_id))]
    pub async fn checked_in<C>(&self, conn: &C, user_id: Uuid) -> Result<(), DbErr>
    where
        C: ConnectionTrait + TransactionTrait,
    {
        let unanswered = ReminderSchedule::find_by_id(user_id)
            .select_only()
            .column(reminder_schedule::Column::Unanswered)
            .into_tuple::<i32>()
            .one(conn)
            .await?;
        if unanswered.is_some_and(|n| n > 0) {
            self.store(conn, user_id, Change { unanswered: Some(0), ..Change::default() }).await?;
        }
        Ok(())
    }

    /// Writes the plan, the choices and/or the unanswered count (when given) and
    /// the next slot they give, under the schedule row's lock so a dispatcher's
    /// move is not lost. Stored settings that no longer parse give no next slot
    /// (fail closed) and are kept as they are for the person to replace. Within a
    /// caller's transaction, `begin` is a savepoint.
    async fn store<C>(&self, conn: &C, user_id: Uuid, change: Change) -> Result<Option<DateTime<Utc>>, DbErr>
    where
        C: ConnectionTrait + TransactionTrait,
    {
        let txn = crate::db::begin(conn).await?;
        let row = ReminderSchedule::find_by_id(user_id).lock_exclusive().one(&txn).await?;
        if let Some(choices) = &change.choices {
            choices::save(&txn, user_id, choices, self.clock.now_ms()).await?;
        }
        let plan = match change.plan.clone() {
            Some(plan) => Ok(plan),
            None => plan_of(user_id, row.as_ref()),
        };
        let unanswered = change.unanswered.or(row.as_ref().map(|r| r.unanswered)).unwrap_or(0);
        let last_sent_at = row.as_ref().and_then(|r| r.last_sent_at);
        let now = self.clock.now();
        let next = match (&plan, self.pacing_of(&txn, user_id, change.choices.as_ref()).await?) {
            (Ok(plan), Some((pacing, choices))) => {
                let Pacing { pace, tz } = pacing;
                let settings = ReminderSettings::from_parts(plan, &choices);
                let after = recompute_after(now, last_sent_at.map(ms_to_time), tz);
                next_slot(&settings, pace, tz, after, spacing(unanswered))
            }
            _ => None,
        };
        let untouched = change.plan.is_none() || plan.as_ref().is_ok_and(|plan| *plan == ReminderPlan::default());
        if row.is_none() && next.is_none() && unanswered == 0 && untouched {
            // Nothing worth storing: the default plan, and nothing due.
            txn.commit().await?;
            return Ok(None);
        }
        let settings = match (&change.plan, &row) {
            (Some(plan), _) => plan_json(plan)?,
            (None, Some(row)) => row.settings.clone(),
            (None, None) => plan_json(&ReminderPlan::default())?,
        };
        let model = reminder_schedule::ActiveModel {
            user_id: Set(user_id),
            settings: Set(settings),
            next_slot_at: Set(next.map(|t| t.timestamp_millis())),
            unanswered: Set(unanswered),
            last_sent_at: Set(last_sent_at),
            updated_at: Set(now.timestamp_millis()),
        };
        ReminderSchedule::insert(model)
            .on_conflict(
                OnConflict::column(reminder_schedule::Column::UserId)
                    .update_columns([
                        reminder_schedule::Column::Settings,
                        reminder_schedule::Column::NextSlotAt,
                        reminder_schedule::Column::Unanswered,
                        reminder_schedule::Column::UpdatedAt,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(&txn)
            .await?;
        txn.commit().await?;
        Ok(next)
    }

    /// The pace and zone reminders follow, with the person's choices (`given`, or
    /// the stored ones): `None` when no reminder is due (no active enrollment,
    /// a deleted account) or the stored choices or zone no longer parse.
    async fn pacing_of(
        &self,
        conn: &impl ConnectionTrait,
        user_id: Uuid,
        given: Option<&NotificationChoices>,
    ) -> Result<Option<(Pacing, NotificationChoices)>, DbErr> {
        let stmt = Query::select()
            .column((User, user::Column::Timezone))
            .column((User, user::Column::DeletedAt))
            .column((Enrollment, enrollment::Column::Pace))
            .column((Enrollment, enrollment::Column::PausedAt))
            .expr_as(Expr::col((NotificationSetting, notification_setting::Column::Settings)), Alias::new("choices"))
            .from(User)
            .left_join(Enrollment, Expr::col((Enrollment, enrollment::Column::UserId)).equals((User, user::Column::Id)))
            .left_join(
                NotificationSetting,
                Expr::col((NotificationSetting, notification_setting::Column::UserId)).equals((User, user::Column::Id)),
            )
            .and_where(Expr::col((User, user::Column::Id)).eq(user_id))
            .to_owned();
        let Some(row) = PacingRow::find_by_statement(conn.get_database_backend().build(&stmt)).one(conn).await? else {
            return Ok(None);
        };
        let Some(pace) = active_pace(user_id, row.pace.as_ref(), row.paused_at, row.deleted_at.is_some()) else {
            return Ok(None);
        };
        let (timezone, stored) = (row.timezone, row.choices);
        let read = match given {
            Some(choices) => choices::read(user_id, None, &timezone).map(|p| (p.tz, choices.clone())),
            None => choices::read(user_id, stored.as_deref(), &timezone).map(|p| (p.tz, p.choices)),
        };
        Ok(read.ok().map(|(tz, choices)| (Pacing { pace, tz }, choices)))
    }

    /// The push message announcing `due`: discreet unless the person's reminder
    /// settings chose descriptive texts (see [`DueReminder::descriptive`]), which
    /// then name today's suggested exercise. A discreet one reads nothing from the
    /// database.
    ///
    /// Read on `conn`: the claim's transaction, which on SQLite holds the only
    /// connection until the pushes are queued.
    pub async fn message(&self, conn: &impl ConnectionTrait, due: &DueReminder) -> PushMessage {
        let suggestion = if due.descriptive { self.todays_suggestion(conn, due.user_id).await } else { None };
        let (title, body) = reminder_text(due.descriptive, suggestion.as_deref(), due.slot_at.unsigned_abs());
        let payload = PushPayload {
            r#type: PushKind::Reminder,
            title,
            body,
            url: REMINDER_URL.into(),
            delivery_id: Some(due.delivery_id),
        };
        let mut message = PushMessage::new(payload, REMINDER_TTL_SECS, Urgency::Low);
        message.topic = Topic::parse(REMINDER_TOPIC).ok();
        message
    }

    async fn todays_suggestion(&self, conn: &impl ConnectionTrait, user_id: Uuid) -> Option<String> {
        let user = User::find_by_id(user_id).one(conn).await.ok().flatten()?;
        let today = today(conn, &user, self.clock.now()).await.ok()?;
        today.plan.exercise.map(|(_, exercise)| exercise.title.clone())
    }
}
