//! Tasks on the fleet: starting one (a replica named by its task id), stopping one the way
//! ECS does, and noticing what happened to it (exits, health) — the ECS agent's part.
//! What to start and stop is decided in `deploy.rs`; this module only carries it out and
//! reports back into the [`State`].
//!
//! Two ways to stop, as ECS has them:
//! - the service scheduler (deployment, scale-in, unhealthy task): deregister from the load
//!   balancer, wait for the drain (the deregistration delay, ending early when nothing is
//!   open), then SIGTERM and SIGKILL after the task definition's `stopTimeout`
//!   (<https://docs.aws.amazon.com/AmazonECS/latest/developerguide/deployment-type-ecs.html>,
//!   <https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-lifecycle-explanation.html>);
//! - `StopTask`: "the equivalent of docker stop" — SIGTERM at once, SIGKILL after the stop
//!   timeout (<https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_StopTask.html>).
//!   The load balancer is not told first: the router keeps sending the task requests until
//!   its health checks fail, and the target is removed once the task has stopped.
//!
//! Both go through `faults::stop`, so every stop also leaves its drain account in the log.

use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::sync::Arc;

use tokio::time::Instant;

use super::Inner;
use super::deploy::{Action, LAUNCH_RETRY_DELAY};
use super::model::{Health, LastStatus, REASON_CONTAINER_EXITED, State, StopCode};
use crate::faults::stop::{self, How};
use crate::fleet::TargetError;
use crate::fleet::local::{LocalFleet, ReplicaLaunch};
use crate::fleet::process::ProcessError;
use crate::fleet::router::TargetState;

/// What a task of a broken revision is started with: an argument the runtime does not
/// accept, so its essential container exits (code 2) before it ever listens, like an image
/// whose entrypoint fails, and the task stops with `EssentialContainerExited`. The
/// replica's log says why in its first line.
const BROKEN_ARGS: [&str; 1] = ["--task-definition-revision-is-broken"];

/// Bring the tasks up to date with their replicas: a process that exited on its own is a
/// STOPPED task (`EssentialContainerExited`, its exit code); the router's view of its
/// health is the task's `healthStatus`.
pub(crate) fn observe(s: &mut State, fleet: &LocalFleet) {
    let targets = fleet.router().snapshot();
    let mut failed = Vec::new();
    let mut reset = Vec::new();
    for t in s.tasks.iter_mut() {
        if t.last == LastStatus::Stopped {
            continue;
        }
        let Some(replica) = t.replica.clone() else {
            continue;
        };
        if let Some(status) = replica.child.exit_status() {
            if t.desired_running {
                // Nobody asked it to stop: it crashed (or was killed from outside).
                t.begin_stop(
                    StopCode::EssentialContainerExited,
                    REASON_CONTAINER_EXITED.into(),
                );
                t.finish_stop(Some(exit_code(status)));
                fleet.router().remove(&t.id);
                replica.mark_stopped();
                if !t.ever_healthy {
                    failed.push(t.deployment.clone());
                }
            }
            continue;
        }
        let health = match targets.iter().find(|x| x.id == t.id).map(|x| x.state) {
            Some(TargetState::Healthy) => Health::Healthy,
            Some(TargetState::Unhealthy) => Health::Unhealthy,
            Some(TargetState::Initial) => Health::Unknown,
            Some(TargetState::Draining) | None => t.health,
        };
        if health != t.health {
            t.health = health;
            t.version += 1;
            if health == Health::Healthy && !t.ever_healthy {
                t.ever_healthy = true;
                reset.push(t.deployment.clone());
            }
        }
    }
    for d in failed {
        s.count_failure(&d);
    }
    // `resetOnHealthyTask` (default true): a healthy task resets the breaker's count.
    // <https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DeploymentCircuitBreaker.html>
    for d in reset {
        if let Some(d) = s.deployment_mut(&d) {
            d.breaker_failures = 0;
        }
    }
    s.prune();
}

