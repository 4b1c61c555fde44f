//! A small real fleet behind the emulator, the official `aws-sdk-ecs` client pointed at
//! it, and bounded waits.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use aws_sdk_ecs::Client;
use aws_sdk_ecs::config::{BehaviorVersion, Credentials, Region};
use dropzero::ecs_emulator::{Emulator, EmulatorConfig};
use dropzero::fleet::local::LocalConfig;
use dropzero::fleet::router::RouterConfig;

pub const CLUSTER: &str = "rehearsal";
pub const SERVICE: &str = "agent-runtime";
pub const FAMILY: &str = "agent-runtime";

/// The longest any wait in these tests may take.
pub const PATIENCE: Duration = Duration::from_secs(45);

/// A fleet that turns healthy in about a tenth of a second and drains in at most one.
pub fn fleet_config(dir: &Path) -> LocalConfig {
    LocalConfig {
        exe: PathBuf::from(env!("CARGO_BIN_EXE_dropzero")),
        run_dir: dir.to_path_buf(),
        replicas: 0,
        mode: "resilient".into(),
        journal: format!("sqlite:{}", dir.join("journal.db").display()),
        runtime_args: [
            "--drain-timeout",
            "1s",
            "--keepalive",
            "1s",
            "--lease-ttl",
            "1s",
        ]
        .iter()
        .map(Into::into)
        .collect(),
        mock_args: Vec::new(),
        router: RouterConfig {
            health_check_interval: Duration::from_millis(100),
            healthy_threshold: 1,
            // Generous: a busy CI machine must not make a healthy replica look dead.
            unhealthy_threshold: 3,
            health_check_timeout: Duration::from_secs(2),
            idle_timeout: Duration::from_secs(10),
            deregistration_delay: Duration::from_secs(1),
            ..RouterConfig::default()
        },
        stop_timeout: Duration::from_secs(3),
        ready_timeout: Duration::from_secs(20),
        version: "v1".into(),
        memory_limit: None,
        redis_server: None,
    }
}

pub fn config() -> EmulatorConfig {
    EmulatorConfig {
        cluster: CLUSTER.into(),
        service: SERVICE.into(),
        family: FAMILY.into(),
        desired_count: 2,
        ..EmulatorConfig::default()
    }
}

/// The emulator, its run directory and a client, torn down by [`Rig::shutdown`].
pub struct Rig {
    pub emulator: Emulator,
    pub ecs: Client,
    _dir: tempfile::TempDir,
}

impl Rig {
    pub async fn start(cfg: EmulatorConfig) -> Rig {
        let dir = tempfile::tempdir().expect("temp dir");
        let listen = "127.0.0.1:0".parse().expect("address");
        let emulator = within(Emulator::start(cfg, fleet_config(dir.path()), listen))
            .await
            .expect("the emulator starts a steady service");
        let ecs = client(&emulator.endpoint_url()).await;
        Rig {
            emulator,
            ecs,
            _dir: dir,
        }
    }

    /// Stop everything and prove no replica is left running.
    pub async fn shutdown(self) {
        within(self.emulator.shutdown()).await;
        let fleet = self.emulator.fleet();
        assert!(
            fleet
                .all_replicas()
                .iter()
                .all(|r| r.child.exit_status().is_some()),
            "a replica outlived the emulator"
        );
    }

    pub async fn service(&self) -> aws_sdk_ecs::types::Service {
        let out = self
            .ecs
            .describe_services()
            .cluster(CLUSTER)
            .services(SERVICE)
            .send()
            .await
            .expect("DescribeServices");
        out.services().first().cloned().expect("the service")
    }

    /// Task ids (not ARNs) with this desired status, oldest first.
    pub async fn task_ids(&self, status: aws_sdk_ecs::types::DesiredStatus) -> Vec<String> {
        let out = self
            .ecs
            .list_tasks()
            .cluster(CLUSTER)
            .service_name(SERVICE)
            .desired_status(status)
            .send()
            .await
            .expect("ListTasks");
        out.task_arns()
            .iter()
            .map(|arn| arn.rsplit('/').next().unwrap_or(arn).to_string())
            .collect()
    }

    pub async fn task(&self, id: &str) -> aws_sdk_ecs::types::Task {
        let out = self
            .ecs
            .describe_tasks()
            .cluster(CLUSTER)
            .tasks(id)
            .send()
            .await
            .expect("DescribeTasks");
        out.tasks().first().cloned().expect("the task")
    }

    /// Poll the service until `done` holds (every 50 ms, at most [`PATIENCE`]).
    pub async fn until_service(
        &self,
        what: &str,
        done: impl Fn(&aws_sdk_ecs::types::Service) -> bool,
    ) -> aws_sdk_ecs::types::Service {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let s = self.service().await;
            if done(&s) {
                return s;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}; last seen: {s:#?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The official SDK, configured as a user would: `aws-config` with static credentials and
/// the emulator as the endpoint.
pub async fn client(endpoint: &str) -> Client {
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            None,
            None,
            "tests",
        ))
        .endpoint_url(endpoint)
        .load()
        .await;
    Client::new(&sdk)
}

/// Run `f` with the test's patience.
pub async fn within<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(PATIENCE, f)
        .await
        .expect("bounded wait ran out")
}

/// The PRIMARY deployment.
pub fn primary(s: &aws_sdk_ecs::types::Service) -> aws_sdk_ecs::types::Deployment {
    s.deployments()
        .iter()
        .find(|d| d.status() == Some("PRIMARY"))
        .cloned()
        .expect("a PRIMARY deployment")
}

pub fn messages(s: &aws_sdk_ecs::types::Service) -> Vec<String> {
    s.events()
        .iter()
        .filter_map(|e| e.message().map(str::to_string))
        .collect()
}
