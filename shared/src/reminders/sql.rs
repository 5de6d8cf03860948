//! The reminder claim's three statements, kept as measured.
//!
//! Measured by `cargo bench -p attune-tests --bench reminders` (README,
//! Performance, "Reminder dispatch"): claiming, recording, moving on and queuing
//! 100,000 due reminders takes a median of the medians of 4.83 s (goal ≤ 5 s);
//! the same claim with its writes held to
//! [`MAX_STATEMENT_BYTES`](crate::db::MAX_STATEMENT_BYTES) took 5.47–5.92 s. So
//! each write is one statement whatever the batch's size: a multi-row `INSERT`
//! and an `UPDATE ... FROM (VALUES ...)`, which the entity API does not express.
//! Column names come from the entities; the two correlated subqueries stay text
//! (`checkins` is a sync table, defined at run time, with no entity).

use std::collections::HashMap;

use sea_orm::{
    ConnectionTrait, DatabaseTransaction, DbErr, FromQueryResult,
    sea_query::{
        Alias, Expr, ExprTrait, IntoIden, LockBehavior, LockType, OnConflict, Order, Query, SelectStatement, TableRef,
        ValueTuple,
    },
};
use uuid::Uuid;

use super::claim::delivery_id;
use crate::entities::{
    enrollment::{self, Entity as Enrollment},
    notification_setting::{self, Entity as NotificationSetting},
    push_subscription::{self, Entity as PushSubscription},
    reminder_delivery::{self, Entity as ReminderDelivery},
    reminder_schedule::{self, Entity as ReminderSchedule},
    user::{self, Entity as User},
};

/// A row of [`due_rows`]: one per push subscription of a due schedule (one with
/// no `subscription_id` when the person has none).
#[derive(Debug, FromQueryResult)]
pub(super) struct DueRow {
    pub user_id: Uuid,
    pub subscription_id: Option<Uuid>,
    pub settings: String,
    pub next_slot_at: i64,
    pub unanswered: i32,
    pub last_sent_at: Option<i64>,
    /// The newest check-in's `version` (the server's write time in ms).
    pub last_checkin: Option<i64>,
    pub last_opened: Option<i64>,
    pub pace: Option<String>,
    pub paused_at: Option<i64>,
    pub deleted_at: Option<i64>,
    pub timezone: String,
    /// The person's stored notification choices.
    pub choices: Option<String>,
}

/// Up to `batch` schedules due at `now_ms`, oldest first, locked (skipping rows
/// another claim holds), with the user's zone, the enrollment's pace and pause,
/// the person's notification choices, the latest answer, and a row per push
/// subscription.
pub(super) async fn due_rows(txn: &DatabaseTransaction, now_ms: i64, batch: u64) -> Result<Vec<DueRow>, DbErr> {
    DueRow::find_by_statement(txn.get_database_backend().build(&due_schedules(now_ms, batch))).all(txn).await
}

/// The inner query walks the `next_slot_at` index and stops at `batch` rows; only
/// those are joined and looked up, however many are due.
fn due_schedules(now_ms: i64, batch: u64) -> SelectStatement {
    use reminder_schedule::Column as S;
    let (s, u, e, p, n) = (Alias::new("s"), Alias::new("u"), Alias::new("e"), Alias::new("p"), Alias::new("n"));
    let columns = [S::UserId, S::Settings, S::NextSlotAt, S::Unanswered, S::LastSentAt];
    let locked = Query::select()
        .columns(columns)
        .from(ReminderSchedule)
        .and_where(Expr::col(S::NextSlotAt).lte(now_ms))
        .order_by(S::NextSlotAt, Order::Asc)
        .limit(batch)
        .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
        .to_owned();
    Query::select()
        .columns(columns.map(|c| (s.clone(), c)))
        .expr_as(Expr::col((u.clone(), user::Column::Timezone)), user::Column::Timezone)
        .expr_as(Expr::col((u.clone(), user::Column::DeletedAt)), user::Column::DeletedAt)
        .expr_as(Expr::col((e.clone(), enrollment::Column::Pace)), enrollment::Column::Pace)
        .expr_as(Expr::col((e.clone(), enrollment::Column::PausedAt)), enrollment::Column::PausedAt)
        .expr_as(Expr::col((p.clone(), push_subscription::Column::Id)), Alias::new("subscription_id"))
        .expr_as(Expr::col((n.clone(), notification_setting::Column::Settings)), Alias::new("choices"))
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
            User,
            u.clone(),
            Expr::col((u, user::Column::Id)).equals((s.clone(), S::UserId)),
        )
        .join_as(
            sea_orm::JoinType::LeftJoin,
            Enrollment,
            e.clone(),
            Expr::col((e, enrollment::Column::UserId)).equals((s.clone(), S::UserId)),
        )
        .join_as(
            sea_orm::JoinType::LeftJoin,
            NotificationSetting,
            n.clone(),
            Expr::col((n, notification_setting::Column::UserId)).equals((s.clone(), S::UserId)),
        )
        .join_as(
            sea_orm::JoinType::LeftJoin,
            PushSubscription,
            p.clone(),
            Expr::col((p, push_subscription::Column::UserId)).equals((s, S::UserId)),
        )
        .to_owned()
}

