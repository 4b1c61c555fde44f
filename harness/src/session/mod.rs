//! The session engine: run one session of protocol v1 (`docs/protocol.md` §1) end to end,
//! verify every event, classify the outcome as MISSION.md defines it, and report latencies.
//!
//! Both load models (closed users and the open-model scheduler) call
//! [`run_session`]; they decide *when* a session starts, this module decides nothing about
//! load. Measurements go to an [`Observer`] as they happen (the collector records them into
//! HdrHistograms); the returned [`SessionOutcome`] carries counts and a few durations, never
//! a list of samples.
//!
//! # Layout
//! - `client`: the HTTP side — stream, idle timeout, resume with backoff, classification.
//! - `eventsource`: what a browser's `EventSource` accepts as a stream and could resume
//!   (WHATWG HTML §9.2): status, `Content-Type`, redirects, the last event ID string. Pure.
//! - `create`: `POST /v1/sessions` with bounded retries under one idempotency key.
//! - `open`: one stream request, through `dropzero_wire` (a lean HTTP/1.1 reader in the session's own
//!   task, for `http://`) or reqwest (`https://`, proxies, redirects).
//! - `verify`: the pure per-session verifier (contiguous seqs, duplicates, digest).
//! - `outcome`: the outcome, its class and the reason vocabulary.
//!
//! Architecture invariant: memory per session is bounded whatever the target sends — the
//! SSE parser has [`Limits`], bodies are read chunk by chunk and never buffered whole, and
//! stored interruptions and replica ids are capped.

mod client;
mod create;
mod eventsource;
mod open;
mod outcome;
mod verify;
#[cfg(test)]
mod verify_props;

use std::time::{Duration, Instant};

pub use client::run_session;
pub use dropzero_scenario::RetryHint;
use dropzero_sse::Limits;
pub use eventsource::{MAX_REDIRECTS, redirect_policy};
pub use outcome::{
    DropReason, InterruptReason, Interruption, MAX_RETRY_HINT, MAX_STORED_INTERRUPTIONS,
    MAX_STORED_REPLICAS, NotStartedReason, SessionClass, SessionOutcome, Timings,
};
pub use verify::{DoneStatus, EventKind, Verdict, Verifier};

/// What to run: one session against one target.
#[derive(Debug, Clone)]
pub struct SessionSpec {
    /// The target's base URL, e.g. `http://127.0.0.1:8080` (a path prefix is kept).
    pub base_url: String,
    pub query: String,
    /// Sent as the request's `budget` object when present.
    pub budget: Option<serde_json::Value>,
    /// Sent as `x-api-key` when present.
    pub api_key: Option<String>,
    /// Sent as `Idempotency-Key` on every create attempt, so a retried create cannot start
    /// a second session.
    pub idempotency_key: String,
    /// When the load model scheduled this session. TTFT is measured from here as well as
    /// from the actual send, so a slow target cannot hide its latency by delaying our sends
    /// (coordinated omission).
    pub intended_start: Option<Instant>,
}

/// How to reconnect after an interrupted stream.
#[derive(Debug, Clone, Copy)]
pub struct ResumePolicy {
    /// Consecutive failed stream attempts allowed (a stream that delivers a new event
    /// resets the count); one more failure drops the session as `retries_exhausted`.
    pub max_retries: u32,
    pub backoff_initial: Duration,
    /// Cap of the exponential backoff.
    pub backoff_max: Duration,
    /// Fraction in `0.0..=1.0` of each delay that is randomised away (full jitter at 1.0),
    /// so a fleet of clients cut at once does not reconnect in lockstep.
    pub jitter: f64,
    /// What the server's `retry:` hint does to the wait.
    pub retry_hint: RetryHint,
}

impl ResumePolicy {
    /// The wait before the `n`-th retry (0-based): `backoff_initial × 2ⁿ`, capped at
    /// `backoff_max`, then shortened by a random part of up to `jitter` of itself.
    pub fn backoff(&self, n: u32) -> Duration {
        let factor = 1u32.checked_shl(n.min(31)).unwrap_or(u32::MAX);
        let capped = self
            .backoff_initial
            .saturating_mul(factor)
            .min(self.backoff_max);
        let jitter = self.jitter.clamp(0.0, 1.0);
        if jitter == 0.0 {
            return capped;
        }
        capped.mul_f64(1.0 - jitter * rand::random::<f64>())
    }

    /// The wait before the `n`-th retry given the server's last `retry:` hint.
    pub fn wait(&self, n: u32, hint: Option<Duration>) -> Duration {
        let backoff = self.backoff(n);
        match (self.retry_hint, hint) {
            (RetryHint::Floor, Some(hint)) => backoff.max(hint),
            _ => backoff,
        }
    }
}

impl Default for ResumePolicy {
    fn default() -> Self {
        ResumePolicy {
            max_retries: 10,
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
            jitter: 0.2,
            retry_hint: RetryHint::Ignore,
        }
    }
}

