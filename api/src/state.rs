//! What every handler can reach.

use std::{ops::Deref, sync::Arc};

use attune_shared::{config::Settings, services::Services};

/// The services (reached through `Deref`), the settings, and what the API
/// renders once.
#[derive(Debug)]
pub struct App {
    pub settings: Settings,
    pub services: Services,
    /// base64url of the VAPID public key.
    pub vapid_public_key: String,
    /// The OpenAPI document, rendered when first asked for.
    pub openapi: std::sync::OnceLock<String>,
}

impl Deref for App {
    type Target = Services;
    fn deref(&self) -> &Services {
        &self.services
    }
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
