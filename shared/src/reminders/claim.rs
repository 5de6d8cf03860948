//! The dispatcher's claim of due reminders: set-based, a batch at a time.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::{
    ConnectionTrait, DatabaseTransaction, DbErr, QueryResult,
    sea_query::{
        Alias, Expr, ExprTrait, IntoIden, LockBehavior, LockType, OnConflict, Order, Query, SelectStatement, TableRef,
        ValueTuple,
    },
};
use uuid::Uuid;

use super::{DueReminder, Pacing, Reminders, active_pace, ms_to_time, spacing};
use crate::{
    db::is_postgres,
    domain::{
        notification_choices::{Delivery, NotificationKind},
        pacing::Pace,
        reminders::{ReminderPlan, ReminderSettings, next_slot},
    },
    entities::reminder_schedule::{self, Entity as ReminderSchedule},
    notifications::choices,
};

/// The most reminders one claim takes: its schedule rows stay locked until it
/// commits, so a settings change for one of them waits that long.
pub const MAX_CLAIM_BATCH: u64 = 5_000;

/// Bound values per row of the claim's widest write (a delivery).
const DELIVERY_VALUES: u64 = 5;
// Each write of a claim is one statement: within SQLite's 32,766 bound values
// (PostgreSQL takes 65,535).
const _: () = assert!(MAX_CLAIM_BATCH * DELIVERY_VALUES <= 32_766);

