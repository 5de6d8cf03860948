//! WatermelonDB sync: `GET /v1/sync` pulls, `POST /v1/sync` pushes. See
//! `attune_shared::sync` for the protocol and its guarantees.

use attune_shared::{
    domain::ValidationErrors,
    sync::{MigrationSpec, PullRequest},
};
use axum::{
    body::Body,
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    error::{ApiError, ApiResult, Problem},
    extract::{CurrentUser, Json, Query},
    state::AppState,
};

/// Pull parameters. WatermelonDB's own example sends the literal `null` for a first
/// sync and for "no migration"; both are accepted.
#[derive(Debug, Deserialize, IntoParams)]
pub struct PullParams {
    /// The `timestamp` of the previous pull; absent, `null` or `0` for a first sync.
    pub last_pulled_at: Option<String>,
    /// The app's local schema version.
    pub schema_version: Option<String>,
    /// JSON `{from, tables, columns: [{table, columns}]}` after a local migration, or `null`.
    pub migration: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct PushParams {
    /// The `timestamp` of the client's last pull.
    pub last_pulled_at: Option<String>,
}

/// `{table: {created: [record], updated: [record], deleted: [id]}}`, per synced table
/// (`checkins`, `journal_entries`, `boundaries`). A pull's `created` is always empty:
/// every record comes in `updated`, so clients sync with `sendCreatedAsUpdated: true`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(value_type = Object)]
pub struct Changes(serde_json::Value);

#[derive(Debug, Serialize, ToSchema)]
pub struct PullResponse {
    pub changes: Changes,
    /// Server time of this pull, in epoch ms; send it back as `last_pulled_at`.
    pub timestamp: i64,
    /// `replacement` when the client must replace its local data with this full
    /// snapshot (its last pull is older than the deletion-retention period).
    #[serde(rename = "experimentalStrategy", skip_serializing_if = "Option::is_none")]
    pub experimental_strategy: Option<String>,
}

/// Either `{"changes": {...}}` or the bare changes object.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PushRequest {
    pub changes: Changes,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PushResponse {
    /// The version the changes were stored at.
    pub timestamp: i64,
}

fn parse_number<T: std::str::FromStr>(field: &str, value: Option<&str>) -> Result<Option<T>, ApiError> {
    match value.map(str::trim) {
        None | Some("" | "null" | "undefined") => Ok(None),
        Some(text) => text
            .parse()
            .map(Some)
            .map_err(|_| ApiError::Validation(ValidationErrors::single(field, "must be a whole number or null"))),
    }
}

/// Pull every change since `last_pulled_at` (WatermelonDB protocol). The body is
/// streamed a page at a time.
#[utoipa::path(get, path = "/v1/sync", tag = "sync", operation_id = "pullChanges", params(PullParams), security(("bearer" = [])),
    responses(
        (status = 200, description = "Every change since `last_pulled_at`, and the `timestamp` to send next time", body = PullResponse),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Malformed parameters", body = Problem, content_type = "application/problem+json"),
    ))]
async fn pull(state: AppState, CurrentUser(who): CurrentUser, Query(params): Query<PullParams>) -> ApiResult<Response> {
    let migration = match params.migration.as_deref().map(str::trim) {
        None | Some("" | "null" | "undefined") => None,
        Some(text) => Some(serde_json::from_str::<MigrationSpec>(text).map_err(|e| {
            ApiError::Validation(ValidationErrors::single(
                "migration",
                format!("must be null or WatermelonDB's migration object: {e}"),
            ))
        })?),
    };
    let request = PullRequest {
        last_pulled_at: parse_number("last_pulled_at", params.last_pulled_at.as_deref())?,
        schema_version: parse_number("schema_version", params.schema_version.as_deref())?,
        migration,
    };
    let plan = state.sync.plan_pull(who.user.id, &request).await?;
    let receiver = state.sync.stream_pull(plan);
    let stream = futures::stream::unfold(receiver, |mut rx| async move { rx.recv().await.map(|piece| (piece, rx)) });
    let mut response = Body::from_stream(stream).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(response)
}

/// Push local changes (WatermelonDB protocol): all applied, or none.
#[utoipa::path(post, path = "/v1/sync", tag = "sync", operation_id = "pushChanges", params(PushParams),
    request_body(content = PushRequest, description = "The local changes since the last pull (WatermelonDB's `pushChanges`)",
        example = json!({"changes": {
            "checkins": {"created": [{"id": "k3mB7qY2x9ZcT1aP", "occurred_at": 1_764_000_000_000_i64, "mood": 3, "anxiety": 4, "comfort": 3,
                "exercise_id": null, "completed": true, "note": "Calmer after the walk.", "tags": "[\"calm\"]"}],
                "updated": [], "deleted": []},
            "journal_entries": {"created": [], "updated": [], "deleted": ["x8Jq2LmN0pRs4TuV"]},
            "boundaries": {"created": [], "updated": [], "deleted": []}}})),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every change applied", body = PushResponse),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Records changed on the server since `last_pulled_at` (listed in `conflicts`); pull, then push again", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "More than 5,000 records, or a body over the limit", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid records or parameters; `errors` names table, record id and field", body = Problem, content_type = "application/problem+json"),
    ))]
async fn push(
    state: AppState,
    CurrentUser(who): CurrentUser,
    Query(params): Query<PushParams>,
    Json(body): Json<serde_json::Value>,
) -> ApiResult<Json<PushResponse>> {
    let last_pulled_at = parse_number("last_pulled_at", params.last_pulled_at.as_deref())?;
    let pushed = state.push_changes(who.user.id, last_pulled_at, &body).await?;
    Ok(Json(PushResponse { timestamp: pushed.version }))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(pull, push))
}
