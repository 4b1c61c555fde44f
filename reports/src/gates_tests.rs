//! Data-driven tests for gate evaluation: one `check(spec, adjust, expected)` per row.

use std::time::Duration;

use super::*;
use crate::model::{LatencySummary, Report};

/// A small run where every gate with a sane threshold passes.
fn healthy() -> Report {
    let mut r = Report::default();
    r.sessions.started = 10;
    r.sessions.completed = 10;
    r.events.received = 1_000;
    r.tokens.billed_output = 1_000;
    r.tokens.delivered = 1_000;
    r.latency.ttft_ms = summary(10, 800.0);
    r.latency.itl_ms = summary(990, 40.0);
    r
}

fn summary(count: u64, p99: f64) -> LatencySummary {
    LatencySummary {
        count,
        p50: p99 / 2.0,
        p90: p99 * 0.8,
        p99,
        max: p99 * 1.5,
        mean: p99 / 2.0,
        spectrum: Vec::new(),
    }
}

fn frac(v: f64) -> Fraction {
    Fraction::new(v).expect("test fractions are valid")
}

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

/// Evaluates `spec` alone against `healthy()` changed by `adjust`.
#[track_caller]
fn check(spec: GateSpec, adjust: impl Fn(&mut Report), expected: bool) -> GateResult {
    let mut report = healthy();
    adjust(&mut report);
    let result = evaluate_one(&spec, &report);
    assert_eq!(result.passed, expected, "{spec:?}: {result:?}");
    assert_eq!(result.name, spec.name());
    assert!(!result.message.is_empty());
    result
}

#[test]
fn count_gates() {
    let none = |_: &mut Report| {};
    check(GateSpec::DroppedSessions { max: 0 }, none, true);
    check(
        GateSpec::DroppedSessions { max: 0 },
        |r| r.sessions.dropped = 1,
        false,
    );
    check(
        GateSpec::DroppedSessions { max: 2 },
        |r| r.sessions.dropped = 2,
        true,
    );
    check(GateSpec::LostEvents, none, true);
    check(GateSpec::LostEvents, |r| r.events.lost = 1, false);
    check(
        GateSpec::DuplicatedEvents,
        |r| r.events.duplicated = 1,
        false,
    );
    check(
        GateSpec::ContentMismatches,
        |r| r.events.content_mismatches = 1,
        false,
    );
    check(GateSpec::SessionsStartedMin { min: 10 }, none, true);
    check(GateSpec::SessionsStartedMin { min: 11 }, none, false);
    check(GateSpec::CompletedMin { min: 10 }, none, true);
    check(
        GateSpec::CompletedMin { min: 10 },
        |r| r.sessions.completed = 9,
        false,
    );
}

#[test]
fn latency_gates() {
    let r = check(GateSpec::TtftP99 { max: ms(800) }, |_| {}, true);
    assert_eq!(
        (r.threshold, r.observed, r.unit.as_str()),
        (800.0, Some(800.0), "ms")
    );
    check(GateSpec::TtftP99 { max: ms(799) }, |_| {}, false);
    check(GateSpec::ItlP99 { max: ms(50) }, |_| {}, true);
    check(GateSpec::ItlP99 { max: ms(30) }, |_| {}, false);
    check(
        GateSpec::ResumeP99 { max: ms(500) },
        |r| {
            r.sessions.interrupted_streams = 3;
            r.latency.resume_ms = summary(3, 450.0);
        },
        true,
    );
    check(
        GateSpec::ResumeP99 { max: ms(400) },
        |r| {
            r.sessions.interrupted_streams = 3;
            r.latency.resume_ms = summary(3, 450.0);
        },
        false,
    );
}

