//! Service autoscaling: what Application Auto Scaling does to an ECS service with a target
//! tracking policy on a custom metric (our runtime's active sessions per task), enacted on
//! the emulated service's `desiredCount`, plus the API a client reads it back with.
//!
//! - The policy is the local autoscaler's ([`crate::autoscale::policy`], where the AWS rules
//!   and simplifications are cited): one-minute datapoints (time-scaled), scale out after 3
//!   above the target, in after 15 below 90% of it, cooldowns, min/max.
//!   <https://docs.aws.amazon.com/autoscaling/application/userguide/application-auto-scaling-target-tracking.html>
//! - The metric is the average of `dropzero_active_sessions` over the service's RUNNING
//!   tasks, scraped from each task's replica (on AWS the runtime publishes it as EMF).
//! - A decision sets `desiredCount`; the service scheduler (`deploy.rs`) starts or stops
//!   tasks toward it. Each is a scaling activity, `Successful` once the desired count is
//!   set, as Application Auto Scaling reports it ("Successfully set desired count to N.
//!   Change successfully fulfilled by ecs.").
//!   <https://docs.aws.amazon.com/autoscaling/application/APIReference/API_ScalingActivity.html>
//! - Scale-in never stops a task that has set scale-in protection
//!   (`dropzero_scale_in_protected`, on AWS `UpdateTaskProtection`).
//!   <https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-scale-in-protection.html>
//! - Scale-in is suspended while a deployment is in progress, as for the local fleet.

use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::Inner;
use super::api::ApiError;
use super::model::{State, new_uuid, wall_now};
use crate::autoscale::policy::{Decision, Policy, TargetTracking};
use crate::autoscale::{DATAPOINT, Datapoints, scrape};
use crate::scenario::AutoscalingPlan;

/// The scaling policy the emulated service has, and how long one datapoint is (wall).
#[derive(Debug, Clone, Copy)]
pub struct EmulatedScaling {
    pub plan: AutoscalingPlan,
    pub datapoint: Duration,
}

impl EmulatedScaling {
    pub fn new(plan: AutoscalingPlan, time_scale: f64) -> EmulatedScaling {
        EmulatedScaling {
            plan,
            datapoint: DATAPOINT.mul_f64(time_scale),
        }
    }
}

/// One scaling activity, as `DescribeScalingActivities` shows it.
#[derive(Debug, Clone)]
pub(crate) struct Activity {
    pub id: String,
    pub to: u32,
    pub from: u32,
    pub started: f64,
    pub ended: f64,
    pub alarm: &'static str,
}

const POLICY_NAME: &str = "dropzero-active-sessions";

/// Run the policy until the emulator stops.
pub(crate) async fn run(inner: Arc<Inner>, scaling: EmulatedScaling) {
    let policy = Policy::from(&scaling.plan);
    let mut tt = TargetTracking::default();
    let start = Instant::now();
    let mut datapoints = Datapoints::new(scaling.datapoint, start);
    let mut tick = tokio::time::interval(datapoints.sample_every());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = inner.cancel.cancelled() => return,
        }
        let running: Vec<(String, String)> = {
            let s = inner.lock();
            s.tasks
                .iter()
                .filter(|t| t.is_live() && t.last == super::model::LastStatus::Running)
                .filter_map(|t| t.replica.as_ref().map(|r| (t.id.clone(), r.url())))
                .collect()
        };
        let views = join_all(running.iter().map(|(_, url)| scrape(url.clone()))).await;
        {
            let mut s = inner.lock();
            for ((id, _), view) in running.iter().zip(&views) {
                if let Some(t) = s.tasks.iter_mut().find(|t| &t.id == id) {
                    t.protected = view.protected;
                }
            }
        }
        let answered: Vec<f64> = views.iter().filter_map(|v| v.active).collect();
        if !answered.is_empty() {
            datapoints.sample(answered.iter().sum::<f64>() / answered.len() as f64);
        }
        let now = Instant::now();
        let Some((_, metric)) = datapoints.close(now) else {
            continue;
        };
        let mut s = inner.lock();
        let tasks = u32::try_from(s.desired_count).unwrap_or(u32::MAX);
        let deploying = s.is_deploying();
        let decision = tt.datapoint(&policy, now.duration_since(start), metric, tasks, deploying);
        let (to, alarm) = match decision {
            Decision::ScaleOut { to, .. } => (to, "AlarmHigh"),
            Decision::ScaleIn { to, .. } => (to, "AlarmLow"),
            Decision::None | Decision::Blocked { .. } => continue,
        };
        tracing::info!(
            from = tasks,
            to,
            metric,
            "ecs emulator: target tracking sets desired count"
        );
        s.desired_count = to as usize;
        let at = wall_now();
        s.activities.push(Activity {
            id: new_uuid(),
            to,
            from: tasks,
            started: at,
            ended: at,
            alarm,
        });
        drop(s);
        inner.wake.notify_one();
    }
}

