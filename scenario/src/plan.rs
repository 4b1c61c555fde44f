//! The resolved scenario: what the run command, the load engine, the targets and the fault
//! timeline consume. Built only by `resolve.rs` from a checked file, so every value here is
//! in range, every default is filled in (see `defaults.rs`) and every cross-field rule holds.
//!
//! # Time is already scaled — except the LLM's speed
//! A scenario is written in real-world time and compressed by `time_scale`: **every
//! `Duration` in a plan is wall-clock time** (`real × time_scale`) and **every arrival rate is
//! per wall-clock second** (`real ÷ time_scale`), so concurrency and sessions per run are
//! those of the real-world scenario, only faster. The exception is the LLM: its TTFT, its
//! inter-token gaps, `tokens_per_second`, and the latency gates (`ttft_p99`, `itl_p99`, `resume_p99`) stay in real
//! time, so a compressed session emits proportionally fewer tokens at the real pace. That
//! keeps measured latencies physically meaningful (a 1 ms "scaled" gap would be harness
//! noise) and keeps a compressed run affordable on a laptop. [`ScenarioPlan::to_real`]
//! converts wall-clock times back for reports.
//!
//! Not here: parsing (`file.rs`), checks (`resolve.rs`), anything that runs.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// A checked, defaulted, time-scaled scenario, ready to run.
#[derive(Debug, Clone, PartialEq)]
pub struct ScenarioPlan {
    /// The file it came from (as given to [`super::load`] or [`super::parse`]).
    pub file: PathBuf,
    /// `[A-Za-z0-9_.-]+`: safe as a directory name under `reports/out/`.
    pub name: String,
    pub description: String,
    pub seed: u64,
    /// In (0, 10]; 1.0 runs in real time.
    pub time_scale: f64,
    /// Wall-clock length of the run.
    pub duration: Duration,
    /// The run's length as written in the file, before scaling.
    pub real_duration: Duration,
    pub target: TargetPlan,
    pub load: LoadPlan,
    pub sessions: SessionMix,
    pub llm: LlmProfile,
    /// Sorted by `at`.
    pub faults: Vec<FaultPlan>,
    /// In a fixed order (the order of [`Gate`]'s variants); a gate passes when the observed
    /// value is at most the threshold.
    pub gates: Vec<Gate>,
    /// `None` when absent or `enabled = false`.
    pub autoscaling: Option<AutoscalingPlan>,
    /// What the scenario is written to show (`[expect]`); `None` when it does not say.
    /// It never changes the exit code: a naive twin still exits 1, as CI needs.
    pub expect: Option<Expectation>,
    /// `[halt]`: conditions that stop the run early; `None` = run to the end.
    pub halt: Option<HaltPlan>,
}

/// When to stop a run early (faults, then load), and mark the report halted (exit 1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HaltPlan {
    pub dropped_sessions: Option<u64>,
    pub error_rate: Option<f64>,
    pub min_sessions: u64,
    pub data_loss: bool,
}

/// What the halt check reads, once a second.
#[derive(Debug, Clone, Copy, Default)]
pub struct HaltInputs {
    pub dropped: u64,
    pub failed: u64,
    pub finished: u64,
    pub data_loss: u64,
}

impl HaltPlan {
    /// The first condition that broke, in words; `None` while every one holds.
    pub fn breached(&self, s: HaltInputs) -> Option<String> {
        if self.data_loss && s.data_loss > 0 {
            return Some(format!(
                "{} lost, duplicated or mismatched events (halt.data_loss)",
                s.data_loss
            ));
        }
        if let Some(max) = self.dropped_sessions
            && s.dropped > max
        {
            return Some(format!(
                "{} sessions dropped, more than halt.dropped_sessions = {max}",
                s.dropped
            ));
        }
        if let Some(max) = self.error_rate
            && s.finished >= self.min_sessions.max(1)
        {
            let rate = (s.failed + s.dropped) as f64 / s.finished as f64;
            if rate > max {
                return Some(format!(
                    "error rate {rate:.3} over {} finished sessions, above halt.error_rate = {max}",
                    s.finished
                ));
            }
        }
        None
    }
}

