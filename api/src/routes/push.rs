//! Push: the services this install speaks, the Web Push application server
//! key, devices (Web Push subscriptions, APNs and FCM tokens), and a test
//! notification so a person can check that notifications arrive.

use attune_shared::{
    entities::push_subscription,
    notifications::Stored,
    push::{ApnsEnvironment, DeviceKind, DeviceRegistrationJson},
};
use axum::{http::StatusCode, response::IntoResponse};
use serde::{Deserialize, Serialize};
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

/// A registered device, without its keys, endpoint or token (all secrets).
#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriptionView {
    pub id: Uuid,
    /// `web`, `apns` or `fcm`.
    pub kind: DeviceKind,
    /// The push service's host, e.g. `fcm.googleapis.com` or `api.push.apple.com`.
    pub push_service: String,
    /// APNs only: `production` or `sandbox`.
    pub environment: Option<ApnsEnvironment>,
    pub expires_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&push_subscription::Model> for SubscriptionView {
    fn from(model: &push_subscription::Model) -> Self {
        let environment = model.environment.as_deref().and_then(ApnsEnvironment::parse);
        let push_service = match model.kind {
            DeviceKind::Web => {
                url::Url::parse(&model.endpoint).ok().and_then(|u| u.host_str().map(str::to_owned)).unwrap_or_default()
            }
            DeviceKind::Apns => environment.unwrap_or(ApnsEnvironment::Production).apple_host().to_owned(),
            DeviceKind::Fcm => "fcm.googleapis.com".to_owned(),
        };
        Self {
            id: model.id,
            kind: model.kind,
            push_service,
            environment,
            expires_at: model.expires_at.map(rfc3339),
            created_at: rfc3339(model.created_at),
            updated_at: rfc3339(model.updated_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PushProviders {
    /// The kinds of device this install accepts, `web` always; `apns` and `fcm`
    /// when the operator configured them.
    #[schema(example = json!(["web", "apns", "fcm"]))]
    pub kinds: Vec<DeviceKind>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TestQueued {
    /// Devices a test notification was queued for.
    pub devices: usize,
}

// The contract's view of the body. The handler reads `DeviceRegistrationJson`,
// whose fields are all optional, so that a missing or wrong field is answered
// with a 422 naming it rather than "matches none of three schemas".
/// A device to notify: a browser's Web Push subscription, an APNs device token
/// or an FCM registration token.
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
#[schema(title = "DeviceRegistration")]
#[allow(dead_code, reason = "describes the request body in the OpenAPI document; never constructed")]
enum DeviceRegistration {
    Web(WebPushRegistration),
    Apns(ApnsRegistration),
    Fcm(FcmRegistration),
}

/// A browser's `PushSubscription.toJSON()` as it is.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code, reason = "documentation only")]
struct WebPushRegistration {
    /// `web`, or left out.
    kind: Option<WebKind>,
    /// The push service URL (HTTPS, a known push service).
    endpoint: String,
    /// When the subscription expires, in milliseconds since the epoch, or null.
    #[serde(rename = "expirationTime")]
    expiration_time: Option<f64>,
    keys: WebPushKeys,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code, reason = "documentation only")]
struct WebPushKeys {
    /// The browser's P-256 public key: base64url of the 65-byte uncompressed point.
    p256dh: String,
    /// The 16-byte authentication secret, base64url.
    auth: String,
}

/// An iPhone's or iPad's APNs device token.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code, reason = "documentation only")]
struct ApnsRegistration {
    kind: ApnsKind,
    /// The device token in hexadecimal.
    #[schema(pattern = "^[0-9A-Fa-f]{64,200}$", min_length = 64, max_length = 200)]
    token: String,
    /// `sandbox` for a development build's token.
    environment: ApnsEnvironment,
}

/// An Android (or Firebase-on-iOS) app's FCM registration token.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code, reason = "documentation only")]
struct FcmRegistration {
    kind: FcmKind,
    /// The registration token, as `getToken()` gives it.
    #[schema(pattern = "^[A-Za-z0-9_:.-]{32,4096}$", min_length = 32, max_length = 4096)]
    token: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code, reason = "documentation only")]
enum WebKind {
    Web,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code, reason = "documentation only")]
enum ApnsKind {
    Apns,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code, reason = "documentation only")]
enum FcmKind {
    Fcm,
}

/// The application server key browsers subscribe with.
#[utoipa::path(get, path = "/v1/push/vapid-public-key", tag = "push", operation_id = "getVapidPublicKey",
    responses((status = 200, description = "The key", body = VapidPublicKey)))]
async fn vapid_public_key(state: AppState) -> Json<VapidPublicKey> {
    Json(VapidPublicKey { public_key: state.vapid_public_key.clone() })
}

/// Which kinds of device this install accepts, so an app knows what to register.
#[utoipa::path(get, path = "/v1/push/providers", tag = "push", operation_id = "getPushProviders",
    responses((status = 200, description = "The accepted kinds", body = PushProviders)))]
async fn providers(state: AppState) -> Json<PushProviders> {
    Json(PushProviders { kinds: state.notifications.accepted_kinds() })
}

