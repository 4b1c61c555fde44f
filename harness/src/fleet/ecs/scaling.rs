//! What the ECS target sees of the service's autoscaling: Application Auto Scaling's
//! `DescribeScalingActivities` on `service/<cluster>/<service>` (the `aws-sdk-applicationautoscaling`
//! client, same credentials and endpoint as ECS), parsed into plain views, and the report's
//! autoscaling section built from them and the run's timeline.
//!
//! On ECS the harness does not decide anything: the service's own target tracking policy
//! does. The scenario's `[autoscaling]` says which policy that is (the `target_value` and
//! min/max put in Terraform); the report measures it from outside: per scale-out, the
//! breach (the first of the consecutive datapoints above the target before the activity,
//! from the clients' active sessions over the running tasks), the decision (the activity's
//! `StartTime`), capacity ready (`runningCount` reaches the new desired count) and SLO
//! recovery (the timeline, as for the local autoscaler).

use std::time::{Duration, SystemTime};

use aws_sdk_applicationautoscaling::Client;
use aws_sdk_applicationautoscaling::types::{ScalableDimension, ServiceNamespace};
use dropzero_reports as r;

use super::{EcsConfig, EcsError};
use crate::scenario::AutoscalingPlan;

/// One scaling activity on the service's desired count.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivityView {
    pub id: String,
    /// The desired count it set ("Setting desired count to N.").
    pub to: Option<u32>,
    pub cause: String,
    pub status: String,
    pub start: Option<SystemTime>,
}

/// `service/<cluster>/<service>`.
pub fn resource_id(cfg: &EcsConfig) -> String {
    format!("service/{}/{}", cfg.cluster, cfg.service)
}

/// The activities of the service's desired count, newest first (first page of 50: a run
/// polls often enough that older ones were seen before).
pub(super) async fn describe_activities(
    client: &Client,
    cfg: &EcsConfig,
) -> Result<Vec<ActivityView>, EcsError> {
    let resource = resource_id(cfg);
    let out = client
        .describe_scaling_activities()
        .service_namespace(ServiceNamespace::Ecs)
        .resource_id(&resource)
        .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
        .max_results(50)
        .send()
        .await
        .map_err(|e| EcsError::from_sdk("DescribeScalingActivities", resource.clone(), &e))?;
    Ok(out
        .scaling_activities()
        .iter()
        .map(|a| ActivityView {
            id: a.activity_id().to_string(),
            to: desired_in(a.description()),
            cause: a.cause().to_string(),
            status: a.status_code().as_str().to_string(),
            start: SystemTime::try_from(*a.start_time()).ok(),
        })
        .collect())
}

/// `N` in "Setting desired count to N." (Application Auto Scaling's wording).
fn desired_in(description: &str) -> Option<u32> {
    let rest = description.split("desired count to ").nth(1)?;
    rest.trim_end_matches('.').trim().parse().ok()
}

/// The autoscaling section of an ECS run, before the report builder adds SLO recovery and
/// provisioning from the timeline. `start` is the wall-clock time of the run's time zero.
pub fn report(
    plan: &AutoscalingPlan,
    time_scale: f64,
    activities: &[ActivityView],
    points: &[r::TimelinePoint],
    start: SystemTime,
) -> r::AutoscalingReport {
    let period = crate::autoscale::DATAPOINT
        .mul_f64(time_scale)
        .as_secs_f64();
    let datapoints = datapoints(points, period);
    let mut ordered: Vec<&ActivityView> = activities
        .iter()
        .filter(|a| a.status == "Successful" || a.status == "InProgress")
        .collect();
    ordered.sort_by_key(|a| a.start);
    let mut decisions = Vec::new();
    let mut reactions = Vec::new();
    let mut previous: Option<u32> = None;
    for a in ordered {
        let (Some(to), Some(at)) = (a.to, a.start) else {
            continue;
        };
        let t_s = at
            .duration_since(start)
            .map_or(0.0, |d: Duration| d.as_secs_f64());
        let before = points.iter().rev().find(|p| p.t_s <= t_s);
        let from = previous
            .or_else(|| before.and_then(|p| p.desired_tasks))
            .unwrap_or(to);
        previous = Some(to);
        let action = match to.cmp(&from) {
            std::cmp::Ordering::Greater => "scale_out",
            std::cmp::Ordering::Less => "scale_in",
            std::cmp::Ordering::Equal => continue,
        };
        decisions.push(r::ScalingDecision {
            t_s,
            action: action.into(),
            from,
            to,
            metric: before.and_then(|p| p.scaling_metric).unwrap_or(0.0),
            reason: a.cause.clone(),
        });
        if action == "scale_out" {
            reactions.push(r::ScaleReaction {
                breach_s: breach(&datapoints, t_s, period, plan.target_value),
                decision_s: t_s,
                ready_s: points
                    .iter()
                    .find(|p| p.t_s >= t_s && p.running_tasks.is_some_and(|n| n >= to))
                    .map(|p| p.t_s),
                slo_recovered_s: None,
                seconds_over_slo_during_lag: 0,
            });
        }
    }
    r::AutoscalingReport {
        metric: "active_sessions".into(),
        target_value: plan.target_value,
        min: plan.min,
        max: plan.max,
        datapoint_s: period,
        scale_ins: decisions.iter().filter(|d| d.action == "scale_in").count() as u64,
        decisions,
        reactions,
        // Not visible from outside the service: ECS does not say which task a scale-in
        // refused to stop, and a session cut by a scale-in shows as a drop on that task.
        scale_ins_blocked_by_protection: 0,
        scale_in_cut_sessions: 0,
        task_seconds_over: 0.0,
        task_seconds_under: 0.0,
    }
}

