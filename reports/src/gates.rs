//! Pass/fail gates: what a scenario's `[gates]` table asks for, and the verdicts.
//!
//! The harness parses `[gates]` (with its own `deny_unknown_fields` structs and duration
//! parsing) into [`GateSpec`]s; [`evaluate`] turns them plus a filled [`Report`] into
//! [`GateResult`]s. Evaluation is pure: no clock, no I/O, same input → same output.
//!
//! Two rules are not configurable, because a CI gate must never pass by accident:
//! - **Data loss always fails.** `lost_events`, `duplicated_events` and `content_mismatches`
//!   are evaluated with a limit of 0 in every run, configured or not (MISSION: "any of these is
//!   data loss ... and always fails a gate"). Their variants carry no limit, so no scenario can
//!   loosen them; the harness rejects a non-zero value in `[gates]`.
//! - **No vacuous passes.** A run that started no session proves nothing, so
//!   `sessions_started_min` (default 1) is always evaluated. Independently, a gate whose
//!   observed value is undefined — a ratio over zero, a percentile of no samples, NaN — fails
//!   with a message saying so, rather than passing on a missing number. The one exception is
//!   `resume_p99` when no stream was interrupted: nothing needed resuming, which is the best
//!   case, not a missing measurement.

use std::time::Duration;

use crate::error::GateError;
use crate::model::{GateResult, LatencySummary, Report, TokenTotals};

/// One gate from a scenario's `[gates]` table. The scenario key is [`GateSpec::name`].
#[derive(Debug, Clone, PartialEq)]
pub enum GateSpec {
    /// At least `min` sessions started (default 1, always evaluated).
    SessionsStartedMin { min: u64 },
    /// At least `min` sessions completed.
    CompletedMin { min: u64 },
    /// At most `max` dropped sessions (MISSION's headline number).
    DroppedSessions { max: u64 },
    /// No event lost (always evaluated, limit 0).
    LostEvents,
    /// No event duplicated (always evaluated, limit 0).
    DuplicatedEvents,
    /// No `done` digest mismatch (always evaluated, limit 0).
    ContentMismatches,
    /// p99 time to first token at most `max`; fails when no TTFT was measured.
    TtftP99 { max: Duration },
    /// p99 inter-token latency at most `max`; fails when no ITL was measured.
    ItlP99 { max: Duration },
    /// p99 resume latency at most `max`; passes with no interruptions, fails when streams were
    /// interrupted but no resume was measured.
    ResumeP99 { max: Duration },
    /// `wasted / billed_output` at most `max`; fails when nothing was billed.
    WastedTokenRatio { max: Fraction },
    /// `(failed + dropped) / started` at most `max`; fails when nothing started.
    ErrorRate { max: Fraction },
    /// Slowest scale-out reaction, breach → capacity ready, at most `max` (wall clock);
    /// fails when a scale-out never got ready, passes with no scale-out.
    ScaleOutReaction { max: Duration },
    /// Slowest breach → SLO recovery at most `max` (wall clock); fails when the SLO never
    /// recovered after a breach.
    SloRecovery { max: Duration },
    /// ECS deployments whose rollout ended FAILED (the circuit breaker tripped), at most
    /// `max`; passes with no ECS section (a local fleet's deploy cannot fail that way).
    FailedDeployments { max: u64 },
    /// The largest peak RSS of any replica of the run (`Report::replica_peak_rss_mb`) at most
    /// `max_mb` MiB; fails when no replica's memory could be read.
    ReplicaPeakRssMb { max_mb: u64 },
}

/// A number from 0.0 to 1.0, checked once when the scenario is validated so that a NaN or a
/// percentage written as `2` cannot reach a gate (and a NaN threshold cannot reach JSON).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Fraction(f64);

impl Fraction {
    pub fn new(value: f64) -> Result<Self, GateError> {
        if (0.0..=1.0).contains(&value) {
            Ok(Fraction(value))
        } else {
            Err(GateError::NotAFraction { value })
        }
    }

