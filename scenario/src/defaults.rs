//! Every default a scenario file may leave out, in one place, in real-world time (before
//! `time_scale`). Where a default copies an AWS default, the comment says so, because the
//! point of the local target is to behave like the real thing unless told otherwise.
//!
//! Required, with no default: `name`, `duration`, `[target]` with `kind`, `[load]` with
//! `model` and `stages`, `hold` of each stage, `at` of each fault.

use std::time::Duration;

const fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}
const fn millis(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

// Top level.
pub const SEED: u64 = 0;
pub const TIME_SCALE: f64 = 1.0;
/// `time_scale` must be in (0, MAX_TIME_SCALE].
pub const MAX_TIME_SCALE: f64 = 10.0;

// [target] kind = "ecs". Poll intervals are wall-clock (API rate limits do not scale).
/// `DescribeServices` + `ListTasks` + `DescribeTasks` every 2 s: well inside ECS's
/// documented per-account request rate limits (burst 50 / sustained 20 per second for
/// describe actions: https://docs.aws.amazon.com/AmazonECS/latest/APIReference/request-throttling.html).
pub const ECS_POLL_INTERVAL: Duration = secs(2);
pub const ECS_MIN_POLL_INTERVAL: Duration = millis(100);
/// A rolling deployment that has not completed in 30 minutes is reported as timed out.
pub const ECS_DEPLOY_TIMEOUT: Duration = secs(1800);

// [target] kind = "local".
pub const REPLICAS: u32 = 3;
/// ECS/Fargate `stopTimeout` default.
pub const STOP_TIMEOUT: Duration = secs(30);
/// Fargate's maximum `stopTimeout`.
pub const MAX_STOP_TIMEOUT: Duration = secs(120);
/// ALB target group default.
pub const DEREGISTRATION_DELAY: Duration = secs(300);
/// ECS rolling deployment defaults.
pub const MINIMUM_HEALTHY_PERCENT: u32 = 100;
pub const MAXIMUM_PERCENT: u32 = 200;
/// ALB defaults: round robin, 30 s interval, 5 healthy / 2 unhealthy, 60 s idle timeout.
pub const HEALTH_CHECK_INTERVAL: Duration = secs(30);
pub const HEALTHY_THRESHOLD: u32 = 5;
pub const UNHEALTHY_THRESHOLD: u32 = 2;
pub const IDLE_TIMEOUT: Duration = secs(60);
/// The runtime's drain deadline, as a share of `stop_timeout`: leave time to hand off.
pub const DRAIN_SHARE_OF_STOP_TIMEOUT: f64 = 0.8;
/// Session protocol v1: a keepalive comment at least every 15 s.
pub const KEEPALIVE: Duration = secs(15);

// [load].
pub const RAMP: Duration = secs(0);
pub const THINK_TIME: Duration = secs(0);

// [sessions].
/// MISSION: sessions last 30 s to 10 minutes.
pub const SESSION_LENGTH_MEDIAN: Duration = secs(180);
pub const SESSION_LENGTH_P99: Duration = secs(600);
pub const TOKENS_PER_SECOND: f64 = 30.0;
pub const RUNAWAY_FRACTION: f64 = 0.0;
/// The single query class used when none is written.
pub const QUERY_CLASS: &str = "default";
pub const QUERY_CLASS_WEIGHT: f64 = 1.0;
pub const RESUME_MAX_RETRIES: u32 = 5;
pub const RESUME_BACKOFF_INITIAL: Duration = millis(250);
pub const RESUME_BACKOFF_MAX: Duration = secs(10);
/// Client idle timeout: three missed keepalives.
pub const SESSION_IDLE_TIMEOUT: Duration = secs(45);

// [llm].
pub const TTFT_MEDIAN: Duration = millis(700);
pub const TTFT_P99: Duration = secs(3);
/// When `itl` is not written: median = 1 / tokens_per_second, p99 = median × this.
pub const ITL_P99_OVER_MEDIAN: f64 = 3.0;
pub const MAX_CONCURRENT: u32 = 256;
pub const LOAD_FACTOR: f64 = 0.0;
/// USD per million tokens (a mid-size hosted model).
pub const PRICE_INPUT_PER_MTOK: f64 = 3.0;
pub const PRICE_OUTPUT_PER_MTOK: f64 = 15.0;

// [[faults]].
/// `kill` with `signal = "SIGTERM"`: SIGKILL after this (ECS StopTask waits `stopTimeout`).
pub const KILL_TIMEOUT: Duration = STOP_TIMEOUT;
pub const COMMAND_TIMEOUT: Duration = secs(60);
/// Replicas start as `v1`; the n-th deploy without a `version` rolls out `v{n+1}`.
pub const FIRST_VERSION: u32 = 1;

// [gates].
/// MISSION: lost or duplicated events and content mismatches are data loss and always fail
/// a gate, so these three gates are on with threshold 0 unless the file sets them.
pub const DATA_LOSS_THRESHOLD: u64 = 0;

// [autoscaling].
pub const AUTOSCALING_MIN: u32 = 1;
/// Application Auto Scaling target tracking default cooldowns.
pub const SCALE_OUT_COOLDOWN: Duration = secs(300);
pub const SCALE_IN_COOLDOWN: Duration = secs(300);

/// The runtime's session lease; heartbeats every third of it.
pub const LEASE_TTL: Duration = Duration::from_secs(5);
/// Below this (wall clock) a loaded journal could miss heartbeats and take live sessions over
/// (seen at 500 sessions on one SQLite file with 500 ms: fenced, but wasteful).
pub const MIN_WALL_LEASE_TTL: Duration = Duration::from_secs(1);
