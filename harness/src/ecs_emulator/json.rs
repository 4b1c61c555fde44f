//! The emulator's state in ECS's JSON: camelCase members, timestamps as epoch seconds
//! (numbers with a fraction), enums in ECS's spelling. Shapes follow the API reference's
//! data types (Service, Deployment, Task, Container, Cluster, TaskDefinition:
//! <https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_Types.html>); members
//! without a local meaning (placement, capacity providers, tags) are empty or omitted.

use std::time::Duration;

use serde_json::{Value, json};

use super::model::{Deployment, DeploymentStatus, LastStatus, State, Task};

/// The port the task definition's container declares. The replicas really listen on
/// ephemeral loopback ports, which each task shows in its `networkBindings`.
const CONTAINER_PORT: u16 = 8080;

/// A `Service`.
pub(crate) fn service(s: &State) -> Value {
    let (running, pending, desired) = s.counts(None);
    let n = &s.names;
    let breaker = s.settings.circuit_breaker;
    json!({
        "serviceArn": n.service_arn(),
        "serviceName": n.service,
        "clusterArn": n.cluster_arn(),
        "loadBalancers": [{
            "targetGroupArn": n.target_group_arn(),
            "containerName": n.container,
            "containerPort": CONTAINER_PORT,
        }],
        "serviceRegistries": [],
        "status": "ACTIVE",
        "desiredCount": desired,
        "runningCount": running,
        "pendingCount": pending,
        "launchType": "FARGATE",
        "platformVersion": "LATEST",
        "platformFamily": "Linux",
        "taskDefinition": n.task_definition_arn(s.revision()),
        "deploymentConfiguration": {
            "deploymentCircuitBreaker": {
                "enable": breaker.is_some(),
                "rollback": breaker.is_some_and(|b| b.rollback),
            },
            "maximumPercent": s.settings.maximum_percent,
            "minimumHealthyPercent": s.settings.minimum_healthy_percent,
        },
        "deployments": s.deployments.iter().map(|d| deployment(s, d)).collect::<Vec<_>>(),
        "events": s.events.iter().map(|e| json!({
            "id": e.id,
            "createdAt": e.created_at,
            "message": e.message,
        })).collect::<Vec<_>>(),
        "createdAt": s.created_at,
        "placementConstraints": [],
        "placementStrategy": [],
        "schedulingStrategy": "REPLICA",
        "deploymentController": { "type": "ECS" },
        "enableECSManagedTags": false,
        "propagateTags": "NONE",
        "enableExecuteCommand": false,
        "healthCheckGracePeriodSeconds": s.settings.health_check_grace.as_secs(),
    })
}

/// A `Deployment`.
fn deployment(s: &State, d: &Deployment) -> Value {
    let (running, pending, desired) = s.counts(Some(&d.id));
    json!({
        "id": d.id,
        "status": match d.status {
            DeploymentStatus::Primary => "PRIMARY",
            DeploymentStatus::Active => "ACTIVE",
        },
        "taskDefinition": s.names.task_definition_arn(d.revision),
        "desiredCount": desired,
        "pendingCount": pending,
        "runningCount": running,
        "failedTasks": d.failed_tasks,
        "createdAt": d.created_at,
        "updatedAt": d.updated_at,
        "launchType": "FARGATE",
        "platformVersion": "1.4.0",
        "platformFamily": "Linux",
        "rolloutState": d.rollout.as_str(),
        "rolloutStateReason": d.reason,
    })
}

