//! The report model: every record that goes into `report.json`, and nothing else.
//!
//! These are the only types in dropzero-reports that derive `Serialize`. The harness fills a
//! [`Report`] from its histograms, counters and fault log, asks [`crate::evaluate`] for the
//! gate results, and hands the finished value to the renderers. This module does not compute
//! anything from raw samples (no histograms here) and knows nothing about how a run is driven.
//!
//! Units live in field names (`_ms`, `_s`, `_usd`, `_per_s`); counts are `u64`. Terms follow
//! MISSION.md "Words we use": a *session* ends with one terminal status, a *stream* is one SSE
//! connection, a *dropped* session never saw its terminal event.
//!
//! # Forward compatibility
//! Deserialization deliberately does **not** use `deny_unknown_fields` (unlike scenario files,
//! see CONVENTIONS 3). A report is only ever read back to be re-rendered (`dropzero report
//! <report.json>`); a report written by a newer dropzero with extra, additive fields must still
//! re-render with an older binary. Incompatible changes bump [`SCHEMA_VERSION`], and
//! [`crate::parse_json`] refuses a version it does not know. Required fields stay required: a
//! report missing one is corrupt, not old. The committed JSON Schema, by contrast, is strict
//! (`additionalProperties: false`) so a test catches a model change that forgot the schema.
//!
//! # Floats
//! JSON has no NaN or infinity (serde_json would write `null`, which then fails to read back),
//! so every `f64` field is serialized through [`finite`], which turns a non-finite value into a
//! serialization error naming the value. Quantities that can be undefined are `Option<f64>`.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The version of the `report.json` format this crate writes and reads.
pub const SCHEMA_VERSION: &str = "1";

/// Marker for the `schema_version` field: always serializes as [`SCHEMA_VERSION`] and refuses
/// any other value on read, so a report can neither be written nor read with the wrong one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SchemaVersion;

impl Serialize for SchemaVersion {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(SCHEMA_VERSION)
    }
}

impl<'de> Deserialize<'de> for SchemaVersion {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let found = String::deserialize(deserializer)?;
        if found == SCHEMA_VERSION {
            Ok(SchemaVersion)
        } else {
            Err(serde::de::Error::custom(format!(
                "unsupported schema_version {found:?}, this build reads {SCHEMA_VERSION:?}"
            )))
        }
    }
}

/// One scenario run, as written to `report.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub schema_version: SchemaVersion,
    /// dropzero's own version (`CARGO_PKG_VERSION` of the harness).
    pub tool_version: String,
    pub run_id: String,
    /// RFC 3339, e.g. `2025-01-31T12:00:00Z`.
    pub started_at: String,
    /// RFC 3339.
    pub finished_at: String,
    pub scenario: ScenarioInfo,
    pub target: TargetInfo,
    pub load: LoadInfo,
    /// Filled by [`crate::evaluate`]; rendered first everywhere.
    pub gates: Vec<GateResult>,
    pub sessions: SessionCounts,
    /// Why sessions were dropped (resume refused, session unknown, retries exhausted, ...).
    pub drop_reasons: Vec<ReasonCount>,
    /// Why streams were interrupted (connection reset, idle timeout, replica draining, ...).
    pub interruption_reasons: Vec<ReasonCount>,
    pub events: EventCounts,
    pub tokens: TokenTotals,
    pub latency: Latencies,
    pub faults: Vec<FaultRecord>,
    /// Each `[[faults]]` entry that repeats (`every`, `times`), summed over its repetitions;
    /// its faults are also in `faults`, one record each.
    #[serde(default)]
    pub fault_series: Vec<FaultSeries>,
    /// Every replica the target ran, with its version (local targets).
    #[serde(default)]
    pub replicas: Vec<ReplicaRecord>,
    /// The largest `peak_rss_mb` of any replica of the run, stopped ones included (local
    /// targets on Linux; `None` when no replica's memory could be read). The
    /// `replica_peak_rss_mb` gate reads this.
    #[serde(default)]
    pub replica_peak_rss_mb: Option<u64>,
    /// The same over the replicas still running at the end of the run.
    #[serde(default)]
    pub survivor_peak_rss_mb: Option<u64>,
    /// The emulated target-tracking autoscaler, when the scenario enables it.
    #[serde(default)]
    pub autoscaling: Option<AutoscalingReport>,
    /// What the ECS target saw of its service (ECS targets only).
    #[serde(default)]
    pub ecs: Option<crate::ecs::EcsReport>,
    /// Why the run stopped early, when a `[halt]` condition fired (the run then fails).
    #[serde(default)]
    pub halted: Option<String>,
    /// One point per second of the run.
    pub timeline: Vec<TimelinePoint>,
    /// Harness-side warnings that did not stop the run (a scrape failed, a child was slow to
    /// exit, ...). Not gate input.
    pub errors: Vec<String>,
}

