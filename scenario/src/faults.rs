//! The resolved fault timeline: what to break, when, and how hard. Part of the plan (see
//! `plan.rs` for the time-scaling rule: every `Duration` here is wall-clock time). The fault
//! *driver* lives elsewhere; this module only describes.

use std::time::Duration;

use serde::Deserialize;

use super::plan::LlmFaults;

/// One `[[faults]]` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultPlan {
    /// Offset from the start of the run (< the run's duration).
    pub at: Duration,
    pub action: FaultAction,
    /// Set when the entry repeats (`every`, `times`): which repetition this is.
    pub repeat: Option<Repeat>,
}

/// One repetition of a `[[faults]]` entry written with `every` and `times`: the entry
/// expands into `times` faults at `at`, `at + every`, … Each is a fault of its own (its own
/// seed, log entry and report record); this says which series it belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repeat {
    /// Index of the entry in the file's `[[faults]]` array.
    pub entry: usize,
    /// 0-based repetition, in time order.
    pub index: u32,
    pub times: u32,
    /// Wall-clock interval between repetitions.
    pub every: Duration,
}

impl FaultPlan {
    /// When the fault's window ends (`at` for instantaneous faults such as `kill`).
    pub fn end(&self) -> Duration {
        match &self.action {
            FaultAction::LlmBrownout(b) => self.at + b.duration,
            FaultAction::LlmOutage(o) => self.at + o.duration,
            FaultAction::Network(n) => self.at + n.duration,
            FaultAction::JournalKill(k) => self.at + k.down,
            FaultAction::JournalOutage(o) => self.at + o.duration,
            _ => self.at,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum FaultAction {
    /// Rolling deployment with ECS semantics (local and ecs targets).
    Deploy(DeployFault),
    /// Stop replicas like ECS StopTask, no drain first (local and ecs targets).
    Kill(KillFault),
    /// Drive a replica past its memory limit (local targets with `memory_limit_mb`).
    Oom(OomFault),
    /// Mock LLM faults for a window.
    LlmBrownout(BrownoutFault),
    /// The mock LLM refuses connections for a window (a provider outage).
    LlmOutage(OutageFault),
    /// Latency, resets or stalls on live streams in the router (local targets).
    Network(NetworkFault),
    /// A shell hook, e.g. a restart script for a `url` target.
    Command(CommandFault),
    /// SIGKILL the harness's `redis-server`, restart it from its own files (local, `journal = "redis"`).
    JournalKill(JournalKillFault),
    /// The harness's `redis-server` unreachable for a window (local, `journal = "redis"`).
    JournalOutage(JournalOutageFault),
}

impl FaultAction {
    /// The `action` string as written in the file.
    pub fn name(&self) -> &'static str {
        match self {
            FaultAction::Deploy(_) => "deploy",
            FaultAction::Kill(_) => "kill",
            FaultAction::Oom(_) => "oom",
            FaultAction::LlmBrownout(_) => "llm_brownout",
            FaultAction::LlmOutage(_) => "llm_outage",
            FaultAction::Network(_) => "network",
            FaultAction::Command(_) => "command",
            FaultAction::JournalKill(_) => "journal_kill",
            FaultAction::JournalOutage(_) => "journal_outage",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployFault {
    /// Version label carried by the new replicas (default `"v2"`, `"v3"`, … by deploy order).
    pub version: String,
    /// ECS: the task definition to deploy; `None` = force a new deployment of the current one.
    pub task_definition: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct KillFault {
    pub who: KillWho,
    pub signal: KillSignal,
}

/// Which replicas a `kill` stops. Exactly one of `count`, `percent`, `replica` may be
/// written (or `task`, on ECS); none means one replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KillWho {
    /// This many replicas (>= 1), chosen by the seed.
    Count(u32),
    /// This share of the running replicas, 1..=100, rounded up.
    Percent(u32),
    /// The replica with this index (0-based, in start order).
    Replica(u32),
    /// ECS: the task with this id or ARN.
    Task(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KillSignal {
    /// SIGTERM, then SIGKILL after `timeout` if the process is still alive.
    Term { timeout: Duration },
    /// SIGKILL at once.
    Kill,
}

/// The signal as written in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Signal {
    #[serde(rename = "SIGTERM")]
    Term,
    #[serde(rename = "SIGKILL")]
    Kill,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OomFault {
    /// The replica to drive past its limit; `None` lets the seed choose.
    pub replica: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BrownoutFault {
    pub duration: Duration,
    /// At least one fault is set.
    pub faults: LlmFaults,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutageFault {
    pub duration: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NetworkFault {
    pub duration: Duration,
    /// Share of live streams affected, in (0, 1].
    pub fraction: f64,
    /// At least one of `latency`, `reset`, `stall` is set.
    pub latency: Option<Duration>,
    pub reset: bool,
    pub stall: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandFault {
    /// Run with `sh -c`.
    pub run: String,
    pub timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JournalKillFault {
    /// How long the server stays down before it is started again (zero: at once).
    pub down: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JournalOutageFault {
    /// How long every connection is refused.
    pub duration: Duration,
}
