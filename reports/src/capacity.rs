//! The capacity model: what `dropzero capacity` writes to `capacity.json` — the per-level
//! curve of one replica under rising load, the knee, and the autoscaling numbers derived
//! from it. Rendered by `render/capacity.rs` (Markdown and JUnit) and [`render_capacity_json`].
//!
//! Like [`crate::Report`], this is data only: the harness measures and decides, this module
//! stores and renders. Units live in field names; latencies are real time (never scaled).
//! The committed JSON Schema is `reports/schema/capacity.schema.json`.

use std::io::Write;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::ReportError;
use crate::model::finite;

/// The version of the `capacity.json` format this crate writes and reads.
pub const CAPACITY_SCHEMA_VERSION: &str = "1";

/// The committed JSON Schema of `capacity.json`.
pub const CAPACITY_SCHEMA: &str = include_str!("../schema/capacity.schema.json");

/// Marker for `schema_version`: always [`CAPACITY_SCHEMA_VERSION`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CapacitySchemaVersion;

impl Serialize for CapacitySchemaVersion {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(CAPACITY_SCHEMA_VERSION)
    }
}

impl<'de> Deserialize<'de> for CapacitySchemaVersion {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let found = String::deserialize(deserializer)?;
        if found == CAPACITY_SCHEMA_VERSION {
            Ok(CapacitySchemaVersion)
        } else {
            Err(serde::de::Error::custom(format!(
                "unsupported schema_version {found:?}, this build reads {CAPACITY_SCHEMA_VERSION:?}"
            )))
        }
    }
}

/// One capacity sweep of one replica.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CapacityReport {
    pub schema_version: CapacitySchemaVersion,
    pub tool_version: String,
    pub run_id: String,
    /// RFC 3339.
    pub started_at: String,
    /// RFC 3339.
    pub finished_at: String,
    pub scenario: String,
    pub scenario_file: String,
    pub seed: u64,
    pub time_scale: f64,
    /// `resilient` or `naive`.
    pub mode: String,
    /// Real-world length of each step (before `time_scale`).
    #[serde(serialize_with = "finite::f64")]
    pub step_duration_s: f64,
    /// Mean session length of the scenario's mix, real-world seconds: Little's law's `W`.
    #[serde(serialize_with = "finite::f64")]
    pub mean_session_s: f64,
    pub slo: Slo,
    /// In step order; the sweep stops at the first level outside the SLO.
    pub levels: Vec<LevelResult>,
    /// The highest level within the SLO (`None` when even the lowest broke it).
    pub knee: Option<u64>,
    pub recommendation: Option<Recommendation>,
    /// True when Ctrl-C cut the sweep short: the curve covers the steps that ran.
    pub interrupted: bool,
    /// Harness warnings (e.g. sessions cancelled at the end of a step).
    pub errors: Vec<String>,
}

/// The limits a level must stay within.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Slo {
    #[serde(serialize_with = "finite::opt_f64")]
    pub ttft_p99_ms: Option<f64>,
    #[serde(serialize_with = "finite::opt_f64")]
    pub itl_p99_ms: Option<f64>,
    pub max_rss_mb: Option<u64>,
}

/// One step: one replica held at about `level` concurrent sessions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LevelResult {
    /// Concurrent sessions asked for (Little's law: `rate × mean session length`).
    pub level: u64,
    /// Sessions per real-world second the open model arrived at.
    #[serde(serialize_with = "finite::f64")]
    pub arrival_rate_per_s: f64,
    /// Mean of the 1 s timeline's active sessions after the first mean session length.
    #[serde(serialize_with = "finite::f64")]
    pub achieved_concurrency: f64,
    pub sessions: u64,
    pub completed: u64,
    pub dropped: u64,
    pub failed: u64,
    #[serde(serialize_with = "finite::f64")]
    pub ttft_p50_ms: f64,
    #[serde(serialize_with = "finite::f64")]
    pub ttft_p99_ms: f64,
    #[serde(serialize_with = "finite::f64")]
    pub itl_p50_ms: f64,
    #[serde(serialize_with = "finite::f64")]
    pub itl_p99_ms: f64,
    /// Peak VmRSS of the replica during the step (`None` when it could not be read).
    pub peak_rss_mb: Option<u64>,
    pub within_slo: bool,
    /// Why the level is outside the SLO, one reason per broken limit (empty when within).
    pub violations: Vec<String>,
}

/// What to configure, derived from the knee.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Recommendation {
    /// The fraction of the knee to run at (`--headroom`).
    #[serde(serialize_with = "finite::f64")]
    pub headroom: f64,
    /// `floor(knee × headroom)`, at least 1: `target_value` of a target-tracking policy on
    /// average active sessions per task.
    pub target_value: u64,
    /// Time from load crossing the target to new tasks serving (`--scale-out-lag`).
    #[serde(serialize_with = "finite::f64")]
    pub scale_out_lag_s: f64,
    /// Present when `--peak-rate` was given.
    pub peak: Option<PeakPlan>,
}

/// Tasks for a peak arrival rate (Little's law), and for a jump to it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PeakPlan {
    /// Sessions per real-world second at the peak.
    #[serde(serialize_with = "finite::f64")]
    pub peak_rate_per_s: f64,
    /// Sessions per second before a sudden jump to the peak (`--base-rate`, default 0).
    #[serde(serialize_with = "finite::f64")]
    pub base_rate_per_s: f64,
    /// `peak_rate × mean session length`.
    #[serde(serialize_with = "finite::f64")]
    pub concurrent_sessions_at_peak: f64,
    /// `ceil(concurrent sessions at peak / target_value)`.
    pub tasks_at_peak: u64,
    /// Tasks that must already run when the load jumps from base to peak so that the
    /// sessions arriving during the scale-out lag fit under the knee (see the harness's
    /// `capacity::plan::tasks_ahead_of_jump`); `None` when the headroom leaves no room.
    pub tasks_ahead_of_jump: Option<u64>,
}

/// Writes `capacity.json` (pretty, trailing newline).
pub fn render_capacity_json(
    report: &CapacityReport,
    out: &mut impl Write,
) -> Result<(), ReportError> {
    crate::render::json::write_pretty(report, &report.run_id, out)
}

/// Reads a `capacity.json` of this schema version.
pub fn parse_capacity_json(text: &str) -> Result<CapacityReport, ReportError> {
    serde_json::from_str(text).map_err(ReportError::Parse)
}
