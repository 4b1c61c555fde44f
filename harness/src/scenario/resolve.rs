//! From the file as written ([`RawScenario`]) to a runnable [`ScenarioPlan`]: range and
//! cross-field checks, defaults from `defaults.rs`, then `time_scale` applied to every
//! duration and rate (the rule is in `plan.rs`). Errors are a field path and a sentence;
//! `locate.rs` turns the path into a line. The fault timeline is checked in `timeline.rs`.

use std::path::Path;
use std::time::Duration;

use super::defaults as d;
use super::file::{
    Dur, RawAutoscaling, RawGates, RawLlm, RawLlmFaults, RawLoad, RawLocal, RawPercentiles,
    RawScenario, RawSessions, RawTarget,
};
use super::plan::*;
use super::timeline;

/// A problem with the field at `path` (e.g. `load.stages[0].users`).
#[derive(Debug)]
pub struct Invalid {
    pub path: String,
    pub message: String,
}

pub type Checked<T> = Result<T, Invalid>;

pub fn invalid<T>(path: impl Into<String>, message: impl Into<String>) -> Checked<T> {
    Err(Invalid {
        path: path.into(),
        message: message.into(),
    })
}

/// `30s`, `1m 30s`: how durations appear in messages.
pub fn show(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// Real-world time → wall-clock time.
#[derive(Debug, Clone, Copy)]
pub struct Scale(pub f64);

impl Scale {
    pub fn time(self, real: Duration) -> Duration {
        real.mul_f64(self.0)
    }
    pub fn dur(self, real: Option<Dur>, default: Duration) -> Duration {
        self.time(real.map_or(default, |d| d.0))
    }
    /// Wall-clock time → real-world time, to the millisecond (for messages).
    pub fn to_real(self, wall: Duration) -> Duration {
        let ms = (wall.as_secs_f64() / self.0 * 1000.0).round();
        Duration::from_millis(ms as u64)
    }
    /// Per real second → per wall-clock second.
    pub fn rate(self, per_real_second: f64) -> f64 {
        per_real_second / self.0
    }
}

pub fn resolve(raw: RawScenario, file: &Path) -> Checked<ScenarioPlan> {
    let name = raw.name;
    let valid_char = |c: char| c.is_ascii_alphanumeric() || "-_.".contains(c);
    if name.is_empty() || !name.chars().all(valid_char) {
        return invalid(
            "name",
            format!(
                "must be letters, digits, '-', '_' or '.' (it names the report directory), found {name:?}"
            ),
        );
    }
    let time_scale = raw.time_scale.unwrap_or(d::TIME_SCALE);
    if !(time_scale > 0.0 && time_scale <= d::MAX_TIME_SCALE) {
        return invalid(
            "time_scale",
            format!("must be in (0, {}], found {time_scale}", d::MAX_TIME_SCALE),
        );
    }
    let scale = Scale(time_scale);
    let real_duration = raw.duration.0;
    positive("duration", real_duration)?;
    let target = target(raw.target, scale)?;
    let load = load(raw.load, scale, real_duration)?;
    let sessions = sessions(raw.sessions, scale, &target)?;
    let llm = llm(raw.llm, scale, sessions.tokens_per_second)?;
    let faults = timeline::faults(raw.faults, scale, real_duration, &target)?;
    let gates = gates(raw.gates, scale)?;
    let autoscaling = raw
        .autoscaling
        .map(|a| autoscaling(a, scale, &target))
        .transpose()?
        .flatten();
    Ok(ScenarioPlan {
        file: file.to_path_buf(),
        name,
        description: raw.description.unwrap_or_default(),
        seed: raw.seed.unwrap_or(d::SEED),
        time_scale,
        duration: scale.time(real_duration),
        real_duration,
        target,
        load,
        sessions,
        llm,
        faults,
        gates,
        autoscaling,
    })
}

// ---- small checks shared by every section -----------------------------------------------

pub fn positive(path: &str, real: Duration) -> Checked<()> {
    if real.is_zero() {
        invalid(path, "must be longer than 0s")
    } else {
        Ok(())
    }
}

pub fn fraction(path: &str, value: f64) -> Checked<f64> {
    if (0.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        invalid(path, format!("must be in [0, 1], found {value}"))
    }
}

fn positive_number(path: &str, value: f64) -> Checked<f64> {
    if value.is_finite() && value > 0.0 {
        Ok(value)
    } else {
        invalid(path, format!("must be a number above 0, found {value}"))
    }
}

fn non_negative(path: &str, value: f64) -> Checked<f64> {
    if value.is_finite() && value >= 0.0 {
        Ok(value)
    } else {
        invalid(path, format!("must be 0 or more, found {value}"))
    }
}

pub fn at_least(path: &str, value: u32, min: u32) -> Checked<u32> {
    if value >= min {
        Ok(value)
    } else {
        invalid(path, format!("must be at least {min}, found {value}"))
    }
}

fn latency(
    path: &str,
    raw: Option<RawPercentiles<Dur>>,
    default: (Duration, Duration),
    scale: Scale,
) -> Checked<Percentiles<Duration>> {
    let (median, p99) = raw.map_or(default, |p| (p.median.0, p.p99.0));
    positive(&format!("{path}.median"), median)?;
    if p99 < median {
        return invalid(
            format!("{path}.p99"),
            format!(
                "must be at least the median ({}), found {}",
                show(median),
                show(p99)
            ),
        );
    }
    Ok(Percentiles {
        median: scale.time(median),
        p99: scale.time(p99),
    })
}

// ---- [target] --------------------------------------------------------------------------

fn target(raw: RawTarget, scale: Scale) -> Checked<TargetPlan> {
    match raw {
        RawTarget::Local(local) => Ok(TargetPlan::Local(local_target(local, scale)?)),
        RawTarget::Url(u) => {
            let Some(url) = u.url else {
                return invalid(
                    "target.url",
                    "a url target needs url = \"http://host:port\"",
                );
            };
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return invalid(
                    "target.url",
                    format!("must start with http:// or https://, found {url:?}"),
                );
            }
            let api_key = match (u.api_key, u.api_key_env) {
                (Some(_), Some(_)) => {
                    return invalid("target.api_key_env", "set api_key or api_key_env, not both");
                }
                (Some(key), None) => Some(ApiKey::Literal(key)),
                (None, Some(var)) => Some(ApiKey::Env(var)),
                (None, None) => None,
            };
            Ok(TargetPlan::Url(UrlTarget { url, api_key }))
        }
        RawTarget::Ecs(e) => {
            for (field, value) in [
                ("cluster", &e.cluster),
                ("service", &e.service),
                ("region", &e.region),
            ] {
                if value.trim().is_empty() {
                    return invalid(format!("target.{field}"), "must not be empty");
                }
            }
            Ok(TargetPlan::Ecs(EcsTarget {
                cluster: e.cluster,
                service: e.service,
                region: e.region,
                endpoint_url: e.endpoint_url,
            }))
        }
    }
}

