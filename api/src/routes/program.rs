//! The program: its content, a person's enrollment and steps, today's suggestion,
//! and professional-help resources.

use attune_shared::{
    content::{self, CountryResources, Exercise, Program, ProgramMode},
    domain::{Country, ValidationErrors, pacing::Pace, today::TodayKind},
    enrollment::{Current, EnrollmentPatch},
};
use axum::{
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::rfc3339;
use crate::{
    error::{ApiError, ApiResult, Problem},
    extract::{CurrentUser, Json, Path, Query},
    state::AppState,
};

/// Program content changes only with a release: caches may keep it an hour.
const CONTENT_CACHE: &str = "public, max-age=3600";

#[derive(Debug, Serialize, ToSchema)]
pub struct ProgramSummary {
    pub slug: String,
    pub title: String,
    pub description: String,
    pub version: String,
    pub modes: Vec<ProgramMode>,
    pub steps: usize,
    pub exercises: usize,
}

fn catalog() -> ApiResult<&'static content::Catalog> {
    content::catalog().map_err(ApiError::internal)
}

/// Whether `If-None-Match` names `etag` (or `*`); weak validators compare equal.
fn matches_etag(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag == "*" || tag == etag)
}

fn cached_json<T: Serialize>(headers: &HeaderMap, etag: &str, body: &T) -> Response {
    let mut response =
        if matches_etag(headers, etag) { StatusCode::NOT_MODIFIED.into_response() } else { Json(body).into_response() };
    if let Ok(value) = HeaderValue::from_str(etag) {
        response.headers_mut().insert(header::ETAG, value);
    }
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static(CONTENT_CACHE));
    response
}

/// The programs on offer.
#[utoipa::path(get, path = "/v1/programs", tag = "program", operation_id = "listPrograms",
    params(("If-None-Match" = Option<String>, Header, description = "The `ETag` of a copy the client holds")),
    responses(
        (status = 200, description = "The programs", body = [ProgramSummary],
            headers(("ETag" = String, description = "Changes when the content does"), ("Cache-Control" = String, description = "Caches may keep it an hour"))),
        (status = 304, description = "Unchanged since the `If-None-Match` ETag"),
    ))]
async fn list_programs(headers: HeaderMap) -> ApiResult<Response> {
    let catalog = catalog()?;
    let summaries: Vec<ProgramSummary> = catalog
        .programs()
        .iter()
        .map(|p| ProgramSummary {
            slug: p.slug.clone(),
            title: p.title.clone(),
            description: p.description.clone(),
            version: p.version.clone(),
            modes: p.modes.clone(),
            steps: p.steps.len(),
            exercises: p.steps.iter().map(|s| s.exercises.len()).sum(),
        })
        .collect();
    let mut digest = Sha256::new();
    for program in catalog.programs() {
        digest.update(catalog.etag(&program.slug).unwrap_or_default());
    }
    let etag = format!("\"{}\"", &hex::encode(digest.finalize())[..32]);
    Ok(cached_json(&headers, &etag, &summaries))
}

/// One program with every step and exercise.
#[utoipa::path(get, path = "/v1/programs/{slug}", tag = "program", operation_id = "getProgram",
    params(("slug" = String, Path, description = "The program's slug", example = "closer"),
        ("If-None-Match" = Option<String>, Header, description = "The `ETag` of a copy the client holds")),
    responses(
        (status = 200, description = "The program, its steps and exercises", body = Program,
            headers(("ETag" = String, description = "Changes when the content does"), ("Cache-Control" = String, description = "Caches may keep it an hour"))),
        (status = 304, description = "Unchanged since the `If-None-Match` ETag"),
        (status = 404, description = "No such program", body = Problem, content_type = "application/problem+json"),
    ))]
