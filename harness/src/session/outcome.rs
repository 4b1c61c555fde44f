//! What one session ended as: its class (per MISSION.md "Words we use"), its interruptions
//! with their reasons, its verification counts and its timings.
//!
//! These are plain values handed from the session engine to whoever runs it (the load
//! models, the collector). They are not a report format: the report crate decides what to
//! serialise. Data loss (lost or duplicated events, a content mismatch) is deliberately kept
//! apart from the class, because a session can both complete and lose events, and MISSION.md
//! counts the loss as worse than a drop.

use std::fmt;
use std::time::Duration;

use dropzero_sse::SseError;

/// At most this many interruptions are kept per session; the total is still counted in
/// [`SessionOutcome::interruption_count`]. A hostile target that cuts every stream must not
/// make a session's outcome grow without bound.
pub const MAX_STORED_INTERRUPTIONS: usize = 16;

/// At most this many distinct replica ids are kept per session.
pub const MAX_STORED_REPLICAS: usize = 8;

/// The longest `retry:` hint kept: a hostile server cannot make a wait overflow a clock.
pub const MAX_RETRY_HINT: Duration = Duration::from_secs(24 * 60 * 60);

/// Longest free-text detail kept in a reason (error messages from the network).
pub(crate) const MAX_DETAIL: usize = 200;

/// How a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionClass {
    /// `done` with status `completed`, never interrupted.
    Completed,
    /// `done` with status `completed` after at least one interruption.
    Resumed,
    /// The client never received the terminal event.
    Dropped(DropReason),
    /// `done` with status `failed`, or a status this client does not know.
    Failed,
    /// `done` with status `cancelled` (the target cancelled it, e.g. a `DELETE`).
    Cancelled,
    /// `done` with status `budget_exceeded`.
    BudgetExceeded,
    /// The harness's cancellation token fired (Ctrl-C, end of run). Not a drop: the target
    /// did nothing wrong.
    CancelledByHarness,
    /// `POST /v1/sessions` never produced a session.
    NotStarted(NotStartedReason),
}

impl SessionClass {
    /// A stable lowercase name for reports and metrics labels.
    pub fn label(&self) -> &'static str {
        match self {
            SessionClass::Completed => "completed",
            SessionClass::Resumed => "resumed",
            SessionClass::Dropped(_) => "dropped",
            SessionClass::Failed => "failed",
            SessionClass::Cancelled => "cancelled",
            SessionClass::BudgetExceeded => "budget_exceeded",
            SessionClass::CancelledByHarness => "cancelled_by_harness",
            SessionClass::NotStarted(_) => "not_started",
        }
    }

    /// Whether the client received the session's terminal `done` event.
    pub fn reached_terminal(&self) -> bool {
        matches!(
            self,
            SessionClass::Completed
                | SessionClass::Resumed
                | SessionClass::Failed
                | SessionClass::Cancelled
                | SessionClass::BudgetExceeded
        )
    }
}

/// Why a started session was dropped. The stream rules behind the reasons are in the module
/// docs of `session::eventsource` (a browser's `EventSource`, WHATWG HTML §9.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// The events endpoint answered `404`: the target forgot the session.
    SessionUnknown,
    /// The events endpoint answered `409`: the target refuses a second stream.
    ResumeRefused,
    /// Too many consecutive stream attempts failed without a new event.
    RetriesExhausted,
    /// The session's wall-time deadline passed.
    Deadline,
    /// `200` whose `Content-Type` is not `text/event-stream` (or none): not a stream.
    NotEventStream,
    /// `204 No Content`: the server's way to tell an `EventSource` to stop reconnecting.
    NoContent,
    /// A status a browser fails the connection on and the protocol gives no meaning
    /// (`201`, `206`, an unfollowed `3xx`, `400`, `401`, ...).
    HttpStatus(u16),
    /// More redirects in a row than fetch follows (a loop).
    TooManyRedirects,
    /// Events arrived but none carried an `id`: a browser would reconnect without
    /// `Last-Event-ID`, from the start.
    NoEventId,
    /// The last `id` the server sent was empty: a browser would reconnect without
    /// `Last-Event-ID`.
    EventIdReset,
    /// The last `id` is not a seq: a browser would resume from something protocol v1 cannot.
    NonNumericEventId,
}

impl DropReason {
    /// A stable lowercase name for reports and metrics labels (no free text).
    pub fn label(self) -> &'static str {
        match self {
            DropReason::SessionUnknown => "session_unknown",
            DropReason::ResumeRefused => "resume_refused",
            DropReason::RetriesExhausted => "retries_exhausted",
            DropReason::Deadline => "deadline",
            DropReason::NotEventStream => "not_event_stream",
            DropReason::NoContent => "no_content",
            DropReason::HttpStatus(_) => "http_status",
            DropReason::TooManyRedirects => "too_many_redirects",
            DropReason::NoEventId => "no_event_id",
            DropReason::EventIdReset => "event_id_reset",
            DropReason::NonNumericEventId => "non_numeric_event_id",
        }
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DropReason::HttpStatus(s) => write!(f, "http_status({s})"),
            other => f.write_str(other.label()),
        }
    }
}

/// Why `POST /v1/sessions` never produced a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotStartedReason {
    /// A status that retrying will not fix (400, 401, 413, 500, ...).
    HttpStatus(u16),
    /// Every attempt was answered `503`/`429` or failed to connect.
    RetriesExhausted,
    /// A `2xx` whose body was not the protocol's JSON.
    InvalidResponse(String),
    /// The session's deadline passed while creating it.
    Deadline,
}