fn local_target(raw: RawLocal, scale: Scale) -> Checked<LocalTarget> {
    let replicas = at_least("target.replicas", raw.replicas.unwrap_or(d::REPLICAS), 1)?;
    let stop_timeout = raw.stop_timeout.map_or(d::STOP_TIMEOUT, |t| t.0);
    positive("target.stop_timeout", stop_timeout)?;
    if stop_timeout > d::MAX_STOP_TIMEOUT {
        return invalid(
            "target.stop_timeout",
            format!(
                "must be at most {} (Fargate's maximum stopTimeout), found {}",
                show(d::MAX_STOP_TIMEOUT),
                show(stop_timeout)
            ),
        );
    }
    let drain_timeout = raw
        .drain_timeout
        .map_or(stop_timeout.mul_f64(d::DRAIN_SHARE_OF_STOP_TIMEOUT), |t| {
            t.0
        });
    if drain_timeout >= stop_timeout {
        return invalid(
            "target.drain_timeout",
            format!(
                "must be shorter than stop_timeout ({}) so sessions are handed off before SIGKILL, found {}",
                show(stop_timeout),
                show(drain_timeout)
            ),
        );
    }
    let min_healthy = raw
        .deployment
        .minimum_healthy_percent
        .unwrap_or(d::MINIMUM_HEALTHY_PERCENT);
    if min_healthy > 100 {
        return invalid(
            "target.deployment.minimum_healthy_percent",
            format!("must be in 0..=100, found {min_healthy}"),
        );
    }
    let max_percent = at_least(
        "target.deployment.maximum_percent",
        raw.deployment.maximum_percent.unwrap_or(d::MAXIMUM_PERCENT),
        100,
    )?;
    // ECS rounds the upper bound down and the lower bound up; a deployment needs room to
    // start or stop at least one task, or it never progresses.
    let (n, max, min) = (
        u64::from(replicas),
        u64::from(max_percent),
        u64::from(min_healthy),
    );
    if n * max / 100 <= n && (n * min).div_ceil(100) >= n {
        return invalid(
            "target.deployment.maximum_percent",
            format!(
                "leaves no room for a rolling deploy: with {replicas} replicas, maximum_percent {max_percent} and minimum_healthy_percent {min_healthy}, no task can start or stop"
            ),
        );
    }
    let idle_timeout = raw.router.idle_timeout.map_or(d::IDLE_TIMEOUT, |t| t.0);
    positive("target.router.idle_timeout", idle_timeout)?;
    let keepalive = raw.keepalive.map_or(d::KEEPALIVE, |t| t.0);
    positive("target.keepalive", keepalive)?;
    if keepalive >= idle_timeout {
        return invalid(
            "target.keepalive",
            format!(
                "must be shorter than router.idle_timeout ({}), or quiet streams are cut, found {}",
                show(idle_timeout),
                show(keepalive)
            ),
        );
    }
    let health_check_interval = raw
        .router
        .health_check_interval
        .map_or(d::HEALTH_CHECK_INTERVAL, |t| t.0);
    positive("target.router.health_check_interval", health_check_interval)?;
    if let Some(mb) = raw.memory_limit_mb {
        if mb < 32 {
            return invalid(
                "target.memory_limit_mb",
                format!("must be at least 32 (a replica needs room to start), found {mb}"),
            );
        }
    }
    Ok(LocalTarget {
        replicas,
        mode: raw.mode.unwrap_or(RuntimeMode::Resilient),
        journal: raw.journal.unwrap_or(Journal::Sqlite),
        stop_timeout: scale.time(stop_timeout),
        deregistration_delay: scale.dur(raw.deregistration_delay, d::DEREGISTRATION_DELAY),
        deployment: DeploymentConfig {
            minimum_healthy_percent: min_healthy,
            maximum_percent: max_percent,
        },
        router: RouterConfig {
            algorithm: raw.router.algorithm.unwrap_or(Algorithm::RoundRobin),
            health_check_interval: scale.time(health_check_interval),
            healthy_threshold: at_least(
                "target.router.healthy_threshold",
                raw.router.healthy_threshold.unwrap_or(d::HEALTHY_THRESHOLD),
                1,
            )?,
            unhealthy_threshold: at_least(
                "target.router.unhealthy_threshold",
                raw.router
                    .unhealthy_threshold
                    .unwrap_or(d::UNHEALTHY_THRESHOLD),
                1,
            )?,
            idle_timeout: scale.time(idle_timeout),
        },
        drain_timeout: scale.time(drain_timeout),
        keepalive: scale.time(keepalive),
        memory_limit_mb: raw.memory_limit_mb,
    })
}

