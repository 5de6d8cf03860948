//! Building and running the service: `Application::build` binds the listener first
//! (so tests can use port 0), connects, migrates where it should, and wires the
//! router; `run_until` serves until shutdown, then drains requests and jobs.

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use attune_shared::{
    Clock,
    config::Settings,
    person_cache,
    services::{Migrate, Services},
};
use attune_worker::WorkerDeps;
use axum::serve::ListenerExt;
use axum::{
    Router,
    extract::{DefaultBodyLimit, MatchedPath, Request},
    http::{HeaderName, HeaderValue, Method, StatusCode, header},
    middleware,
    response::Response,
};
use tokio::net::TcpListener;
use tower::ServiceBuilder;
use tower_http::{
    catch_panic::CatchPanicLayer,
    cors::{AllowOrigin, CorsLayer},
    timeout::TimeoutLayer,
    trace::TraceLayer,
};
use tracing::Span;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::{
    error::ApiError,
    middleware as mw,
    openapi::ApiDoc,
    routes,
    state::{App, AppState},
};

/// How a process runs its worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerMode {
    /// In-process when the queue is the local SQLite one (no `REDIS_URL`).
    Auto,
    InProcess,
    None,
}

#[derive(Debug, Clone)]
pub struct BuildOptions {
    pub clock: Arc<dyn Clock>,
    /// Apply pending migrations at start (embedded mode does; scaled runs
    /// `attune-api migrate` as a separate step).
    pub migrate: bool,
    pub worker: WorkerMode,
}

pub struct Application {
    listener: TcpListener,
    router: Router,
    state: AppState,
    worker: Option<WorkerDeps>,
    /// Scaled: hears the changes other replicas make (`person_cache`).
    changes_listener: Option<person_cache::Listener>,
}

/// The longest any one request may run before it is answered 503. A shutdown waits
/// for in-flight requests, so this also bounds how long that wait can be.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

impl Application {
    pub async fn build(settings: Settings, options: BuildOptions) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(settings.bind)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", settings.bind))?;
        let migrate = if options.migrate { Migrate::Yes } else { Migrate::No };
        let services = Services::connect(&settings, options.clock, migrate).await?;
        let run_worker = match options.worker {
            WorkerMode::Auto => settings.redis_url.is_none(),
            WorkerMode::InProcess => true,
            WorkerMode::None => false,
        };
        let worker = if run_worker { Some(WorkerDeps::new(services.clone(), &settings)?) } else { None };
        // Install the process-wide recorder before the first request is counted.
        attune_shared::telemetry::metrics_recorder();
        // Scaled, the other replicas announce the changes they make (`person_cache`).
        let changes_listener = match &settings.redis_url {
            Some(url) => {
                let channel = person_cache::channel_name(&settings.queue_namespace);
                Some(person_cache::listen(url.expose(), channel, services.changes.clone()).await)
            }
            None => None,
        };
        let state = AppState(Arc::new(App {
            vapid_public_key: services.secrets.vapid_key.public_key_base64url().to_owned(),
            services,
            openapi: Default::default(),
            settings,
        }));
        let router = router(state.clone())?;
        Ok(Self { listener, router, state, worker, changes_listener })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves; then stops taking requests, lets the
    /// in-flight ones finish, and stops the in-process worker the same way.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let (stop_worker, worker_stopped) = tokio::sync::watch::channel(false);
        let worker = self.worker.map(|deps| {
            let queue = self.state.queue.clone();
            let mut stopped = worker_stopped.clone();
            tokio::spawn(async move {
                let signal = async move {
                    let _ = stopped.wait_for(|stop| *stop).await;
                };
                if let Err(error) = attune_worker::run(deps, queue, signal).await {
                    tracing::error!(%error, "in-process worker ended with an error");
                }
            })
        });
        let addr = self.listener.local_addr()?;
        tracing::info!(%addr, embedded = self.state.settings.is_embedded(), "Attune API listening");
        let service = self.router.into_make_service_with_connect_info::<SocketAddr>();
        // Responses go out as they are written: a streamed pull's pieces must not
        // wait, piece by piece, for the client's delayed ACK (Nagle's algorithm,
        // some 40 ms a response).
        let listener = self.listener.tap_io(|stream| {
            if let Err(error) = stream.set_nodelay(true) {
                tracing::debug!(%error, "could not set TCP_NODELAY on a connection");
            }
        });
        axum::serve(listener, service).with_graceful_shutdown(shutdown).await?;
        drop(self.changes_listener);
        tracing::info!("HTTP server stopped");
        let _ = stop_worker.send(true);
        if let Some(worker) = worker {
            let _ = worker.await;
        }
        Ok(())
    }
}

