//! The emulated control plane's state: one cluster, one service, its deployments, its tasks
//! (stopped ones included) and its event log. Pure data and small state transitions; no
//! processes, no HTTP (those are `tasks.rs` and `api.rs`), no JSON (`json.rs`); names, ARNs
//! and ids are in `names.rs`.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

pub(crate) use super::names::{Names, new_deployment_id, new_task_id, new_uuid, wall_now};

use super::CircuitBreaker;
use crate::fleet::local::Replica;

/// ECS shows the 100 most recent service events.
/// <https://docs.aws.amazon.com/AmazonECS/latest/developerguide/service-event-messages.html>
pub(crate) const MAX_EVENTS: usize = 100;

/// Stopped tasks stay visible for at least an hour.
/// <https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DescribeTasks.html>
pub(crate) const STOPPED_TASK_RETENTION: Duration = Duration::from_secs(3600);

/// A task's `lastStatus`, the lifecycle ECS documents:
/// <https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-lifecycle-explanation.html>
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LastStatus {
    /// The record exists; the replica process is not spawned yet.
    Provisioning,
    /// The process is spawned and has not printed its listening line.
    Pending,
    /// The process listens (ECS: containers started; health checks come after).
    Running,
    /// Deregistering from the load balancer and draining (deployment stops only).
    Deactivating,
    /// SIGTERM sent, waiting for the exit (SIGKILL after `stopTimeout`).
    Stopping,
    Stopped,
}

impl LastStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            LastStatus::Provisioning => "PROVISIONING",
            LastStatus::Pending => "PENDING",
            LastStatus::Running => "RUNNING",
            LastStatus::Deactivating => "DEACTIVATING",
            LastStatus::Stopping => "STOPPING",
            LastStatus::Stopped => "STOPPED",
        }
    }
    pub fn is_pending(self) -> bool {
        matches!(self, LastStatus::Provisioning | LastStatus::Pending)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Health {
    Unknown,
    Healthy,
    Unhealthy,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "UNKNOWN",
            Health::Healthy => "HEALTHY",
            Health::Unhealthy => "UNHEALTHY",
        }
    }
}

/// `stopCode` values:
/// <https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_Task.html#ECS-Type-Task-stopCode>
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StopCode {
    UserInitiated,
    ServiceSchedulerInitiated,
    EssentialContainerExited,
}

impl StopCode {
    pub fn as_str(self) -> &'static str {
        match self {
            StopCode::UserInitiated => "UserInitiated",
            StopCode::ServiceSchedulerInitiated => "ServiceSchedulerInitiated",
            StopCode::EssentialContainerExited => "EssentialContainerExited",
        }
    }
}

/// The `stoppedReason` of a task whose essential container exited by itself.
/// <https://docs.aws.amazon.com/AmazonECS/latest/developerguide/stopped-task-error-codes.html>
pub(crate) const REASON_CONTAINER_EXITED: &str = "Essential container in task exited";

/// One emulated task: one replica process of the local fleet, named by the task id.
#[derive(Debug)]
pub(crate) struct Task {
    pub id: String,
    /// The deployment that started it (`startedBy`).
    pub started_by: String,
    /// The deployment it belongs to now: `started_by`, or a rollback deployment that took
    /// over the tasks of the deployment it returned to.
    pub deployment: String,
    pub revision: u32,
    pub last: LastStatus,
    pub desired_running: bool,
    pub health: Health,
    pub ever_healthy: bool,
    pub created_at: f64,
    pub started_at: Option<f64>,
    pub stopping_at: Option<f64>,
    pub stopped_at: Option<f64>,
    pub stop_code: Option<StopCode>,
    pub stopped_reason: Option<String>,
    pub exit_code: Option<i32>,
    /// When it turned RUNNING, for the health check grace period.
    pub running_since: Option<Instant>,
    pub replica: Option<Arc<Replica>>,
    /// Scale-in protection, as its replica last reported it (`dropzero_scale_in_protected`).
    pub protected: bool,
    /// Bumped on every change, like the task's `version`.
    pub version: u64,
}

