//! The local target (the embedded default): a mock LLM, N runtime replicas and an ALB-like
//! router, all on loopback, all children of the harness.
//!
//! It is not a process supervisor: a replica that dies stays dead until a scenario's fault
//! timeline (or the autoscaler) starts another one, exactly as a crashed ECS task would
//! until the service scheduler replaces it.

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::journal_server::{JournalServer, RedisServerConfig};
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
    /// `RLIMIT_AS` for every replica (bytes), for the `oom` fault.
    pub memory_limit: Option<u64>,
    /// Start a `redis-server` (from `PATH`) for the run and point `journal` at it.
    pub redis_server: Option<RedisServerConfig>,
}

/// What [`LocalFleet::launch_replica`] starts.
#[derive(Debug, Clone)]
pub struct ReplicaLaunch {
    /// `--replica-id`: what the replica calls itself (`x-dropzero-replica`) and its router
    /// target id. Must be unique in the fleet.
    pub id: String,
    /// `--version-label`.
    pub version: String,
    /// Appended after the fleet's own runtime arguments.
    pub extra_args: Vec<OsString>,
}

/// One replica process, as long as the fleet lives (stopped ones stay listed for the report).
#[derive(Debug)]
pub struct Replica {
    pub id: String,
    pub version: String,
    pub child: ChildProcess,
    pub started_at: Instant,
    /// A fault is stopping it: not eligible for another fault, not counted as live.
    stopping: AtomicBool,
    stopped_at: Mutex<Option<Instant>>,
    /// Largest resident memory read so far, KiB (0: never read). See [`Replica::sample_rss`].
    peak_rss_kb: AtomicU64,
}

impl Replica {
    pub fn url(&self) -> String {
        format!("http://{}", self.child.addr)
    }

    /// Running and not being stopped by a fault.
    pub fn is_live(&self) -> bool {
        !self.stopping.load(Ordering::SeqCst) && self.child.exit_status().is_none()
    }

    /// Mark as being stopped; false if another fault got there first.
    pub fn claim_for_stop(&self) -> bool {
        !self.stopping.swap(true, Ordering::SeqCst) && self.child.exit_status().is_none()
    }

    pub fn stopped_at(&self) -> Option<Instant> {
        *lock(&self.stopped_at)
    }

    pub fn mark_stopped(&self) {
        lock(&self.stopped_at).get_or_insert_with(Instant::now);
    }

    /// Read its resident memory now (`fleet::memory`) and keep the peak. Called once a
    /// second by the run loop and just before a fault signals it; a no-op once it exited.
    pub fn sample_rss(&self) {
        if self.child.exit_status().is_none()
            && let Some(kb) = super::memory::peak_rss_kb(self.child.pid())
        {
            self.peak_rss_kb.fetch_max(kb, Ordering::Relaxed);
        }
    }