/// Every route, with its part of the OpenAPI document. The document needs no state,
/// so `attune-api openapi` prints it without a database.
pub(crate) fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(routes::auth::router())
        .merge(routes::account_mail::router())
        .merge(routes::me::router())
        .merge(routes::sessions::router())
        .merge(routes::sync::router())
        .merge(routes::program::router())
        .merge(routes::push::router())
        .merge(routes::notifications::router())
        .merge(routes::reminders::router())
        .merge(routes::reflections::router())
        .merge(routes::partners::router())
        .merge(routes::ops::router())
        .merge(routes::contract::router())
}

fn router(state: AppState) -> anyhow::Result<Router> {
    // The document is rendered when it is first asked for (`routes::contract`):
    // most servers never serve it, and rendering it at start left its peak of
    // heap with the process for good.
    let api = Router::from(api_routes());
    let settings = &state.settings;
    let body_limit = settings.max_body_bytes;
    let cors = cors_layer(&settings.cors_origins)?;
    let router = api
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(
            ServiceBuilder::new()
                .layer(middleware::from_fn(mw::request_id::assign))
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(request_span)
                        .on_request(())
                        .on_response(log_response)
                        .on_failure(()),
                )
                .layer(middleware::from_fn(mw::metrics::track))
                .layer(middleware::from_fn(mw::headers::secure))
                .layer(middleware::from_fn(mw::problems::ensure_problem_json))
                .layer(CatchPanicLayer::custom(|_| {
                    tracing::error!("handler panicked");
                    Response::builder()
                        .status(StatusCode::INTERNAL_SERVER_ERROR)
                        .body(axum::body::Body::empty())
                        .unwrap_or_default()
                }))
                .option_layer(cors)
                .layer(TimeoutLayer::with_status_code(StatusCode::SERVICE_UNAVAILABLE, REQUEST_TIMEOUT)),
        );
    Ok(router)
}

/// Only the method, route template and request id go into the span: never query
/// strings, bodies or headers, which may carry tokens or personal data.
fn request_span(request: &Request) -> Span {
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", |p| p.as_str());
    let request_id =
        request.headers().get(&mw::request_id::X_REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or_default();
    tracing::info_span!(
        "request",
        request_id = %request_id,
        method = %request.method(),
        route = %route,
        user_id = tracing::field::Empty,
    )
}

fn log_response(response: &Response, latency: Duration, _span: &Span) {
    let status = response.status().as_u16();
    let latency_ms = latency.as_secs_f64() * 1000.0;
    if response.status().is_server_error() {
        tracing::error!(status, latency_ms, "response");
    } else {
        tracing::info!(status, latency_ms, "response");
    }
}

fn cors_layer(origins: &[String]) -> anyhow::Result<Option<CorsLayer>> {
    let origins: Vec<HeaderValue> = origins
        .iter()
        .map(|o| o.trim())
        .filter(|o| !o.is_empty())
        .map(|o| {
            HeaderValue::from_str(o).map_err(|_| anyhow::anyhow!("ATTUNE_CORS_ORIGINS: `{o}` is not a valid origin"))
        })
        .collect::<Result<_, _>>()?;
    if origins.is_empty() {
        return Ok(None);
    }
    Ok(Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE])
            .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE, HeaderName::from_static("x-request-id")])
            .expose_headers([HeaderName::from_static("x-request-id"), header::RETRY_AFTER, header::ETAG])
            .max_age(Duration::from_secs(600)),
    ))
}

async fn not_found() -> ApiError {
    ApiError::NotFound("There is nothing at this address. See /docs for the API.".into())
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed(
        "This resource does not support that method; the `Allow` header lists those it does.".into(),
    )
}