/// The scenario as resolved for this run (after `--seed` / `--time-scale` overrides).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScenarioInfo {
    pub name: String,
    pub description: String,
    pub seed: u64,
    #[serde(serialize_with = "finite::f64")]
    pub time_scale: f64,
    /// Path of the scenario file as given on the command line.
    pub file: String,
}

/// What the run was pointed at.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TargetInfo {
    /// `local`, `url` or `ecs`.
    pub kind: String,
    /// `resilient` or `naive` for the reference runtime; `None` when the harness cannot know
    /// (a URL or ECS target running someone else's runtime).
    pub mode: Option<String>,
    /// Replicas (tasks) at the start of the run.
    pub replicas: u32,
    /// `memory`, `sqlite`, `redis://...`; `None` when unknown.
    pub journal: Option<String>,
}

/// The load shape that was asked for.
///
/// The brief's single `target_users_or_rate` is split in two so that each number carries its
/// unit; exactly one of them is `Some`, matching `model`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LoadInfo {
    /// `closed` (users with think time) or `open` (arrival rate).
    pub model: String,
    /// Peak concurrent users for the closed model.
    pub peak_users: Option<u64>,
    /// Peak arrival rate in sessions per second for the open model.
    #[serde(serialize_with = "finite::opt_f64")]
    pub peak_rate_per_s: Option<f64>,
    /// Planned duration (already multiplied by `time_scale`).
    #[serde(serialize_with = "finite::f64")]
    pub duration_s: f64,
    /// Open model: sessions that started more than the engine's lateness bound after their
    /// scheduled time (the load generator could not keep up). Always 0 for the closed model.
    pub late_starts: u64,
    /// Closed model: what goose, which drove the users, measured. Absent for the open model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goose: Option<GooseInfo>,
}

/// Goose's view of a closed-model run: its users and the HTTP requests of every session
/// (the session engine's own measurements, recorded into goose as each session ended).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GooseInfo {
    /// The most users goose ran at once.
    pub maximum_users: u64,
    /// Users launched over the run.
    pub total_users: u64,
    /// Sessions the users ran (goose transactions).
    pub sessions: u64,
    /// Goose's own HTML report, beside this one; `None` when it was not written.
    pub html_report: Option<String>,
    /// One row per request name, sorted by name.
    pub requests: Vec<GooseRequestRow>,
}

/// One request name as goose aggregated it. Times are to response headers (or the failure).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GooseRequestRow {
    /// `POST` or `GET`.
    pub method: String,
    /// `create session`, `open stream` or `resume stream`.
    pub name: String,
    pub success: u64,
    pub fail: u64,
    #[serde(serialize_with = "finite::f64")]
    pub mean_ms: f64,
    #[serde(serialize_with = "finite::f64")]
    pub p50_ms: f64,
    #[serde(serialize_with = "finite::f64")]
    pub p99_ms: f64,
    #[serde(serialize_with = "finite::f64")]
    pub max_ms: f64,
    /// Status code (as a string, a JSON object key) → requests.
    pub status_codes: std::collections::BTreeMap<String, u64>,
}

/// The verdict of one gate. Produced by [`crate::evaluate`], not by hand.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GateResult {
    /// The scenario key, e.g. `dropped_sessions`, `ttft_p99`.
    pub name: String,
    /// The limit, in `unit`.
    #[serde(serialize_with = "finite::f64")]
    pub threshold: f64,
    /// What was measured, in `unit`; `None` when it could not be measured (no samples, zero
    /// denominator), which always fails the gate.
    #[serde(serialize_with = "finite::opt_f64")]
    pub observed: Option<f64>,
    pub passed: bool,
    /// `count`, `ms`, `ratio` or `MiB`.
    pub unit: String,
    /// One sentence a reader of a CI log understands, e.g. "3 sessions dropped, at most 0
    /// allowed".
    pub message: String,
}

