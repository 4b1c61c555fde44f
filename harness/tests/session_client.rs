//! The session engine against a deliberately misbehaving protocol-v1 server.
//!
//! The server is a small axum app written here, not the reference runtime: each test picks a
//! [`Script`] (cut the stream, skip or repeat ids, lie about the digest, send a line that
//! never ends, stall, forget the session, refuse a resume, shed load on create) and checks
//! how [`run_session`] classifies and measures it. Timeouts are tens of milliseconds so the
//! whole file runs in a few seconds; the server never sleeps except where the behaviour under
//! test *is* time (keepalives spaced out), and stalls end when the client goes away.

use std::io;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use dropzero::session::{
    ClientConfig, DropReason, HttpRequest, InterruptReason, NotStartedReason, Observer,
    RequestKind, ResumePolicy, RetryHint, SessionClass, SessionOutcome, SessionSpec,
    redirect_policy, run_session,
};
use dropzero_sse::{Limits, SseError};
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

const SESSION_ID: &str = "s_test";
const RESUME_TOKEN: &str = "rt_test";
/// Token events in the scripted session (seqs 2..=9; 10 is usage, 11 is done).
const TOKENS: u64 = 8;
const LAST_SEQ: u64 = TOKENS + 3;
/// Where the first stream is cut in the scripts that cut it.
const CUT_AT: u64 = 5;
const IDLE: Duration = Duration::from_millis(200);
const MAX_LINE: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Script {
    WellBehaved,
    /// The first stream dies with a transport error after seq [`CUT_AT`].
    CutOnce,
    SkipIds,
    RepeatIds,
    WrongDigest,
    /// A few events, then a `data:` line that never ends, on every stream.
    EndlessLine,
    /// The first stream goes silent after seq [`CUT_AT`] until the client leaves.
    StallOnce,
    /// Every stream goes silent after seq [`CUT_AT`].
    StallForever,
    /// The first stream ends after [`CUT_AT`]; the resume gets `404`.
    Gone404,
    /// The first stream ends after [`CUT_AT`]; the resume gets `409`.
    Refused409,
    /// Create answers `503` with `Retry-After: 0` twice, then `201`.
    Busy503Twice,
    /// After seq 1 only keepalive comments for longer than the idle timeout, then the rest.
    KeepalivesOnly,
}

struct Server {
    script: Script,
    /// The `Idempotency-Key` of every create request, in order.
    create_keys: Mutex<Vec<Option<String>>>,
    /// The `Last-Event-ID` of every stream request, in order.
    stream_after: Mutex<Vec<Option<u64>>>,
    /// Events the client has received so far (published by [`Recorder`]), so the server can
    /// cut a stream only after the client surely read what came before the cut: a transport
    /// error makes hyper discard bytes it has not flushed yet.
    client_events: watch::Sender<u64>,
}

type Chunk = Result<Bytes, io::Error>;

fn texts() -> Vec<String> {
    (0..TOKENS).map(|i| format!(" w{i}")).collect()
}

/// The session's true event list: `(seq, type, data)`.
fn events(digest_override: Option<&str>) -> Vec<(u64, &'static str, String)> {
    let texts = texts();
    let mut evs = vec![(
        1,
        "session",
        json!({"session_id": SESSION_ID, "replica_id": "r1", "created_at": "2025-01-01T00:00:00Z"})
            .to_string(),
    )];
    for (i, text) in texts.iter().enumerate() {
        evs.push((
            i as u64 + 2,
            "token",
            json!({"step": "s1", "text": text}).to_string(),
        ));
    }
    let usage = json!({"input_tokens": 5, "output_tokens": TOKENS, "cost_usd": 0.001});
    evs.push((TOKENS + 2, "usage", usage.to_string()));
    let digest = hex::encode(Sha256::digest(texts.concat().as_bytes()));
    let done = json!({"status": "completed", "usage": usage, "last_seq": LAST_SEQ,
        "content_sha256": digest_override.unwrap_or(&digest)});
    evs.push((LAST_SEQ, "done", done.to_string()));
    evs
}

fn frame(seq: u64, ty: &str, data: &str) -> Chunk {
    Ok(Bytes::from(format!(
        "id: {seq}\nevent: {ty}\ndata: {data}\n\n"
    )))
}

