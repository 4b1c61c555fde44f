//! The two requests that change the service: `UpdateService` (a new deployment, a new
//! desired count, new deployment settings) and `StopTask`. They only change the [`State`]
//! and say what to carry out; the scheduler (`deploy.rs`) and `tasks.rs` do the rest.

use serde::Deserialize;
use serde_json::{Value, json};

use super::CircuitBreaker;
use super::api::{ApiError, check_cluster};
use super::deploy::Action;
use super::json as out;
use super::model::State;
use super::tasks;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UpdateService {
    cluster: Option<String>,
    service: String,
    desired_count: Option<i64>,
    task_definition: Option<String>,
    #[serde(default)]
    force_new_deployment: bool,
    deployment_configuration: Option<DeploymentConfiguration>,
    health_check_grace_period_seconds: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeploymentConfiguration {
    maximum_percent: Option<u32>,
    minimum_healthy_percent: Option<u32>,
    deployment_circuit_breaker: Option<DeploymentCircuitBreaker>,
}

#[derive(Deserialize)]
struct DeploymentCircuitBreaker {
    enable: bool,
    rollback: bool,
}

/// `UpdateService`: a new task definition or `forceNewDeployment` starts a new PRIMARY
/// deployment (the old one goes ACTIVE and is replaced by the rolling update); a new
/// `desiredCount` alone only scales; deployment settings apply from now on.
/// <https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_UpdateService.html>
pub(crate) fn update_service(s: &mut State, req: UpdateService) -> Result<Value, ApiError> {
    check_cluster(s, req.cluster.as_deref())?;
    if !s.names.is_service(&req.service) {
        return Err(ApiError::service_not_found());
    }
    let desired = match req.desired_count {
        Some(n) if n < 0 => return Err(ApiError::invalid("desiredCount can't be negative.")),
        Some(n) => Some(usize::try_from(n).unwrap_or(usize::MAX)),
        None => None,
    };
    let revision = match &req.task_definition {
        Some(td) => task_definition_revision(s, td)?,
        None => s.revision(),
    };
    let mut settings = s.settings;
    if let Some(secs) = req.health_check_grace_period_seconds {
        let secs = u64::try_from(secs)
            .map_err(|_| ApiError::invalid("healthCheckGracePeriodSeconds can't be negative."))?;
        settings.health_check_grace = std::time::Duration::from_secs(secs);
    }
    if let Some(dc) = &req.deployment_configuration {
        settings.maximum_percent = dc.maximum_percent.unwrap_or(settings.maximum_percent);
        settings.minimum_healthy_percent = dc
            .minimum_healthy_percent
            .unwrap_or(settings.minimum_healthy_percent);
        if let Some(cb) = &dc.deployment_circuit_breaker {
            settings.circuit_breaker = cb.enable.then_some(CircuitBreaker {
                rollback: cb.rollback,
            });
        }
        if settings.minimum_healthy_percent > 100 || settings.maximum_percent < 100 {
            return Err(ApiError::invalid(
                "minimumHealthyPercent must be at most 100 and maximumPercent at least 100.",
            ));
        }
    }
    s.settings = settings;
    if let Some(n) = desired {
        s.desired_count = n;
    }
    if req.force_new_deployment || revision != s.revision() {
        let id = s.new_deployment(revision, None);
        tracing::info!(deployment = %id, revision, "ecs emulator: new deployment");
    }
    Ok(json!({ "service": out::service(s) }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StopTask {
    cluster: Option<String>,
    task: String,
    reason: Option<String>,
}

/// `StopTask`: `desiredStatus` STOPPED now, `stopCode` UserInitiated, `stoppedReason` the
/// request's `reason` (up to 255 characters). The scheduler replaces the task.
/// <https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_StopTask.html>
pub(crate) fn stop_task(s: &mut State, req: StopTask) -> Result<(Value, Option<Action>), ApiError> {
    check_cluster(s, req.cluster.as_deref())?;
    let reason = req.reason.unwrap_or_else(|| "Task stopped by user".into());
    if reason.chars().count() > 255 {
        return Err(ApiError::invalid("reason can be at most 255 characters."));
    }
    let id = s.names.task_id(&req.task).to_string();
    if s.task(&id).is_none() {
        return Err(ApiError::invalid("The referenced task was not found."));
    }
    let action = tasks::stop_by_user(s, &id, reason);
    let task = s.task(&id).map(|t| out::task(s, t)).unwrap_or(Value::Null);
    Ok((json!({ "task": task }), action))
}

/// The revision a `taskDefinition` reference names: `family`, `family:revision` or the
/// full ARN. Every revision of the family exists (they all run the same binary; the
/// broken ones are the emulator's configuration); a bare family is the service's current
/// revision.
pub(crate) fn task_definition_revision(s: &State, reference: &str) -> Result<u32, ApiError> {
    let not_found = || ApiError::new("ClientException", "Unable to describe task definition.");
    let short = match reference.split_once(":task-definition/") {
        Some((prefix, rest)) => {
            let expected = format!("arn:aws:ecs:{}:{}", s.names.region, s.names.account);
            if prefix != expected {
                return Err(not_found());
            }
            rest
        }
        None => reference,
    };
    let (family, revision) = match short.split_once(':') {
        Some((f, r)) => (f, Some(r.parse::<u32>().map_err(|_| not_found())?)),
        None => (short, None),
    };
    if family != s.names.family || revision == Some(0) {
        return Err(not_found());
    }
    Ok(revision.unwrap_or_else(|| s.revision()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ecs_emulator::model::{Names, Settings};

    fn state() -> State {
        let names = Names {
            region: "us-east-1".into(),
            account: "123456789012".into(),
            cluster: "c".into(),
            service: "svc".into(),
            family: "fam".into(),
            container: "runtime".into(),
        };
        let settings = Settings {
            minimum_healthy_percent: 100,
            maximum_percent: 200,
            circuit_breaker: None,
            health_check_grace: std::time::Duration::ZERO,
        };
        State::new(names, 2, 3, settings, Vec::new())
    }

    #[test]
    fn task_definition_references() {
        let s = state();
        let check = |reference: &str, expected: Option<u32>| {
            assert_eq!(
                task_definition_revision(&s, reference).ok(),
                expected,
                "{reference}"
            );
        };
        check("fam", Some(3));
        check("fam:7", Some(7));
        check(
            "arn:aws:ecs:us-east-1:123456789012:task-definition/fam:2",
            Some(2),
        );
        check(
            "arn:aws:ecs:eu-west-1:123456789012:task-definition/fam:2",
            None,
        );
        check("other:1", None);
        check("fam:0", None);
        check("fam:x", None);
    }

    #[test]
    fn a_new_revision_or_a_forced_deployment_makes_a_new_primary() {
        let mut s = state();
        let first = s.primary().id.clone();
        let req = |td: Option<&str>, force: bool, desired: Option<i64>| UpdateService {
            cluster: Some("c".into()),
            service: "svc".into(),
            desired_count: desired,
            task_definition: td.map(Into::into),
            force_new_deployment: force,
            deployment_configuration: None,
            health_check_grace_period_seconds: None,
        };
        update_service(&mut s, req(None, false, Some(3))).expect("scale");
        assert_eq!((s.deployments.len(), s.desired_count), (1, 3));
        update_service(&mut s, req(Some("fam:3"), false, None)).expect("same revision");
        assert_eq!(s.deployments.len(), 1);
        update_service(&mut s, req(None, true, None)).expect("force");
        assert_eq!(s.deployments.len(), 2);
        assert_eq!(s.deployments[1].id, first);
        update_service(&mut s, req(Some("fam:4"), false, None)).expect("new revision");
        assert_eq!((s.deployments.len(), s.revision()), (3, 4));
        let err = update_service(&mut s, req(Some("nope:1"), false, None)).expect_err("unknown");
        assert_eq!(err.kind(), "ClientException");
        let mut wrong = req(None, true, None);
        wrong.service = "other".into();
        assert_eq!(
            update_service(&mut s, wrong)
                .expect_err("no such service")
                .kind(),
            "ServiceNotFoundException"
        );
    }
}
