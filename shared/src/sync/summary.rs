//! The stored summary of each person's check-ins (`domain::history`): changed
//! by every push that writes or deletes check-ins, in the push's transaction,
//! and read, alone, by the program's rules (`today`, advancing, descriptive
//! reminders). What is read is bounded by the catalog and one week.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter,
    sea_query::{Expr, ExprTrait, OnConflict},
};
use uuid::Uuid;

use super::sql;
use crate::{
    db,
    domain::{
        history::{CheckinSummary, ExerciseTally, SummaryDelta},
        pacing::CheckinFact,
    },
    entities::{checkin_distress, checkin_exercise_tally as tally, checkin_session_slot as slot},
};

/// Slot rows per statement: a user id and two 8-byte numbers (14 bytes bound)
/// (`db::MAX_STATEMENT_BYTES`).
const SLOT_CHUNK: usize = db::rows_per_statement(db::UUID_BIND_BYTES + 2 * 14);

fn ms(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

fn time(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

pub(crate) fn fact(row: sql::CheckinFactRow) -> CheckinFact {
    CheckinFact {
        occurred_at: time(row.occurred_at),
        anxiety: row.anxiety,
        comfort: row.comfort,
        exercise_id: row.exercise_id,
        completed: row.completed,
    }
}

/// Every check-in of `user_id`, as the rules would see a whole history.
pub async fn all_facts<C: ConnectionTrait>(db: &C, user_id: Uuid) -> Result<Vec<CheckinFact>, DbErr> {
    Ok(sql::checkin_facts(db, user_id).await?.into_iter().map(fact).collect())
}

/// Applies `delta` to `user_id`'s summary, on the push's transaction, after the
/// check-ins are written. What only adds (new check-ins, the common push) is
/// added in the statement that writes it, whatever is stored: one upsert for
/// the exercise tallies, one for the distress signal, one for the slots. A
/// latest completion or distress signal that was replaced or deleted is looked
/// up again among what is stored now.
pub async fn apply<C: ConnectionTrait>(db: &C, user_id: Uuid, delta: &SummaryDelta) -> Result<(), DbErr> {
    if delta.is_empty() {
        return Ok(());
    }
    apply_tallies(db, user_id, delta).await?;
    apply_distress(db, user_id, delta).await?;
    apply_slots(db, user_id, delta).await
}

/// What an upsert finds stored in `column` (`table.column`) and what it brings
/// (`excluded.column`).
fn stored_and_excluded<C: ColumnTrait>(column: C) -> (Expr, Expr) {
    (Expr::col((column.entity_name(), column)), Expr::cust(format!("excluded.{}", column.as_str())))
}

/// An upsert's new value of `column`: what is stored plus what it brings, in
/// either dialect.
fn sum_of<C: ColumnTrait>(column: C) -> (C, Expr) {
    let (stored, excluded) = stored_and_excluded(column);
    (column, stored.add(excluded))
}

/// An upsert's new value of `column`: the later of what is stored and what it
/// brings, in either dialect.
fn later_of<C: ColumnTrait>(column: C) -> (C, Expr) {
    let (stored, excluded) = stored_and_excluded(column);
    (column, Expr::case(excluded.clone().gt(stored.clone()), excluded).finally(stored).into())
}

/// Tally rows per statement: a user id, an exercise id (at most 64 bytes) and
/// three 8-byte numbers (`db::MAX_STATEMENT_BYTES`).
const TALLY_CHUNK: usize = db::rows_per_statement(db::UUID_BIND_BYTES + 68 + 3 * 14);

async fn apply_tallies<C: ConnectionTrait>(db: &C, user_id: Uuid, delta: &SummaryDelta) -> Result<(), DbErr> {
    let (added, changed): (Vec<_>, Vec<_>) =
        delta.exercises.iter().partition(|(_, change)| change.latest_removed.is_none());
    let added: Vec<tally::ActiveModel> = added
        .into_iter()
        .filter_map(|(exercise_id, change)| {
            Some(tally::ActiveModel {
                user_id: Set(user_id),
                exercise_id: Set(exercise_id.clone()),
                completions: Set(change.completions),
                comfortable: Set(change.comfortable),
                last_completed_at: Set(ms(change.latest_added?)),
            })
        })
        .collect();
    for chunk in added.chunks(TALLY_CHUNK) {
        tally::Entity::insert_many(chunk.iter().cloned())
            .on_conflict(
                OnConflict::columns([tally::Column::UserId, tally::Column::ExerciseId])
                    .values([
                        sum_of(tally::Column::Completions),
                        sum_of(tally::Column::Comfortable),
                        later_of(tally::Column::LastCompletedAt),
                    ])
                    .to_owned(),
            )
            .exec_without_returning(db)
            .await?;
    }
    if changed.is_empty() {
        return Ok(());
    }
    let stored: HashMap<String, tally::Model> = tally::Entity::find()
        .filter(tally::Column::UserId.eq(user_id))
        .filter(tally::Column::ExerciseId.is_in(changed.iter().map(|(id, _)| id.as_str())))
        .all(db)
        .await?
        .into_iter()
        .map(|row| (row.exercise_id.clone(), row))
        .collect();
    for (exercise_id, change) in changed {
        let before = stored.get(exercise_id);
        let completions = before.map_or(0, |b| b.completions) + change.completions;
        if completions <= 0 {
            if before.is_some() {
                tally::Entity::delete_by_id((user_id, exercise_id.clone())).exec(db).await?;
            }
            continue;
        }
        let lost_latest = change.latest_removed.is_some_and(|r| before.is_none_or(|b| ms(r) >= b.last_completed_at));
        let last = if lost_latest {
            sql::latest_completion(db, user_id, exercise_id).await?
        } else {
            before.map(|b| b.last_completed_at).into_iter().chain(change.latest_added.map(ms)).max()
        };
        let Some(last) = last else { continue };
        let row = tally::ActiveModel {
            user_id: Set(user_id),
            exercise_id: Set(exercise_id.clone()),
            completions: Set(completions),
            comfortable: Set(before.map_or(0, |b| b.comfortable) + change.comfortable),
            last_completed_at: Set(last),
        };
        tally::Entity::insert(row)
            .on_conflict(
                OnConflict::columns([tally::Column::UserId, tally::Column::ExerciseId])
                    .update_columns([
                        tally::Column::Completions,
                        tally::Column::Comfortable,
                        tally::Column::LastCompletedAt,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(db)
            .await?;
    }
    Ok(())
}

async fn apply_distress<C: ConnectionTrait>(db: &C, user_id: Uuid, delta: &SummaryDelta) -> Result<(), DbErr> {
    let change = &delta.distress;
    let Some(added) = change.latest_added.filter(|_| change.latest_removed.is_none()) else {
        return replace_distress(db, user_id, delta).await;
    };
    checkin_distress::Entity::insert(checkin_distress::ActiveModel {
        user_id: Set(user_id),
        checkins: Set(change.count),
        last_at: Set(ms(added)),
    })
    .on_conflict(
        OnConflict::column(checkin_distress::Column::UserId)
            .values([sum_of(checkin_distress::Column::Checkins), later_of(checkin_distress::Column::LastAt)])
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// The distress signal after a push that replaced or deleted a check-in.
async fn replace_distress<C: ConnectionTrait>(db: &C, user_id: Uuid, delta: &SummaryDelta) -> Result<(), DbErr> {
    let change = &delta.distress;
    if change.latest_removed.is_none() {
        return Ok(());
    }
    let before = checkin_distress::Entity::find_by_id(user_id).one(db).await?;
    let count = before.as_ref().map_or(0, |b| b.checkins) + change.count;
    if count <= 0 {
        if before.is_some() {
            checkin_distress::Entity::delete_by_id(user_id).exec(db).await?;
        }
        return Ok(());
    }
    let lost_latest = change.latest_removed.is_some_and(|r| before.as_ref().is_none_or(|b| ms(r) >= b.last_at));
    let last = if lost_latest {
        sql::latest_distress(db, user_id).await?
    } else {
        before.as_ref().map(|b| b.last_at).into_iter().chain(change.latest_added.map(ms)).max()
    };
    let Some(last) = last else { return Ok(()) };
    checkin_distress::Entity::insert(checkin_distress::ActiveModel {
        user_id: Set(user_id),
        checkins: Set(count),
        last_at: Set(last),
    })
    .on_conflict(
        OnConflict::column(checkin_distress::Column::UserId)
            .update_columns([checkin_distress::Column::Checkins, checkin_distress::Column::LastAt])
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// Adds each slot's change to what is stored (one statement per chunk), then
/// drops the slots left empty.
async fn apply_slots<C: ConnectionTrait>(db: &C, user_id: Uuid, delta: &SummaryDelta) -> Result<(), DbErr> {
    let changed: Vec<(i64, i64)> =
        delta.slots.iter().filter(|(_, n)| **n != 0).map(|(slot, n)| (ms(*slot), *n)).collect();
    for chunk in changed.chunks(SLOT_CHUNK) {
        let rows = chunk.iter().map(|(slot_at, n)| slot::ActiveModel {
            user_id: Set(user_id),
            slot_at: Set(*slot_at),
            completions: Set(*n),
        });
        slot::Entity::insert_many(rows)
            .on_conflict(
                OnConflict::columns([slot::Column::UserId, slot::Column::SlotAt])
                    .values([sum_of(slot::Column::Completions)])
                    .to_owned(),
            )
            .exec_without_returning(db)
            .await?;
        if chunk.iter().any(|(_, n)| *n < 0) {
            slot::Entity::delete_many()
                .filter(slot::Column::UserId.eq(user_id))
                .filter(slot::Column::SlotAt.is_in(chunk.iter().filter(|(_, n)| *n < 0).map(|(s, _)| *s)))
                .filter(slot::Column::Completions.lte(0))
                .exec(db)
                .await?;
        }
    }
    Ok(())
}

/// What the rules read, in one round trip: every exercise tally, the distress
/// signal, and, given the week's local midnights (`pacing::week_days`), the
/// first slot with a completion of each local day of that week. That is all
/// `CheckinSummary::sessions_this_week` counts (days), and it keeps the read at
/// most seven slots however many sessions the week held; none without a week.
pub async fn read<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
    week: Option<&[DateTime<Utc>; 8]>,
) -> Result<CheckinSummary, DbErr> {
    let mut summary = CheckinSummary::default();
    for row in sql::summary_rows(db, user_id, week.map(|days| days.map(ms))).await? {
        match (row.kind.as_str(), row.exercise_id) {
            ("t", Some(id)) => {
                let tally = ExerciseTally { completions: row.a, comfortable: row.b, last_completed_at: time(row.c) };
                summary.exercises.insert(id, tally);
            }
            ("d", _) => {
                summary.distress_checkins = row.a;
                summary.last_distress_at = Some(time(row.c));
            }
            ("s", _) => {
                summary.session_slots.insert(time(row.c), row.a);
            }
            _ => {}
        }
    }
    Ok(summary)
}

/// The whole stored summary, every slot included (the property test compares it
/// with [`CheckinSummary::of`] the stored check-ins).
pub async fn read_all<C: ConnectionTrait>(db: &C, user_id: Uuid) -> Result<CheckinSummary, DbErr> {
    let mut summary = read_tallies(db, user_id).await?;
    let slots = slot::Entity::find().filter(slot::Column::UserId.eq(user_id)).all(db).await?;
    summary.session_slots = slots.into_iter().map(|s| (time(s.slot_at), s.completions)).collect();
    Ok(summary)
}

async fn read_tallies<C: ConnectionTrait>(db: &C, user_id: Uuid) -> Result<CheckinSummary, DbErr> {
    let tallies = tally::Entity::find().filter(tally::Column::UserId.eq(user_id)).all(db).await?;
    let distress = checkin_distress::Entity::find_by_id(user_id).one(db).await?;
    Ok(CheckinSummary {
        exercises: tallies
            .into_iter()
            .map(|t| {
                let tally = ExerciseTally {
                    completions: t.completions,
                    comfortable: t.comfortable,
                    last_completed_at: time(t.last_completed_at),
                };
                (t.exercise_id, tally)
            })
            .collect(),
        distress_checkins: distress.as_ref().map_or(0, |d| d.checkins),
        last_distress_at: distress.map(|d| time(d.last_at)),
        session_slots: Default::default(),
    })
}
