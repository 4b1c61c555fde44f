//! The HTTP side of the session engine: create the session (see `create`), read its event
//! stream, time out silent streams, resume with `Last-Event-ID` after a capped exponential
//! backoff, and classify the end.
//!
//! It does not verify events itself (that is [`Verifier`]'s job) and keeps no samples: every
//! latency goes to the [`Observer`] the moment it is measured.
//!
//! A stream is judged as a browser's `EventSource` would judge it (`eventsource`: the status,
//! the `Content-Type`, redirects), and a reconnection sends the `Last-Event-ID` a browser
//! would (its last event ID string); what a browser would not accept or could not resume ends
//! the session with a named reason instead of passing.
//!
//! The server's `retry:` hint is recorded (the last one, across streams, as a browser keeps its
//! reconnection time) and counts only as far as [`ResumePolicy::retry_hint`] says: by default
//! the scenario's backoff alone decides how clients reconnect, so runs compare across targets.
//!
//! [`ResumePolicy::retry_hint`]: super::ResumePolicy::retry_hint

use std::error::Error;
use std::future::Future;
use std::pin::pin;
use std::time::{Duration, Instant};

use dropzero_sse::{Event, Item, Parser};
use reqwest::{Url, header};
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info, info_span};

use super::create::{Created, create};
use super::eventsource::{Opened, judge_response, resume_check};
use super::open::{OpenError, open};
use super::outcome::{
    DropReason, InterruptReason, Interruption, MAX_RETRY_HINT, MAX_STORED_INTERRUPTIONS,
    SessionClass, SessionOutcome, Timings, bounded_detail,
};
use super::verify::{DoneStatus, EventKind, Verdict, Verifier};
use super::{ClientConfig, HttpRequest, Observer, RequestKind, SessionSpec};

/// Run one session end to end; see the module docs of [`crate::session`].
///
/// Never panics on anything the target sends, and returns once the session reached its
/// terminal event, was dropped, or `cancel` fired (→ [`SessionClass::CancelledByHarness`]).
pub async fn run_session(
    client: &reqwest::Client,
    spec: &SessionSpec,
    cfg: &ClientConfig,
    obs: &mut impl Observer,
    cancel: &CancellationToken,
) -> SessionOutcome {
    let span = info_span!(
        "session",
        session_id = tracing::field::Empty,
        idempotency_key = %spec.idempotency_key
    );
    let sent = Instant::now();
    let session = Session {
        client,
        spec,
        cfg,
        obs,
        guard: Guard {
            cancel,
            deadline: tokio::time::Instant::from_std(sent + cfg.deadline),
        },
        sent,
        verifier: Verifier::new(),
        interruptions: Vec::new(),
        interruption_count: 0,
        events_received: 0,
        interrupted_at: None,
        cookies: None,
        last_event_at: None,
        takeovers: 0,
        serving: None,
        last_event_id: None,
        retry_hint: None,
        timings: Timings::default(),
    };
    session.run().instrument(span).await
}

/// Why the engine stopped waiting for the network.
pub(super) enum Stop {
    Cancelled,
    Deadline,
}

/// Races every wait against the harness's cancellation and the session's deadline.
pub(super) struct Guard<'a> {
    cancel: &'a CancellationToken,
    deadline: tokio::time::Instant,
}

impl Guard<'_> {
    pub(super) async fn run<F: Future>(&self, fut: F) -> Result<F::Output, Stop> {
        tokio::select! {
            biased;
            _ = self.cancel.cancelled() => Err(Stop::Cancelled),
            _ = tokio::time::sleep_until(self.deadline) => Err(Stop::Deadline),
            out = fut => Ok(out),
        }
    }
}

/// How one stream attempt ended.
enum StreamEnd {
    Done(DoneStatus),
    Interrupted(InterruptReason),
    Drop(DropReason),
    Stop(Stop),
}