impl NotStartedReason {
    pub fn label(&self) -> &'static str {
        match self {
            NotStartedReason::HttpStatus(_) => "http_status",
            NotStartedReason::RetriesExhausted => "retries_exhausted",
            NotStartedReason::InvalidResponse(_) => "invalid_response",
            NotStartedReason::Deadline => "deadline",
        }
    }
}

impl fmt::Display for NotStartedReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotStartedReason::HttpStatus(s) => write!(f, "http_status({s})"),
            NotStartedReason::InvalidResponse(d) => write!(f, "invalid_response: {d}"),
            other => f.write_str(other.label()),
        }
    }
}

/// Why one stream attempt ended before the session's terminal event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InterruptReason {
    /// The body ended cleanly without `done` (drain hand-off, proxy cut).
    Eof,
    /// The body failed mid-stream (connection reset, broken chunking).
    Reset(String),
    /// No bytes at all (not even a keepalive) for the idle timeout.
    IdleTimeout,
    /// The events endpoint answered `408`, `429` or a `5xx`, which the protocol retries (a
    /// deploy, a load balancer without a healthy target). A browser would give up instead.
    RetryableStatus(u16),
    /// The stream broke the parser's [`dropzero_sse::Limits`].
    Sse(SseError),
    /// No response headers: connection refused, DNS, or the connect timeout.
    Connect(String),
}

impl InterruptReason {
    /// A stable lowercase name for metrics labels (no free text).
    pub fn label(&self) -> &'static str {
        match self {
            InterruptReason::Eof => "eof",
            InterruptReason::Reset(_) => "reset",
            InterruptReason::IdleTimeout => "idle_timeout",
            InterruptReason::RetryableStatus(_) => "retryable_status",
            InterruptReason::Sse(_) => "sse_error",
            InterruptReason::Connect(_) => "connect",
        }
    }
}

impl fmt::Display for InterruptReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InterruptReason::Reset(d) => write!(f, "reset: {d}"),
            InterruptReason::RetryableStatus(s) => write!(f, "retryable_status({s})"),
            InterruptReason::Sse(e) => write!(f, "sse_error({e})"),
            InterruptReason::Connect(d) => write!(f, "connect: {d}"),
            other => f.write_str(other.label()),
        }
    }
}

/// One interrupted stream attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interruption {
    pub reason: InterruptReason,
    /// The last contiguous seq received before it (what `Last-Event-ID` resumes from).
    pub at_seq: u64,
    /// The replica last known to serve the session (from the `session` event), if any.
    pub replica: Option<String>,
    /// When the client noticed it (for attribution to the fault active at the time).
    pub at: std::time::Instant,
}

/// Durations measured for one session. `sent` is when the first `POST` left.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Timings {
    /// Intended (scheduled) start → first `POST` sent; zero without an intended start.
    pub start_lag: Duration,
    /// First `POST` sent → `2xx` received (including create retries).
    pub create: Option<Duration>,
    /// Intended start → first token event (equals `ttft_from_sent` without an intended start).
    pub ttft_from_intended: Option<Duration>,
    /// First `POST` sent → first token event.
    pub ttft_from_sent: Option<Duration>,
    /// The longest resume latency (interruption detected → first event after reconnect).
    pub longest_resume: Option<Duration>,
    /// First `POST` sent → outcome decided.
    pub total: Duration,
}

/// Everything the engine learned about one session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionOutcome {
    /// `None` when the session never started.
    pub session_id: Option<String>,
    pub class: SessionClass,
    /// The first [`MAX_STORED_INTERRUPTIONS`] interruptions, in order.
    pub interruptions: Vec<Interruption>,
    /// Every interruption, including those not stored.
    pub interruption_count: u32,
    /// Every SSE event received, duplicates and malformed ones included.
    pub events_received: u64,
    /// Seqs skipped over (gaps), plus seqs `done.last_seq` claims beyond what arrived.
    pub lost: u64,
    /// Events whose seq was not above the last one accepted (skipped, not verified twice).
    pub duplicated: u64,
    /// Events without a numeric `id` or with `data` that does not match their type.
    pub malformed: u64,
    /// `done.content_sha256` differs from the digest of the token texts received, or
    /// `done.last_seq` is not the `done` event's own seq.
    pub content_mismatch: bool,
    /// Token events accepted (one protocol token each).
    pub tokens_received: u64,
    /// `output_tokens` of the last usage seen (`done.usage`, else the last `usage` event).
    pub output_tokens: Option<u64>,
    /// `input_tokens` of the same usage, when reported.
    pub input_tokens: Option<u64>,
    /// `cost_usd` of the same usage in micro-dollars, when reported (an integer, so the
    /// outcome stays `Eq`).
    pub cost_micro_usd: Option<u64>,
    /// Distinct replica ids from `session` events, first [`MAX_STORED_REPLICAS`].
    pub replicas: Vec<String>,
    /// Times another replica took the session over (takeover `session` events).
    pub takeovers: u32,
    /// The server's last `retry:` hint (a browser's reconnection time), capped at
    /// [`MAX_RETRY_HINT`]; whether reconnections honour it is [`super::RetryHint`].
    pub retry_hint: Option<Duration>,
    pub timings: Timings,
}

impl SessionOutcome {
    /// Lost or duplicated events or a content mismatch: always a failed gate.
    pub fn has_data_loss(&self) -> bool {
        self.lost > 0 || self.duplicated > 0 || self.content_mismatch
    }
}

/// Cut free text (error messages) to [`MAX_DETAIL`] bytes at a char boundary.
pub(crate) fn bounded_detail(text: impl fmt::Display) -> String {
    let mut s = text.to_string();
    if s.len() > MAX_DETAIL {
        let mut end = MAX_DETAIL;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}
