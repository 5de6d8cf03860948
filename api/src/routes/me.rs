//! The signed-in person's own account: profile, password, export and deletion.
//! What a thief or a controlling partner holding the phone would use (export,
//! deletion, a new email, a new password) takes the current password again, in
//! the body, or a token from `POST /v1/auth/reauth` in `X-Reauth-Token`.

use attune_shared::{
    accounts::{ProfilePatch, ReauthProof},
    domain::{notification_choices::NotificationChoices, reflection::Reflection},
    notifications::choices::ChoicesError,
    usecases::ProfileUpdate as ProfileChange,
};
use axum::{http::StatusCode, response::IntoResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::{UserView, push::SubscriptionView, rfc3339};
use crate::{
    error::{ApiResult, Problem},
    extract::{ClientAddress, CurrentUser, Json, OptionalJson, ReauthTokenHeader},
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
    /// A new email. Needs the current `password` here, or an `X-Reauth-Token`.
    pub email: Option<String>,
    /// The current password, needed only with a new `email`.
    pub password: Option<String>,
}

/// The optional body of `DELETE /v1/me`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteAccountRequest {
    /// The current password; or send `X-Reauth-Token` and no body.
    pub password: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    /// The current password; may be left out when `X-Reauth-Token` is sent.
    pub current_password: Option<String>,
    /// At least 10 characters, as at registration.
    pub new_password: String,
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
    /// The device label shown in `GET /v1/me/sessions`, if one was recorded.
    pub device: Option<String>,
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
    /// `{"checkins": [...], "journal_entries": [...], "boundaries": [...]}`; what
    /// you share with a partner has `shared_with_partner: true`. A partner's
    /// items are theirs, not in your export.
    #[schema(value_type = Object)]
    pub records: serde_json::Value,
    /// Every weekly reflection, oldest first.
    pub reflections: Vec<Reflection>,
    /// The notification settings; null while the stored ones cannot be read.
    pub notification_settings: Option<NotificationChoices>,
    /// The devices that receive notifications, as `GET /v1/push/subscriptions`
    /// shows them: kind and push service, never an endpoint, key or token.
    pub devices: Vec<SubscriptionView>,
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

/// Change the display name, time zone, country or email (and, deprecated,
/// `descriptive_notifications`). A new email needs the current `password` or an
/// `X-Reauth-Token`; it is unverified until the code mailed to it comes back
/// (`POST /v1/auth/verify-email`), and the old address is told of the change.
#[utoipa::path(patch, path = "/v1/me", tag = "accounts", operation_id = "updateMe", security(("bearer" = [])),
    request_body(content = ProfileUpdate, description = "The fields to change; a new `email` with the current `password`",
        example = json!({"display_name": "Sam", "timezone": "Europe/Berlin", "country": "DE"})),
    params(("X-Reauth-Token" = Option<String>, Header, description = "From `POST /v1/auth/reauth`; instead of `password` for an email change")),
    responses(
        (status = 200, description = "The updated profile", body = UserView),
        (status = 401, description = "Not signed in (`about:blank`), or a new email without the right password or a valid `X-Reauth-Token` (`/problems/reauthentication-required`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The new email is taken (`/problems/email-taken`), or this server sends no mail to confirm a new email (`/problems/mail-not-configured`), or `descriptive_notifications` given while the stored notification settings cannot be read", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid values, or an unknown field: `errors` names each", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many wrong passwords for this account or address; see `Retry-After`", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds until a password may be tried again"))),
    ))]
async fn update_me(
    state: AppState,
    CurrentUser(who): CurrentUser,
    ClientAddress(address): ClientAddress,
    ReauthTokenHeader(token): ReauthTokenHeader,
    Json(body): Json<ProfileUpdate>,
) -> ApiResult<Json<UserView>> {
    let update = ProfileChange {
        patch: ProfilePatch {
            display_name: body.display_name,
            timezone: body.timezone,
            country: body.country,
            email: body.email,
        },
        descriptive: body.descriptive_notifications,
    };
    let proof = ReauthProof::from_parts(body.password, token);
    let user = state.update_profile(&who, update, proof, &address).await?;
    let descriptive = state.notification_settings.descriptive(user.id).await?;
    Ok(Json(UserView::new(&user, descriptive)))
}

/// Delete the account, confirming with the current `password` in the body or an
/// `X-Reauth-Token`. Every token stops working at once; everything the account
/// had is then purged by a background job.
#[utoipa::path(delete, path = "/v1/me", tag = "accounts", operation_id = "deleteMe", security(("bearer" = [])),
    request_body(content = Option<DeleteAccountRequest>, description = "The current password; may be left out when `X-Reauth-Token` is sent",
        example = json!({"password": "a calm passphrase"})),
    params(("X-Reauth-Token" = Option<String>, Header, description = "From `POST /v1/auth/reauth`; instead of the password")),
    responses(
        (status = 202, description = "The account is closed; a background job erases its data", body = DeletionAccepted),
        (status = 401, description = "Not signed in (`about:blank`), or no right password and no valid `X-Reauth-Token` (`/problems/reauthentication-required`)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many wrong passwords for this account or address; see `Retry-After`", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds until a password may be tried again"))),
    ))]