impl Task {
    pub fn new(id: String, deployment: &str, revision: u32) -> Task {
        Task {
            id,
            started_by: deployment.to_string(),
            deployment: deployment.to_string(),
            revision,
            last: LastStatus::Provisioning,
            desired_running: true,
            health: Health::Unknown,
            ever_healthy: false,
            created_at: wall_now(),
            started_at: None,
            stopping_at: None,
            stopped_at: None,
            stop_code: None,
            stopped_reason: None,
            exit_code: None,
            running_since: None,
            replica: None,
            protected: false,
            version: 1,
        }
    }

    /// Desired to run and not stopped: counts toward the service.
    pub fn is_live(&self) -> bool {
        self.desired_running && self.last != LastStatus::Stopped
    }

    /// The scheduler (or a user) decided to stop it.
    pub fn begin_stop(&mut self, code: StopCode, reason: String) {
        if !self.desired_running {
            return;
        }
        self.desired_running = false;
        self.stopping_at = Some(wall_now());
        self.stop_code = Some(code);
        self.stopped_reason = Some(reason);
        self.version += 1;
    }

    /// It is gone: its process exited (or never started).
    pub fn finish_stop(&mut self, exit_code: Option<i32>) {
        if self.last == LastStatus::Stopped {
            return;
        }
        self.desired_running = false;
        self.last = LastStatus::Stopped;
        self.stopping_at.get_or_insert_with(wall_now);
        self.stopped_at = Some(wall_now());
        self.exit_code = self.exit_code.or(exit_code);
        self.version += 1;
    }
}

/// A deployment's `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DeploymentStatus {
    Primary,
    Active,
}

/// A deployment's `rolloutState`.
/// <https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_Deployment.html>
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rollout {
    InProgress,
    Completed,
    Failed,
}

impl Rollout {
    pub fn as_str(self) -> &'static str {
        match self {
            Rollout::InProgress => "IN_PROGRESS",
            Rollout::Completed => "COMPLETED",
            Rollout::Failed => "FAILED",
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Deployment {
    pub id: String,
    pub status: DeploymentStatus,
    pub revision: u32,
    pub failed_tasks: u32,
    /// The circuit breaker's count: like `failed_tasks`, but reset when a task of this
    /// deployment turns healthy (`resetOnHealthyTask`, default true).
    /// <https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DeploymentCircuitBreaker.html>
    pub breaker_failures: u32,
    pub created_at: f64,
    pub updated_at: f64,
    pub rollout: Rollout,
    pub reason: String,
}

#[derive(Debug, Clone)]
pub(crate) struct Event {
    pub id: String,
    pub created_at: f64,
    pub message: String,
}

/// The service's `deploymentConfiguration`, changeable by `UpdateService`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Settings {
    pub minimum_healthy_percent: u32,
    pub maximum_percent: u32,
    pub circuit_breaker: Option<CircuitBreaker>,
    /// `healthCheckGracePeriodSeconds`.
    pub health_check_grace: Duration,
}

/// Everything the API shows and the scheduler changes, behind one lock.
#[derive(Debug)]
pub(crate) struct State {
    pub names: Names,
    pub desired_count: usize,
    pub settings: Settings,
    /// `[0]` is the PRIMARY deployment; the others are ACTIVE (being replaced).
    pub deployments: Vec<Deployment>,
    pub tasks: Vec<Task>,
    /// Newest first.
    pub events: VecDeque<Event>,
    pub created_at: f64,
    /// The last deployment that reached COMPLETED (id, revision): what a rollback returns to.
    pub last_completed: Option<(String, u32)>,
    /// Task definition revisions whose tasks exit at start.
    pub broken_revisions: Vec<u32>,
    /// No launches before this (after a task failed to start; see `deploy.rs`).
    pub launch_paused_until: Option<Instant>,
    /// The last "has reached a steady state." still holds.
    pub steady: bool,
    /// Since when the PRIMARY has met its completion conditions (see `deploy.rs`).
    pub settling_since: Option<Instant>,
    /// Application Auto Scaling's activities on the desired count, oldest first.
    pub activities: Vec<super::scaling::Activity>,
}

impl State {
    pub fn new(
        names: Names,
        desired_count: usize,
        revision: u32,
        settings: Settings,
        broken: Vec<u32>,
    ) -> State {
        let mut state = State {
            names,
            desired_count,
            settings,
            deployments: Vec::new(),
            tasks: Vec::new(),
            events: VecDeque::new(),
            created_at: wall_now(),
            last_completed: None,
            broken_revisions: broken,
            launch_paused_until: None,
            steady: false,
            settling_since: None,
            activities: Vec::new(),
        };
        state.new_deployment(revision, None);
        state
    }

