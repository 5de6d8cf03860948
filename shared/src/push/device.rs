//! The three kinds of device a notification can reach, and a device as the app
//! registers it: a browser's Web Push subscription, an APNs device token or an
//! FCM registration token, parsed once at the edge.
//!
//! Native tokens are stored in the subscription's `endpoint` column as
//! `apns:<token>` / `fcm:<token>`: the column's unique index then makes "the same
//! token again" an update (the device moves to its new owner) for every kind
//! alike, and a token can never collide with a URL or with the other service's.
//! Like endpoints, tokens are never logged and never returned.

use std::fmt;

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use super::{PushPolicy, PushSubscriptionJson, ValidSubscription};
use crate::{config::Settings, domain::ValidationErrors};

/// Which service delivers to a device.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize, utoipa::ToSchema,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(8))")]
#[serde(rename_all = "lowercase")]
pub enum DeviceKind {
    /// W3C Web Push (browsers and installed web apps).
    #[sea_orm(string_value = "web")]
    Web,
    /// Apple Push Notification service (iOS, iPadOS, macOS apps).
    #[sea_orm(string_value = "apns")]
    Apns,
    /// Firebase Cloud Messaging HTTP v1 (Android apps).
    #[sea_orm(string_value = "fcm")]
    Fcm,
}

impl DeviceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Web => "web",
            Self::Apns => "apns",
            Self::Fcm => "fcm",
        }
    }
}

/// An APNs device token belongs to one of Apple's two environments: a
/// development build's token works only with the sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ApnsEnvironment {
    Production,
    Sandbox,
}

impl ApnsEnvironment {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Production => "production",
            Self::Sandbox => "sandbox",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "production" => Some(Self::Production),
            "sandbox" => Some(Self::Sandbox),
            _ => None,
        }
    }

    /// Apple's host for this environment.
    pub fn apple_host(self) -> &'static str {
        match self {
            Self::Production => "api.push.apple.com",
            Self::Sandbox => "api.sandbox.push.apple.com",
        }
    }
}

/// Which native services this install has configured (Web Push always is).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NativeServices {
    pub apns: bool,
    pub fcm: bool,
}

impl NativeServices {
    /// What the settings enable. Only meaningful once the start has checked
    /// that each service is configured completely or not at all
    /// ([`super::NativePushConfig::from_settings`]).
    pub fn from_settings(settings: &Settings) -> Self {
        // Blank counts as unset (Compose passes `${ATTUNE_APNS_KEY:-}` as "").
        let set = |value: Option<&crate::secrets::Secret>| value.is_some_and(|v| !v.expose().trim().is_empty());
        Self { apns: set(settings.apns_key.as_ref()), fcm: set(settings.fcm_service_account.as_ref()) }
    }

    pub fn accepts(self, kind: DeviceKind) -> bool {
        match kind {
            DeviceKind::Web => true,
            DeviceKind::Apns => self.apns,
            DeviceKind::Fcm => self.fcm,
        }
    }

    /// The kinds an app may register, Web Push first.
    pub fn kinds(self) -> Vec<DeviceKind> {
        [DeviceKind::Web, DeviceKind::Apns, DeviceKind::Fcm].into_iter().filter(|kind| self.accepts(*kind)).collect()
    }
}

/// `POST /v1/push/subscriptions`: a browser's `PushSubscription.toJSON()` as it
/// is (kind `web` implied), or `{"kind": "apns", "token", "environment"}`, or
/// `{"kind": "fcm", "token"}`. Every field is optional here so that a missing one
/// is reported by name.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct DeviceRegistrationJson {
    /// `web` (the default), `apns` or `fcm`.
    #[serde(default)]
    pub kind: Option<String>,
    /// APNs: the device token, 64–200 hexadecimal characters. FCM: the
    /// registration token.
    #[serde(default)]
    pub token: Option<String>,
    /// APNs only: `production` or `sandbox` (a development build's token).
    #[serde(default)]
    pub environment: Option<String>,
    /// Web Push: the subscription, as `PushSubscription.toJSON()` gives it.
    #[serde(flatten)]
    pub web: PushSubscriptionJson,
}

// Tokens, endpoints and keys are secrets.
impl fmt::Debug for DeviceRegistrationJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceRegistrationJson").field("kind", &self.kind).finish_non_exhaustive()
    }
}

impl From<PushSubscriptionJson> for DeviceRegistrationJson {
    fn from(web: PushSubscriptionJson) -> Self {
        Self { web, ..Self::default() }
    }
}

/// A registration we can deliver to.
#[derive(Clone, PartialEq, Eq)]
pub enum ValidDevice {
    Web(ValidSubscription),
    Native(NativeDevice),
}

impl fmt::Debug for ValidDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Web(subscription) => subscription.fmt(f),
            Self::Native(device) => device.fmt(f),
        }
    }
}

