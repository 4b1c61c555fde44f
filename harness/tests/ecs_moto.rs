//! The ECS target's real client code against `moto_server`, an independent implementation
//! of the ECS wire format (PyPI `moto[server]`): every call the target makes is well-formed
//! and every response it reads is parsed. moto starts no service tasks and never rolls out,
//! so behaviour is tested through the ECS emulator instead; here the tasks come from
//! `RunTask`. AWS errors — a missing cluster or service, bad credentials, throttling, a
//! 5xx — must each end in a clear error naming the call and the resource, never a hang.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_ecs::types::{
    AwsVpcConfiguration, Compatibility, ContainerDefinition, LaunchType, NetworkConfiguration,
    NetworkMode,
};
use dropzero::fleet::Target;
use dropzero::fleet::ecs::{EcsConfig, EcsTarget};

const REGION: &str = "us-east-1";

/// A `moto_server` on a free loopback port, killed on drop.
struct Moto {
    child: Child,
    url: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Start moto_server; `auth` turns on its IAM-style credential checks.
async fn moto(auth: bool) -> Moto {
    let port = free_port();
    let mut cmd = Command::new("moto_server");
    cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if auth {
        // moto checks credentials against its own IAM once this many actions have run.
        cmd.env("INITIAL_NO_AUTH_ACTION_COUNT", "0");
    }
    let child = cmd.spawn().unwrap_or_else(|e| {
        panic!("moto_server is not installed ({e}): pip install -r tests/python/requirements.txt")
    });
    let moto = Moto {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while reqwest::get(format!("{}/moto-api/", moto.url))
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "moto_server did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    moto
}

async fn sdk(endpoint: &str) -> aws_sdk_ecs::Client {
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(REGION))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_ecs::config::Credentials::new(
            "AKIDTEST", "secret", None, None, "test",
        ))
        .load()
        .await;
    aws_sdk_ecs::Client::new(&conf)
}

fn config(endpoint: &str, cluster: &str, service: &str) -> EcsConfig {
    EcsConfig {
        cluster: cluster.into(),
        service: service.into(),
        region: REGION.into(),
        endpoint_url: Some(endpoint.into()),
        url: "http://alb.invalid".into(),
        llm_url: None,
        static_credentials: true,
        poll_interval: Duration::from_millis(200),
        observe_scaling: false,
    }
}

/// moto's default VPC: its first subnet and security group (EC2 query API; moto picks the
/// service from the credential scope and checks no signature).
async fn default_network(endpoint: &str) -> (String, String) {
    let query = |action: &'static str| async move {
        reqwest::Client::new()
            .post(endpoint)
            .header(
                "authorization",
                "AWS4-HMAC-SHA256 Credential=AKIDTEST/20260101/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=0",
            )
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("Action={action}&Version=2016-11-15"))
            .send()
            .await
            .expect("EC2 query")
            .text()
            .await
            .expect("EC2 body")
    };
    let first = |xml: &str, tag: &str| {
        let open = format!("<{tag}>");
        let start = xml.find(&open).expect(tag) + open.len();
        let len = xml[start..].find('<').expect("close");
        xml[start..start + len].to_string()
    };
    let subnets = query("DescribeSubnets").await;
    let groups = query("DescribeSecurityGroups").await;
    (first(&subnets, "subnetId"), first(&groups, "groupId"))
}

/// A cluster, a Fargate task definition and a service (desired 2), made with the SDK.
async fn seed(endpoint: &str) {
    let client = &sdk(endpoint).await;
    client
        .create_cluster()
        .cluster_name("dz")
        .send()
        .await
        .expect("CreateCluster");
    client
        .register_task_definition()
        .family("agent-runtime")
        .network_mode(NetworkMode::Awsvpc)
        .requires_compatibilities(Compatibility::Fargate)
        .cpu("512")
        .memory("1024")
        .container_definitions(
            ContainerDefinition::builder()
                .name("runtime")
                .image("dropzero:latest")
                .essential(true)
                .stop_timeout(120)
                // moto needs a container-level memory figure; `memoryReservation` keeps its
                // task JSON in ECS's shape (it echoes container cpu/memory as numbers where
                // ECS has strings).
                .memory_reservation(1024)
                .build(),
        )
        .send()
        .await
        .expect("RegisterTaskDefinition");
    client
        .create_service()
        .cluster("dz")
        .service_name("agent-runtime")
        .task_definition("agent-runtime:1")
        .desired_count(2)
        .launch_type(LaunchType::Fargate)
        .send()
        .await
        .expect("CreateService");
}

/// Two tasks of the service's task definition (moto's services start none by themselves).
async fn seed_tasks(endpoint: &str) {
    let client = &sdk(endpoint).await;
    let (subnet, group) = default_network(endpoint).await;
    let run = client
        .run_task()
        .cluster("dz")
        .task_definition("agent-runtime:1")
        .count(2)
        .launch_type(LaunchType::Fargate)
        .group("service:agent-runtime")
        .network_configuration(
            NetworkConfiguration::builder()
                .awsvpc_configuration(
                    AwsVpcConfiguration::builder()
                        .subnets(subnet)
                        .security_groups(group)
                        .build()
                        .expect("awsvpc configuration"),
                )
                .build(),
        )
        .send()
        .await;
    // moto's RunTask answer does not parse (a non-string where the SDK expects a string);
    // the tasks exist all the same, and RunTask is not a call the target makes.
    if let Err(e) = run {
        eprintln!(
            "moto RunTask: {}",
            aws_sdk_ecs::error::DisplayErrorContext(&e)
        );
    }
}