async fn create(State(srv): State<Arc<Server>>, headers: HeaderMap) -> Response {
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let n = {
        let mut keys = srv.create_keys.lock().expect("lock");
        keys.push(key);
        keys.len()
    };
    if srv.script == Script::Busy503Twice && n <= 2 {
        let body = json!({"error": {"type": "overloaded", "message": "busy"}});
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "0")],
            Json(body),
        )
            .into_response();
    }
    let body = json!({"session_id": SESSION_ID, "resume_token": RESUME_TOKEN,
        "events_url": format!("/v1/sessions/{SESSION_ID}/events")});
    (StatusCode::CREATED, Json(body)).into_response()
}

async fn stream(State(srv): State<Arc<Server>>, headers: HeaderMap) -> Response {
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if auth != Some(&format!("Bearer {RESUME_TOKEN}")) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let after = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let attempt = {
        let mut seen = srv.stream_after.lock().expect("lock");
        seen.push(after);
        seen.len() - 1
    };
    match (srv.script, attempt) {
        (Script::Gone404, 1..) => return StatusCode::NOT_FOUND.into_response(),
        (Script::Refused409, 1..) => return StatusCode::CONFLICT.into_response(),
        _ => {}
    }
    let (tx, rx) = mpsc::channel::<Chunk>(4);
    let seen = srv.client_events.subscribe();
    tokio::spawn(write_script(
        srv.script,
        attempt,
        after.unwrap_or(0),
        tx,
        seen,
    ));
    let body = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    (
        [(header::CONTENT_TYPE, "text/event-stream")],
        Body::from_stream(body),
    )
        .into_response()
}

/// Write one stream's bytes as the script says; returns early once the client is gone.
async fn write_script(
    script: Script,
    attempt: usize,
    after: u64,
    tx: mpsc::Sender<Chunk>,
    mut client_events: watch::Receiver<u64>,
) {
    let send = |chunk: Chunk| {
        let tx = tx.clone();
        async move { tx.send(chunk).await.map_err(|_| ()) }
    };
    let first = attempt == 0;
    let digest = (script == Script::WrongDigest).then_some("0".repeat(64));
    let evs = events(digest.as_deref());
    let _: Result<(), ()> = async {
        send(Ok(Bytes::from_static(b"retry: 10\n\n"))).await?;
        for (seq, ty, data) in evs.iter().filter(|e| e.0 > after) {
            let seq = *seq;
            match script {
                Script::SkipIds if seq == 4 || seq == 5 => continue,
                Script::EndlessLine if seq > 3 => {
                    send(Ok(Bytes::from_static(b"data: "))).await?;
                    loop {
                        send(Ok(Bytes::from(vec![b'x'; 512]))).await?;
                    }
                }
                Script::KeepalivesOnly if first && seq == 2 => {
                    for _ in 0..10 {
                        tokio::time::sleep(IDLE / 5).await;
                        send(Ok(Bytes::from_static(b": keepalive\n\n"))).await?;
                    }
                }
                _ => {}
            }
            let cut = seq > CUT_AT;
            match script {
                Script::CutOnce if first && cut => {
                    let _ = client_events.wait_for(|n| *n >= CUT_AT).await;
                    return send(Err(io::Error::other("replica crashed"))).await;
                }
                Script::Gone404 | Script::Refused409 if first && cut => return Ok(()),
                Script::StallOnce | Script::StallForever
                    if (first || script == Script::StallForever) && cut =>
                {
                    tx.closed().await;
                    return Ok(());
                }
                _ => {}
            }
            send(frame(seq, ty, data)).await?;
            if script == Script::RepeatIds && (seq == 3 || seq == 6) {
                send(frame(seq, ty, data)).await?;
            }
        }
        Ok(())
    }
    .await;
}

