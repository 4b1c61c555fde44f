//! # The local router: an ALB-like reverse proxy in front of the runtime replicas
//!
//! The `local` target puts this in front of its replicas so that deploys, kills and scaling
//! behave for clients the way they do behind an AWS Application Load Balancer: health checks
//! on `/readyz` with thresholds, `round_robin` or `least_outstanding` routing, an idle timeout
//! that counts silence (so SSE keepalives matter), and deregistration with a delay that ends
//! early once a target has nothing open. Responses stream through chunk by chunk, never
//! buffered, so SSE tokens reach the client as the replica writes them.
//!
//! # Layout
//! - `targets.rs`: the registry, health states, load counters and the routing choice.
//! - `health.rs`: one `/readyz` checker task per target.
//! - `proxy.rs`: the request handler (forwarding, hop-by-hop headers, 502/503 answers).
//! - `relay.rs`: the response body relay, where idle timeout, faults and shutdown act.
//! - `faults.rs`: [`NetworkFault`], the latency/reset/stall faults for the chaos timeline.
//!
//! # Shutdown
//! One [`CancellationToken`] from the caller. When it fires the router stops accepting,
//! aborts every proxied stream (the relays watch the token), stops the health checks and
//! the serve task returns; [`Router::stopped`] resolves then.
//!
//! # Architecture invariants
//! - The router knows nothing of sessions, SSE framing or the protocol beyond `/readyz`: it
//!   moves bytes. Attribution of a stream to a session is the client's business.
//! - Deregistration never cuts a stream: a draining target's streams run until they end, the
//!   target dies, or the router shuts down. Ending the delay only resolves
//!   [`Router::deregister`]; what happens next (SIGTERM, SIGKILL) is the deploy's decision,
//!   as in ECS, where the task is stopped after draining.

mod faults;
mod health;
mod proxy;
mod relay;
mod targets;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub use faults::{FaultEffect, NetworkFault};
pub use targets::{TargetId, TargetState, TargetStatus};

use health::HealthCheck;
use proxy::Shared;
use targets::{Registry, Target, Thresholds};

/// How a target is chosen for a new request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Algorithm {
    #[default]
    RoundRobin,
    /// Fewest in-flight requests, open SSE streams included: sessions are long, so this is
    /// what spreads them after a scale-out or a deploy.
    LeastOutstanding,
}

/// The router's settings; [`Default`] gives the ALB defaults.
#[derive(Debug, Clone)]
pub struct RouterConfig {
    pub algorithm: Algorithm,
    pub health_check_interval: Duration,
    /// Consecutive passing checks to become healthy (0 is treated as 1).
    pub healthy_threshold: u32,
    /// Consecutive failing checks to become unhealthy (0 is treated as 1).
    pub unhealthy_threshold: u32,
    pub health_check_timeout: Duration,
    /// A proxied response with no bytes from the target for this long is closed.
    pub idle_timeout: Duration,
    /// The longest [`Router::deregister`] waits for a target's open requests to end.
    pub deregistration_delay: Duration,
    /// ALB `lb_cookie` stickiness: every response sets `AWSALB=<target>`, and a request
    /// carrying it goes to that target while it is healthy (elsewhere, with a new cookie,
    /// once it is not).
    pub stickiness: bool,
}

impl Default for RouterConfig {
    fn default() -> Self {
        Self {
            algorithm: Algorithm::RoundRobin,
            health_check_interval: Duration::from_secs(30),
            healthy_threshold: 5,
            unhealthy_threshold: 2,
            health_check_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(60),
            deregistration_delay: Duration::from_secs(300),
            stickiness: false,
        }
    }
}

/// How a [`Router::deregister`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeregisterOutcome {
    /// The target had no open requests or streams left (possibly at once).
    Drained { waited: Duration },
    /// The deregistration delay passed with requests still open; they keep running.
    DelayExpired {
        waited: Duration,
        open_streams: u64,
        in_flight: u64,
    },
    /// The router shut down while waiting.
    Shutdown { open_streams: u64, in_flight: u64 },
    /// No target with that id is registered.
    UnknownTarget,
}

/// A cheap, cloneable handle to a running router.
#[derive(Debug, Clone)]
pub struct Router {
    shared: Arc<Shared>,
    addr: SocketAddr,
    health: HealthCheck,
    deregistration_delay: Duration,
    stopped: CancellationToken,
}

