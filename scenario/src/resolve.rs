//! From the file as written ([`RawScenario`]) to a runnable [`ScenarioPlan`]: range and
//! cross-field checks, defaults from `defaults.rs`, then `time_scale` applied to every
//! duration and rate (the rule is in `plan.rs`). Sections live in their own files:
//! `target.rs`, `mix.rs` (sessions and LLM), `timeline.rs` (faults); load, gates and
//! autoscaling are here.

use std::path::Path;
use std::time::Duration;

use super::checks::*;
use super::defaults as d;
use super::file::{Dur, RawAutoscaling, RawExpect, RawGates, RawHalt, RawLoad, RawScenario};
use super::plan::*;
use super::{mix, target, timeline};

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
    let target = target::target(raw.target, scale)?;
    let load = load(raw.load, scale, real_duration)?;
    let sessions = mix::sessions(raw.sessions, scale, &target)?;
    let llm = mix::llm(raw.llm, scale, sessions.tokens_per_second)?;
    let faults = timeline::faults(raw.faults, scale, real_duration, &target)?;
    let gates = gates(raw.gates, scale, &target)?;
    let autoscaling = raw
        .autoscaling
        .map(|a| autoscaling(a, scale, &target))
        .transpose()?
        .flatten();
    let expect = raw.expect.map(|e| expectation(e, &gates)).transpose()?;
    let halt = raw.halt.map(halt).transpose()?;
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
        expect,
        halt,
    })
}

// ---- [halt] ----------------------------------------------------------------------------

fn halt(raw: RawHalt) -> Checked<HaltPlan> {
    if let Some(rate) = raw.error_rate
        && !(rate > 0.0 && rate < 1.0)
    {
        return invalid(
            "halt.error_rate",
            format!("must be in (0, 1), found {rate}"),
        );
    }
    let plan = HaltPlan {
        dropped_sessions: raw.dropped_sessions,
        error_rate: raw.error_rate,
        min_sessions: raw.min_sessions.unwrap_or(10),
        data_loss: raw.data_loss.unwrap_or(true),
    };
    if plan.dropped_sessions.is_none() && plan.error_rate.is_none() && !plan.data_loss {
        return invalid(
            "halt",
            "names no condition: set dropped_sessions, error_rate or data_loss = true",
        );
    }
    Ok(plan)
}

// ---- [expect] --------------------------------------------------------------------------

/// Gates every run evaluates whether or not `[gates]` names them (`dropzero-reports`).
const ALWAYS_EVALUATED: &[&str] = &["sessions_started_min"];

fn expectation(raw: RawExpect, gates: &[Gate]) -> Checked<Expectation> {
    if raw.verdict == Verdict::Pass && !raw.failing_gates.is_empty() {
        return invalid(
            "expect.failing_gates",
            "only goes with verdict = \"fail\" (a passing run fails no gate)",
        );
    }
    for name in &raw.failing_gates {
        if !gates.iter().any(|g| g.name() == name) && !ALWAYS_EVALUATED.contains(&name.as_str()) {
            let known: Vec<&str> = gates.iter().map(Gate::name).collect();
            return invalid(
                "expect.failing_gates",
                format!(
                    "{name:?} is not a gate of this scenario; its gates are {}",
                    known.join(", ")
                ),
            );
        }
    }
    Ok(Expectation {
        verdict: raw.verdict,
        failing_gates: raw.failing_gates,
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

// ---- [gates] and [autoscaling] -------------------------------------------------------------

fn gates(raw: RawGates, scale: Scale, target: &TargetPlan) -> Checked<Vec<Gate>> {
    let time = |name: &str, v: Option<Dur>| -> Checked<Option<Duration>> {
        v.map(|t| positive(&format!("gates.{name}"), t.0).map(|()| scale.time(t.0)))
            .transpose()
    };
    // Latency gates are what a client feels, never scaled (see `plan.rs`): TTFT and ITL are
    // LLM latencies; resume latency is set by mechanisms that do not compress either (lease
    // polling, reconnect, the first event after a takeover).
    let real_time = |name: &str, v: Option<Dur>| -> Checked<Option<Duration>> {
        v.map(|t| positive(&format!("gates.{name}"), t.0).map(|()| t.0))
            .transpose()
    };
    let ratio =
        |name: &str, v: Option<f64>| v.map(|r| fraction(&format!("gates.{name}"), r)).transpose();
    let data_loss = |v: Option<u64>| Some(v.unwrap_or(d::DATA_LOSS_THRESHOLD));
    // Memory is read from /proc/<pid> of the replicas the harness itself started.
    if let Some(mb) = raw.replica_peak_rss_mb {
        if !matches!(target, TargetPlan::Local(_)) {
            return invalid(
                "gates.replica_peak_rss_mb",
                "needs target.kind = \"local\" (the harness reads the memory of the replicas it starts)",
            );
        }
        if mb == 0 {
            return invalid(
                "gates.replica_peak_rss_mb",
                "must be at least 1 (MiB), found 0",
            );
        }
    }
    let gates = [
        raw.dropped_sessions.map(Gate::DroppedSessions),
        data_loss(raw.lost_events).map(Gate::LostEvents),
        data_loss(raw.duplicated_events).map(Gate::DuplicatedEvents),
        data_loss(raw.content_mismatches).map(Gate::ContentMismatches),
        real_time("ttft_p99", raw.ttft_p99)?.map(Gate::TtftP99),
        real_time("itl_p99", raw.itl_p99)?.map(Gate::ItlP99),
        real_time("resume_p99", raw.resume_p99)?.map(Gate::ResumeP99),
        ratio("wasted_token_ratio", raw.wasted_token_ratio)?.map(Gate::WastedTokenRatio),
        ratio("error_rate", raw.error_rate)?.map(Gate::ErrorRate),
        time("scale_out_reaction", raw.scale_out_reaction)?.map(Gate::ScaleOutReaction),
        time("slo_recovery", raw.slo_recovery)?.map(Gate::SloRecovery),
        raw.failed_deployments.map(Gate::FailedDeployments),
        raw.replica_peak_rss_mb.map(Gate::ReplicaPeakRssMb),
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
    // The fleet whose replica count must sit inside min..=max: a local target's, or the one
    // an ECS rehearsal runs behind the emulator. A real ECS service scales by its own policy;
    // the table then says which policy to measure the reactions against.
    let (field, replicas) = match target {
        TargetPlan::Local(local) => ("target.replicas", Some(local.replicas)),
        TargetPlan::Ecs(ecs) => (
            "target.emulator.replicas",
            ecs.emulator.as_ref().map(|e| e.fleet.replicas),
        ),
        TargetPlan::Url(_) => {
            return invalid(
                "autoscaling",
                "is emulated for local targets and observed on ecs targets; a url target scales by its own policy, which dropzero cannot see (set enabled = false or remove the table)",
            );
        }
    };
    let target_value = positive_number("autoscaling.target_value", raw.target_value)?;
    let min = at_least("autoscaling.min", raw.min.unwrap_or(d::AUTOSCALING_MIN), 1)?;
    let max = at_least("autoscaling.max", raw.max, min)?;
    if let Some(replicas) = replicas
        && !(min..=max).contains(&replicas)
    {
        return invalid(
            field,
            format!("must be within autoscaling.min..=max ({min}..={max}), found {replicas}"),
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
