//! The API contract: the OpenAPI 3.1 document, and Swagger UI to browse it and try
//! requests against this server. Swagger UI is compiled into the binary
//! (`utoipa-swagger-ui`'s `vendored` feature), so `/docs` loads nothing from
//! anywhere else and works offline.

use std::sync::{Arc, LazyLock};

use axum::{
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
};
use utoipa_axum::{router::OpenApiRouter, routes};
use utoipa_swagger_ui::Config;

use crate::{
    error::{ApiError, ApiResult, Problem},
    extract::Path,
    state::AppState,
};

/// The narrowest policy Swagger UI runs under: its scripts and styles from this
/// server only (it has no inline script), `data:` images for the icons its CSS
/// embeds, and requests ("Try it out", the document) to this origin only. No frames,
/// plugins or forms; `<base>` only to this server.
pub const DOCS_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                            connect-src 'self'; base-uri 'self'; form-action 'none'; frame-ancestors 'none'";

/// Swagger UI's settings: the document at `/openapi.json`; the base layout, without
/// the top bar (its "Explore" box would load other documents, and its logo needs an
/// inline `<style>` the CSP refuses); no online validator badge (it would send the
/// document elsewhere); the token is kept in the page only, never in the browser's
/// storage.
static SWAGGER_CONFIG: LazyLock<Arc<Config<'static>>> = LazyLock::new(|| {
    Arc::new(
        Config::from("/openapi.json")
            .use_base_layout()
            .validator_url("none")
            .display_operation_id(true)
            .persist_authorization(false)
            .try_it_out_enabled(false)
            .display_request_duration(true),
    )
});

/// The OpenAPI 3.1 document of this API.
#[utoipa::path(get, path = "/openapi.json", tag = "operations", operation_id = "getOpenApiDocument",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json",
        body = Object)))]
async fn openapi_json(state: AppState) -> ApiResult<Response> {
    let body = match state.openapi.get() {
        Some(body) => body.clone(),
        None => {
            // Rendered once, on the first request: two requests racing here
            // render the same document, and the first kept is served.
            let rendered = serde_json::to_string(&crate::openapi::document().map_err(ApiError::internal)?)
                .map_err(ApiError::internal)?;
            state.openapi.get_or_init(|| rendered).clone()
        }
    };
    let mut response = body.into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    Ok(response)
}

/// Swagger UI: browse the API and try requests against this server.
///
/// Served at `/docs` itself; a `<base href="/docs/">` makes the page's relative
/// links resolve under `/docs/`.
#[utoipa::path(get, path = "/docs", tag = "operations", operation_id = "getDocs",
    responses((status = 200, description = "Swagger UI's HTML page", content_type = "text/html", body = String)))]
async fn docs_page() -> ApiResult<Response> {
    swagger_file("index.html")
}

/// One of Swagger UI's files (scripts, styles, icons).
#[utoipa::path(get, path = "/docs/{file}", tag = "operations", operation_id = "getDocsAsset",
    params(("file" = String, Path, description = "A file of Swagger UI's distribution", example = "swagger-ui.css")),
    responses(
        (status = 200, description = "The file (JavaScript, CSS or an image)", content_type = "application/octet-stream", body = String),
        (status = 404, description = "Swagger UI has no such file", body = Problem, content_type = "application/problem+json"),
    ))]
async fn docs_asset(Path(file): Path<String>) -> ApiResult<Response> {
    swagger_file(&file)
}

fn swagger_file(path: &str) -> ApiResult<Response> {
    let file = utoipa_swagger_ui::serve(path, SWAGGER_CONFIG.clone())
        .map_err(|e| ApiError::internal(anyhow::anyhow!("swagger-ui: {e}")))?
        .ok_or_else(|| ApiError::NotFound(format!("Swagger UI has no file `{path}`.")))?;
    let content_type = HeaderValue::from_str(&file.content_type).map_err(ApiError::internal)?;
    let body = if path == "index.html" {
        String::from_utf8_lossy(&file.bytes)
            .replacen("<head>", "<head>\n    <base href=\"/docs/\">", 1)
            .replacen("<title>Swagger UI</title>", "<title>Attune API</title>", 1)
            .into_bytes()
    } else {
        file.bytes.into_owned()
    };
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, content_type);
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(DOCS_CSP));
    // The files change only with a release; the page holds no private data.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    Ok(response)
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(openapi_json)).routes(routes!(docs_page)).routes(routes!(docs_asset))
}
