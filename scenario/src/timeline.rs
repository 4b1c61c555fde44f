//! Checks and resolves `[[faults]]` into the fault timeline: each fault inside the run,
//! its parameters in range, and only on targets that can perform it (a `url` target is
//! changed through `command` hooks; `oom` and `network` need the local fleet). An entry
//! with `every` and `times` becomes one fault per repetition (`repeat.rs`). Called from
//! `resolve.rs`.

use std::time::Duration;

use super::checks::{Checked, Scale, at_least, fraction, invalid, positive, show};
use super::defaults as d;
use super::file::{RawFault, RawKill, RawLlmFaults};
use super::mix::llm_faults;
use super::plan::*;

/// Resolves every fault, then sorts the timeline by `at` (stable: equal times keep file
/// order). Errors name the fault by its index in the file.
pub fn faults(
    raw: Vec<RawFault>,
    scale: Scale,
    real_duration: Duration,
    target: &TargetPlan,
) -> Checked<Vec<FaultPlan>> {
    let mut plan = Vec::with_capacity(raw.len());
    for (i, fault) in raw.into_iter().enumerate() {
        let path = format!("faults[{i}]");
        let repeat = fault.repeat();
        let (at, real_window, action) = fault_action(&path, fault, scale, target)?;
        if at >= real_duration {
            return invalid(
                format!("{path}.at"),
                format!(
                    "must be before the end of the run (duration = {}), found {}",
                    show(real_duration),
                    show(at)
                ),
            );
        }
        if at + real_window > real_duration {
            return invalid(
                format!("{path}.duration"),
                format!(
                    "runs past the end of the run: {} + {} > {}",
                    show(at),
                    show(real_window),
                    show(real_duration)
                ),
            );
        }
        let starts = super::repeat::starts(&path, repeat, at, real_window, real_duration)?;
        let times = u32::try_from(starts.len()).unwrap_or(u32::MAX);
        let every = repeat.0.map_or(Duration::ZERO, |e| scale.time(e.0));
        for (k, start) in (0u32..).zip(starts) {
            plan.push(FaultPlan {
                at: scale.time(start),
                action: action.clone(),
                repeat: repeat.0.map(|_| Repeat {
                    entry: i,
                    index: k,
                    times,
                    every,
                }),
            });
        }
    }
    plan.sort_by_key(|f| f.at);
    let mut version = d::FIRST_VERSION;
    for fault in &mut plan {
        if let FaultAction::Deploy(deploy) = &mut fault.action {
            version += 1;
            if deploy.version.is_empty() {
                deploy.version = format!("v{version}");
            }
        }
    }
    Ok(plan)
}

