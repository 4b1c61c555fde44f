//! Creating a session: `POST /v1/sessions`, retried on `503`/`429`/`502`/`504` (honouring a capped
//! `Retry-After`) and on connection failures, always under the same `Idempotency-Key` so a
//! retry can never start a second session.
//!
//! It reads the response body with a size cap, because the target is not trusted.

use std::pin::pin;
use std::time::Duration;

use futures::StreamExt;
use reqwest::{StatusCode, header};
use serde::Deserialize;
use tokio::time::timeout;
use tracing::{debug, warn};

use super::client::{Guard, Stop, base_url, describe};
use super::outcome::{NotStartedReason, SessionClass, bounded_detail};
use super::{ClientConfig, HttpRequest, Observer, RequestKind, SessionSpec};

/// A create response larger than this is not the protocol's small JSON object.
const MAX_CREATE_BODY: usize = 64 * 1024;

/// The `201`/`200` body of `POST /v1/sessions`.
#[derive(Deserialize)]
pub(super) struct Created {
    pub(super) session_id: String,
    pub(super) events_url: Option<String>,
    pub(super) resume_token: String,
    /// Cookies the target (or its load balancer, e.g. ALB stickiness) set on the create
    /// response, as a `Cookie` header value; sent back on every stream of this session.
    #[serde(skip)]
    pub(super) cookies: Option<String>,
}

/// `name=value` pairs of every `Set-Cookie` header, joined for a `Cookie` header.
pub(super) fn cookies(headers: &header::HeaderMap) -> Option<String> {
    let pairs: Vec<&str> = headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .map(str::trim)
        .filter(|p| p.contains('='))
        .collect();
    (!pairs.is_empty()).then(|| pairs.join("; "))
}

/// `POST /v1/sessions`, retried on `503`/`429`/`502`/`504` and connection failures.
pub(super) async fn create(
    client: &reqwest::Client,
    spec: &SessionSpec,
    cfg: &ClientConfig,
    guard: &Guard<'_>,
    obs: &mut impl Observer,
) -> Result<Created, SessionClass> {
    let url = format!("{}/v1/sessions", base_url(spec));
    let mut body = serde_json::json!({ "query": spec.query });
    if let Some(budget) = &spec.budget {
        body["budget"] = budget.clone();
    }
    let not_started = |stop| match stop {
        Stop::Cancelled => SessionClass::CancelledByHarness,
        Stop::Deadline => SessionClass::NotStarted(NotStartedReason::Deadline),
    };
    let mut attempt = 0u32;
    loop {
        let mut req = client
            .post(&url)
            .header("Idempotency-Key", &spec.idempotency_key)
            .json(&body);
        if let Some(key) = &spec.api_key {
            req = req.header("x-api-key", key);
        }
        let started = std::time::Instant::now();
        let sent = guard.run(timeout(cfg.connect_timeout, req.send())).await;
        let answered = match &sent {
            Ok(Ok(Ok(resp))) => Some(resp.status()),
            _ => None,
        };
        if !matches!(sent, Err(Stop::Cancelled)) {
            obs.on_request(&HttpRequest {
                kind: RequestKind::Create,
                elapsed: started.elapsed(),
                status: answered.map(|s| s.as_u16()),
                failure: match (&sent, answered) {
                    (_, Some(s)) if s.is_success() => None,
                    (_, Some(_)) => Some("refused"),
                    (Ok(Ok(Err(_))), None) => Some("connect failed"),
                    _ => Some("timed out"),
                },
            });
        }
        let wait = match sent.map_err(not_started)? {
            Ok(Ok(resp)) if resp.status().is_success() => {
                let cookies = cookies(resp.headers());
                let read = timeout(cfg.connect_timeout, read_capped(resp, MAX_CREATE_BODY));
                let body = match guard.run(read).await.map_err(not_started)? {
                    Ok(Ok(body)) => body,
                    Ok(Err(detail)) => return Err(invalid(detail)),
                    Err(_) => return Err(invalid("body timed out".into())),
                };
                let mut created: Created =
                    serde_json::from_slice(&body).map_err(|e| invalid(bounded_detail(e)))?;
                created.cookies = cookies;
                return Ok(created);
            }
            // A load balancer's 502/504 (its target failed or timed out) is as transient as
            // a 503, and the idempotency key makes the retry safe.
            Ok(Ok(resp))
                if matches!(
                    resp.status(),
                    StatusCode::SERVICE_UNAVAILABLE
                        | StatusCode::TOO_MANY_REQUESTS
                        | StatusCode::BAD_GATEWAY
                        | StatusCode::GATEWAY_TIMEOUT
                ) =>
            {
                debug!(status = resp.status().as_u16(), attempt, "create refused");
                retry_after(&resp)
                    .map(|d| d.min(cfg.create_retry_after_max))
                    .unwrap_or_else(|| cfg.resume.backoff(attempt))
            }
            Ok(Ok(resp)) => {
                let status = resp.status().as_u16();
                warn!(status, "create failed");
                return Err(SessionClass::NotStarted(NotStartedReason::HttpStatus(
                    status,
                )));
            }
            Ok(Err(e)) => {
                debug!(error = %describe(&e), attempt, "create failed to connect");
                cfg.resume.backoff(attempt)
            }
            Err(_) => {
                debug!(attempt, "create timed out");
                cfg.resume.backoff(attempt)
            }
        };
        if attempt >= cfg.create_retries {
            warn!(attempts = attempt + 1, "create retries exhausted");
            return Err(SessionClass::NotStarted(NotStartedReason::RetriesExhausted));
        }
        attempt += 1;
        guard
            .run(tokio::time::sleep(wait))
            .await
            .map_err(not_started)?;
    }
}

fn invalid(detail: String) -> SessionClass {
    SessionClass::NotStarted(NotStartedReason::InvalidResponse(detail))
}

/// `Retry-After` in delta-seconds; the HTTP-date form is not used by protocol v1.
fn retry_after(resp: &reqwest::Response) -> Option<Duration> {
    let value = resp.headers().get(header::RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// Read a whole (small) body, refusing one larger than `cap`.
pub(super) async fn read_capped(resp: reqwest::Response, cap: usize) -> Result<Vec<u8>, String> {
    let mut body = pin!(resp.bytes_stream());
    let mut out = Vec::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| describe(&e))?;
        if out.len() + chunk.len() > cap {
            return Err(format!("body larger than {cap} bytes"));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}
