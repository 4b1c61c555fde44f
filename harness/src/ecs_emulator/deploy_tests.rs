//! The scheduler's decisions over a state with no processes: tasks are made RUNNING,
//! healthy, failed or stopped by hand, the way `tasks.rs` would report them.

use super::*;
use crate::ecs_emulator::CircuitBreaker;
use crate::ecs_emulator::model::{self, Names, Settings};

const GRACE: Duration = Duration::from_secs(10);
const READY: Duration = Duration::from_secs(30);

fn state(desired: usize, min: u32, max: u32, breaker: Option<CircuitBreaker>) -> State {
    let names = Names {
        region: "us-east-1".into(),
        account: "123456789012".into(),
        cluster: "c".into(),
        service: "svc".into(),
        family: "fam".into(),
        container: "runtime".into(),
    };
    let settings = Settings {
        minimum_healthy_percent: min,
        maximum_percent: max,
        circuit_breaker: breaker,
        health_check_grace: GRACE,
    };
    State::new(names, desired, 1, settings, vec![9])
}

fn launches(actions: &[Action]) -> usize {
    actions
        .iter()
        .filter(|a| matches!(a, Action::Launch { .. }))
        .count()
}

fn stops(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Stop { task, .. } => Some(task.clone()),
            Action::Launch { .. } => None,
        })
        .collect()
}

/// Every task that is starting turns RUNNING and healthy.
fn all_up(s: &mut State, now: Instant) {
    for t in s.tasks.iter_mut().filter(|t| t.is_live()) {
        t.last = LastStatus::Running;
        t.running_since.get_or_insert(now);
        t.health = Health::Healthy;
        t.ever_healthy = true;
    }
}

/// Every task being stopped has exited.
fn all_stopped(s: &mut State) {
    for t in s.tasks.iter_mut().filter(|t| !t.desired_running) {
        t.finish_stop(Some(0));
    }
}

fn messages(s: &State) -> Vec<String> {
    s.events.iter().map(|e| e.message.clone()).collect()
}

/// Two passes [`SETTLE`] apart: what meets the completion conditions completes.
fn settle(s: &mut State, now: Instant) -> Vec<Action> {
    let mut a = decide(s, now, READY);
    a.extend(decide(s, now + SETTLE, READY));
    a
}

/// Start the service: its first deployment runs `desired` tasks and completes.
fn steady(desired: usize, min: u32, max: u32, breaker: Option<CircuitBreaker>) -> State {
    let mut s = state(desired, min, max, breaker);
    let now = Instant::now();
    assert_eq!(launches(&decide(&mut s, now, READY)), desired);
    all_up(&mut s, now);
    assert!(decide(&mut s, now, READY).is_empty());
    assert_eq!(s.primary().rollout, Rollout::InProgress, "settling");
    assert!(decide(&mut s, now + SETTLE, READY).is_empty());
    assert_eq!(s.primary().rollout, Rollout::Completed);
    s
}

#[test]
fn the_first_deployment_completes_and_the_service_reaches_a_steady_state() {
    let s = steady(2, 100, 200, None);
    let events = messages(&s);
    assert_eq!(events[0], "(service svc) has reached a steady state.");
    assert!(events[1].starts_with("(service svc) (deployment ecs-svc/"));
    assert!(events[1].ends_with(") deployment completed."));
    assert!(events[2].starts_with("(service svc) has started 2 tasks: (task "));
    let p = s.primary();
    assert_eq!(p.reason, format!("ECS deployment {} completed.", p.id));
    assert_eq!(s.last_completed, Some((p.id.clone(), 1)));
}

