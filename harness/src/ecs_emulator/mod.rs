//! # The ECS control-plane emulator
//!
//! A local stand-in for the Amazon ECS API over a **real** local fleet: it serves the ECS
//! JSON API (AWS JSON 1.1, `POST /` with `X-Amz-Target:
//! AmazonEC2ContainerServiceV20141113.<Action>`) on loopback, and behind it one cluster
//! with one service whose tasks are real runtime replicas of a [`LocalFleet`] (the mock
//! LLM, the ALB-like router, the shared journal). The ECS target's client code — the
//! official `aws-sdk-ecs` — talks to it exactly as it would to AWS, so `dropzero run`
//! rehearses an ECS scenario on a laptop, and the tests prove the target's behaviour.
//!
//! Each task is one replica, started with `--replica-id <task id>`: the 32-hex task id is
//! what the replica calls itself, so a stream's `x-dropzero-replica` header names the task
//! (on real ECS the runtime reads the same id from its task metadata).
//!
//! What it emulates, and where AWS documents each behaviour, is in the comments of the
//! module that does it and in `docs/ecs-emulator.md`:
//! - `api.rs`: HTTP, `X-Amz-Target` dispatch, authentication presence, AWS JSON 1.1 errors.
//! - `json.rs`: services, deployments, tasks, clusters and task definitions in ECS's JSON.
//! - `model.rs`: the state (deployments, tasks, events); `names.rs`: names, ARNs and ids.
//! - `deploy.rs`: the service scheduler — rolling deployments with `minimumHealthyPercent`
//!   / `maximumPercent` (the arithmetic of `faults::deploy`), replacement of stopped tasks,
//!   the deployment circuit breaker and its rollback, steady-state events.
//! - `update.rs`: `UpdateService` and `StopTask`, the requests that change the service.
//! - `tasks.rs`: starting a task, stopping it (deployment: deregister, drain, SIGTERM;
//!   `StopTask`: SIGTERM at once, no deregistration first), noticing exits and health.
//! - `scaling.rs`: Application Auto Scaling target tracking on the desired count (when the
//!   scenario has `[autoscaling]`) and `DescribeScalingActivities`.
//! - `from_scenario.rs`: `dropzero ecs-emulator --scenario`, a scenario's local fleet.
//!
//! # Use
//! ```no_run
//! # async fn f(fleet: dropzero::fleet::local::LocalConfig) -> Result<(), dropzero::fleet::TargetError> {
//! use dropzero::ecs_emulator::{Emulator, EmulatorConfig};
//! let emulator = Emulator::start(EmulatorConfig::default(), fleet, "127.0.0.1:0".parse().unwrap()).await?;
//! let endpoint = emulator.endpoint_url(); // aws-config's endpoint_url
//! let alb = dropzero::fleet::Target::base_url(emulator.fleet()); // the "ALB DNS name"
//! emulator.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! # Shutdown
//! One [`CancellationToken`]: [`Emulator::shutdown`] cancels it, which ends the API server,
//! the scheduler and every task start or stop in flight (a replica being spawned is killed
//! with its handle), then shuts the fleet down (every replica killed). Dropping the
//! emulator cancels the token too; the fleet's children die with their handles.
//!
//! # Architecture invariants
//! - The only interface to the ECS target is the ECS JSON API; the target never calls
//!   into this module.
//! - Tasks are replicas of the [`LocalFleet`] and nothing else: no fake processes, no fake
//!   health. A task is healthy when the router's health checks say so.

mod api;
mod deploy;
pub mod from_scenario;
mod json;
mod model;
mod names;
mod scaling;
mod tasks;
mod update;

pub use scaling::EmulatedScaling;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::fleet::local::{LocalConfig, LocalFleet};
use crate::fleet::{Target, TargetError};
use model::{Names, Settings, State};

