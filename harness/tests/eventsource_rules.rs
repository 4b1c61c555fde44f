//! The session client judges a stream as a browser's `EventSource` would (WHATWG HTML §9.2;
//! the rules and where the protocol departs from them are in the module docs of
//! `harness/src/session/eventsource.rs`).
//!
//! A misbehaving server written here serves one route per misbehaviour: each case creates a
//! session whose `events_url` is `/r/<route>` and checks the class [`run_session`] gives it,
//! with a well-behaved route as the control. Streams end cleanly (no transport errors), so no
//! case depends on timing; the one timing assertion is a lower bound (a wait honoured).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use dropzero::session::{
    ClientConfig, DropReason, InterruptReason, NoopObserver, ResumePolicy, RetryHint, SessionClass,
    SessionOutcome, SessionSpec, redirect_policy, run_session,
};
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

const TOKENS: u64 = 4;
/// seq 1 `session`, 2..=5 tokens, 6 `usage`, 7 `done`.
const LAST_SEQ: u64 = TOKENS + 3;
/// Where the routes that end a stream early end the first one (after this seq).
const CUT_AT: u64 = 3;

/// One stream request as the server saw it.
#[derive(Debug, Clone)]
struct Request {
    route: String,
    last_event_id: Option<String>,
    at: Instant,
}

#[derive(Default)]
struct Server {
    requests: Mutex<Vec<Request>>,
}

/// How a route writes `id` fields.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ids {
    Seq,
    /// No `id` field at all.
    Missing,
    /// `id: e<seq>`.
    NonNumeric,
}

/// The session's event stream after `after`, as protocol v1 writes it; `cut` ends it early
/// (cleanly) after that seq, and `tail` is written at the cut.
fn body(prelude: &str, after: u64, ids: Ids, cut: Option<u64>, tail: &str) -> String {
    let texts: Vec<String> = (0..TOKENS).map(|i| format!(" w{i}")).collect();
    let mut evs = vec![(
        "session",
        json!({"session_id": "s_es", "replica_id": "r1", "created_at": "2025-01-01T00:00:00Z"}),
    )];
    evs.extend(
        texts
            .iter()
            .map(|t| ("token", json!({"step": "s1", "text": t}))),
    );
    let usage = json!({"input_tokens": 1, "output_tokens": TOKENS, "cost_usd": 0.0});
    evs.push(("usage", usage.clone()));
    let digest = hex::encode(Sha256::digest(texts.concat().as_bytes()));
    evs.push((
        "done",
        json!({"status": "completed", "usage": usage, "last_seq": LAST_SEQ, "content_sha256": digest}),
    ));
    let mut out = prelude.to_string();
    for (i, (ty, data)) in evs.iter().enumerate() {
        let seq = i as u64 + 1;
        if seq <= after {
            continue;
        }
        if cut.is_some_and(|c| seq > c) {
            out.push_str(tail);
            break;
        }
        match ids {
            Ids::Seq => out.push_str(&format!("id: {seq}\n")),
            Ids::NonNumeric => out.push_str(&format!("id: e{seq}\n")),
            Ids::Missing => {}
        }
        out.push_str(&format!("event: {ty}\ndata: {data}\n\n"));
    }
    out
}

