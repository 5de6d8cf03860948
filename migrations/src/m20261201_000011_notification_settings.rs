//! One place for a person's notification choices: `notification_settings`, one
//! row per person who changed them (no row: the defaults), holding as JSON
//! `{reminders, reflections, quiet_hours, paused_until, descriptive}`.
//!
//! Until now `enabled`, `quiet_hours`, `paused_until` and `descriptive` lived in
//! the reminder settings (`reminder_schedules.settings`), and a second
//! `descriptive` on the account (`users.descriptive_notifications`). This moves
//! the four out of each schedule's JSON into the person's choices, leaving the
//! schedule its own `days` and `window`.
//!
//! **How the two `descriptive` values combine: the reminder settings' value
//! wins, whatever the account's says.** It was the one any notification read
//! (reminders; reflection notices and test pushes have only discreet texts and
//! read neither), so everyone keeps exactly the texts they got: someone who
//! turned descriptive on only on their profile was getting discreet reminders
//! and stays discreet (the private choice when the two disagree); someone who
//! turned it on in the reminder settings keeps descriptive reminders. People
//! without a schedule get no row, so the defaults: discreet.
//!
//! A schedule whose JSON does not parse is left as it is; from this release on
//! it sends nothing and is counted (`attune_notification_settings_invalid_total`)
//! until the person saves settings again, where the previous release sent with
//! the defaults.
//!
//! The previous release may still run while this one rolls out. It reads every
//! account's `descriptive_notifications`, so the column stays (unread, and no
//! longer written) until the next release's migration drops it. Its dispatcher
//! reading a moved schedule falls back to its defaults for one claim, which
//! cannot send what the person turned off: a disabled or paused person's
//! schedule has no due slot, and the default texts are the discreet ones.
//! `down` puts the choices back into the schedules (and the account column).

use sea_orm_migration::{
    prelude::*,
    schema::*,
    sea_orm::{ConnectionTrait, Statement, prelude::Uuid},
    sea_query::{IntoIden, TableRef, ValueTuple},
};
use serde_json::{Map, Value, json};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    DescriptiveNotifications,
}

