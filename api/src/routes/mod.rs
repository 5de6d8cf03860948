//! One file per area; each ends with its `router()`.

pub mod account_mail;
pub mod auth;
pub mod contract;
pub mod me;
pub mod notifications;
pub mod ops;
pub mod partners;
pub mod program;
pub mod push;
pub mod reflections;
pub mod reminders;
pub mod sessions;
pub mod sync;

use attune_shared::entities::user;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

/// Milliseconds since the epoch as RFC 3339 UTC, the API's time format.
pub fn rfc3339(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default().to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The signed-in person's profile.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    pub id: Uuid,
    pub email: String,
    pub display_name: String,
    /// IANA time zone name.
    pub timezone: String,
    /// ISO 3166-1 alpha-2, or null.
    pub country: Option<String>,
    /// Deprecated: the notification settings' `descriptive`
    /// (`/v1/notifications/settings`), of which this is an alias for one release.
    #[schema(deprecated)]
    pub descriptive_notifications: bool,
    /// Whether the person confirmed `email` with the code mailed to it (or reset
    /// their password through it). False after each email change until confirmed.
    pub email_verified: bool,
    /// RFC 3339 UTC.
    pub created_at: String,
    pub updated_at: String,
}

impl UserView {
    /// The profile, with the person's `descriptive` notification choice.
    pub fn new(user: &user::Model, descriptive_notifications: bool) -> Self {
        Self {
            id: user.id,
            email: user.email.clone(),
            display_name: user.display_name.clone(),
            timezone: user.timezone.clone(),
            country: user.country.clone(),
            descriptive_notifications,
            email_verified: user.email_verified_at.is_some(),
            created_at: rfc3339(user.created_at),
            updated_at: rfc3339(user.updated_at),
        }
    }
}
