//! The bridge from one session client to the collector: an [`Observer`] that records into a
//! histogram shard, and the bookkeeping done once a session ends.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

use super::{Collector, Counters, record};
use crate::load::mix::SessionPlan;
use crate::session::{HttpRequest, InterruptReason, Observer, SessionClass, SessionOutcome};

/// Records one session's samples into shard `key` of the collector.
pub struct Recorder {
    pub collector: Arc<Collector>,
    pub key: u64,
    /// Resume latencies are also attributed to the fault active when the stream broke.
    pub faults: Option<Arc<crate::faults::FaultLog>>,
    /// The session's HTTP requests, handed back to the load engine when it ends (closed
    /// users report them to goose).
    pub requests: Vec<HttpRequest>,
}

impl Recorder {
    pub fn new(
        collector: Arc<Collector>,
        key: u64,
        faults: Option<Arc<crate::faults::FaultLog>>,
    ) -> Recorder {
        Recorder {
            collector,
            key,
            faults,
            requests: Vec::new(),
        }
    }
}

impl Observer for Recorder {
    fn on_request(&mut self, request: &HttpRequest) {
        self.requests.push(request.clone());
    }
    fn on_created(&mut self, latency: Duration) {
        self.collector
            .with_shard(self.key, |h| record(&mut h.create, latency));
    }
    fn on_ttft(&mut self, from_intended: Duration, from_sent: Duration) {
        self.collector.with_shard(self.key, |h| {
            record(&mut h.ttft, from_intended);
            record(&mut h.ttft_sent, from_sent);
        });
        let mut w = match self.collector.window.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        record(&mut w.ttft, from_intended);
    }
    fn on_itl(&mut self, gap: Duration) {
        self.collector
            .with_shard(self.key, |h| record(&mut h.itl, gap));
        let mut w = match self.collector.window.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        record(&mut w.itl, gap);
    }
    fn on_resume(&mut self, latency: Duration) {
        self.collector
            .with_shard(self.key, |h| record(&mut h.resume, latency));
        match self.collector.window.lock() {
            Ok(mut w) => record(&mut w.resume, latency),
            Err(p) => record(&mut p.into_inner().resume, latency),
        }
        if let Some(faults) = &self.faults {
            faults.note_resume(latency);
        }
    }
    fn on_takeover(&mut self, gap: Duration, from: Option<&str>) {
        self.collector
            .with_shard(self.key, |h| record(&mut h.takeover, gap));
        if let Some(faults) = &self.faults {
            faults.note_takeover(gap, from);
        }
    }
    fn on_token(&mut self, n: u64) {
        Counters::add(&self.collector.counters.tokens, n);
    }
    fn on_interruption(&mut self, reason: &InterruptReason) {
        Counters::add(&self.collector.counters.interruptions, 1);
        self.collector
            .count_reason(&self.collector.interruption_reasons, reason.label());
    }
    fn on_event(&mut self) {
        Counters::add(&self.collector.counters.events, 1);
    }
}

/// What the report needs about one session after the run (token accounting per session).
#[derive(Debug, Clone)]
pub struct SessionTokens {
    pub session_id: String,
    pub completed: bool,
    /// Output tokens the runtime reported in `done.usage` (completed sessions).
    pub usage_output: u64,
    /// Input tokens it reported, if it did.
    pub usage_input: Option<u64>,
    /// Token events the client received.
    pub delivered: u64,
    /// Index of the fault its waste is attributed to (see `faults`).
    pub fault: Option<usize>,
}

/// One line of `sessions.jsonl`: the per-session outcome, for grep and for spreadsheets.
#[derive(Debug, Serialize)]
pub struct SessionRecord {
    pub index: u64,
    pub session_id: Option<String>,
    pub outcome: &'static str,
    pub reason: Option<String>,
    pub runaway: bool,
    pub planned_tokens: u64,
    pub interruptions: Vec<InterruptionRecord>,
    pub events: u64,
    pub lost: u64,
    pub duplicated: u64,
    pub content_mismatch: bool,
    pub tokens_received: u64,
    pub output_tokens: Option<u64>,
    pub replicas: Vec<String>,
    pub takeovers: u32,
    /// The server's last `retry:` hint, in milliseconds.
    pub retry_ms: Option<u64>,
    pub create_ms: Option<f64>,
    pub ttft_ms: Option<f64>,
    pub duration_s: f64,
    /// Index (in the report's `faults`) of the first fault that interrupted it.
    pub fault: Option<usize>,
}

#[derive(Debug, Serialize)]
pub struct InterruptionRecord {
    pub reason: String,
    pub at_seq: u64,
    pub replica: Option<String>,
}

impl Collector {
    pub fn count_reason(&self, map: &Mutex<BTreeMap<String, u64>>, reason: &str) {
        let mut guard = match map.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        *guard.entry(reason.to_string()).or_default() += 1;
    }

