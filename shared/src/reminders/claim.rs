//! The dispatcher's claim of due reminders: set-based, a batch at a time.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::{DatabaseTransaction, DbErr};
use uuid::Uuid;

use super::{
    DueReminder, Pacing, Reminders, active_pace, ms_to_time, spacing,
    sql::{self, DueRow, ScheduleMove},
};
use crate::{
    db::fresh_plans,
    domain::{
        notification_choices::{Delivery, NotificationKind},
        pacing::Pace,
        reminders::{ReminderPlan, ReminderSettings, next_slot},
    },
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
    /// [`MAX_STATEMENT_BYTES`](crate::db::MAX_STATEMENT_BYTES) advises: whole,
    /// they were measured faster than in pieces even while each statement
    /// waited once for the server's delayed ACK (sqlx 0.9.0, see there), and
    /// with `TCP_NODELAY` (sqlx 0.9.1) none waits (the statements and the
    /// figures are in `reminders/sql.rs`).
    #[tracing::instrument(skip_all, fields(batch))]
    pub async fn claim_due(
        &self,
        txn: &DatabaseTransaction,
        now: DateTime<Utc>,
        batch: u64,
    ) -> Result<Vec<DueReminder>, DbErr> {
        let batch = batch.clamp(1, MAX_CLAIM_BATCH);
        fresh_plans(txn, true).await?;
        let rows = sql::due_rows(txn, now.timestamp_millis(), batch).await?;
        // The writes below have no plan worth redoing each time.
        fresh_plans(txn, false).await?;
        let claimed = ClaimedRow::read_all(rows);
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
        let recorded = sql::record_deliveries(txn, &offers, now.timestamp_millis()).await?;
        let mut due = Vec::with_capacity(recorded.len());
        let mut moves = Vec::with_capacity(judged.len());
        for (row, judged) in judged {
            let delivery_id = recorded.get(&row.user_id).copied();
            let (next, reminder) = row.move_on(judged, delivery_id, now);
            moves.push(next);
            due.extend(reminder);
        }
        sql::move_schedules(txn, &moves, now.timestamp_millis()).await?;
        Ok(due)
    }
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

impl From<DueRow> for ClaimedRow {
    fn from(row: DueRow) -> Self {
        Self {
            pace: active_pace(row.user_id, row.pace.as_ref(), row.paused_at, row.deleted_at.is_some()),
            user_id: row.user_id,
            settings: row.settings,
            slot_at: row.next_slot_at,
            unanswered: row.unanswered,
            last_sent_at: row.last_sent_at,
            last_answer: std::cmp::max(row.last_checkin, row.last_opened),
            timezone: row.timezone,
            choices: row.choices,
            devices: Vec::new(),
        }
    }
}

impl ClaimedRow {
    /// The claimed schedules, one per person: the query gives a row per device.
    fn read_all(rows: Vec<DueRow>) -> Vec<Self> {
        let mut claimed: Vec<Self> = Vec::with_capacity(rows.len());
        let mut index: HashMap<Uuid, usize> = HashMap::with_capacity(rows.len());
        for row in rows {
            let device = row.subscription_id;
            let at = match index.get(&row.user_id) {
                Some(&at) => at,
                None => {
                    index.insert(row.user_id, claimed.len());
                    claimed.push(Self::from(row));
                    claimed.len() - 1
                }
            };
            claimed[at].devices.extend(device);
        }
        claimed
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