/// A `Task`.
pub(crate) fn task(s: &State, t: &Task) -> Value {
    let n = &s.names;
    let task_arn = n.task_arn(&t.id);
    let port = t.replica.as_ref().map(|r| r.child.addr.port());
    let mut container = json!({
        "containerArn": format!("arn:aws:ecs:{}:{}:container/{}/{}/{}", n.region, n.account, n.cluster, t.id, container_id(&t.id)),
        "taskArn": task_arn,
        "name": n.container,
        "image": format!("dropzero-runtime:{}", t.revision),
        "lastStatus": container_status(t.last),
        "healthStatus": t.health.as_str(),
        "networkBindings": port.map_or_else(Vec::new, |p| vec![json!({
            "bindIP": "127.0.0.1",
            "containerPort": CONTAINER_PORT,
            "hostPort": p,
            "protocol": "tcp",
        })]),
        "networkInterfaces": [{ "attachmentId": attachment_id(&t.id), "privateIpv4Address": "127.0.0.1" }],
        "cpu": "0",
    });
    if let Some(code) = t.exit_code {
        container["exitCode"] = json!(code);
    }
    let mut v = json!({
        "taskArn": task_arn,
        "clusterArn": n.cluster_arn(),
        "taskDefinitionArn": n.task_definition_arn(t.revision),
        "group": format!("service:{}", n.service),
        "startedBy": t.started_by,
        "lastStatus": t.last.as_str(),
        "desiredStatus": if t.desired_running { "RUNNING" } else { "STOPPED" },
        "healthStatus": t.health.as_str(),
        "launchType": "FARGATE",
        "platformVersion": "1.4.0",
        "platformFamily": "Linux",
        "cpu": "1024",
        "memory": "2048",
        "availabilityZone": format!("{}a", n.region),
        "connectivity": "CONNECTED",
        "connectivityAt": t.created_at,
        "createdAt": t.created_at,
        "containers": [container],
        "attachments": [{
            "id": attachment_id(&t.id),
            "type": "ElasticNetworkInterface",
            "status": if t.last == LastStatus::Stopped { "DELETED" } else { "ATTACHED" },
            "details": [{ "name": "privateIPv4Address", "value": "127.0.0.1" }],
        }],
        "overrides": { "containerOverrides": [{ "name": n.container }], "inferenceAcceleratorOverrides": [] },
        "enableExecuteCommand": false,
        "tags": [],
        "version": t.version,
    });
    let times = [
        ("startedAt", t.started_at),
        ("stoppingAt", t.stopping_at),
        ("stoppedAt", t.stopped_at),
        ("executionStoppedAt", t.stopped_at),
    ];
    for (name, at) in times {
        if let Some(at) = at {
            v[name] = json!(at);
        }
    }
    if let Some(code) = t.stop_code {
        v["stopCode"] = json!(code.as_str());
    }
    if let Some(reason) = &t.stopped_reason {
        v["stoppedReason"] = json!(reason);
    }
    v
}

/// A container's `lastStatus` (containers have no DEACTIVATING or PROVISIONING).
fn container_status(task: LastStatus) -> &'static str {
    match task {
        LastStatus::Provisioning | LastStatus::Pending => "PENDING",
        LastStatus::Running | LastStatus::Deactivating | LastStatus::Stopping => "RUNNING",
        LastStatus::Stopped => "STOPPED",
    }
}

/// Stable per-task ids for the container and its network interface, derived from the task.
fn container_id(task: &str) -> String {
    format!("{}-{}-{}", &task[..8], &task[8..12], &task[12..24])
}

fn attachment_id(task: &str) -> String {
    format!(
        "{}-{}-{}-{}",
        &task[24..32],
        &task[..4],
        &task[4..8],
        &task[8..20]
    )
}

/// A `Cluster`.
pub(crate) fn cluster(s: &State) -> Value {
    let running = s
        .tasks
        .iter()
        .filter(|t| t.last == LastStatus::Running)
        .count();
    let pending = s
        .tasks
        .iter()
        .filter(|t| t.last.is_pending() && t.desired_running)
        .count();
    json!({
        "clusterArn": s.names.cluster_arn(),
        "clusterName": s.names.cluster,
        "status": "ACTIVE",
        "registeredContainerInstancesCount": 0,
        "runningTasksCount": running,
        "pendingTasksCount": pending,
        "activeServicesCount": 1,
        "statistics": [],
        "tags": [],
        "settings": [{ "name": "containerInsights", "value": "disabled" }],
        "capacityProviders": ["FARGATE", "FARGATE_SPOT"],
        "defaultCapacityProviderStrategy": [],
    })
}

/// A `TaskDefinition` of the family at `revision`. `stopTimeout` is the fleet's (whole
/// seconds, rounded up; ECS's default is 30 s, at most 120 s on Fargate).
/// <https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task_definition_parameters.html#container_definition_timeout>
pub(crate) fn task_definition(s: &State, revision: u32, stop_timeout: Duration) -> Value {
    let n = &s.names;
    json!({
        "taskDefinitionArn": n.task_definition_arn(revision),
        "family": n.family,
        "revision": revision,
        "status": "ACTIVE",
        "containerDefinitions": [{
            "name": n.container,
            "image": format!("dropzero-runtime:{revision}"),
            "cpu": 0,
            "essential": true,
            "portMappings": [{ "containerPort": CONTAINER_PORT, "hostPort": CONTAINER_PORT, "protocol": "tcp" }],
            "environment": [],
            "stopTimeout": stop_timeout.as_secs_f64().ceil() as i64,
        }],
        "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE"],
        "compatibilities": ["EC2", "FARGATE"],
        "cpu": "1024",
        "memory": "2048",
        "registeredAt": s.created_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_ids_have_the_shapes_ecs_uses() {
        let id = "0123456789abcdef0123456789abcdef";
        assert_eq!(container_id(id), "01234567-89ab-cdef01234567");
        assert_eq!(attachment_id(id), "89abcdef-0123-4567-89abcdef0123");
    }
}
