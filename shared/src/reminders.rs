//! Paced reminders: each person's settings and next slot, the dispatcher's claim of
//! due slots, and what a reminder says. When slots fall is decided by the pure
//! rules in `domain::reminders`; this module loads their inputs and stores the result.

use std::{collections::HashMap, sync::Arc};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr, EntityTrait, QueryFilter,
    QueryResult, QuerySelect, TransactionTrait,
    sea_query::{
        Alias, Expr, ExprTrait, IntoIden, LockBehavior, LockType, OnConflict, Order, Query, SelectStatement, TableRef,
        ValueTuple,
    },
};
use uuid::Uuid;

use crate::{
    Clock,
    db::{is_postgres, rows_per_statement},
    domain::{
        ValidationErrors,
        pacing::Pace,
        reminders::{ReminderSettings, ReminderSettingsInput, Spacing, next_slot, recompute_after, reminder_text},
    },
    enrollment::Enrollments,
    entities::{
        push_subscription::{self, Entity as PushSubscription},
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
/// The most reminders one claim takes: its schedule rows stay locked until it
/// commits, so a settings change for one of them waits that long. (Its writes are
/// split into statements well within both backends' bound-value limits.)
pub const MAX_CLAIM_BATCH: u64 = 5_000;
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
    /// The person's push subscriptions: one push each.
    pub devices: Vec<Uuid>,
    /// Whether the text may name today's exercise: the reminder settings' own
    /// `descriptive`, never the account's `descriptive_notifications`. The
    /// reminder setting is the specific, explicit choice for these messages, so
    /// it governs them either way.
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

    /// The person checked in, which answers any reminder: spacing returns to
    /// normal at once, rather than at the next claim. Nothing to do (one read)
    /// without a schedule or with nothing unanswered.
    #[tracing::instrument(skip_all, fields(%user_id))]
    pub async fn checked_in(&self, user_id: Uuid) -> Result<(), DbErr> {
        let unanswered = ReminderSchedule::find_by_id(user_id)
            .select_only()
            .column(reminder_schedule::Column::Unanswered)
            .into_tuple::<i32>()
            .one(&self.db)
            .await?;
        if unanswered.is_some_and(|n| n > 0) {
            self.store(user_id, None, Some(0)).await?;
        }
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
    ///
    /// Set-based: one statement reads the batch with what the rules need,
    /// multi-row `INSERT`s record the deliveries (a slot recorded before conflicts
    /// and is not returned), multi-row `UPDATE`s move every schedule on; each
    /// statement as large as [`rows_per_statement`] allows.
    pub async fn claim_due_in(
        &self,
        txn: &DatabaseTransaction,
        now: DateTime<Utc>,
        batch: u64,
    ) -> Result<Vec<DueReminder>, DbErr> {
        let batch = batch.clamp(1, MAX_CLAIM_BATCH);
        let backend = txn.get_database_backend();
        fresh_plans(txn, true).await?;
        let rows = txn.query_all_raw(backend.build(&due_schedules(now.timestamp_millis(), batch))).await?;
        // The writes below have no plan worth redoing each time.
        fresh_plans(txn, false).await?;
        let claimed = ClaimedRow::read_all(&rows)?;
        if claimed.is_empty() {
            return Ok(Vec::new());
        }
        let offers: Vec<_> = claimed.iter().filter(|c| c.pacing.is_some()).map(|c| (c.user_id, c.slot_at)).collect();
        let recorded = record_deliveries(txn, &offers, now.timestamp_millis()).await?;
        let mut due = Vec::with_capacity(recorded.len());
        let mut moves = Vec::with_capacity(claimed.len());
        // Many people keep the same settings: each distinct text is parsed once.
        let mut parsed: HashMap<String, ReminderSettings> = HashMap::new();
        for row in claimed {
            let settings = match parsed.get(&row.settings) {
                Some(settings) => settings.clone(),
                None => {
                    let settings: ReminderSettings = serde_json::from_str(&row.settings).unwrap_or_default();
                    parsed.insert(row.settings.clone(), settings.clone());
                    settings
                }
            };
            let delivery_id = recorded.get(&row.user_id).copied();
            let (next, reminder) = row.move_on(&settings, delivery_id, now);
            moves.push(next);
            due.extend(reminder);
        }
        move_schedules(txn, &moves, now.timestamp_millis()).await?;
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
            .filter(reminder_schedule::Column::UserId.is_in(users.iter().copied()))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|row| (row.user_id, row))
            .collect::<HashMap<_, _>>();
        let mut devices = self.devices(&users).await?;
        Ok(taken
            .into_iter()
            .map(|(delivery_id, user_id, slot_at)| DueReminder {
                delivery_id,
                user_id,
                slot_at,
                devices: devices.remove(&user_id).unwrap_or_default(),
                descriptive: settings_of(schedules.get(&user_id)).descriptive,
            })
            .collect())
    }

    /// Each person's push subscriptions (ids only).
    async fn devices(&self, users: &[Uuid]) -> Result<HashMap<Uuid, Vec<Uuid>>, DbErr> {
        let mut devices: HashMap<Uuid, Vec<Uuid>> = HashMap::with_capacity(users.len());
        for chunk in users.chunks(rows_per_statement(ID_BYTES)) {
            let rows = PushSubscription::find()
                .select_only()
                .columns([push_subscription::Column::UserId, push_subscription::Column::Id])
                .filter(push_subscription::Column::UserId.is_in(chunk.iter().copied()))
                .into_tuple::<(Uuid, Uuid)>()
                .all(&self.db)
                .await?;
            for (user_id, subscription_id) in rows {
                devices.entry(user_id).or_default().push(subscription_id);
            }
        }
        Ok(devices)
    }

    /// Marks reminders whose pushes are on the queue (one statement per
    /// [`rows_per_statement`], one transaction): they are done with, and no later
    /// run takes them over.
    #[tracing::instrument(skip_all, fields(reminders = delivery_ids.len()))]
    pub async fn mark_queued(&self, delivery_ids: &[Uuid], at: DateTime<Utc>) -> Result<(), DbErr> {
        let txn = self.bulk_transaction().await?;
        for chunk in delivery_ids.chunks(rows_per_statement(ID_BYTES)) {
            ReminderDelivery::update_many()
                .col_expr(reminder_delivery::Column::QueuedAt, Expr::value(at.timestamp_millis()))
                // By id alone: a `queued_at IS NULL` here would steer PostgreSQL to
                // the partial index, whose entries for rows queued since its last
                // vacuum it would then visit one by one.
                .filter(reminder_delivery::Column::Id.is_in(chunk.iter().copied()))
                .exec(&txn)
                .await?;
        }
        txn.commit().await
    }

    /// A transaction whose statements are planned afresh (see [`fresh_plans`]).
    async fn bulk_transaction(&self) -> Result<DatabaseTransaction, DbErr> {
        let txn = self.db.begin().await?;
        fresh_plans(&txn, true).await?;
        Ok(txn)
    }

    /// The push message announcing `due`: discreet unless the person's reminder
    /// settings chose descriptive texts (see [`DueReminder::descriptive`]), which
    /// then name today's suggested exercise. A discreet one reads nothing from the
    /// database.
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

/// On PostgreSQL, has the rest of the transaction plan each statement for the
/// tables as they are now (`on`), or go back to reusing plans. A dispatch can grow
/// `reminder_deliveries` by 100,000 rows in seconds, so a generic plan cached
/// while it was small (a scan of the whole table for every person, say) turns
/// quadratic. Index probes are costed as on cached data (`random_page_cost` 1.1):
/// with the default 4, marking a few hundred deliveries by id scans the whole
/// table. JIT stays off: a stale estimate can make it spend half a second
/// compiling a statement that runs in milliseconds.
async fn fresh_plans(txn: &DatabaseTransaction, on: bool) -> Result<(), DbErr> {
    if is_postgres(txn) {
        let mode = if on { "force_custom_plan" } else { "auto" };
        txn.execute_unprepared(&format!(
            "SET LOCAL plan_cache_mode = {mode}; SET LOCAL jit = off; SET LOCAL random_page_cost = 1.1"
        ))
        .await?;
    }
    Ok(())
}

/// A due schedule as the claim reads it, locked.
struct ClaimedRow {
    user_id: Uuid,
    settings: String,
    slot_at: i64,
    unanswered: i32,
    last_sent_at: Option<i64>,
    /// The latest sign of an answer: a check-in written (its `version` is the
    /// server's write time in ms) or a reminder opened.
    last_answer: Option<i64>,
    pacing: Option<Pacing>,
    devices: Vec<Uuid>,
}

/// A schedule's state after a claim.
struct ScheduleMove {
    user_id: Uuid,
    next_slot_at: Option<i64>,
    unanswered: i32,
    last_sent_at: Option<i64>,
}

impl ClaimedRow {
    /// The claimed schedules, one per person: the query gives a row per device.
    fn read_all(rows: &[QueryResult]) -> Result<Vec<Self>, DbErr> {
        let mut claimed: Vec<Self> = Vec::with_capacity(rows.len());
        let mut index: HashMap<Uuid, usize> = HashMap::with_capacity(rows.len());
        for row in rows {
            let user_id: Uuid = row.try_get("", "user_id")?;
            let device: Option<Uuid> = row.try_get("", "subscription_id")?;
            let at = match index.get(&user_id) {
                Some(&at) => at,
                None => {
                    index.insert(user_id, claimed.len());
                    claimed.push(Self::read(row)?);
                    claimed.len() - 1
                }
            };
            claimed[at].devices.extend(device);
        }
        Ok(claimed)
    }

    fn read(row: &QueryResult) -> Result<Self, DbErr> {
        let last_checkin: Option<i64> = row.try_get("", "last_checkin")?;
        let last_opened: Option<i64> = row.try_get("", "last_opened")?;
        Ok(Self {
            user_id: row.try_get("", "user_id")?,
            settings: row.try_get("", "settings")?,
            slot_at: row.try_get("", "next_slot_at")?,
            unanswered: row.try_get("", "unanswered")?,
            last_sent_at: row.try_get("", "last_sent_at")?,
            last_answer: std::cmp::max(last_checkin, last_opened),
            pacing: pacing(
                row.try_get::<Option<String>>("", "pace")?.as_deref(),
                row.try_get("", "paused_at")?,
                row.try_get::<Option<String>>("", "timezone")?.as_deref(),
                row.try_get::<Option<i64>>("", "deleted_at")?.is_some(),
            ),
            devices: Vec::new(),
        })
    }

    /// Where the schedule goes from this slot, and the reminder to push when the
    /// slot was recorded now (`delivery_id`). A recorded reminder left unanswered
    /// since the previous one spaces the next out; a slot recorded before only
    /// moves on; no pacing (paused, not enrolled, deleted) means no next slot.
    fn move_on(
        self,
        settings: &ReminderSettings,
        delivery_id: Option<Uuid>,
        now: DateTime<Utc>,
    ) -> (ScheduleMove, Option<DueReminder>) {
        let after = std::cmp::max(ms_to_time(self.slot_at), now);
        let (next, unanswered, last_sent_at, reminder) = match (self.pacing, delivery_id) {
            (None, _) => (None, self.unanswered, self.last_sent_at, None),
            (Some(Pacing { pace, tz }), None) => {
                let next = next_slot(settings, pace, tz, after, spacing(self.unanswered));
                (next, self.unanswered, self.last_sent_at, None)
            }
            (Some(Pacing { pace, tz }), Some(delivery_id)) => {
                let answered = self.last_sent_at.is_none_or(|last| self.last_answer > Some(last));
                let unanswered = if answered { 0 } else { self.unanswered.saturating_add(1) };
                let next = next_slot(settings, pace, tz, after, spacing(unanswered));
                let reminder = DueReminder {
                    delivery_id,
                    user_id: self.user_id,
                    slot_at: self.slot_at,
                    devices: self.devices,
                    descriptive: settings.descriptive,
                };
                (next, unanswered, Some(now.timestamp_millis()), Some(reminder))
            }
        };
        let moved = ScheduleMove {
            user_id: self.user_id,
            next_slot_at: next.map(|t| t.timestamp_millis()),
            unanswered,
            last_sent_at,
        };
        (moved, reminder)
    }
}

/// Up to `batch` schedules due at `now_ms`, oldest first, locked (skipping rows
/// another claim holds), with the user's zone, the enrollment's pace and pause,
/// the latest answer, and a row per push subscription. The inner query walks the
/// `next_slot_at` index and stops at `batch` rows; only those are joined and
/// looked up, however many are due.
fn due_schedules(now_ms: i64, batch: u64) -> SelectStatement {
    let (s, u, e, p) = (Alias::new("s"), Alias::new("u"), Alias::new("e"), Alias::new("p"));
    let columns = ["user_id", "settings", "next_slot_at", "unanswered", "last_sent_at"].map(Alias::new);
    let locked = Query::select()
        .columns(columns.clone())
        .from(Alias::new("reminder_schedules"))
        .and_where(Expr::col(Alias::new("next_slot_at")).lte(now_ms))
        .order_by(Alias::new("next_slot_at"), Order::Asc)
        .limit(batch)
        .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
        .to_owned();
    Query::select()
        .columns(columns.map(|c| (s.clone(), c)))
        .expr_as(Expr::col((u.clone(), Alias::new("timezone"))), Alias::new("timezone"))
        .expr_as(Expr::col((u.clone(), Alias::new("deleted_at"))), Alias::new("deleted_at"))
        .expr_as(Expr::col((e.clone(), Alias::new("pace"))), Alias::new("pace"))
        .expr_as(Expr::col((e.clone(), Alias::new("paused_at"))), Alias::new("paused_at"))
        .expr_as(Expr::col((p.clone(), Alias::new("id"))), Alias::new("subscription_id"))
        // One index lookup each: checkins (user_id, version, id), deliveries (user_id, slot_at).
        .expr_as(
            Expr::cust("(SELECT MAX(c.version) FROM checkins c WHERE c.user_id = s.user_id)"),
            Alias::new("last_checkin"),
        )
        .expr_as(
            Expr::cust("(SELECT MAX(d.opened_at) FROM reminder_deliveries d WHERE d.user_id = s.user_id)"),
            Alias::new("last_opened"),
        )
        .from_subquery(locked, s.clone())
        .join_as(
            sea_orm::JoinType::InnerJoin,
            Alias::new("users"),
            u.clone(),
            Expr::col((u, Alias::new("id"))).equals((s.clone(), Alias::new("user_id"))),
        )
        .join_as(
            sea_orm::JoinType::LeftJoin,
            Alias::new("enrollments"),
            e.clone(),
            Expr::col((e, Alias::new("user_id"))).equals((s.clone(), Alias::new("user_id"))),
        )
        .join_as(
            sea_orm::JoinType::LeftJoin,
            Alias::new("push_subscriptions"),
            p.clone(),
            Expr::col((p, Alias::new("user_id"))).equals((s, Alias::new("user_id"))),
        )
        .to_owned()
}

/// Bound bytes per row (PostgreSQL's binary format: length, value, format code).
const DELIVERY_ROW_BYTES: usize = 2 * 22 + 2 * 14;
const MOVE_ROW_BYTES: usize = 22 + 14 + 10 + 14;
const ID_BYTES: usize = 22;

/// Records a delivery for each (user, slot), a multi-row `INSERT` per
/// [`rows_per_statement`]; returns the new delivery's id by user for those not
/// recorded before.
#[tracing::instrument(skip_all)]
async fn record_deliveries(
    txn: &DatabaseTransaction,
    offers: &[(Uuid, i64)],
    now_ms: i64,
) -> Result<HashMap<Uuid, Uuid>, DbErr> {
    let mut recorded = HashMap::with_capacity(offers.len());
    for chunk in offers.chunks(rows_per_statement(DELIVERY_ROW_BYTES)) {
        let mut insert = Query::insert();
        insert
            .into_table(Alias::new("reminder_deliveries"))
            .columns(["id", "user_id", "slot_at", "sent_at"].map(Alias::new));
        for &(user_id, slot_at) in chunk {
            insert
                .values([Uuid::now_v7().into(), user_id.into(), slot_at.into(), now_ms.into()])
                .map_err(|e| DbErr::Custom(e.to_string()))?;
        }
        insert
            .on_conflict(OnConflict::columns(["user_id", "slot_at"].map(Alias::new)).do_nothing().to_owned())
            .returning(Query::returning().columns(["id", "user_id"].map(Alias::new)));
        for row in txn.query_all_raw(txn.get_database_backend().build(&insert)).await? {
            recorded.insert(row.try_get("", "user_id")?, row.try_get("", "id")?);
        }
    }
    Ok(recorded)
}

/// Writes every schedule's move: `UPDATE ... FROM (VALUES ...)`, which both
/// backends take (a `VALUES` list's columns are `column1`, `column2`, ... on both),
/// a statement per [`rows_per_statement`].
#[tracing::instrument(skip_all)]
async fn move_schedules(txn: &DatabaseTransaction, moves: &[ScheduleMove], now_ms: i64) -> Result<(), DbErr> {
    use reminder_schedule::Column;
    let v = Alias::new("v");
    let column = |n: u8| Expr::col((v.clone(), Alias::new(format!("column{n}"))));
    for chunk in moves.chunks(rows_per_statement(MOVE_ROW_BYTES)) {
        let rows = chunk
            .iter()
            .map(|m| {
                ValueTuple::Many(vec![
                    m.user_id.into(),
                    m.next_slot_at.into(),
                    m.unanswered.into(),
                    m.last_sent_at.into(),
                ])
            })
            .collect();
        let update = Query::update()
            .table(ReminderSchedule)
            .value(Column::NextSlotAt, column(2))
            .value(Column::Unanswered, column(3))
            .value(Column::LastSentAt, column(4))
            .value(Column::UpdatedAt, now_ms)
            .from(TableRef::ValuesList(rows, v.clone().into_iden()))
            .and_where(Expr::col((ReminderSchedule, Column::UserId)).equals((v.clone(), Alias::new("column1"))))
            .to_owned();
        txn.execute_raw(txn.get_database_backend().build(&update)).await?;
    }
    Ok(())
}