/// Why a registration cannot be stored.
#[derive(Debug)]
pub enum DeviceError {
    Invalid(ValidationErrors),
    /// A valid registration for a service the operator has not configured.
    NotEnabled(DeviceKind),
}

impl ValidDevice {
    /// Validates a registration; errors name `kind`, `token`, `environment`, or
    /// the Web Push fields. A kind the install does not accept is
    /// [`DeviceError::NotEnabled`], after its body was found valid.
    pub fn parse(json: &DeviceRegistrationJson, policy: &PushPolicy) -> Result<Self, DeviceError> {
        let kind = match json.kind.as_deref().map(str::trim) {
            None | Some("web") => DeviceKind::Web,
            Some("apns") => DeviceKind::Apns,
            Some("fcm") => DeviceKind::Fcm,
            Some(_) => {
                let mut errors = ValidationErrors::new();
                errors.add("kind", "must be web, apns or fcm");
                return Err(DeviceError::Invalid(errors));
            }
        };
        let device = match kind {
            DeviceKind::Web => {
                ValidSubscription::parse(&json.web, policy).map(Self::Web).map_err(DeviceError::Invalid)?
            }
            DeviceKind::Apns | DeviceKind::Fcm => {
                NativeDevice::parse(kind, json).map(Self::Native).map_err(DeviceError::Invalid)?
            }
        };
        if !policy.native().accepts(kind) {
            return Err(DeviceError::NotEnabled(kind));
        }
        Ok(device)
    }

    pub fn kind(&self) -> DeviceKind {
        match self {
            Self::Web(_) => DeviceKind::Web,
            Self::Native(device) => device.kind,
        }
    }
}

/// An APNs or FCM device.
#[derive(Clone, PartialEq, Eq)]
pub struct NativeDevice {
    kind: DeviceKind,
    token: String,
    environment: Option<ApnsEnvironment>,
}

/// FCM registration tokens are opaque; today's are ~160 characters of this
/// alphabet. The bounds keep out junk without guessing Google's format.
const FCM_TOKEN_LEN: std::ops::RangeInclusive<usize> = 32..=4096;

impl NativeDevice {
    fn parse(kind: DeviceKind, json: &DeviceRegistrationJson) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let token = json.token.as_deref().map(str::trim).filter(|t| !t.is_empty());
        let token = match (kind, token) {
            (_, None) => {
                errors.add("token", "is required");
                None
            }
            (DeviceKind::Apns, Some(token)) => {
                let ok = (64..=200).contains(&token.len()) && token.bytes().all(|b| b.is_ascii_hexdigit());
                if !ok {
                    errors.add("token", "must be an APNs device token: 64–200 hexadecimal characters");
                }
                // Apple prints tokens in either case; one device is one row.
                ok.then(|| token.to_ascii_lowercase())
            }
            (_, Some(token)) => {
                let ok = FCM_TOKEN_LEN.contains(&token.len())
                    && token.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b':' | b'.'));
                if !ok {
                    errors.add("token", "must be an FCM registration token");
                }
                ok.then(|| token.to_owned())
            }
        };
        let environment = match (kind, json.environment.as_deref().map(str::trim)) {
            (DeviceKind::Apns, None) => {
                errors.add("environment", "is required for APNs: production or sandbox");
                None
            }
            (DeviceKind::Apns, Some(value)) => {
                let parsed = ApnsEnvironment::parse(value);
                if parsed.is_none() {
                    errors.add("environment", "must be production or sandbox");
                }
                parsed
            }
            (_, None) => None,
            (_, Some(_)) => {
                errors.add("environment", "is for APNs devices only");
                None
            }
        };
        match token {
            Some(token) if errors.is_empty() => Ok(Self { kind, token, environment }),
            _ => Err(errors),
        }
    }

    /// Rebuilds a stored device (the worker's path) from its kind and the
    /// `endpoint` column.
    pub fn from_stored(kind: DeviceKind, endpoint: &str, environment: Option<&str>) -> Option<Self> {
        let token = endpoint.strip_prefix(kind.as_str())?.strip_prefix(':')?;
        let environment = match kind {
            DeviceKind::Apns => Some(ApnsEnvironment::parse(environment?)?),
            DeviceKind::Fcm => None,
            DeviceKind::Web => return None,
        };
        Some(Self { kind, token: token.to_owned(), environment })
    }

    pub fn kind(&self) -> DeviceKind {
        self.kind
    }

    /// The token, for the request to the service only.
    pub fn token(&self) -> &str {
        &self.token
    }

    pub fn environment(&self) -> Option<ApnsEnvironment> {
        self.environment
    }

    /// What the `endpoint` column holds for this device.
    pub fn storage_key(&self) -> String {
        format!("{}:{}", self.kind.as_str(), self.token)
    }
}

impl fmt::Debug for NativeDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NativeDevice")
            .field("kind", &self.kind)
            .field("environment", &self.environment)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
#[path = "device_tests.rs"]
mod tests;
