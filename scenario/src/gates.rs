//! Pass/fail gates and the autoscaling policy of a resolved plan. Durations are wall-clock
//! (see `plan.rs`); the gate *evaluation* belongs to the reports crate.

use std::time::Duration;

use serde::Deserialize;

/// One gate: passes when the observed value is at most the threshold.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Gate {
    DroppedSessions(u64),
    LostEvents(u64),
    DuplicatedEvents(u64),
    ContentMismatches(u64),
    TtftP99(Duration),
    ItlP99(Duration),
    ResumeP99(Duration),
    /// Wasted output tokens ÷ billed output tokens, in [0, 1].
    WastedTokenRatio(f64),
    /// Sessions that ended failed or dropped ÷ sessions started, in [0, 1].
    ErrorRate(f64),
    /// Load crosses the target → new capacity ready.
    ScaleOutReaction(Duration),
    /// Load crosses the target → latency back inside the SLO.
    SloRecovery(Duration),
    /// ECS deployments that ended FAILED.
    FailedDeployments(u64),
    /// The largest peak resident memory of any replica of the run, MiB (local targets).
    ReplicaPeakRssMb(u64),
}

impl Gate {
    /// The key in `[gates]`, also the gate's name in reports.
    pub fn name(&self) -> &'static str {
        match self {
            Gate::DroppedSessions(_) => "dropped_sessions",
            Gate::LostEvents(_) => "lost_events",
            Gate::DuplicatedEvents(_) => "duplicated_events",
            Gate::ContentMismatches(_) => "content_mismatches",
            Gate::TtftP99(_) => "ttft_p99",
            Gate::ItlP99(_) => "itl_p99",
            Gate::ResumeP99(_) => "resume_p99",
            Gate::WastedTokenRatio(_) => "wasted_token_ratio",
            Gate::ErrorRate(_) => "error_rate",
            Gate::ScaleOutReaction(_) => "scale_out_reaction",
            Gate::SloRecovery(_) => "slo_recovery",
            Gate::FailedDeployments(_) => "failed_deployments",
            Gate::ReplicaPeakRssMb(_) => "replica_peak_rss_mb",
        }
    }
}

/// Target tracking on average active sessions per replica (DESIGN §6), local target only.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AutoscalingPlan {
    pub metric: ScalingMetric,
    /// Desired average metric value per replica (> 0).
    pub target_value: f64,
    /// 1 <= min <= target.replicas <= max.
    pub min: u32,
    pub max: u32,
    pub scale_out_cooldown: Duration,
    pub scale_in_cooldown: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScalingMetric {
    ActiveSessions,
}
