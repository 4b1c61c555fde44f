//! The scenario file exactly as written: serde structs that mirror the TOML (DESIGN §8).
//!
//! Every struct denies unknown fields, durations are [`Dur`] (humantime strings such as
//! `"700ms"` or `"3m"`), and every field the user may leave out is an `Option` or a `Vec`
//! with `#[serde(default)]`. Nothing here checks ranges, fills defaults or applies
//! `time_scale`: that is `resolve.rs`, which turns these into a [`super::ScenarioPlan`].
//! Tagged tables (`target.kind`, `load.model`, `faults[].action`) are serde internally
//! tagged enums; [`variant_error`] re-reads one such table as its variant alone, so an
//! error inside it can be pinned to the right line (serde's tagged enums lose positions).

use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{DeserializeOwned, Deserializer, Error as _, Unexpected, Visitor};
use toml::Spanned;
use toml::de::{DeValue, ValueDeserializer};

use super::plan::{
    Algorithm, Arrival, Journal, JournalPersistence, RuntimeMode, ScalingMetric, Signal, Verdict,
};

/// A duration written as a humantime string (`"30s"`, `"5m"`, `"1h 30m"`, `"700ms"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dur(pub Duration);

const DURATION_EXPECTED: &str = "a duration like \"30s\" or \"5m\"";
/// Longer than any scenario needs, and small enough that scaling and adding never overflow.
const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DurVisitor;
        impl Visitor<'_> for DurVisitor {
            type Value = Dur;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(DURATION_EXPECTED)
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Dur, E> {
                let d = humantime::parse_duration(s.trim()).map_err(|_| {
                    E::custom(format_args!("expected {DURATION_EXPECTED}, found {s:?}"))
                })?;
                if d > MAX_DURATION {
                    return Err(E::custom(format_args!(
                        "must be at most 365 days, found {s:?}"
                    )));
                }
                Ok(Dur(d))
            }
        }
        deserializer.deserialize_str(DurVisitor)
    }
}

/// `{ median = ..., p99 = ... }` for latencies, session lengths and token counts.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPercentiles<T> {
    pub median: T,
    pub p99: T,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawScenario {
    pub name: String,
    pub description: Option<String>,
    pub seed: Option<u64>,
    pub time_scale: Option<f64>,
    pub duration: Dur,
    pub target: RawTarget,
    pub load: RawLoad,
    #[serde(default)]
    pub sessions: RawSessions,
    #[serde(default)]
    pub llm: RawLlm,
    #[serde(default)]
    pub faults: Vec<RawFault>,
    #[serde(default)]
    pub gates: RawGates,
    pub autoscaling: Option<RawAutoscaling>,
    pub expect: Option<RawExpect>,
    pub halt: Option<RawHalt>,
}

/// `[halt]`: stop faults and load early when an SLO or error budget breaks (seed 004).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHalt {
    /// Halt once more than this many sessions were dropped.
    pub dropped_sessions: Option<u64>,
    /// Halt once failed + dropped ÷ finished sessions exceeds this (after `min_sessions`).
    pub error_rate: Option<f64>,
    /// Sessions that must have finished before `error_rate` is judged (default 10).
    pub min_sessions: Option<u64>,
    /// Halt on any lost, duplicated or mismatched event (default true when `[halt]` exists).
    pub data_loss: Option<bool>,
}

/// `[expect]`: the verdict a scenario is written to reach (a naive twin is written to fail).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawExpect {
    pub verdict: Verdict,
    /// With `verdict = "fail"`: gates that must be among the failed ones.
    #[serde(default)]
    pub failing_gates: Vec<String>,
}