/// `(start_s, average metric)` per datapoint of `period` seconds, from the timeline's
/// per-second metric (clients' active sessions / running tasks).
fn datapoints(points: &[r::TimelinePoint], period: f64) -> Vec<(f64, f64)> {
    let mut out: Vec<(f64, f64, u32)> = Vec::new();
    for p in points {
        let Some(m) = p.scaling_metric else { continue };
        let start = (p.t_s / period).floor() * period;
        match out.last_mut() {
            Some(last) if (last.0 - start).abs() < 1e-9 => {
                last.1 += m;
                last.2 += 1;
            }
            _ => out.push((start, m, 1)),
        }
    }
    out.into_iter()
        .map(|(s, sum, n)| (s, sum / f64::from(n)))
        .collect()
}

/// The start of the run of consecutive datapoints above `target` that ends before the
/// decision at `t_s` (looking back at most [`LOOKBACK`] datapoints for its end: CloudWatch
/// sees the tasks' metric, the clients' view can lag or lead it by a datapoint); the
/// decision itself when none was above (the breach was not seen from the clients).
fn breach(datapoints: &[(f64, f64)], t_s: f64, period: f64, target: f64) -> f64 {
    const LOOKBACK: usize = 2;
    let done = datapoints
        .iter()
        .rev()
        .filter(|d| d.0 + period <= t_s + 1e-9);
    let mut first = None;
    for (i, &(start, m)) in done.enumerate() {
        if m > target {
            first = Some(start);
        } else if first.is_some() || i >= LOOKBACK {
            break;
        }
    }
    first.unwrap_or(t_s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(t_s: f64, metric: f64, desired: u32, running: u32) -> r::TimelinePoint {
        r::TimelinePoint {
            t_s,
            active_sessions: 0,
            tokens_per_s: 0.0,
            replicas_ready: running,
            replicas_draining: 0,
            interruptions: 0,
            drops: 0,
            completed: 0,
            desired_tasks: Some(desired),
            running_tasks: Some(running),
            scaling_metric: Some(metric),
            ..r::TimelinePoint::default()
        }
    }

    #[test]
    fn the_desired_count_is_read_from_the_description() {
        assert_eq!(desired_in("Setting desired count to 6."), Some(6));
        assert_eq!(desired_in("Setting desired count to 12"), Some(12));
        assert_eq!(desired_in("Something else."), None);
    }

    #[test]
    fn a_scale_out_reaction_runs_from_the_breach_to_the_running_count() {
        let plan = AutoscalingPlan {
            metric: crate::scenario::ScalingMetric::ActiveSessions,
            target_value: 10.0,
            min: 2,
            max: 8,
            scale_out_cooldown: Duration::from_secs(6),
            scale_in_cooldown: Duration::from_secs(6),
        };
        // Datapoints of 1 s (time scale 1/60): 5, 5, then 20 from t = 2, decision at 5.2,
        // 4 tasks running from t = 7; then down to 3 at 12.
        let mut points: Vec<r::TimelinePoint> = (0..14)
            .map(|t| {
                let t = f64::from(t);
                let metric = if t < 2.0 { 5.0 } else { 20.0 };
                let (desired, running) = match t {
                    t if t < 6.0 => (2, 2),
                    t if t < 7.0 => (4, 2),
                    _ => (4, 4),
                };
                point(t, metric, desired, running)
            })
            .collect();
        points[13].desired_tasks = Some(3);
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let at = |s: f64| Some(start + Duration::from_secs_f64(s));
        let activities = [
            ActivityView {
                id: "b".into(),
                to: Some(3),
                cause: "monitor alarm …-AlarmLow-… in state ALARM".into(),
                status: "Successful".into(),
                start: at(12.5),
            },
            ActivityView {
                id: "a".into(),
                to: Some(4),
                cause: "monitor alarm …-AlarmHigh-… in state ALARM".into(),
                status: "Successful".into(),
                start: at(5.2),
            },
        ];
        let rep = report(&plan, 1.0 / 60.0, &activities, &points, start);
        let actions: Vec<(&str, u32, u32)> = rep
            .decisions
            .iter()
            .map(|d| (d.action.as_str(), d.from, d.to))
            .collect();
        assert_eq!(actions, [("scale_out", 2, 4), ("scale_in", 4, 3)]);
        assert_eq!(rep.scale_ins, 1);
        let r = &rep.reactions[0];
        assert!((r.breach_s - 2.0).abs() < 1e-6, "{r:?}");
        assert!((r.decision_s - 5.2).abs() < 1e-6, "{r:?}");
        assert_eq!(r.ready_s, Some(7.0));
    }
}