/// Starts serving on `listener` in a background task until `shutdown` fires.
pub async fn start(
    listener: TcpListener,
    cfg: RouterConfig,
    shutdown: CancellationToken,
) -> Router {
    // The address was bound by the caller; failing to read it back is not a real case, and
    // the port 0 fallback only makes the handle's address useless, never the serving.
    let addr = listener
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)));
    let shared = Arc::new(Shared {
        registry: Arc::new(Registry::new(cfg.algorithm)),
        client: http_client(),
        idle_timeout: cfg.idle_timeout,
        shutdown: shutdown.clone(),
        faults: watch::Sender::new(None),
        stream_seq: AtomicU64::new(0),
        stickiness: cfg.stickiness,
    });
    let stopped = CancellationToken::new();
    let app = proxy::app(Arc::clone(&shared)).into_make_service_with_connect_info::<SocketAddr>();
    let done = stopped.clone();
    tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "router stopped serving");
        }
        done.cancel();
    });
    tracing::info!(%addr, algorithm = ?cfg.algorithm, "router listening");
    Router {
        shared,
        addr,
        health: HealthCheck {
            interval: cfg.health_check_interval,
            timeout: cfg.health_check_timeout,
            thresholds: Thresholds {
                healthy: cfg.healthy_threshold.max(1),
                unhealthy: cfg.unhealthy_threshold.max(1),
            },
        },
        deregistration_delay: cfg.deregistration_delay,
        stopped,
    }
}

/// One client for proxying and health checks: no proxy from the environment (the fleet is
/// on loopback), no redirects followed (they are the client's business), no overall timeout
/// (streams are long; the relay's idle timeout bounds silence instead). Idle pooled
/// connections are dropped before a replica's header read timeout (30 s by default) would
/// close them, so the router never sends a request on a connection being closed (an ALB
/// keeps the same rule: its idle timeout stays below the target's keep-alive).
fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .pool_idle_timeout(Duration::from_secs(20))
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .build()
        // Building only fails when the TLS backend cannot initialise; this client has no
        // TLS settings, so fall back to the default client rather than fail the router.
        .unwrap_or_default()
}

impl Router {
    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Registers (or replaces) a target in state `initial` and starts its health checks.
    pub fn register(&self, id: impl Into<TargetId>, addr: SocketAddr) {
        let id = id.into();
        let checks = self.shared.shutdown.child_token();
        let target = Arc::new(Target::new(id.clone(), addr, checks));
        if let Some(old) = self.shared.registry.insert(Arc::clone(&target)) {
            old.checks.cancel();
        }
        tracing::info!(target_id = %id, %addr, "target registered");
        tokio::spawn(health::run(
            target,
            Arc::clone(&self.shared.registry),
            self.shared.client.clone(),
            self.health,
        ));
    }

    /// Stops routing new requests to the target at once and waits until it has no open
    /// requests or streams, or the deregistration delay passes, whichever comes first. Open
    /// streams are never cut (see the module invariants). The target stays listed as
    /// `draining` until [`Router::remove`].
    pub async fn deregister(&self, id: &str) -> DeregisterOutcome {
        let Some(target) = self.shared.registry.get(id) else {
            return DeregisterOutcome::UnknownTarget;
        };
        if target.start_draining() {
            target.checks.cancel();
            self.shared.registry.changed();
            tracing::info!(target_id = %id, "target draining");
        }
        let started = Instant::now();
        let mut load = target.subscribe_load();
        let delay = self.deregistration_delay;
        tokio::select! {
            _ = load.wait_for(|l| l.in_flight == 0) => {
                let waited = started.elapsed();
                tracing::info!(target_id = %id, ?waited, "target drained");
                DeregisterOutcome::Drained { waited }
            }
            _ = tokio::time::sleep(delay) => {
                let l = target.load();
                tracing::info!(
                    target_id = %id, open_streams = l.open_streams, in_flight = l.in_flight,
                    "deregistration delay expired with requests open"
                );
                DeregisterOutcome::DelayExpired {
                    waited: started.elapsed(),
                    open_streams: l.open_streams,
                    in_flight: l.in_flight,
                }
            }
            _ = self.shared.shutdown.cancelled() => {
                let l = target.load();
                DeregisterOutcome::Shutdown { open_streams: l.open_streams, in_flight: l.in_flight }
            }
        }
    }

    /// Forgets the target: no routing, no checks, no snapshot entry. Its open streams run on
    /// until they end by themselves.
    pub fn remove(&self, id: &str) {
        if let Some(target) = self.shared.registry.remove(id) {
            target.checks.cancel();
            tracing::info!(target_id = %id, "target removed");
        }
    }

    /// Every registered target, in registration order.
    pub fn snapshot(&self) -> Vec<TargetStatus> {
        self.shared.registry.snapshot()
    }

    /// Resolves once the target `id` is in `state` (at once if it already is). It waits for
    /// as long as that takes, so callers bound it (a deploy's health-check grace period).
    pub async fn wait_for_state(&self, id: &str, state: TargetState) {
        let mut changes = self.shared.registry.subscribe_changes();
        loop {
            if self.shared.registry.get(id).map(|t| t.state()) == Some(state) {
                return;
            }
            if changes.changed().await.is_err() {
                return;
            }
        }
    }

    /// Sets (or with `None` clears) the network fault; it applies to live streams at once.
    pub fn set_network_fault(&self, fault: Option<NetworkFault>) {
        tracing::info!(?fault, "network fault set");
        self.shared.faults.send_replace(fault);
    }

    /// Resolves when the serve task has ended after shutdown.
    pub async fn stopped(&self) {
        self.stopped.cancelled().await;
    }
}
