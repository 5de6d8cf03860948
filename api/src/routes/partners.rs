//! Partners: invitation codes, linking by consent, and leaving a link alone and
//! at once. Nothing here ever notifies the other person.

use attune_shared::partners::{InvitationPreview, Link, SharedCounts};
use attune_shared::usecases::Partnership;
use axum::{http::StatusCode, response::IntoResponse};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::rfc3339;
use crate::{
    error::{ApiResult, Problem},
    extract::{ClientAddress, CurrentUser, Json, Path},
    state::AppState,
};

/// A new invitation. The code is shown this once; the server keeps only a hash.
#[derive(Debug, Serialize, ToSchema)]
pub struct InvitationView {
    /// Ten characters without 0, O, 1 or I; read regardless of case, spaces and dashes.
    #[schema(example = "K7MZ4QXR9T")]
    pub code: String,
    /// RFC 3339 UTC: 24 hours from now.
    pub expires_at: String,
}

/// Who a person is to their partner: a name, nothing else.
#[derive(Debug, Serialize, ToSchema)]
pub struct PersonView {
    pub display_name: String,
}

/// What the invitee sees before accepting.
#[derive(Debug, Serialize, ToSchema)]
pub struct InvitationPreviewView {
    pub inviter: PersonView,
    /// RFC 3339 UTC.
    pub expires_at: String,
}

impl From<InvitationPreview> for InvitationPreviewView {
    fn from(preview: InvitationPreview) -> Self {
        Self {
            inviter: PersonView { display_name: preview.inviter_display_name },
            expires_at: rfc3339(preview.expires_at),
        }
    }
}

/// A new link.
#[derive(Debug, Serialize, ToSchema)]
pub struct LinkView {
    pub partner: PersonView,
    /// RFC 3339 UTC.
    pub linked_at: String,
}

impl From<Link> for LinkView {
    fn from(link: Link) -> Self {
        Self { partner: PersonView { display_name: link.partner_display_name }, linked_at: rfc3339(link.linked_at) }
    }
}

/// How many items one person shares.
#[derive(Debug, Serialize, ToSchema)]
pub struct SharedCountsView {
    pub boundaries: u64,
    pub journal_entries: u64,
}

impl From<SharedCounts> for SharedCountsView {
    fn from(counts: SharedCounts) -> Self {
        Self { boundaries: counts.boundaries, journal_entries: counts.journal_entries }
    }
}

/// What each of the two shares with the other.
#[derive(Debug, Serialize, ToSchema)]
pub struct SharingView {
    /// What you share with your partner.
    pub yours: SharedCountsView,
    /// What your partner shares with you.
    pub partners: SharedCountsView,
}

/// The person's link.
#[derive(Debug, Serialize, ToSchema)]
pub struct PartnershipView {
    pub partner: PersonView,
    /// RFC 3339 UTC.
    pub linked_at: String,
    pub sharing: SharingView,
}

impl From<Partnership> for PartnershipView {
    fn from(partnership: Partnership) -> Self {
        let Partnership { link, sharing } = partnership;
        Self {
            partner: PersonView { display_name: link.partner_display_name },
            linked_at: rfc3339(link.linked_at),
            sharing: SharingView { yours: sharing.yours.into(), partners: sharing.partners.into() },
        }
    }
}

/// Create an invitation code for a partner, valid 24 hours and once; it
/// replaces your open one.
#[utoipa::path(post, path = "/v1/partner/invitations", tag = "partners", operation_id = "createPartnerInvitation", security(("bearer" = [])),
    responses(
        (status = 201, description = "The code, shown this once", body = InvitationView),
        (status = 409, description = "You are linked with a partner already", body = Problem, content_type = "application/problem+json"),
    ))]
async fn invite(state: AppState, CurrentUser(who): CurrentUser) -> ApiResult<impl IntoResponse> {
    let invitation = state.partners.invite(who.user.id).await?;
    let view = InvitationView { code: invitation.code.as_str().to_owned(), expires_at: rfc3339(invitation.expires_at) };
    Ok((StatusCode::CREATED, Json(view)))
}

/// Withdraw your open invitation (nothing happens when there is none).
#[utoipa::path(delete, path = "/v1/partner/invitations", tag = "partners", operation_id = "withdrawPartnerInvitation", security(("bearer" = [])),
    responses((status = 204, description = "No open invitation remains")))]
async fn withdraw(state: AppState, CurrentUser(who): CurrentUser) -> ApiResult<StatusCode> {
    state.partners.withdraw(who.user.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Who invited you with this code, before you accept.
#[utoipa::path(get, path = "/v1/partner/invitations/{code}", tag = "partners", operation_id = "previewPartnerInvitation", security(("bearer" = [])),
    params(("code" = String, Path, description = "The invitation code")),
    responses(
        (status = 200, description = "The inviter's name", body = InvitationPreviewView),
        (status = 404, description = "No such open invitation: unknown, expired, used and withdrawn codes answer alike", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "More than 10 unknown codes from this account or address in an hour; see `Retry-After`", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds until codes may be tried again"))),
    ))]
async fn preview(
    state: AppState,
    CurrentUser(who): CurrentUser,
    ClientAddress(address): ClientAddress,
    Path(code): Path<String>,
) -> ApiResult<Json<InvitationPreviewView>> {
    Ok(Json(state.preview_partner_invitation(who.user.id, &code, &address).await?.into()))
}

/// Accept an invitation: you and the inviter are linked.
#[utoipa::path(post, path = "/v1/partner/invitations/{code}/accept", tag = "partners", operation_id = "acceptPartnerInvitation", security(("bearer" = [])),
    params(("code" = String, Path, description = "The invitation code")),
    responses(
        (status = 201, description = "Linked", body = LinkView),
        (status = 404, description = "No such open invitation: unknown, expired, used and withdrawn codes answer alike", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "You are linked already, or the inviter is no longer available", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The invitation is your own", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "More than 10 unknown codes from this account or address in an hour; see `Retry-After`", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds until codes may be tried again"))),
    ))]
async fn accept(
    state: AppState,
    CurrentUser(who): CurrentUser,
    ClientAddress(address): ClientAddress,
    Path(code): Path<String>,
) -> ApiResult<impl IntoResponse> {
    let link = state.accept_partner_invitation(who.user.id, &code, &address).await?;
    Ok((StatusCode::CREATED, Json(LinkView::from(link))))
}

/// Your partner, and how much each of you shares.
#[utoipa::path(get, path = "/v1/partner", tag = "partners", operation_id = "getPartner", security(("bearer" = [])),
    responses(
        (status = 200, description = "Your link", body = PartnershipView),
        (status = 404, description = "You are not linked with a partner", body = Problem, content_type = "application/problem+json"),
    ))]
async fn partner(state: AppState, CurrentUser(who): CurrentUser) -> ApiResult<Json<PartnershipView>> {
    Ok(Json(state.partnership(who.user.id).await?.into()))
}

/// Leave the link, at once and alone. Your partner is not notified; what you
/// shared leaves their devices at their next sync.
#[utoipa::path(delete, path = "/v1/partner", tag = "partners", operation_id = "unlinkPartner", security(("bearer" = [])),
    responses((status = 204, description = "Not linked (any more)")))]
async fn unlink(state: AppState, CurrentUser(who): CurrentUser) -> ApiResult<StatusCode> {
    state.unlink_partner(who.user.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(invite, withdraw))
        .routes(routes!(preview))
        .routes(routes!(accept))
        .routes(routes!(partner, unlink))
}