// ---- [load] ----------------------------------------------------------------------------

fn load(raw: RawLoad, scale: Scale, real_duration: Duration) -> Checked<LoadPlan> {
    let (stage_count, total) = match &raw {
        RawLoad::Closed(c) => (
            c.stages.len(),
            c.stages
                .iter()
                .map(|s| s.ramp.map_or(d::RAMP, |r| r.0) + s.hold.0)
                .sum::<Duration>(),
        ),
        RawLoad::Open(o) => (
            o.stages.len(),
            o.stages
                .iter()
                .map(|s| s.ramp.map_or(d::RAMP, |r| r.0) + s.hold.0)
                .sum(),
        ),
    };
    if stage_count == 0 {
        return invalid(
            "load.stages",
            "needs at least one stage, e.g. stages = [ { users = 10, ramp = \"30s\", hold = \"5m\" } ]",
        );
    }
    if total > real_duration {
        return invalid(
            "load.stages",
            format!(
                "last {} in total (ramps + holds), longer than duration ({})",
                show(total),
                show(real_duration)
            ),
        );
    }
    Ok(match raw {
        RawLoad::Closed(c) => {
            let mut stages = Vec::new();
            for (i, s) in c.stages.into_iter().enumerate() {
                let users = at_least(&format!("load.stages[{i}].users"), s.users, 1)?;
                stages.push(UserStage {
                    users,
                    ramp: scale.dur(s.ramp, d::RAMP),
                    hold: scale.time(s.hold.0),
                });
            }
            LoadPlan::Closed(ClosedLoad {
                stages,
                think_time: scale.dur(c.think_time, d::THINK_TIME),
            })
        }
        RawLoad::Open(o) => {
            let mut stages = Vec::new();
            for (i, s) in o.stages.into_iter().enumerate() {
                let rate = positive_number(&format!("load.stages[{i}].rate"), s.rate)?;
                stages.push(RateStage {
                    rate: scale.rate(rate),
                    ramp: scale.dur(s.ramp, d::RAMP),
                    hold: scale.time(s.hold.0),
                });
            }
            LoadPlan::Open(OpenLoad {
                stages,
                arrival: o.arrival.unwrap_or(Arrival::Poisson),
            })
        }
    })
}

