//! The metrics `dropzero compare` looks at: where each comes from in a [`Report`], which
//! way is better, and how much change is noise.
//!
//! Noise thresholds are per metric: a change is noise when it is within the relative
//! threshold of the base value *or* within the absolute floor (so 1 → 2 failed sessions is
//! not a 100 % regression). `--noise PCT` replaces every relative threshold; the floors stay.
//! Zero-tolerance metrics (drops and data loss: MISSION's headline numbers) have no noise at
//! all, and any increase is a regression.

use crate::model::{LatencySummary, Report};

/// Which way a metric should move.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    HigherIsBetter,
    LowerIsBetter,
}

/// One compared quantity.
pub struct Metric {
    pub name: &'static str,
    pub unit: &'static str,
    pub direction: Direction,
    /// Relative noise threshold, percent of the base value.
    pub noise_pct: f64,
    /// Absolute noise floor, in `unit`.
    pub noise_abs: f64,
    /// Any worsening is a regression, never noise.
    pub zero_tolerance: bool,
    /// The value, `None` when the run could not measure it (no samples, zero duration).
    pub value: fn(&Report) -> Option<f64>,
}

const fn count(
    name: &'static str,
    direction: Direction,
    noise_pct: f64,
    noise_abs: f64,
    value: fn(&Report) -> Option<f64>,
) -> Metric {
    Metric {
        name,
        unit: "count",
        direction,
        noise_pct,
        noise_abs,
        zero_tolerance: false,
        value,
    }
}

const fn zero_tolerance(name: &'static str, value: fn(&Report) -> Option<f64>) -> Metric {
    Metric {
        name,
        unit: "count",
        direction: Direction::LowerIsBetter,
        noise_pct: 0.0,
        noise_abs: 0.0,
        zero_tolerance: true,
        value,
    }
}

const fn latency_ms(name: &'static str, value: fn(&Report) -> Option<f64>) -> Metric {
    Metric {
        name,
        unit: "ms",
        direction: Direction::LowerIsBetter,
        noise_pct: 10.0,
        noise_abs: 5.0,
        zero_tolerance: false,
        value,
    }
}

fn p99(s: &LatencySummary) -> Option<f64> {
    (s.count > 0).then_some(s.p99)
}

fn p50(s: &LatencySummary) -> Option<f64> {
    (s.count > 0).then_some(s.p50)
}

fn per_second(n: f64, r: &Report) -> Option<f64> {
    (r.load.duration_s > 0.0).then(|| n / r.load.duration_s)
}

use Direction::{HigherIsBetter, LowerIsBetter};

/// Every compared metric, in report order: outcomes and data loss, waste, throughput,
/// latency, memory.
pub const METRICS: &[Metric] = &[
    zero_tolerance("dropped_sessions", |r| Some(r.sessions.dropped as f64)),
    zero_tolerance("lost_events", |r| Some(r.events.lost as f64)),
    zero_tolerance("duplicated_events", |r| Some(r.events.duplicated as f64)),
    zero_tolerance("content_mismatches", |r| {
        Some(r.events.content_mismatches as f64)
    }),
    count("completed_sessions", HigherIsBetter, 5.0, 2.0, |r| {
        Some(r.sessions.completed as f64)
    }),
    count("failed_sessions", LowerIsBetter, 10.0, 2.0, |r| {
        Some(r.sessions.failed as f64)
    }),
    count("interrupted_streams", LowerIsBetter, 10.0, 2.0, |r| {
        Some(r.sessions.interrupted_streams as f64)
    }),
    count("wasted_tokens", LowerIsBetter, 10.0, 100.0, |r| {
        Some(r.tokens.wasted as f64)
    }),
    count("wasted_input_tokens", LowerIsBetter, 10.0, 100.0, |r| {
        Some(r.tokens.wasted_input as f64)
    }),
    Metric {
        name: "wasted_token_ratio",
        unit: "ratio",
        direction: LowerIsBetter,
        noise_pct: 10.0,
        noise_abs: 0.001,
        zero_tolerance: false,
        value: |r| r.tokens.wasted_ratio,
    },
    Metric {
        name: "wasted_cost_usd",
        unit: "USD",
        direction: LowerIsBetter,
        noise_pct: 10.0,
        noise_abs: 0.01,
        zero_tolerance: false,
        value: |r| Some(r.tokens.wasted_cost_usd),
    },
    Metric {
        name: "delivered_tokens_per_s",
        unit: "tokens/s",
        direction: HigherIsBetter,
        noise_pct: 5.0,
        noise_abs: 1.0,
        zero_tolerance: false,
        value: |r| per_second(r.tokens.delivered as f64, r),
    },
    Metric {
        name: "completed_sessions_per_s",
        unit: "sessions/s",
        direction: HigherIsBetter,
        noise_pct: 5.0,
        noise_abs: 0.01,
        zero_tolerance: false,
        value: |r| per_second(r.sessions.completed as f64, r),
    },
    latency_ms("ttft_p50", |r| p50(&r.latency.ttft_ms)),
    latency_ms("ttft_p99", |r| p99(&r.latency.ttft_ms)),
    latency_ms("itl_p50", |r| p50(&r.latency.itl_ms)),
    latency_ms("itl_p99", |r| p99(&r.latency.itl_ms)),
    latency_ms("resume_p99", |r| p99(&r.latency.resume_ms)),
    latency_ms("takeover_p99", |r| p99(&r.latency.takeover_ms)),
    // Memory moves with load and with what a replica absorbed (takeovers), so a 10 % or
    // 4 MiB change is noise; a leak shows as far more.
    Metric {
        name: "replica_peak_rss_mb",
        unit: "MiB",
        direction: LowerIsBetter,
        noise_pct: 10.0,
        noise_abs: 4.0,
        zero_tolerance: false,
        value: |r| r.replica_peak_rss_mb.map(|mb| mb as f64),
    },
];
