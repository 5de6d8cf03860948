//! Web Push: the application server key, device subscriptions, and a test
//! notification so a person can check that notifications arrive.

use attune_shared::{entities::push_subscription, notifications::Stored, push::PushSubscriptionJson};
use axum::{http::StatusCode, response::IntoResponse};
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

#[derive(Debug, Serialize, ToSchema)]
pub struct VapidPublicKey {
    /// base64url of the 65-byte uncompressed P-256 point, ready for `applicationServerKey`.
    pub public_key: String,
}

/// A registered device, without its keys or endpoint (both are secrets).
#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriptionView {
    pub id: Uuid,
    /// The push service's host, e.g. `fcm.googleapis.com`.
    pub push_service: String,
    pub expires_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&push_subscription::Model> for SubscriptionView {
    fn from(model: &push_subscription::Model) -> Self {
        Self {
            id: model.id,
            push_service: url::Url::parse(&model.endpoint)
                .ok()
                .and_then(|u| u.host_str().map(str::to_owned))
                .unwrap_or_default(),
            expires_at: model.expires_at.map(rfc3339),
            created_at: rfc3339(model.created_at),
            updated_at: rfc3339(model.updated_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TestQueued {
    /// Devices a test notification was queued for.
    pub devices: usize,
}

/// The application server key browsers subscribe with.
#[utoipa::path(get, path = "/v1/push/vapid-public-key", tag = "push", operation_id = "getVapidPublicKey",
    responses((status = 200, description = "The key", body = VapidPublicKey)))]
async fn vapid_public_key(state: AppState) -> Json<VapidPublicKey> {
    Json(VapidPublicKey { public_key: state.vapid_public_key.clone() })
}

/// Register the browser's `PushSubscription.toJSON()`. The same endpoint again updates it.
#[utoipa::path(post, path = "/v1/push/subscriptions", tag = "push", operation_id = "subscribePush", security(("bearer" = [])),
    request_body(content = PushSubscriptionJson, description = "The browser's `PushSubscription.toJSON()`",
        example = json!({"endpoint": "https://fcm.googleapis.com/fcm/send/dXNlci1kZXZpY2U", "expirationTime": null,
            "keys": {"p256dh": "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM", "auth": "tBHItJI5svbpez7KI4CCXg"}})),
    responses(
        (status = 201, description = "Registered", body = SubscriptionView),
        (status = 200, description = "Updated (the endpoint was already registered)", body = SubscriptionView),
        (status = 409, description = "Too many devices", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid keys, or an endpoint that is not a known push service", body = Problem, content_type = "application/problem+json"),
    ))]
async fn subscribe(
    state: AppState,
    CurrentUser(who): CurrentUser,
    Json(body): Json<PushSubscriptionJson>,
) -> ApiResult<impl IntoResponse> {
    let (model, stored) = state.notifications.subscribe(who.user.id, &body).await?;
    let status = if stored == Stored::Created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(SubscriptionView::from(&model))))
}

/// The devices that receive notifications.
#[utoipa::path(get, path = "/v1/push/subscriptions", tag = "push", operation_id = "listPushSubscriptions", security(("bearer" = [])),
    responses((status = 200, description = "The devices", body = [SubscriptionView])))]
async fn list(state: AppState, CurrentUser(who): CurrentUser) -> ApiResult<Json<Vec<SubscriptionView>>> {
    Ok(Json(state.notifications.list(who.user.id).await?.iter().map(SubscriptionView::from).collect()))
}

/// Stop notifications on one device.
#[utoipa::path(delete, path = "/v1/push/subscriptions/{id}", tag = "push", operation_id = "deletePushSubscription", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The subscription's `id`")),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "No such subscription of the caller", body = Problem, content_type = "application/problem+json"),
    ))]
async fn unsubscribe(state: AppState, CurrentUser(who): CurrentUser, Path(id): Path<Uuid>) -> ApiResult<StatusCode> {
    state.notifications.unsubscribe(who.user.id, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Send a test notification to every device of the caller.
#[utoipa::path(post, path = "/v1/push/test", tag = "push", operation_id = "sendTestPush", security(("bearer" = [])),
    responses(
        (status = 202, description = "A test notification is queued for every device", body = TestQueued),
        (status = 409, description = "No device subscribed", body = Problem, content_type = "application/problem+json"),
    ))]
async fn send_test(state: AppState, CurrentUser(who): CurrentUser) -> ApiResult<impl IntoResponse> {
    let devices = state.notifications.send_test(who.user.id).await?;
    Ok((StatusCode::ACCEPTED, Json(TestQueued { devices })))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(vapid_public_key))
        .routes(routes!(subscribe, list))
        .routes(routes!(unsubscribe))
        .routes(routes!(send_test))
}
