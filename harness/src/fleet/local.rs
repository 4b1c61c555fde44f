//! The local target (the embedded default): a mock LLM, N runtime replicas and an ALB-like
//! router, all on loopback, all children of the harness.
//!
//! It is not a process supervisor: a replica that dies stays dead until a scenario's fault
//! timeline (or the autoscaler) starts another one, exactly as a crashed ECS task would
//! until the service scheduler replaces it.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::process::{self, ChildProcess, SpawnSpec};
use super::router::{self, Router, RouterConfig, TargetState};
use super::{ReplicaInfo, ReplicaState, Target, TargetError};

/// Everything needed to start a local fleet, resolved from the scenario.
#[derive(Debug, Clone)]
pub struct LocalConfig {
    /// The `dropzero` executable (normally `current_exe()`).
    pub exe: PathBuf,
    /// Run directory: logs and the SQLite journal go here.
    pub run_dir: PathBuf,
    pub replicas: usize,
    /// `--mode` for replicas: `naive` or `resilient`.
    pub mode: String,
    /// `--journal` for replicas (`memory`, `sqlite:<path>`, ...).
    pub journal: String,
    /// Extra `dropzero runtime` arguments (drain timeout, keepalive, prices, ...).
    pub runtime_args: Vec<OsString>,
    /// `dropzero mock-llm` arguments (seed, profile file).
    pub mock_args: Vec<OsString>,
    pub router: RouterConfig,
    /// ECS `stopTimeout`: SIGTERM → SIGKILL.
    pub stop_timeout: Duration,
    /// How long a child may take to print its listening line, and the fleet to turn healthy.
    pub ready_timeout: Duration,
    pub version: String,
}

struct Replica {
    id: String,
    version: String,
    child: ChildProcess,
    stopped: bool,
}

/// A running local fleet. Dropping it kills every child (`kill_on_drop`); call
/// [`Target::shutdown`] for an orderly stop.
pub struct LocalFleet {
    cfg: LocalConfig,
    mock: ChildProcess,
    router: Router,
    router_shutdown: CancellationToken,
    replicas: Vec<Replica>,
    next_index: usize,
}

impl LocalFleet {
    /// Start the mock LLM, the router and `cfg.replicas` replicas; return once every replica
    /// passes the router's health check.
    pub async fn start(cfg: LocalConfig) -> Result<Self, TargetError> {
        std::fs::create_dir_all(cfg.run_dir.join("logs"))
            .map_err(|e| TargetError::Io(format!("creating {}: {e}", cfg.run_dir.display())))?;
        let mut mock_args: Vec<OsString> = vec!["mock-llm".into(), "--port".into(), "0".into()];
        mock_args.extend(cfg.mock_args.iter().cloned());
        let mock = process::spawn(
            SpawnSpec {
                name: "mock-llm".into(),
                exe: cfg.exe.clone(),
                args: mock_args,
                log_path: cfg.run_dir.join("logs/mock-llm.log"),
                memory_limit: None,
            },
            cfg.ready_timeout,
        )
        .await?;
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| TargetError::Io(format!("binding the router: {e}")))?;
        let router_shutdown = CancellationToken::new();
        let router = router::start(listener, cfg.router.clone(), router_shutdown.clone()).await;
        let mut fleet = LocalFleet {
            cfg,
            mock,
            router,
            router_shutdown,
            replicas: Vec::new(),
            next_index: 1,
        };
        let version = fleet.cfg.version.clone();
        for _ in 0..fleet.cfg.replicas {
            fleet.start_replica(&version).await?;
        }
        fleet.wait_healthy(fleet.cfg.replicas).await?;
        Ok(fleet)
    }

    /// Start one more replica and register it with the router (it receives traffic once
    /// healthy). Returns its id.
    pub async fn start_replica(&mut self, version: &str) -> Result<String, TargetError> {
        let id = format!("r{}", self.next_index);
        self.next_index += 1;
        let llm_url = format!("http://{}", self.mock.addr);
        let mut args: Vec<OsString> = vec![
            "runtime".into(),
            "--port".into(),
            "0".into(),
            "--replica-id".into(),
            id.clone().into(),
            "--version-label".into(),
            version.into(),
            "--mode".into(),
            self.cfg.mode.clone().into(),
            "--journal".into(),
            self.cfg.journal.clone().into(),
            "--llm-url".into(),
            llm_url.into(),
        ];
        args.extend(self.cfg.runtime_args.iter().cloned());
        let child = process::spawn(
            SpawnSpec {
                name: format!("replica-{id}"),
                exe: self.cfg.exe.clone(),
                args,
                log_path: self.cfg.run_dir.join(format!("logs/replica-{id}.log")),
                memory_limit: None,
            },
            self.cfg.ready_timeout,
        )
        .await?;
        self.router.register(id.clone(), child.addr);
        tracing::info!(replica = %id, addr = %child.addr, version, "replica started");
        self.replicas.push(Replica {
            id: id.clone(),
            version: version.to_string(),
            child,
            stopped: false,
        });
        Ok(id)
    }

    /// Wait until at least `n` replicas are healthy in the router.
    pub async fn wait_healthy(&self, n: usize) -> Result<(), TargetError> {
        let deadline = Instant::now() + self.cfg.ready_timeout;
        loop {
            let healthy = self
                .router
                .snapshot()
                .iter()
                .filter(|t| t.state == TargetState::Healthy)
                .count();
            if healthy >= n {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(TargetError::NotReady(self.cfg.ready_timeout));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn router(&self) -> &Router {
        &self.router
    }
}

impl Target for LocalFleet {
    fn kind(&self) -> &'static str {
        "local"
    }

    fn base_url(&self) -> String {
        format!("http://{}", self.router.addr())
    }

    fn llm_url(&self) -> Option<String> {
        Some(format!("http://{}", self.mock.addr))
    }

    fn replicas(&self) -> Vec<ReplicaInfo> {
        let snapshot = self.router.snapshot();
        self.replicas
            .iter()
            .map(|r| {
                let state = if r.stopped {
                    ReplicaState::Stopped
                } else {
                    match snapshot.iter().find(|t| t.id == r.id).map(|t| t.state) {
                        Some(TargetState::Healthy) => ReplicaState::Ready,
                        Some(TargetState::Initial) => ReplicaState::Starting,
                        Some(TargetState::Unhealthy) => ReplicaState::Unhealthy,
                        Some(TargetState::Draining) => ReplicaState::Draining,
                        None => ReplicaState::Stopped,
                    }
                };
                ReplicaInfo {
                    id: r.id.clone(),
                    version: r.version.clone(),
                    url: format!("http://{}", r.child.addr),
                    state,
                }
            })
            .collect()
    }

    async fn shutdown(&mut self) {
        // Replicas first (so they stop calling the LLM), then the router, then the mock.
        for r in self.replicas.iter_mut().filter(|r| !r.stopped) {
            r.child.signal(nix::sys::signal::Signal::SIGKILL);
        }
        for r in self.replicas.iter_mut().filter(|r| !r.stopped) {
            let _ = r.child.wait_timeout(Duration::from_secs(5)).await;
            r.stopped = true;
        }
        self.router_shutdown.cancel();
        self.mock.signal(nix::sys::signal::Signal::SIGKILL);
        let _ = self.mock.wait_timeout(Duration::from_secs(5)).await;
    }
}
