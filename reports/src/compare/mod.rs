//! `dropzero compare`: two [`Report`]s in, a [`Comparison`] out — per metric base /
//! candidate / Δ / Δ% and a verdict, and every gate's pass/fail in both runs. Pure; the
//! renderers are in `render/compare.rs`, the command in the harness's `cli.rs`.
//!
//! # Verdicts
//! A metric's change is `same` when it is within its noise threshold (see [`metrics`]),
//! otherwise `better` or `worse` by its [`Direction`]. A worsening of a zero-tolerance
//! metric (dropped sessions, lost or duplicated events, content mismatches) is a
//! `regression`, and so is a gate that passed in the base and fails in the candidate. A
//! metric one run could not measure (no samples) is `same` with no Δ: absence is not a
//! change we can judge. `--fail-on-regression` exits 1 when [`Comparison::regressions`] > 0.
//!
//! # Comparable runs
//! Two runs compare only when they ran the same scenario (name), against the same kind of
//! target, with the same seed: otherwise the session mix and the fault timeline differ and
//! every delta is meaningless. [`mismatches`] says why two runs are not comparable; the
//! caller refuses them unless forced, and a forced comparison carries the mismatches.

pub mod metrics;
#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

pub use metrics::{Direction, METRICS, Metric};

use crate::model::{Report, finite};

/// The version of the `compare.json` format.
pub const COMPARE_SCHEMA_VERSION: &str = "1";

/// A comparison of a candidate run against a base run, as written to `compare.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    pub schema_version: String,
    pub base: RunRef,
    pub candidate: RunRef,
    /// Why the runs are not comparable; empty unless the comparison was forced.
    pub mismatches: Vec<String>,
    /// The `--noise` override of every relative threshold, percent.
    #[serde(serialize_with = "finite::opt_f64")]
    pub noise_pct: Option<f64>,
    pub gates: Vec<GateChange>,
    pub metrics: Vec<MetricChange>,
    /// Metrics and gates whose verdict is `regression`.
    pub regressions: u64,
}

/// Which run a side of the comparison is.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunRef {
    pub run_id: String,
    pub scenario: String,
    pub target_kind: String,
    pub mode: Option<String>,
    pub seed: u64,
    pub started_at: String,
    /// Where the harness read it from (a run directory or a report.json); set by the caller.
    pub source: String,
}

impl RunRef {
    pub fn of(r: &Report) -> Self {
        RunRef {
            run_id: r.run_id.clone(),
            scenario: r.scenario.name.clone(),
            target_kind: r.target.kind.clone(),
            mode: r.target.mode.clone(),
            seed: r.scenario.seed,
            started_at: r.started_at.clone(),
            source: String::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Better,
    Worse,
    Same,
    Regression,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Better => "better",
            Verdict::Worse => "worse",
            Verdict::Same => "same",
            Verdict::Regression => "regression",
        }
    }
}

/// One metric in both runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricChange {
    pub name: String,
    pub unit: String,
    pub direction: Direction,
    #[serde(serialize_with = "finite::opt_f64")]
    pub base: Option<f64>,
    #[serde(serialize_with = "finite::opt_f64")]
    pub candidate: Option<f64>,
    /// `candidate - base`.
    #[serde(serialize_with = "finite::opt_f64")]
    pub delta: Option<f64>,
    /// `delta / base × 100`; `None` when the base is 0.
    #[serde(serialize_with = "finite::opt_f64")]
    pub delta_pct: Option<f64>,
    /// The change below which this metric is noise, in `unit` (from the base value).
    #[serde(serialize_with = "finite::f64")]
    pub noise: f64,
    pub verdict: Verdict,
}

/// One gate in both runs (`None`: the run did not evaluate it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateChange {
    pub name: String,
    pub base_passed: Option<bool>,
    pub candidate_passed: Option<bool>,
    pub verdict: Verdict,
}