async fn get_program(headers: HeaderMap, Path(slug): Path<String>) -> ApiResult<Response> {
    let catalog = catalog()?;
    let program = catalog.program(&slug).ok_or_else(|| ApiError::NotFound(format!("There is no program `{slug}`.")))?;
    let etag = catalog.etag(&slug).unwrap_or_default();
    Ok(cached_json(&headers, etag, program))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrollRequest {
    /// Program slug, e.g. `closer`.
    pub program: String,
    /// `solo`, `partnered` (a partner who does not use the app) or `couple` (both linked in the app; see /v1/partner).
    pub mode: String,
    /// `gentle` (2 sessions a week), `steady` (3) or `committed` (5).
    pub pace: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrollmentUpdate {
    pub pace: Option<String>,
    pub mode: Option<String>,
    /// `true` pauses (no suggestions, no reminders); `false` resumes.
    pub paused: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EnrollmentView {
    pub id: Uuid,
    pub program: String,
    pub mode: ProgramMode,
    pub pace: Pace,
    pub sessions_per_week: u32,
    /// Current step, 1–10.
    pub step: i64,
    pub step_title: String,
    pub step_started_at: String,
    pub paused: bool,
    pub paused_at: Option<String>,
    pub created_at: String,
}

impl From<&Current> for EnrollmentView {
    fn from(current: &Current) -> Self {
        let m = &current.model;
        Self {
            id: m.id,
            program: m.program.clone(),
            mode: current.mode,
            pace: current.pace,
            sessions_per_week: current.pace.sessions_per_week(),
            step: m.step,
            step_title: u8::try_from(m.step)
                .ok()
                .and_then(|n| current.program.step(n))
                .map(|s| s.title.clone())
                .unwrap_or_default(),
            step_started_at: rfc3339(m.step_started_at),
            paused: m.paused_at.is_some(),
            paused_at: m.paused_at.map(rfc3339),
            created_at: rfc3339(m.created_at),
        }
    }
}

/// Join a program. One enrollment per person.
#[utoipa::path(post, path = "/v1/enrollments", tag = "program", operation_id = "enroll", security(("bearer" = [])),
    request_body(content = EnrollRequest, description = "The program, mode and pace",
        example = json!({"program": "closer", "mode": "solo", "pace": "gentle"})),
    responses(
        (status = 201, description = "Enrolled at step 1", body = EnrollmentView),
        (status = 409, description = "Already enrolled, or couple mode without a linked partner", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown program, mode or pace: `errors` names each", body = Problem, content_type = "application/problem+json"),
    ))]
async fn enroll(
    state: AppState,
    CurrentUser(who): CurrentUser,
    Json(body): Json<EnrollRequest>,
) -> ApiResult<impl IntoResponse> {
    let current = state.enroll(who.user.id, &body.program, &body.mode, &body.pace).await?;
    Ok((StatusCode::CREATED, Json(EnrollmentView::from(&current))))
}

/// The current enrollment.
#[utoipa::path(get, path = "/v1/enrollments/current", tag = "program", operation_id = "getCurrentEnrollment", security(("bearer" = [])),
    responses(
        (status = 200, description = "The enrollment", body = EnrollmentView),
        (status = 404, description = "Not enrolled", body = Problem, content_type = "application/problem+json"),
    ))]
async fn current(state: AppState, CurrentUser(who): CurrentUser) -> ApiResult<Json<EnrollmentView>> {
    Ok(Json((&state.enrollments.current(who.user.id).await?).into()))
}

/// Change pace or mode, pause or resume. Paused time does not count toward a step's minimum time.
#[utoipa::path(patch, path = "/v1/enrollments/current", tag = "program", operation_id = "updateCurrentEnrollment", security(("bearer" = [])),
    request_body(content = EnrollmentUpdate, description = "What to change; absent fields stay",
        example = json!({"pace": "steady", "paused": false})),
    responses(
        (status = 200, description = "The changed enrollment", body = EnrollmentView),
        (status = 404, description = "Not enrolled", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Couple mode without a linked partner, or the enrollment changed meanwhile", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown mode or pace, or an unknown field", body = Problem, content_type = "application/problem+json"),
    ))]
async fn update(
    state: AppState,
    CurrentUser(who): CurrentUser,
    Json(body): Json<EnrollmentUpdate>,
) -> ApiResult<Json<EnrollmentView>> {
    let patch = EnrollmentPatch { pace: body.pace, mode: body.mode, paused: body.paused };
    Ok(Json((&state.update_enrollment(who.user.id, patch).await?).into()))
}

