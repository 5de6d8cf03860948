//! One error type for the API, rendered once as RFC 9457 problem+json, and the
//! one place where every domain error becomes a problem. An internal cause keeps
//! its typed source chain; it is logged once, where the 500 (or 503) is made,
//! inside the request's span (so with its request id), and never sent to the
//! client.

use attune_shared::{
    accounts::{AccountError, mail::AccountMailError},
    domain::progress::UnmetReason,
    domain::{FieldError, ValidationErrors},
    enrollment::EnrollmentError,
    notifications::{
        MAX_SUBSCRIPTIONS_PER_USER, NotificationError,
        choices::{ChoicesError, Unreadable},
    },
    partners::PartnerError,
    push::DeviceKind,
    reminders::ReminderError,
    sync::{ConflictedRecord, SyncError},
    usecases::ProfileError,
};
use axum::{
    extract::rejection::{JsonRejection, PathRejection, QueryRejection},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;
use utoipa::ToSchema;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// An RFC 9457 problem document.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI reference naming the kind of problem (`about:blank` for plain HTTP errors).
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// For validation problems: every field that is wrong, and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// For sync conflicts (409): the records changed on the server since the
    /// client's last pull.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub conflicts: Vec<ConflictedRecord>,
    /// For a refused step advance (409): every reason, machine-readable.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unmet: Vec<UnmetReason>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request is malformed (bad JSON syntax, bad query string).
    #[error("{0}")]
    BadRequest(String),
    /// 401: no valid credentials.
    #[error("{0}")]
    Unauthorized(String),
    /// 401 with type `/problems/reauthentication-required`: the action needs the
    /// current password (or an `X-Reauth-Token`); apps ask for it and retry.
    #[error("{0}")]
    ReauthenticationRequired(String),
    /// 404
    #[error("{0}")]
    NotFound(String),
    /// 405
    #[error("{0}")]
    MethodNotAllowed(String),
    /// 409: the request conflicts with the current state; `slug` names the kind.
    #[error("{detail}")]
    Conflict { slug: &'static str, detail: String },
    /// 409 for a step advance that is not possible yet: every unmet reason.
    #[error("Not yet: {}", .0.iter().map(|r| r.message.as_str()).collect::<Vec<_>>().join(" "))]
    NotReady(Vec<UnmetReason>),
    /// 409 for a sync push: these records changed since the client's last pull.
    #[error("{} record(s) changed on the server since your last pull; pull, then push again.", .0.len())]
    SyncConflict(Vec<ConflictedRecord>),
    /// 413
    #[error("{0}")]
    PayloadTooLarge(String),
    /// 415
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 422: well-formed but invalid values, field by field.
    #[error("{0}")]
    Validation(ValidationErrors),
    /// 429, with `Retry-After`.
    #[error("{detail}")]
    TooManyRequests { retry_after_secs: u64, detail: String },
    /// 503: a dependency (database, queue) is unreachable; the detail says which,
    /// the cause (when there is one) is logged.
    #[error("{detail}")]
    Unavailable { detail: String, cause: Option<anyhow::Error> },
    /// 500: the cause is logged with its chain, shown to nobody.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        Self::Internal(cause.into())
    }

    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::Unavailable { detail: detail.into(), cause: None }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) | Self::ReauthenticationRequired(_) => StatusCode::UNAUTHORIZED,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict { .. } | Self::SyncConflict(_) | Self::NotReady(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn problem(&self) -> Problem {
        let status = self.status();
        let conflicts = match self {
            Self::SyncConflict(records) => records.clone(),
            _ => vec![],
        };
        let unmet = match self {
            Self::NotReady(reasons) => reasons.clone(),
            _ => vec![],
        };
        let (kind, detail, errors) = match self {
            Self::Validation(errors) => (
                "/problems/validation".to_owned(),
                format!("The request has invalid values: {}.", field_list(errors)),
                errors.0.clone(),
            ),
            Self::Conflict { slug, detail } => (format!("/problems/{slug}"), detail.clone(), vec![]),
            Self::SyncConflict(_) => ("/problems/sync-conflict".to_owned(), self.to_string(), vec![]),
            Self::NotReady(_) => ("/problems/not-ready".to_owned(), self.to_string(), vec![]),
            Self::TooManyRequests { detail, .. } => ("/problems/rate-limited".to_owned(), detail.clone(), vec![]),
            Self::ReauthenticationRequired(detail) => {
                ("/problems/reauthentication-required".to_owned(), detail.clone(), vec![])
            }
            Self::Internal(_) => (
                "about:blank".to_owned(),
                "Something went wrong on our side. It has been logged; please try again.".to_owned(),
                vec![],
            ),
            other => ("about:blank".to_owned(), other.to_string(), vec![]),
        };
        Problem {
            kind,
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail,
            errors,
            conflicts,
            unmet,
        }
    }
}

