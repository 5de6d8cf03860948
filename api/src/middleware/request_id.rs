//! `x-request-id`: kept from the request when it is a sane value, generated (UUIDv7)
//! otherwise, echoed on the response and present in the request's log lines (the
//! trace span reads it from the header this middleware normalises).

use axum::{
    extract::Request,
    http::{HeaderName, HeaderValue},
    middleware::Next,
    response::Response,
};

pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Only short ids of safe characters are kept, so a client cannot inject text into
/// log lines.
fn acceptable(value: &str) -> bool {
    (1..=128).contains(&value.len())
        && value.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

pub async fn assign(mut request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| acceptable(v))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    if let Ok(value) = HeaderValue::from_str(&id) {
        request.headers_mut().insert(X_REQUEST_ID.clone(), value.clone());
        let mut response = next.run(request).await;
        response.headers_mut().insert(X_REQUEST_ID.clone(), value);
        response
    } else {
        next.run(request).await
    }
}

#[cfg(test)]
mod tests {
    use super::acceptable;

    #[test]
    fn only_safe_ids_are_kept() {
        assert!(acceptable("0190a5c4-7b1e-7cc2-9f00-6d1f2a3b4c5d"));
        assert!(acceptable("client.req_42:retry-1"));
        assert!(!acceptable(""));
        assert!(!acceptable("has space"));
        assert!(!acceptable("line\nbreak"));
        assert!(!acceptable(&"a".repeat(129)));
    }
}