#[test]
fn latency_without_samples_fails_except_resume_without_interruptions() {
    let r = check(
        GateSpec::TtftP99 { max: ms(5_000) },
        |r| r.latency.ttft_ms = LatencySummary::default(),
        false,
    );
    assert_eq!(r.observed, None);
    check(
        GateSpec::ItlP99 { max: ms(5_000) },
        |r| r.latency.itl_ms.count = 0,
        false,
    );
    // Nothing was interrupted: nothing to resume, the best case.
    let r = check(GateSpec::ResumeP99 { max: ms(1) }, |_| {}, true);
    assert_eq!(r.observed, None);
    // Streams were interrupted yet no resume was measured: every one of them was lost.
    check(
        GateSpec::ResumeP99 { max: ms(5_000) },
        |r| r.sessions.interrupted_streams = 2,
        false,
    );
}

#[test]
fn nan_observations_fail() {
    check(
        GateSpec::TtftP99 { max: ms(5_000) },
        |r| r.latency.ttft_ms.p99 = f64::NAN,
        false,
    );
    check(
        GateSpec::ItlP99 { max: ms(5_000) },
        |r| r.latency.itl_ms.p99 = f64::INFINITY,
        false,
    );
    assert!(Fraction::new(f64::NAN).is_err());
    assert!(
        Fraction::new(2.0).is_err(),
        "2 means 200%, almost surely a typo for 0.02"
    );
    assert!(Fraction::new(-0.1).is_err());
    assert!(Fraction::new(0.0).is_ok() && Fraction::new(1.0).is_ok());
}

#[test]
fn ratio_gates() {
    let r = check(
        GateSpec::WastedTokenRatio { max: frac(0.02) },
        |r| r.tokens.wasted = 20,
        true,
    );
    assert_eq!(r.observed, Some(0.02));
    check(
        GateSpec::WastedTokenRatio { max: frac(0.02) },
        |r| r.tokens.wasted = 21,
        false,
    );
    check(
        GateSpec::ErrorRate { max: frac(0.1) },
        |r| r.sessions.failed = 1,
        true,
    );
    check(
        GateSpec::ErrorRate { max: frac(0.1) },
        |r| {
            r.sessions.failed = 1;
            r.sessions.dropped = 1;
        },
        false,
    );
    // Cancelled and over-budget sessions are outcomes the scenario asked for, not errors.
    check(
        GateSpec::ErrorRate { max: frac(0.0) },
        |r| {
            r.sessions.cancelled = 5;
            r.sessions.budget_exceeded = 5;
        },
        true,
    );
}

#[test]
fn zero_denominators_fail_instead_of_passing_vacuously() {
    let r = check(
        GateSpec::ErrorRate { max: frac(1.0) },
        |r| r.sessions = Default::default(),
        false,
    );
    assert_eq!(r.observed, None);
    check(
        GateSpec::WastedTokenRatio { max: frac(1.0) },
        |r| r.tokens.billed_output = 0,
        false,
    );
}

#[test]
fn a_run_that_started_nothing_fails_even_with_no_gates_configured() {
    let results = evaluate(&[], &Report::default());
    let names: Vec<_> = results.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "lost_events",
            "duplicated_events",
            "content_mismatches",
            "sessions_started_min"
        ]
    );
    let failed: Vec<_> = results
        .iter()
        .filter(|g| !g.passed)
        .map(|g| g.name.as_str())
        .collect();
    assert_eq!(failed, ["sessions_started_min"]);
}

#[test]
fn configured_gates_replace_defaults_and_come_out_in_a_fixed_order() {
    let specs = [
        GateSpec::TtftP99 { max: ms(5_000) },
        GateSpec::SessionsStartedMin { min: 5 },
        GateSpec::DroppedSessions { max: 0 },
        GateSpec::LostEvents,
    ];
    let results = evaluate(&specs, &healthy());
    let names: Vec<_> = results
        .iter()
        .map(|g| (g.name.as_str(), g.threshold))
        .collect();
    assert_eq!(
        names,
        [
            ("dropped_sessions", 0.0),
            ("lost_events", 0.0),
            ("duplicated_events", 0.0),
            ("content_mismatches", 0.0),
            ("sessions_started_min", 5.0),
            ("ttft_p99", 5_000.0),
        ]
    );
}