fn field_list(errors: &ValidationErrors) -> String {
    errors.0.iter().map(|e| format!("{} {}", e.field, e.message)).collect::<Vec<_>>().join("; ")
}

/// Renders a problem with the given status (used for responses that did not come
/// from an `ApiError`, such as framework-generated errors).
pub fn problem_response(problem: &Problem) -> Response {
    let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = serde_json::to_vec(problem).unwrap_or_default();
    let mut response = (status, body).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    response
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            Self::Internal(cause) => tracing::error!(error = %format!("{cause:#}"), "internal error"),
            Self::Unavailable { cause: Some(cause), .. } => {
                tracing::error!(error = %format!("{cause:#}"), "dependency unavailable");
            }
            _ => {}
        }
        let mut response = problem_response(&self.problem());
        match &self {
            Self::TooManyRequests { retry_after_secs, .. } => {
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            }
            Self::Unauthorized(_) => {
                response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            _ => {}
        }
        response
    }
}

impl From<AccountError> for ApiError {
    fn from(error: AccountError) -> Self {
        match error {
            AccountError::Validation(errors) => Self::Validation(errors),
            AccountError::EmailTaken => Self::Conflict {
                slug: "email-taken",
                detail: "An account with this email already exists. Sign in instead.".into(),
            },
            AccountError::InvalidCredentials => Self::Unauthorized("The email or password is not right.".into()),
            AccountError::Throttled { retry_after_secs } => Self::TooManyRequests {
                retry_after_secs,
                detail: format!(
                    "Too many sign-in attempts. Please wait {} before trying again.",
                    human_duration(retry_after_secs)
                ),
            },
            AccountError::InvalidRefreshToken => {
                Self::Unauthorized("The refresh token is not valid; please sign in again.".into())
            }
            AccountError::Unauthenticated => {
                Self::Unauthorized("A valid access token is required (Authorization: Bearer …).".into())
            }
            AccountError::ReauthenticationRequired => Self::ReauthenticationRequired(
                "Confirm it is you: send your current password, or a token from POST /v1/auth/reauth in \
                 the X-Reauth-Token header. A wrong password or an expired token answers this too."
                    .into(),
            ),
            AccountError::SessionNotFound => Self::NotFound("You have no active session with this id.".into()),
            AccountError::Database(e) => Self::internal(e),
            AccountError::Hashing(e) => Self::internal(e),
            AccountError::Signing(e) => Self::internal(e),
        }
    }
}

fn human_duration(secs: u64) -> String {
    match secs {
        0..=90 => format!("{secs} seconds"),
        _ => format!("{} minutes", secs.div_ceil(60)),
    }
}