#[tokio::test]
async fn every_call_the_target_makes_is_understood_by_moto() {
    let moto = moto(false).await;
    seed(&moto.url).await;

    // DescribeServices and ListTasks, as `connect` makes them.
    let target = EcsTarget::connect(config(&moto.url, "dz", "agent-runtime"))
        .await
        .expect("DescribeServices and ListTasks parse");
    assert_eq!(
        target.service_arn,
        "arn:aws:ecs:us-east-1:123456789012:service/dz/agent-runtime"
    );
    let seen = target.observed();
    let service = seen.service.as_ref().expect("service view");
    assert_eq!((service.status.as_str(), service.desired), ("ACTIVE", 2));
    assert_eq!(
        service.task_definition,
        "arn:aws:ecs:us-east-1:123456789012:task-definition/agent-runtime:1"
    );
    assert!(service.primary().is_some(), "{service:?}");

    // UpdateService(forceNewDeployment): the response's PRIMARY deployment is parsed.
    let deployment = target
        .force_new_deployment(Some("agent-runtime:1"))
        .await
        .expect("UpdateService parses");
    assert!(deployment.starts_with("ecs-svc/"), "{deployment}");
    let seen = target.refresh().await.expect("refresh");
    assert!(seen.deployments.contains_key(&deployment));

    // With tasks, ListTasks names them and DescribeTasks is asked for each: moto 5.2.1
    // answers with `containers[].cpu` as a number where ECS (and so the SDK) has a string,
    // and the target reports exactly that instead of inventing a task.
    seed_tasks(&moto.url).await;
    let err = target
        .list_and_describe_tasks()
        .await
        .expect_err("moto's DescribeTasks answer breaks the ECS shape");
    let text = err.to_string();
    assert!(
        text.contains("ECS DescribeTasks on 2 tasks in cluster dz: HTTP 200 with a body that is not an ECS response")
            && text.contains("expected string"),
        "{text}"
    );
    // StopTask is well-formed: moto stops the task (its answer breaks the shape as above).
    let arns = sdk(&moto.url)
        .await
        .list_tasks()
        .cluster("dz")
        .send()
        .await
        .expect("ListTasks");
    let victim = arns.task_arns()[0].clone();
    let _ = target
        .stop_task(&victim, "dropzero: scenario t, fault 0 (kill)")
        .await;
    let stopped = sdk(&moto.url)
        .await
        .list_tasks()
        .cluster("dz")
        .desired_status(aws_sdk_ecs::types::DesiredStatus::Stopped)
        .send()
        .await
        .expect("ListTasks STOPPED");
    assert_eq!(stopped.task_arns(), [victim]);
    target.shutdown().await;
}

#[tokio::test]
async fn a_missing_cluster_or_service_is_a_clear_error() {
    let moto = moto(false).await;
    seed(&moto.url).await;
    let err = EcsTarget::connect(config(&moto.url, "nope", "agent-runtime"))
        .await
        .err()
        .expect("no such cluster");
    let text = err.to_string();
    assert!(
        text.contains("DescribeServices")
            && text.contains("cluster nope")
            && text.contains("ClusterNotFoundException")
            && text.contains("check target.cluster"),
        "{text}"
    );
    let err = EcsTarget::connect(config(&moto.url, "dz", "ghost"))
        .await
        .err()
        .expect("no such service");
    let text = err.to_string();
    assert!(
        text.contains("service ghost") && text.contains("check target.service"),
        "{text}"
    );
}

#[tokio::test]
async fn bad_credentials_are_a_clear_error() {
    let moto = moto(true).await;
    let err = EcsTarget::connect(config(&moto.url, "dz", "agent-runtime"))
        .await
        .err()
        .expect("moto refuses unknown credentials");
    let text = err.to_string();
    assert!(
        text.contains("DescribeServices") && text.contains("check the AWS credentials"),
        "{text}"
    );
}

/// An endpoint that answers every call with one fixed AWS JSON error, counting requests.
async fn failing_endpoint(
    status: u16,
    body: &'static str,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let hits = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let app = axum::Router::new().fallback(move || {
        let counter = counter.clone();
        async move {
            counter.fetch_add(1, Ordering::SeqCst);
            (
                axum::http::StatusCode::from_u16(status).expect("status"),
                [("content-type", "application/x-amz-json-1.1")],
                body,
            )
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), hits)
}

#[tokio::test]
async fn throttling_and_server_errors_are_retried_then_reported_not_hung() {
    for (status, body, code) in [
        (
            400,
            r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#,
            "ThrottlingException",
        ),
        (
            500,
            r#"{"__type":"ServerException","message":"internal failure"}"#,
            "ServerException",
        ),
    ] {
        let (url, hits) = failing_endpoint(status, body).await;
        let started = Instant::now();
        let err = EcsTarget::connect(config(&url, "dz", "agent-runtime"))
            .await
            .err()
            .expect("every call fails");
        let text = err.to_string();
        assert!(
            text.contains("DescribeServices") && text.contains(code),
            "{text}"
        );
        // The SDK's standard retry mode retries both (3 attempts), then gives up.
        assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 3, "{code}");
        assert!(started.elapsed() < Duration::from_secs(30), "bounded");
        if code == "ThrottlingException" {
            assert!(err.is_throttling() && text.contains("throttling this account"));
        }
    }
}
