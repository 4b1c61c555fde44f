//! UpdateService: a forced deployment that completes, and a broken revision that trips the
//! circuit breaker and rolls back.

use std::collections::HashSet;

use aws_sdk_ecs::types::{DeploymentRolloutState, DesiredStatus, TaskStopCode};
use dropzero::ecs_emulator::CircuitBreaker;

use crate::support::{CLUSTER, FAMILY, Rig, SERVICE, config, messages, primary};

/// forceNewDeployment: a new PRIMARY rolls out, every task is replaced by a new replica,
/// the old ones are stopped by the scheduler after their drain, the service settles.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn force_new_deployment_replaces_every_task_and_completes() {
    let rig = Rig::start(config()).await;
    let old = rig.task_ids(DesiredStatus::Running).await;
    let before = primary(&rig.service().await)
        .id()
        .unwrap_or_default()
        .to_string();
    let out = rig
        .ecs
        .update_service()
        .cluster(CLUSTER)
        .service(SERVICE)
        .force_new_deployment(true)
        .send()
        .await
        .expect("UpdateService");
    let s = out.service().expect("service");
    assert_eq!(s.deployments().len(), 2);
    let new = primary(s);
    let new_id = new.id().unwrap_or_default().to_string();
    assert_ne!(new_id, before);
    assert_eq!(
        new.rollout_state(),
        Some(&DeploymentRolloutState::InProgress)
    );
    assert_eq!(
        new.rollout_state_reason(),
        Some(format!("ECS deployment {new_id} in progress.").as_str())
    );
    let active = s
        .deployments()
        .iter()
        .find(|d| d.status() == Some("ACTIVE"))
        .expect("the old deployment is ACTIVE");
    assert_eq!(active.id(), Some(before.as_str()));

    let s = rig
        .until_service("the deployment to complete", |s| {
            primary(s).rollout_state() == Some(&DeploymentRolloutState::Completed)
        })
        .await;
    assert_eq!(primary(&s).id(), Some(new_id.as_str()));
    assert_eq!(s.deployments().len(), 1, "the old deployment is gone");
    assert_eq!((s.running_count(), s.pending_count()), (2, 0));
    let now = rig.task_ids(DesiredStatus::Running).await;
    assert_eq!(now.len(), 2);
    assert!(
        now.iter().all(|id| !old.contains(id)),
        "every task replaced: {old:?} → {now:?}"
    );
    let live: HashSet<String> = rig
        .emulator
        .fleet()
        .live_replicas()
        .iter()
        .map(|r| r.id.clone())
        .collect();
    assert_eq!(
        live,
        now.iter().cloned().collect(),
        "the live replicas are the new tasks"
    );
    let stopped = rig.task_ids(DesiredStatus::Stopped).await;
    assert_eq!(
        stopped.iter().cloned().collect::<HashSet<_>>(),
        old.iter().cloned().collect()
    );
    for id in &old {
        let t = rig.task(id).await;
        assert_eq!(t.last_status(), Some("STOPPED"));
        assert_eq!(
            t.stop_code(),
            Some(&TaskStopCode::ServiceSchedulerInitiated)
        );
        assert_eq!(
            t.stopped_reason(),
            Some(format!("Scaling activity initiated by (deployment {before})").as_str())
        );
        assert!(t.stopping_at().is_some() && t.stopped_at().is_some());
        assert_eq!(
            t.containers()[0].exit_code(),
            Some(0),
            "a clean exit after SIGTERM"
        );
    }
    let events = messages(&s);
    assert_eq!(
        events[0],
        format!("(service {SERVICE}) has reached a steady state.")
    );
    assert_eq!(
        events[1],
        format!("(service {SERVICE}) (deployment {new_id}) deployment completed.")
    );
    assert!(events.iter().any(|e| e.starts_with(&format!(
        "(service {SERVICE}) deregistered 1 targets in (target-group arn:aws:elasticloadbalancing:"
    ))));
    let stopping = format!("(service {SERVICE}) has stopped ");
    for id in &old {
        assert!(
            events
                .iter()
                .any(|e| e.starts_with(&stopping) && e.contains(&format!("(task {id})"))),
            "no stop event for {id}: {events:#?}"
        );
    }
    rig.shutdown().await;
}

/// A revision whose tasks exit at start: the circuit breaker fails the deployment after
/// three failed tasks and rolls back to revision 1, keeping the good tasks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_revision_fails_and_rolls_back() {
    let rig = Rig::start(dropzero::ecs_emulator::EmulatorConfig {
        circuit_breaker: Some(CircuitBreaker { rollback: true }),
        broken_revisions: vec![2],
        ..config()
    })
    .await;
    let good = rig.task_ids(DesiredStatus::Running).await;
    let completed = primary(&rig.service().await)
        .id()
        .unwrap_or_default()
        .to_string();
    let out = rig
        .ecs
        .update_service()
        .cluster(CLUSTER)
        .service(SERVICE)
        .task_definition(format!("{FAMILY}:2"))
        .send()
        .await
        .expect("UpdateService");
    let failing = primary(out.service().expect("service"))
        .id()
        .unwrap_or_default()
        .to_string();
    let s = rig
        .until_service("the deployment to fail", |s| {
            s.deployments().iter().any(|d| {
                d.id() == Some(failing.as_str())
                    && d.rollout_state() == Some(&DeploymentRolloutState::Failed)
            })
        })
        .await;
    let failed = s
        .deployments()
        .iter()
        .find(|d| d.id() == Some(failing.as_str()))
        .expect("failed deployment");
    assert_eq!(failed.status(), Some("ACTIVE"));
    assert_eq!(
        failed.rollout_state_reason(),
        Some("ECS deployment circuit breaker: tasks failed to start.")
    );
    assert!(failed.failed_tasks() >= 3, "{failed:?}");
    let rollback = primary(&s);
    assert!(
        rollback
            .task_definition()
            .is_some_and(|td| td.ends_with(&format!("{FAMILY}:1")))
    );
    assert_eq!(
        rollback.rollout_state_reason(),
        Some(
            format!("ECS deployment circuit breaker: rolling back to deploymentId {completed}.")
                .as_str()
        )
    );
    assert!(messages(&s).contains(&format!(
        "(service {SERVICE}) (deployment {failing}) deployment failed: tasks failed to start."
    )));

    let s = rig
        .until_service("the rollback to complete", |s| {
            s.deployments().len() == 1
                && primary(s).rollout_state() == Some(&DeploymentRolloutState::Completed)
        })
        .await;
    assert!(
        s.task_definition()
            .is_some_and(|td| td.ends_with(&format!("{FAMILY}:1")))
    );
    assert_eq!(
        rig.task_ids(DesiredStatus::Running).await,
        good,
        "the good tasks were never replaced"
    );
    let broken = rig.task_ids(DesiredStatus::Stopped).await;
    assert!(broken.len() >= 3);
    for id in &broken {
        let t = rig.task(id).await;
        assert!(
            t.task_definition_arn()
                .is_some_and(|td| td.ends_with(&format!("{FAMILY}:2")))
        );
        assert_eq!(t.stop_code(), Some(&TaskStopCode::EssentialContainerExited));
        assert_eq!(
            t.stopped_reason(),
            Some("Essential container in task exited")
        );
        assert_eq!(
            t.containers()[0].exit_code(),
            Some(2),
            "the runtime refused its arguments: {t:?}"
        );
    }
    rig.shutdown().await;
}