/// The verdict a scenario is meant to reach, and the gates that must fail on the way.
#[derive(Debug, Clone, PartialEq)]
pub struct Expectation {
    pub verdict: Verdict,
    pub failing_gates: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Fail,
}

impl Expectation {
    /// Whether a run with these gate outcomes reached the expected verdict; `Err` says how
    /// it did not.
    pub fn check(&self, failed_gates: &[&str]) -> Result<(), String> {
        match self.verdict {
            Verdict::Pass if failed_gates.is_empty() => Ok(()),
            Verdict::Pass => Err(format!(
                "expected every gate to pass, but {} failed",
                failed_gates.join(", ")
            )),
            Verdict::Fail if failed_gates.is_empty() => {
                Err("expected a failed gate, but every gate passed".into())
            }
            Verdict::Fail => {
                let missing: Vec<&str> = self
                    .failing_gates
                    .iter()
                    .map(String::as_str)
                    .filter(|g| !failed_gates.contains(g))
                    .collect();
                if missing.is_empty() {
                    Ok(())
                } else {
                    Err(format!(
                        "expected {} to fail; failed were {}",
                        missing.join(", "),
                        failed_gates.join(", ")
                    ))
                }
            }
        }
    }
}

impl ScenarioPlan {
    /// Converts a wall-clock duration measured during the run back to real-world time.
    pub fn to_real(&self, wall: Duration) -> Duration {
        wall.div_f64(self.time_scale)
    }
}

/// `median` and `p99` of a heavy-tailed distribution (`p99 >= median`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Percentiles<T> {
    pub median: T,
    pub p99: T,
}

// ---- target -----------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
pub enum TargetPlan {
    /// A fleet of reference replicas, a router and the mock LLM started by the harness.
    Local(LocalTarget),
    /// An existing deployment speaking session protocol v1.
    Url(UrlTarget),
    /// A real ECS service.
    Ecs(EcsTarget),
}

#[derive(Debug, Clone, PartialEq)]
pub struct LocalTarget {
    /// Replicas at the start (>= 1).
    pub replicas: u32,
    pub mode: RuntimeMode,
    pub journal: Journal,
    /// What the harness's own `redis-server` persists (`journal = "redis"` only): what a
    /// `journal_kill` can lose.
    pub journal_persistence: JournalPersistence,
    /// SIGTERM → SIGKILL grace, like ECS `stopTimeout`.
    pub stop_timeout: Duration,
    /// How long a deregistered replica keeps its streams before SIGTERM (ends early when it
    /// has none), like the ALB deregistration delay.
    pub deregistration_delay: Duration,
    pub deployment: DeploymentConfig,
    pub router: RouterConfig,
    /// The runtime's drain deadline after SIGTERM (< `stop_timeout`); then it hands off.
    pub drain_timeout: Duration,
    /// SSE keepalive comment interval (< `router.idle_timeout`).
    pub keepalive: Duration,
    /// A real memory limit per replica; required by `oom` faults.
    pub memory_limit_mb: Option<u64>,
    /// The runtime's session lease: a crashed replica's sessions are taken over this long
    /// after its last heartbeat (time-scaled, at least 1 s).
    pub lease_ttl: Duration,
    /// `--cors-origin` of every replica: browser pages on these origins may create sessions
    /// and read streams (`EventSource`) through the router.
    pub cors_origins: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuntimeMode {
    Resilient,
    Naive,
}

/// `target.journal_persistence`: what the harness's `redis-server` keeps on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JournalPersistence {
    /// AOF, fsync before every reply (`appendfsync always`): nothing acknowledged is lost.
    AofAlways,
    /// AOF written before every reply, fsync once a second (the default): a killed
    /// process loses nothing acknowledged; a power cut may lose about a second.
    AofEverysec,
    /// No AOF, an RDB snapshot at most every second: a killed process loses every write
    /// since the last snapshot, acknowledged ones included.
    Snapshot,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Journal {
    Memory,
    /// One SQLite file shared by the local replicas (the harness picks the path).
    Sqlite,
    /// Redis Streams at this `redis://` URL, or (`None`) on a `redis-server` the harness
    /// starts for the run. Keys go under a per-run prefix either way.
    Redis {
        url: Option<String>,
    },
}

/// ECS rolling-deployment bounds, in percent of `replicas`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeploymentConfig {
    /// 0..=100.
    pub minimum_healthy_percent: u32,
    /// 100..=200 and above `minimum_healthy_percent`.
    pub maximum_percent: u32,
}