    /// Account for a finished session; returns its `sessions.jsonl` record.
    pub fn finish(
        &self,
        plan: &SessionPlan,
        outcome: &SessionOutcome,
        fault: Option<usize>,
    ) -> SessionRecord {
        let c = &self.counters;
        let class_counter = match &outcome.class {
            SessionClass::Completed => Some(&c.completed),
            SessionClass::Resumed => Some(&c.resumed),
            SessionClass::Dropped(_) => Some(&c.dropped),
            SessionClass::Failed => Some(&c.failed),
            SessionClass::Cancelled | SessionClass::CancelledByHarness => Some(&c.cancelled),
            SessionClass::BudgetExceeded => Some(&c.budget_exceeded),
            SessionClass::NotStarted(_) => Some(&c.not_started),
        };
        if let Some(counter) = class_counter {
            Counters::add(counter, 1);
        }
        Counters::add(&c.lost_events, outcome.lost);
        Counters::add(&c.duplicated_events, outcome.duplicated);
        Counters::add(&c.content_mismatches, u64::from(outcome.content_mismatch));
        let reason = match &outcome.class {
            SessionClass::Dropped(r) => {
                self.count_reason(&self.drop_reasons, r.label());
                Some(r.label().to_string())
            }
            SessionClass::NotStarted(r) => Some(r.label().to_string()),
            SessionClass::CancelledByHarness => Some("cancelled_by_harness".to_string()),
            _ => None,
        };
        if matches!(outcome.class, SessionClass::BudgetExceeded)
            && let (Some(used), Some(limit)) = (
                outcome.output_tokens,
                plan.budget
                    .as_ref()
                    .and_then(|b| b.get("max_output_tokens"))
                    .and_then(serde_json::Value::as_u64),
            )
        {
            let overshoot = used.saturating_sub(limit);
            let mut max = match self.budget_overshoot_max.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            *max = Some(max.unwrap_or(0).max(overshoot));
        }
        if matches!(outcome.class, SessionClass::BudgetExceeded)
            && let (Some(cost), Some(limit)) = (
                outcome.cost_micro_usd.map(|c| c as f64 / 1e6),
                plan.budget
                    .as_ref()
                    .and_then(|b| b.get("max_cost_usd"))
                    .and_then(serde_json::Value::as_f64),
            )
        {
            let overshoot = (cost - limit).max(0.0);
            let mut max = match self.budget_overshoot_max_usd.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            *max = Some(max.unwrap_or(0.0).max(overshoot));
        }
        if !matches!(outcome.class, SessionClass::NotStarted(_)) {
            self.with_shard(plan.index, |h| {
                record(&mut h.session, outcome.timings.total)
            });
        }
        if let Some(id) = &outcome.session_id {
            let completed = matches!(
                outcome.class,
                SessionClass::Completed | SessionClass::Resumed
            );
            let mut tokens = match self.session_tokens.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            tokens.push(SessionTokens {
                session_id: id.clone(),
                completed,
                usage_output: outcome.output_tokens.unwrap_or(0),
                usage_input: outcome.input_tokens,
                delivered: outcome.tokens_received,
                fault,
            });
        }
        let ms = |d: Option<Duration>| d.map(|d| d.as_secs_f64() * 1000.0);
        SessionRecord {
            index: plan.index,
            session_id: outcome.session_id.clone(),
            outcome: outcome.class.label(),
            reason,
            runaway: plan.runaway,
            planned_tokens: plan.output_tokens,
            interruptions: outcome
                .interruptions
                .iter()
                .map(|i| InterruptionRecord {
                    reason: i.reason.label().to_string(),
                    at_seq: i.at_seq,
                    replica: i.replica.clone(),
                })
                .collect(),
            events: outcome.events_received,
            lost: outcome.lost,
            duplicated: outcome.duplicated,
            content_mismatch: outcome.content_mismatch,
            tokens_received: outcome.tokens_received,
            output_tokens: outcome.output_tokens,
            replicas: outcome.replicas.clone(),
            takeovers: outcome.takeovers,
            retry_ms: outcome
                .retry_hint
                .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            create_ms: ms(outcome.timings.create),
            ttft_ms: ms(outcome.timings.ttft_from_intended),
            duration_s: outcome.timings.total.as_secs_f64(),
            fault,
        }
    }
}

/// Start the task that appends one JSON line per finished session to `path`. Sessions send
/// records through the returned channel; the task ends (flushed) when every sender is gone.
pub fn spawn_writer(
    path: std::path::PathBuf,
) -> std::io::Result<(
    tokio::sync::mpsc::UnboundedSender<SessionRecord>,
    tokio::task::JoinHandle<()>,
)> {
    use std::io::Write;
    let file = std::fs::File::create(&path)?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<SessionRecord>();
    let task = tokio::task::spawn_blocking(move || {
        let mut out = std::io::BufWriter::new(file);
        while let Some(record) = rx.blocking_recv() {
            if serde_json::to_writer(&mut out, &record).is_ok() {
                let _ = out.write_all(b"\n");
            }
        }
        if let Err(e) = out.flush() {
            tracing::error!(path = %path.display(), "writing sessions.jsonl: {e}");
        }
    });
    Ok((tx, task))
}
