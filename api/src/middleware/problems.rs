//! Makes sure every error leaves as problem+json, including the ones produced by
//! layers rather than handlers (timeouts, panics caught, body limits).

use axum::{
    extract::Request,
    http::{StatusCode, header},
    middleware::Next,
    response::Response,
};

use crate::error::{PROBLEM_JSON, Problem, problem_response};

pub async fn ensure_problem_json(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with(PROBLEM_JSON));
    if !(status.is_client_error() || status.is_server_error()) || is_problem {
        return response;
    }
    let mut rewritten = problem_response(&Problem {
        kind: "about:blank".into(),
        title: status.canonical_reason().unwrap_or("Error").to_owned(),
        status: status.as_u16(),
        detail: default_detail(status).to_owned(),
        errors: vec![],
        conflicts: vec![],
        unmet: vec![],
    });
    // Keep headers such as `Allow` and `Retry-After`.
    for (name, value) in response.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            rewritten.headers_mut().insert(name.clone(), value.clone());
        }
    }
    rewritten
}

fn default_detail(status: StatusCode) -> &'static str {
    match status {
        StatusCode::PAYLOAD_TOO_LARGE => "The request body is larger than this server accepts.",
        StatusCode::SERVICE_UNAVAILABLE => "The server could not answer in time; please try again.",
        StatusCode::INTERNAL_SERVER_ERROR => "Something went wrong on our side. It has been logged; please try again.",
        StatusCode::METHOD_NOT_ALLOWED => "This resource does not support that method.",
        StatusCode::NOT_FOUND => "There is nothing at this address.",
        _ => "The request could not be handled.",
    }
}