/// Session outcomes (MISSION "session", "resumed session", "dropped session").
///
/// `completed + dropped + failed + cancelled + budget_exceeded == started`: every started
/// session gets exactly one outcome. A session that outlives its deadline is `dropped`
/// ("deadline passed"); one the harness itself stopped (Ctrl-C) is `cancelled`. `resumed` is
/// a subset of `completed`, not an outcome of its own.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionCounts {
    pub started: u64,
    pub completed: u64,
    /// Interrupted at least once, then continued with no loss.
    pub resumed: u64,
    pub dropped: u64,
    pub failed: u64,
    pub cancelled: u64,
    pub budget_exceeded: u64,
    /// Open model: arrivals that could not start on schedule.
    pub not_started: u64,
    /// Streams that ended before their session's terminal event (a session may have several).
    pub interrupted_streams: u64,
}

/// One line of a reason breakdown.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReasonCount {
    pub reason: String,
    pub count: u64,
}

/// Per-session event verification, summed over sessions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventCounts {
    pub received: u64,
    /// Gaps in a session's sequence as the client saw it.
    pub lost: u64,
    /// Repeats in a session's sequence.
    pub duplicated: u64,
    /// Sessions whose `done` digest differs from what the client assembled.
    pub content_mismatches: u64,
}

/// Tokens and money (MISSION "billed", "delivered", "wasted").
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TokenTotals {
    /// From the mock LLM's ledger.
    pub billed_input: u64,
    pub billed_output: u64,
    /// Output tokens that reached a client in sessions that completed.
    pub delivered: u64,
    /// Billed output that never became part of a completed session.
    pub wasted: u64,
    /// Billed input that did not serve a completed session: prompts re-sent after an
    /// interrupted call, and all input of sessions that did not complete.
    #[serde(default)]
    pub wasted_input: u64,
    /// `wasted / billed_output`; `None` when nothing was billed. Use [`TokenTotals::ratio`].
    #[serde(serialize_with = "finite::opt_f64")]
    pub wasted_ratio: Option<f64>,
    #[serde(serialize_with = "finite::f64")]
    pub cost_usd: f64,
    #[serde(serialize_with = "finite::f64")]
    pub wasted_cost_usd: f64,
    /// Largest overshoot past a session's `max_output_tokens` budget among sessions that
    /// ended `budget_exceeded` (`None` when none did or no budget was set).
    #[serde(default)]
    pub budget_overshoot_max_tokens: Option<u64>,
    /// The same past a `max_cost_usd` budget, in USD.
    #[serde(default, serialize_with = "finite::opt_f64")]
    pub budget_overshoot_max_usd: Option<f64>,
    /// LLM calls from the provider's ledger: all, refused or failed (429/529/5xx), and
    /// responses cut mid-stream. `None` without a ledger.
    #[serde(default)]
    pub llm_requests: Option<u64>,
    #[serde(default)]
    pub llm_errors: Option<u64>,
    #[serde(default)]
    pub llm_cut_responses: Option<u64>,
}

impl TokenTotals {
    /// `numerator / denominator`, or `None` for a zero denominator, so the harness and the
    /// gates agree on what an undefined ratio is.
    pub fn ratio(numerator: u64, denominator: u64) -> Option<f64> {
        // u64 → f64 loses precision only past 2^53 tokens, far beyond any run.
        (denominator > 0).then(|| numerator as f64 / denominator as f64)
    }
}

/// Latency distributions; the unit is in the field name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Latencies {
    /// Session request sent → first token event received.
    pub ttft_ms: LatencySummary,
    /// Gap between consecutive token events on the same stream.
    pub itl_ms: LatencySummary,
    /// Interruption detected → first event after reconnect.
    pub resume_ms: LatencySummary,
    /// Silence before another replica took a session over (takeover `session` event).
    #[serde(default)]
    pub takeover_ms: LatencySummary,
    /// Session creation → terminal event.
    pub session_s: LatencySummary,
    /// `POST /sessions` round trip.
    pub create_ms: LatencySummary,
}

