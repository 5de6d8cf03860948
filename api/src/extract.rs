//! Extractors whose rejections are problem+json, and the authenticated user.

use std::net::SocketAddr;

use attune_shared::accounts::Authenticated;
use attune_shared::domain::client_address::client_address;
use axum::{
    extract::{ConnectInfo, FromRequest, FromRequestParts},
    http::{header, request::Parts},
    response::{IntoResponse, Response},
};

use crate::{error::ApiError, state::AppState};

/// `axum::Json`, rejecting with problem+json.
#[derive(Debug, Clone, Copy, Default, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct Json<T>(pub T);

impl<T: serde::Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// `axum::extract::Path`, rejecting with problem+json.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

/// `axum::extract::Query`, rejecting with problem+json.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);

/// The signed-in user, from `Authorization: Bearer <access token>`. The session is
/// checked on every request (through the session cache: a revoked token stops
/// working at once on the replica that revoked it, within a second on the others).
#[derive(Debug, Clone)]
pub struct CurrentUser(pub Authenticated);

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ApiError::Unauthorized("Send `Authorization: Bearer <access token>`.".into()))?;
        let who = state.accounts.authenticate(token).await?;
        tracing::Span::current().record("user_id", tracing::field::display(who.user.id));
        Ok(Self(who))
    }
}

/// The client's address: the TCP peer, or, when the peer is one of
/// `ATTUNE_TRUSTED_PROXIES`, the address its forwarding headers name (see
/// `attune_shared::domain::client_address`).
#[derive(Debug, Clone)]
pub struct ClientAddress(pub String);

impl FromRequestParts<AppState> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let Some(ConnectInfo(peer)) = parts.extensions.get::<ConnectInfo<SocketAddr>>() else {
            return Ok(Self("unknown".to_owned()));
        };
        let values =
            |name: &str| -> Vec<&str> { parts.headers.get_all(name).iter().filter_map(|v| v.to_str().ok()).collect() };
        let (x_forwarded_for, forwarded) = (values("x-forwarded-for"), values("forwarded"));
        let address = client_address(peer.ip(), &x_forwarded_for, &forwarded, &state.settings.trusted_proxies);
        Ok(Self(address.to_string()))
    }
}

/// The header carrying a token from `POST /v1/auth/reauth`. A header of its own,
/// not a second `Authorization`: the access token must still say who is asking,
/// and the name tells proxies and log scrubbers it is a credential.
pub const REAUTH_TOKEN_HEADER: &str = "x-reauth-token";

/// The `X-Reauth-Token` header, if sent.
#[derive(Debug, Clone, Default)]
pub struct ReauthTokenHeader(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for ReauthTokenHeader {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(REAUTH_TOKEN_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned);
        Ok(Self(token))
    }
}

/// The `User-Agent` header, if sent, for labelling a new session.
#[derive(Debug, Clone, Default)]
pub struct UserAgent(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for UserAgent {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let agent = parts.headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).map(str::to_owned);
        Ok(Self(agent))
    }
}

/// A JSON body that may be absent: no body (and no `Content-Type`) is `None`; a
/// body is read exactly as [`Json`] reads it. For `DELETE /v1/me`, whose body only
/// carries the optional password.
#[derive(Debug)]
pub struct OptionalJson<T>(pub Option<T>);

impl<T, S> FromRequest<S> for OptionalJson<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        let has_body = request.headers().contains_key(header::CONTENT_TYPE)
            || request
                .headers()
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|length| length.trim() != "0");
        if !has_body {
            return Ok(Self(None));
        }
        let Json(value) = Json::<T>::from_request(request, state).await?;
        Ok(Self(Some(value)))
    }
}
