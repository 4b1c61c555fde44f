//! What the ECS target sees of its service: `DescribeServices`, `ListTasks` and
//! `DescribeTasks` parsed into plain views, merged into one [`Observed`] state by a sampler
//! that polls at the configured interval and backs off (doubling, up to 30 s) while ECS
//! throttles. Only the views leave this file; SDK types stay inside.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_sdk_ecs::Client;
use aws_sdk_ecs::types::DesiredStatus;
use tokio_util::sync::CancellationToken;

use super::{EcsConfig, EcsError, arn_id, lock};
use crate::fleet::{ReplicaInfo, ReplicaState};

/// Most service events kept (ECS itself returns the latest 100).
const MAX_EVENTS: usize = 500;
/// `DescribeTasks` takes at most 100 tasks per call (ECS API reference).
const DESCRIBE_BATCH: usize = 100;
/// Longest wait between polls while throttled.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Default)]
pub struct ServiceView {
    pub arn: String,
    pub status: String,
    pub desired: u32,
    pub running: u32,
    pub pending: u32,
    pub task_definition: String,
    pub deployments: Vec<DeploymentView>,
    /// Newest first, as ECS returns them: `(id, created_at, message)`.
    pub events: Vec<(String, Option<SystemTime>, String)>,
}

impl ServiceView {
    pub fn primary(&self) -> Option<&DeploymentView> {
        self.deployments.iter().find(|d| d.status == "PRIMARY")
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeploymentView {
    pub id: String,
    /// PRIMARY | ACTIVE | INACTIVE.
    pub status: String,
    pub task_definition: String,
    pub desired: u32,
    pub running: u32,
    pub failed_tasks: u32,
    /// IN_PROGRESS | COMPLETED | FAILED (absent on services without the rolling controller).
    pub rollout_state: Option<String>,
    pub rollout_state_reason: Option<String>,
    pub created_at: Option<SystemTime>,
    pub updated_at: Option<SystemTime>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskView {
    pub arn: String,
    pub id: String,
    pub task_definition: String,
    pub last_status: String,
    pub desired_status: String,
    pub health: Option<String>,
    pub started_at: Option<SystemTime>,
    pub stopping_at: Option<SystemTime>,
    pub stopped_at: Option<SystemTime>,
    pub stop_code: Option<String>,
    pub stopped_reason: Option<String>,
}

impl TaskView {
    /// `family:revision` of the task definition ARN, the "version" a task runs.
    pub fn version(&self) -> String {
        arn_id(&self.task_definition).to_string()
    }
}

/// Everything seen so far: the latest service view, every task ever seen (stopped ones stay,
/// for the report), every service event (deduplicated by id), oldest first.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    pub service: Option<ServiceView>,
    pub tasks: BTreeMap<String, TaskView>,
    pub events: Vec<(String, Option<SystemTime>, String)>,
    /// Every deployment ever seen, by id, in its latest state.
    pub deployments: BTreeMap<String, DeploymentView>,
    pub last_poll: Option<SystemTime>,
    /// Polls that failed, and the last failure (for the report's errors).
    pub poll_errors: u64,
    pub last_error: Option<String>,
    /// Application Auto Scaling's activities on the service, by id, in their latest state.
    pub activities: BTreeMap<String, super::scaling::ActivityView>,
}

impl Observed {
    pub fn apply_service(&mut self, service: ServiceView, now: SystemTime) {
        for d in &service.deployments {
            self.deployments.insert(d.id.clone(), d.clone());
        }
        // Events come newest first; append the unseen ones oldest first.
        for e in service.events.iter().rev() {
            if !self.events.iter().any(|seen| seen.0 == e.0) {
                self.events.push(e.clone());
            }
        }
        if self.events.len() > MAX_EVENTS {
            let extra = self.events.len() - MAX_EVENTS;
            self.events.drain(..extra);
        }
        self.service = Some(service);
        self.last_poll = Some(now);
    }

    pub fn apply_tasks(&mut self, tasks: Vec<TaskView>) {
        for t in tasks {
            self.tasks.insert(t.id.clone(), t);
        }
    }

    /// The tasks as replicas: id = task id, version = `family:revision`.
    pub fn replicas(&self) -> Vec<ReplicaInfo> {
        self.tasks
            .values()
            .map(|t| ReplicaInfo {
                id: t.id.clone(),
                version: t.version(),
                // Tasks are reached only through the load balancer.
                url: String::new(),
                state: replica_state(t),
            })
            .collect()
    }

    /// RUNNING tasks that ECS is not already stopping, oldest first.
    pub fn running_tasks(&self) -> Vec<TaskView> {
        let mut running: Vec<TaskView> = self
            .tasks
            .values()
            .filter(|t| t.last_status == "RUNNING" && t.desired_status == "RUNNING")
            .cloned()
            .collect();
        running.sort_by_key(|t| t.started_at);
        running
    }
}

/// ECS task lifecycle → the harness's replica states. A RUNNING task ECS wants stopped is
/// draining; an unhealthy container health check counts as unhealthy. See
/// https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-lifecycle-explanation.html
fn replica_state(t: &TaskView) -> ReplicaState {
    match t.last_status.as_str() {
        "PROVISIONING" | "PENDING" | "ACTIVATING" => ReplicaState::Starting,
        "RUNNING" if t.desired_status == "STOPPED" => ReplicaState::Draining,
        "RUNNING" if t.health.as_deref() == Some("UNHEALTHY") => ReplicaState::Unhealthy,
        "RUNNING" => ReplicaState::Ready,
        "DEACTIVATING" | "STOPPING" | "DEPROVISIONING" => ReplicaState::Draining,
        _ => ReplicaState::Stopped,
    }
}

fn time(t: Option<&aws_sdk_ecs::primitives::DateTime>) -> Option<SystemTime> {
    t.and_then(|t| SystemTime::try_from(*t).ok())
}

fn count(n: i32) -> u32 {
    u32::try_from(n).unwrap_or(0)
}

pub(super) fn service_view(s: &aws_sdk_ecs::types::Service) -> ServiceView {
    ServiceView {
        arn: s.service_arn().unwrap_or_default().to_string(),
        status: s.status().unwrap_or_default().to_string(),
        desired: count(s.desired_count()),
        running: count(s.running_count()),
        pending: count(s.pending_count()),
        task_definition: s.task_definition().unwrap_or_default().to_string(),
        deployments: s
            .deployments()
            .iter()
            .map(|d| DeploymentView {
                id: d.id().unwrap_or_default().to_string(),
                status: d.status().unwrap_or_default().to_string(),
                task_definition: d.task_definition().unwrap_or_default().to_string(),
                desired: count(d.desired_count()),
                running: count(d.running_count()),
                failed_tasks: count(d.failed_tasks()),
                rollout_state: d.rollout_state().map(|r| r.as_str().to_string()),
                rollout_state_reason: d.rollout_state_reason().map(str::to_string),
                created_at: time(d.created_at()),
                updated_at: time(d.updated_at()),
            })
            .collect(),
        events: s
            .events()
            .iter()
            .map(|e| {
                (
                    e.id().unwrap_or_default().to_string(),
                    time(e.created_at()),
                    e.message().unwrap_or_default().to_string(),
                )
            })
            .collect(),
    }
}

fn task_view(t: &aws_sdk_ecs::types::Task) -> TaskView {
    let arn = t.task_arn().unwrap_or_default().to_string();
    TaskView {
        id: arn_id(&arn).to_string(),
        arn,
        task_definition: t.task_definition_arn().unwrap_or_default().to_string(),
        last_status: t.last_status().unwrap_or_default().to_string(),
        desired_status: t.desired_status().unwrap_or_default().to_string(),
        health: t.health_status().map(|h| h.as_str().to_string()),
        started_at: time(t.started_at()),
        stopping_at: time(t.stopping_at()),
        stopped_at: time(t.stopped_at()),
        stop_code: t.stop_code().map(|c| c.as_str().to_string()),
        stopped_reason: t.stopped_reason().map(str::to_string),
    }
}

pub(super) async fn describe_service(
    client: &Client,
    cfg: &EcsConfig,
) -> Result<ServiceView, EcsError> {
    let resource = || {
        format!(
            "service {} in cluster {} ({})",
            cfg.service, cfg.cluster, cfg.region
        )
    };
    let out = client
        .describe_services()
        .cluster(&cfg.cluster)
        .services(&cfg.service)
        .send()
        .await
        .map_err(|e| EcsError::from_sdk("DescribeServices", resource(), &e))?;
    if let Some(service) = out.services().first() {
        return Ok(service_view(service));
    }
    // ECS answers an unknown service with a `failures` entry, not an error.
    let reason = out
        .failures()
        .first()
        .map(|f| f.reason().unwrap_or("unknown").to_string())
        .unwrap_or_else(|| "no such service".into());
    Err(EcsError::new(
        "DescribeServices",
        resource(),
        Some("ServiceNotFoundException".into()),
        format!("failure: {reason}"),
    ))
}

pub(super) async fn list_and_describe_tasks(
    client: &Client,
    cfg: &EcsConfig,
) -> Result<Vec<TaskView>, EcsError> {
    let mut arns = Vec::new();
    for status in [DesiredStatus::Running, DesiredStatus::Stopped] {
        let mut next: Option<String> = None;
        loop {
            let out = client
                .list_tasks()
                .cluster(&cfg.cluster)
                .service_name(&cfg.service)
                .desired_status(status.clone())
                .set_next_token(next.take())
                .send()
                .await
                .map_err(|e| {
                    EcsError::from_sdk(
                        "ListTasks",
                        format!("service {} in cluster {}", cfg.service, cfg.cluster),
                        &e,
                    )
                })?;
            arns.extend(out.task_arns().iter().cloned());
            match out.next_token() {
                Some(token) if !token.is_empty() => next = Some(token.to_string()),
                _ => break,
            }
        }
    }
    let mut tasks = Vec::with_capacity(arns.len());
    for batch in arns.chunks(DESCRIBE_BATCH) {
        let out = client
            .describe_tasks()
            .cluster(&cfg.cluster)
            .set_tasks(Some(batch.to_vec()))
            .send()
            .await
            .map_err(|e| {
                EcsError::from_sdk(
                    "DescribeTasks",
                    format!("{} tasks in cluster {}", batch.len(), cfg.cluster),
                    &e,
                )
            })?;
        tasks.extend(out.tasks().iter().map(task_view));
    }
    Ok(tasks)
}

/// Poll until `stop`: service, then tasks, every `poll_interval`; on throttling double the
/// wait (up to [`MAX_BACKOFF`]), on success return to the interval.
pub(super) async fn sample(
    client: Client,
    scaling: Option<aws_sdk_applicationautoscaling::Client>,
    cfg: EcsConfig,
    observed: Arc<Mutex<Observed>>,
    stop: CancellationToken,
) {
    let mut wait = cfg.poll_interval;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        let result = async {
            let service = describe_service(&client, &cfg).await?;
            let tasks = list_and_describe_tasks(&client, &cfg).await?;
            // A failing Application Auto Scaling call (no permission for it, say) must
            // not blind the ECS view: it is recorded and the poll goes on.
            let activities = match &scaling {
                Some(c) => Some(super::scaling::describe_activities(c, &cfg).await),
                None => None,
            };
            Ok::<_, EcsError>((service, tasks, activities))
        }
        .await;
        let mut o = lock(&observed);
        match result {
            Ok((service, tasks, activities)) => {
                o.apply_service(service, SystemTime::now());
                o.apply_tasks(tasks);
                match activities {
                    Some(Ok(activities)) => {
                        for a in activities {
                            o.activities.insert(a.id.clone(), a);
                        }
                    }
                    Some(Err(e)) => {
                        o.poll_errors += 1;
                        tracing::warn!(error = %e, "autoscaling poll failed");
                        o.last_error = Some(e.to_string());
                    }
                    None => {}
                }
                wait = cfg.poll_interval;
            }
            Err(e) => {
                o.poll_errors += 1;
                if e.is_throttling() {
                    wait = (wait * 2).min(MAX_BACKOFF);
                }
                tracing::warn!(error = %e, next_poll = ?wait, "ECS poll failed");
                o.last_error = Some(e.to_string());
            }
        }
    }
}
