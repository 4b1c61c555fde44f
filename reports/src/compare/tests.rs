//! The comparison rules on small hand-built reports: noise, direction, zero tolerance,
//! gates going pass → fail, comparability.

use super::*;
use crate::model::{GateResult, LatencySummary};

fn run(dropped: u64, completed: u64, ttft_p99: f64) -> Report {
    let mut r = Report::default();
    r.scenario.name = "rolling-deploy".into();
    r.scenario.seed = 7;
    r.target.kind = "local".into();
    r.load.duration_s = 60.0;
    r.sessions.dropped = dropped;
    r.sessions.completed = completed;
    r.latency.ttft_ms = LatencySummary {
        count: 100,
        p50: ttft_p99 / 2.0,
        p99: ttft_p99,
        ..LatencySummary::default()
    };
    r
}

fn gate(name: &str, passed: bool) -> GateResult {
    GateResult {
        name: name.into(),
        passed,
        ..GateResult::default()
    }
}

fn verdict(c: &Comparison, name: &str) -> Verdict {
    c.metrics
        .iter()
        .find(|m| m.name == name)
        .map(|m| m.verdict)
        .unwrap_or_else(|| panic!("no metric {name}"))
}

#[test]
fn identical_runs_are_the_same_everywhere() {
    let mut r = run(0, 400, 900.0);
    r.gates = vec![gate("dropped_sessions", true), gate("ttft_p99", false)];
    let c = compare(&r, &r, None);
    assert!(
        c.metrics.iter().all(|m| m.verdict == Verdict::Same),
        "{c:#?}"
    );
    assert!(c.gates.iter().all(|g| g.verdict == Verdict::Same));
    assert_eq!(c.regressions, 0);
    assert!(c.mismatches.is_empty());
}

#[test]
fn verdicts_follow_direction_noise_and_zero_tolerance() {
    // (metric, base run, candidate run, noise override, expected)
    let check = |name: &str, base: Report, cand: Report, noise: Option<f64>, want: Verdict| {
        let c = compare(&base, &cand, noise);
        assert_eq!(verdict(&c, name), want, "{name}: {:#?}", c.metrics);
    };
    // Latency: 10 % noise; +5 % is noise, +20 % is worse, -20 % better.
    check(
        "ttft_p99",
        run(0, 400, 1000.0),
        run(0, 400, 1050.0),
        None,
        Verdict::Same,
    );
    check(
        "ttft_p99",
        run(0, 400, 1000.0),
        run(0, 400, 1200.0),
        None,
        Verdict::Worse,
    );
    check(
        "ttft_p99",
        run(0, 400, 1000.0),
        run(0, 400, 800.0),
        None,
        Verdict::Better,
    );
    // --noise 25 makes +20 % noise.
    check(
        "ttft_p99",
        run(0, 400, 1000.0),
        run(0, 400, 1200.0),
        Some(25.0),
        Verdict::Same,
    );
    // The absolute floor: 10 ms → 14 ms is +40 % but within 5 ms.
    check(
        "ttft_p99",
        run(0, 400, 10.0),
        run(0, 400, 14.0),
        None,
        Verdict::Same,
    );
    // Higher is better for completions.
    check(
        "completed_sessions",
        run(0, 400, 1.0),
        run(0, 300, 1.0),
        None,
        Verdict::Worse,
    );
    check(
        "completed_sessions",
        run(0, 300, 1.0),
        run(0, 400, 1.0),
        None,
        Verdict::Better,
    );
    check(
        "completed_sessions",
        run(0, 400, 1.0),
        run(0, 401, 1.0),
        None,
        Verdict::Same,
    );
    // One more dropped session is a regression, whatever --noise says; one fewer is better.
    check(
        "dropped_sessions",
        run(0, 400, 1.0),
        run(1, 400, 1.0),
        Some(500.0),
        Verdict::Regression,
    );
    check(
        "dropped_sessions",
        run(3, 400, 1.0),
        run(2, 400, 1.0),
        None,
        Verdict::Better,
    );
}

