//! The person's sessions: every device signed in, and ending them.

use attune_shared::accounts::SessionSummary;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::rfc3339;
use crate::{
    error::{ApiResult, Problem},
    extract::{CurrentUser, Json, Path},
    state::AppState,
};

/// One signed-in device.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceSession {
    pub id: Uuid,
    /// The `device_name` given at sign-in, or a short label from the app's
    /// `User-Agent` (`Firefox on Windows`, `iPhone`); `Unknown device` otherwise.
    pub device: String,
    /// RFC 3339 UTC.
    pub created_at: String,
    /// RFC 3339 UTC; recorded at most once a minute.
    pub last_used_at: String,
    /// The session this request was made with.
    pub current: bool,
}

impl From<SessionSummary> for DeviceSession {
    fn from(s: SessionSummary) -> Self {
        Self {
            id: s.id,
            device: s.device.unwrap_or_else(|| "Unknown device".to_owned()),
            created_at: rfc3339(s.created_at),
            last_used_at: rfc3339(s.last_used_at),
            current: s.current,
        }
    }
}

/// Every device signed in to the account, most recently used first.
#[utoipa::path(get, path = "/v1/me/sessions", tag = "accounts", operation_id = "listSessions", security(("bearer" = [])),
    responses(
        (status = 200, description = "The live sessions", body = Vec<DeviceSession>),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
    ))]
async fn list_sessions(state: AppState, CurrentUser(who): CurrentUser) -> ApiResult<Json<Vec<DeviceSession>>> {
    let sessions = state.accounts.sessions(&who).await?;
    Ok(Json(sessions.into_iter().map(DeviceSession::from).collect()))
}

/// Sign out one device: its access and refresh tokens stop working at once.
#[utoipa::path(delete, path = "/v1/me/sessions/{id}", tag = "accounts", operation_id = "endSession", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "A session id from `GET /v1/me/sessions`")),
    responses(
        (status = 204, description = "Signed out"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "None of your live sessions has this id (someone else's, ended or unknown: the same answer)", body = Problem, content_type = "application/problem+json"),
    ))]
async fn end_session(state: AppState, CurrentUser(who): CurrentUser, Path(id): Path<Uuid>) -> ApiResult<StatusCode> {
    state.accounts.end_session(&who, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sign out every other device; this one stays signed in.
#[utoipa::path(delete, path = "/v1/me/sessions", tag = "accounts", operation_id = "endOtherSessions", security(("bearer" = [])),
    responses(
        (status = 204, description = "Every other session ended"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
    ))]
async fn end_other_sessions(state: AppState, CurrentUser(who): CurrentUser) -> ApiResult<StatusCode> {
    state.accounts.end_other_sessions(&who).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_sessions, end_other_sessions)).routes(routes!(end_session))
}