    /// The peak of [`Replica::sample_rss`] in MiB (rounded up), if it was ever read.
    pub fn peak_rss_mb(&self) -> Option<u64> {
        match self.peak_rss_kb.load(Ordering::Relaxed) {
            0 => None,
            kb => Some(kb.div_ceil(1024)),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A running local fleet. Every method takes `&self`, so the fault timeline, the sampler
/// and the run loop can share it. Dropping it kills every child; call [`Target::shutdown`]
/// for an orderly stop.
pub struct LocalFleet {
    cfg: LocalConfig,
    mock: ChildProcess,
    /// The run's own `redis-server`, when the journal is `"redis"`.
    journal_server: Option<JournalServer>,
    router: Router,
    router_shutdown: CancellationToken,
    replicas: Mutex<Vec<Arc<Replica>>>,
    next_index: AtomicUsize,
    /// The version new replicas run (a deploy changes it), like the service's task definition.
    version: Mutex<String>,
    /// A rolling deploy is in progress (ECS suspends scale-in meanwhile).
    deploying: AtomicBool,
}

impl LocalFleet {
    /// Start the mock LLM, the router and `cfg.replicas` replicas; return once every replica
    /// passes the router's health check.
    pub async fn start(mut cfg: LocalConfig) -> Result<Self, TargetError> {
        std::fs::create_dir_all(cfg.run_dir.join("logs"))
            .map_err(|e| TargetError::Io(format!("creating {}: {e}", cfg.run_dir.display())))?;
        let journal_server = if let Some(redis) = cfg.redis_server {
            let server = JournalServer::start(&cfg.run_dir, redis, cfg.ready_timeout).await?;
            cfg.journal = server.url();
            Some(server)
        } else {
            None
        };
        let mut mock_args: Vec<OsString> = vec!["mock-llm".into(), "--port".into(), "0".into()];
        mock_args.extend(cfg.mock_args.iter().cloned());
        let mock = process::spawn(
            SpawnSpec {
                name: "mock-llm".into(),
                exe: cfg.exe.clone(),
                args: mock_args,
                log_path: cfg.run_dir.join("logs/mock-llm.log"),
                memory_limit: None,
                env: Vec::new(),
                ready: process::Ready::ListeningLine,
            },
            cfg.ready_timeout,
        )
        .await?;
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| TargetError::Io(format!("binding the router: {e}")))?;
        let router_shutdown = CancellationToken::new();
        let router = router::start(listener, cfg.router.clone(), router_shutdown.clone()).await;
        let fleet = LocalFleet {
            version: Mutex::new(cfg.version.clone()),
            cfg,
            mock,
            journal_server,
            router,
            router_shutdown,
            replicas: Mutex::new(Vec::new()),
            next_index: AtomicUsize::new(1),
            deploying: AtomicBool::new(false),
        };
        let mut ids = Vec::new();
        for _ in 0..fleet.cfg.replicas {
            ids.push(fleet.start_replica().await?.id.clone());
        }
        fleet.wait_healthy(&ids, fleet.cfg.ready_timeout).await?;
        Ok(fleet)
    }

    pub fn config(&self) -> &LocalConfig {
        &self.cfg
    }

    /// The run's own `redis-server`, when the harness started one (`journal = "redis"`).
    pub fn journal_server(&self) -> Option<&JournalServer> {
        self.journal_server.as_ref()
    }

    /// The version new replicas run.
    pub fn version(&self) -> String {
        lock(&self.version).clone()
    }

    pub fn is_deploying(&self) -> bool {
        self.deploying.load(Ordering::SeqCst)
    }

    pub fn set_deploying(&self, on: bool) {
        self.deploying.store(on, Ordering::SeqCst);
    }

    pub fn set_version(&self, version: &str) {
        *lock(&self.version) = version.to_string();
    }

    /// Start one more replica of the current version and register it with the router (it
    /// receives traffic once healthy).
    pub async fn start_replica(&self) -> Result<Arc<Replica>, TargetError> {
        let id = format!("r{}", self.next_index.fetch_add(1, Ordering::SeqCst));
        self.launch_replica(ReplicaLaunch {
            id,
            version: self.version(),
            extra_args: Vec::new(),
        })
        .await
    }

    /// Start a replica exactly as `launch` says (the ECS emulator names each one by its task
    /// id) and register it with the router. A replica that exits before it listens is an
    /// error and is never registered.
    pub async fn launch_replica(&self, launch: ReplicaLaunch) -> Result<Arc<Replica>, TargetError> {
        let ReplicaLaunch {
            id,
            version,
            extra_args,
        } = launch;
        let llm_url = format!("http://{}", self.mock.addr);
        let mut args: Vec<OsString> = vec![
            "runtime".into(),
            "--port".into(),
            "0".into(),
            "--replica-id".into(),
            id.clone().into(),
            "--version-label".into(),
            version.clone().into(),
            "--mode".into(),
            self.cfg.mode.clone().into(),
            "--journal".into(),
            self.cfg.journal.clone().into(),
            "--llm-url".into(),
            llm_url.into(),
        ];
        args.extend(self.cfg.runtime_args.iter().cloned());
        args.extend(extra_args);
        // glibc reserves 64 MiB of address space per malloc arena; under RLIMIT_AS that
        // reservation, not real use, would decide when the replica dies.
        let env = match self.cfg.memory_limit {
            Some(_) => vec![("MALLOC_ARENA_MAX".into(), "2".into())],
            None => Vec::new(),
        };
        let child = process::spawn(
            SpawnSpec {
                name: format!("replica-{id}"),
                exe: self.cfg.exe.clone(),
                args,
                log_path: self.cfg.run_dir.join(format!("logs/replica-{id}.log")),
                memory_limit: self.cfg.memory_limit,
                env,
                ready: process::Ready::ListeningLine,
            },
            self.cfg.ready_timeout,
        )
        .await?;
        self.router.register(id.clone(), child.addr);
        tracing::info!(replica = %id, addr = %child.addr, version, "replica started");
        let replica = Arc::new(Replica {
            id,
            version,
            child,
            started_at: Instant::now(),
            stopping: AtomicBool::new(false),
            stopped_at: Mutex::new(None),
            peak_rss_kb: AtomicU64::new(0),
        });
        lock(&self.replicas).push(replica.clone());
        Ok(replica)
    }

    /// Wait until every replica in `ids` is healthy in the router.
    pub async fn wait_healthy(&self, ids: &[String], timeout: Duration) -> Result<(), TargetError> {
        let deadline = Instant::now() + timeout;
        loop {
            let snapshot = self.router.snapshot();
            let healthy = |id: &String| {
                snapshot
                    .iter()
                    .any(|t| &t.id == id && t.state == TargetState::Healthy)
            };
            if ids.iter().all(healthy) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(TargetError::NotReady(timeout));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Every replica ever started, in start order.
    pub fn all_replicas(&self) -> Vec<Arc<Replica>> {
        lock(&self.replicas).clone()
    }

    /// Read every running replica's resident memory (see [`Replica::sample_rss`]).
    pub fn sample_rss(&self) {
        for replica in self.all_replicas() {
            replica.sample_rss();
        }
    }

    /// Replicas running and not being stopped, in start order.
    pub fn live_replicas(&self) -> Vec<Arc<Replica>> {
        self.all_replicas()
            .into_iter()
            .filter(|r| r.is_live())
            .collect()
    }

    /// How many replicas the router sees as healthy now.
    pub fn healthy_count(&self) -> usize {
        self.router
            .snapshot()
            .iter()
            .filter(|t| t.state == TargetState::Healthy)
            .count()
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
        self.all_replicas()
            .iter()
            .map(|r| {
                let state = if r.child.exit_status().is_some() {
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

    async fn shutdown(&self) {
        // Replicas first (so they stop calling the LLM), then the router, then the mock.
        let replicas = self.all_replicas();
        for r in &replicas {
            if r.child.exit_status().is_some() {
                // Died by itself before the end (not through a fault): note when we saw it.
                r.mark_stopped();
            }
            r.child.signal(nix::sys::signal::Signal::SIGKILL);
        }
        for r in &replicas {
            let _ = r.child.wait_timeout(Duration::from_secs(5)).await;
        }
        self.router_shutdown.cancel();
        if let Some(redis) = &self.journal_server {
            redis.shutdown().await;
        }
        self.mock.signal(nix::sys::signal::Signal::SIGKILL);
        let _ = self.mock.wait_timeout(Duration::from_secs(5)).await;
    }
}
