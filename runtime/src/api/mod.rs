//! The HTTP surface (docs/protocol.md §1): [`app`] builds the router — sessions, the SSE
//! stream, health, readiness and metrics, and with `--fault-endpoints` the fault injection
//! under `/admin` — with CORS and a tracing span per request. Unknown paths answer a JSON 404.
//! Not for agent logic or storage.

mod admin;
mod error;
mod sessions;
mod stream;

use axum::{
    Json, Router,
    extract::State,
    http::{HeaderName, HeaderValue, Method, StatusCode, header},
    response::IntoResponse,
    routing::get,
};
use serde_json::json;
use tower_http::{cors::CorsLayer, trace::TraceLayer};

pub use error::AppError;

use crate::state::AppState;

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
    if state.config.fault_endpoints {
        router = router.route("/admin/oom", axum::routing::post(admin::oom));
    }
    router
        .route("/v1/sessions", axum::routing::post(sessions::create))
        .route(
            "/v1/sessions/{id}",
            get(sessions::status).delete(sessions::cancel),
        )
        .route("/v1/sessions/{id}/events", get(stream::events))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .fallback(|| async { AppError::NoRoute })
        .layer(cors)
        .layer(replica)
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &axum::http::Request<_>| {
                tracing::info_span!("request", method = %req.method(), path = %req.uri().path())
            }),
        )
        .with_state(state)
}

/// Browsers on the configured origins may create sessions and read streams with
/// `EventSource`; they may read `Retry-After` on 503s.
fn cors(origins: &[String]) -> CorsLayer {
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    CorsLayer::new()
        .allow_origin(origins)
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
    );
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
}
