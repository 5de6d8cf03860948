//! Paced reminders: each person's settings and next slot, the dispatcher's claim of
//! due slots, and what a reminder says. When slots fall is decided by the pure
//! rules in `domain::reminders`; this module loads their inputs and stores the result.

use std::{collections::HashMap, sync::Arc};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr, EntityTrait, QueryFilter,
    QuerySelect, TransactionTrait,
    sea_query::{Alias, Expr, ExprTrait, LockBehavior, LockType, OnConflict, Order, Query},
};
use uuid::Uuid;

use crate::{
    Clock,
    domain::{
        ValidationErrors,
        pacing::Pace,
        reminders::{ReminderSettings, ReminderSettingsInput, Spacing, next_slot, recompute_after, reminder_text},
    },
    enrollment::Enrollments,
    entities::{
        reminder_delivery::{self, Entity as ReminderDelivery},
        reminder_schedule::{self, Entity as ReminderSchedule},
        user::Entity as User,
    },
    push::{PushKind, PushMessage, PushPayload, Topic, Urgency},
};

/// Every reminder shares one topic, so a newer one replaces an undelivered older one.
pub const REMINDER_TOPIC: &str = "reminder";
/// A reminder still worth showing a few hours late, not the next day.
pub const REMINDER_TTL_SECS: u32 = 4 * 60 * 60;
/// Where a tap on a reminder leads.
const REMINDER_URL: &str = "/today";
/// How long a claimed reminder may wait for its pushes to be queued before
/// another dispatch run takes it over. A healthy run queues a batch well under a
/// second after claiming it; a reminder whose worker died is at most this late.
pub const CLAIM_LEASE: chrono::TimeDelta = chrono::TimeDelta::minutes(5);

#[derive(Debug, thiserror::Error)]
pub enum ReminderError {
    #[error("{0}")]
    Validation(ValidationErrors),
    #[error("no such reminder")]
    NotFound,
    #[error("database error: {0}")]
    Database(#[from] DbErr),
}

/// The settings with the next reminder they give.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReminderView {
    pub settings: ReminderSettings,
    pub next_reminder_at: Option<DateTime<Utc>>,
}

/// A reminder claimed by the dispatcher and recorded as sent: queue its pushes,
/// then mark it queued ([`Reminders::mark_queued`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueReminder {
    pub delivery_id: Uuid,
    pub user_id: Uuid,
    pub slot_at: i64,
    pub descriptive: bool,
}

