//! The fault driver's ECS arms: a rolling deploy is `UpdateService(forceNewDeployment)`
//! watched to COMPLETED or FAILED; a kill is `StopTask` on chosen tasks, after which the
//! ECS service scheduler (not the harness) starts replacements. Each records, in the fault's
//! entry, the tasks it acted on, the tasks ECS started, and one stop record per stopped task
//! with ECS's own stop code and reason; what the clients saw of each stopped task is filled
//! in by [`super::FaultLog::records`] from the sessions' interruptions.
//!
//! Nothing here waits on a fixed sleep alone: every wait polls `DescribeServices` /
//! `DescribeTasks` at the target's poll interval and ends at a deadline.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use dropzero_reports as r;
use rand::SeedableRng;
use rand::seq::SliceRandom;

use super::{FaultId, FaultLog};
use crate::fleet::ecs::{EcsTarget, Observed, TaskView, arn_id};
use crate::scenario::{DeployFault, KillFault, KillWho};

/// What an ECS fault needs besides the target.
pub struct EcsFaultCtx<'a> {
    pub target: &'a EcsTarget,
    pub log: &'a FaultLog,
    pub id: FaultId,
    /// Names the scenario and fault in `StopTask`'s reason.
    pub label: String,
    /// Blast radius: most tasks one kill may stop.
    pub max_stopped: u32,
    /// How long a deployment (or a kill's replacement) may take.
    pub deadline: Duration,
}

/// Force a new deployment and watch it to the end.
pub async fn deploy(ctx: &EcsFaultCtx<'_>, d: &DeployFault) -> Result<(), String> {
    let before = ctx.target.refresh().await.map_err(|e| e.to_string())?;
    let old: BTreeSet<String> = before.running_tasks().into_iter().map(|t| t.id).collect();
    let began = SystemTime::now();
    ctx.log
        .update(ctx.id, |e| e.replicas = old.iter().cloned().collect());
    let deployment = ctx
        .target
        .force_new_deployment(d.task_definition.as_deref())
        .await
        .map_err(|e| e.to_string())?;
    ctx.log.note(
        ctx.id,
        format!(
            "UpdateService(forceNewDeployment) → deployment {deployment}{}",
            d.task_definition
                .as_deref()
                .map(|t| format!(" of {t}"))
                .unwrap_or_default()
        ),
    );
    let result = watch_deployment(ctx, &deployment).await;
    let seen = ctx.target.observed();
    record_tasks(ctx, &seen, &old, began, "ecs:UpdateService");
    if let Some(dep) = seen.deployments.get(&deployment) {
        let took = match (dep.created_at, dep.updated_at) {
            (Some(c), Some(u)) => u
                .duration_since(c)
                .map(|d| format!(" in {:.1} s", d.as_secs_f64()))
                .unwrap_or_default(),
            _ => String::new(),
        };
        ctx.log.note(
            ctx.id,
            format!(
                "deployment {deployment}: {}{took}{}",
                dep.rollout_state.as_deref().unwrap_or("no rolloutState"),
                dep.rollout_state_reason
                    .as_deref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default()
            ),
        );
    }
    result
}

/// Poll until the deployment is COMPLETED (Ok) or FAILED (Err), or the deadline passes.
/// Without a `rolloutState` (no deployment circuit breaker data), the PRIMARY deployment
/// counts as done once it is the only one and runs its desired count: ECS's steady state.
async fn watch_deployment(ctx: &EcsFaultCtx<'_>, deployment: &str) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + ctx.deadline;
    let interval = ctx.target.config().poll_interval;
    loop {
        tokio::time::sleep(interval).await;
        let seen = match ctx.target.refresh().await {
            Ok(seen) => seen,
            Err(e) if tokio::time::Instant::now() < deadline => {
                tracing::warn!(error = %e, "watching the deployment: poll failed, retrying");
                continue;
            }
            Err(e) => return Err(e.to_string()),
        };
        let Some(service) = &seen.service else {
            continue;
        };
        let current = service.deployments.iter().find(|d| d.id == deployment);
        match current.map(|d| (d.rollout_state.as_deref(), d)) {
            Some((Some("COMPLETED"), _)) => return Ok(()),
            Some((Some("FAILED"), d)) => {
                return Err(format!(
                    "deployment {deployment} FAILED: {}",
                    d.rollout_state_reason
                        .as_deref()
                        .unwrap_or("no reason given")
                ));
            }
            Some((None, d))
                if service.deployments.len() == 1 && d.running >= d.desired && d.desired > 0 =>
            {
                return Ok(());
            }
            None => {
                // Gone from the service: replaced by a rollback or a newer deployment.
                let last = seen.deployments.get(deployment);
                return match last.and_then(|d| d.rollout_state.as_deref()) {
                    Some("COMPLETED") => Ok(()),
                    state => Err(format!(
                        "deployment {deployment} is no longer on the service (last rolloutState {state:?}); a rollback or a newer deployment replaced it"
                    )),
                };
            }
            _ => {}
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(format!(
                "deployment {deployment} still in progress after {:?} (target.deploy_timeout)",
                ctx.deadline
            ));
        }
    }
}

