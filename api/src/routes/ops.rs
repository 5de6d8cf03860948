//! Operations: liveness, readiness and metrics.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    error::{ApiError, ApiResult, Problem},
    extract::Json,
    state::AppState,
};

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    pub status: String,
}

/// The process is alive.
#[utoipa::path(get, path = "/healthz", tag = "operations", operation_id = "healthz",
    responses((status = 200, description = "Alive", body = Health)))]
async fn healthz() -> Json<Health> {
    Json(Health { status: "ok".into() })
}

/// The database and the job queue answer.
#[utoipa::path(get, path = "/readyz", tag = "operations", operation_id = "readyz",
    responses(
        (status = 200, description = "Ready to serve", body = Health),
        (status = 503, description = "A dependency does not answer", body = Problem, content_type = "application/problem+json"),
    ))]
async fn readyz(state: AppState) -> ApiResult<Json<Health>> {
    if let Err(error) = attune_shared::db::ping(&state.db).await {
        tracing::warn!(%error, "readiness: database does not answer");
        return Err(ApiError::unavailable("The database does not answer."));
    }
    if let Err(error) = state.queue.ping().await {
        tracing::warn!(%error, "readiness: job queue does not answer");
        return Err(ApiError::unavailable("The job queue does not answer."));
    }
    Ok(Json(Health { status: "ready".into() }))
}

/// Prometheus metrics (text exposition format).
#[utoipa::path(get, path = "/metrics", tag = "operations", operation_id = "metrics",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain", body = String)))]
async fn metrics(state: AppState) -> Response {
    let mut response = attune_shared::telemetry::render_metrics(&state.queue).await.into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    response
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(healthz)).routes(routes!(readyz)).routes(routes!(metrics))
}
