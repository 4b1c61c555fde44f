//! The HTTP server: routes, shared state, and the per-request flow (parse → fault draw →
//! reply → generator → body). Also the mock's control endpoints (`/mock/faults`,
//! `/mock/outage`, `/mock/ledger`) and `/healthz`.
//!
//! Shutdown: [`serve`] stops accepting when the token fires and closes every connection
//! (`outage::serve`); every generator selects on the same token, so open streams end at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::extract::State as Extract;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header as h};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::agent::{self, Conversation, Role};
use super::faults::{FaultSpec, Faults, Refusal};
use super::generate::{self, Job, Wire};
use super::latency::Sampler;
use super::lateness::Lateness;
use super::ledger::{Entry, Ledger};
use super::{MockConfig, anthropic, openai};

/// What every request shares.
#[derive(Debug)]
pub struct State {
    pub config: MockConfig,
    pub ledger: Ledger,
    pub faults: Faults,
    /// Responses currently generating (drives the load slowdown).
    pub open: AtomicUsize,
    /// Requests seen; seeds each request's latency and fault RNG.
    pub requests: AtomicU64,
    pub ttft: Sampler,
    pub itl: Sampler,
    pub shutdown: CancellationToken,
    /// Windows asked for with `POST /mock/outage`, for the accept loop (see `outage`).
    pub outages: super::outage::OutageRequests,
    /// Where paced tokens' lateness is recorded, when measured (benchmarks).
    pub lateness: Option<Arc<Lateness>>,
}

/// API-neutral error categories; each API module names and statuses them its own way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    InvalidRequest,
    RateLimited,
    Overloaded,
    Server,
}

/// An error answered before any output.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{kind:?}: {message}")]
pub struct ApiError {
    pub kind: ErrorKind,
    pub message: String,
    pub retry_after_s: Option<u64>,
}

impl ApiError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> ApiError {
        ApiError {
            kind,
            message: message.into(),
            retry_after_s: None,
        }
    }

    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorKind::InvalidRequest, message)
    }
}

/// A parsed LLM request.
#[derive(Debug)]
pub struct Parsed {
    pub conv: Conversation,
    pub stream: bool,
    pub session: Option<String>,
    /// OpenAI `stream_options.include_usage`.
    pub include_usage: bool,
}

/// A header's value as a string, if present and valid UTF-8.
pub fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Api {
    Anthropic,
    OpenAi,
}

impl Api {
    fn error(self, err: &ApiError) -> Response {
        let (status, body) = match self {
            Api::Anthropic => (anthropic::status(err.kind), anthropic::error_body(err)),
            Api::OpenAi => (openai::status(err.kind), openai::error_body(err)),
        };
        let mut resp = (status, axum::Json(body)).into_response();
        if let Some(s) = err.retry_after_s {
            resp.headers_mut()
                .insert(h::RETRY_AFTER, HeaderValue::from(s));
        }
        resp
    }
}

/// The mock's routes over `state`.
pub fn app(state: Arc<State>) -> Router {
    Router::new()
        .route("/v1/messages", post(messages))
        .route("/v1/chat/completions", post(chat_completions))
        .route(
            "/mock/faults",
            get(get_faults).post(set_faults).delete(clear_faults),
        )
        .route("/mock/ledger", get(ledger))
        .route("/mock/outage", post(start_outage))
        .route("/mock/ledger/reset", post(reset_ledger))
        .route("/healthz", get(healthz))
        // Errors of the control surface keep its JSON shape (docs/openapi.yaml).
        .fallback(|| async {
            control_error_of(
                StatusCode::NOT_FOUND,
                "not_found",
                "no such endpoint".into(),
            )
        })
        .method_not_allowed_fallback(|| async {
            control_error_of(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this endpoint does not serve that method".into(),
            )
        })
        .with_state(state)
}