#[derive(Clone)]
pub struct Reminders {
    db: DatabaseConnection,
    clock: Arc<dyn Clock>,
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

fn pacing(pace: Option<&str>, paused_at: Option<i64>, timezone: Option<&str>, deleted: bool) -> Option<Pacing> {
    if deleted || paused_at.is_some() {
        return None;
    }
    let pace = Pace::parse(pace?).ok()?;
    let tz = timezone.and_then(|tz| tz.parse().ok()).unwrap_or(chrono_tz::UTC);
    Some(Pacing { pace, tz })
}

fn settings_of(row: Option<&reminder_schedule::Model>) -> ReminderSettings {
    row.map_or_else(ReminderSettings::default, |row| {
        serde_json::from_str(&row.settings).unwrap_or_else(|error| {
            tracing::warn!(%error, "stored reminder settings unreadable; using the defaults");
            ReminderSettings::default()
        })
    })
}

fn ms_to_time(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

fn spacing(unanswered: i32) -> Spacing {
    Spacing { unanswered: u32::try_from(unanswered).unwrap_or(0) }
}

fn settings_json(settings: &ReminderSettings) -> Result<String, DbErr> {
    serde_json::to_string(settings).map_err(|e| DbErr::Custom(format!("reminder settings: {e}")))
}

impl Reminders {
    pub fn new(db: DatabaseConnection, clock: Arc<dyn Clock>) -> Self {
        Self { db, clock }
    }

    /// The person's settings (the defaults when none are stored) and next reminder.
    pub async fn settings(&self, user_id: Uuid) -> Result<ReminderView, DbErr> {
        match ReminderSchedule::find_by_id(user_id).one(&self.db).await? {
            Some(row) => Ok(ReminderView {
                settings: settings_of(Some(&row)),
                next_reminder_at: row.next_slot_at.map(ms_to_time),
            }),
            None => {
                let next_reminder_at = self.recompute(user_id).await?;
                Ok(ReminderView { settings: ReminderSettings::default(), next_reminder_at })
            }
        }
    }

    /// Replaces the settings and recomputes the next reminder at once.
    #[tracing::instrument(skip_all, fields(%user_id))]
    pub async fn put_settings(
        &self,
        user_id: Uuid,
        input: ReminderSettingsInput,
    ) -> Result<ReminderView, ReminderError> {
        let settings = ReminderSettings::parse(input).map_err(ReminderError::Validation)?;
        let next_reminder_at = self.store(user_id, Some(settings.clone()), None).await?;
        Ok(ReminderView { settings, next_reminder_at })
    }

    /// Recomputes the next reminder from the stored settings, the enrollment's pace
    /// and pause, and the time zone. Call after any of them changes.
    #[tracing::instrument(skip_all, fields(%user_id))]
    pub async fn recompute(&self, user_id: Uuid) -> Result<Option<DateTime<Utc>>, DbErr> {
        self.store(user_id, None, None).await
    }

    /// The next reminder, or `None` when none is due.
    pub async fn next_reminder_at(&self, user_id: Uuid) -> Result<Option<DateTime<Utc>>, DbErr> {
        Ok(ReminderSchedule::find_by_id(user_id).one(&self.db).await?.and_then(|row| row.next_slot_at).map(ms_to_time))
    }

    /// The person opened a reminder: it was answered, so spacing returns to normal.
    #[tracing::instrument(skip_all, fields(%user_id, %delivery_id))]
    pub async fn opened(&self, user_id: Uuid, delivery_id: Uuid) -> Result<(), ReminderError> {
        let delivery = ReminderDelivery::find_by_id(delivery_id)
            .filter(reminder_delivery::Column::UserId.eq(user_id))
            .one(&self.db)
            .await?
            .ok_or(ReminderError::NotFound)?;
        if delivery.opened_at.is_none() {
            ReminderDelivery::update_many()
                .col_expr(reminder_delivery::Column::OpenedAt, Expr::value(self.clock.now_ms()))
                .filter(reminder_delivery::Column::Id.eq(delivery_id))
                .exec(&self.db)
                .await?;
        }
        self.store(user_id, None, Some(0)).await?;
        Ok(())
    }

    /// Writes settings and/or the unanswered count (when given) and the next slot
    /// they give, under the schedule row's lock so a dispatcher's move is not lost.
    async fn store(
        &self,
        user_id: Uuid,
        settings: Option<ReminderSettings>,
        unanswered: Option<i32>,
    ) -> Result<Option<DateTime<Utc>>, DbErr> {
        let txn = self.db.begin().await?;
        let row = ReminderSchedule::find_by_id(user_id).lock_exclusive().one(&txn).await?;
        let settings = settings.unwrap_or_else(|| settings_of(row.as_ref()));
        let unanswered = unanswered.or(row.as_ref().map(|r| r.unanswered)).unwrap_or(0);
        let last_sent_at = row.as_ref().and_then(|r| r.last_sent_at);
        let pacing = self.pacing_of(&txn, user_id).await?;
        let now = self.clock.now();
        let next = pacing.and_then(|Pacing { pace, tz }| {
            let after = recompute_after(now, last_sent_at.map(ms_to_time), tz);
            next_slot(&settings, pace, tz, after, spacing(unanswered))
        });
        if row.is_none() && next.is_none() && unanswered == 0 && settings == ReminderSettings::default() {
            // Nothing worth storing: the defaults, and nothing due.
            txn.commit().await?;
            return Ok(None);
        }
        let model = reminder_schedule::ActiveModel {
            user_id: Set(user_id),
            settings: Set(settings_json(&settings)?),
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

    async fn pacing_of(&self, conn: &impl ConnectionTrait, user_id: Uuid) -> Result<Option<Pacing>, DbErr> {
        let stmt = Query::select()
            .expr_as(Expr::col((Alias::new("u"), Alias::new("timezone"))), Alias::new("timezone"))
            .expr_as(Expr::col((Alias::new("u"), Alias::new("deleted_at"))), Alias::new("deleted_at"))
            .expr_as(Expr::col((Alias::new("e"), Alias::new("pace"))), Alias::new("pace"))
            .expr_as(Expr::col((Alias::new("e"), Alias::new("paused_at"))), Alias::new("paused_at"))
            .from_as(Alias::new("users"), Alias::new("u"))
            .join_as(
                sea_orm::JoinType::LeftJoin,
                Alias::new("enrollments"),
                Alias::new("e"),
                Expr::col((Alias::new("e"), Alias::new("user_id"))).equals((Alias::new("u"), Alias::new("id"))),
            )
            .and_where(Expr::col((Alias::new("u"), Alias::new("id"))).eq(user_id))
            .to_owned();
        let Some(row) = conn.query_one_raw(conn.get_database_backend().build(&stmt)).await? else {
            return Ok(None);
        };
        let pace: Option<String> = row.try_get("", "pace")?;
        let paused_at: Option<i64> = row.try_get("", "paused_at")?;
        let timezone: Option<String> = row.try_get("", "timezone")?;
        let deleted_at: Option<i64> = row.try_get("", "deleted_at")?;
        Ok(pacing(pace.as_deref(), paused_at, timezone.as_deref(), deleted_at.is_some()))
    }

    /// Claims up to `batch` due reminders and records each as sent, in one
    /// transaction: rows another dispatcher holds are skipped (PostgreSQL
    /// `FOR UPDATE SKIP LOCKED`; SQLite's single writer serialises), each slot is
    /// recorded once under the (user, slot) key, and each schedule moves to its
    /// next slot before the locks are released. The caller queues the pushes of
    /// what is returned and then marks it queued; until then the deliveries are an
    /// outbox that [`Reminders::take_over_unqueued`] reads after [`CLAIM_LEASE`].
    #[tracing::instrument(skip_all, fields(batch))]
    pub async fn claim_due(&self, now: DateTime<Utc>, batch: u64) -> Result<Vec<DueReminder>, DbErr> {
        let txn = self.db.begin().await?;
        let due = self.claim_due_in(&txn, now, batch).await?;
        txn.commit().await?;
        Ok(due)
    }

    /// [`Reminders::claim_due`] within the caller's transaction: nothing is
    /// claimed unless it commits, and the rows stay locked until it ends.
    pub async fn claim_due_in(
        &self,
        txn: &DatabaseTransaction,
        now: DateTime<Utc>,
        batch: u64,
    ) -> Result<Vec<DueReminder>, DbErr> {
        let now_ms = now.timestamp_millis();
        let s = Alias::new("s");
        let stmt = Query::select()
            .columns(
                ["user_id", "settings", "next_slot_at", "unanswered", "last_sent_at"]
                    .map(|c| (s.clone(), Alias::new(c))),
            )
            .expr_as(Expr::col((Alias::new("u"), Alias::new("timezone"))), Alias::new("timezone"))
            .expr_as(Expr::col((Alias::new("u"), Alias::new("deleted_at"))), Alias::new("deleted_at"))
            .expr_as(Expr::col((Alias::new("e"), Alias::new("pace"))), Alias::new("pace"))
            .expr_as(Expr::col((Alias::new("e"), Alias::new("paused_at"))), Alias::new("paused_at"))
            .from_as(Alias::new("reminder_schedules"), s.clone())
            .join_as(
                sea_orm::JoinType::InnerJoin,
                Alias::new("users"),
                Alias::new("u"),
                Expr::col((Alias::new("u"), Alias::new("id"))).equals((s.clone(), Alias::new("user_id"))),
            )
            .join_as(
                sea_orm::JoinType::LeftJoin,
                Alias::new("enrollments"),
                Alias::new("e"),
                Expr::col((Alias::new("e"), Alias::new("user_id"))).equals((s.clone(), Alias::new("user_id"))),
            )
            .and_where(Expr::col((s.clone(), Alias::new("next_slot_at"))).lte(now_ms))
            .order_by((s.clone(), Alias::new("next_slot_at")), Order::Asc)
            .limit(batch)
            .lock_with_tables_behavior(LockType::Update, [s.clone()], LockBehavior::SkipLocked)
            .to_owned();
        let backend = txn.get_database_backend();
        let rows = txn.query_all_raw(backend.build(&stmt)).await?;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let mut claimed = Vec::with_capacity(rows.len());
        for row in &rows {
            claimed.push(ClaimedRow {
                user_id: row.try_get("", "user_id")?,
                settings: row.try_get("", "settings")?,
                slot_at: row.try_get::<Option<i64>>("", "next_slot_at")?.unwrap_or(now_ms),
                unanswered: row.try_get("", "unanswered")?,
                last_sent_at: row.try_get("", "last_sent_at")?,
                pacing: pacing(
                    row.try_get::<Option<String>>("", "pace")?.as_deref(),
                    row.try_get("", "paused_at")?,
                    row.try_get::<Option<String>>("", "timezone")?.as_deref(),
                    row.try_get::<Option<i64>>("", "deleted_at")?.is_some(),
                ),
            });
        }
        let answered = self.last_answers(txn, claimed.iter().map(|c| c.user_id).collect()).await?;
        let mut due = Vec::new();
        for row in claimed {
            let settings: ReminderSettings = serde_json::from_str(&row.settings).unwrap_or_default();
            let Some(Pacing { pace, tz }) = row.pacing else {
                // Paused, no enrollment, or a deleted account since the slot was set.
                update_schedule(txn, row.user_id, None, row.unanswered, row.last_sent_at, now_ms).await?;
                continue;
            };
            // The previous reminder was answered by opening it or by any check-in since.
            let answered_since_last = row.last_sent_at.is_none_or(|last| answered.get(&row.user_id) > Some(&last));
            let unanswered = if answered_since_last { 0 } else { row.unanswered.saturating_add(1) };
            let delivery_id = Uuid::now_v7();
            let insert = Query::insert()
                .into_table(Alias::new("reminder_deliveries"))
                .columns(["id", "user_id", "slot_at", "sent_at"].map(Alias::new))
                .values_panic([delivery_id.into(), row.user_id.into(), row.slot_at.into(), now_ms.into()])
                .on_conflict(OnConflict::columns(["user_id", "slot_at"].map(Alias::new)).do_nothing().to_owned())
                .to_owned();
            let inserted = txn.execute_raw(backend.build(&insert)).await?.rows_affected() == 1;
            let after = std::cmp::max(ms_to_time(row.slot_at), now);
            if inserted {
                let next = next_slot(&settings, pace, tz, after, spacing(unanswered));
                update_schedule(txn, row.user_id, next, unanswered, Some(now_ms), now_ms).await?;
                due.push(DueReminder {
                    delivery_id,
                    user_id: row.user_id,
                    slot_at: row.slot_at,
                    descriptive: settings.descriptive,
                });
            } else {
                // This slot was sent already; only move on from it.
                let spacing = spacing(row.unanswered);
                let next = next_slot(&settings, pace, tz, after, spacing);
                update_schedule(txn, row.user_id, next, row.unanswered, row.last_sent_at, now_ms).await?;
            }
        }
        Ok(due)
    }

    /// Reminders claimed at least [`CLAIM_LEASE`] before `now` whose pushes were
    /// never queued: their dispatcher died between its claim and the queue, or
    /// could not reach the queue. Each is taken over by exactly one caller (rows
    /// another dispatcher is taking over are skipped on PostgreSQL; SQLite's single
    /// writer serialises), which renews its lease to `now` and must queue it and
    /// then call [`Reminders::mark_queued`]; if that caller dies too, the next run
    /// after the lease takes it over again.
    ///
    /// What remains: a caller that dies after queuing but before marking queues
    /// the pushes twice, which the queue drops by their idempotency keys (see
    /// `JobQueue::enqueue_unique`); and a push job in flight when its worker dies
    /// is run again by the queue after the worker misses its heartbeats, so a push
    /// that had reached the push service may arrive twice, where the shared
    /// [`REMINDER_TOPIC`] makes the service replace an undelivered first copy.
    #[tracing::instrument(skip_all, fields(batch))]
    pub async fn take_over_unqueued(&self, now: DateTime<Utc>, batch: u64) -> Result<Vec<DueReminder>, DbErr> {
        let deliveries = Alias::new("reminder_deliveries");
        let stale = Query::select()
            .column(Alias::new("id"))
            .from(deliveries.clone())
            .and_where(Expr::col(Alias::new("queued_at")).is_null())
            .and_where(Expr::col(Alias::new("sent_at")).lte((now - CLAIM_LEASE).timestamp_millis()))
            .order_by(Alias::new("sent_at"), Order::Asc)
            .limit(batch)
            .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
            .to_owned();
        let take_over = Query::update()
            .table(deliveries)
            .value(Alias::new("sent_at"), now.timestamp_millis())
            .and_where(Expr::col(Alias::new("id")).in_subquery(stale))
            .and_where(Expr::col(Alias::new("queued_at")).is_null())
            .returning(Query::returning().columns(["id", "user_id", "slot_at"].map(Alias::new)))
            .to_owned();
        let rows = self.db.query_all_raw(self.db.get_database_backend().build(&take_over)).await?;
        let mut taken = Vec::with_capacity(rows.len());
        for row in &rows {
            let id: Uuid = row.try_get("", "id")?;
            let user_id: Uuid = row.try_get("", "user_id")?;
            let slot_at: i64 = row.try_get("", "slot_at")?;
            taken.push((id, user_id, slot_at));
        }
        if taken.is_empty() {
            return Ok(Vec::new());
        }
        tracing::warn!(count = taken.len(), "taking over reminders a dispatcher claimed but never queued");
        let users: Vec<Uuid> = taken.iter().map(|(_, user_id, _)| *user_id).collect();
        let schedules = ReminderSchedule::find()
            .filter(reminder_schedule::Column::UserId.is_in(users))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|row| (row.user_id, row))
            .collect::<HashMap<_, _>>();
        Ok(taken
            .into_iter()
            .map(|(delivery_id, user_id, slot_at)| DueReminder {
                delivery_id,
                user_id,
                slot_at,
                descriptive: settings_of(schedules.get(&user_id)).descriptive,
            })
            .collect())
    }

    /// Marks reminders whose pushes are on the queue, in one statement: they are
    /// done with, and no later run takes them over.
    pub async fn mark_queued(&self, delivery_ids: &[Uuid], at: DateTime<Utc>) -> Result<(), DbErr> {
        if delivery_ids.is_empty() {
            return Ok(());
        }
        ReminderDelivery::update_many()
            .col_expr(reminder_delivery::Column::QueuedAt, Expr::value(at.timestamp_millis()))
            .filter(reminder_delivery::Column::Id.is_in(delivery_ids.iter().copied()))
            .filter(reminder_delivery::Column::QueuedAt.is_null())
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// For each user, the latest sign of an answer: a reminder opened, or a
    /// check-in written (its `version` is the server's write time in ms).
    async fn last_answers(&self, conn: &impl ConnectionTrait, users: Vec<Uuid>) -> Result<HashMap<Uuid, i64>, DbErr> {
        let mut latest = HashMap::new();
        for (table, column) in [("checkins", "version"), ("reminder_deliveries", "opened_at")] {
            let stmt = Query::select()
                .column(Alias::new("user_id"))
                .expr_as(Expr::col(Alias::new(column)).max(), Alias::new("latest"))
                .from(Alias::new(table))
                .and_where(Expr::col(Alias::new("user_id")).is_in(users.clone()))
                .group_by_col(Alias::new("user_id"))
                .to_owned();
            for row in conn.query_all_raw(conn.get_database_backend().build(&stmt)).await? {
                let user_id: Uuid = row.try_get("", "user_id")?;
                if let Some(at) = row.try_get::<Option<i64>>("", "latest")? {
                    let entry = latest.entry(user_id).or_insert(at);
                    *entry = std::cmp::max(*entry, at);
                }
            }
        }
        Ok(latest)
    }

    /// The push message announcing `due`: discreet unless the person chose
    /// descriptive texts, which then name today's suggested exercise.
    pub async fn message(&self, due: &DueReminder) -> PushMessage {
        let suggestion = if due.descriptive { self.todays_suggestion(due.user_id).await } else { None };
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

    async fn todays_suggestion(&self, user_id: Uuid) -> Option<String> {
        let user = User::find_by_id(user_id).one(&self.db).await.ok().flatten()?;
        let today = Enrollments::new(self.db.clone(), self.clock.clone()).today(&user).await.ok()?;
        today.plan.exercise.map(|(_, exercise)| exercise.title.clone())
    }
}

struct ClaimedRow {
    user_id: Uuid,
    settings: String,
    slot_at: i64,
    unanswered: i32,
    last_sent_at: Option<i64>,
    pacing: Option<Pacing>,
}

async fn update_schedule(
    conn: &impl ConnectionTrait,
    user_id: Uuid,
    next: Option<DateTime<Utc>>,
    unanswered: i32,
    last_sent_at: Option<i64>,
    now_ms: i64,
) -> Result<(), DbErr> {
    ReminderSchedule::update_many()
        .col_expr(reminder_schedule::Column::NextSlotAt, Expr::value(next.map(|t| t.timestamp_millis())))
        .col_expr(reminder_schedule::Column::Unanswered, Expr::value(unanswered))
        .col_expr(reminder_schedule::Column::LastSentAt, Expr::value(last_sent_at))
        .col_expr(reminder_schedule::Column::UpdatedAt, Expr::value(now_ms))
        .filter(reminder_schedule::Column::UserId.eq(user_id))
        .exec(conn)
        .await?;
    Ok(())
}
