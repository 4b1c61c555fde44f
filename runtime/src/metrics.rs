//! Prometheus metrics (docs/protocol.md §3), hand-written: a few atomics and one fixed-bucket
//! histogram rendered as text. Not a general metrics library.

use std::{
    fmt::Write,
    sync::atomic::{AtomicU64, Ordering::Relaxed},
    time::Duration,
};

use crate::{agent::resume::TakeoverReason, session::SessionStatus};

/// Upper bounds (seconds) of the journal append latency histogram.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Debug, Default)]
pub struct Histogram {
    counts: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|&le| secs <= le) {
            self.counts[i].fetch_add(1, Relaxed);
        }
        self.count.fetch_add(1, Relaxed);
        self.sum_micros.fetch_add(d.as_micros() as u64, Relaxed);
    }

    fn render(&self, name: &str, out: &mut String) {
        let _ = writeln!(out, "# TYPE {name} histogram");
        let mut cumulative = 0;
        for (le, count) in BUCKETS.iter().zip(&self.counts) {
            cumulative += count.load(Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {cumulative}");
        }
        let count = self.count.load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let sum = self.sum_micros.load(Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}");
        let _ = writeln!(out, "{name}_count {count}");
    }
}

/// Every counter the runtime exports.
#[derive(Debug, Default)]
pub struct Metrics {
    pub open_streams: AtomicU64,
    pub completed: AtomicU64,
    pub failed: AtomicU64,
    pub cancelled: AtomicU64,
    pub budget_exceeded: AtomicU64,
    pub input_tokens: AtomicU64,
    pub output_tokens: AtomicU64,
    pub llm_ok: AtomicU64,
    pub llm_retried: AtomicU64,
    pub llm_failed: AtomicU64,
    pub journal_append: Histogram,
    pub takeovers_released: AtomicU64,
    pub takeovers_lease_expired: AtomicU64,
    /// Sessions this replica released at its drain deadline.
    pub handoffs: AtomicU64,
    pub lease_heartbeat_failures: AtomicU64,
    /// Appends the journal did not acknowledge (unreachable, timed out, refused), fences
    /// (`SeqTaken`) excluded: those are ownership, not journal health.
    pub journal_append_errors: AtomicU64,
}

impl Metrics {
    pub fn session_ended(&self, status: SessionStatus) {
        let counter = match status {
            SessionStatus::Running => return,
            SessionStatus::Completed => &self.completed,
            SessionStatus::Failed => &self.failed,
            SessionStatus::Cancelled => &self.cancelled,
            SessionStatus::BudgetExceeded => &self.budget_exceeded,
        };
        counter.fetch_add(1, Relaxed);
    }

    pub fn took_over(&self, reason: TakeoverReason) {
        self.takeovers(reason).fetch_add(1, Relaxed);
    }

    fn takeovers(&self, reason: TakeoverReason) -> &AtomicU64 {
        match reason {
            TakeoverReason::Released => &self.takeovers_released,
            TakeoverReason::LeaseExpired => &self.takeovers_lease_expired,
        }
    }

    /// Render the text exposition format; the gauges are read by the caller.
    pub fn render(
        &self,
        replica_id: &str,
        mode: &str,
        version: &str,
        active_sessions: usize,
        draining: bool,
        journal_up: bool,
    ) -> String {
        let mut out = String::new();
        let w = &mut out;
        let _ = writeln!(w, "# TYPE dropzero_replica_info gauge");
        let _ = writeln!(
            w,
            "dropzero_replica_info{{replica_id=\"{replica_id}\",mode=\"{mode}\",version=\"{version}\"}} 1"
        );
        let _ = writeln!(w, "# TYPE dropzero_active_sessions gauge");
        let _ = writeln!(w, "dropzero_active_sessions {active_sessions}");
        let _ = writeln!(w, "# TYPE dropzero_open_streams gauge");
        let _ = writeln!(
            w,
            "dropzero_open_streams {}",
            self.open_streams.load(Relaxed)
        );
        let _ = writeln!(w, "# TYPE dropzero_sessions_total counter");
        for (outcome, c) in [
            ("completed", &self.completed),
            ("failed", &self.failed),
            ("cancelled", &self.cancelled),
            ("budget_exceeded", &self.budget_exceeded),
        ] {
            let _ = writeln!(
                w,
                "dropzero_sessions_total{{outcome=\"{outcome}\"}} {}",
                c.load(Relaxed)
            );
        }
        let _ = writeln!(w, "# TYPE dropzero_tokens_total counter");
        for (dir, c) in [
            ("input", &self.input_tokens),
            ("output", &self.output_tokens),
        ] {
            let _ = writeln!(
                w,
                "dropzero_tokens_total{{direction=\"{dir}\"}} {}",
                c.load(Relaxed)
            );
        }
        let _ = writeln!(w, "# TYPE dropzero_scale_in_protected gauge");
        let _ = writeln!(
            w,
            "dropzero_scale_in_protected {}",
            u8::from(active_sessions > 0)
        );
        let _ = writeln!(w, "# TYPE dropzero_takeovers_total counter");
        for reason in [TakeoverReason::Released, TakeoverReason::LeaseExpired] {
            let _ = writeln!(
                w,
                "dropzero_takeovers_total{{reason=\"{}\"}} {}",
                reason.as_str(),
                self.takeovers(reason).load(Relaxed)
            );
        }
        let _ = writeln!(w, "# TYPE dropzero_handoffs_total counter");
        let _ = writeln!(w, "dropzero_handoffs_total {}", self.handoffs.load(Relaxed));
        let _ = writeln!(w, "# TYPE dropzero_lease_heartbeat_failures_total counter");
        let _ = writeln!(
            w,
            "dropzero_lease_heartbeat_failures_total {}",
            self.lease_heartbeat_failures.load(Relaxed)
        );
        let _ = writeln!(w, "# TYPE dropzero_draining gauge");
        let _ = writeln!(w, "dropzero_draining {}", u8::from(draining));
        let _ = writeln!(w, "# TYPE dropzero_journal_up gauge");
        let _ = writeln!(w, "dropzero_journal_up {}", u8::from(journal_up));
        let _ = writeln!(w, "# TYPE dropzero_journal_append_errors_total counter");
        let _ = writeln!(
            w,
            "dropzero_journal_append_errors_total {}",
            self.journal_append_errors.load(Relaxed)
        );
        self.journal_append
            .render("dropzero_journal_append_seconds", w);
        let _ = writeln!(w, "# TYPE dropzero_llm_requests_total counter");
        for (result, c) in [
            ("ok", &self.llm_ok),
            ("retried", &self.llm_retried),
            ("failed", &self.llm_failed),
        ] {
            let _ = writeln!(
                w,
                "dropzero_llm_requests_total{{result=\"{result}\"}} {}",
                c.load(Relaxed)
            );
        }
        out
    }
}
