//! StopTask: no deregistration first, UserInitiated, a replacement; and a crashed task.

use std::collections::HashSet;

use aws_sdk_ecs::types::{DesiredStatus, TaskStopCode};
use dropzero::fleet::router::TargetState;

use crate::support::{self, CLUSTER, Rig, SERVICE, config, messages, within};

/// StopTask: SIGTERM at once, the target is never deregistered (draining) first; the task
/// ends STOPPED with UserInitiated and the reason; the scheduler starts a replacement.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_task_stops_without_deregistering_first_and_is_replaced() {
    let rig = Rig::start(config()).await;
    let old = rig.task_ids(DesiredStatus::Running).await;
    let victim = old[0].clone();
    let reason = "dropzero scenario ecs-task-kill: fault 1 (kill)";
    let out = rig
        .ecs
        .stop_task()
        .cluster(CLUSTER)
        .task(format!(
            "arn:aws:ecs:us-east-1:123456789012:task/{CLUSTER}/{victim}"
        ))
        .reason(reason)
        .send()
        .await
        .expect("StopTask");
    let t = out.task().expect("task");
    assert_eq!(t.desired_status(), Some("STOPPED"));
    assert_eq!(t.stop_code(), Some(&TaskStopCode::UserInitiated));
    // Watch the router until the task is gone: never Draining, i.e. never deregistered first.
    let router = rig.emulator.fleet().router().clone();
    let mut seen = HashSet::new();
    let t = loop {
        for target in router.snapshot().into_iter().filter(|x| x.id == victim) {
            seen.insert(target.state);
        }
        let t = rig.task(&victim).await;
        if t.last_status() == Some("STOPPED") {
            break t;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert!(
        !seen.contains(&TargetState::Draining),
        "StopTask deregistered first: {seen:?}"
    );
    assert!(
        router.snapshot().iter().all(|x| x.id != victim),
        "removed once stopped"
    );
    assert_eq!(t.stop_code(), Some(&TaskStopCode::UserInitiated));
    assert_eq!(t.stopped_reason(), Some(reason));
    assert_eq!(t.containers()[0].exit_code(), Some(0));
    let s = rig
        .until_service("the replacement to run", |s| {
            s.running_count() == 2
                && s.pending_count() == 0
                && messages(s)[0].ends_with("has reached a steady state.")
        })
        .await;
    let now = rig.task_ids(DesiredStatus::Running).await;
    assert_eq!(now.len(), 2);
    assert!(!now.contains(&victim) && now.contains(&old[1]));
    let replacement = now
        .iter()
        .find(|id| !old.contains(id))
        .expect("a replacement");
    assert!(messages(&s).contains(&format!(
        "(service {SERVICE}) has started 1 tasks: (task {replacement})."
    )));
    assert_eq!(s.deployments().len(), 1, "a replacement is no deployment");
    rig.shutdown().await;
}

/// A replica killed from outside is a crashed task: STOPPED, EssentialContainerExited,
/// exit code 137, and the scheduler replaces it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_task_stops_with_its_exit_code_and_is_replaced() {
    let rig = Rig::start(config()).await;
    let old = rig.task_ids(DesiredStatus::Running).await;
    let victim = rig
        .emulator
        .fleet()
        .live_replicas()
        .into_iter()
        .find(|r| r.id == old[0])
        .expect("the task's replica");
    victim.child.signal(nix::sys::signal::Signal::SIGKILL);
    within(victim.child.wait_timeout(support::PATIENCE)).await;
    rig.until_service("the replacement to run", |s| {
        s.running_count() == 2 && messages(s)[0].ends_with("has reached a steady state.")
    })
    .await;
    let t = rig.task(&old[0]).await;
    assert_eq!(t.last_status(), Some("STOPPED"));
    assert_eq!(t.stop_code(), Some(&TaskStopCode::EssentialContainerExited));
    assert_eq!(
        t.stopped_reason(),
        Some("Essential container in task exited")
    );
    assert_eq!(t.containers()[0].exit_code(), Some(137));
    let now = rig.task_ids(DesiredStatus::Running).await;
    assert!(!now.contains(&old[0]) && now.contains(&old[1]) && now.len() == 2);
    rig.shutdown().await;
}