/// A summary of one HdrHistogram. All values are 0 when `count` is 0; the gates look at
/// `count` before trusting a percentile.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    pub count: u64,
    #[serde(serialize_with = "finite::f64")]
    pub p50: f64,
    #[serde(serialize_with = "finite::f64")]
    pub p90: f64,
    #[serde(serialize_with = "finite::f64")]
    pub p99: f64,
    #[serde(serialize_with = "finite::f64")]
    pub max: f64,
    #[serde(serialize_with = "finite::f64")]
    pub mean: f64,
    /// The histogram's percentile spectrum, as HdrHistogram's percentile output walks it
    /// (the `.hgrm` files have the same, finer): empty in per-fault summaries and in
    /// reports written before it existed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub spectrum: Vec<SpectrumPoint>,
}

/// One point of a percentile spectrum: `percentile` in (0, 100], `value` in the summary's
/// unit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct SpectrumPoint {
    #[serde(serialize_with = "finite::f64")]
    pub percentile: f64,
    #[serde(serialize_with = "finite::f64")]
    pub value: f64,
}

/// One fault from the scenario timeline and what it cost.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FaultRecord {
    /// `deploy`, `kill`, `oom`, `scale`, `llm_brownout`, ...
    pub action: String,
    /// Scheduled offset from the run start.
    #[serde(serialize_with = "finite::f64")]
    pub at_s: f64,
    /// When the harness actually started it.
    #[serde(serialize_with = "finite::f64")]
    pub started_s: f64,
    /// When it finished; `None` if it was still running at the end of the run.
    #[serde(serialize_with = "finite::opt_f64")]
    pub ended_s: Option<f64>,
    /// The fault's parameters from the scenario, as given.
    pub params: serde_json::Value,
    /// Streams interrupted while this fault was active (attributed by the harness).
    pub interrupted: u64,
    /// Sessions dropped while this fault was active.
    pub dropped: u64,
    /// Wasted output tokens attributed to this fault.
    pub wasted_tokens: u64,
    /// Input tokens billed again (prompts re-sent after an interrupted call) or for sessions
    /// that never completed, attributed to this fault. Counted in `wasted_cost_usd`.
    #[serde(default)]
    pub wasted_input_tokens: u64,
    #[serde(serialize_with = "finite::f64")]
    pub wasted_cost_usd: f64,
    pub notes: Vec<String>,
    /// Replicas the fault acted on (replaced, killed, driven out of memory).
    #[serde(default)]
    pub replicas: Vec<String>,
    /// Replicas the fault started (a deploy's new version, replacements after a kill).
    #[serde(default)]
    pub started_replicas: Vec<String>,
    /// The drain account: one entry per replica the fault stopped.
    #[serde(default)]
    pub stops: Vec<ReplicaStop>,
    /// Resume latency of the streams this fault interrupted, interruption → first event
    /// after reconnecting (after a kill, this includes the takeover by another replica).
    #[serde(default)]
    pub resume_ms: Option<LatencySummary>,
    /// Takeovers of the sessions of the replicas this fault stopped: the silence a client
    /// saw before the new owner's takeover `session` event.
    #[serde(default)]
    pub takeover_ms: Option<LatencySummary>,
    /// Set when this fault is one repetition of a `[[faults]]` entry with `every` and `times`.
    #[serde(default)]
    pub repeat: Option<FaultRepeat>,
}

/// Which repetition of a repeated `[[faults]]` entry a fault is.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FaultRepeat {
    /// Index of the entry in the scenario's `[[faults]]` array.
    pub entry: u32,
    /// 0-based, in time order.
    pub index: u32,
    pub times: u32,
    /// Interval between repetitions (wall clock).
    #[serde(serialize_with = "finite::f64")]
    pub every_s: f64,
}

