//! Measurement: session clients record into a [`Collector`]; a sampler turns its counters
//! into a 1-second timeline; at the end everything becomes part of the report.
//!
//! Samples go into HdrHistograms, never into growing vectors: memory stays flat however long
//! a run lasts. Histograms are sharded so thousands of session tasks do not contend on one
//! lock; shards are merged once, at the end.

pub mod hlog;
pub mod recorder;
pub mod timeline;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;

const SHARDS: usize = 16;

/// The latency histograms of one shard (all in microseconds).
#[derive(Clone)]
pub struct Histograms {
    /// Intended start (scheduled time) → first token. The coordinated-omission-free TTFT.
    pub ttft: Histogram<u64>,
    /// Request actually sent → first token.
    pub ttft_sent: Histogram<u64>,
    pub itl: Histogram<u64>,
    pub resume: Histogram<u64>,
    /// Silence before a takeover `session` event (a dead or departed owner's sessions).
    pub takeover: Histogram<u64>,
    pub session: Histogram<u64>,
    pub create: Histogram<u64>,
}

impl Histograms {
    fn new() -> Self {
        // One hour at 3 significant figures covers every session length we simulate.
        let h = || {
            Histogram::new_with_bounds(1, 3_600_000_000, 3).unwrap_or_else(|_| {
                Histogram::new(3).unwrap_or_else(|_| unreachable!("3 sigfig is valid"))
            })
        };
        Histograms {
            ttft: h(),
            ttft_sent: h(),
            itl: h(),
            resume: h(),
            takeover: h(),
            session: h(),
            create: h(),
        }
    }

    fn merge(&mut self, other: &Histograms) {
        for (a, b) in [
            (&mut self.ttft, &other.ttft),
            (&mut self.ttft_sent, &other.ttft_sent),
            (&mut self.itl, &other.itl),
            (&mut self.resume, &other.resume),
            (&mut self.takeover, &other.takeover),
            (&mut self.session, &other.session),
            (&mut self.create, &other.create),
        ] {
            // Same bounds everywhere, so adding cannot fail.
            let _ = a.add(b);
        }
    }
}

/// Record a duration, saturating at the histogram's top rather than dropping the sample.
pub fn record(h: &mut Histogram<u64>, d: Duration) {
    let us = u64::try_from(d.as_micros())
        .unwrap_or(u64::MAX)
        .clamp(1, h.high());
    let _ = h.record(us);
}

/// Live counters, readable at any time without locks (for progress and the timeline).
#[derive(Default)]
pub struct Counters {
    pub active: AtomicI64,
    pub started: AtomicU64,
    pub completed: AtomicU64,
    pub resumed: AtomicU64,
    pub dropped: AtomicU64,
    pub failed: AtomicU64,
    pub cancelled: AtomicU64,
    pub budget_exceeded: AtomicU64,
    pub not_started: AtomicU64,
    pub interruptions: AtomicU64,
    pub events: AtomicU64,
    pub tokens: AtomicU64,
    pub lost_events: AtomicU64,
    pub duplicated_events: AtomicU64,
    pub content_mismatches: AtomicU64,
}

impl Counters {
    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
    pub fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }
}

/// Shared by every session task of a run.
pub struct Collector {
    shards: Vec<Mutex<Histograms>>,
    pub counters: Counters,
    pub drop_reasons: Mutex<BTreeMap<String, u64>>,
    pub interruption_reasons: Mutex<BTreeMap<String, u64>>,
    /// One small entry per started session, for token accounting against the ledger.
    pub session_tokens: Mutex<Vec<recorder::SessionTokens>>,
    /// Largest overshoot past `max_output_tokens` of a `budget_exceeded` session.
    pub budget_overshoot_max: Mutex<Option<u64>>,
    /// Largest overshoot past `max_cost_usd` of a `budget_exceeded` session.
    pub budget_overshoot_max_usd: Mutex<Option<f64>>,
    /// TTFT and ITL samples of the current second, for the timeline (SLO recovery).
    pub window: Mutex<Window>,
}

/// TTFT, ITL and resume samples of one timeline second; the sampler closes it each tick.
#[derive(Debug)]
pub struct Window {
    pub ttft: Histogram<u64>,
    pub itl: Histogram<u64>,
    pub resume: Histogram<u64>,
}

impl Window {
    fn new() -> Window {
        let h = Histograms::new();
        Window {
            ttft: h.ttft,
            itl: h.itl,
            resume: h.resume,
        }
    }

    /// The p99s (ms) and resume count of the samples since the last call. The samples go to
    /// `log` as the interval `[start, start + length)`, then the window starts over.
    pub fn close(
        &mut self,
        log: &mut hlog::IntervalLog,
        start: Duration,
        length: Duration,
    ) -> WindowSummary {
        let p99 =
            |h: &Histogram<u64>| (!h.is_empty()).then(|| h.value_at_quantile(0.99) as f64 / 1e3);
        let out = WindowSummary {
            ttft_p99_ms: p99(&self.ttft),
            itl_p99_ms: p99(&self.itl),
            resume_p99_ms: p99(&self.resume),
            resumes: self.resume.len(),
        };
        for (tag, h) in
            hlog::TAGS
                .into_iter()
                .zip([&mut self.ttft, &mut self.itl, &mut self.resume])
        {
            if let Err(e) = log.push(tag, start, length, h) {
                tracing::warn!(error = %e, "latency.hlog loses an interval");
            }
            h.reset();
        }
        out
    }
}

/// What one closed [`Window`] adds to its timeline point.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct WindowSummary {
    pub ttft_p99_ms: Option<f64>,
    pub itl_p99_ms: Option<f64>,
    pub resume_p99_ms: Option<f64>,
    pub resumes: u64,
}

impl Default for Collector {
    fn default() -> Self {
        Collector {
            shards: (0..SHARDS).map(|_| Mutex::new(Histograms::new())).collect(),
            counters: Counters::default(),
            drop_reasons: Mutex::default(),
            interruption_reasons: Mutex::default(),
            session_tokens: Mutex::default(),
            budget_overshoot_max: Mutex::default(),
            budget_overshoot_max_usd: Mutex::default(),
            window: Mutex::new(Window::new()),
        }
    }
}

impl Collector {
    /// Close the current timeline second (see [`Window::close`]).
    pub fn close_window(
        &self,
        log: &mut hlog::IntervalLog,
        start: Duration,
        length: Duration,
    ) -> WindowSummary {
        match self.window.lock() {
            Ok(mut w) => w.close(log, start, length),
            Err(p) => p.into_inner().close(log, start, length),
        }
    }
}

impl Collector {
    /// Run `f` on shard `key % SHARDS`. A poisoned shard (a panicking recorder) is still used:
    /// histograms have no invariants a panic could break.
    pub fn with_shard<R>(&self, key: u64, f: impl FnOnce(&mut Histograms) -> R) -> R {
        let idx = usize::try_from(key % SHARDS as u64).unwrap_or(0);
        let mut guard = match self.shards[idx].lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut guard)
    }

    /// Merge every shard into one set of histograms.
    pub fn merged(&self) -> Histograms {
        let mut all = Histograms::new();
        for shard in &self.shards {
            let guard = match shard.lock() {
                Ok(g) => g,
                Err(poisoned) => poisoned.into_inner(),
            };
            all.merge(&guard);
        }
        all
    }
}