impl From<EnrollmentError> for ApiError {
    fn from(error: EnrollmentError) -> Self {
        match error {
            EnrollmentError::Validation(errors) => Self::Validation(errors),
            EnrollmentError::AlreadyEnrolled => Self::Conflict {
                slug: "already-enrolled",
                detail: "You are already enrolled. Change pace or mode with PATCH /v1/enrollments/current.".into(),
            },
            EnrollmentError::NoLinkedPartner => Self::Conflict {
                slug: "no-linked-partner",
                detail: "Couple mode is for two people linked in the app: link with your partner first \
                         (POST /v1/partner/invitations), or choose `partnered` to include a partner who does \
                         not use the app, or `solo`."
                    .into(),
            },
            EnrollmentError::NotEnrolled => {
                Self::NotFound("You are not enrolled in a program yet: join one with POST /v1/enrollments.".into())
            }
            EnrollmentError::NotReady(reasons) => Self::NotReady(reasons),
            EnrollmentError::Changed => Self::Conflict {
                slug: "enrollment-changed",
                detail: "Your enrollment changed meanwhile (perhaps on another device). Reload and try again.".into(),
            },
            EnrollmentError::Database(e) => Self::internal(e),
            EnrollmentError::Content(e) => Self::internal(e),
            error @ EnrollmentError::Unknown(_) => Self::internal(error),
        }
    }
}

impl From<SyncError> for ApiError {
    fn from(error: SyncError) -> Self {
        match error {
            SyncError::Validation(errors) => Self::Validation(errors),
            SyncError::TooManyRecords { .. } => Self::PayloadTooLarge(format!("{error}. Push in smaller batches.")),
            SyncError::Conflict(records) => Self::SyncConflict(records),
            SyncError::Database(e) => Self::internal(e),
            SyncError::Crypto(e) => Self::internal(e),
            SyncError::Json(e) => Self::internal(e),
            SyncError::PageRead(e) => Self::internal(e),
        }
    }
}

impl From<Unreadable> for ApiError {
    fn from(_: Unreadable) -> Self {
        Self::Conflict {
            slug: "notification-settings-unreadable",
            detail: "Your saved notification settings could not be read, so no notifications are sent to you. \
                     Save them again with PUT /v1/notifications/settings."
                .into(),
        }
    }
}

impl From<ChoicesError> for ApiError {
    fn from(error: ChoicesError) -> Self {
        match error {
            ChoicesError::Validation(errors) => Self::Validation(errors),
            ChoicesError::Unreadable(unreadable) => unreadable.into(),
            ChoicesError::Database(e) => Self::internal(e),
        }
    }
}

impl From<NotificationError> for ApiError {
    fn from(error: NotificationError) -> Self {
        match error {
            NotificationError::Validation(errors) => Self::Validation(errors),
            NotificationError::TooManySubscriptions => Self::Conflict {
                slug: "too-many-devices",
                detail: format!(
                    "At most {MAX_SUBSCRIPTIONS_PER_USER} devices can receive notifications. Remove one first."
                ),
            },
            NotificationError::ServiceNotEnabled(kind) => Self::Conflict {
                slug: "push-service-not-enabled",
                detail: format!(
                    "This server does not send {} notifications: the operator has not enabled that service.",
                    match kind {
                        DeviceKind::Apns => "APNs (iOS)",
                        DeviceKind::Fcm => "FCM (Android)",
                        DeviceKind::Web => "Web Push",
                    }
                ),
            },
            NotificationError::NotFound => Self::NotFound("There is no such device subscription.".into()),
            NotificationError::NoSubscriptions => Self::Conflict {
                slug: "no-devices",
                detail: "No device is subscribed yet: allow notifications in the app first.".into(),
            },
            NotificationError::Database(e) => Self::internal(e),
            NotificationError::Queue(e) => Self::Unavailable {
                detail: "The job queue does not answer; try again shortly.".into(),
                cause: Some(e.into()),
            },
        }
    }
}

impl From<ReminderError> for ApiError {
    fn from(error: ReminderError) -> Self {
        match error {
            ReminderError::Validation(errors) => Self::Validation(errors),
            ReminderError::NotFound => Self::NotFound("There is no such reminder.".into()),
            ReminderError::Unreadable(unreadable) => unreadable.into(),
            ReminderError::Database(e) => Self::internal(e),
        }
    }
}