/// Serve on `listener` until `shutdown` fires.
pub async fn serve(
    listener: tokio::net::TcpListener,
    config: MockConfig,
    shutdown: CancellationToken,
    lateness: Option<Arc<Lateness>>,
) -> std::io::Result<()> {
    let (outages, requested) = tokio::sync::mpsc::unbounded_channel();
    let state = Arc::new(State {
        outages,
        ledger: Ledger::new(config.profile.price),
        faults: Faults::default(),
        open: AtomicUsize::new(0),
        requests: AtomicU64::new(0),
        ttft: Sampler::new(config.profile.ttft),
        itl: Sampler::new(config.profile.itl),
        shutdown: shutdown.clone(),
        config,
        lateness,
    });
    if let Some(spec) = state.config.profile.faults {
        state.faults.set(spec);
    }
    super::outage::serve(listener, app(state), requested, shutdown).await
}

async fn messages(
    Extract(state): Extract<Arc<State>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    llm(state, Api::Anthropic, &headers, &body)
}

async fn chat_completions(
    Extract(state): Extract<Arc<State>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    llm(state, Api::OpenAi, &headers, &body)
}

/// One LLM call, either API, streaming or not.
fn llm(state: Arc<State>, api: Api, headers: &HeaderMap, body: &[u8]) -> Response {
    let parsed = serde_json::from_slice::<Value>(body)
        .map_err(|e| ApiError::invalid(format!("invalid JSON body: {e}")))
        .and_then(|v| match api {
            Api::Anthropic => anthropic::parse(&v, headers),
            Api::OpenAi => openai::parse(&v, headers),
        });
    let parsed = match parsed {
        Ok(p) => p,
        Err(e) => return api.error(&e),
    };
    let role = Role::from_header(header(headers, "x-dropzero-role").as_deref());
    let n = state.requests.fetch_add(1, Ordering::Relaxed);
    let span = tracing::info_span!(
        "llm_request",
        session_id = parsed.session.as_deref().unwrap_or(""),
        api = ?api,
        role = ?role,
        request = n,
    );
    let _entered = span.enter();
    let mut rng =
        ChaCha8Rng::seed_from_u64(state.config.seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let verdict = state.faults.decide(&mut rng);
    let session = parsed.session;
    if let Some(refusal) = verdict.refuse {
        state.ledger.record(session.as_deref(), Entry::Refused);
        tracing::info!(?refusal, "fault: refusing request");
        let err = match refusal {
            Refusal::RateLimited { retry_after_s } => ApiError {
                retry_after_s: Some(retry_after_s),
                ..ApiError::new(
                    ErrorKind::RateLimited,
                    "rate limit exceeded (dropzero fault)",
                )
            },
            Refusal::Overloaded { retry_after_s } => ApiError {
                retry_after_s: Some(retry_after_s),
                ..ApiError::new(ErrorKind::Overloaded, "Overloaded")
            },
            Refusal::ServerError => {
                ApiError::new(ErrorKind::Server, "internal server error (dropzero fault)")
            }
        };
        return api.error(&err);
    }
    let conv = parsed.conv;
    let reply = agent::reply(state.config.seed, &state.config.profile, role, &conv);
    let input_tokens = conv.input_tokens();
    state
        .ledger
        .record(session.as_deref(), Entry::Request { input_tokens });
    let created = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let model = conv.model;
    let wire: Box<dyn Wire> = match (api, parsed.stream) {
        (Api::Anthropic, true) => Box::new(anthropic::Stream::new(
            format!("msg_{n:024x}"),
            model,
            input_tokens,
        )),
        (Api::Anthropic, false) => Box::new(anthropic::Whole::new(
            format!("msg_{n:024x}"),
            model,
            input_tokens,
        )),
        (Api::OpenAi, true) => Box::new(openai::Stream::new(
            format!("chatcmpl-{n:024x}"),
            model,
            created,
            input_tokens,
            parsed.include_usage,
        )),
        (Api::OpenAi, false) => Box::new(openai::Whole {
            id: format!("chatcmpl-{n:024x}"),
            model,
            created,
            input_tokens,
            text: String::new(),
            tool: None,
        }),
    };
    let job = Job {
        reply,
        verdict,
        session,
        rng,
    };
    let body = Body::from_stream(generate::spawn(state, job, wire));
    let content_type = if parsed.stream {
        "text/event-stream"
    } else {
        "application/json"
    };
    let mut resp = Response::new(body);
    let headers = resp.headers_mut();
    headers.insert(h::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(h::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

fn control_error(status: StatusCode, message: String) -> Response {
    control_error_of(status, "invalid_request", message)
}

fn control_error_of(status: StatusCode, kind: &str, message: String) -> Response {
    (
        status,
        axum::Json(json!({"error": {"type": kind, "message": message}})),
    )
        .into_response()
}

fn faults_body(state: &State) -> Value {
    match state.faults.current() {
        Some((spec, left)) => {
            json!({"active": spec, "remaining_ms": left.map(|d| d.as_millis() as u64)})
        }
        None => json!({"active": null, "remaining_ms": null}),
    }
}

async fn get_faults(Extract(state): Extract<Arc<State>>) -> Response {
    axum::Json(faults_body(&state)).into_response()
}

/// `POST /mock/outage {"duration_ms": N}` → `202`, then connections are refused for N ms.
async fn start_outage(Extract(state): Extract<Arc<State>>, body: Bytes) -> Response {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Outage {
        duration_ms: u64,
    }
    let window = match serde_json::from_slice::<Outage>(&body) {
        Ok(o) => std::time::Duration::from_millis(o.duration_ms),
        Err(e) => {
            return control_error(StatusCode::BAD_REQUEST, format!("invalid outage: {e}"));
        }
    };
    let max = super::outage::MAX_OUTAGE;
    if window.is_zero() || window > max {
        return control_error(
            StatusCode::BAD_REQUEST,
            format!("duration_ms must be within 1..={}", max.as_millis()),
        );
    }
    if state.outages.send(window).is_err() {
        return control_error(StatusCode::SERVICE_UNAVAILABLE, "shutting down".into());
    }
    tracing::warn!(window_ms = window.as_millis() as u64, "outage requested");
    (
        StatusCode::ACCEPTED,
        axum::Json(json!({"outage_ms": window.as_millis() as u64})),
    )
        .into_response()
}

async fn set_faults(Extract(state): Extract<Arc<State>>, body: Bytes) -> Response {
    // Via `Value` first: serde would otherwise accept a JSON array as a struct.
    let spec = serde_json::from_slice::<Value>(&body).and_then(|v| match v {
        Value::Object(_) => serde_json::from_value::<FaultSpec>(v),
        _ => Err(serde::de::Error::custom("expected a JSON object")),
    });
    let spec = match spec {
        Ok(s) => s,
        Err(e) => {
            return control_error(StatusCode::BAD_REQUEST, format!("invalid fault spec: {e}"));
        }
    };
    if let Err(reason) = spec.validate() {
        return control_error(
            StatusCode::BAD_REQUEST,
            format!("invalid fault spec: {reason}"),
        );
    }
    state.faults.set(spec);
    tracing::info!(?spec, "fault window set");
    axum::Json(faults_body(&state)).into_response()
}

async fn clear_faults(Extract(state): Extract<Arc<State>>) -> Response {
    state.faults.clear();
    tracing::info!("fault window cleared");
    axum::Json(faults_body(&state)).into_response()
}

/// Alive; `open_streams` lets tests await "every generator has stopped".
async fn healthz(Extract(state): Extract<Arc<State>>) -> Response {
    let open = state.open.load(Ordering::Relaxed);
    axum::Json(json!({"status": "ok", "open_streams": open})).into_response()
}

async fn ledger(Extract(state): Extract<Arc<State>>) -> Response {
    axum::Json(state.ledger.snapshot()).into_response()
}

async fn reset_ledger(Extract(state): Extract<Arc<State>>) -> Response {
    state.ledger.reset();
    axum::Json(state.ledger.snapshot()).into_response()
}