struct Session<'a, O> {
    client: &'a reqwest::Client,
    spec: &'a SessionSpec,
    cfg: &'a ClientConfig,
    obs: &'a mut O,
    guard: Guard<'a>,
    /// When the first create attempt left: the origin of TTFT "from sent" and the deadline.
    sent: Instant,
    verifier: Verifier,
    interruptions: Vec<Interruption>,
    interruption_count: u32,
    events_received: u64,
    /// Set when a stream is interrupted, cleared by the first event after reconnecting.
    interrupted_at: Option<Instant>,
    timings: Timings,
    /// `Cookie` header for this session's requests (load-balancer stickiness).
    cookies: Option<String>,
    /// When the last event arrived (for the silence before a takeover).
    last_event_at: Option<Instant>,
    takeovers: u32,
    /// The replica serving the current stream (its `x-dropzero-replica` header), which is
    /// what a broken stream is attributed to; not necessarily the one running the agent.
    serving: Option<String>,
    /// A browser's last event ID string (what it would send as `Last-Event-ID`), kept across
    /// streams; each stream's parser starts from it (see `eventsource` on why).
    last_event_id: Option<String>,
    /// The server's last `retry:` hint, kept across streams.
    retry_hint: Option<Duration>,
}

impl<O: Observer> Session<'_, O> {
    async fn run(mut self) -> SessionOutcome {
        if let Some(intended) = self.spec.intended_start {
            self.timings.start_lag = self.sent.saturating_duration_since(intended);
        }
        let created = match create(self.client, self.spec, self.cfg, &self.guard, self.obs).await {
            Ok(created) => created,
            Err(class) => return self.finish(None, class),
        };
        let latency = self.sent.elapsed();
        self.timings.create = Some(latency);
        self.obs.on_created(latency);
        tracing::Span::current().record("session_id", created.session_id.as_str());
        debug!(?latency, "session created");

        self.cookies = created.cookies.clone();
        let url = self.events_url(&created);
        let lean = Url::parse(&url)
            .ok()
            .filter(|u| self.cfg.lean_streams && dropzero_wire::usable(u));
        let policy = self.cfg.resume;
        let mut failures = 0u32;
        let class = loop {
            let before = self.verifier.last_seq();
            let reason = match self
                .stream_once(&url, lean.as_ref(), &created.resume_token)
                .await
            {
                StreamEnd::Done(status) => break self.classify(status),
                StreamEnd::Drop(reason) => break SessionClass::Dropped(reason),
                StreamEnd::Stop(stop) => break stop_class(stop),
                StreamEnd::Interrupted(reason) => reason,
            };
            // Retries count consecutive attempts that brought nothing new, so a long session
            // that survives many deploys is not dropped for having been cut often.
            if self.verifier.last_seq() > before {
                failures = 0;
            }
            self.interrupted(reason);
            // A browser resumes from its last event ID string: where it could not, neither do we.
            if let Some(reason) = resume_check(self.last_event_id.as_deref(), self.events_received)
            {
                break SessionClass::Dropped(reason);
            }
            failures += 1;
            if failures > policy.max_retries {
                break SessionClass::Dropped(DropReason::RetriesExhausted);
            }
            let wait = policy.wait(failures - 1, self.retry_hint);
            if let Err(stop) = self.guard.run(tokio::time::sleep(wait)).await {
                break stop_class(stop);
            }
        };
        self.finish(Some(created.session_id), class)
    }

    /// One `GET …/events` attempt, read until `done`, an interruption, or a stop. Redirects
    /// are followed as fetch does (see `eventsource::redirect_policy` and `open`); `url` stays
    /// the original, which is where every reconnection goes. `lean` is `url` parsed when the
    /// lean reader may read it.
    async fn stream_once(
        &mut self,
        url: &str,
        lean: Option<&Url>,
        resume_token: &str,
    ) -> StreamEnd {
        let auth = format!("Bearer {resume_token}");
        let mut headers = vec![
            ("authorization", auth.as_str()),
            ("accept", "text/event-stream"),
        ];
        // What a browser sends (WHATWG §9.2.3 "reestablish the connection"): the last event ID
        // string, if not empty. `resume_check` has made sure it is a number; for a target that
        // numbers every event it is the verifier's last seq.
        let last = self.last_event_id.clone().filter(|id| !id.is_empty());
        if let Some(id) = &last {
            headers.push(("last-event-id", id));
        }
        if let Some(key) = &self.spec.api_key {
            headers.push(("x-api-key", key));
        }
        if let Some(cookies) = &self.cookies {
            headers.push(("cookie", cookies));
        }
        let kind = if self.interruption_count == 0 {
            RequestKind::StreamOpen
        } else {
            RequestKind::Resume
        };
        let started = Instant::now();
        let opening = open(self.client, url, lean, &headers);
        let sent = self
            .guard
            .run(timeout(self.cfg.connect_timeout, opening))
            .await;
        drop(headers);
        let judged = match &sent {
            Ok(Ok(Ok(resp))) => Some((
                resp.status.as_u16(),
                judge_response(resp.status, &resp.headers),
            )),
            _ => None,
        };
        let failure = match (&sent, &judged) {
            (_, Some((_, Opened::Stream))) => None,
            (_, Some((_, Opened::Retry(_)))) => Some("refused (retried)"),
            (_, Some((_, Opened::Fail(_)))) => Some("not accepted"),
            (Ok(Ok(Err(OpenError::Redirects(_)))), None) => Some("too many redirects"),
            (Ok(Ok(Err(OpenError::Failed(_)))), None) => Some("connect failed"),
            _ => Some("timed out"),
        };
        if !matches!(sent, Err(Stop::Cancelled)) {
            self.obs.on_request(&HttpRequest {
                kind,
                elapsed: started.elapsed(),
                status: judged.as_ref().map(|(status, _)| *status),
                failure,
            });
        }
        let mut resp = match sent {
            Err(stop) => return StreamEnd::Stop(stop),
            Ok(Err(_)) => return interrupted(InterruptReason::Connect("timeout".into())),
            Ok(Ok(Err(OpenError::Redirects(e)))) => {
                debug!(error = %e, "redirect limit");
                return StreamEnd::Drop(DropReason::TooManyRedirects);
            }
            Ok(Ok(Err(OpenError::Failed(e)))) => return interrupted(InterruptReason::Connect(e)),
            Ok(Ok(Ok(resp))) => resp,
        };
        match judged.map_or(Opened::Stream, |(_, opened)| opened) {
            Opened::Stream => {}
            Opened::Retry(reason) => return interrupted(reason),
            Opened::Fail(reason) => {
                let content_type = resp.headers.get(header::CONTENT_TYPE);
                info!(status = resp.status.as_u16(), ?content_type, %reason, "stream not accepted");
                if reason == DropReason::HttpStatus(400)
                    && let Some(seq) = last.as_deref().and_then(|id| id.parse::<u64>().ok())
                {
                    // `seq` is one this target sent. Refusing it as beyond the session's
                    // events means the target no longer holds events it delivered (its
                    // journal lost acknowledged writes): what it would continue from differs
                    // from what the client saw. A browser gives up on a 400; so do we.
                    let read = timeout(self.cfg.connect_timeout, resp.body.read_capped(4096));
                    if let Ok(Ok(Ok(body))) = self.guard.run(read).await
                        && String::from_utf8_lossy(&body).contains("invalid_last_event_id")
                    {
                        self.verifier.target_forgot(seq);
                    }
                }
                return StreamEnd::Drop(reason);
            }
        }
        if let Some(cookies) = super::create::cookies(&resp.headers) {
            self.cookies = Some(cookies);
        }
        self.serving = resp
            .headers
            .get("x-dropzero-replica")
            .and_then(|v| v.to_str().ok())
            .map(bounded_detail);
        debug!(after = last.as_deref(), "stream open");

        let body = &mut resp.body;
        let mut parser = Parser::with_last_event_id(self.cfg.limits, self.last_event_id.clone());
        let mut items = Vec::new();
        // ITL is measured between token events of this stream only.
        let mut last_token_at = None;
        // One cancellation waiter and one set of timers per stream, not per chunk: a fresh
        // `timeout` and `Guard::run` per chunk registered and cancelled two timers and a
        // waiter for every event. Re-arming the idle timer to a later deadline is an atomic
        // store in tokio's timer; the order of the race stays `Guard::run`'s (stop first,
        // then data, then the idle timeout).
        let cancel = self.guard.cancel;
        let mut cancelled = pin!(cancel.cancelled());
        let mut deadline = pin!(tokio::time::sleep_until(self.guard.deadline));
        let mut idle = pin!(tokio::time::sleep(self.cfg.idle_timeout));
        let done = 'read: loop {
            let next = tokio::select! {
                biased;
                _ = &mut cancelled => return StreamEnd::Stop(Stop::Cancelled),
                _ = &mut deadline => return StreamEnd::Stop(Stop::Deadline),
                next = body.next() => next,
                _ = &mut idle => return interrupted(InterruptReason::IdleTimeout),
            };
            let chunk = match next {
                None => return interrupted(InterruptReason::Eof),
                Some(Err(e)) => return interrupted(InterruptReason::Reset(e)),
                Some(Ok(chunk)) => chunk,
            };
            let now = Instant::now();
            idle.as_mut()
                .reset(tokio::time::Instant::from_std(now) + self.cfg.idle_timeout);
            // Items parsed before a limit violation are still real events: handle them first.
            let fed = parser.feed(chunk, &mut items);
            let dispatched = parser.dispatched_last_event_id();
            if self.last_event_id.as_deref() != dispatched {
                // Reuse the buffer: the id changes with every event.
                match (&mut self.last_event_id, dispatched) {
                    (Some(mine), Some(id)) => id.clone_into(mine),
                    (mine, id) => *mine = id.map(str::to_string),
                }
            }
            for item in items.drain(..) {
                match item {
                    Item::Event(ev) => {
                        if let Some(status) = self.on_event(&ev, now, &mut last_token_at) {
                            break 'read status;
                        }
                    }
                    Item::Retry(ms) => {
                        self.retry_hint = Some(Duration::from_millis(ms).min(MAX_RETRY_HINT));
                    }
                    Item::Comment(_) => {}
                }
            }
            if let Err(e) = fed {
                return interrupted(InterruptReason::Sse(e));
            }
        };
        resp.body.finish().await;
        StreamEnd::Done(done)
    }

    fn on_event(
        &mut self,
        ev: &Event,
        now: Instant,
        last_token_at: &mut Option<Instant>,
    ) -> Option<DoneStatus> {
        self.events_received += 1;
        self.obs.on_event();
        let last_event_at = self.last_event_at.replace(now);
        if let Some(at) = self.interrupted_at.take() {
            let latency = now.saturating_duration_since(at);
            self.obs.on_resume(latency);
            let longest = self.timings.longest_resume.get_or_insert(latency);
            *longest = (*longest).max(latency);
        }
        match self.verifier.accept(ev) {
            Verdict::Accepted(EventKind::Token) => {
                self.obs.on_token(1);
                if let Some(prev) = last_token_at.replace(now) {
                    self.obs.on_itl(now.saturating_duration_since(prev));
                }
                self.obs.on_token_data(&ev.data, now);
                if self.timings.ttft_from_sent.is_none() {
                    let from_sent = now.saturating_duration_since(self.sent);
                    let from_intended = self
                        .spec
                        .intended_start
                        .map_or(from_sent, |i| now.saturating_duration_since(i));
                    self.timings.ttft_from_sent = Some(from_sent);
                    self.timings.ttft_from_intended = Some(from_intended);
                    self.obs.on_ttft(from_intended, from_sent);
                }
                None
            }
            Verdict::Accepted(EventKind::Done(status)) => Some(status),
            Verdict::Accepted(EventKind::Takeover) => {
                let gap =
                    last_event_at.map_or(Duration::ZERO, |t| now.saturating_duration_since(t));
                self.takeovers = self.takeovers.saturating_add(1);
                self.obs.on_takeover(gap, self.verifier.takeover_from());
                None
            }
            Verdict::Accepted(EventKind::Other) | Verdict::Duplicate | Verdict::Malformed => None,
        }
    }

    fn interrupted(&mut self, reason: InterruptReason) {
        let at_seq = self.verifier.last_seq();
        let replica = self
            .serving
            .clone()
            .or_else(|| self.verifier.replica().map(str::to_string));
        info!(reason = %reason, at_seq, replica = replica.as_deref(), "stream interrupted");
        self.obs.on_interruption(&reason);
        self.interrupted_at.get_or_insert_with(Instant::now);
        self.interruption_count = self.interruption_count.saturating_add(1);
        if self.interruptions.len() < MAX_STORED_INTERRUPTIONS {
            self.interruptions.push(Interruption {
                reason,
                at_seq,
                replica,
                at: std::time::Instant::now(),
            });
        }
    }

    fn classify(&self, status: DoneStatus) -> SessionClass {
        match status {
            DoneStatus::Completed if self.interruption_count > 0 => SessionClass::Resumed,
            DoneStatus::Completed => SessionClass::Completed,
            DoneStatus::Failed | DoneStatus::Unknown => SessionClass::Failed,
            DoneStatus::Cancelled => SessionClass::Cancelled,
            DoneStatus::BudgetExceeded => SessionClass::BudgetExceeded,
        }
    }

    fn events_url(&self, created: &Created) -> String {
        let base = base_url(self.spec);
        match created.events_url.as_deref() {
            Some(u) if u.starts_with("http://") || u.starts_with("https://") => u.to_string(),
            Some(u) if u.starts_with('/') => format!("{base}{u}"),
            Some(u) => format!("{base}/{u}"),
            None => format!("{base}/v1/sessions/{}/events", created.session_id),
        }
    }

    fn finish(mut self, session_id: Option<String>, class: SessionClass) -> SessionOutcome {
        self.timings.total = self.sent.elapsed();
        let v = &self.verifier;
        let outcome = SessionOutcome {
            session_id,
            class,
            interruptions: self.interruptions,
            interruption_count: self.interruption_count,
            events_received: self.events_received,
            lost: v.lost(),
            duplicated: v.duplicated(),
            malformed: v.malformed_count(),
            content_mismatch: v.content_mismatch(),
            tokens_received: v.tokens(),
            output_tokens: v.output_tokens(),
            input_tokens: v.input_tokens(),
            cost_micro_usd: v.cost_usd().map(|c| (c.max(0.0) * 1e6).round() as u64),
            replicas: v.replicas().to_vec(),
            takeovers: self.takeovers,
            retry_hint: self.retry_hint,
            timings: self.timings,
        };
        info!(
            class = outcome.class.label(),
            reason = ?outcome.class,
            interruptions = outcome.interruption_count,
            lost = outcome.lost,
            duplicated = outcome.duplicated,
            content_mismatch = outcome.content_mismatch,
            tokens = outcome.tokens_received,
            "session finished"
        );
        outcome
    }
}

fn interrupted(reason: InterruptReason) -> StreamEnd {
    StreamEnd::Interrupted(reason)
}

fn stop_class(stop: Stop) -> SessionClass {
    match stop {
        Stop::Cancelled => SessionClass::CancelledByHarness,
        Stop::Deadline => SessionClass::Dropped(DropReason::Deadline),
    }
}

pub(super) fn base_url(spec: &SessionSpec) -> &str {
    spec.base_url.trim_end_matches('/')
}

/// An error and its sources on one bounded line (reqwest's own message hides the cause).
pub(super) fn describe(e: &(dyn Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    bounded_detail(text)
}
