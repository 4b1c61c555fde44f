//! The HTTP surface (docs/protocol.md §1): [`app`] builds the router — sessions, the SSE
//! stream, health, readiness and metrics, and with `--fault-endpoints` the fault injection
//! under `/admin` — with CORS and a tracing span per request, from one route table
//! ([`routes`]) that `docs/openapi.yaml` must describe (served at `/openapi.json`). Unknown
//! paths answer a JSON 404, known paths with another method a JSON 405.
//! Not for agent logic or storage.

mod admin;
mod auth;
pub mod decode;
mod error;
pub mod openapi;
mod sessions;
mod stream;
pub mod streams;

use axum::{
    Json, Router,
    extract::State,
    handler::Handler,
    http::{HeaderName, HeaderValue, Method, StatusCode, header},
    response::IntoResponse,
    routing::{MethodFilter, MethodRouter, on},
};
use serde_json::json;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::trace::TraceLayer;

pub use auth::secret_eq;
pub use error::AppError;

use crate::{config::Config, state::AppState};

/// The runtime's router; `run` serves it and tests call it with `oneshot`.
pub fn app(state: AppState) -> Router {
    let cors = cors(&state.config.cors_origins);
    // Which replica answered: behind a load balancer, the only way a client (or the harness,
    // attributing a broken stream to a fault) knows who served a stream.
    let replica = tower_http::set_header::SetResponseHeaderLayer::overriding(
        axum::http::HeaderName::from_static("x-dropzero-replica"),
        HeaderValue::from_str(&state.config.replica_id)
            .unwrap_or_else(|_| HeaderValue::from_static("invalid-replica-id")),
    );
    let mut router = Router::new();
    for (path, _, handler) in table(&state.config) {
        // Routes on one path merge: `.route(p, get(a)).route(p, delete(b))`.
        router = router.route(path, handler);
    }
    router
        .fallback(|| async { AppError::NoRoute })
        .method_not_allowed_fallback(|| async { AppError::MethodNotAllowed })
        .layer(cors)
        .layer(replica)
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &axum::http::Request<_>| {
                tracing::info_span!("request", method = %req.method(), path = %req.uri().path())
            }),
        )
        .with_state(state)
}

type Entry = (&'static str, Method, MethodRouter<AppState>);

/// Every route the runtime serves with `config`, as (path, method). The router is built
/// from the same table, and a test checks that `docs/openapi.yaml` describes each entry.
pub fn routes(config: &Config) -> Vec<(&'static str, Method)> {
    table(config)
        .into_iter()
        .map(|(path, method, _)| (path, method))
        .collect()
}

fn table(config: &Config) -> Vec<Entry> {
    let mut table = vec![
        entry("/v1/sessions", Method::POST, sessions::create),
        entry("/v1/sessions/{id}", Method::GET, sessions::status),
        entry("/v1/sessions/{id}", Method::DELETE, sessions::cancel),
        entry("/v1/sessions/{id}/events", Method::GET, stream::events),
        entry("/healthz", Method::GET, healthz),
        entry("/readyz", Method::GET, readyz),
        entry("/metrics", Method::GET, metrics),
        entry("/openapi.json", Method::GET, openapi::serve),
    ];
    if config.fault_endpoints {
        table.push(entry("/admin/oom", Method::POST, admin::oom));
    }
    table
}

/// One table row; the method and the handler's filter come from the same value.
fn entry<H, T>(path: &'static str, method: Method, handler: H) -> Entry
where
    H: Handler<T, AppState>,
    T: 'static,
{
    let filter = MethodFilter::try_from(method.clone())
        .expect("the table uses only methods axum can route (GET, POST, DELETE)");
    (path, method, on(filter, handler))
}

/// Browsers on the configured origins may create sessions and read streams with
/// `EventSource`; they may read `Retry-After` on 503s.
fn cors(origins: &[String]) -> CorsLayer {
    // tower-http panics on `*` inside a list: a wildcard is its own setting.
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        let list: Vec<HeaderValue> = origins
            .iter()
            .filter_map(|o| HeaderValue::from_str(o).ok())
            .collect();
        AllowOrigin::list(list)
    };
    CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([Method::GET, Method::POST, Method::DELETE])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            HeaderName::from_static("last-event-id"),
            HeaderName::from_static("idempotency-key"),
            HeaderName::from_static("x-api-key"),
        ])
        .expose_headers([header::RETRY_AFTER, header::CONTENT_TYPE])
}

async fn healthz() -> impl IntoResponse {
    Json(json!({"status": "ok"}))
}

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    if state.drain.is_draining() {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "draining"})),
        )
    } else if !state.leases.is_healthy() {
        // The journal did not answer the last lease heartbeat: this replica can neither
        // start nor continue a session, so the load balancer should send traffic elsewhere.
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "journal_unavailable"})),
        )
    } else {
        (StatusCode::OK, Json(json!({"status": "ready"})))
    }
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let c = &state.config;
    let body = state.metrics.render(
        &c.replica_id,
        c.mode.as_str(),
        &c.version_label,
        state.local.len(),
        state.drain.is_draining(),
        state.leases.is_healthy(),
    );
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
}