/// The ALB-like router in front of the local replicas.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RouterConfig {
    pub algorithm: Algorithm,
    /// How often `/readyz` is probed.
    pub health_check_interval: Duration,
    /// Consecutive passes before a replica receives traffic.
    pub healthy_threshold: u32,
    /// Consecutive failures before it stops receiving traffic.
    pub unhealthy_threshold: u32,
    /// A stream silent this long is closed, like the ALB idle timeout.
    pub idle_timeout: Duration,
    /// ALB `lb_cookie` stickiness: a session's requests go to the replica that created it
    /// while it is healthy (what an in-memory runtime needs behind a load balancer).
    pub stickiness: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Algorithm {
    RoundRobin,
    LeastOutstanding,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlTarget {
    /// `http://` or `https://` base URL.
    pub url: String,
    pub api_key: Option<ApiKey>,
}

/// Where the bearer key for a `url` target comes from. Environment variables are read when
/// the run starts, not here, so a plan never holds a secret it was not given literally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiKey {
    Literal(String),
    Env(String),
}

/// A real ECS service (or its local rehearsal through the ECS emulator).
#[derive(Debug, Clone, PartialEq)]
pub struct EcsTarget {
    pub cluster: String,
    pub service: String,
    pub region: String,
    /// Another ECS endpoint (moto_server, an emulator you run); `None` = AWS.
    pub endpoint_url: Option<String>,
    /// Where clients create sessions; `None` only when `emulator` is set (its router).
    pub url: Option<String>,
    pub llm_url: Option<String>,
    /// The service ARN the scenario expects; faults run only when it matches (or `--yes`).
    pub service_arn: Option<String>,
    /// Blast radius: at most this many tasks stopped by one fault (default 1).
    pub max_stopped: u32,
    /// Wall-clock interval of `DescribeServices` polls (not time-scaled: API rate limits
    /// are real).
    pub poll_interval: Duration,
    /// A deploy still IN_PROGRESS after this long (wall clock) is reported as timed out.
    pub deploy_timeout: Duration,
    pub api_key: Option<ApiKey>,
    /// `[target.emulator]`: the harness serves the ECS API itself over a local fleet.
    pub emulator: Option<Box<EmulatorPlan>>,
}

/// The service the ECS emulator plays: its tasks are a local fleet like `fleet`.
#[derive(Debug, Clone, PartialEq)]
pub struct EmulatorPlan {
    /// `replicas` is the service's desired count; `deployment` its percentages.
    pub fleet: LocalTarget,
    /// Revisions (of the family the service runs) whose tasks fail to start.
    pub broken_revisions: Vec<u32>,
    /// `Some(rollback)`: the deployment circuit breaker is on.
    pub circuit_breaker: Option<bool>,
}

// ---- load -------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
pub enum LoadPlan {
    /// A number of users, each running sessions back to back.
    Closed(ClosedLoad),
    /// Sessions arriving at a rate, on schedule whether or not the target keeps up.
    Open(OpenLoad),
}