fn respond(status: u16, content_type: Option<&str>, body: String) -> Response {
    let mut b = Response::builder().status(status);
    if let Some(ct) = content_type {
        b = b.header(header::CONTENT_TYPE, ct);
    }
    b.body(Body::from(body))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

fn redirect(to: &str) -> Response {
    (
        StatusCode::TEMPORARY_REDIRECT,
        [(header::LOCATION, to.to_string())],
    )
        .into_response()
}

const ES: Option<&str> = Some("text/event-stream");
const PRELUDE: &str = "retry: 10\n\n";

async fn stream(
    State(srv): State<Arc<Server>>,
    Path(route): Path<String>,
    headers: HeaderMap,
) -> Response {
    let last_event_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let after = last_event_id
        .as_deref()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let attempt = {
        let mut requests = srv.requests.lock().expect("lock");
        let attempt = requests.iter().filter(|r| r.route == route).count();
        requests.push(Request {
            route: route.clone(),
            last_event_id,
            at: Instant::now(),
        });
        attempt
    };
    if after > LAST_SEQ {
        // What protocol v1 answers (`invalid_last_event_id`).
        return respond(400, None, String::new());
    }
    let first = attempt == 0;
    let full = |ct: Option<&str>| respond(200, ct, body(PRELUDE, after, Ids::Seq, None, ""));
    // The first stream ends cleanly after CUT_AT (then `tail`); later ones run to the end.
    let cut_once = |prelude: &str, tail: &str| {
        let cut = first.then_some(CUT_AT);
        respond(200, ES, body(prelude, after, Ids::Seq, cut, tail))
    };
    match route.as_str() {
        "ok" => full(ES),
        "ok_params" => full(Some("Text/Event-Stream; charset=utf-8")),
        "json" => full(Some("application/json")),
        "plain" => full(Some("text/plain; charset=utf-8")),
        "untyped" => full(None),
        "no_content" => respond(204, ES, String::new()),
        "created" => respond(201, ES, body(PRELUDE, after, Ids::Seq, None, "")),
        "partial" => respond(206, ES, body(PRELUDE, after, Ids::Seq, None, "")),
        "unauthorized" => respond(401, None, String::new()),
        "busy_once" if first => respond(503, None, String::new()),
        "busy_once" => full(ES),
        "cut" => cut_once(PRELUDE, ""),
        "redirect" => redirect("/r/ok"),
        "redirect_cut" => redirect("/r/cut"),
        "loop" => redirect("/r/loop"),
        "no_ids" => respond(200, ES, body(PRELUDE, 0, Ids::Missing, None, "")),
        "non_numeric" => respond(200, ES, body(PRELUDE, 0, Ids::NonNumeric, None, "")),
        // A block with an empty `id` (and no data) empties the last event ID string.
        "id_reset" => cut_once(PRELUDE, "id\n\n"),
        // An `id`-only block moves the last event ID string without an event.
        "id_ahead" => cut_once(PRELUDE, "id: 99\n\n"),
        "id_behind" => cut_once(PRELUDE, "id: 2\n\n"),
        "hint" => cut_once("retry: 300\n\n", ""),
        "hint_long" => cut_once("retry: 600000\n\n", ""),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

/// Create answers with the route named by the query as the events URL.
async fn create(Json(body): Json<serde_json::Value>) -> Response {
    let route = body["query"].as_str().unwrap_or_default();
    let body = json!({"session_id": "s_es", "resume_token": "rt_es",
        "events_url": format!("/r/{route}")});
    (StatusCode::CREATED, Json(body)).into_response()
}

async fn start() -> (String, Arc<Server>) {
    let srv = Arc::new(Server::default());
    let app = Router::new()
        .route("/v1/sessions", post(create))
        .route("/r/{route}", get(stream))
        .with_state(srv.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), srv)
}

fn config() -> ClientConfig {
    ClientConfig {
        connect_timeout: Duration::from_secs(2),
        idle_timeout: Duration::from_secs(2),
        resume: ResumePolicy {
            max_retries: 3,
            backoff_initial: Duration::from_millis(5),
            backoff_max: Duration::from_millis(20),
            jitter: 0.0,
            retry_hint: RetryHint::Ignore,
        },
        deadline: Duration::from_secs(5),
        lean_streams: true,
        ..ClientConfig::default()
    }
}

struct Run {
    outcome: SessionOutcome,
    requests: Vec<Request>,
}

async fn run_with(route: &str, cfg: &ClientConfig) -> Run {
    let (base_url, srv) = start().await;
    let spec = SessionSpec {
        base_url,
        query: route.to_string(),
        budget: None,
        api_key: None,
        idempotency_key: format!("key-{route}"),
        intended_start: None,
    };
    let client = reqwest::Client::builder()
        .redirect(redirect_policy())
        .build()
        .expect("client");
    let cancel = CancellationToken::new();
    let mut observer = NoopObserver;
    let fut = run_session(&client, &spec, cfg, &mut observer, &cancel);
    let outcome = tokio::time::timeout(Duration::from_secs(10), fut)
        .await
        .expect("run_session must end on its own");
    let requests = srv.requests.lock().expect("lock").clone();
    Run { outcome, requests }
}

/// Run `route` with the default test config and check the class it ends as, with the lean
/// stream reader and with reqwest reading the streams: both must send the same requests
/// (route and `Last-Event-ID`) and end the same way.
async fn check(route: &str, expected: SessionClass) -> Run {
    let run = run_with(route, &config()).await;
    assert_eq!(
        run.outcome.class, expected,
        "route {route}: {:?}",
        run.outcome
    );
    let general = ClientConfig {
        lean_streams: false,
        ..config()
    };
    let other = run_with(route, &general).await;
    let seen = |r: &Run| {
        let requests: Vec<_> = r
            .requests
            .iter()
            .map(|q| (q.route.clone(), q.last_event_id.clone()))
            .collect();
        (r.outcome.class.clone(), r.outcome.events_received, requests)
    };
    assert_eq!(
        seen(&run),
        seen(&other),
        "route {route}: lean vs reqwest reader"
    );
    run
}

fn dropped(reason: DropReason) -> SessionClass {
    SessionClass::Dropped(reason)
}

#[tokio::test]
async fn responses_a_browser_would_not_read_as_a_stream_are_named_drops() {
    let control = check("ok", SessionClass::Completed).await;
    assert!(!control.outcome.has_data_loss());
    assert_eq!(control.outcome.retry_hint, Some(Duration::from_millis(10)));
    check("ok_params", SessionClass::Completed).await;
    for route in ["json", "plain", "untyped"] {
        let run = check(route, dropped(DropReason::NotEventStream)).await;
        // Failing the connection means no reconnection, and no event was read.
        assert_eq!((run.requests.len(), run.outcome.events_received), (1, 0));
    }
    let run = check("no_content", dropped(DropReason::NoContent)).await;
    assert_eq!(run.requests.len(), 1, "204 means stop reconnecting");
    check("created", dropped(DropReason::HttpStatus(201))).await;
    check("partial", dropped(DropReason::HttpStatus(206))).await;
    check("unauthorized", dropped(DropReason::HttpStatus(401))).await;
    assert_eq!(DropReason::NotEventStream.label(), "not_event_stream");
    assert_eq!(DropReason::NoContent.label(), "no_content");
    assert_eq!(DropReason::HttpStatus(201).label(), "http_status");
}

#[tokio::test]
async fn a_retryable_status_is_an_interruption_the_protocol_retries() {
    let run = check("busy_once", SessionClass::Resumed).await;
    let reasons: Vec<_> = run
        .outcome
        .interruptions
        .iter()
        .map(|i| &i.reason)
        .collect();
    assert_eq!(reasons, [&InterruptReason::RetryableStatus(503)]);
    assert_eq!(reasons[0].label(), "retryable_status");
}

#[tokio::test]
async fn redirects_are_followed_and_reconnections_start_from_the_original_url() {
    let run = check("redirect", SessionClass::Completed).await;
    assert!(!run.outcome.has_data_loss());
    let run = check("redirect_cut", SessionClass::Resumed).await;
    let seen: Vec<(&str, Option<&str>)> = run
        .requests
        .iter()
        .map(|r| (r.route.as_str(), r.last_event_id.as_deref()))
        .collect();
    let cursor = CUT_AT.to_string();
    let resumed = Some(cursor.as_str());
    assert_eq!(
        seen,
        [
            ("redirect_cut", None),
            ("cut", None),
            ("redirect_cut", resumed),
            ("cut", resumed)
        ]
    );
    assert!(!run.outcome.has_data_loss());
}

#[tokio::test]
async fn a_redirect_loop_is_a_named_drop_after_fetchs_limit() {
    let run = check("loop", dropped(DropReason::TooManyRedirects)).await;
    // The first request and 20 redirects followed; the 21st is refused.
    assert_eq!(run.requests.len(), 21);
    assert_eq!(DropReason::TooManyRedirects.label(), "too_many_redirects");
}

#[tokio::test]
async fn streams_a_browser_could_not_resume_are_named_drops() {
    let run = check("no_ids", dropped(DropReason::NoEventId)).await;
    assert_eq!(
        run.requests.len(),
        1,
        "no reconnection a browser could not make"
    );
    assert_eq!(run.outcome.events_received, LAST_SEQ);
    check("non_numeric", dropped(DropReason::NonNumericEventId)).await;
    let run = check("id_reset", dropped(DropReason::EventIdReset)).await;
    assert_eq!(run.outcome.events_received, CUT_AT);
    // A browser resumes from the last id it saw, whatever the client verified, and so does the
    // client: beyond the session the protocol refuses it, behind it replays a duplicate.
    let run = check("id_ahead", dropped(DropReason::HttpStatus(400))).await;
    assert_eq!(run.requests[1].last_event_id.as_deref(), Some("99"));
    let run = check("id_behind", SessionClass::Resumed).await;
    assert_eq!(run.requests[1].last_event_id.as_deref(), Some("2"));
    assert_eq!((run.outcome.duplicated, run.outcome.lost), (1, 0));
    // The control: a clean end mid-session resumes from the last id.
    let run = check("cut", SessionClass::Resumed).await;
    let cursor = CUT_AT.to_string();
    assert_eq!(
        run.requests[1].last_event_id.as_deref(),
        Some(cursor.as_str())
    );
    for (reason, label) in [
        (DropReason::NoEventId, "no_event_id"),
        (DropReason::NonNumericEventId, "non_numeric_event_id"),
        (DropReason::EventIdReset, "event_id_reset"),
    ] {
        assert_eq!(reason.label(), label);
    }
}

#[tokio::test]
async fn the_retry_hint_is_recorded_and_honoured_as_a_floor_when_asked() {
    // Ignored (the default): the scenario's backoff decides, the hint is only recorded.
    let run = check("hint_long", SessionClass::Resumed).await;
    assert_eq!(run.outcome.retry_hint, Some(Duration::from_secs(600)));
    // As a floor: a ten-minute hint outlives the session's deadline.
    let mut cfg = config();
    cfg.resume.retry_hint = RetryHint::Floor;
    cfg.deadline = Duration::from_secs(1);
    let run = run_with("hint_long", &cfg).await;
    assert_eq!(
        run.outcome.class,
        dropped(DropReason::Deadline),
        "{:?}",
        run.outcome
    );
    assert_eq!(run.requests.len(), 1);
    // A short hint is waited out, then the session resumes.
    cfg.deadline = Duration::from_secs(5);
    let run = run_with("hint", &cfg).await;
    assert_eq!(
        run.outcome.class,
        SessionClass::Resumed,
        "{:?}",
        run.outcome
    );
    let gap = run.requests[1].at.duration_since(run.requests[0].at);
    assert!(
        gap >= Duration::from_millis(300),
        "reconnected after {gap:?}"
    );
}