    pub fn get(self) -> f64 {
        self.0
    }
}

impl GateSpec {
    /// The scenario key and `GateResult::name`.
    pub fn name(&self) -> &'static str {
        match self {
            GateSpec::SessionsStartedMin { .. } => "sessions_started_min",
            GateSpec::CompletedMin { .. } => "completed_min",
            GateSpec::DroppedSessions { .. } => "dropped_sessions",
            GateSpec::LostEvents => "lost_events",
            GateSpec::DuplicatedEvents => "duplicated_events",
            GateSpec::ContentMismatches => "content_mismatches",
            GateSpec::TtftP99 { .. } => "ttft_p99",
            GateSpec::ItlP99 { .. } => "itl_p99",
            GateSpec::ResumeP99 { .. } => "resume_p99",
            GateSpec::WastedTokenRatio { .. } => "wasted_token_ratio",
            GateSpec::ErrorRate { .. } => "error_rate",
            GateSpec::ScaleOutReaction { .. } => "scale_out_reaction",
            GateSpec::SloRecovery { .. } => "slo_recovery",
            GateSpec::FailedDeployments { .. } => "failed_deployments",
            GateSpec::ReplicaPeakRssMb { .. } => "replica_peak_rss_mb",
        }
    }

    /// Position in reports: data loss and drops first, because that is what a reader of a
    /// failed CI run looks for; then coverage, rates and latency.
    fn rank(&self) -> u8 {
        match self {
            GateSpec::DroppedSessions { .. } => 0,
            GateSpec::LostEvents => 1,
            GateSpec::DuplicatedEvents => 2,
            GateSpec::ContentMismatches => 3,
            GateSpec::SessionsStartedMin { .. } => 4,
            GateSpec::CompletedMin { .. } => 5,
            GateSpec::ErrorRate { .. } => 6,
            GateSpec::WastedTokenRatio { .. } => 7,
            GateSpec::TtftP99 { .. } => 8,
            GateSpec::ItlP99 { .. } => 9,
            GateSpec::ResumeP99 { .. } => 10,
            GateSpec::ScaleOutReaction { .. } => 11,
            GateSpec::SloRecovery { .. } => 12,
            GateSpec::FailedDeployments { .. } => 13,
            GateSpec::ReplicaPeakRssMb { .. } => 14,
        }
    }
}

/// Gates evaluated in every run unless the scenario configures the same gate.
pub fn default_gates() -> [GateSpec; 4] {
    [
        GateSpec::LostEvents,
        GateSpec::DuplicatedEvents,
        GateSpec::ContentMismatches,
        GateSpec::SessionsStartedMin { min: 1 },
    ]
}

/// Evaluates `specs` plus [`default_gates`] not already in `specs` against `report`, in a fixed
/// order (see `GateSpec::rank`). `report.gates` is not read. Store the result with
/// `report.gates = evaluate(&specs, &report)`.
pub fn evaluate(specs: &[GateSpec], report: &Report) -> Vec<GateResult> {
    let mut all: Vec<&GateSpec> = specs.iter().collect();
    let defaults = default_gates();
    for default in &defaults {
        if !specs.iter().any(|s| s.name() == default.name()) {
            all.push(default);
        }
    }
    all.sort_by_key(|s| s.rank());
    all.into_iter().map(|s| evaluate_one(s, report)).collect()
}

/// True when the report has at least one gate and every gate passed. A report without gates
/// (hand-written, or from a broken run) is not a pass: CI must see evidence.
pub fn all_passed(report: &Report) -> bool {
    // A halted run stopped because an SLO or error budget broke: it fails whatever the gates
    // say about the part that ran.
    report.halted.is_none() && !report.gates.is_empty() && report.gates.iter().all(|g| g.passed)
}