/// `(at, window, action)` with `at` and `window` in real time for the bounds check.
fn fault_action(
    path: &str,
    fault: RawFault,
    scale: Scale,
    target: &TargetPlan,
) -> Checked<(Duration, Duration, FaultAction)> {
    let local = match target {
        TargetPlan::Local(local) => Some(local),
        _ => None,
    };
    let action = format!("{path}.action");
    let ecs = match target {
        TargetPlan::Ecs(ecs) => Some(ecs),
        _ => None,
    };
    let needs_local = |name: &str, why: &str| -> Checked<&LocalTarget> {
        local.map_or_else(
            || {
                let instead = if ecs.is_some() {
                    "; on ECS use action = \"command\" with your own hook, e.g. an AWS FIS experiment"
                } else {
                    ""
                };
                invalid(
                    &action,
                    format!("\"{name}\" needs target.kind = \"local\" ({why}){instead}"),
                )
            },
            Ok,
        )
    };
    // The journal faults act on the redis-server the harness itself started.
    let needs_own_redis = |name: &str| -> Checked<()> {
        let l = needs_local(name, "it acts on the redis-server the harness starts")?;
        if l.journal != (Journal::Redis { url: None }) {
            return invalid(
                &action,
                format!(
                    "\"{name}\" needs target.journal = \"redis\" (the harness's own redis-server)"
                ),
            );
        }
        Ok(())
    };
    let replica_in_range = |field: &str, replica: Option<u32>| -> Checked<()> {
        match (replica, local) {
            (Some(r), Some(l)) if r >= l.replicas => invalid(
                format!("{path}.{field}"),
                format!(
                    "must name a replica in 0..{} (target.replicas = {}), found {r}",
                    l.replicas, l.replicas
                ),
            ),
            _ => Ok(()),
        }
    };
    Ok(match fault {
        RawFault::Deploy(f) => {
            if matches!(target, TargetPlan::Url(_)) {
                return invalid(
                    &action,
                    "\"deploy\" cannot drive a url target; use action = \"command\" with your own restart hook",
                );
            }
            if f.task_definition.is_some() && ecs.is_none() {
                return invalid(
                    format!("{path}.task_definition"),
                    "only applies to target.kind = \"ecs\" (a local deploy takes version)",
                );
            }
            (
                f.at.0,
                Duration::ZERO,
                FaultAction::Deploy(DeployFault {
                    version: f.version.unwrap_or_default(),
                    task_definition: f.task_definition,
                }),
            )
        }
        RawFault::Kill(f) => {
            if matches!(target, TargetPlan::Url(_)) {
                return invalid(
                    &action,
                    "\"kill\" cannot drive a url target; use action = \"command\" with your own hook",
                );
            }
            let at = f.at.0;
            let kill = kill(path, f, scale, local.map(|l| l.replicas))?;
            if let Some(ecs) = ecs {
                ecs_kill(path, &kill, ecs)?;
            } else if matches!(kill.who, KillWho::Task(_)) {
                return invalid(
                    format!("{path}.task"),
                    "only applies to target.kind = \"ecs\" (a local kill takes replica)",
                );
            }
            (at, Duration::ZERO, FaultAction::Kill(kill))
        }
        RawFault::Oom(f) => {
            let l = needs_local(
                "oom",
                "it drives a replica the harness started past its memory limit",
            )?;
            if l.memory_limit_mb.is_none() {
                return invalid(
                    &action,
                    "\"oom\" needs target.memory_limit_mb, the limit the replica is driven past",
                );
            }
            replica_in_range("replica", f.replica)?;
            (
                f.at.0,
                Duration::ZERO,
                FaultAction::Oom(OomFault { replica: f.replica }),
            )
        }
        RawFault::LlmBrownout(f) => {
            positive(&format!("{path}.duration"), f.duration.0)?;
            let raw = RawLlmFaults {
                rate_limit: f.rate_limit,
                overloaded: f.overloaded,
                server_error: f.server_error,
                extra_latency: f.extra_latency,
                cut_after_tokens: f.cut_after_tokens,
                stall: f.stall,
            };
            let faults = llm_faults(path, raw, scale)?;
            if faults.is_none() {
                return invalid(
                    path,
                    "an llm_brownout needs at least one of rate_limit, overloaded, server_error, extra_latency, cut_after_tokens, stall",
                );
            }
            let brownout = BrownoutFault {
                duration: scale.time(f.duration.0),
                faults,
            };
            (f.at.0, f.duration.0, FaultAction::LlmBrownout(brownout))
        }
        RawFault::LlmOutage(f) => {
            positive(&format!("{path}.duration"), f.duration.0)?;
            let outage = OutageFault {
                duration: scale.time(f.duration.0),
            };
            (f.at.0, f.duration.0, FaultAction::LlmOutage(outage))
        }
        RawFault::Network(f) => {
            needs_local("network", "faults are injected in the local router")?;
            positive(&format!("{path}.duration"), f.duration.0)?;
            if !(f.fraction > 0.0 && f.fraction <= 1.0) {
                return invalid(
                    format!("{path}.fraction"),
                    format!("must be in (0, 1], found {}", f.fraction),
                );
            }
            let reset = f.reset.unwrap_or(false);
            let effects = usize::from(f.latency.is_some())
                + usize::from(reset)
                + usize::from(f.stall.is_some());
            if effects != 1 {
                return invalid(
                    path,
                    "a network fault needs exactly one of latency, reset = true, stall (one effect per window; add another [[faults]] entry for a second)",
                );
            }
            let network = NetworkFault {
                duration: scale.time(f.duration.0),
                fraction: fraction(&format!("{path}.fraction"), f.fraction)?,
                latency: f.latency.map(|l| scale.time(l.0)),
                reset,
                stall: f.stall.map(|s| scale.time(s.0)),
            };
            (f.at.0, f.duration.0, FaultAction::Network(network))
        }
        RawFault::JournalKill(f) => {
            let down = f.down.map_or(Duration::ZERO, |d| d.0);
            needs_own_redis("journal_kill")?;
            (
                f.at.0,
                down,
                FaultAction::JournalKill(JournalKillFault {
                    down: scale.time(down),
                }),
            )
        }
        RawFault::JournalOutage(f) => {
            needs_own_redis("journal_outage")?;
            positive(&format!("{path}.duration"), f.duration.0)?;
            (
                f.at.0,
                f.duration.0,
                FaultAction::JournalOutage(JournalOutageFault {
                    duration: scale.time(f.duration.0),
                }),
            )
        }
        RawFault::Command(f) => {
            if f.run.trim().is_empty() {
                return invalid(format!("{path}.run"), "must be a shell command");
            }
            let timeout = f.timeout.map_or(d::COMMAND_TIMEOUT, |t| t.0);
            positive(&format!("{path}.timeout"), timeout)?;
            let command = CommandFault {
                run: f.run,
                timeout: scale.time(timeout),
            };
            (f.at.0, Duration::ZERO, FaultAction::Command(command))
        }
    })
}