// ---- [sessions] and [llm] ----------------------------------------------------------------

fn sessions(raw: RawSessions, scale: Scale, target: &TargetPlan) -> Checked<SessionMix> {
    let size = match (raw.length, raw.tokens) {
        (Some(_), Some(_)) => {
            return invalid(
                "sessions.tokens",
                "set either sessions.length or sessions.tokens, not both",
            );
        }
        (None, Some(t)) => {
            if t.median == 0 {
                return invalid("sessions.tokens.median", "must be at least 1");
            }
            if t.p99 < t.median {
                return invalid(
                    "sessions.tokens.p99",
                    format!(
                        "must be at least the median ({}), found {}",
                        t.median, t.p99
                    ),
                );
            }
            SessionSize::Tokens(Percentiles {
                median: t.median,
                p99: t.p99,
            })
        }
        (length, None) => SessionSize::Length(latency(
            "sessions.length",
            length,
            (d::SESSION_LENGTH_MEDIAN, d::SESSION_LENGTH_P99),
            scale,
        )?),
    };
    let tokens_per_second = positive_number(
        "sessions.tokens_per_second",
        raw.tokens_per_second.unwrap_or(d::TOKENS_PER_SECOND),
    )?;
    let runaway_fraction = fraction(
        "sessions.runaway_fraction",
        raw.runaway_fraction.unwrap_or(d::RUNAWAY_FRACTION),
    )?;
    let mut classes = Vec::new();
    for (i, c) in raw.classes.into_iter().enumerate() {
        if c.name.trim().is_empty() {
            return invalid(format!("sessions.classes[{i}].name"), "must not be empty");
        }
        if classes.iter().any(|q: &QueryClass| q.name == c.name) {
            return invalid(
                format!("sessions.classes[{i}].name"),
                format!(
                    "{:?} is used by an earlier class; names must be unique",
                    c.name
                ),
            );
        }
        let weight = positive_number(
            &format!("sessions.classes[{i}].weight"),
            c.weight.unwrap_or(d::QUERY_CLASS_WEIGHT),
        )?;
        classes.push(QueryClass {
            query: c.query.unwrap_or_else(|| c.name.clone()),
            name: c.name,
            weight,
        });
    }
    if classes.is_empty() {
        classes.push(QueryClass {
            name: d::QUERY_CLASS.into(),
            weight: d::QUERY_CLASS_WEIGHT,
            query: d::QUERY_CLASS.into(),
        });
    }
    let budget = match raw.budget {
        None => None,
        Some(b)
            if b.max_output_tokens.is_none()
                && b.max_cost_usd.is_none()
                && b.max_duration.is_none() =>
        {
            return invalid(
                "sessions.budget",
                "set at least one of max_output_tokens, max_cost_usd, max_duration",
            );
        }
        Some(b) => {
            if b.max_output_tokens == Some(0) {
                return invalid("sessions.budget.max_output_tokens", "must be at least 1");
            }
            let max_cost_usd = b
                .max_cost_usd
                .map(|c| positive_number("sessions.budget.max_cost_usd", c))
                .transpose()?;
            if let Some(t) = b.max_duration {
                positive("sessions.budget.max_duration", t.0)?;
            }
            Some(Budget {
                max_output_tokens: b.max_output_tokens,
                max_cost_usd,
                max_duration: b.max_duration.map(|t| scale.time(t.0)),
            })
        }
    };
    let backoff_initial = raw
        .resume
        .backoff_initial
        .map_or(d::RESUME_BACKOFF_INITIAL, |t| t.0);
    positive("sessions.resume.backoff_initial", backoff_initial)?;
    let backoff_max = raw
        .resume
        .backoff_max
        .map_or(d::RESUME_BACKOFF_MAX, |t| t.0);
    if backoff_max < backoff_initial {
        return invalid(
            "sessions.resume.backoff_max",
            format!(
                "must be at least backoff_initial ({}), found {}",
                show(backoff_initial),
                show(backoff_max)
            ),
        );
    }
    let idle_timeout = raw.idle_timeout.map_or(d::SESSION_IDLE_TIMEOUT, |t| t.0);
    positive("sessions.idle_timeout", idle_timeout)?;
    if let TargetPlan::Local(local) = target {
        if scale.time(idle_timeout) <= local.keepalive {
            let keepalive = scale.to_real(local.keepalive);
            return invalid(
                "sessions.idle_timeout",
                format!(
                    "must be longer than target.keepalive ({}), or every quiet stream counts as interrupted, found {}",
                    show(keepalive),
                    show(idle_timeout)
                ),
            );
        }
    }
    Ok(SessionMix {
        size,
        tokens_per_second: scale.rate(tokens_per_second),
        runaway_fraction,
        classes,
        budget,
        resume: ResumePolicy {
            max_retries: raw.resume.max_retries.unwrap_or(d::RESUME_MAX_RETRIES),
            backoff_initial: scale.time(backoff_initial),
            backoff_max: scale.time(backoff_max),
        },
        idle_timeout: scale.time(idle_timeout),
    })
}

