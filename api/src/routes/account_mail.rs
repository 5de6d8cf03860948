//! What goes by mail: a forgotten password and the proof that an email address is
//! the person's. The codes arrive by mail (sent by the worker, never on this
//! request path) and come back here.

use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    error::{ApiResult, Problem},
    extract::{ClientAddress, Json},
    state::AppState,
};

#[derive(Debug, Deserialize, ToSchema)]
pub struct PasswordResetRequest {
    pub email: String,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct PasswordResetConfirmation {
    /// The code from the mail.
    pub token: String,
    /// At least 10 characters, as at registration.
    pub new_password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct EmailVerification {
    /// The code from the mail.
    pub token: String,
}

/// Ask for a password-reset code by mail. The answer is the same whether or not
/// an account uses the address, and so is the work behind it; the code, if any,
/// works once, for an hour.
#[utoipa::path(post, path = "/v1/auth/password-reset", tag = "accounts", operation_id = "requestPasswordReset",
    request_body(content = PasswordResetRequest, description = "The account's email",
        example = json!({"email": "sam@example.org"})),
    responses(
        (status = 202, description = "If an account uses this address, a code is on its way"),
        (status = 409, description = "This server sends no mail: its operator has not configured it (`/problems/mail-not-configured`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`email` is missing or not an email address", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many requests for this address or from this client; see `Retry-After`", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds until another request is accepted"))),
    ))]
async fn request_password_reset(
    state: AppState,
    ClientAddress(address): ClientAddress,
    Json(body): Json<PasswordResetRequest>,
) -> ApiResult<StatusCode> {
    state.account_mail.request_password_reset(&body.email, &address).await?;
    Ok(StatusCode::ACCEPTED)
}

/// Set a new password with the code from the mail. Every session of the account
/// ends, on every device.
#[utoipa::path(post, path = "/v1/auth/password-reset/confirm", tag = "accounts", operation_id = "confirmPasswordReset",
    request_body(content = PasswordResetConfirmation, description = "The code from the mail and the new password",
        example = json!({"token": "q2Xr0v5mW8b1T3kP9zL4sN7cH6jD2fA0eY5uG8iK1oM", "new_password": "a new and longer passphrase"})),
    responses(
        (status = 204, description = "The password is changed; every session ended"),
        (status = 422, description = "The code is unknown, used, expired or for an address the account no longer uses (names `token`), or the new password is too weak (names `new_password`)", body = Problem, content_type = "application/problem+json"),
    ))]
async fn confirm_password_reset(state: AppState, Json(body): Json<PasswordResetConfirmation>) -> ApiResult<StatusCode> {
    state.account_mail.confirm_password_reset(&body.token, &body.new_password).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Confirm an email address with the code mailed to it (at registration and after
/// each email change). `email_verified` on `GET /v1/me` shows the result.
#[utoipa::path(post, path = "/v1/auth/verify-email", tag = "accounts", operation_id = "verifyEmail",
    request_body(content = EmailVerification, description = "The code from the mail",
        example = json!({"token": "q2Xr0v5mW8b1T3kP9zL4sN7cH6jD2fA0eY5uG8iK1oM"})),
    responses(
        (status = 204, description = "The address is verified"),
        (status = 422, description = "The code is unknown, used, expired or for an address the account no longer uses (names `token`)", body = Problem, content_type = "application/problem+json"),
    ))]
async fn verify_email(state: AppState, Json(body): Json<EmailVerification>) -> ApiResult<StatusCode> {
    state.account_mail.verify_email(&body.token).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(request_password_reset))
        .routes(routes!(confirm_password_reset))
        .routes(routes!(verify_email))
}
