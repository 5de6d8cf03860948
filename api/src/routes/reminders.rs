//! Paced reminders: the person's settings, and marking a reminder opened (which
//! counts as an answer, so reminders keep their normal spacing).

use attune_shared::{
    domain::reminders::{ReminderSettings, ReminderSettingsInput},
    reminders::ReminderView,
};
use axum::http::StatusCode;
use chrono::SecondsFormat;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::{
    error::{ApiResult, Problem},
    extract::{CurrentUser, Json, Path},
    state::AppState,
};

/// The settings, with the next reminder they give.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReminderSettingsView {
    #[serde(flatten)]
    pub settings: ReminderSettings,
    /// RFC 3339 UTC; null when no reminder is coming (disabled, paused, not enrolled).
    pub next_reminder_at: Option<String>,
}

impl From<ReminderView> for ReminderSettingsView {
    fn from(view: ReminderView) -> Self {
        Self {
            settings: view.settings,
            next_reminder_at: view.next_reminder_at.map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true)),
        }
    }
}

/// The reminder settings (the defaults until changed) and the next reminder.
/// `enabled`, `quiet_hours`, `descriptive` and `paused_until` are deprecated
/// aliases of the notification settings (`/v1/notifications/settings`).
#[utoipa::path(get, path = "/v1/reminders/settings", tag = "reminders", operation_id = "getReminderSettings", security(("bearer" = [])),
    responses(
        (status = 200, description = "The settings and the next reminder", body = ReminderSettingsView),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The stored settings cannot be read (nothing is sent until they are saved again)", body = Problem, content_type = "application/problem+json"),
    ))]
async fn get_settings(state: AppState, CurrentUser(who): CurrentUser) -> ApiResult<Json<ReminderSettingsView>> {
    Ok(Json(state.reminders.settings(who.user.id).await?.into()))
}

/// Replace the reminder settings (`days`, `window`); the next reminder is
/// recomputed at once. `enabled`, `quiet_hours`, `descriptive` and
/// `paused_until` are deprecated aliases of the notification settings: when
/// given they change those (for every notification), when left out they stay.
#[utoipa::path(put, path = "/v1/reminders/settings", tag = "reminders", operation_id = "putReminderSettings", security(("bearer" = [])),
    request_body(content = ReminderSettingsInput, description = "The reminder days and time window",
        example = json!({"days": ["mon", "wed", "fri"], "window": {"start": "19:00", "end": "21:00"}})),
    responses(
        (status = 200, description = "The new settings and the next reminder", body = ReminderSettingsView),
        (status = 409, description = "The stored notification settings cannot be read and the request does not replace them all", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid times, no days, or a window entirely within quiet hours", body = Problem, content_type = "application/problem+json"),
    ))]
async fn put_settings(
    state: AppState,
    CurrentUser(who): CurrentUser,
    Json(body): Json<ReminderSettingsInput>,
) -> ApiResult<Json<ReminderSettingsView>> {
    Ok(Json(state.reminders.put_settings(who.user.id, body).await?.into()))
}

/// The person opened a reminder: it counts as answered, so reminders keep their normal spacing.
#[utoipa::path(post, path = "/v1/reminders/{delivery_id}/opened", tag = "reminders", operation_id = "markReminderOpened", security(("bearer" = [])),
    params(("delivery_id" = Uuid, Path, description = "The `delivery_id` of the notification")),
    responses(
        (status = 204, description = "Counted as answered"),
        (status = 404, description = "No such reminder of the caller", body = Problem, content_type = "application/problem+json"),
    ))]
async fn opened(
    state: AppState,
    CurrentUser(who): CurrentUser,
    Path(delivery_id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    state.reminders.opened(who.user.id, delivery_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_settings, put_settings)).routes(routes!(opened))
}