/// Move to the next step, when the step has had its time, some practice and no recent distress.
#[utoipa::path(post, path = "/v1/enrollments/current/advance", tag = "program", operation_id = "advanceStep", security(("bearer" = [])),
    responses(
        (status = 200, description = "Moved to the next step", body = EnrollmentView),
        (status = 404, description = "Not enrolled", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not yet: `unmet` lists every reason (or the step changed meanwhile)", body = Problem, content_type = "application/problem+json"),
    ))]
async fn advance(state: AppState, CurrentUser(who): CurrentUser) -> ApiResult<Json<EnrollmentView>> {
    Ok(Json((&state.enrollments.advance(who.user.id).await?).into()))
}

/// Go back a step. Always allowed.
#[utoipa::path(post, path = "/v1/enrollments/current/step-back", tag = "program", operation_id = "stepBack", security(("bearer" = [])),
    responses(
        (status = 200, description = "Back one step (step 1 stays at 1)", body = EnrollmentView),
        (status = 404, description = "Not enrolled", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The step changed meanwhile (two step changes at once); reload", body = Problem, content_type = "application/problem+json"),
    ))]
async fn step_back(state: AppState, CurrentUser(who): CurrentUser) -> ApiResult<Json<EnrollmentView>> {
    Ok(Json((&state.enrollments.step_back(who.user.id).await?).into()))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Suggestion {
    pub step: u8,
    pub step_title: String,
    pub exercise: Exercise,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WeekProgress {
    pub sessions_done: u32,
    pub sessions_per_week: u32,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TodayView {
    /// The person's local date.
    pub date: String,
    pub kind: TodayKind,
    pub message: String,
    /// Why this suggestion.
    pub reasons: Vec<String>,
    pub suggestion: Option<Suggestion>,
    pub week: WeekProgress,
    /// The most intense exercise that may be suggested now (1–5).
    pub max_intensity: u8,
    /// After a hard check-in: where to find professional help, for the person's country.
    pub support: Option<CountryResources>,
}

/// Today's suggested exercise and why, or rest, or after distress a gentle grounding exercise with support.
#[utoipa::path(get, path = "/v1/today", tag = "program", operation_id = "getToday", security(("bearer" = [])),
    responses(
        (status = 200, description = "Today's plan", body = TodayView),
        (status = 404, description = "Not enrolled", body = Problem, content_type = "application/problem+json"),
    ))]
async fn today(state: AppState, CurrentUser(who): CurrentUser) -> ApiResult<Json<TodayView>> {
    let today = state.enrollments.today_for_request(&who.user).await?;
    let plan = today.plan;
    Ok(Json(TodayView {
        date: today.local_date.to_string(),
        kind: plan.kind,
        message: plan.message,
        reasons: plan.reasons,
        suggestion: plan.exercise.map(|(step, exercise)| Suggestion {
            step: step.number,
            step_title: step.title.clone(),
            exercise: exercise.clone(),
        }),
        week: WeekProgress { sessions_done: plan.sessions_this_week, sessions_per_week: plan.sessions_per_week },
        max_intensity: plan.max_intensity,
        support: today.resources.cloned(),
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ResourcesQuery {
    /// ISO 3166-1 alpha-2 country code; absent for the general resources.
    pub country: Option<String>,
}

/// Professional-help resources: the local emergency number first, then crisis lines and directories.
#[utoipa::path(get, path = "/v1/resources", tag = "program", operation_id = "listResources", params(ResourcesQuery),
    responses(
        (status = 200, description = "The resources for the country, or the general ones", body = CountryResources),
        (status = 422, description = "`country` is not an ISO 3166-1 alpha-2 code", body = Problem, content_type = "application/problem+json"),
    ))]
async fn resources(Query(query): Query<ResourcesQuery>) -> ApiResult<Response> {
    let country = match query.country.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
        Some(raw) => {
            Some(Country::parse(raw).map_err(|m| ApiError::Validation(ValidationErrors::single("country", m)))?)
        }
        None => None,
    };
    let found = catalog()?.resources_for(country.as_ref().map(Country::as_str));
    let mut response = Json(found).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static(CONTENT_CACHE));
    Ok(response)
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_programs))
        .routes(routes!(get_program))
        .routes(routes!(enroll))
        .routes(routes!(current, update))
        .routes(routes!(advance))
        .routes(routes!(step_back))
        .routes(routes!(today))
        .routes(routes!(resources))
}
