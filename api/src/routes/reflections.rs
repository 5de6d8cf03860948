//! Weekly reflections, newest first. The worker writes them at the end of each
//! local week (Sunday 18:00); here they are only read.

use attune_shared::{
    domain::{
        ValidationErrors,
        reflection::{Reflection, ReflectionWeek},
    },
    reflections::MAX_PAGE,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    error::{ApiError, ApiResult, Problem},
    extract::{CurrentUser, Json, Path, Query},
    state::AppState,
};

const DEFAULT_PAGE: u64 = 10;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// How many reflections to return, 1–52 (default 10).
    #[param(value_type = Option<u64>, minimum = 1, maximum = 52)]
    limit: Option<String>,
    /// The `next_cursor` of the previous page: returns the weeks before it.
    #[param(value_type = Option<String>, example = "2026-11-16")]
    cursor: Option<String>,
}

impl PageParams {
    fn parse(&self) -> Result<(Option<ReflectionWeek>, u64), ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let limit = errors.check(
            "limit",
            self.limit.as_deref().map_or(Ok(DEFAULT_PAGE), |raw| match raw.parse::<u64>() {
                Ok(limit) if (1..=MAX_PAGE).contains(&limit) => Ok(limit),
                _ => Err(format!("must be a whole number from 1 to {MAX_PAGE}")),
            }),
        );
        let cursor = errors.check("cursor", self.cursor.as_deref().map(ReflectionWeek::parse).transpose());
        match (cursor, limit) {
            (Some(cursor), Some(limit)) if errors.is_empty() => Ok((cursor, limit)),
            _ => Err(errors),
        }
    }
}

/// One page of reflections.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReflectionPageView {
    /// Newest first.
    pub reflections: Vec<Reflection>,
    /// Pass as `cursor` for older reflections; null on the last page.
    #[schema(value_type = Option<String>, example = "2026-11-09")]
    pub next_cursor: Option<String>,
}

/// The person's weekly reflections, newest first, a page at a time.
#[utoipa::path(get, path = "/v1/reflections", tag = "reflections", operation_id = "listReflections", security(("bearer" = [])), params(PageParams),
    responses(
        (status = 200, description = "One page of reflections", body = ReflectionPageView),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`limit` or `cursor` is invalid", body = Problem, content_type = "application/problem+json"),
    ))]
async fn list(
    state: AppState,
    CurrentUser(who): CurrentUser,
    Query(params): Query<PageParams>,
) -> ApiResult<Json<ReflectionPageView>> {
    let (cursor, limit) = params.parse().map_err(ApiError::Validation)?;
    let page = state.reflections.page(who.user.id, cursor, limit).await?;
    Ok(Json(ReflectionPageView {
        reflections: page.reflections,
        next_cursor: page.next_cursor.map(|week| week.to_string()),
    }))
}

/// The reflection on one week, named by its Monday.
#[utoipa::path(get, path = "/v1/reflections/{week_start}", tag = "reflections", operation_id = "getReflection", security(("bearer" = [])),
    params(("week_start" = String, Path, description = "The week's Monday, YYYY-MM-DD", example = "2026-11-16")),
    responses(
        (status = 200, description = "The reflection", body = Reflection),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No reflection for that week", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`week_start` is not a date or not a Monday", body = Problem, content_type = "application/problem+json"),
    ))]
async fn get_one(
    state: AppState,
    CurrentUser(who): CurrentUser,
    Path(week_start): Path<String>,
) -> ApiResult<Json<Reflection>> {
    let week = ReflectionWeek::parse(&week_start)
        .map_err(|message| ApiError::Validation(ValidationErrors::single("week_start", message)))?;
    state
        .reflections
        .get(who.user.id, week)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("There is no reflection for the week of {week}.")))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list)).routes(routes!(get_one))
}