/// `StopTask` on a task: mark it, and return the stop to carry out (none if it is already
/// stopping or stopped — ECS answers with the task as it is).
pub(crate) fn stop_by_user(s: &mut State, id: &str, reason: String) -> Option<Action> {
    let t = s.task_mut(id)?;
    if !t.desired_running {
        return None;
    }
    t.begin_stop(StopCode::UserInitiated, reason);
    Some(Action::Stop {
        task: id.to_string(),
        deregister: false,
    })
}

/// Carry out `action` in its own tracked task; it ends when the emulator is cancelled
/// (a replica being spawned is killed with its handle).
pub(crate) fn spawn(inner: &Arc<Inner>, action: Action) {
    let inner2 = Arc::clone(inner);
    let cancel = inner.cancel.clone();
    inner.actions.spawn(async move {
        tokio::select! {
            () = cancel.cancelled() => {}
            () = run(&inner2, action) => {}
        }
        inner2.wake.notify_one();
    });
}

async fn run(inner: &Inner, action: Action) {
    match action {
        Action::Launch {
            task,
            revision,
            broken,
        } => launch(inner, &task, revision, broken).await,
        Action::Stop { task, deregister } => stop(inner, &task, deregister).await,
    }
}

async fn launch(inner: &Inner, id: &str, revision: u32, broken: bool) {
    let version = {
        let mut s = inner.lock();
        let Some(t) = s.task_mut(id) else { return };
        if !t.desired_running {
            // Stopped before it was provisioned.
            t.finish_stop(None);
            return;
        }
        t.last = LastStatus::Pending;
        t.version += 1;
        format!("{}:{revision}", s.names.family)
    };
    let extra_args = if broken {
        BROKEN_ARGS.iter().map(Into::into).collect()
    } else {
        Vec::new()
    };
    // One replica starts at a time, as `LocalFleet::start` and the local deploy start them:
    // replicas opening a new SQLite journal at the same instant can fail with "database is
    // locked" (a race in the journal's first open, not something ECS would do). Tasks are
    // PENDING meanwhile, as tasks waiting for capacity are on ECS.
    let started = {
        let _slot = inner.launching.lock().await;
        inner
            .fleet
            .launch_replica(ReplicaLaunch {
                id: id.to_string(),
                version,
                extra_args,
            })
            .await
    };
    if let Some(deregister) = record_launch(inner, id, started) {
        // StopTask (or a newer deployment) got there while it was starting.
        stop(inner, id, deregister).await;
    }
}

/// Record how a start went. `Some(deregister)`: it runs but is already wanted stopped
/// (by the scheduler: deregister first; by `StopTask`: not).
fn record_launch(
    inner: &Inner,
    id: &str,
    started: Result<Arc<crate::fleet::local::Replica>, TargetError>,
) -> Option<bool> {
    let mut s = inner.lock();
    let tg = s.names.target_group_arn();
    let prefix = s.names.prefix();
    let t = s.task_mut(id)?;
    match started {
        Ok(replica) => {
            t.last = LastStatus::Running;
            t.started_at = Some(super::model::wall_now());
            t.running_since = Some(Instant::now());
            t.replica = Some(replica);
            t.version += 1;
            let stop_now =
                (!t.desired_running).then_some(t.stop_code != Some(StopCode::UserInitiated));
            s.event(format!(
                "{prefix} registered 1 targets in (target-group {tg})"
            ));
            stop_now
        }
        Err(e) => {
            tracing::warn!(task = %id, error = %e, "ecs emulator: task failed to start");
            t.begin_stop(
                StopCode::EssentialContainerExited,
                REASON_CONTAINER_EXITED.into(),
            );
            t.finish_stop(launch_exit_code(&e));
            let deployment = t.deployment.clone();
            s.count_failure(&deployment);
            s.launch_paused_until = Some(Instant::now() + LAUNCH_RETRY_DELAY);
            None
        }
    }
}