async fn start(script: Script) -> (String, Arc<Server>) {
    let srv = Arc::new(Server {
        script,
        create_keys: Mutex::default(),
        stream_after: Mutex::default(),
        client_events: watch::Sender::new(0),
    });
    let app = Router::new()
        .route("/v1/sessions", post(create))
        .route("/v1/sessions/{id}/events", get(stream))
        .with_state(srv.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/"), srv)
}

/// Records every measurement; can cancel the harness token after `cancel_after` events.
#[derive(Default)]
struct Recorder {
    created: u32,
    ttft: Vec<(Duration, Duration)>,
    itl: Vec<Duration>,
    resume: Vec<Duration>,
    tokens: u64,
    interruptions: Vec<InterruptReason>,
    events: u64,
    cancel_after: Option<(u64, CancellationToken)>,
    server: Option<Arc<Server>>,
    requests: Vec<HttpRequest>,
}

impl Observer for Recorder {
    fn on_request(&mut self, request: &HttpRequest) {
        self.requests.push(request.clone());
    }
    fn on_created(&mut self, _latency: Duration) {
        self.created += 1;
    }
    fn on_ttft(&mut self, from_intended: Duration, from_sent: Duration) {
        self.ttft.push((from_intended, from_sent));
    }
    fn on_itl(&mut self, gap: Duration) {
        self.itl.push(gap);
    }
    fn on_resume(&mut self, latency: Duration) {
        self.resume.push(latency);
    }
    fn on_token(&mut self, n: u64) {
        self.tokens += n;
    }
    fn on_interruption(&mut self, reason: &InterruptReason) {
        self.interruptions.push(reason.clone());
    }
    fn on_event(&mut self) {
        self.events += 1;
        if let Some(srv) = &self.server {
            srv.client_events.send_replace(self.events);
        }
        if let Some((n, token)) = &self.cancel_after
            && self.events >= *n
        {
            token.cancel();
        }
    }
}

fn config() -> ClientConfig {
    ClientConfig {
        connect_timeout: Duration::from_secs(2),
        idle_timeout: IDLE,
        resume: ResumePolicy {
            max_retries: 3,
            backoff_initial: Duration::from_millis(5),
            backoff_max: Duration::from_millis(20),
            jitter: 0.5,
            retry_hint: RetryHint::Ignore,
        },
        deadline: Duration::from_secs(5),
        limits: Limits {
            max_line: MAX_LINE,
            max_event: 4 * MAX_LINE,
        },
        create_retries: 3,
        create_retry_after_max: Duration::from_millis(50),
        lean_streams: true,
    }
}

struct Run {
    outcome: SessionOutcome,
    rec: Recorder,
    srv: Arc<Server>,
}

async fn run_with(script: Script, cfg: ClientConfig, mut rec: Recorder) -> Run {
    let (base_url, srv) = start(script).await;
    rec.server = Some(srv.clone());
    let cancel = rec
        .cancel_after
        .as_ref()
        .map_or_else(CancellationToken::new, |(_, t)| t.clone());
    let spec = SessionSpec {
        base_url,
        query: "hello [dz tokens=8]".into(),
        budget: Some(json!({"max_output_tokens": 100})),
        api_key: None,
        idempotency_key: "key-1".into(),
        intended_start: Some(Instant::now() - Duration::from_millis(50)),
    };
    let client = reqwest::Client::builder()
        .redirect(redirect_policy())
        .build()
        .expect("client");
    let fut = run_session(&client, &spec, &cfg, &mut rec, &cancel);
    let outcome = tokio::time::timeout(Duration::from_secs(10), fut)
        .await
        .expect("run_session must end on its own");
    Run { outcome, rec, srv }
}

/// Run `script` with the lean stream reader, and again with reqwest reading the streams: both
/// readers must come to the same outcome (the reason's detail text may differ, its kind not).
async fn run(script: Script) -> Run {
    let lean = run_with(script, config(), Recorder::default()).await;
    let cfg = ClientConfig {
        lean_streams: false,
        ..config()
    };
    let general = run_with(script, cfg, Recorder::default()).await;
    let (a, b) = (&lean.outcome, &general.outcome);
    let summary = |o: &SessionOutcome| {
        let reasons: Vec<&str> = o.interruptions.iter().map(|i| i.reason.label()).collect();
        (
            o.class.label(),
            o.events_received,
            o.lost,
            o.duplicated,
            o.content_mismatch,
            o.tokens_received,
            o.interruption_count,
            reasons,
        )
    };
    assert_eq!(summary(a), summary(b), "{script:?}: lean vs reqwest reader");
    lean
}

fn stream_requests(srv: &Server) -> Vec<Option<u64>> {
    srv.stream_after.lock().expect("lock").clone()
}

#[tokio::test]
async fn well_behaved_session_completes_without_loss() {
    let Run { outcome, rec, srv } = run(Script::WellBehaved).await;
    assert_eq!(outcome.class, SessionClass::Completed);
    assert_eq!(outcome.session_id.as_deref(), Some(SESSION_ID));
    assert!(!outcome.has_data_loss(), "{outcome:?}");
    assert_eq!(outcome.interruption_count, 0);
    assert_eq!(outcome.events_received, LAST_SEQ);
    assert_eq!(outcome.tokens_received, TOKENS);
    assert_eq!(outcome.output_tokens, Some(TOKENS));
    assert_eq!(outcome.replicas, ["r1"]);
    assert_eq!((rec.created, rec.tokens, rec.events), (1, TOKENS, LAST_SEQ));
    assert_eq!(rec.itl.len() as u64, TOKENS - 1);
    // TTFT from the intended start includes the 50 ms the schedule was behind.
    let [(from_intended, from_sent)] = rec.ttft[..] else {
        panic!("one TTFT expected, got {:?}", rec.ttft)
    };
    assert!(from_intended >= from_sent + Duration::from_millis(50));
    assert!(outcome.timings.start_lag >= Duration::from_millis(50));
    assert_eq!(stream_requests(&srv), [None]);
}

#[tokio::test]
async fn cut_stream_resumes_from_last_event_id() {
    let Run { outcome, rec, srv } = run(Script::CutOnce).await;
    assert_eq!(outcome.class, SessionClass::Resumed, "{outcome:?}");
    assert!(!outcome.has_data_loss(), "{outcome:?}");
    assert_eq!(stream_requests(&srv), [None, Some(CUT_AT)]);
    assert_eq!(outcome.interruption_count, 1);
    let cut = &outcome.interruptions[0];
    assert!(matches!(cut.reason, InterruptReason::Reset(_)), "{cut:?}");
    assert_eq!((cut.at_seq, cut.replica.as_deref()), (CUT_AT, Some("r1")));
    assert_eq!(rec.resume.len(), 1);
    assert!(outcome.timings.longest_resume.is_some());
    // Tokens arrived on two streams; the gap between them is resume latency, not ITL.
    assert_eq!(rec.itl.len() as u64, TOKENS - 2);
    assert_eq!(outcome.tokens_received, TOKENS);
}

#[tokio::test]
async fn skipped_ids_are_lost_events() {
    let Run { outcome, .. } = run(Script::SkipIds).await;
    assert_eq!(outcome.class, SessionClass::Completed);
    assert_eq!(outcome.lost, 2);
    assert!(outcome.content_mismatch, "skipped tokens change the digest");
    assert!(outcome.has_data_loss());
}

#[tokio::test]
async fn repeated_ids_are_duplicates() {
    let Run { outcome, rec, .. } = run(Script::RepeatIds).await;
    assert_eq!(outcome.class, SessionClass::Completed);
    assert_eq!((outcome.duplicated, outcome.lost), (2, 0));
    assert!(
        !outcome.content_mismatch,
        "a repeated token is not hashed twice"
    );
    assert_eq!(outcome.events_received, LAST_SEQ + 2);
    assert_eq!(rec.tokens, TOKENS);
}

#[tokio::test]
async fn wrong_digest_is_a_content_mismatch() {
    let Run { outcome, .. } = run(Script::WrongDigest).await;
    assert_eq!(outcome.class, SessionClass::Completed);
    assert_eq!((outcome.lost, outcome.duplicated), (0, 0));
    assert!(outcome.content_mismatch);
}

#[tokio::test]
async fn endless_line_is_an_sse_error_and_drops_after_retries() {
    let Run { outcome, srv, .. } = run(Script::EndlessLine).await;
    assert_eq!(
        outcome.class,
        SessionClass::Dropped(DropReason::RetriesExhausted)
    );
    let max_retries = config().resume.max_retries;
    assert_eq!(outcome.interruption_count, max_retries + 1);
    for i in &outcome.interruptions {
        let too_long = InterruptReason::Sse(SseError::LineTooLong { limit: MAX_LINE });
        assert_eq!(i.reason, too_long);
    }
    assert_eq!(outcome.interruptions[0].reason.label(), "sse_error");
    let mut expected = vec![None];
    expected.extend((0..max_retries).map(|_| Some(3)));
    assert_eq!(stream_requests(&srv), expected);
}

#[tokio::test]
async fn stalled_stream_times_out_and_resumes() {
    let Run { outcome, rec, srv } = run(Script::StallOnce).await;
    assert_eq!(outcome.class, SessionClass::Resumed, "{outcome:?}");
    assert!(!outcome.has_data_loss());
    assert_eq!(rec.interruptions, [InterruptReason::IdleTimeout]);
    assert_eq!(stream_requests(&srv), [None, Some(CUT_AT)]);
    assert_eq!(rec.resume.len(), 1);
    assert_eq!(rec.itl.len() as u64, TOKENS - 2);
}

#[tokio::test]
async fn keepalives_reset_the_idle_timer() {
    let Run { outcome, rec, .. } = run(Script::KeepalivesOnly).await;
    assert_eq!(outcome.class, SessionClass::Completed, "{outcome:?}");
    assert_eq!(outcome.interruption_count, 0);
    assert!(rec.interruptions.is_empty());
    // The stream was silent (but for keepalives) for twice the idle timeout.
    assert!(outcome.timings.total >= IDLE * 2);
}

#[tokio::test]
async fn resume_answered_404_drops_as_session_unknown() {
    let Run { outcome, rec, .. } = run(Script::Gone404).await;
    assert_eq!(
        outcome.class,
        SessionClass::Dropped(DropReason::SessionUnknown)
    );
    assert_eq!(rec.interruptions, [InterruptReason::Eof]);
    assert!(rec.resume.is_empty());
}

#[tokio::test]
async fn resume_answered_409_drops_as_resume_refused() {
    let Run { outcome, .. } = run(Script::Refused409).await;
    assert_eq!(
        outcome.class,
        SessionClass::Dropped(DropReason::ResumeRefused)
    );
    assert_eq!(outcome.interruption_count, 1);
    assert_eq!(outcome.class.label(), "dropped");
}

#[tokio::test]
async fn create_retries_503_with_the_same_idempotency_key() {
    let Run { outcome, rec, srv } = run(Script::Busy503Twice).await;
    assert_eq!(outcome.class, SessionClass::Completed);
    let keys = srv.create_keys.lock().expect("lock").clone();
    assert_eq!(keys, vec![Some("key-1".to_string()); 3]);
    assert_eq!(rec.created, 1);
    // Every attempt is a request of its own (what goose counts for closed users).
    let seen: Vec<_> = rec
        .requests
        .iter()
        .map(|r| (r.kind, r.status, r.failure))
        .collect();
    assert_eq!(
        seen,
        [
            (RequestKind::Create, Some(503), Some("refused")),
            (RequestKind::Create, Some(503), Some("refused")),
            (RequestKind::Create, Some(201), None),
            (RequestKind::StreamOpen, Some(200), None),
        ]
    );
}

#[tokio::test]
async fn a_resumed_stream_is_its_own_request() {
    let Run { rec, .. } = run(Script::CutOnce).await;
    let kinds: Vec<_> = rec.requests.iter().map(|r| (r.kind, r.status)).collect();
    assert_eq!(
        kinds,
        [
            (RequestKind::Create, Some(201)),
            (RequestKind::StreamOpen, Some(200)),
            (RequestKind::Resume, Some(200)),
        ]
    );
    assert!(rec.requests.iter().all(|r| r.failure.is_none()));
}

#[tokio::test]
async fn deadline_drops_a_session_that_never_finishes() {
    let mut cfg = config();
    cfg.deadline = IDLE * 3;
    cfg.resume.max_retries = 100;
    let Run { outcome, .. } = run_with(Script::StallForever, cfg, Recorder::default()).await;
    assert_eq!(outcome.class, SessionClass::Dropped(DropReason::Deadline));
    assert!(outcome.interruption_count >= 1);
}

#[tokio::test]
async fn harness_cancellation_is_not_a_drop() {
    let rec = Recorder {
        cancel_after: Some((3, CancellationToken::new())),
        ..Recorder::default()
    };
    let Run { outcome, .. } = run_with(Script::StallForever, config(), rec).await;
    assert_eq!(outcome.class, SessionClass::CancelledByHarness);
    assert_eq!(outcome.interruption_count, 0);
}

#[tokio::test]
async fn create_refused_for_good_is_not_started() {
    let (base_url, srv) = start(Script::WellBehaved).await;
    let spec = SessionSpec {
        // Nothing serves this path prefix: the create is a 404, which retrying cannot fix.
        base_url: format!("{base_url}nowhere"),
        query: "q".into(),
        budget: None,
        api_key: Some("k".into()),
        idempotency_key: "key-2".into(),
        intended_start: None,
    };
    let mut rec = Recorder::default();
    let client = reqwest::Client::builder()
        .redirect(redirect_policy())
        .build()
        .expect("client");
    let cancel = CancellationToken::new();
    let outcome = run_session(&client, &spec, &config(), &mut rec, &cancel).await;
    assert_eq!(
        outcome.class,
        SessionClass::NotStarted(NotStartedReason::HttpStatus(404))
    );
    assert_eq!(outcome.class.label(), "not_started");
    assert_eq!(outcome.session_id, None);
    assert_eq!(rec.created, 0);
    assert!(srv.create_keys.lock().expect("lock").is_empty());
}