async fn delete_me(
    state: AppState,
    CurrentUser(who): CurrentUser,
    ClientAddress(address): ClientAddress,
    ReauthTokenHeader(token): ReauthTokenHeader,
    OptionalJson(body): OptionalJson<DeleteAccountRequest>,
) -> ApiResult<impl IntoResponse> {
    let proof = ReauthProof::from_parts(body.and_then(|b| b.password), token);
    state.delete_account(&who, proof, &address).await?;
    let body = DeletionAccepted {
        status: "deletion_scheduled".into(),
        detail: "Your account is closed and everything in it will be erased shortly.".into(),
    };
    Ok((StatusCode::ACCEPTED, Json(body)))
}

/// Download everything Attune holds about the account, every private note
/// decrypted. Needs an `X-Reauth-Token` from `POST /v1/auth/reauth`: a GET has no
/// body for the password, and a password in a header ends up in proxies' logs.
#[utoipa::path(get, path = "/v1/me/export", tag = "accounts", operation_id = "exportMe", security(("bearer" = [])),
    params(("X-Reauth-Token" = String, Header, description = "From `POST /v1/auth/reauth`")),
    responses(
        (status = 200, description = "Everything held about the account", body = AccountExportView),
        (status = 401, description = "Not signed in (`about:blank`), or no valid `X-Reauth-Token` (`/problems/reauthentication-required`)", body = Problem, content_type = "application/problem+json"),
    ))]
async fn export_me(
    state: AppState,
    CurrentUser(who): CurrentUser,
    ClientAddress(address): ClientAddress,
    ReauthTokenHeader(token): ReauthTokenHeader,
) -> ApiResult<Json<AccountExportView>> {
    let export = state.accounts.export(&who, ReauthProof::from_parts(None, token), &address).await?;
    let records = state.sync.pull_value(who.user.id, &Default::default()).await?;
    let reflections = state.reflections.all(who.user.id).await?;
    let devices = state.notifications.list(who.user.id).await?.iter().map(SubscriptionView::from).collect();
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
                device: s.device.clone(),
                created_at: rfc3339(s.created_at),
                last_used_at: rfc3339(s.last_used_at),
                expires_at: rfc3339(s.expires_at),
                revoked_at: s.revoked_at.map(rfc3339),
            })
            .collect(),
        records: records_by_table(&records["changes"]),
        reflections,
        notification_settings,
        devices,
    }))
}

/// The synced records of a full pull, as `{table: [record, ...]}`: a full pull
/// sends every record once, as `updated`.
/// The partner's items are not the person's own and stay out.
fn records_by_table(changes: &serde_json::Value) -> serde_json::Value {
    let own = |name: &String| attune_shared::sync::tables::table(name).is_some_and(|t| !t.read_only);
    let tables = changes.as_object().into_iter().flatten().filter(|(name, _)| own(name));
    tables.map(|(table, slices)| (table.clone(), slices["updated"].clone())).collect::<serde_json::Map<_, _>>().into()
}

/// Change the password. Every other session ends at once (their access and
/// refresh tokens stop working); this one stays signed in.
#[utoipa::path(post, path = "/v1/me/password", tag = "accounts", operation_id = "changePassword", security(("bearer" = [])),
    request_body(content = ChangePasswordRequest, description = "The current password (or send `X-Reauth-Token`) and the new one",
        example = json!({"current_password": "a calm passphrase", "new_password": "a new and longer passphrase"})),
    params(("X-Reauth-Token" = Option<String>, Header, description = "From `POST /v1/auth/reauth`; instead of `current_password`")),
    responses(
        (status = 204, description = "Changed; every other session ended"),
        (status = 401, description = "Not signed in (`about:blank`), or a wrong `current_password` and no valid `X-Reauth-Token` (`/problems/reauthentication-required`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The new password is too weak (names `new_password`), or a field has the wrong type", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many wrong passwords for this account or address; see `Retry-After`", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds until a password may be tried again"))),
    ))]
async fn change_password(
    state: AppState,
    CurrentUser(who): CurrentUser,
    ClientAddress(address): ClientAddress,
    ReauthTokenHeader(token): ReauthTokenHeader,
    Json(body): Json<ChangePasswordRequest>,
) -> ApiResult<StatusCode> {
    let proof = ReauthProof::from_parts(body.current_password, token);
    state.accounts.change_password(&who, proof, &body.new_password, &address).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_me, update_me, delete_me))
        .routes(routes!(export_me))
        .routes(routes!(change_password))
}