/// A repeated `[[faults]]` entry summed over its repetitions: a soak's hundred kills as one
/// line. Counts are sums over the repetitions' [`FaultRecord`]s; the latency summaries are
/// of the merged histograms, not averages of per-fault percentiles.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FaultSeries {
    pub entry: u32,
    pub action: String,
    /// Repetitions planned.
    pub times: u32,
    #[serde(serialize_with = "finite::f64")]
    pub every_s: f64,
    /// Repetitions that started before the run ended.
    pub ran: u32,
    /// Of those, repetitions that did not complete (their notes say why).
    pub incomplete: u32,
    #[serde(serialize_with = "finite::f64")]
    pub first_at_s: f64,
    #[serde(serialize_with = "finite::f64")]
    pub last_at_s: f64,
    pub interrupted: u64,
    pub dropped: u64,
    pub wasted_tokens: u64,
    pub wasted_input_tokens: u64,
    #[serde(serialize_with = "finite::f64")]
    pub wasted_cost_usd: f64,
    /// Replicas the repetitions stopped and started (replacements).
    pub stopped_replicas: u64,
    pub started_replicas: u64,
    /// Sums over the stops: sessions in flight at the signal (where the replica answered),
    /// and of those, severed.
    pub in_flight_at_signal: u64,
    pub severed: u64,
    /// Of the sessions in flight, sums over the stops that reported them: finished during the
    /// drain, handed off.
    #[serde(default)]
    pub finished_during_drain: u64,
    #[serde(default)]
    pub handed_off: u64,
    /// Stops that ended in SIGKILL (sent by the fault, or after the stop timeout).
    #[serde(default)]
    pub sigkilled: u64,
    /// How the replicas were stopped (`sigkill`, `deploy`, …), each once, in the order seen.
    #[serde(default)]
    pub how: Vec<String>,
    /// When the last repetition that completed ended (its replacement was up).
    #[serde(default, serialize_with = "finite::opt_f64")]
    pub last_ended_s: Option<f64>,
    pub resume_ms: Option<LatencySummary>,
    pub takeover_ms: Option<LatencySummary>,
}

/// How one replica was stopped by a fault, and what happened to its sessions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReplicaStop {
    pub replica: String,
    pub version: String,
    /// `deploy` (deregister, drain, SIGTERM), `sigterm`, `sigkill` or `oom`; on an ECS target
    /// `ecs:UpdateService` or `ecs:StopTask`, whose account is what the clients saw: `severed`
    /// = streams cut on the task by the fault, `handed_off` = of those, resumed elsewhere.
    pub how: String,
    /// Seconds the router waited for the replica's streams after deregistration (deploys).
    #[serde(serialize_with = "finite::opt_f64")]
    pub deregistration_wait_s: Option<f64>,
    /// Sessions running on the replica when it was signalled (its `/metrics`), if it answered.
    pub in_flight_at_signal: Option<u64>,
    /// From the replica's drain summary (resilient mode, exited by itself).
    pub finished_during_drain: Option<u64>,
    pub handed_off: Option<u64>,
    /// In flight at the signal, neither finished nor handed off: cut by SIGKILL, a crash or
    /// a naive exit. Their clients must resume elsewhere (takeover) or the session is lost.
    pub severed: Option<u64>,
    /// SIGKILL was needed (or was the signal).
    pub sigkill: bool,
    /// `exit 0`, `signal 9 (SIGKILL)`, `signal 6 (SIGABRT)`, ...
    pub exit: String,
    /// Signal → exit, seconds.
    #[serde(serialize_with = "finite::f64")]
    pub stop_s: f64,
}

/// One replica of the run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReplicaRecord {
    pub id: String,
    pub version: String,
    #[serde(serialize_with = "finite::f64")]
    pub started_s: f64,
    #[serde(serialize_with = "finite::opt_f64")]
    pub stopped_s: Option<f64>,
    /// How it exited, if it did before the end of the run.
    pub exit: Option<String>,
    /// Peak resident memory in MiB: the largest of the kernel's high-water mark (`VmHWM`)
    /// and `VmRSS`, read from `/proc/<pid>/status` once a second and just before a fault
    /// stops it. `None` when never readable (not Linux, or it died before the first read).
    #[serde(default)]
    pub peak_rss_mb: Option<u64>,
}