    /// Record a service event (newest first, at most [`MAX_EVENTS`]).
    pub fn event(&mut self, message: String) {
        tracing::info!(service = %self.names.service, "{message}");
        self.events.push_front(Event {
            id: new_uuid(),
            created_at: wall_now(),
            message,
        });
        self.events.truncate(MAX_EVENTS);
    }

    pub fn primary(&self) -> &Deployment {
        &self.deployments[0]
    }

    pub fn primary_mut(&mut self) -> &mut Deployment {
        &mut self.deployments[0]
    }

    pub fn deployment_mut(&mut self, id: &str) -> Option<&mut Deployment> {
        self.deployments.iter_mut().find(|d| d.id == id)
    }

    pub fn task(&self, id: &str) -> Option<&Task> {
        self.tasks.iter().find(|t| t.id == id)
    }

    pub fn task_mut(&mut self, id: &str) -> Option<&mut Task> {
        self.tasks.iter_mut().find(|t| t.id == id)
    }

    /// A deployment is replacing tasks (ECS suspends scale-in by autoscaling meanwhile).
    pub fn is_deploying(&self) -> bool {
        self.deployments.len() > 1 || self.primary().rollout == Rollout::InProgress
    }

    /// The service's task definition revision: its PRIMARY deployment's.
    pub fn revision(&self) -> u32 {
        self.primary().revision
    }

    /// Make a new PRIMARY deployment of `revision`; the old PRIMARY becomes ACTIVE and the
    /// scheduler replaces its tasks. Returns the new id.
    /// <https://docs.aws.amazon.com/AmazonECS/latest/developerguide/deployment-type-ecs.html>
    pub fn new_deployment(&mut self, revision: u32, reason: Option<String>) -> String {
        let id = new_deployment_id();
        let now = wall_now();
        for d in &mut self.deployments {
            d.status = DeploymentStatus::Active;
            d.updated_at = now;
        }
        self.deployments.insert(
            0,
            Deployment {
                reason: reason.unwrap_or_else(|| format!("ECS deployment {id} in progress.")),
                id: id.clone(),
                status: DeploymentStatus::Primary,
                revision,
                failed_tasks: 0,
                breaker_failures: 0,
                created_at: now,
                updated_at: now,
                rollout: Rollout::InProgress,
            },
        );
        self.launch_paused_until = None;
        self.settling_since = None;
        id
    }

    /// `(running, pending, desired)` of one deployment's tasks (all deployments: `None`).
    /// A deployment's desired count is the service's for the PRIMARY and, for an ACTIVE one,
    /// the tasks it still has (ECS scales ACTIVE deployments down as it goes).
    pub fn counts(&self, deployment: Option<&str>) -> (usize, usize, usize) {
        let mine = |t: &&Task| deployment.is_none_or(|d| t.deployment == d);
        let running = self
            .tasks
            .iter()
            .filter(mine)
            .filter(|t| t.last == LastStatus::Running)
            .count();
        let pending = self
            .tasks
            .iter()
            .filter(mine)
            .filter(|t| t.last.is_pending() && t.desired_running)
            .count();
        let desired = match deployment {
            None => self.desired_count,
            Some(d) if d == self.primary().id => self.desired_count,
            Some(_) => self
                .tasks
                .iter()
                .filter(mine)
                .filter(|t| t.is_live())
                .count(),
        };
        (running, pending, desired)
    }

    /// Count a failed task against the deployment that started it.
    pub fn count_failure(&mut self, deployment: &str) {
        if let Some(d) = self.deployment_mut(deployment) {
            d.failed_tasks += 1;
            d.breaker_failures += 1;
            d.updated_at = wall_now();
        }
    }

    /// Forget tasks stopped longer ago than [`STOPPED_TASK_RETENTION`].
    pub fn prune(&mut self) {
        let horizon = wall_now() - STOPPED_TASK_RETENTION.as_secs_f64();
        self.tasks
            .retain(|t| t.stopped_at.is_none_or(|at| at >= horizon));
    }
}