impl From<AccountMailError> for ApiError {
    fn from(error: AccountMailError) -> Self {
        match error {
            AccountMailError::Validation(errors) => Self::Validation(errors),
            AccountMailError::Throttled { retry_after_secs } => Self::TooManyRequests {
                retry_after_secs,
                detail: format!(
                    "Too many password-reset requests. Please wait {} before asking again; \
                     a code already sent still works.",
                    human_duration(retry_after_secs)
                ),
            },
            AccountMailError::MailNotConfigured => Self::Conflict {
                slug: "mail-not-configured",
                detail: "This server cannot send mail: its operator has not configured an SMTP server \
                         (ATTUNE_SMTP_URL). Ask them to set one up; until then nothing that needs a mail works."
                    .into(),
            },
            AccountMailError::Token(refusal) => Self::Validation(ValidationErrors::single("token", refusal.message())),
            AccountMailError::Queue(e) => Self::Unavailable {
                detail: "The job queue does not answer; try again shortly.".into(),
                cause: Some(e.into()),
            },
            AccountMailError::Database(e) => Self::internal(e),
            error @ (AccountMailError::Sealed(_) | AccountMailError::Internal(_)) => Self::internal(error),
        }
    }
}

impl From<PartnerError> for ApiError {
    fn from(error: PartnerError) -> Self {
        match error {
            PartnerError::InvitationNotFound => Self::NotFound(
                "No open invitation has this code. Codes work once, for 24 hours; ask for a new one.".into(),
            ),
            PartnerError::OwnInvitation => Self::Validation(ValidationErrors::single(
                "code",
                "is your own invitation: your partner accepts it on their device",
            )),
            PartnerError::AlreadyLinked => Self::Conflict {
                slug: "already-linked",
                detail: "You are linked with a partner already. Unlink first (DELETE /v1/partner).".into(),
            },
            PartnerError::InviterUnavailable => {
                Self::Conflict { slug: "inviter-unavailable", detail: "The inviter is no longer available.".into() }
            }
            PartnerError::NotLinked => Self::NotFound("You are not linked with a partner.".into()),
            PartnerError::Throttled { retry_after_secs } => Self::TooManyRequests {
                retry_after_secs,
                detail: format!(
                    "Too many unknown invitation codes. Please wait {} before trying again.",
                    human_duration(retry_after_secs)
                ),
            },
            PartnerError::Sharing(e) => e.into(),
            PartnerError::Database(e) => Self::internal(e),
        }
    }
}

impl From<ProfileError> for ApiError {
    fn from(error: ProfileError) -> Self {
        match error {
            ProfileError::Account(e) => e.into(),
            ProfileError::Choices(e) => e.into(),
            ProfileError::Mail(e) => e.into(),
        }
    }
}

impl From<sea_orm::DbErr> for ApiError {
    fn from(error: sea_orm::DbErr) -> Self {
        Self::internal(error)
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::JsonDataError(e) => {
                let detail = e.body_text();
                let field = detail
                    .split_once(": ")
                    .and_then(|(_, rest)| rest.split_once(": "))
                    .map(|(path, _)| path.to_owned())
                    .filter(|p| !p.contains(' '))
                    .or_else(|| missing_field(&detail))
                    .unwrap_or_else(|| "body".to_owned());
                Self::Validation(ValidationErrors::single(field, detail))
            }
            JsonRejection::JsonSyntaxError(e) => {
                Self::BadRequest(format!("The body is not valid JSON: {}", e.body_text()))
            }
            JsonRejection::MissingJsonContentType(_) => {
                Self::UnsupportedMediaType("Send the body as JSON with `Content-Type: application/json`.".into())
            }
            JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Self::PayloadTooLarge("The request body is larger than this server accepts.".into())
            }
            other => Self::BadRequest(other.body_text()),
        }
    }
}

/// serde's "missing field `name`" names the field only inside the message.
fn missing_field(detail: &str) -> Option<String> {
    let rest = detail.split_once("missing field `")?.1;
    Some(rest.split_once('`')?.0.to_owned())
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        Self::NotFound(format!("No such resource: {}", rejection.body_text()))
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        Self::Validation(ValidationErrors::single("query", rejection.body_text()))
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