fn evaluate_one(spec: &GateSpec, report: &Report) -> GateResult {
    let s = &report.sessions;
    let e = &report.events;
    let lat = &report.latency;
    let name = spec.name();
    match spec {
        GateSpec::SessionsStartedMin { min } => at_least(name, s.started, *min, "sessions started"),
        GateSpec::CompletedMin { min } => at_least(name, s.completed, *min, "sessions completed"),
        GateSpec::DroppedSessions { max } => at_most(name, s.dropped, *max, "sessions dropped"),
        GateSpec::LostEvents => at_most(name, e.lost, 0, "events lost"),
        GateSpec::DuplicatedEvents => at_most(name, e.duplicated, 0, "events duplicated"),
        GateSpec::ContentMismatches => at_most(
            name,
            e.content_mismatches,
            0,
            "sessions with a content mismatch",
        ),
        GateSpec::TtftP99 { max } => p99_at_most(name, &lat.ttft_ms, *max, "time to first token"),
        GateSpec::ItlP99 { max } => p99_at_most(name, &lat.itl_ms, *max, "inter-token latency"),
        GateSpec::ResumeP99 { max } if lat.resume_ms.count == 0 && s.interrupted_streams == 0 => {
            GateResult {
                name: name.into(),
                threshold: millis(*max),
                observed: None,
                passed: true,
                unit: "ms".into(),
                message: "no stream was interrupted, nothing needed resuming".into(),
            }
        }
        GateSpec::ResumeP99 { max } => p99_at_most(name, &lat.resume_ms, *max, "resume latency"),
        GateSpec::WastedTokenRatio { max } => ratio_at_most(
            name,
            TokenTotals::ratio(report.tokens.wasted, report.tokens.billed_output),
            *max,
            "of billed output tokens wasted",
            "no output tokens were billed",
        ),
        GateSpec::ErrorRate { max } => ratio_at_most(
            name,
            TokenTotals::ratio(s.failed + s.dropped, s.started),
            *max,
            "of started sessions failed or dropped",
            "no session started",
        ),
        GateSpec::ScaleOutReaction { max } => slowest_reaction(
            name,
            report,
            *max,
            "scale-out reaction (breach → capacity ready)",
            |r| r.ready_s.map(|x| x - r.breach_s),
        ),
        GateSpec::FailedDeployments { max } => match &report.ecs {
            Some(ecs) => at_most(
                name,
                ecs.deployments
                    .iter()
                    .filter(|d| d.rollout_state.as_deref() == Some("FAILED"))
                    .count() as u64,
                *max,
                "ECS deployments that ended FAILED",
            ),
            None => GateResult {
                name: name.into(),
                threshold: *max as f64,
                observed: None,
                passed: true,
                unit: "count".into(),
                message: "not an ECS run: no ECS deployment to fail".into(),
            },
        },
        GateSpec::ReplicaPeakRssMb { max_mb } => peak_rss(name, report, *max_mb),
        GateSpec::SloRecovery { max } => slowest_reaction(
            name,
            report,
            *max,
            "SLO recovery (breach → TTFT and ITL p99 back within their gates)",
            |r| r.slo_recovered_s.map(|x| x - r.breach_s),
        ),
    }
}

/// The slowest of the autoscaler's reactions by `measure` (seconds), against `max`.
fn slowest_reaction(
    name: &str,
    report: &Report,
    max: Duration,
    what: &str,
    measure: impl Fn(&crate::model::ScaleReaction) -> Option<f64>,
) -> GateResult {
    let threshold = millis(max);
    let reactions = report
        .autoscaling
        .as_ref()
        .map_or(&[][..], |a| a.reactions.as_slice());
    let (observed, passed, message) = if reactions.is_empty() {
        (
            None,
            true,
            format!("no scale-out happened; no {what} to judge"),
        )
    } else if let Some(worst) = reactions
        .iter()
        .map(|r| measure(r).map(|s| s * 1000.0))
        .try_fold(0.0f64, |acc, v| v.map(|v| acc.max(v)))
    {
        let verdict = if worst <= threshold { "within" } else { "over" };
        (
            Some(worst),
            worst <= threshold,
            format!(
                "slowest {what}: {worst:.0} ms over {} scale-outs, {verdict} the {threshold:.0} ms limit (wall clock)",
                reactions.len()
            ),
        )
    } else {
        (
            None,
            false,
            format!("a scale-out never completed its {what}"),
        )
    };
    GateResult {
        name: name.into(),
        threshold,
        observed,
        passed,
        unit: "ms".into(),
        message,
    }
}

