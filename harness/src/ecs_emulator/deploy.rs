//! The service scheduler: every tick (and whenever a request or a task changes something)
//! it looks at the service's tasks and decides what to start and stop — the rolling
//! deployment, the replacement of stopped or unhealthy tasks, scale-in and scale-out to the
//! desired count, the deployment circuit breaker and its rollback, and the completion and
//! steady-state events. [`decide`] is pure over the [`State`]; `tasks.rs` carries the
//! decisions out on the fleet.
//!
//! Rolling update (<https://docs.aws.amazon.com/AmazonECS/latest/developerguide/deployment-type-ecs.html>):
//! every task not of the PRIMARY deployment is replaced, never with more than
//! `maximumPercent` of the desired count live and never fewer than `minimumHealthyPercent`
//! healthy (rounded as ECS rounds: `faults::deploy::bounds`). A deployment is COMPLETED once
//! the PRIMARY has the desired count running and healthy and every other task is stopped;
//! the other deployments then disappear.
//!
//! Not emulated: task placement, capacity providers, Availability Zone balancing, the
//! exponential service throttle (a fixed [`LAUNCH_RETRY_DELAY`] instead), CloudWatch alarm
//! rollbacks, blue/green and external deployment controllers.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::Inner;
use super::model::{Health, LastStatus, Rollout, State, StopCode, Task, new_task_id, wall_now};
use super::tasks;
use crate::faults::deploy::{bounds, to_start, to_stop};

/// How often the scheduler looks when nothing wakes it.
const TICK: Duration = Duration::from_millis(100);

/// After a task fails to start, no launch for this long. ECS backs off service launches
/// that keep failing (the service throttle logic), up to many minutes; a rehearsal keeps
/// the retry short so a circuit breaker trips in seconds.
/// <https://docs.aws.amazon.com/AmazonECS/latest/developerguide/service-throttle-logic.html>
pub(crate) const LAUNCH_RETRY_DELAY: Duration = Duration::from_millis(500);

/// Something the scheduler decided, for `tasks.rs` to carry out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action {
    /// Start the replica of a task record already in PROVISIONING.
    Launch {
        task: String,
        revision: u32,
        broken: bool,
    },
    /// Stop a task already marked `desiredStatus` STOPPED. `deregister`: take it out of the
    /// load balancer and wait for the drain first (scheduler stops), or not (`StopTask`).
    Stop { task: String, deregister: bool },
}

/// The scheduler loop, until the emulator's token is cancelled.
pub(crate) async fn run(inner: Arc<Inner>) {
    loop {
        let actions = {
            let mut state = inner.lock();
            tasks::observe(&mut state, &inner.fleet);
            let actions = decide(
                &mut state,
                Instant::now(),
                inner.fleet.config().ready_timeout,
            );
            inner.fleet.set_deploying(state.is_deploying());
            actions
        };
        for action in actions {
            tasks::spawn(&inner, action);
        }
        tokio::select! {
            () = inner.cancel.cancelled() => return,
            () = inner.wake.notified() => {}
            () = tokio::time::sleep(TICK) => {}
        }
    }
}

/// How long the PRIMARY must meet its completion conditions before it is COMPLETED. ECS
/// reports a completion a while after the last task change, never in the same instant; the
/// emulator waits this long so a poller sees the states in between (a FAILED deployment
/// whose rollback needs no new task, for one).
pub(crate) const SETTLE: Duration = Duration::from_secs(1);

/// The circuit breaker's failure threshold: half the desired count, at least 3, at most
/// 200. <https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ServiceDeploymentCircuitBreaker.html>
/// (`threshold`), <https://docs.aws.amazon.com/AmazonECS/latest/developerguide/deployment-circuit-breaker.html>
pub(crate) fn breaker_threshold(desired: usize) -> u32 {
    u32::try_from(desired.div_ceil(2))
        .unwrap_or(u32::MAX)
        .clamp(3, 200)
}

/// One scheduling pass over the state at `now`. `ready_timeout` bounds how long a task may
/// stay neither healthy nor unhealthy after its grace period.
pub(crate) fn decide(s: &mut State, now: Instant, ready_timeout: Duration) -> Vec<Action> {
    let mut actions = Vec::new();
    replace_unhealthy(s, now, ready_timeout, &mut actions);
    trip_breaker(s);
    roll(s, now, &mut actions);
    complete(s, now);
    note_steady_state(s);
    actions
}

