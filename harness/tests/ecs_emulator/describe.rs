//! A steady service read every way the ECS target reads it (DescribeServices, ListTasks,
//! DescribeTasks, DescribeClusters, DescribeTaskDefinition), and every error it can get.

use std::collections::HashSet;

use aws_sdk_ecs::types::{DeploymentRolloutState, DesiredStatus};
use dropzero::fleet::Target;

use crate::support::{CLUSTER, FAMILY, Rig, SERVICE, config, messages, primary, within};

/// One steady service, read every way the target reads it, and every error it can get.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_services_tasks_and_errors_as_the_sdk_parses_them() {
    let rig = Rig::start(config()).await;
    let s = rig.service().await;
    assert_eq!(s.service_name(), Some(SERVICE));
    assert_eq!(
        s.service_arn(),
        Some(format!("arn:aws:ecs:us-east-1:123456789012:service/{CLUSTER}/{SERVICE}").as_str())
    );
    assert_eq!(
        (s.desired_count(), s.running_count(), s.pending_count()),
        (2, 2, 0)
    );
    assert_eq!(
        s.task_definition(),
        Some(format!("arn:aws:ecs:us-east-1:123456789012:task-definition/{FAMILY}:1").as_str())
    );
    let dc = s
        .deployment_configuration()
        .expect("deploymentConfiguration");
    assert_eq!(
        (dc.minimum_healthy_percent(), dc.maximum_percent()),
        (Some(100), Some(200))
    );
    assert!(s.load_balancers()[0].target_group_arn().is_some_and(|a| {
        a.starts_with("arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/")
    }));
    assert_eq!(s.deployments().len(), 1);
    let d = primary(&s);
    assert!(d.id().is_some_and(|id| id.len() == "ecs-svc/".len() + 19));
    assert_eq!(d.rollout_state(), Some(&DeploymentRolloutState::Completed));
    assert_eq!(
        d.rollout_state_reason(),
        Some(format!("ECS deployment {} completed.", d.id().unwrap_or_default()).as_str())
    );
    assert!(d.created_at().is_some() && d.updated_at().is_some());
    let events = messages(&s);
    assert_eq!(
        events[0],
        format!("(service {SERVICE}) has reached a steady state.")
    );
    assert!(
        events
            .iter()
            .any(|e| e.starts_with(&format!("(service {SERVICE}) has started 2 tasks: (task ")))
    );

    // Tasks: 32-hex ids that are the replicas' own names.
    let ids = rig.task_ids(DesiredStatus::Running).await;
    assert_eq!(ids.len(), 2);
    assert!(ids.iter().all(|id| {
        id.len() == 32
            && id
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    }));
    let replicas: HashSet<String> = rig
        .emulator
        .fleet()
        .replicas()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(replicas, ids.iter().cloned().collect());
    let t = rig.task(&ids[0]).await;
    assert_eq!(t.last_status(), Some("RUNNING"));
    assert_eq!(t.desired_status(), Some("RUNNING"));
    assert_eq!(t.group(), Some(format!("service:{SERVICE}").as_str()));
    assert_eq!(t.health_status().map(|h| h.as_str()), Some("HEALTHY"));
    assert!(t.started_at().is_some() && t.stopped_at().is_none());
    assert!(
        t.task_definition_arn()
            .is_some_and(|a| a.ends_with(&format!("task-definition/{FAMILY}:1")))
    );
    let stopped = rig.task_ids(DesiredStatus::Stopped).await;
    if let Some(id) = stopped.first() {
        panic!("a steady service stopped a task: {:#?}", rig.task(id).await);
    }

    // Through the "ALB": the replica that answers names itself by its task id.
    let alb = rig.emulator.fleet().base_url();
    let http = reqwest::Client::new();
    let answered = within(http.get(format!("{alb}/healthz")).send())
        .await
        .expect("GET /healthz");
    let by = answered
        .headers()
        .get("x-dropzero-replica")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(ids.iter().any(|id| id == by), "{by} is not one of {ids:?}");

    // DescribeClusters, DescribeTaskDefinition.
    let clusters = rig
        .ecs
        .describe_clusters()
        .clusters(CLUSTER)
        .clusters("nope")
        .send()
        .await
        .expect("DescribeClusters");
    assert_eq!(clusters.clusters()[0].running_tasks_count(), 2);
    assert_eq!(clusters.failures()[0].reason(), Some("MISSING"));
    let td = rig
        .ecs
        .describe_task_definition()
        .task_definition(format!("{FAMILY}:1"))
        .send()
        .await
        .expect("DescribeTaskDefinition");
    let td = td.task_definition().expect("taskDefinition");
    assert_eq!((td.family(), td.revision()), (Some(FAMILY), 1));
    assert_eq!(td.container_definitions()[0].stop_timeout(), Some(3));

    // Typed errors.
    let err = rig
        .ecs
        .describe_services()
        .cluster("nope")
        .services(SERVICE)
        .send()
        .await
        .expect_err("no such cluster");
    assert!(
        err.as_service_error()
            .is_some_and(|e| e.is_cluster_not_found_exception()),
        "{err:?}"
    );
    let err = rig
        .ecs
        .update_service()
        .cluster(CLUSTER)
        .service("nope")
        .force_new_deployment(true)
        .send()
        .await
        .expect_err("no such service");
    assert!(
        err.as_service_error()
            .is_some_and(|e| e.is_service_not_found_exception()),
        "{err:?}"
    );
    let err = rig
        .ecs
        .list_tasks()
        .cluster(CLUSTER)
        .service_name("nope")
        .send()
        .await
        .expect_err("no such service");
    assert!(
        err.as_service_error()
            .is_some_and(|e| e.is_service_not_found_exception()),
        "{err:?}"
    );
    let err = rig
        .ecs
        .stop_task()
        .cluster(CLUSTER)
        .task("0123456789abcdef0123456789abcdef")
        .send()
        .await
        .expect_err("no such task");
    assert!(
        err.as_service_error()
            .is_some_and(|e| e.is_invalid_parameter_exception()),
        "{err:?}"
    );
    let missing = rig
        .ecs
        .describe_services()
        .cluster(CLUSTER)
        .services("nope")
        .send()
        .await
        .expect("DescribeServices");
    assert_eq!(missing.failures()[0].reason(), Some("MISSING"));

    // Raw requests: no signature, an unknown action, Application Auto Scaling.
    let raw = |target: &str, auth: bool| {
        let mut req = http
            .post(rig.emulator.endpoint_url())
            .header("content-type", "application/x-amz-json-1.1")
            .header("x-amz-target", target)
            .body("{}");
        if auth {
            req = req.header("authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/ecs/aws4_request, SignedHeaders=host, Signature=00");
        }
        req.send()
    };
    let check = async |target: &str, auth: bool, status: u16, body: serde_json::Value| {
        let resp = within(raw(target, auth)).await.expect("raw request");
        assert_eq!(resp.status().as_u16(), status, "{target}");
        assert_eq!(resp.headers()["content-type"], "application/x-amz-json-1.1");
        let got: serde_json::Value = resp.json().await.expect("JSON body");
        for (k, v) in body.as_object().expect("object") {
            assert_eq!(&got[k], v, "{target}: {got}");
        }
    };
    check(
        "AmazonEC2ContainerServiceV20141113.ListClusters",
        false,
        403,
        serde_json::json!({"__type": "MissingAuthenticationTokenException"}),
    )
    .await;
    check(
        "AmazonEC2ContainerServiceV20141113.Frobnicate",
        true,
        400,
        serde_json::json!({"__type": "UnknownOperationException"}),
    )
    .await;
    // ServiceNamespace is required (Application Auto Scaling API reference); the SDK
    // path, with activities, is in tests/it/ecs_autoscale.rs.
    check(
        "AnyScaleFrontendService.DescribeScalingActivities",
        true,
        400,
        serde_json::json!({"__type": "ValidationException"}),
    )
    .await;
    rig.shutdown().await;
}