#[test]
fn a_rolling_deployment_replaces_every_task_within_the_percentages() {
    let mut s = steady(4, 100, 150, None);
    let now = Instant::now();
    let old: Vec<String> = s.tasks.iter().map(|t| t.id.clone()).collect();
    let old_deployment = s.primary().id.clone();
    s.new_deployment(2, None);
    assert_eq!(s.deployments[1].status, model::DeploymentStatus::Active);
    // max 150% of 4 = 6 live: two new tasks, nothing stopped until they are healthy.
    let a = decide(&mut s, now, READY);
    assert_eq!((launches(&a), stops(&a).len()), (2, 0));
    all_up(&mut s, now);
    let a = decide(&mut s, now, READY);
    let stopped = stops(&a);
    assert_eq!(stopped.len(), 2);
    for id in &stopped {
        let t = s.task(id).expect("task");
        assert!(old.contains(id));
        assert_eq!(t.stop_code, Some(StopCode::ServiceSchedulerInitiated));
        assert_eq!(
            t.stopped_reason.as_deref(),
            Some(format!("Scaling activity initiated by (deployment {old_deployment})").as_str())
        );
    }
    all_stopped(&mut s);
    let a = decide(&mut s, now, READY);
    assert_eq!((launches(&a), stops(&a).len()), (2, 0));
    all_up(&mut s, now);
    assert_eq!(stops(&decide(&mut s, now, READY)).len(), 2);
    assert_eq!(
        s.primary().rollout,
        Rollout::InProgress,
        "old tasks still draining"
    );
    all_stopped(&mut s);
    assert!(settle(&mut s, now).is_empty());
    assert_eq!(s.primary().rollout, Rollout::Completed);
    assert_eq!(s.deployments.len(), 1);
    let live: Vec<&Task> = s.tasks.iter().filter(|t| t.is_live()).collect();
    assert_eq!(live.len(), 4);
    assert!(live.iter().all(|t| t.revision == 2 && !old.contains(&t.id)));
}

#[test]
fn minimum_healthy_50_stops_before_it_starts() {
    let mut s = steady(2, 50, 100, None);
    let now = Instant::now();
    s.new_deployment(1, None);
    let a = decide(&mut s, now, READY);
    assert_eq!((launches(&a), stops(&a).len()), (0, 1));
}

#[test]
fn a_stopped_task_is_replaced_and_the_service_settles_again() {
    let mut s = steady(2, 100, 200, None);
    let now = Instant::now();
    let victim = s.tasks[0].id.clone();
    let action = tasks::stop_by_user(&mut s, &victim, "chaos".into());
    assert_eq!(
        action,
        Some(Action::Stop {
            task: victim.clone(),
            deregister: false
        })
    );
    assert_eq!(tasks::stop_by_user(&mut s, &victim, "again".into()), None);
    let t = s.task(&victim).expect("task");
    assert_eq!(
        (t.stop_code, t.stopped_reason.as_deref()),
        (Some(StopCode::UserInitiated), Some("chaos"))
    );
    assert_eq!(launches(&decide(&mut s, now, READY)), 1);
    all_up(&mut s, now);
    decide(&mut s, now, READY);
    assert!(!s.steady, "the stopped task is still stopping");
    all_stopped(&mut s);
    decide(&mut s, now, READY);
    assert!(s.steady);
    assert_eq!(messages(&s)[0], "(service svc) has reached a steady state.");
}

#[test]
fn an_unhealthy_task_is_replaced_after_the_grace_period() {
    let mut s = steady(1, 100, 200, None);
    let since = Instant::now();
    s.tasks[0].running_since = Some(since);
    s.tasks[0].health = Health::Unhealthy;
    assert!(decide(&mut s, since + GRACE / 2, READY).is_empty());
    let a = decide(&mut s, since + GRACE, READY);
    assert_eq!(stops(&a).len(), 1);
    let t = &s.tasks[0];
    assert!(t.stopped_reason.as_deref().is_some_and(|r| r.starts_with(
        "Task failed ELB health checks in (target-group arn:aws:elasticloadbalancing:"
    )));
    assert!(messages(&s)[1].contains(") is unhealthy in (target-group "));
}

#[test]
fn the_circuit_breaker_threshold_is_half_the_desired_count_within_3_and_200() {
    for (desired, threshold) in [
        (0, 3),
        (1, 3),
        (6, 3),
        (7, 4),
        (10, 5),
        (401, 200),
        (5000, 200),
    ] {
        assert_eq!(breaker_threshold(desired), threshold, "desired {desired}");
    }
}

