//! Registration, sign-in, token rotation and sign-out.

use attune_shared::accounts::{DeviceInfo, IssuedTokens, RegisterInput};
use attune_shared::entities::user;
use axum::{http::StatusCode, response::IntoResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::UserView;
use crate::{
    error::{ApiResult, Problem},
    extract::{ClientAddress, CurrentUser, Json, UserAgent},
    state::AppState,
};

#[derive(Debug, Deserialize, ToSchema)]
pub struct RegisterRequest {
    pub email: String,
    /// At least 10 characters.
    pub password: String,
    pub display_name: String,
    /// IANA time zone name, e.g. `Europe/Berlin`.
    pub timezone: String,
    /// How this device is listed in `GET /v1/me/sessions` (at most 64 characters),
    /// e.g. `Sam's phone`. Without it, a short label from the `User-Agent`.
    pub device_name: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
    /// How this device is listed in `GET /v1/me/sessions` (at most 64 characters).
    /// Without it, a short label from the `User-Agent`.
    pub device_name: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ReauthRequest {
    /// The current password.
    pub password: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReauthResponse {
    /// Send as `X-Reauth-Token` with `GET /v1/me/export`, `DELETE /v1/me`, an email
    /// change in `PATCH /v1/me` or `POST /v1/me/password`, instead of the password.
    /// Works only with an access token of the session that asked for it.
    pub reauth_token: String,
    /// Seconds it stays valid: 300.
    pub expires_in: i64,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    pub user: UserView,
    /// JWT for `Authorization: Bearer`; valid for `expires_in` seconds.
    pub access_token: String,
    /// Opaque; exchange at `/v1/auth/refresh`. Each one works once.
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    pub expires_in: i64,
}

impl TokenResponse {
    fn new(user: &user::Model, descriptive_notifications: bool, tokens: IssuedTokens) -> Self {
        Self {
            user: UserView::new(user, descriptive_notifications),
            access_token: tokens.access_token,
            refresh_token: tokens.refresh_token,
            token_type: "Bearer".into(),
            expires_in: tokens.expires_in_secs,
        }
    }
}

/// Create an account and sign in.
#[utoipa::path(post, path = "/v1/auth/register", tag = "accounts", operation_id = "register",
    request_body(content = RegisterRequest, description = "The new account",
        example = json!({"email": "sam@example.org", "password": "a calm passphrase", "display_name": "Sam", "timezone": "Europe/Berlin"})),
    responses(
        (status = 201, description = "Account created and signed in", body = TokenResponse),
        (status = 409, description = "An account with this email exists (`/problems/email-taken`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid values: `errors` names every wrong field", body = Problem, content_type = "application/problem+json"),
    ))]
async fn register(
    state: AppState,
    UserAgent(user_agent): UserAgent,
    Json(body): Json<RegisterRequest>,
) -> ApiResult<impl IntoResponse> {
    let input = RegisterInput {
        email: body.email,
        password: body.password,
        display_name: body.display_name,
        timezone: body.timezone,
        device: DeviceInfo { name: body.device_name, user_agent },
    };
    // Without mail (scaled, no SMTP) the account stands, unverified.
    let (user, tokens) = state.register(input).await?;
    // A new account has the default choices: discreet texts.
    Ok((StatusCode::CREATED, Json(TokenResponse::new(&user, false, tokens))))
}

/// Sign in with email and password.
#[utoipa::path(post, path = "/v1/auth/login", tag = "accounts", operation_id = "login",
    request_body(content = LoginRequest, description = "The account's email and password",
        example = json!({"email": "sam@example.org", "password": "a calm passphrase"})),
    responses(
        (status = 200, description = "Signed in", body = TokenResponse),
        (status = 401, description = "Wrong email or password (the same answer for both)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field is missing or not a string, or an unusable `device_name`", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many failures for this account or address; see `Retry-After`", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds until sign-in may be tried again"))),
    ))]
async fn login(
    state: AppState,
    ClientAddress(address): ClientAddress,
    UserAgent(user_agent): UserAgent,
    Json(body): Json<LoginRequest>,
) -> ApiResult<Json<TokenResponse>> {
    let device = DeviceInfo { name: body.device_name, user_agent };
    let (user, tokens) = state.accounts.login(&body.email, &body.password, &address, &device).await?;
    let descriptive = state.notification_settings.descriptive(user.id).await?;
    Ok(Json(TokenResponse::new(&user, descriptive, tokens)))
}

/// Exchange a refresh token for new tokens. A refresh token works once; using one
/// twice revokes its whole session.
#[utoipa::path(post, path = "/v1/auth/refresh", tag = "accounts", operation_id = "refreshTokens",
    request_body(content = RefreshRequest, description = "The refresh token from sign-in or the last refresh",
        example = json!({"refresh_token": "rt_3q2+7w=="})),
    responses(
        (status = 200, description = "New tokens; the refresh token sent is now used up", body = TokenResponse),
        (status = 401, description = "Unknown, used, expired or revoked refresh token", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`refresh_token` is missing or not a string", body = Problem, content_type = "application/problem+json"),
    ))]
async fn refresh(state: AppState, Json(body): Json<RefreshRequest>) -> ApiResult<Json<TokenResponse>> {
    let (user, tokens) = state.accounts.refresh(&body.refresh_token).await?;
    let descriptive = state.notification_settings.descriptive(user.id).await?;
    Ok(Json(TokenResponse::new(&user, descriptive, tokens)))
}

/// Sign out: ends this session; its access and refresh tokens stop working.
#[utoipa::path(post, path = "/v1/auth/logout", tag = "accounts", operation_id = "logout", security(("bearer" = [])),
    responses(
        (status = 204, description = "Signed out"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
    ))]
async fn logout(state: AppState, CurrentUser(who): CurrentUser) -> ApiResult<StatusCode> {
    state.accounts.logout(&who).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Confirm the current password once, for a token that stands in for it for five
/// minutes in this session (`X-Reauth-Token`). Wrong passwords count in the
/// sign-in throttle.
#[utoipa::path(post, path = "/v1/auth/reauth", tag = "accounts", operation_id = "reauthenticate", security(("bearer" = [])),
    request_body(content = ReauthRequest, description = "The current password",
        example = json!({"password": "a calm passphrase"})),
    responses(
        (status = 200, description = "A re-authentication token", body = ReauthResponse),
        (status = 401, description = "Not signed in (`about:blank`), or the password is wrong (`/problems/reauthentication-required`)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many wrong passwords for this account or address; see `Retry-After`", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds until a password may be tried again"))),
    ))]
async fn reauth(
    state: AppState,
    CurrentUser(who): CurrentUser,
    ClientAddress(address): ClientAddress,
    Json(body): Json<ReauthRequest>,
) -> ApiResult<Json<ReauthResponse>> {
    let issued = state.accounts.issue_reauth_token(&who, body.password, &address).await?;
    Ok(Json(ReauthResponse { reauth_token: issued.token, expires_in: issued.expires_in_secs }))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(reauth))
}
