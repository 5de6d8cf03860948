//! The signed-in person's own account: profile, export and deletion.

use attune_shared::{
    accounts::ProfilePatch,
    domain::{notification_choices::NotificationChoices, reflection::Reflection},
    notifications::choices::ChoicesError,
};
use axum::{http::StatusCode, response::IntoResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::{UserView, rfc3339};
use crate::{
    error::{ApiResult, Problem},
    extract::{CurrentUser, Json},
    state::AppState,
};

/// Fields to change; absent fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileUpdate {
    pub display_name: Option<String>,
    /// IANA time zone name.
    pub timezone: Option<String>,
    /// ISO 3166-1 alpha-2 code for professional-help resources; `null` clears it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub country: Option<Option<String>>,
    /// Deprecated: set `descriptive` with `PUT /v1/notifications/settings`
    /// instead; this alias of it works for one release.
    #[schema(deprecated)]
    pub descriptive_notifications: Option<bool>,
}

/// Tells an absent field (`None`) from an explicit `null` (`Some(None)`).
fn double_option<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(deserializer).map(Some)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeletionAccepted {
    /// Always `deletion_scheduled`.
    pub status: String,
    pub detail: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    pub id: Uuid,
    pub created_at: String,
    pub last_used_at: String,
    pub expires_at: String,
    pub revoked_at: Option<String>,
}

/// Everything Attune holds about the account.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountExportView {
    pub exported_at: String,
    pub user: UserView,
    pub sessions: Vec<SessionView>,
    /// Every synced record (check-ins, journal entries, boundaries), decrypted, as
    /// `{"checkins": [...], "journal_entries": [...], "boundaries": [...]}`.
    #[schema(value_type = Object)]
    pub records: serde_json::Value,
    /// Every weekly reflection, oldest first.
    pub reflections: Vec<Reflection>,
    /// The notification settings; null while the stored ones cannot be read.
    pub notification_settings: Option<NotificationChoices>,
}

/// The signed-in person's profile.
#[utoipa::path(get, path = "/v1/me", tag = "accounts", operation_id = "getMe", security(("bearer" = [])),
    responses(
        (status = 200, description = "The profile", body = UserView),
        (status = 401, description = "Not signed in, or the token has expired or was revoked", body = Problem, content_type = "application/problem+json"),
    ))]
async fn get_me(state: AppState, CurrentUser(who): CurrentUser) -> ApiResult<Json<UserView>> {
    let descriptive = state.notification_settings.descriptive(who.user.id).await?;
    Ok(Json(UserView::new(&who.user, descriptive)))
}

/// Change the display name, time zone or country (and, deprecated, `descriptive_notifications`).
#[utoipa::path(patch, path = "/v1/me", tag = "accounts", operation_id = "updateMe", security(("bearer" = [])),
    request_body(content = ProfileUpdate, description = "The fields to change",
        example = json!({"display_name": "Sam", "timezone": "Europe/Berlin", "country": "DE"})),
    responses(
        (status = 200, description = "The updated profile", body = UserView),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`descriptive_notifications` given while the stored notification settings cannot be read", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid values, or an unknown field: `errors` names each", body = Problem, content_type = "application/problem+json"),
    ))]
async fn update_me(
    state: AppState,
    CurrentUser(who): CurrentUser,
    Json(body): Json<ProfileUpdate>,
) -> ApiResult<Json<UserView>> {
    if body.descriptive_notifications.is_some() {
        // Refuse before changing anything when the choices cannot take it.
        state.notification_settings.get(who.user.id).await?;
    }
    let patch = ProfilePatch { display_name: body.display_name, timezone: body.timezone, country: body.country };
    let user = state.accounts.update_profile(&who, patch).await?;
    if let Some(descriptive) = body.descriptive_notifications {
        state.notification_settings.set_descriptive(user.id, descriptive).await?;
    }
    if user.timezone != who.user.timezone {
        // Reminders fall at local times: a new zone moves them.
        state.reminders.recompute(user.id).await?;
    }
    let descriptive = state.notification_settings.descriptive(user.id).await?;
    Ok(Json(UserView::new(&user, descriptive)))
}

/// Delete the account. Every token stops working at once; everything the account
/// had is then purged by a background job.
#[utoipa::path(delete, path = "/v1/me", tag = "accounts", operation_id = "deleteMe", security(("bearer" = [])),
    responses(
        (status = 202, description = "The account is closed; a background job erases its data", body = DeletionAccepted),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
    ))]
async fn delete_me(state: AppState, CurrentUser(who): CurrentUser) -> ApiResult<impl IntoResponse> {
    state.accounts.delete(&who).await?;
    let body = DeletionAccepted {
        status: "deletion_scheduled".into(),
        detail: "Your account is closed and everything in it will be erased shortly.".into(),
    };
    Ok((StatusCode::ACCEPTED, Json(body)))
}

/// Download everything Attune holds about the account.
#[utoipa::path(get, path = "/v1/me/export", tag = "accounts", operation_id = "exportMe", security(("bearer" = [])),
    responses(
        (status = 200, description = "Everything held about the account", body = AccountExportView),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
    ))]
async fn export_me(state: AppState, CurrentUser(who): CurrentUser) -> ApiResult<Json<AccountExportView>> {
    let export = state.accounts.export(&who).await?;
    let records = state.sync.pull_value(who.user.id, &Default::default()).await?;
    let reflections = state.reflections.all(who.user.id).await?;
    let notification_settings = match state.notification_settings.get(who.user.id).await {
        Ok(choices) => Some(choices),
        Err(ChoicesError::Unreadable(_)) => None,
        Err(other) => return Err(other.into()),
    };
    Ok(Json(AccountExportView {
        exported_at: rfc3339(state.clock.now_ms()),
        user: UserView::new(&export.user, state.notification_settings.descriptive(who.user.id).await?),
        sessions: export
            .sessions
            .iter()
            .map(|s| SessionView {
                id: s.id,
                created_at: rfc3339(s.created_at),
                last_used_at: rfc3339(s.last_used_at),
                expires_at: rfc3339(s.expires_at),
                revoked_at: s.revoked_at.map(rfc3339),
            })
            .collect(),
        records: records_by_table(&records["changes"]),
        reflections,
        notification_settings,
    }))
}

/// The synced records of a full pull, as `{table: [record, ...]}`: a full pull
/// sends every record once, as `updated`.
fn records_by_table(changes: &serde_json::Value) -> serde_json::Value {
    let tables = changes.as_object().into_iter().flatten();
    tables.map(|(table, slices)| (table.clone(), slices["updated"].clone())).collect::<serde_json::Map<_, _>>().into()
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_me, update_me, delete_me)).routes(routes!(export_me))
}