/// A broken revision's tasks fail to start until the breaker trips; with rollback the
/// service returns to the last completed revision, keeping its good tasks.
#[test]
fn a_failing_deployment_trips_the_breaker_and_rolls_back() {
    let mut s = steady(2, 100, 200, Some(CircuitBreaker { rollback: true }));
    let now = Instant::now();
    let good: Vec<String> = s.tasks.iter().map(|t| t.id.clone()).collect();
    let (good_deployment, _) = s.last_completed.clone().expect("completed");
    let failing = s.new_deployment(9, None);
    for round in 0..2 {
        let a = decide(&mut s, now, READY);
        assert!(
            a.iter().all(|a| matches!(
                a,
                Action::Launch {
                    broken: true,
                    revision: 9,
                    ..
                }
            )),
            "round {round}: {a:?}"
        );
        for t in s
            .tasks
            .iter_mut()
            .filter(|t| t.deployment == failing && t.is_live())
        {
            t.begin_stop(StopCode::EssentialContainerExited, "x".into());
            t.finish_stop(Some(2));
        }
        for _ in 0..launches(&a) {
            s.count_failure(&failing);
        }
    }
    assert!(s.deployment_mut(&failing).expect("failing").failed_tasks >= 3);
    let a = decide(&mut s, now, READY);
    assert!(
        a.is_empty(),
        "no launch of the failed revision, no stop of good tasks: {a:?}"
    );
    let failed = s
        .deployments
        .iter()
        .find(|d| d.id == failing)
        .expect("failed");
    assert_eq!(failed.rollout, Rollout::Failed);
    assert_eq!(
        failed.reason,
        "ECS deployment circuit breaker: tasks failed to start."
    );
    let p = s.primary();
    assert_eq!(p.revision, 1);
    assert_eq!(
        p.reason,
        format!("ECS deployment circuit breaker: rolling back to deploymentId {good_deployment}.")
    );
    // The rollback already has its tasks: it completes once settled.
    decide(&mut s, now + SETTLE, READY);
    assert_eq!(s.primary().rollout, Rollout::Completed);
    assert_eq!(s.deployments.len(), 1);
    let live: Vec<String> = s
        .tasks
        .iter()
        .filter(|t| t.is_live())
        .map(|t| t.id.clone())
        .collect();
    assert_eq!(live, good);
}

#[test]
fn without_rollback_a_failed_deployment_stops_launching() {
    let mut s = steady(2, 100, 200, Some(CircuitBreaker { rollback: false }));
    let now = Instant::now();
    let failing = s.new_deployment(9, None);
    for _ in 0..3 {
        s.count_failure(&failing);
    }
    assert!(decide(&mut s, now, READY).is_empty());
    assert_eq!(s.primary().rollout, Rollout::Failed);
    assert_eq!(s.primary().id, failing);
    assert_eq!(s.deployments.len(), 2);
}

#[test]
fn a_healthy_task_resets_the_breaker_count() {
    // `observe` does the reset; here the count only accumulates while nothing turns healthy.
    let mut s = steady(2, 100, 200, Some(CircuitBreaker { rollback: true }));
    let d = s.new_deployment(2, None);
    s.count_failure(&d);
    s.count_failure(&d);
    s.deployment_mut(&d).expect("d").breaker_failures = 0;
    s.count_failure(&d);
    decide(&mut s, Instant::now(), READY);
    assert_eq!(s.primary().rollout, Rollout::InProgress);
    assert_eq!(s.primary().failed_tasks, 3);
}

#[test]
fn scaling_in_stops_the_newest_tasks() {
    let mut s = steady(3, 100, 200, None);
    let newest = s.tasks[2].id.clone();
    s.tasks[2].created_at += 1.0;
    s.desired_count = 2;
    let a = decide(&mut s, Instant::now(), READY);
    assert_eq!(stops(&a), vec![newest]);
}
