//! The proxying request handler: picks a healthy target, forwards the request (method, path,
//! query, headers without hop-by-hop ones, body streamed), and answers with the target's
//! status, headers and a [`Relay`] over its body.
//!
//! Errors the router itself produces use the protocol's JSON error shape
//! (`{"error": {"type", "message"}}`) with the statuses an ALB would give: 503 when no target
//! is healthy, 502 when the target cannot be reached or fails before its response headers,
//! 504 when it sends no response headers within the idle timeout.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::{Body, HttpBody as _};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::faults::NetworkFault;
use super::relay::Relay;
use super::targets::{LoadGuard, Registry};

/// What every request handler shares with the [`Router`](super::Router) handle.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) registry: Arc<Registry>,
    pub(crate) client: reqwest::Client,
    pub(crate) idle_timeout: std::time::Duration,
    pub(crate) shutdown: CancellationToken,
    pub(crate) faults: watch::Sender<Option<NetworkFault>>,
    pub(crate) stream_seq: AtomicU64,
    /// ALB `lb_cookie` stickiness (see `RouterConfig::stickiness`).
    pub(crate) stickiness: bool,
}

/// The stickiness cookie's name, as an ALB names its own.
pub(crate) const STICKY_COOKIE: &str = "AWSALB";

/// The target a request's stickiness cookie names, if any.
fn sticky_target(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == STICKY_COOKIE)
        .map(|(_, value)| value.to_string())
}

/// Errors the router answers itself, instead of the target.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ProxyError {
    #[error("no healthy targets")]
    NoHealthyTargets,
    #[error("cannot connect to target {target}")]
    Connect {
        target: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("target {target} failed before sending response headers")]
    Upstream {
        target: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("target {target} sent no response headers within {idle:?} (idle timeout)")]
    Timeout {
        target: String,
        idle: std::time::Duration,
    },
    #[error("router shutting down")]
    ShuttingDown,
}

impl IntoResponse for ProxyError {
    fn into_response(self) -> Response {
        let (status, kind) = match &self {
            Self::NoHealthyTargets => (StatusCode::SERVICE_UNAVAILABLE, "no_healthy_targets"),
            Self::Connect { .. } => (StatusCode::BAD_GATEWAY, "target_connect_failed"),
            Self::Upstream { .. } => (StatusCode::BAD_GATEWAY, "bad_gateway"),
            Self::Timeout { .. } => (StatusCode::GATEWAY_TIMEOUT, "target_timeout"),
            Self::ShuttingDown => (StatusCode::SERVICE_UNAVAILABLE, "router_shutting_down"),
        };
        // The cause chain goes to the log inside the request span; the client gets the
        // top-level message only.
        if status != StatusCode::SERVICE_UNAVAILABLE {
            tracing::warn!(error = ?self, "answering {status}");
        }
        let body = serde_json::json!({"error": {"type": kind, "message": self.to_string()}});
        (status, axum::Json(body)).into_response()
    }
}

/// The router's only route: everything is proxied.
pub(crate) fn app(shared: Arc<Shared>) -> axum::Router {
    axum::Router::new().fallback(proxy).with_state(shared)
}

async fn proxy(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let preferred = if shared.stickiness {
        sticky_target(request.headers())
    } else {
        None
    };
    let Some(guard) = shared.registry.pick_preferring(preferred.as_deref()) else {
        return ProxyError::NoHealthyTargets.into_response();
    };
    let span = tracing::info_span!(
        "proxy",
        target_id = %guard.target().id,
        method = %request.method(),
        path = %request.uri().path(),
    );
    forward(&shared, guard, peer, request, span.clone())
        .instrument(span)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn forward(
    shared: &Shared,
    guard: LoadGuard,
    peer: SocketAddr,
    request: Request,
    span: tracing::Span,
) -> Result<Response, ProxyError> {
    let target = guard.target();
    let (parts, body) = request.into_parts();
    let path = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    let url = format!("http://{}{}", target.addr, path);

    let mut headers = parts.headers;
    strip_hop_by_hop(&mut headers);
    // The client's Host goes on as X-Forwarded-Host; reqwest sets Host for the target.
    if let Some(host) = headers.remove(header::HOST) {
        headers.insert(HeaderName::from_static("x-forwarded-host"), host);
    }
    append_forwarded_for(&mut headers, peer);
    headers.insert(
        HeaderName::from_static("x-forwarded-proto"),
        HeaderValue::from_static("http"),
    );

    let mut upstream = shared
        .client
        .request(parts.method, url)
        .headers(headers.clone());
    // Only requests that carry a body get one, so a GET is not turned into a chunked upload.
    // A client's Content-Length is kept, and hyper sends the streamed body with it.
    if !body.is_end_stream() {
        upstream = upstream.body(reqwest::Body::wrap_stream(body.into_data_stream()));
    }

    // Silence before the response headers counts against the idle timeout too; an ALB
    // answers 504 then.
    let response = tokio::select! {
        _ = shared.shutdown.cancelled() => return Err(ProxyError::ShuttingDown),
        _ = tokio::time::sleep(shared.idle_timeout) => {
            let (target, idle) = (target.id.clone(), shared.idle_timeout);
            return Err(ProxyError::Timeout { target, idle });
        }
        r = upstream.send() => r.map_err(|source| {
            let target = target.id.clone();
            if source.is_connect() {
                ProxyError::Connect { target, source }
            } else {
                ProxyError::Upstream { target, source }
            }
        })?,
    };

    let status = response.status();
    let target_id = target.id.clone();
    let mut headers = response.headers().clone();
    strip_hop_by_hop(&mut headers);
    tracing::debug!(%status, "target answered; relaying body");
    let seq = shared.stream_seq.fetch_add(1, Ordering::Relaxed);
    let relay = Relay::new(
        Box::pin(response.bytes_stream()),
        guard,
        shared.idle_timeout,
        shared.shutdown.clone(),
        shared.faults.subscribe(),
        seq,
    );
    let mut out = Response::new(Body::from_stream(relay.into_stream(span)));
    *out.status_mut() = status;
    *out.headers_mut() = headers;
    if shared.stickiness
        && let Ok(cookie) = HeaderValue::from_str(&format!("{STICKY_COOKIE}={target_id}; Path=/"))
    {
        out.headers_mut().append(header::SET_COOKIE, cookie);
    }
    Ok(out)
}

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1), plus any the
/// `Connection` header names.
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in HOP_BY_HOP.iter().chain(&named) {
        headers.remove(name);
    }
}

fn append_forwarded_for(headers: &mut HeaderMap, peer: SocketAddr) {
    let name = HeaderName::from_static("x-forwarded-for");
    let ip = peer.ip().to_string();
    let value = match headers.get(&name).and_then(|v| v.to_str().ok()) {
        Some(prior) => format!("{prior}, {ip}"),
        None => ip,
    };
    if let Ok(value) = HeaderValue::from_str(&value) {
        headers.insert(name, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn router_strips_hop_by_hop_and_connection_named_headers() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-secret"),
        );
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        strip_hop_by_hop(&mut h);
        let left: Vec<&str> = h.keys().map(HeaderName::as_str).collect();
        assert_eq!(left, ["content-type"]);
    }
}