/// Why `base` and `candidate` are not comparable; empty when they are.
pub fn mismatches(base: &Report, candidate: &Report) -> Vec<String> {
    let mut out = Vec::new();
    let (b, c) = (&base.scenario, &candidate.scenario);
    if b.name != c.name {
        out.push(format!("scenario {:?} vs {:?}", b.name, c.name));
    }
    if base.target.kind != candidate.target.kind {
        out.push(format!(
            "target kind {:?} vs {:?}",
            base.target.kind, candidate.target.kind
        ));
    }
    if b.seed != c.seed {
        out.push(format!("seed {} vs {}", b.seed, c.seed));
    }
    out
}

/// Compares `candidate` against `base`. `noise_pct` overrides every relative threshold.
/// Does not refuse incomparable runs (the caller does); it records their mismatches.
pub fn compare(base: &Report, candidate: &Report, noise_pct: Option<f64>) -> Comparison {
    let metrics: Vec<MetricChange> = METRICS
        .iter()
        .map(|m| change(m, base, candidate, noise_pct))
        .collect();
    let gates = gate_changes(base, candidate);
    let regressions = metrics
        .iter()
        .map(|m| m.verdict)
        .chain(gates.iter().map(|g| g.verdict))
        .filter(|v| *v == Verdict::Regression)
        .count() as u64;
    Comparison {
        schema_version: COMPARE_SCHEMA_VERSION.into(),
        base: RunRef::of(base),
        candidate: RunRef::of(candidate),
        mismatches: mismatches(base, candidate),
        noise_pct,
        gates,
        metrics,
        regressions,
    }
}

fn change(m: &Metric, base: &Report, candidate: &Report, noise_pct: Option<f64>) -> MetricChange {
    let (b, c) = ((m.value)(base), (m.value)(candidate));
    let b = b.filter(|v| v.is_finite());
    let c = c.filter(|v| v.is_finite());
    let pct = if m.zero_tolerance {
        0.0
    } else {
        noise_pct.unwrap_or(m.noise_pct)
    };
    let noise = b.map_or(m.noise_abs, |b| (b.abs() * pct / 100.0).max(m.noise_abs));
    let delta = b.zip(c).map(|(b, c)| c - b);
    let verdict = match delta {
        Some(d) if d.abs() > noise => {
            let improved = match m.direction {
                Direction::HigherIsBetter => d > 0.0,
                Direction::LowerIsBetter => d < 0.0,
            };
            match (improved, m.zero_tolerance) {
                (true, _) => Verdict::Better,
                (false, true) => Verdict::Regression,
                (false, false) => Verdict::Worse,
            }
        }
        _ => Verdict::Same,
    };
    MetricChange {
        name: m.name.into(),
        unit: m.unit.into(),
        direction: m.direction,
        base: b,
        candidate: c,
        delta,
        delta_pct: b
            .zip(delta)
            .and_then(|(b, d)| (b != 0.0).then(|| d / b.abs() * 100.0)),
        noise,
        verdict,
    }
}

/// Every gate either run evaluated, in the base's order, then the candidate's new ones.
fn gate_changes(base: &Report, candidate: &Report) -> Vec<GateChange> {
    let mut names: Vec<&str> = base.gates.iter().map(|g| g.name.as_str()).collect();
    for g in &candidate.gates {
        if !names.contains(&g.name.as_str()) {
            names.push(&g.name);
        }
    }
    let passed = |r: &Report, name: &str| r.gates.iter().find(|g| g.name == name).map(|g| g.passed);
    names
        .into_iter()
        .map(|name| {
            let (b, c) = (passed(base, name), passed(candidate, name));
            let verdict = match (b, c) {
                (Some(true), Some(false)) => Verdict::Regression,
                (Some(false), Some(true)) => Verdict::Better,
                // A gate only the candidate has and fails is worse, not a regression: the
                // base never held it.
                (None, Some(false)) => Verdict::Worse,
                _ => Verdict::Same,
            };
            GateChange {
                name: name.into(),
                base_passed: b,
                candidate_passed: c,
                verdict,
            }
        })
        .collect()
}