/// Stages run in order; each ramps linearly from the previous level over `ramp`, then holds.
/// After the last stage no new session starts and the run lets in-flight sessions finish
/// until `duration` ends. The stages never last longer than `duration`.
#[derive(Debug, Clone, PartialEq)]
pub struct ClosedLoad {
    /// Non-empty.
    pub stages: Vec<UserStage>,
    /// Pause between one session's end and the same user's next session.
    pub think_time: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UserStage {
    /// >= 1.
    pub users: u32,
    pub ramp: Duration,
    pub hold: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OpenLoad {
    /// Non-empty; same stage semantics as [`ClosedLoad::stages`].
    pub stages: Vec<RateStage>,
    pub arrival: Arrival,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateStage {
    /// New sessions per wall-clock second (> 0).
    pub rate: f64,
    pub ramp: Duration,
    pub hold: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arrival {
    Poisson,
    Constant,
}

// ---- sessions and LLM -------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
pub struct SessionMix {
    pub size: SessionSize,
    /// Output tokens per wall-clock second while a session streams (> 0).
    pub tokens_per_second: f64,
    /// Share of sessions that behave as runaway agents, in [0, 1].
    pub runaway_fraction: f64,
    /// Non-empty, names unique, weights > 0.
    pub classes: Vec<QueryClass>,
    pub budget: Option<Budget>,
    pub resume: ResumePolicy,
    /// A stream silent this long (no event, no keepalive) counts as interrupted.
    pub idle_timeout: Duration,
}

/// How long sessions are: by wall-clock length or by output tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SessionSize {
    Length(Percentiles<Duration>),
    Tokens(Percentiles<u64>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct QueryClass {
    pub name: String,
    /// Relative weight in the mix (> 0).
    pub weight: f64,
    /// The query text sent; defaults to the class name.
    pub query: String,
}

/// Per-session budget sent with `POST /v1/sessions`; at least one limit is set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Budget {
    pub max_output_tokens: Option<u64>,
    pub max_cost_usd: Option<f64>,
    pub max_duration: Option<Duration>,
}

/// Client-side resume with `Last-Event-ID` and capped exponential backoff.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ResumePolicy {
    pub max_retries: u32,
    pub backoff_initial: Duration,
    /// >= `backoff_initial`.
    pub backoff_max: Duration,
    /// Whether the server's `retry:` hint floors each wait (not time-scaled: it is the
    /// server's number).
    pub retry_hint: RetryHint,
}

/// The mock LLM's model profile (local targets start the mock with it).
#[derive(Debug, Clone, PartialEq)]
pub struct LlmProfile {
    pub ttft: Percentiles<Duration>,
    /// Inter-token latency; derived from `sessions.tokens_per_second` when not written.
    pub itl: Percentiles<Duration>,
    /// Streams served at once before requests queue (>= 1).
    pub max_concurrent: u32,
    /// How much latency grows with concurrent streams (>= 0; 0 = no slowdown).
    pub load_factor: f64,
    pub price: Price,
    /// Faults active from the start of the run.
    pub faults: LlmFaults,
}

/// USD per million tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Price {
    pub input_per_mtok: f64,
    pub output_per_mtok: f64,
}

/// Mock LLM faults. Rates are probabilities per request in [0, 1].
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LlmFaults {
    /// HTTP 429.
    pub rate_limit: f64,
    /// HTTP 529 / `overloaded_error`.
    pub overloaded: f64,
    /// HTTP 500 mid-stream.
    pub server_error: f64,
    pub extra_latency: Duration,
    /// Cut every stream after this many tokens.
    pub cut_after_tokens: Option<u64>,
    /// Stall streams for this long.
    pub stall: Option<Duration>,
}

impl LlmFaults {
    /// True when no fault is configured.
    pub fn is_none(&self) -> bool {
        *self == LlmFaults::default()
    }
}

pub use super::faults::{
    BrownoutFault, CommandFault, DeployFault, FaultAction, FaultPlan, JournalKillFault,
    JournalOutageFault, KillFault, KillSignal, KillWho, NetworkFault, OomFault, OutageFault,
    Repeat, Signal,
};
pub use super::gates::{AutoscalingPlan, Gate, ScalingMetric};

/// What the server's `retry:` field (a browser's reconnection time, WHATWG HTML §9.2.6) does
/// to the wait before a reconnection. Either way the last hint is recorded in the outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RetryHint {
    /// The backoff alone decides, so runs against different targets compare.
    #[default]
    Ignore,
    /// Each wait is at least the hint, as a browser waits at least its reconnection time;
    /// the backoff (and its jitter) can make it longer, never shorter.
    Floor,
}
