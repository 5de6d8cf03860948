//! The person's notification choices: one set for every notification Attune
//! sends (reminders, reflection notices, and kinds to come): each kind on or
//! off, quiet hours, a pause, and discreet or descriptive texts.

use attune_shared::domain::notification_choices::{NotificationChoices, NotificationChoicesInput};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    error::{ApiResult, Problem},
    extract::{CurrentUser, Json},
    state::AppState,
};

/// The notification settings (the defaults until changed): reminders and
/// reflection notices on, partner updates off, quiet from 22:00 to 07:00 in the
/// profile's time zone, not paused, discreet texts.
#[utoipa::path(get, path = "/v1/notifications/settings", tag = "notifications", operation_id = "getNotificationSettings", security(("bearer" = [])),
    responses(
        (status = 200, description = "The notification settings", body = NotificationChoices),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The stored settings cannot be read (nothing is sent until they are saved again)", body = Problem, content_type = "application/problem+json"),
    ))]
async fn get_settings(state: AppState, CurrentUser(who): CurrentUser) -> ApiResult<Json<NotificationChoices>> {
    Ok(Json(state.notification_settings.get(who.user.id).await?))
}

/// Replace the notification settings (send every field; `paused_until: null`
/// for not paused; `partner_updates`, opt-in, may be left out to keep it as it
/// is). The next reminder moves to match at once.
#[utoipa::path(put, path = "/v1/notifications/settings", tag = "notifications", operation_id = "putNotificationSettings", security(("bearer" = [])),
    request_body(content = NotificationChoicesInput, description = "Every notification choice", example = json!({
        "reminders": true, "reflections": false,
        "quiet_hours": {"start": "22:00", "end": "07:00"},
        "paused_until": null, "descriptive": false, "partner_updates": false
    })),
    responses(
        (status = 200, description = "The new notification settings", body = NotificationChoices),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A missing or invalid field, named in `errors`", body = Problem, content_type = "application/problem+json"),
    ))]
async fn put_settings(
    state: AppState,
    CurrentUser(who): CurrentUser,
    Json(body): Json<NotificationChoicesInput>,
) -> ApiResult<Json<NotificationChoices>> {
    Ok(Json(state.notification_settings.put(who.user.id, body).await?))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_settings, put_settings))
}