/// What `RETURNING` gives of a delivery recorded now.
#[derive(Debug, FromQueryResult)]
struct Recorded {
    id: Uuid,
    user_id: Uuid,
}

/// Records a delivery for each (user, slot) in one multi-row `INSERT`; returns
/// the new delivery's id by user for those not recorded before (the unique
/// `(slot_at, user_id)` index).
#[tracing::instrument(skip_all)]
pub(super) async fn record_deliveries(
    txn: &DatabaseTransaction,
    offers: &[(Uuid, i64)],
    now_ms: i64,
) -> Result<HashMap<Uuid, Uuid>, DbErr> {
    use reminder_delivery::Column as D;
    let mut recorded = HashMap::with_capacity(offers.len());
    if offers.is_empty() {
        return Ok(recorded);
    }
    let mut insert = Query::insert();
    insert.into_table(ReminderDelivery).columns([D::Id, D::UserId, D::SlotAt, D::SentAt, D::QueuedAt]);
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
        .on_conflict(OnConflict::columns([D::UserId, D::SlotAt]).do_nothing().to_owned())
        .returning(Query::returning().columns([D::Id, D::UserId]));
    for row in Recorded::find_by_statement(txn.get_database_backend().build(&insert)).all(txn).await? {
        recorded.insert(row.user_id, row.id);
    }
    Ok(recorded)
}

/// A schedule's state after a claim.
pub(super) struct ScheduleMove {
    pub user_id: Uuid,
    pub next_slot_at: Option<i64>,
    pub unanswered: i32,
    pub last_sent_at: Option<i64>,
}

/// Writes every schedule's move in one `UPDATE ... FROM (VALUES ...)`, which
/// both backends take (a `VALUES` list's columns are `column1`, `column2`, ... on
/// both).
#[tracing::instrument(skip_all)]
pub(super) async fn move_schedules(
    txn: &DatabaseTransaction,
    moves: &[ScheduleMove],
    now_ms: i64,
) -> Result<(), DbErr> {
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
    use sea_orm::DbBackend;

    use super::due_schedules;

    /// The measured statement, as it was written with column names as strings.
    #[test]
    fn the_claim_reads_as_measured() {
        let sql = DbBackend::Postgres.build(&due_schedules(7, 5)).to_string();
        assert_eq!(
            sql,
            r#"SELECT "s"."user_id", "s"."settings", "s"."next_slot_at", "s"."unanswered", "s"."last_sent_at", "#
                .to_owned()
                + r#""u"."timezone" AS "timezone", "u"."deleted_at" AS "deleted_at", "e"."pace" AS "pace", "#
                + r#""e"."paused_at" AS "paused_at", "p"."id" AS "subscription_id", "n"."settings" AS "choices", "#
                + r#"(SELECT MAX(c.version) FROM checkins c WHERE c.user_id = s.user_id) AS "last_checkin", "#
                + r#"(SELECT MAX(d.opened_at) FROM reminder_deliveries d WHERE d.user_id = s.user_id AND d.opened_at IS NOT NULL) AS "last_opened" "#
                + r#"FROM (SELECT "user_id", "settings", "next_slot_at", "unanswered", "last_sent_at" FROM "reminder_schedules" "#
                + r#"WHERE "next_slot_at" <= 7 ORDER BY "next_slot_at" ASC LIMIT 5 FOR UPDATE SKIP LOCKED) AS "s" "#
                + r#"INNER JOIN "users" AS "u" ON "u"."id" = "s"."user_id" "#
                + r#"LEFT JOIN "enrollments" AS "e" ON "e"."user_id" = "s"."user_id" "#
                + r#"LEFT JOIN "notification_settings" AS "n" ON "n"."user_id" = "s"."user_id" "#
                + r#"LEFT JOIN "push_subscriptions" AS "p" ON "p"."user_id" = "s"."user_id""#
        );
    }
}