impl Reminders {
    /// Claims up to `batch` due reminders within `txn` and records each as sent:
    /// rows another dispatcher holds are skipped (PostgreSQL `FOR UPDATE SKIP
    /// LOCKED`; SQLite's single writer serialises), each slot is recorded once
    /// under its (user, slot) key, and each schedule moves to its next slot.
    ///
    /// The caller queues the pushes of what is returned and only then commits:
    /// a recorded delivery is a queued one. Should the caller die before its
    /// commit, the claim rolls back and the next run claims the same slots again,
    /// with the same delivery ids ([`delivery_id`]) and so the same idempotency
    /// keys, under which the queue drops pushes it already holds. The rows stay
    /// locked until the transaction ends, so a settings change for one of them
    /// waits that long. (A push job whose worker dies mid-send is run again by
    /// the queue once the worker misses its heartbeats; the shared
    /// [`REMINDER_TOPIC`](super::REMINDER_TOPIC) has the push service replace an
    /// undelivered first copy.)
    ///
    /// Set-based, three statements whatever the batch's size: one reads the
    /// batch with what the rules need, a multi-row `INSERT` records the
    /// deliveries (a slot recorded before conflicts and is not returned), a
    /// multi-row `UPDATE` moves every schedule on.
    ///
    /// The writes are larger than
    /// [`MAX_STATEMENT_BYTES`](crate::db::MAX_STATEMENT_BYTES) advises, so each waits
    /// once for the server's delayed ACK (some 40 ms, see there) while the other
    /// lanes work. Held to that size, a claim of 5,000 took 35 inserts and 25
    /// updates, and a dispatch of 100,000 took 5.5–5.9 s instead of 4.8–5.0 s
    /// (benches/reminders.rs, same machine and day).
    #[tracing::instrument(skip_all, fields(batch))]
    pub async fn claim_due(
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
        // Many people keep the same plan: each distinct text is parsed once.
        let mut plans: HashMap<String, ReminderPlan> = HashMap::new();
        let judged: Vec<(ClaimedRow, Option<Judged>)> = claimed
            .into_iter()
            .map(|row| {
                let judged = row.judge(&mut plans, now);
                (row, judged)
            })
            .collect();
        let offers: Vec<_> = judged
            .iter()
            .filter(|(_, judged)| judged.as_ref().is_some_and(|j| j.send))
            .map(|(row, _)| (row.user_id, row.slot_at))
            .collect();
        let recorded = record_deliveries(txn, &offers, now.timestamp_millis()).await?;
        let mut due = Vec::with_capacity(recorded.len());
        let mut moves = Vec::with_capacity(judged.len());
        for (row, judged) in judged {
            let delivery_id = recorded.get(&row.user_id).copied();
            let (next, reminder) = row.move_on(judged, delivery_id, now);
            moves.push(next);
            due.extend(reminder);
        }
        move_schedules(txn, &moves, now.timestamp_millis()).await?;
        Ok(due)
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
    /// The pace of an active enrollment; `None`: no reminders.
    pace: Option<Pace>,
    timezone: String,
    /// The person's notification choices as stored; `None`: the defaults.
    choices: Option<String>,
    devices: Vec<Uuid>,
}

/// What a claimed schedule's stored settings say now.
struct Judged {
    pacing: Pacing,
    settings: ReminderSettings,
    /// The person's choices let a reminder go out now.
    send: bool,
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
            pace: active_pace(
                row.try_get::<Option<String>>("", "pace")?.as_deref(),
                row.try_get("", "paused_at")?,
                row.try_get::<Option<i64>>("", "deleted_at")?.is_some(),
            ),
            timezone: row.try_get("", "timezone")?,
            choices: row.try_get("", "choices")?,
            devices: Vec::new(),
        })
    }

    /// The settings this schedule follows and whether its reminder may go out
    /// at `now`, asked of the person's notification choices like every other
    /// notification. `None`: no reminder and no next slot, either because there
    /// is no active enrollment or because the stored plan, choices or zone no
    /// longer parse (fail closed: logged with the user id and counted).
    fn judge(&self, plans: &mut HashMap<String, ReminderPlan>, now: DateTime<Utc>) -> Option<Judged> {
        let pace = self.pace?;
        let plan = match plans.get(&self.settings) {
            Some(plan) => plan.clone(),
            None => {
                let plan: ReminderPlan = serde_json::from_str(&self.settings)
                    .map_err(|_| choices::unreadable(self.user_id, "reminder plan"))
                    .ok()?;
                plans.insert(self.settings.clone(), plan.clone());
                plan
            }
        };
        let person = choices::read(self.user_id, self.choices.as_deref(), &self.timezone).ok()?;
        // A slot lies outside quiet hours when computed; one claimed late, into
        // them, or after the choices changed is skipped rather than deferred: a
        // reminder is only worth its own moment, and the next slot comes anyway.
        let send = person.choices.decide(NotificationKind::Reminder, person.tz, now) == Delivery::Now;
        let settings = ReminderSettings::from_parts(&plan, &person.choices);
        Some(Judged { pacing: Pacing { pace, tz: person.tz }, settings, send })
    }

    /// Where the schedule goes from this slot, and the reminder to push when the
    /// slot was recorded now (`delivery_id`). A recorded reminder left unanswered
    /// since the previous one spaces the next out; a slot recorded before only
    /// moves on; no pacing (paused, not enrolled, deleted) means no next slot.
    fn move_on(
        self,
        judged: Option<Judged>,
        delivery_id: Option<Uuid>,
        now: DateTime<Utc>,
    ) -> (ScheduleMove, Option<DueReminder>) {
        let after = std::cmp::max(ms_to_time(self.slot_at), now);
        let (next, unanswered, last_sent_at, reminder) = match (judged, delivery_id) {
            (None, _) => (None, self.unanswered, self.last_sent_at, None),
            (Some(Judged { pacing: Pacing { pace, tz }, settings, .. }), None) => {
                let next = next_slot(&settings, pace, tz, after, spacing(self.unanswered));
                (next, self.unanswered, self.last_sent_at, None)
            }
            (Some(Judged { pacing: Pacing { pace, tz }, settings, .. }), Some(delivery_id)) => {
                let answered = self.last_sent_at.is_none_or(|last| self.last_answer > Some(last));
                let unanswered = if answered { 0 } else { self.unanswered.saturating_add(1) };
                let next = next_slot(&settings, pace, tz, after, spacing(unanswered));
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
/// the person's notification choices, the latest answer, and a row per push
/// subscription. The inner query walks the
/// `next_slot_at` index and stops at `batch` rows; only those are joined and
/// looked up, however many are due.
fn due_schedules(now_ms: i64, batch: u64) -> SelectStatement {
    let (s, u, e, p, n) = (Alias::new("s"), Alias::new("u"), Alias::new("e"), Alias::new("p"), Alias::new("n"));
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
        .expr_as(Expr::col((n.clone(), Alias::new("settings"))), Alias::new("choices"))
        // One index lookup each: checkins (user_id, version, id), and the opened
        // deliveries' partial index (user_id, opened_at), however long the history.
        .expr_as(
            Expr::cust("(SELECT MAX(c.version) FROM checkins c WHERE c.user_id = s.user_id)"),
            Alias::new("last_checkin"),
        )
        .expr_as(
            Expr::cust(
                "(SELECT MAX(d.opened_at) FROM reminder_deliveries d \
                 WHERE d.user_id = s.user_id AND d.opened_at IS NOT NULL)",
            ),
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
            Alias::new("notification_settings"),
            n.clone(),
            Expr::col((n, Alias::new("user_id"))).equals((s.clone(), Alias::new("user_id"))),
        )
        .join_as(
            sea_orm::JoinType::LeftJoin,
            Alias::new("push_subscriptions"),
            p.clone(),
            Expr::col((p, Alias::new("user_id"))).equals((s, Alias::new("user_id"))),
        )
        .to_owned()
}

/// The id of the delivery of `user_id`'s reminder at `slot_at` (ms): the same
/// for the same (user, slot) however often it is claimed, so a claim rolled back
/// and made again queues its pushes under the same idempotency keys. Laid out as a
/// UUIDv7 whose time is the slot's and whose other bits come from SHA-256 of the
/// two: deliveries sort by slot, so a dispatch appends to the primary key's index
/// instead of writing all over it.
pub fn delivery_id(user_id: Uuid, slot_at: i64) -> Uuid {
    use sha2::Digest;
    let digest = sha2::Sha256::new().chain_update(user_id.as_bytes()).chain_update(slot_at.to_be_bytes()).finalize();
    let mut bits = [0_u8; 10];
    bits.copy_from_slice(&digest[..10]);
    // Slots are after 1970; a negative one (never stored) would sort first.
    uuid::Builder::from_unix_timestamp_millis(u64::try_from(slot_at).unwrap_or(0), &bits).into_uuid()
}

/// Records a delivery for each (user, slot) in one multi-row `INSERT`; returns
/// the new delivery's id by user for those not recorded before (the unique
/// `(slot_at, user_id)` index).
#[tracing::instrument(skip_all)]
async fn record_deliveries(
    txn: &DatabaseTransaction,
    offers: &[(Uuid, i64)],
    now_ms: i64,
) -> Result<HashMap<Uuid, Uuid>, DbErr> {
    let mut recorded = HashMap::with_capacity(offers.len());
    if offers.is_empty() {
        return Ok(recorded);
    }
    let mut insert = Query::insert();
    insert
        .into_table(Alias::new("reminder_deliveries"))
        .columns(["id", "user_id", "slot_at", "sent_at", "queued_at"].map(Alias::new));
    for &(user_id, slot_at) in offers {
        insert
            .values([
                delivery_id(user_id, slot_at).into(),
                user_id.into(),
                slot_at.into(),
                now_ms.into(),
                now_ms.into(),
            ])
            .map_err(|e| DbErr::Custom(e.to_string()))?;
    }
    insert
        .on_conflict(OnConflict::columns(["user_id", "slot_at"].map(Alias::new)).do_nothing().to_owned())
        .returning(Query::returning().columns(["id", "user_id"].map(Alias::new)));
    for row in txn.query_all_raw(txn.get_database_backend().build(&insert)).await? {
        recorded.insert(row.try_get("", "user_id")?, row.try_get("", "id")?);
    }
    Ok(recorded)
}

/// Writes every schedule's move in one `UPDATE ... FROM (VALUES ...)`, which
/// both backends take (a `VALUES` list's columns are `column1`, `column2`, ... on
/// both).
#[tracing::instrument(skip_all)]
async fn move_schedules(txn: &DatabaseTransaction, moves: &[ScheduleMove], now_ms: i64) -> Result<(), DbErr> {
    use reminder_schedule::Column;
    if moves.is_empty() {
        return Ok(());
    }
    let v = Alias::new("v");
    let column = |n: u8| Expr::col((v.clone(), Alias::new(format!("column{n}"))));
    let rows = moves
        .iter()
        .map(|m| {
            ValueTuple::Many(vec![m.user_id.into(), m.next_slot_at.into(), m.unanswered.into(), m.last_sent_at.into()])
        })
        .collect();
    let update = Query::update()
        .table(ReminderSchedule)
        .value(Column::NextSlotAt, column(2))
        .value(Column::Unanswered, column(3))
        .value(Column::LastSentAt, column(4))
        .value(Column::UpdatedAt, now_ms)
        .from(TableRef::ValuesList(rows, v.clone().into_iden()))
        .and_where(Expr::col((ReminderSchedule, Column::UserId)).equals((v, Alias::new("column1"))))
        .to_owned();
    txn.execute_raw(txn.get_database_backend().build(&update)).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::delivery_id;
    use uuid::Uuid;

    const SLOT: i64 = 1_795_460_400_000;

    #[test]
    fn a_delivery_id_is_the_same_for_the_same_person_and_slot_and_differs_otherwise() {
        let (one, two) = (Uuid::now_v7(), Uuid::now_v7());
        assert_eq!(delivery_id(one, SLOT), delivery_id(one, SLOT));
        assert_ne!(delivery_id(one, SLOT), delivery_id(two, SLOT));
        assert_ne!(delivery_id(one, SLOT), delivery_id(one, SLOT + 1));
    }

    #[test]
    fn delivery_ids_are_version_7_and_sort_by_slot_whoever_they_are_for() {
        let people: Vec<Uuid> = (0..50).map(|_| Uuid::now_v7()).collect();
        for (a, b) in people.iter().zip(people.iter().rev()) {
            let (earlier, later) = (delivery_id(*a, SLOT), delivery_id(*b, SLOT + 1));
            assert_eq!(earlier.get_version_num(), 7);
            assert!(earlier < later, "{earlier} sorts before {later}");
            let (secs, nanos) = earlier.get_timestamp().unwrap().to_unix();
            assert_eq!(secs * 1000 + u64::from(nanos) / 1_000_000, SLOT as u64, "the slot's time");
        }
    }
}