/// One second of the run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TimelinePoint {
    /// Seconds since the run started (end of the one-second bucket).
    #[serde(serialize_with = "finite::f64")]
    pub t_s: f64,
    pub active_sessions: u64,
    #[serde(serialize_with = "finite::f64")]
    pub tokens_per_s: f64,
    pub replicas_ready: u32,
    pub replicas_draining: u32,
    /// Streams interrupted during this second.
    pub interruptions: u64,
    /// Sessions dropped during this second.
    pub drops: u64,
    /// Sessions completed during this second.
    pub completed: u64,
    /// Autoscaling view (ECS desired / running count); `None` for targets without one.
    pub desired_tasks: Option<u32>,
    pub running_tasks: Option<u32>,
    /// The autoscaling metric (average active sessions per task) over the last second.
    #[serde(default, serialize_with = "finite::opt_f64")]
    pub scaling_metric: Option<f64>,
    /// TTFT and ITL p99 of the samples of this second (for SLO recovery).
    #[serde(default, serialize_with = "finite::opt_f64")]
    pub ttft_p99_ms: Option<f64>,
    #[serde(default, serialize_with = "finite::opt_f64")]
    pub itl_p99_ms: Option<f64>,
    /// Resume latency p99 of the resumes that completed this second (interruption noticed →
    /// first event after the reconnect), and how many there were.
    #[serde(default, serialize_with = "finite::opt_f64")]
    pub resume_p99_ms: Option<f64>,
    #[serde(default)]
    pub resumes: u64,
    /// Replicas that are not stopped, per version (`v1`, `v2`, …): who serves during a deploy.
    #[serde(default)]
    pub versions: BTreeMap<String, u32>,
}

/// What the emulated Application Auto Scaling target-tracking policy did. Times are wall
/// seconds since the run started; divide by the scenario's `time_scale` for real-world time.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AutoscalingReport {
    /// `active_sessions`: average active sessions per task, from each replica's `/metrics`.
    pub metric: String,
    #[serde(serialize_with = "finite::f64")]
    pub target_value: f64,
    pub min: u32,
    pub max: u32,
    /// Wall seconds per one-minute datapoint (60 s × time_scale).
    #[serde(serialize_with = "finite::f64")]
    pub datapoint_s: f64,
    pub decisions: Vec<ScalingDecision>,
    /// One per scale-out: breach → decision → capacity ready → SLO recovered.
    pub reactions: Vec<ScaleReaction>,
    /// Replicas stopped by scale-in.
    pub scale_ins: u64,
    /// Controller samples (several per datapoint) at which a pending scale-in wanted to stop
    /// a replica but every live replica was protected (it runs sessions and raised ECS
    /// scale-in protection): how long protection held the scale-in back, in samples.
    pub scale_ins_blocked_by_protection: u64,
    /// Sessions in flight on replicas that scale-in stopped and that were not handed off or
    /// finished (severed).
    pub scale_in_cut_sessions: u64,
    /// Task-seconds (wall) above / below `ceil(active sessions / target)`.
    #[serde(serialize_with = "finite::f64")]
    pub task_seconds_over: f64,
    #[serde(serialize_with = "finite::f64")]
    pub task_seconds_under: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScalingDecision {
    #[serde(serialize_with = "finite::f64")]
    pub t_s: f64,
    /// `scale_out`, `scale_in` or `blocked`.
    pub action: String,
    pub from: u32,
    pub to: u32,
    #[serde(serialize_with = "finite::f64")]
    pub metric: f64,
    pub reason: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScaleReaction {
    /// Start of the first datapoint above the target in the streak that fired the alarm.
    #[serde(serialize_with = "finite::f64")]
    pub breach_s: f64,
    #[serde(serialize_with = "finite::f64")]
    pub decision_s: f64,
    /// Every replica the decision started is healthy in the router.
    #[serde(serialize_with = "finite::opt_f64")]
    pub ready_s: Option<f64>,
    /// First second after the breach from which TTFT and ITL p99 stay within their gates
    /// for 5 s (`None`: never, or the scenario has no latency gates).
    #[serde(serialize_with = "finite::opt_f64")]
    pub slo_recovered_s: Option<f64>,
    /// Seconds between the breach and the end of the run's timeline with TTFT or ITL p99
    /// over its gate, until capacity was ready.
    pub seconds_over_slo_during_lag: u64,
}

/// Serializers that refuse NaN and infinity instead of writing `null`.
pub(crate) mod finite {
    use serde::{Serializer, ser::Error};

    pub fn f64<S: Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
        if value.is_finite() {
            serializer.serialize_f64(*value)
        } else {
            Err(S::Error::custom(format!(
                "non-finite number {value} cannot be written to JSON"
            )))
        }
    }

    pub fn opt_f64<S: Serializer>(value: &Option<f64>, serializer: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(v) => f64(v, serializer),
            None => serializer.serialize_none(),
        }
    }
}