async fn stop(inner: &Inner, id: &str, deregister: bool) {
    let (replica, taskset) = {
        let mut s = inner.lock();
        let tg = s.names.target_group_arn();
        let prefix = s.names.prefix();
        let service = s.names.service.clone();
        let Some(t) = s.task_mut(id) else { return };
        let Some(replica) = t.replica.clone() else {
            // Still starting: `launch` stops it once it runs. Never started: done.
            if t.last == LastStatus::Provisioning {
                t.finish_stop(None);
            }
            return;
        };
        if !replica.claim_for_stop() {
            // Another stop is under way (it finishes the task), or the process had already
            // exited (a crash nobody noticed yet): then it is stopped now.
            if let Some(status) = replica.child.exit_status() {
                t.finish_stop(Some(exit_code(status)));
                inner.fleet.router().remove(id);
                replica.mark_stopped();
            }
            return;
        }
        t.last = if deregister {
            LastStatus::Deactivating
        } else {
            LastStatus::Stopping
        };
        t.version += 1;
        let taskset = t.deployment.clone();
        if deregister {
            s.event(format!(
                "{prefix} deregistered 1 targets in (target-group {tg})"
            ));
            s.event(format!(
                "(service {service}, taskSet {taskset}) has begun draining connections on 1 tasks."
            ));
        }
        (replica, taskset)
    };
    let stop_timeout = inner.fleet.config().stop_timeout;
    let account = if deregister {
        let waited = stop::deregister(&inner.fleet, &replica).await;
        set_last(inner, id, LastStatus::Stopping);
        stop::signal_and_account(&inner.fleet, &replica, How::Deploy, waited).await
    } else {
        stop::stop_replica(
            &inner.fleet,
            &replica,
            How::Term {
                timeout: stop_timeout,
            },
        )
        .await
    };
    tracing::info!(
        task = %id, deployment = %taskset, in_flight = ?account.in_flight_at_signal,
        severed = ?account.severed, sigkill = account.sigkill, exit = %account.exit,
        "ecs emulator: task stopped"
    );
    let mut s = inner.lock();
    let tg = s.names.target_group_arn();
    let prefix = s.names.prefix();
    if let Some(t) = s.task_mut(id) {
        t.finish_stop(replica.child.exit_status().map(exit_code));
    }
    if !deregister {
        // The stopped task leaves the target group after the fact.
        s.event(format!(
            "{prefix} deregistered 1 targets in (target-group {tg})"
        ));
    }
}

fn set_last(inner: &Inner, id: &str, last: LastStatus) {
    if let Some(t) = inner.lock().task_mut(id) {
        t.last = last;
        t.version += 1;
    }
}

/// A container's exit code as ECS reports it: the process's code, or 128 + the signal
/// (137 after SIGKILL, 143 after SIGTERM), as Docker reports a signalled process.
pub(crate) fn exit_code(status: ExitStatus) -> i32 {
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(-1)
}

/// The exit code of a replica that exited before it listened, from the spawn error's
/// rendering of its exit status (`exit status: 2`, `signal: 9 (SIGKILL)`).
fn launch_exit_code(e: &TargetError) -> Option<i32> {
    let TargetError::Process(ProcessError::Exited { status, .. }) = e else {
        return None;
    };
    let n: i32 = status
        .split(|c: char| !c.is_ascii_digit())
        .find(|s| !s.is_empty())?
        .parse()
        .ok()?;
    Some(if status.starts_with("signal") {
        128 + n
    } else {
        n
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_docker() {
        assert_eq!(exit_code(ExitStatus::from_raw(2 << 8)), 2);
        assert_eq!(exit_code(ExitStatus::from_raw(9)), 137);
        assert_eq!(exit_code(ExitStatus::from_raw(15)), 143);
    }

    #[test]
    fn exit_code_of_a_task_that_never_listened() {
        let e = |status: &str| {
            TargetError::Process(ProcessError::Exited {
                name: "replica".into(),
                status: status.into(),
                log: "x.log".into(),
            })
        };
        assert_eq!(launch_exit_code(&e("exit status: 2")), Some(2));
        assert_eq!(launch_exit_code(&e("signal: 9 (SIGKILL)")), Some(137));
        assert_eq!(launch_exit_code(&TargetError::Io("x".into())), None);
    }
}