#[test]
fn deltas_and_percentages() {
    let c = compare(&run(0, 400, 1000.0), &run(2, 300, 1500.0), None);
    let m = |name: &str| c.metrics.iter().find(|m| m.name == name).expect("metric");
    let ttft = m("ttft_p99");
    assert_eq!((ttft.base, ttft.candidate), (Some(1000.0), Some(1500.0)));
    assert_eq!((ttft.delta, ttft.delta_pct), (Some(500.0), Some(50.0)));
    assert_eq!(ttft.noise, 100.0);
    let dropped = m("dropped_sessions");
    assert_eq!(
        (dropped.delta, dropped.delta_pct),
        (Some(2.0), None),
        "base 0: no Δ%"
    );
    assert_eq!(c.regressions, 1);
}

#[test]
fn unmeasured_metrics_have_no_delta() {
    let mut cand = run(0, 400, 1000.0);
    cand.latency.ttft_ms.count = 0;
    let c = compare(&run(0, 400, 1000.0), &cand, None);
    let ttft = c
        .metrics
        .iter()
        .find(|m| m.name == "ttft_p99")
        .expect("metric");
    assert_eq!(
        (ttft.candidate, ttft.delta, ttft.verdict),
        (None, None, Verdict::Same)
    );
}

#[test]
fn a_gate_going_from_pass_to_fail_is_a_regression() {
    let mut base = run(0, 400, 1000.0);
    let mut cand = base.clone();
    base.gates = vec![gate("ttft_p99", true), gate("itl_p99", false)];
    cand.gates = vec![
        gate("ttft_p99", false),
        gate("itl_p99", true),
        gate("resume_p99", false),
    ];
    let c = compare(&base, &cand, None);
    assert_eq!(c.gates[0].name, "ttft_p99");
    assert_eq!(c.gates[0].verdict, Verdict::Regression);
    assert_eq!(c.gates[1].verdict, Verdict::Better);
    assert_eq!(c.gates[2].verdict, Verdict::Worse);
    assert_eq!(c.gates[2].base_passed, None);
    assert_eq!(c.regressions, 1);
}

#[test]
fn runs_of_other_scenarios_targets_or_seeds_are_not_comparable() {
    let base = run(0, 400, 1000.0);
    let mut other = base.clone();
    other.scenario.name = "task-kill".into();
    other.target.kind = "ecs".into();
    other.scenario.seed = 8;
    let why = mismatches(&base, &other);
    assert_eq!(
        why,
        [
            "scenario \"rolling-deploy\" vs \"task-kill\"",
            "target kind \"local\" vs \"ecs\"",
            "seed 7 vs 8"
        ]
    );
    assert_eq!(compare(&base, &other, None).mismatches, why);
}

#[test]
fn replica_memory_is_compared_and_more_is_worse() {
    let with_rss = |mb: Option<u64>| {
        let mut r = run(0, 400, 1000.0);
        r.replica_peak_rss_mb = mb;
        r
    };
    let c = compare(&with_rss(Some(30)), &with_rss(Some(33)), None);
    assert_eq!(
        verdict(&c, "replica_peak_rss_mb"),
        Verdict::Same,
        "3 MiB is noise"
    );
    let c = compare(&with_rss(Some(30)), &with_rss(Some(60)), None);
    assert_eq!(verdict(&c, "replica_peak_rss_mb"), Verdict::Worse);
    assert_eq!(c.regressions, 0, "only drops, data loss and gates regress");
    // A target whose replicas the harness cannot read (url, ECS) has nothing to compare.
    let c = compare(&with_rss(None), &with_rss(None), None);
    let m = c
        .metrics
        .iter()
        .find(|m| m.name == "replica_peak_rss_mb")
        .expect("metric");
    assert_eq!((m.base, m.delta), (None, None));
}