/// ECS stops a task its load balancer reports unhealthy (after the health check grace
/// period) and starts a replacement; a new task failing its health checks counts toward
/// the circuit breaker (stage 2).
/// <https://docs.aws.amazon.com/AmazonECS/latest/developerguide/healthcheck.html>,
/// <https://docs.aws.amazon.com/AmazonECS/latest/developerguide/deployment-circuit-breaker.html>
fn replace_unhealthy(
    s: &mut State,
    now: Instant,
    ready_timeout: Duration,
    actions: &mut Vec<Action>,
) {
    let grace = s.settings.health_check_grace;
    let tg = s.names.target_group_arn();
    let prefix = s.names.prefix();
    let mut failed = Vec::new();
    let mut events = Vec::new();
    for t in s.tasks.iter_mut() {
        let Some(since) = t.running_since else {
            continue;
        };
        if !t.is_live() || t.last != LastStatus::Running {
            continue;
        }
        let unhealthy = t.health == Health::Unhealthy && now >= since + grace;
        let never = !t.ever_healthy && now >= since + grace + ready_timeout;
        if !(unhealthy || never) {
            continue;
        }
        let port = t.replica.as_ref().map_or(0, |r| r.child.addr.port());
        // The message ECS shows for a target failing its ALB health checks.
        // <https://docs.aws.amazon.com/AmazonECS/latest/developerguide/service-event-messages-list.html>
        events.push(format!(
            "{prefix} (task {}) (port {port}) is unhealthy in (target-group {tg}) due to (reason Health checks failed).",
            t.id
        ));
        t.begin_stop(
            StopCode::ServiceSchedulerInitiated,
            format!("Task failed ELB health checks in (target-group {tg})"),
        );
        failed.push(t.deployment.clone());
        actions.push(Action::Stop {
            task: t.id.clone(),
            deregister: true,
        });
    }
    for d in failed {
        s.count_failure(&d);
    }
    for e in events {
        s.event(e);
    }
}

/// At the threshold the PRIMARY deployment goes FAILED and launches nothing more; with
/// rollback on, a new PRIMARY of the last COMPLETED deployment's task definition starts.
/// It takes over the tasks still running that revision (the good tasks are not drained,
/// as observed on ECS) and replaces the failed deployment's.
/// <https://docs.aws.amazon.com/AmazonECS/latest/developerguide/deployment-circuit-breaker.html>
fn trip_breaker(s: &mut State) {
    let Some(breaker) = s.settings.circuit_breaker else {
        return;
    };
    let threshold = breaker_threshold(s.desired_count);
    let p = s.primary();
    if p.rollout != Rollout::InProgress || p.breaker_failures < threshold {
        return;
    }
    let failed = p.id.clone();
    let p = s.primary_mut();
    p.rollout = Rollout::Failed;
    p.reason = "ECS deployment circuit breaker: tasks failed to start.".into();
    p.updated_at = wall_now();
    let prefix = s.names.prefix();
    s.event(format!(
        "{prefix} (deployment {failed}) deployment failed: tasks failed to start."
    ));
    if !breaker.rollback {
        return;
    }
    let Some((good, revision)) = s.last_completed.clone() else {
        return;
    };
    let reason = format!("ECS deployment circuit breaker: rolling back to deploymentId {good}.");
    let rollback = s.new_deployment(revision, Some(reason));
    for t in s.tasks.iter_mut().filter(|t| t.deployment == good) {
        t.deployment = rollback.clone();
    }
    s.deployments.retain(|d| d.id != good);
}

