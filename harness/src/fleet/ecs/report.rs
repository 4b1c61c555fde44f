//! The report's ECS section from what the sampler saw: deployments, tasks and service
//! events, with ECS's timestamps turned into seconds since the run started.

use std::time::SystemTime;

use dropzero_reports as r;

use super::{EcsTarget, Observed};

/// `run_start` is the wall-clock time of the report's time zero.
pub fn section(target: &EcsTarget, endpoint: &str, run_start: SystemTime) -> r::EcsReport {
    let o: Observed = target.observed();
    // Before the run (a task started earlier, an old deployment) is negative: it stays so,
    // since "started 40 s before the run" is what the reader needs.
    let at = |t: Option<SystemTime>| {
        t.map(|t| match t.duration_since(run_start) {
            Ok(d) => d.as_secs_f64(),
            Err(e) => -e.duration().as_secs_f64(),
        })
    };
    let cfg = target.config();
    r::EcsReport {
        cluster: cfg.cluster.clone(),
        service: cfg.service.clone(),
        region: cfg.region.clone(),
        service_arn: target.service_arn.clone(),
        endpoint: endpoint.to_string(),
        deployments: o
            .deployments
            .values()
            .map(|d| r::EcsDeployment {
                id: d.id.clone(),
                status: d.status.clone(),
                task_definition: super::arn_id(&d.task_definition).to_string(),
                rollout_state: d.rollout_state.clone(),
                rollout_state_reason: d.rollout_state_reason.clone(),
                failed_tasks: d.failed_tasks,
                created_s: at(d.created_at),
                updated_s: at(d.updated_at),
            })
            .collect(),
        tasks: o
            .tasks
            .values()
            .map(|t| r::EcsTask {
                task_id: t.id.clone(),
                task_definition: t.version(),
                last_status: t.last_status.clone(),
                started_s: at(t.started_at),
                stopping_s: at(t.stopping_at),
                stopped_s: at(t.stopped_at),
                stop_code: t.stop_code.clone(),
                stopped_reason: t.stopped_reason.clone(),
            })
            .collect(),
        events: o
            .events
            .iter()
            .filter(|e| e.1.is_none_or(|t| t >= run_start))
            .map(|e| r::EcsEvent {
                at_s: at(e.1),
                message: e.2.clone(),
            })
            .collect(),
        poll_errors: o.poll_errors,
    }
}
