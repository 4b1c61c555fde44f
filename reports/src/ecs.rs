//! The report's ECS section: what the ECS target saw of the service during the run —
//! deployments and their rollout, every task with its stop code and reason, the service
//! events in ECS's own words. Times are wall seconds since the run started (like the rest
//! of the report); `None` where ECS did not say.

use serde::{Deserialize, Serialize};

use crate::model::finite;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EcsReport {
    pub cluster: String,
    pub service: String,
    pub region: String,
    /// The service ARN as `DescribeServices` returned it (it names the account).
    pub service_arn: String,
    /// `aws`, `emulator` (the harness's own ECS emulator) or the custom endpoint URL.
    pub endpoint: String,
    pub deployments: Vec<EcsDeployment>,
    pub tasks: Vec<EcsTask>,
    /// Service events seen during the run, oldest first.
    pub events: Vec<EcsEvent>,
    /// Observation polls that failed (throttling, network); the last error is in `errors`.
    pub poll_errors: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EcsDeployment {
    /// `ecs-svc/…`.
    pub id: String,
    /// PRIMARY | ACTIVE | INACTIVE, as last seen.
    pub status: String,
    pub task_definition: String,
    /// IN_PROGRESS | COMPLETED | FAILED, as last seen.
    pub rollout_state: Option<String>,
    pub rollout_state_reason: Option<String>,
    pub failed_tasks: u32,
    #[serde(serialize_with = "finite::opt_f64")]
    pub created_s: Option<f64>,
    #[serde(serialize_with = "finite::opt_f64")]
    pub updated_s: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EcsTask {
    /// The task id: what the runtime calls itself (`x-dropzero-replica`).
    pub task_id: String,
    /// `family:revision`.
    pub task_definition: String,
    pub last_status: String,
    #[serde(serialize_with = "finite::opt_f64")]
    pub started_s: Option<f64>,
    #[serde(serialize_with = "finite::opt_f64")]
    pub stopping_s: Option<f64>,
    #[serde(serialize_with = "finite::opt_f64")]
    pub stopped_s: Option<f64>,
    /// `UserInitiated`, `ServiceSchedulerInitiated`, `EssentialContainerExited`, …
    pub stop_code: Option<String>,
    pub stopped_reason: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EcsEvent {
    #[serde(serialize_with = "finite::opt_f64")]
    pub at_s: Option<f64>,
    pub message: String,
}