// ---- [target] -------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RawTarget {
    Local(RawLocal),
    Url(RawUrl),
    Ecs(RawEcs),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLocal {
    pub replicas: Option<u32>,
    pub mode: Option<RuntimeMode>,
    pub journal: Option<Journal>,
    pub journal_persistence: Option<JournalPersistence>,
    pub stop_timeout: Option<Dur>,
    pub deregistration_delay: Option<Dur>,
    #[serde(default)]
    pub deployment: RawDeployment,
    #[serde(default)]
    pub router: RawRouter,
    pub drain_timeout: Option<Dur>,
    pub keepalive: Option<Dur>,
    pub memory_limit_mb: Option<u64>,
    pub lease_ttl: Option<Dur>,
    /// Origins (`http://host:port`) whose pages may call the replicas from a browser.
    pub cors_origins: Option<Vec<String>>,
    /// `[target.emulator]` only: task definition revisions whose tasks fail to start.
    pub broken_revisions: Option<Vec<u32>>,
    /// `[target.emulator]` only: the service's deployment circuit breaker.
    pub circuit_breaker: Option<RawCircuitBreaker>,
}

/// `deploymentCircuitBreaker { enable = true, rollback }` of an emulated service.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCircuitBreaker {
    pub rollback: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDeployment {
    pub minimum_healthy_percent: Option<u32>,
    pub maximum_percent: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRouter {
    pub algorithm: Option<Algorithm>,
    pub health_check_interval: Option<Dur>,
    pub healthy_threshold: Option<u32>,
    pub unhealthy_threshold: Option<u32>,
    pub idle_timeout: Option<Dur>,
    pub stickiness: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUrl {
    pub url: Option<String>,
    pub api_key: Option<String>,
    pub api_key_env: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEcs {
    pub cluster: String,
    pub service: String,
    pub region: String,
    /// Where clients create sessions (the service's load balancer).
    pub url: Option<String>,
    pub endpoint_url: Option<String>,
    pub llm_url: Option<String>,
    /// Guard rail: the service ARN the scenario expects to act on.
    pub service_arn: Option<String>,
    pub max_stopped: Option<u32>,
    pub poll_interval: Option<Dur>,
    pub deploy_timeout: Option<Dur>,
    pub api_key: Option<String>,
    pub api_key_env: Option<String>,
    /// Rehearse locally: the harness starts the ECS emulator over a local fleet like this.
    pub emulator: Option<Box<RawLocal>>,
}

// ---- [load] ---------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(tag = "model", rename_all = "snake_case")]
pub enum RawLoad {
    Closed(RawClosed),
    Open(RawOpen),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawClosed {
    pub stages: Vec<RawUserStage>,
    pub think_time: Option<Dur>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUserStage {
    pub users: u32,
    pub ramp: Option<Dur>,
    pub hold: Dur,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOpen {
    pub stages: Vec<RawRateStage>,
    pub arrival: Option<Arrival>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRateStage {
    pub rate: f64,
    pub ramp: Option<Dur>,
    pub hold: Dur,
}

// ---- [sessions] -----------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSessions {
    pub length: Option<RawPercentiles<Dur>>,
    pub tokens: Option<RawPercentiles<u64>>,
    pub tokens_per_second: Option<f64>,
    pub runaway_fraction: Option<f64>,
    #[serde(default)]
    pub classes: Vec<RawQueryClass>,
    pub budget: Option<RawBudget>,
    #[serde(default)]
    pub resume: RawResume,
    pub idle_timeout: Option<Dur>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawQueryClass {
    pub name: String,
    pub weight: Option<f64>,
    pub query: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBudget {
    pub max_output_tokens: Option<u64>,
    pub max_cost_usd: Option<f64>,
    pub max_duration: Option<Dur>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawResume {
    pub max_retries: Option<u32>,
    pub backoff_initial: Option<Dur>,
    pub backoff_max: Option<Dur>,
    pub retry_hint: Option<crate::RetryHint>,
}

// ---- [llm] ----------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLlm {
    pub ttft: Option<RawPercentiles<Dur>>,
    pub itl: Option<RawPercentiles<Dur>>,
    pub max_concurrent: Option<u32>,
    pub load_factor: Option<f64>,
    #[serde(default)]
    pub price: RawPrice,
    #[serde(default)]
    pub faults: RawLlmFaults,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPrice {
    pub input_per_mtok: Option<f64>,
    pub output_per_mtok: Option<f64>,
}

/// Mock LLM fault knobs, shared by `[llm.faults]` (from the start) and `llm_brownout`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLlmFaults {
    pub rate_limit: Option<f64>,
    pub overloaded: Option<f64>,
    pub server_error: Option<f64>,
    pub extra_latency: Option<Dur>,
    pub cut_after_tokens: Option<u64>,
    pub stall: Option<Dur>,
}

// ---- [[faults]] -----------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum RawFault {
    Deploy(RawDeploy),
    Kill(RawKill),
    Oom(RawOom),
    LlmBrownout(RawBrownout),
    LlmOutage(RawOutage),
    Network(RawNetwork),
    Command(RawCommand),
    JournalKill(RawJournalKill),
    JournalOutage(RawJournalOutage),
}

impl RawFault {
    /// `(every, times)` as written: the repetition of this entry, if any.
    pub fn repeat(&self) -> (Option<Dur>, Option<u32>) {
        match self {
            RawFault::Deploy(f) => (f.every, f.times),
            RawFault::Kill(f) => (f.every, f.times),
            RawFault::Oom(f) => (f.every, f.times),
            RawFault::LlmBrownout(f) => (f.every, f.times),
            RawFault::LlmOutage(f) => (f.every, f.times),
            RawFault::Network(f) => (f.every, f.times),
            RawFault::Command(f) => (f.every, f.times),
            RawFault::JournalKill(f) => (f.every, f.times),
            RawFault::JournalOutage(f) => (f.every, f.times),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDeploy {
    pub at: Dur,
    /// Repeat the fault `times` times, `every` apart (both or neither).
    pub every: Option<Dur>,
    pub times: Option<u32>,
    pub version: Option<String>,
    /// ECS: deploy this task definition (`family:revision` or ARN) instead of the current one.
    pub task_definition: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKill {
    pub at: Dur,
    /// Repeat the fault `times` times, `every` apart (both or neither).
    pub every: Option<Dur>,
    pub times: Option<u32>,
    pub count: Option<u32>,
    pub percent: Option<u32>,
    pub replica: Option<u32>,
    /// ECS: the task id (or ARN) to stop.
    pub task: Option<String>,
    pub signal: Option<Signal>,
    pub timeout: Option<Dur>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOom {
    pub at: Dur,
    /// Repeat the fault `times` times, `every` apart (both or neither).
    pub every: Option<Dur>,
    pub times: Option<u32>,
    pub replica: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBrownout {
    pub at: Dur,
    /// Repeat the fault `times` times, `every` apart (both or neither).
    pub every: Option<Dur>,
    pub times: Option<u32>,
    pub duration: Dur,
    pub rate_limit: Option<f64>,
    pub overloaded: Option<f64>,
    pub server_error: Option<f64>,
    pub extra_latency: Option<Dur>,
    pub cut_after_tokens: Option<u64>,
    pub stall: Option<Dur>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOutage {
    pub at: Dur,
    /// Repeat the fault `times` times, `every` apart (both or neither).
    pub every: Option<Dur>,
    pub times: Option<u32>,
    pub duration: Dur,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNetwork {
    pub at: Dur,
    /// Repeat the fault `times` times, `every` apart (both or neither).
    pub every: Option<Dur>,
    pub times: Option<u32>,
    pub duration: Dur,
    pub fraction: f64,
    pub latency: Option<Dur>,
    pub reset: Option<bool>,
    pub stall: Option<Dur>,
}

/// SIGKILL the harness's `redis-server`; start it again after `down` (default: at once).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawJournalKill {
    pub at: Dur,
    /// Repeat the fault `times` times, `every` apart (both or neither).
    pub every: Option<Dur>,
    pub times: Option<u32>,
    pub down: Option<Dur>,
}

/// Cut every connection to the harness's `redis-server` and refuse new ones for `duration`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawJournalOutage {
    pub at: Dur,
    /// Repeat the fault `times` times, `every` apart (both or neither).
    pub every: Option<Dur>,
    pub times: Option<u32>,
    pub duration: Dur,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCommand {
    pub at: Dur,
    /// Repeat the fault `times` times, `every` apart (both or neither).
    pub every: Option<Dur>,
    pub times: Option<u32>,
    pub run: String,
    pub timeout: Option<Dur>,
}

// ---- [gates] and [autoscaling] ----------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGates {
    pub dropped_sessions: Option<u64>,
    pub lost_events: Option<u64>,
    pub duplicated_events: Option<u64>,
    pub content_mismatches: Option<u64>,
    pub ttft_p99: Option<Dur>,
    pub itl_p99: Option<Dur>,
    pub resume_p99: Option<Dur>,
    pub wasted_token_ratio: Option<f64>,
    pub error_rate: Option<f64>,
    pub scale_out_reaction: Option<Dur>,
    pub slo_recovery: Option<Dur>,
    pub failed_deployments: Option<u64>,
    /// MiB; local targets only.
    pub replica_peak_rss_mb: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAutoscaling {
    pub enabled: Option<bool>,
    pub metric: Option<ScalingMetric>,
    pub target_value: f64,
    pub min: Option<u32>,
    pub max: u32,
    pub scale_out_cooldown: Option<Dur>,
    pub scale_in_cooldown: Option<Dur>,
}

// ---- precise errors inside tagged tables -----------------------------------------------

/// The tag key of the tagged table at `path` (`target`, `load`, `faults[i]`), if it is one.
pub fn tag_key_of(path: &str) -> Option<&'static str> {
    match path {
        "target" => Some("kind"),
        "load" => Some("model"),
        p if p.starts_with("faults[") && p.ends_with(']') => Some("action"),
        _ => None,
    }
}

/// Deserializes `table` (with its tag key already removed) as the struct of variant `tag`;
/// its error, unlike the tagged enum's, carries the exact span. `None` for an unknown tag.
pub fn variant_error(
    tag: &str,
    table: Spanned<DeValue<'_>>,
) -> Option<Result<(), toml::de::Error>> {
    fn check<T: DeserializeOwned>(
        table: Spanned<DeValue<'_>>,
    ) -> Option<Result<(), toml::de::Error>> {
        Some(T::deserialize(ValueDeserializer::from(table)).map(drop))
    }
    match tag {
        "local" => check::<RawLocal>(table),
        "url" => check::<RawUrl>(table),
        "ecs" => check::<RawEcs>(table),
        "closed" => check::<RawClosed>(table),
        "open" => check::<RawOpen>(table),
        "deploy" => check::<RawDeploy>(table),
        "kill" => check::<RawKill>(table),
        "oom" => check::<RawOom>(table),
        "llm_brownout" => check::<RawBrownout>(table),
        "llm_outage" => check::<RawOutage>(table),
        "network" => check::<RawNetwork>(table),
        "command" => check::<RawCommand>(table),
        "journal_kill" => check::<RawJournalKill>(table),
        "journal_outage" => check::<RawJournalOutage>(table),
        _ => None,
    }
}

/// Journal backend: `"memory"`, `"sqlite"`, `"redis"` (a server the harness starts) or a
/// `redis://` URL.
impl<'de> Deserialize<'de> for Journal {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        match s.as_str() {
            "memory" => Ok(Journal::Memory),
            "sqlite" => Ok(Journal::Sqlite),
            "redis" => Ok(Journal::Redis { url: None }),
            url if url.starts_with("redis://") => Ok(Journal::Redis { url: Some(s) }),
            other => Err(D::Error::invalid_value(
                Unexpected::Str(other),
                &"\"memory\", \"sqlite\", \"redis\" (the harness starts redis-server) or a \"redis://host:port\" URL (no TLS: rediss:// is not supported)",
            )),
        }
    }
}