/// How the client behaves; the same for every session of a run.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Request sent → response headers received, for create and every stream attempt.
    pub connect_timeout: Duration,
    /// Longest silence on an open stream; any bytes (keepalive comments too) reset it.
    pub idle_timeout: Duration,
    pub resume: ResumePolicy,
    /// Longest wall time of a whole session, from the first create attempt.
    pub deadline: Duration,
    /// Bounds for the SSE parser.
    pub limits: Limits,
    /// Create retries after `503`/`429` or a connection failure (not counting the first try).
    pub create_retries: u32,
    /// Cap on a `Retry-After` the target asks for.
    pub create_retry_after_max: Duration,
    /// Read `http://` event streams with the lean HTTP/1.1 reader (`dropzero_wire`) instead of
    /// reqwest (which still reads `https://`, proxied and redirected streams). Off by default:
    /// `calibrate` turns it on; `dropzero run` keeps reqwest until a CI failure of the
    /// `autoscale-ramp` scenario with the lean reader (lost events after a replica went
    /// unhealthy, not reproduced since) is understood.
    pub lean_streams: bool,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            connect_timeout: Duration::from_secs(10),
            // Protocol keepalives come at least every 15 s; four missed ones is a dead stream.
            idle_timeout: Duration::from_secs(60),
            resume: ResumePolicy::default(),
            deadline: Duration::from_secs(15 * 60),
            limits: Limits::default(),
            create_retries: 5,
            create_retry_after_max: Duration::from_secs(30),
            lean_streams: false,
        }
    }
}

/// Which HTTP request of a session an [`HttpRequest`] was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    /// One attempt of `POST /v1/sessions` (a retried create is several).
    Create,
    /// The first `GET …/events` of the session.
    StreamOpen,
    /// A later `GET …/events` (with `Last-Event-ID` when the browser would send one).
    Resume,
}

impl RequestKind {
    pub fn method(self) -> &'static str {
        match self {
            RequestKind::Create => "POST",
            RequestKind::StreamOpen | RequestKind::Resume => "GET",
        }
    }

    /// The name requests of this kind are counted under (goose's request name).
    pub fn name(self) -> &'static str {
        match self {
            RequestKind::Create => "create session",
            RequestKind::StreamOpen => "open stream",
            RequestKind::Resume => "resume stream",
        }
    }
}

/// One HTTP exchange of a session: request sent → status line and headers (the body of a
/// stream is the session's, not the request's), or the failure that stopped it.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpRequest {
    pub kind: RequestKind,
    pub elapsed: Duration,
    /// `None` when no response came (connection failure, timeout).
    pub status: Option<u16>,
    /// Why it did not succeed: a create that was not `2xx`, a stream a browser would not
    /// accept, or no response at all. `None` on success.
    pub failure: Option<&'static str>,
}

/// Receives measurements as they happen. Every method defaults to doing nothing.
pub trait Observer {
    /// An HTTP request of the session got its answer (or failed); see [`HttpRequest`].
    fn on_request(&mut self, _request: &HttpRequest) {}
    /// First create attempt sent → `2xx` received.
    fn on_created(&mut self, _latency: Duration) {}
    /// First token event, from the intended start and from the first create attempt.
    fn on_ttft(&mut self, _from_intended: Duration, _from_sent: Duration) {}
    /// Gap between consecutive token events on the same stream (never across a reconnect).
    fn on_itl(&mut self, _gap: Duration) {}
    /// A token event was accepted at `at`; `data` is its `data` field. For observers that
    /// read what the target put there (`calibrate`'s target stamps its write time).
    fn on_token_data(&mut self, _data: &str, _at: Instant) {}
    /// Interruption detected → first event received after reconnecting.
    fn on_resume(&mut self, _latency: Duration) {}
    /// `n` tokens were delivered (one per token event in protocol v1).
    fn on_token(&mut self, _n: u64) {}
    fn on_interruption(&mut self, _reason: &InterruptReason) {}
    /// Any SSE event was received (duplicates included).
    fn on_event(&mut self) {}
    /// Another replica took the session over (a `session` event with `takeover`); `gap` is
    /// the silence the client saw before it: the last event before → the takeover event.
    fn on_takeover(&mut self, _gap: Duration, _from: Option<&str>) {}
}

/// An observer that records nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoopObserver;

impl Observer for NoopObserver {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_exponential_capped_and_jittered_downwards() {
        let mut p = ResumePolicy {
            max_retries: 5,
            backoff_initial: Duration::from_millis(10),
            backoff_max: Duration::from_millis(70),
            jitter: 0.0,
            retry_hint: RetryHint::Ignore,
        };
        let got: Vec<u128> = (0..6).map(|n| p.backoff(n).as_millis()).collect();
        assert_eq!(got, [10, 20, 40, 70, 70, 70]);
        assert_eq!(p.backoff(u32::MAX), Duration::from_millis(70));
        p.jitter = 0.5;
        for n in 0..50 {
            let d = p.backoff(n % 4);
            let full = Duration::from_millis(10 << (n % 4)).min(p.backoff_max);
            assert!(d <= full && d >= full / 2, "{d:?} vs {full:?}");
        }
    }

    #[test]
    fn the_retry_hint_is_a_floor_only_when_asked() {
        let mut p = ResumePolicy {
            max_retries: 5,
            backoff_initial: Duration::from_millis(10),
            backoff_max: Duration::from_millis(70),
            jitter: 0.0,
            retry_hint: RetryHint::Ignore,
        };
        let ms = Duration::from_millis;
        assert_eq!(p.wait(0, Some(ms(500))), ms(10));
        p.retry_hint = RetryHint::Floor;
        assert_eq!(p.wait(0, Some(ms(500))), ms(500));
        assert_eq!(p.wait(3, Some(ms(5))), ms(70));
        assert_eq!(p.wait(1, None), ms(20));
    }
}