/// What the emulated cluster, service and task definition look like.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    pub cluster: String,
    pub service: String,
    pub region: String,
    pub account_id: String,
    /// The task definition family; the service starts on `family:revision`.
    pub family: String,
    pub revision: u32,
    /// The service's `desiredCount` at the start.
    pub desired_count: usize,
    pub minimum_healthy_percent: u32,
    pub maximum_percent: u32,
    /// `deploymentConfiguration.deploymentCircuitBreaker` (`None`: disabled).
    pub circuit_breaker: Option<CircuitBreaker>,
    /// Task definition revisions whose tasks exit at start (their essential container
    /// fails on a bad configuration), to rehearse a failed deployment:
    /// `UpdateService(taskDefinition = "<family>:<rev>")`.
    pub broken_revisions: Vec<u32>,
    /// `healthCheckGracePeriodSeconds`: a new task failing the router's health checks
    /// within this long is not replaced for it.
    pub health_check_grace: Duration,
    /// A target tracking policy on the service's desired count (`None`: no autoscaling).
    pub scaling: Option<EmulatedScaling>,
}

/// `deploymentCircuitBreaker { enable = true, rollback }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CircuitBreaker {
    pub rollback: bool,
}

impl Default for EmulatorConfig {
    /// The ECS API's defaults where it has them (`minimumHealthyPercent` 100,
    /// `maximumPercent` 200, circuit breaker off, grace period 0); names for a rehearsal.
    /// <https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DeploymentConfiguration.html>
    fn default() -> Self {
        EmulatorConfig {
            cluster: "dropzero".into(),
            service: "agent-runtime".into(),
            region: "us-east-1".into(),
            account_id: "123456789012".into(),
            family: "agent-runtime".into(),
            revision: 1,
            desired_count: 2,
            minimum_healthy_percent: 100,
            maximum_percent: 200,
            circuit_breaker: None,
            broken_revisions: Vec::new(),
            health_check_grace: Duration::ZERO,
            scaling: None,
        }
    }
}

/// State shared by the API handlers, the scheduler and the task starts and stops.
pub(crate) struct Inner {
    pub fleet: LocalFleet,
    state: Mutex<State>,
    /// Wakes the scheduler early (a request or a task changed something).
    pub wake: Notify,
    pub cancel: CancellationToken,
    /// Task starts and stops in flight, so shutdown can wait for them to end.
    pub actions: TaskTracker,
    /// Replicas start one at a time (see `tasks.rs`).
    pub launching: tokio::sync::Mutex<()>,
}

impl Inner {
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running emulator: the ECS API on loopback over a local fleet it owns.
pub struct Emulator {
    inner: Arc<Inner>,
    addr: SocketAddr,
    handles: Mutex<Vec<JoinHandle<()>>>,
}

impl std::fmt::Debug for Emulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emulator")
            .field("addr", &self.addr)
            .finish()
    }
}

impl Emulator {
    /// Start a local fleet from `fleet` (its `replicas` is ignored: the service scheduler
    /// starts `cfg.desired_count` tasks), serve the ECS API on `listen` (port 0 for any),
    /// and return once the service's first deployment is COMPLETED.
    pub async fn start(
        cfg: EmulatorConfig,
        fleet: LocalConfig,
        listen: SocketAddr,
    ) -> Result<Emulator, TargetError> {
        let fleet = LocalFleet::start(LocalConfig {
            replicas: 0,
            ..fleet
        })
        .await?;
        Emulator::over(cfg, fleet, listen).await
    }