/// `service/<cluster>/<service>`: the scalable target's resource id.
fn resource_id(s: &State) -> String {
    format!("service/{}/{}", s.names.cluster, s.names.service)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct DescribeScalingActivities {
    service_namespace: Option<String>,
    resource_id: Option<String>,
    max_results: Option<usize>,
    next_token: Option<String>,
}

/// `DescribeScalingActivities`: newest first, paginated (`MaxResults` 1..=50, default 50).
/// <https://docs.aws.amazon.com/autoscaling/application/APIReference/API_DescribeScalingActivities.html>
pub(crate) fn describe_scaling_activities(
    s: &State,
    req: DescribeScalingActivities,
) -> Result<Value, ApiError> {
    if req.service_namespace.as_deref() != Some("ecs") {
        return Err(validation(
            "1 validation error detected: Value at 'serviceNamespace' failed to satisfy constraint: Member must satisfy enum value set: [ecs, ...]",
        ));
    }
    let max = req.max_results.unwrap_or(50);
    if !(1..=50).contains(&max) {
        return Err(validation("MaxResults must be between 1 and 50."));
    }
    let mine = req
        .resource_id
        .as_deref()
        .is_none_or(|r| r == resource_id(s));
    let skip = match req.next_token.as_deref() {
        None => 0,
        Some(t) => t
            .parse::<usize>()
            .map_err(|_| ApiError::new("InvalidNextTokenException", "Invalid NextToken."))?,
    };
    let all: Vec<&Activity> = if mine {
        s.activities.iter().rev().collect()
    } else {
        Vec::new()
    };
    let page: Vec<Value> = all
        .iter()
        .skip(skip)
        .take(max)
        .map(|a| activity_json(s, a))
        .collect();
    let mut out = json!({ "ScalingActivities": page });
    if skip + max < all.len() {
        out["NextToken"] = json!((skip + max).to_string());
    }
    Ok(out)
}

fn activity_json(s: &State, a: &Activity) -> Value {
    let resource = resource_id(s);
    json!({
        "ActivityId": a.id,
        "ServiceNamespace": "ecs",
        "ResourceId": resource,
        "ScalableDimension": "ecs:service:DesiredCount",
        "Description": format!("Setting desired count to {}.", a.to),
        "Cause": format!(
            "monitor alarm TargetTracking-{resource}-{}-{} in state ALARM triggered policy {POLICY_NAME}",
            a.alarm, a.id
        ),
        "StartTime": a.started,
        "EndTime": a.ended,
        "StatusCode": "Successful",
        "StatusMessage": format!(
            "Successfully set desired count to {}. Change successfully fulfilled by ecs.",
            a.to
        ),
        "Details": format!("from {} to {}", a.from, a.to),
    })
}

fn validation(message: &str) -> ApiError {
    ApiError::new("ValidationException", message)
}