#[test]
fn all_passed_needs_evidence() {
    let mut report = healthy();
    assert!(!all_passed(&report), "no gates is not a pass");
    report.gates = evaluate(&[GateSpec::DroppedSessions { max: 0 }], &report);
    assert!(all_passed(&report));
    report.sessions.dropped = 1;
    report.gates = evaluate(&[GateSpec::DroppedSessions { max: 0 }], &report);
    assert!(!all_passed(&report));
}

#[test]
fn autoscaling_reaction_gates() {
    use crate::model::{AutoscalingReport, ScaleReaction};
    let with = |reactions: Vec<ScaleReaction>| {
        move |r: &mut Report| {
            r.autoscaling = Some(AutoscalingReport {
                reactions: reactions.clone(),
                ..AutoscalingReport::default()
            })
        }
    };
    let reaction = |breach: f64, ready: Option<f64>, recovered: Option<f64>| ScaleReaction {
        breach_s: breach,
        decision_s: breach + 1.0,
        ready_s: ready,
        slo_recovered_s: recovered,
        seconds_over_slo_during_lag: 0,
    };
    let out = GateSpec::ScaleOutReaction { max: ms(5_000) };
    let slo = GateSpec::SloRecovery { max: ms(8_000) };
    // No scale-out at all: nothing to judge.
    check(out.clone(), |_| {}, true);
    check(slo.clone(), |_| {}, true);
    // The slowest of several reactions decides.
    let fast_slow = vec![
        reaction(10.0, Some(12.0), Some(13.0)),
        reaction(50.0, Some(54.5), Some(60.0)),
    ];
    let g = check(out.clone(), with(fast_slow.clone()), true);
    assert_eq!(g.observed, Some(4_500.0));
    let g = check(slo.clone(), with(fast_slow), false);
    assert_eq!(g.observed, Some(10_000.0));
    // Capacity that never got ready, an SLO that never recovered: fail without a number.
    let g = check(out.clone(), with(vec![reaction(10.0, None, None)]), false);
    assert_eq!(g.observed, None);
    check(
        slo.clone(),
        with(vec![reaction(10.0, Some(11.0), None)]),
        false,
    );
}

#[test]
fn failed_deployments_counts_ecs_rollouts_that_ended_failed() {
    use crate::ecs::{EcsDeployment, EcsReport};
    let with = |states: &'static [&'static str]| {
        move |r: &mut Report| {
            let deployments = states
                .iter()
                .map(|s| EcsDeployment {
                    rollout_state: Some((*s).to_string()),
                    ..EcsDeployment::default()
                })
                .collect();
            r.ecs = Some(EcsReport {
                deployments,
                ..EcsReport::default()
            });
        }
    };
    let gate = GateSpec::FailedDeployments { max: 0 };
    let ok = check(gate.clone(), with(&["COMPLETED", "COMPLETED"]), true);
    assert_eq!(ok.observed, Some(0.0));
    let failed = check(gate.clone(), with(&["FAILED", "COMPLETED"]), false);
    assert_eq!(failed.observed, Some(1.0));
    check(
        GateSpec::FailedDeployments { max: 1 },
        with(&["FAILED"]),
        true,
    );
    // A local run has no ECS deployments: nothing to fail, and it says so.
    let local = check(gate, |_| {}, true);
    assert_eq!(local.observed, None);
}

#[test]
fn replica_peak_rss_gate_fails_over_the_limit_and_when_nothing_was_read() {
    let spec = GateSpec::ReplicaPeakRssMb { max_mb: 256 };
    let at = |mb: u64| move |r: &mut Report| r.replica_peak_rss_mb = Some(mb);
    let within = check(spec.clone(), at(256), true);
    assert_eq!(
        (within.observed, within.unit.as_str()),
        (Some(256.0), "MiB")
    );
    check(spec.clone(), at(257), false);
    let unread = check(spec, |r| r.replica_peak_rss_mb = None, false);
    assert_eq!(unread.observed, None);
    assert!(
        unread.message.contains("no replica's memory was read"),
        "{unread:?}"
    );
}