fn kill(path: &str, f: RawKill, scale: Scale, replicas: Option<u32>) -> Checked<KillFault> {
    let who = match (f.count, f.percent, f.replica, f.task) {
        (None, None, None, Some(task)) => {
            if task.trim().is_empty() {
                return invalid(format!("{path}.task"), "must be a task id or ARN");
            }
            KillWho::Task(task)
        }
        (_, _, _, Some(_)) => {
            return invalid(path, "set at most one of count, percent, replica, task");
        }
        (None, None, None, None) => KillWho::Count(1),
        (Some(count), None, None, None) => {
            let count = at_least(&format!("{path}.count"), count, 1)?;
            match replicas {
                Some(n) if count > n => {
                    return invalid(
                        format!("{path}.count"),
                        format!("must be at most target.replicas ({n}), found {count}"),
                    );
                }
                _ => KillWho::Count(count),
            }
        }
        (None, Some(percent), None, None) => {
            if !(1..=100).contains(&percent) {
                return invalid(
                    format!("{path}.percent"),
                    format!("must be in 1..=100, found {percent}"),
                );
            }
            KillWho::Percent(percent)
        }
        (None, None, Some(replica), None) => match replicas {
            Some(n) if replica >= n => {
                return invalid(
                    format!("{path}.replica"),
                    format!(
                        "must name a replica in 0..{n} (target.replicas = {n}), found {replica}"
                    ),
                );
            }
            _ => KillWho::Replica(replica),
        },
        _ => return invalid(path, "set at most one of count, percent, replica, task"),
    };
    let signal = match (f.signal.unwrap_or(Signal::Term), f.timeout) {
        (Signal::Term, timeout) => {
            let timeout = timeout.map_or(d::KILL_TIMEOUT, |t| t.0);
            positive(&format!("{path}.timeout"), timeout)?;
            KillSignal::Term {
                timeout: scale.time(timeout),
            }
        }
        (Signal::Kill, None) => KillSignal::Kill,
        (Signal::Kill, Some(_)) => {
            return invalid(
                format!("{path}.timeout"),
                "only applies to signal = \"SIGTERM\" (SIGKILL is immediate)",
            );
        }
    };
    Ok(KillFault { who, signal })
}

/// What StopTask can do: SIGTERM then SIGKILL after the task definition's `stopTimeout`
/// (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_StopTask.html), never
/// more tasks than the blast radius allows, never by local replica index.
fn ecs_kill(path: &str, kill: &KillFault, ecs: &EcsTarget) -> Checked<()> {
    if kill.signal == KillSignal::Kill {
        return invalid(
            format!("{path}.signal"),
            "ECS StopTask always sends SIGTERM, then SIGKILL after the task definition's stopTimeout; leave signal out",
        );
    }
    match kill.who {
        KillWho::Count(n) if n > ecs.max_stopped => invalid(
            format!("{path}.count"),
            format!(
                "stops {n} tasks but target.max_stopped (the blast radius) is {}",
                ecs.max_stopped
            ),
        ),
        KillWho::Replica(_) => invalid(
            format!("{path}.replica"),
            "an ECS kill names a task (task = \"<task id>\"), a count or a percent",
        ),
        _ => Ok(()),
    }
}