fn llm(raw: RawLlm, scale: Scale, wall_tokens_per_second: f64) -> Checked<LlmProfile> {
    let ttft = latency("llm.ttft", raw.ttft, (d::TTFT_MEDIAN, d::TTFT_P99), scale)?;
    let itl = match raw.itl {
        Some(itl) => latency(
            "llm.itl",
            Some(itl),
            (Duration::ZERO, Duration::ZERO),
            scale,
        )?,
        None => {
            let median = Duration::from_secs_f64(1.0 / wall_tokens_per_second);
            Percentiles {
                median,
                p99: median.mul_f64(d::ITL_P99_OVER_MEDIAN),
            }
        }
    };
    Ok(LlmProfile {
        ttft,
        itl,
        max_concurrent: at_least(
            "llm.max_concurrent",
            raw.max_concurrent.unwrap_or(d::MAX_CONCURRENT),
            1,
        )?,
        load_factor: non_negative("llm.load_factor", raw.load_factor.unwrap_or(d::LOAD_FACTOR))?,
        price: Price {
            input_per_mtok: non_negative(
                "llm.price.input_per_mtok",
                raw.price.input_per_mtok.unwrap_or(d::PRICE_INPUT_PER_MTOK),
            )?,
            output_per_mtok: non_negative(
                "llm.price.output_per_mtok",
                raw.price
                    .output_per_mtok
                    .unwrap_or(d::PRICE_OUTPUT_PER_MTOK),
            )?,
        },
        faults: llm_faults("llm.faults", raw.faults, scale)?,
    })
}