#[derive(DeriveIden)]
enum NotificationSettings {
    Table,
    UserId,
    Settings,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum ReminderSchedules {
    Table,
    UserId,
    Settings,
    NextSlotAt,
    Unanswered,
    UpdatedAt,
}

/// Rows read per round trip.
const PAGE: u64 = 500;
/// The keys that move from a schedule's settings to the person's choices.
const MOVED: [&str; 4] = ["enabled", "quiet_hours", "paused_until", "descriptive"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(NotificationSettings::Table)
                    .col(uuid(NotificationSettings::UserId).primary_key())
                    // Read and written whole, never queried; read strictly.
                    .col(text(NotificationSettings::Settings))
                    .col(big_integer(NotificationSettings::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(NotificationSettings::Table, NotificationSettings::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        let backend = db.get_database_backend();
        let mut after: Option<Uuid> = None;
        loop {
            let page = schedules_page(db, after).await?;
            let moved: Vec<_> = page
                .iter()
                .filter_map(|(user_id, settings, updated_at)| {
                    split(settings).map(|(choices, plan)| (*user_id, choices, plan, *updated_at))
                })
                .collect();
            if !moved.is_empty() {
                // A statement of each kind per page, not per person.
                let mut insert = Query::insert();
                insert.into_table(NotificationSettings::Table).columns([
                    NotificationSettings::UserId,
                    NotificationSettings::Settings,
                    NotificationSettings::UpdatedAt,
                ]);
                for (user_id, choices, _, updated_at) in &moved {
                    insert
                        .values([(*user_id).into(), choices.to_string().into(), (*updated_at).into()])
                        .map_err(|e| DbErr::Custom(e.to_string()))?;
                }
                insert.on_conflict(OnConflict::column(NotificationSettings::UserId).do_nothing().to_owned());
                db.execute_raw(backend.build(&insert)).await?;
                let v = Alias::new("v");
                let plans = moved
                    .iter()
                    .map(|(user_id, _, plan, _)| ValueTuple::Two((*user_id).into(), plan.to_string().into()))
                    .collect();
                // Both backends name a VALUES list's columns column1, column2, ….
                let update = Query::update()
                    .table(ReminderSchedules::Table)
                    .value(ReminderSchedules::Settings, Expr::col((v.clone(), Alias::new("column2"))))
                    .from(TableRef::ValuesList(plans, v.clone().into_iden()))
                    .and_where(
                        Expr::col((ReminderSchedules::Table, ReminderSchedules::UserId))
                            .equals((v, Alias::new("column1"))),
                    )
                    .to_owned();
                db.execute_raw(backend.build(&update)).await?;
            }
            if (page.len() as u64) < PAGE {
                break;
            }
            after = page.last().map(|(user_id, _, _)| *user_id);
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let backend = db.get_database_backend();
        let rows = db
            .query_all_raw(Statement::from_string(
                backend,
                "SELECT n.user_id AS user_id, n.settings AS choices, n.updated_at AS updated_at, s.settings AS plan \
                 FROM notification_settings n LEFT JOIN reminder_schedules s ON s.user_id = n.user_id",
            ))
            .await?;
        for row in rows {
            let user_id: Uuid = row.try_get("", "user_id")?;
            let updated_at: i64 = row.try_get("", "updated_at")?;
            let Ok(choices) = serde_json::from_str::<Value>(&row.try_get::<String>("", "choices")?) else { continue };
            let plan: Option<String> = row.try_get("", "plan")?;
            let descriptive = choices["descriptive"].as_bool().unwrap_or(false);
            let update = Query::update()
                .table(Users::Table)
                .value(Users::DescriptiveNotifications, descriptive)
                .and_where(Expr::col(Users::Id).eq(user_id))
                .to_owned();
            db.execute_raw(backend.build(&update)).await?;
            let merged = merge(plan.as_deref(), &choices).to_string();
            let statement = match plan {
                Some(_) => backend.build(
                    Query::update()
                        .table(ReminderSchedules::Table)
                        .value(ReminderSchedules::Settings, merged)
                        .and_where(Expr::col(ReminderSchedules::UserId).eq(user_id)),
                ),
                // No due slot: the previous release computes one from these
                // settings at the person's next change, as it would for anyone.
                None => backend.build(
                    Query::insert()
                        .into_table(ReminderSchedules::Table)
                        .columns([
                            ReminderSchedules::UserId,
                            ReminderSchedules::Settings,
                            ReminderSchedules::NextSlotAt,
                            ReminderSchedules::Unanswered,
                            ReminderSchedules::UpdatedAt,
                        ])
                        .values([
                            user_id.into(),
                            merged.into(),
                            Option::<i64>::None.into(),
                            0.into(),
                            updated_at.into(),
                        ])
                        .map_err(|e| DbErr::Custom(e.to_string()))?,
                ),
            };
            db.execute_raw(statement).await?;
        }
        manager.drop_table(Table::drop().table(NotificationSettings::Table).to_owned()).await
    }
}

/// A page of (user, settings, updated_at) of reminder schedules after `after`.
async fn schedules_page(db: &impl ConnectionTrait, after: Option<Uuid>) -> Result<Vec<(Uuid, String, i64)>, DbErr> {
    let mut query = Query::select()
        .columns([ReminderSchedules::UserId, ReminderSchedules::Settings, ReminderSchedules::UpdatedAt])
        .from(ReminderSchedules::Table)
        .order_by(ReminderSchedules::UserId, Order::Asc)
        .limit(PAGE)
        .to_owned();
    if let Some(after) = after {
        query.and_where(Expr::col(ReminderSchedules::UserId).gt(after));
    }
    let rows = db.query_all_raw(db.get_database_backend().build(&query)).await?;
    rows.iter()
        .map(|row| Ok((row.try_get("", "user_id")?, row.try_get("", "settings")?, row.try_get("", "updated_at")?)))
        .collect()
}

/// The person's choices and the schedule's own plan from a schedule's settings
/// in the previous shape; `None` when the text is not that shape (unparseable,
/// or already moved).
fn split(settings: &str) -> Option<(Value, Value)> {
    let old: Map<String, Value> = serde_json::from_str(settings).ok()?;
    let enabled = old.get("enabled")?.as_bool()?;
    let choices = json!({
        "reminders": enabled,
        "reflections": true,
        "quiet_hours": old.get("quiet_hours")?,
        "paused_until": old.get("paused_until").cloned().unwrap_or(Value::Null),
        // The value the reminders read: see the module's comment.
        "descriptive": old.get("descriptive").and_then(Value::as_bool).unwrap_or(false),
    });
    let plan: Map<String, Value> = old.into_iter().filter(|(key, _)| !MOVED.contains(&key.as_str())).collect();
    Some((choices, Value::Object(plan)))
}

/// A schedule's settings in the previous shape: its plan (or the defaults) with
/// the choices that apply to reminders.
fn merge(plan: Option<&str>, choices: &Value) -> Value {
    let mut merged: Map<String, Value> = plan.and_then(|plan| serde_json::from_str(plan).ok()).unwrap_or_else(|| {
        let defaults = json!({"days": ["mon", "wed", "fri"], "window": {"start": "19:00", "end": "21:00"}});
        defaults.as_object().cloned().unwrap_or_default()
    });
    merged.insert("enabled".into(), choices["reminders"].clone());
    for key in ["quiet_hours", "paused_until", "descriptive"] {
        merged.insert(key.into(), choices[key].clone());
    }
    Value::Object(merged)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reminder_settings_descriptive_moves_with_the_other_choices_and_the_plan_stays() {
        let old = r#"{"enabled":false,"days":["tue"],"window":{"start":"08:00","end":"09:00"},
                      "quiet_hours":{"start":"23:00","end":"06:00"},"descriptive":true,
                      "paused_until":"2030-01-01T09:00:00Z"}"#;
        let (choices, plan) = split(old).unwrap_or_default();
        assert_eq!(
            choices,
            json!({"reminders": false, "reflections": true, "quiet_hours": {"start": "23:00", "end": "06:00"},
                   "paused_until": "2030-01-01T09:00:00Z", "descriptive": true})
        );
        assert_eq!(plan, json!({"days": ["tue"], "window": {"start": "08:00", "end": "09:00"}}));
        assert_eq!(merge(Some(&plan.to_string()), &choices), serde_json::from_str::<Value>(old).unwrap_or_default());
        assert_eq!(split(&plan.to_string()), None, "already moved");
        assert_eq!(split("{not json"), None);
    }
}
