//! What every handler can reach.

use std::{ops::Deref, sync::Arc};

use attune_shared::{
    Clock,
    accounts::Accounts,
    config::Settings,
    enrollment::Enrollments,
    jobs::JobQueue,
    notifications::{Notifications, choices::NotificationSettings},
    reflections::Reflections,
    reminders::Reminders,
    sync::SyncService,
};
use sea_orm::DatabaseConnection;

#[derive(Debug)]
pub struct App {
    pub settings: Settings,
    pub db: DatabaseConnection,
    pub queue: JobQueue,
    pub clock: Arc<dyn Clock>,
    pub accounts: Accounts,
    pub sync: SyncService,
    pub enrollments: Enrollments,
    pub notifications: Notifications,
    pub reminders: Reminders,
    pub notification_settings: NotificationSettings,
    pub reflections: Reflections,
    /// base64url of the VAPID public key.
    pub vapid_public_key: String,
    /// The OpenAPI document, rendered once at start.
    pub openapi: std::sync::OnceLock<String>,
}

#[derive(Debug, Clone)]
pub struct AppState(pub Arc<App>);

impl Deref for AppState {
    type Target = App;
    fn deref(&self) -> &App {
        &self.0
    }
}

/// Handlers take `state: AppState` directly.
impl axum::extract::FromRequestParts<AppState> for AppState {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(_: &mut axum::http::request::Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Ok(state.clone())
    }
}