/// Shared by `[llm.faults]` and `llm_brownout` faults (`path` is the table holding them).
pub fn llm_faults(path: &str, raw: RawLlmFaults, scale: Scale) -> Checked<LlmFaults> {
    if raw.cut_after_tokens == Some(0) {
        return invalid(format!("{path}.cut_after_tokens"), "must be at least 1");
    }
    Ok(LlmFaults {
        rate_limit: fraction(&format!("{path}.rate_limit"), raw.rate_limit.unwrap_or(0.0))?,
        overloaded: fraction(&format!("{path}.overloaded"), raw.overloaded.unwrap_or(0.0))?,
        server_error: fraction(
            &format!("{path}.server_error"),
            raw.server_error.unwrap_or(0.0),
        )?,
        extra_latency: scale.dur(raw.extra_latency, Duration::ZERO),
        cut_after_tokens: raw.cut_after_tokens,
        stall: raw.stall.map(|s| scale.time(s.0)),
    })
}

// ---- [gates] and [autoscaling] -------------------------------------------------------------

fn gates(raw: RawGates, scale: Scale) -> Checked<Vec<Gate>> {
    let time = |name: &str, v: Option<Dur>| -> Checked<Option<Duration>> {
        v.map(|t| positive(&format!("gates.{name}"), t.0).map(|()| scale.time(t.0)))
            .transpose()
    };
    let ratio =
        |name: &str, v: Option<f64>| v.map(|r| fraction(&format!("gates.{name}"), r)).transpose();
    let data_loss = |v: Option<u64>| Some(v.unwrap_or(d::DATA_LOSS_THRESHOLD));
    let gates = [
        raw.dropped_sessions.map(Gate::DroppedSessions),
        data_loss(raw.lost_events).map(Gate::LostEvents),
        data_loss(raw.duplicated_events).map(Gate::DuplicatedEvents),
        data_loss(raw.content_mismatches).map(Gate::ContentMismatches),
        time("ttft_p99", raw.ttft_p99)?.map(Gate::TtftP99),
        time("itl_p99", raw.itl_p99)?.map(Gate::ItlP99),
        time("resume_p99", raw.resume_p99)?.map(Gate::ResumeP99),
        ratio("wasted_token_ratio", raw.wasted_token_ratio)?.map(Gate::WastedTokenRatio),
        ratio("error_rate", raw.error_rate)?.map(Gate::ErrorRate),
        time("scale_out_reaction", raw.scale_out_reaction)?.map(Gate::ScaleOutReaction),
        time("slo_recovery", raw.slo_recovery)?.map(Gate::SloRecovery),
    ];
    Ok(gates.into_iter().flatten().collect())
}

fn autoscaling(
    raw: RawAutoscaling,
    scale: Scale,
    target: &TargetPlan,
) -> Checked<Option<AutoscalingPlan>> {
    if raw.enabled == Some(false) {
        return Ok(None);
    }
    let TargetPlan::Local(local) = target else {
        return invalid(
            "autoscaling",
            "is emulated for local targets only; a url or ecs target scales by its own policy (set enabled = false or remove the table)",
        );
    };
    let target_value = positive_number("autoscaling.target_value", raw.target_value)?;
    let min = at_least("autoscaling.min", raw.min.unwrap_or(d::AUTOSCALING_MIN), 1)?;
    let max = at_least("autoscaling.max", raw.max, min)?;
    if !(min..=max).contains(&local.replicas) {
        return invalid(
            "target.replicas",
            format!(
                "must be within autoscaling.min..=max ({min}..={max}), found {}",
                local.replicas
            ),
        );
    }
    Ok(Some(AutoscalingPlan {
        metric: raw.metric.unwrap_or(ScalingMetric::ActiveSessions),
        target_value,
        min,
        max,
        scale_out_cooldown: scale.dur(raw.scale_out_cooldown, d::SCALE_OUT_COOLDOWN),
        scale_in_cooldown: scale.dur(raw.scale_in_cooldown, d::SCALE_IN_COOLDOWN),
    }))
}