/// Register a device: the browser's `PushSubscription.toJSON()` (kind `web`
/// implied), `{"kind": "apns", "token", "environment"}` or `{"kind": "fcm",
/// "token"}`. The same endpoint or token again updates it, and moves it to the
/// caller if it was someone else's.
#[utoipa::path(post, path = "/v1/push/subscriptions", tag = "push", operation_id = "subscribePush", security(("bearer" = [])),
    request_body(content = DeviceRegistration,
        description = "One of three bodies. Web Push: the browser's `PushSubscription.toJSON()` as it is, e.g. \
            `{\"endpoint\": \"https://fcm.googleapis.com/fcm/send/…\", \"expirationTime\": null, \"keys\": {\"p256dh\": \"…\", \"auth\": \"…\"}}`. \
            APNs: `{\"kind\": \"apns\", \"token\": \"<64–200 hex>\", \"environment\": \"production\"|\"sandbox\"}` (the example). \
            FCM: `{\"kind\": \"fcm\", \"token\": \"<registration token>\"}`.",
        example = json!({"kind": "apns", "token": "740f4707bebcf74f9b7c25d48e3358945f6aa01da5ddb387462c7eaf61bb78ad", "environment": "production"})),
    responses(
        (status = 201, description = "Registered", body = SubscriptionView),
        (status = 200, description = "Updated (the endpoint or token was already registered)", body = SubscriptionView),
        (status = 409, description = "Too many devices, or a kind whose service the operator has not enabled", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid keys or token, or an endpoint that is not a known push service", body = Problem, content_type = "application/problem+json"),
    ))]
async fn subscribe(
    state: AppState,
    CurrentUser(who): CurrentUser,
    Json(body): Json<DeviceRegistrationJson>,
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
        .routes(routes!(providers))
        .routes(routes!(vapid_public_key))
        .routes(routes!(subscribe, list))
        .routes(routes!(unsubscribe))
        .routes(routes!(send_test))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use attune_shared::push::{DeviceError, DeviceRegistrationJson, PushPolicy, ValidDevice};
    use serde_json::{Value, json};

    use super::DeviceRegistration;

    /// The documented shapes (serde reads them as the schema describes them:
    /// untagged, no unknown fields) take each body the server takes, as its kind.
    #[test]
    fn each_accepted_body_is_exactly_its_documented_shape() {
        let web = json!({"endpoint": "https://fcm.googleapis.com/fcm/send/abc", "expirationTime": null,
            "keys": {"p256dh": "BOr3", "auth": "x4Hq"}});
        let apns = json!({"kind": "apns", "token": "ab".repeat(32), "environment": "sandbox"});
        let fcm = json!({"kind": "fcm", "token": "c".repeat(40)});
        assert!(matches!(serde_json::from_value(web).unwrap(), DeviceRegistration::Web(_)));
        assert!(matches!(serde_json::from_value(apns).unwrap(), DeviceRegistration::Apns(_)));
        assert!(matches!(serde_json::from_value(fcm).unwrap(), DeviceRegistration::Fcm(_)));
        for mixed in [
            json!({"kind": "apns", "token": "ab".repeat(32)}),
            json!({"kind": "fcm", "token": "c".repeat(40), "environment": "production"}),
            json!({"kind": "web", "token": "c".repeat(40)}),
        ] {
            assert!(serde_json::from_value::<DeviceRegistration>(mixed.clone()).is_err(), "{mixed}");
        }
    }

    /// Whether `token` fits the documented `schema` (its pattern and lengths).
    fn documented_accepts(schema: &Value, token: &str) -> bool {
        let pattern = regex::Regex::new(schema["pattern"].as_str().unwrap()).unwrap();
        let chars = token.chars().count() as u64;
        pattern.is_match(token)
            && chars >= schema["minLength"].as_u64().unwrap()
            && chars <= schema["maxLength"].as_u64().unwrap()
    }

    /// The documented token bounds are literals (utoipa takes no constants);
    /// this keeps them the validator's: at and beyond each bound, and with a
    /// character outside each alphabet, the document and `ValidDevice::parse`
    /// agree on every token.
    #[test]
    fn the_documented_token_bounds_are_the_validators() {
        let document = crate::openapi::document().unwrap();
        let schemas = &document["components"]["schemas"];
        let policy = PushPolicy::new(&[], false);
        let cases = [
            ("apns", "ApnsRegistration", 'a', [63, 64, 200, 201], "g"),
            ("fcm", "FcmRegistration", 'c', [31, 32, 4096, 4097], "!"),
        ];
        for (kind, schema, filler, lengths, stranger) in cases {
            let schema = &schemas[schema]["properties"]["token"];
            let tokens = lengths
                .iter()
                .map(|n| filler.to_string().repeat(*n))
                .chain([format!("{}{stranger}", filler.to_string().repeat(63))]);
            for token in tokens {
                let body = DeviceRegistrationJson {
                    kind: Some(kind.into()),
                    token: Some(token.clone()),
                    environment: (kind == "apns").then(|| "production".into()),
                    ..Default::default()
                };
                let valid = !matches!(ValidDevice::parse(&body, &policy), Err(DeviceError::Invalid(_)));
                assert_eq!(documented_accepts(schema, &token), valid, "{kind} token of {} characters", token.len());
            }
        }
    }
}