/// StopTask on the chosen RUNNING tasks (at most the blast radius), then wait until each is
/// STOPPED and the service runs its desired count again (ECS replaces them).
pub async fn kill(ctx: &EcsFaultCtx<'_>, k: &KillFault, seed: u64) -> Result<(), String> {
    let before = ctx.target.refresh().await.map_err(|e| e.to_string())?;
    let began = SystemTime::now();
    let mut running = before.running_tasks();
    let wanted = match &k.who {
        KillWho::Task(task) => {
            let id = arn_id(task);
            running.retain(|t| t.id == id);
            if running.is_empty() {
                return Err(format!("task {task} is not RUNNING in the service"));
            }
            1
        }
        KillWho::Count(n) => *n as usize,
        KillWho::Percent(p) => (running.len() * *p as usize).div_ceil(100),
        KillWho::Replica(i) => {
            return Err(format!(
                "replica = {i} names a local replica; an ECS kill names a task"
            ));
        }
    };
    running.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed));
    let limit = ctx.max_stopped as usize;
    if wanted > limit {
        ctx.log.note(
            ctx.id,
            format!("blast radius: {wanted} tasks asked, {limit} stopped (target.max_stopped)"),
        );
    }
    let victims: Vec<TaskView> = running.into_iter().take(wanted.min(limit)).collect();
    if victims.is_empty() {
        return Err("no RUNNING task to stop".into());
    }
    let ids: BTreeSet<String> = victims.iter().map(|t| t.id.clone()).collect();
    ctx.log
        .update(ctx.id, |e| e.replicas = ids.iter().cloned().collect());
    for t in &victims {
        ctx.target
            .stop_task(&t.arn, &ctx.label)
            .await
            .map_err(|e| e.to_string())?;
        ctx.log.note(ctx.id, format!("StopTask {}", t.id));
    }
    let desired = before.service.as_ref().map_or(0, |s| s.desired);
    let result = wait_replaced(ctx, &ids, desired).await;
    let seen = ctx.target.observed();
    record_tasks(ctx, &seen, &ids, began, "ecs:StopTask");
    result
}

async fn wait_replaced(
    ctx: &EcsFaultCtx<'_>,
    victims: &BTreeSet<String>,
    desired: u32,
) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + ctx.deadline;
    let interval = ctx.target.config().poll_interval;
    loop {
        tokio::time::sleep(interval).await;
        if let Ok(seen) = ctx.target.refresh().await {
            let stopped = victims.iter().all(|id| {
                seen.tasks
                    .get(id)
                    .is_none_or(|t| t.last_status == "STOPPED")
            });
            let running = seen.running_tasks().len() as u32;
            if stopped && running >= desired {
                return Ok(());
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(format!(
                "stopped tasks were not all replaced within {:?} (target.deploy_timeout)",
                ctx.deadline
            ));
        }
    }
}

/// Into the fault's entry: the tasks ECS started since `began`, and a stop record for each
/// of `acted_on` that stopped, with ECS's stop code, reason and stopping → stopped time.
fn record_tasks(
    ctx: &EcsFaultCtx<'_>,
    seen: &Observed,
    acted_on: &BTreeSet<String>,
    began: SystemTime,
    how: &str,
) {
    let started: Vec<String> = seen
        .tasks
        .values()
        .filter(|t| !acted_on.contains(&t.id) && t.started_at.is_some_and(|s| s >= began))
        .map(|t| t.id.clone())
        .collect();
    let stops: Vec<r::ReplicaStop> = acted_on
        .iter()
        .filter_map(|id| seen.tasks.get(id))
        .filter(|t| t.last_status == "STOPPED")
        .map(|t| r::ReplicaStop {
            replica: t.id.clone(),
            version: t.version(),
            how: how.to_string(),
            exit: format!(
                "{}: {}",
                t.stop_code.as_deref().unwrap_or("no stopCode"),
                t.stopped_reason.as_deref().unwrap_or("no stoppedReason")
            ),
            stop_s: match (t.stopping_at, t.stopped_at) {
                (Some(a), Some(b)) => b.duration_since(a).map_or(0.0, |d| d.as_secs_f64()),
                _ => 0.0,
            },
            ..r::ReplicaStop::default()
        })
        .collect();
    ctx.log.update(ctx.id, |e| {
        e.started_replicas = started;
        e.stops = stops;
    });
}