/// Start and stop tasks toward the desired count of the PRIMARY's revision.
fn roll(s: &mut State, now: Instant, actions: &mut Vec<Action>) {
    let primary = s.primary().clone();
    if primary.rollout == Rollout::Failed {
        // "a service deployment will transition to a failed state and stop launching new
        // tasks" (API_DeploymentCircuitBreaker).
        return;
    }
    let desired = s.desired_count;
    let (max_running, min_healthy) = bounds(
        desired,
        s.settings.minimum_healthy_percent,
        s.settings.maximum_percent,
    );
    let live = |t: &&Task| t.is_live();
    let old: Vec<&Task> = s
        .tasks
        .iter()
        .filter(live)
        .filter(|t| t.deployment != primary.id)
        .collect();
    let new_count = s
        .tasks
        .iter()
        .filter(live)
        .filter(|t| t.deployment == primary.id)
        .count();
    let healthy = s
        .tasks
        .iter()
        .filter(live)
        .filter(|t| t.health == Health::Healthy)
        .count();
    let may_launch = s.launch_paused_until.is_none_or(|until| now >= until);
    let start = if may_launch {
        to_start(desired, old.len(), new_count, max_running)
    } else {
        0
    };
    // Replace unhealthy and unfinished old tasks first, then the oldest.
    let mut old_order: Vec<(bool, f64, String)> = old
        .iter()
        .map(|t| (t.health == Health::Healthy, t.created_at, t.id.clone()))
        .collect();
    old_order.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
    let mut stop: Vec<String> = old_order
        .into_iter()
        .take(to_stop(old.len(), healthy, min_healthy))
        .map(|(_, _, id)| id)
        .collect();
    if old.is_empty() && new_count > desired {
        // Scale-in: the unhealthy and newest go first; a task with scale-in protection
        // is not stopped (the service stays above its desired count until it clears).
        // <https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-scale-in-protection.html>
        let mut order: Vec<(bool, f64, String)> = s
            .tasks
            .iter()
            .filter(live)
            .filter(|t| !t.protected)
            .map(|t| (t.health == Health::Healthy, -t.created_at, t.id.clone()))
            .collect();
        order.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
        stop.extend(order.into_iter().take(new_count - desired).map(|o| o.2));
    }

    let broken = s.broken_revisions.contains(&primary.revision);
    let mut started = Vec::new();
    for _ in 0..start {
        let id = new_task_id();
        s.tasks
            .push(Task::new(id.clone(), &primary.id, primary.revision));
        actions.push(Action::Launch {
            task: id.clone(),
            revision: primary.revision,
            broken,
        });
        started.push(id);
    }
    for id in &stop {
        if let Some(t) = s.task_mut(id) {
            let reason = format!(
                "Scaling activity initiated by (deployment {})",
                t.deployment
            );
            t.begin_stop(StopCode::ServiceSchedulerInitiated, reason);
            actions.push(Action::Stop {
                task: id.clone(),
                deregister: true,
            });
        }
    }
    // The scheduler's own wording, as DescribeServices shows it.
    // <https://docs.aws.amazon.com/AmazonECS/latest/developerguide/service-event-messages.html>
    let prefix = s.names.prefix();
    if !started.is_empty() {
        s.event(format!(
            "{prefix} has started {} tasks: {}.",
            started.len(),
            task_list(&started)
        ));
    }
    if !stop.is_empty() {
        s.event(format!(
            "{prefix} has stopped {} running tasks: {}.",
            stop.len(),
            task_list(&stop)
        ));
    }
}

/// `(task a) (task b)`.
fn task_list(ids: &[String]) -> String {
    ids.iter()
        .map(|id| format!("(task {id})"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// PRIMARY IN_PROGRESS → COMPLETED once it runs the desired count, all healthy, and every
/// other deployment's tasks are stopped, for [`SETTLE`]; the other deployments go
/// (INACTIVE, not listed).
fn complete(s: &mut State, now: Instant) {
    let p = s.primary().clone();
    if p.rollout != Rollout::InProgress {
        return;
    }
    let others_gone = s
        .tasks
        .iter()
        .all(|t| t.deployment == p.id || t.last == LastStatus::Stopped);
    let mine: Vec<&Task> = s
        .tasks
        .iter()
        .filter(|t| t.deployment == p.id && t.is_live())
        .collect();
    let all_healthy = mine
        .iter()
        .all(|t| t.last == LastStatus::Running && t.health == Health::Healthy);
    if !(others_gone && all_healthy && mine.len() == s.desired_count) {
        s.settling_since = None;
        return;
    }
    let since = *s.settling_since.get_or_insert(now);
    if now < since + SETTLE {
        return;
    }
    let primary = s.primary_mut();
    primary.rollout = Rollout::Completed;
    primary.reason = format!("ECS deployment {} completed.", p.id);
    primary.updated_at = wall_now();
    s.deployments.truncate(1);
    s.last_completed = Some((p.id.clone(), p.revision));
    let prefix = s.names.prefix();
    s.event(format!(
        "{prefix} (deployment {}) deployment completed.",
        p.id
    ));
}

/// "has reached a steady state." when the service settles: no deployment in progress, the
/// desired count running and healthy, nothing starting or stopping.
fn note_steady_state(s: &mut State) {
    let live: Vec<&Task> = s.tasks.iter().filter(|t| t.is_live()).collect();
    let settled = s.primary().rollout != Rollout::InProgress
        && live.len() == s.desired_count
        && live
            .iter()
            .all(|t| t.last == LastStatus::Running && t.health == Health::Healthy)
        && s.tasks
            .iter()
            .all(|t| t.is_live() || t.last == LastStatus::Stopped);
    if settled && !s.steady {
        let prefix = s.names.prefix();
        s.event(format!("{prefix} has reached a steady state."));
    }
    s.steady = settled;
}

#[cfg(test)]
#[path = "deploy_tests.rs"]
mod tests;