    /// Like [`Emulator::start`], over a fleet already started with no replicas (e.g. by
    /// `target_setup`). The emulator owns it from now on.
    pub async fn over(
        cfg: EmulatorConfig,
        fleet: LocalFleet,
        listen: SocketAddr,
    ) -> Result<Emulator, TargetError> {
        let invalid = |why: String| TargetError::Io(format!("ecs emulator: {why}"));
        if !fleet.all_replicas().is_empty() {
            fleet.shutdown().await;
            return Err(invalid(
                "the fleet must start with no replicas (the service scheduler starts the tasks)"
                    .into(),
            ));
        }
        if cfg.minimum_healthy_percent > 100 || cfg.maximum_percent < 100 {
            fleet.shutdown().await;
            return Err(invalid(format!(
                "minimum_healthy_percent {} must be <= 100 and maximum_percent {} >= 100",
                cfg.minimum_healthy_percent, cfg.maximum_percent
            )));
        }
        let listener = match TcpListener::bind(listen).await {
            Ok(l) => l,
            Err(e) => {
                fleet.shutdown().await;
                return Err(invalid(format!("binding {listen}: {e}")));
            }
        };
        let addr = listener
            .local_addr()
            .map_err(|e| invalid(format!("reading the bound address: {e}")))?;
        let ready_timeout = fleet.config().ready_timeout;
        let names = Names {
            region: cfg.region.clone(),
            account: cfg.account_id.clone(),
            cluster: cfg.cluster.clone(),
            service: cfg.service.clone(),
            family: cfg.family.clone(),
            container: "runtime".into(),
        };
        let settings = Settings {
            minimum_healthy_percent: cfg.minimum_healthy_percent,
            maximum_percent: cfg.maximum_percent,
            circuit_breaker: cfg.circuit_breaker,
            health_check_grace: cfg.health_check_grace,
        };
        let state = State::new(
            names,
            cfg.desired_count,
            cfg.revision,
            settings,
            cfg.broken_revisions.clone(),
        );
        let inner = Arc::new(Inner {
            fleet,
            state: Mutex::new(state),
            wake: Notify::new(),
            cancel: CancellationToken::new(),
            actions: TaskTracker::new(),
            launching: tokio::sync::Mutex::new(()),
        });
        let server = {
            let app = api::app(Arc::clone(&inner));
            let cancel = inner.cancel.clone();
            tokio::spawn(async move {
                let served = axum::serve(listener, app)
                    .with_graceful_shutdown(cancel.cancelled_owned())
                    .await;
                if let Err(e) = served {
                    tracing::error!(error = %e, "ecs emulator: API server failed");
                }
            })
        };
        let scheduler = tokio::spawn(deploy::run(Arc::clone(&inner)));
        let mut handles = vec![server, scheduler];
        if let Some(scaling) = cfg.scaling {
            handles.push(tokio::spawn(scaling::run(Arc::clone(&inner), scaling)));
        }
        let emulator = Emulator {
            inner,
            addr,
            handles: Mutex::new(handles),
        };
        tracing::info!(%addr, cluster = %cfg.cluster, service = %cfg.service, "ecs emulator listening");
        // The first deployment starts every task; wait for it like `LocalFleet::start` waits
        // for its replicas, so callers begin with a steady service.
        if let Err(e) = emulator.wait_steady(ready_timeout * 2).await {
            emulator.shutdown().await;
            return Err(e);
        }
        Ok(emulator)
    }

    /// `http://127.0.0.1:<port>`: the `endpoint_url` for the AWS SDK.
    pub fn endpoint_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The fleet behind the service: its router's `base_url` plays the ALB's DNS name, its
    /// `llm_url` is the mock LLM.
    pub fn fleet(&self) -> &LocalFleet {
        &self.inner.fleet
    }

    /// Stop the API, the scheduler and every start or stop in flight, then the fleet (every
    /// replica killed). Bounded; leaves no child behind.
    pub async fn shutdown(&self) {
        self.inner.cancel.cancel();
        let handles: Vec<JoinHandle<()>> =
            std::mem::take(&mut *self.handles.lock().unwrap_or_else(|e| e.into_inner()));
        for h in handles {
            let _ = tokio::time::timeout(Duration::from_secs(5), h).await;
        }
        self.inner.actions.close();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.inner.actions.wait()).await;
        self.inner.fleet.shutdown().await;
    }

    /// Wait until the PRIMARY deployment is COMPLETED.
    async fn wait_steady(&self, timeout: Duration) -> Result<(), TargetError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.inner.lock().primary().rollout == model::Rollout::Completed {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(TargetError::NotReady(timeout));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.inner.cancel.cancel();
    }
}