/// Bounded memory: the largest replica peak RSS of the run against `max_mb`. An unread
/// value fails (no vacuous pass): the gate asks for evidence the run could not give.
fn peak_rss(name: &str, report: &Report, max_mb: u64) -> GateResult {
    let (observed, passed, message) = match report.replica_peak_rss_mb {
        Some(mb) => {
            let replicas = report
                .replicas
                .iter()
                .filter(|r| r.peak_rss_mb.is_some())
                .count();
            let verdict = if mb <= max_mb { "within" } else { "over" };
            (
                Some(mb as f64),
                mb <= max_mb,
                format!(
                    "largest replica peak RSS {mb} MiB over {replicas} replicas, {verdict} the {max_mb} MiB limit"
                ),
            )
        }
        None => (
            None,
            false,
            "no replica's memory was read (it needs a local target on Linux)".to_string(),
        ),
    };
    GateResult {
        name: name.into(),
        threshold: max_mb as f64,
        observed,
        passed,
        unit: "MiB".into(),
        message,
    }
}

fn at_most(name: &str, observed: u64, max: u64, what: &str) -> GateResult {
    GateResult {
        name: name.into(),
        threshold: max as f64,
        observed: Some(observed as f64),
        passed: observed <= max,
        unit: "count".into(),
        message: format!("{what}: {observed}, at most {max} allowed"),
    }
}

fn at_least(name: &str, observed: u64, min: u64, what: &str) -> GateResult {
    GateResult {
        name: name.into(),
        threshold: min as f64,
        observed: Some(observed as f64),
        passed: observed >= min,
        unit: "count".into(),
        message: format!("{what}: {observed}, at least {min} required"),
    }
}

fn p99_at_most(name: &str, summary: &LatencySummary, max: Duration, what: &str) -> GateResult {
    let threshold = millis(max);
    let (observed, passed, message) = if summary.count == 0 {
        (None, false, format!("no {what} was measured"))
    } else if !summary.p99.is_finite() {
        (None, false, format!("{what} p99 is not a number"))
    } else {
        let p99 = summary.p99;
        let verdict = if p99 <= threshold { "within" } else { "over" };
        (
            Some(p99),
            p99 <= threshold,
            format!(
                "{what} p99 {p99:.1} ms over {} samples, {verdict} the {threshold:.1} ms limit",
                summary.count
            ),
        )
    };
    GateResult {
        name: name.into(),
        threshold,
        observed,
        passed,
        unit: "ms".into(),
        message,
    }
}

fn ratio_at_most(
    name: &str,
    observed: Option<f64>,
    max: Fraction,
    what: &str,
    undefined_because: &str,
) -> GateResult {
    let threshold = max.get();
    let (observed, passed, message) = match observed {
        Some(r) if r.is_finite() => (
            Some(r),
            r <= threshold,
            format!(
                "{:.2}% {what}, at most {:.2}% allowed",
                r * 100.0,
                threshold * 100.0
            ),
        ),
        _ => (
            None,
            false,
            format!("{undefined_because}, so the ratio is undefined"),
        ),
    };
    GateResult {
        name: name.into(),
        threshold,
        observed,
        passed,
        unit: "ratio".into(),
        message,
    }
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[cfg(test)]
#[path = "gates_tests.rs"]
mod tests;
