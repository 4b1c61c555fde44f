//! The target registry: which replicas the router knows, their health state, their load
//! counters, and the choice of a target for a new request (round robin or least outstanding).
//!
//! Not here: probing health (`health.rs`) or moving bytes (`proxy.rs`, `relay.rs`). This
//! module only keeps the books; every counter change goes through a [`LoadGuard`], so a
//! request that ends in any way (finished, failed, client gone, router shut down) is counted
//! out exactly once.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::Algorithm;

/// How the fleet names a replica, e.g. `"r3"`.
pub type TargetId = String;

/// The health state of a target, as an ALB target group would report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TargetState {
    /// Registered, not yet `healthy_threshold` consecutive passing checks.
    Initial,
    /// Receives new requests.
    Healthy,
    /// Failed `unhealthy_threshold` consecutive checks; receives no new requests.
    Unhealthy,
    /// Deregistered: receives no new requests, its open requests and streams continue.
    Draining,
}

/// A point-in-time view of one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetStatus {
    pub id: TargetId,
    pub addr: SocketAddr,
    pub state: TargetState,
    /// Responses whose body is still being relayed to the client (SSE streams, mostly).
    pub open_streams: u64,
    /// Requests not finished yet: waiting for response headers *or* streaming a body. This is
    /// the "outstanding" count that `least_outstanding` and draining look at.
    pub in_flight: u64,
    /// Requests ever routed to this target.
    pub total_requests: u64,
}

/// The load counters of one target; kept in a `watch` channel so a drain can await zero.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Load {
    pub(crate) in_flight: u64,
    pub(crate) open_streams: u64,
    pub(crate) total: u64,
}

/// Consecutive check results, reset whenever the result flips.
#[derive(Debug)]
struct Health {
    state: TargetState,
    successes: u32,
    failures: u32,
}

/// Thresholds for health state changes; both are at least 1.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Thresholds {
    pub(crate) healthy: u32,
    pub(crate) unhealthy: u32,
}

/// One registered replica.
#[derive(Debug)]
pub(crate) struct Target {
    pub(crate) id: TargetId,
    pub(crate) addr: SocketAddr,
    health: Mutex<Health>,
    load: watch::Sender<Load>,
    /// Cancelled when the target is deregistered, replaced or removed: stops its checks.
    pub(crate) checks: CancellationToken,
}

impl Target {
    pub(crate) fn new(id: TargetId, addr: SocketAddr, checks: CancellationToken) -> Self {
        Self {
            id,
            addr,
            health: Mutex::new(Health {
                state: TargetState::Initial,
                successes: 0,
                failures: 0,
            }),
            load: watch::Sender::new(Load::default()),
            checks,
        }
    }

    pub(crate) fn state(&self) -> TargetState {
        lock(&self.health).state
    }

    pub(crate) fn load(&self) -> Load {
        *self.load.borrow()
    }

    pub(crate) fn subscribe_load(&self) -> watch::Receiver<Load> {
        self.load.subscribe()
    }

    /// Records one health check result; returns `(from, to)` when the state changed.
    /// A draining target keeps its state whatever the checks say.
    pub(crate) fn record_check(
        &self,
        passed: bool,
        t: Thresholds,
    ) -> Option<(TargetState, TargetState)> {
        let mut h = lock(&self.health);
        if h.state == TargetState::Draining {
            return None;
        }
        let from = h.state;
        if passed {
            h.failures = 0;
            h.successes = h.successes.saturating_add(1);
            if from != TargetState::Healthy && h.successes >= t.healthy {
                h.state = TargetState::Healthy;
            }
        } else {
            h.successes = 0;
            h.failures = h.failures.saturating_add(1);
            if from != TargetState::Unhealthy && h.failures >= t.unhealthy {
                h.state = TargetState::Unhealthy;
            }
        }
        (h.state != from).then_some((from, h.state))
    }

    /// Marks the target draining; returns false when it already was.
    pub(crate) fn start_draining(&self) -> bool {
        let mut h = lock(&self.health);
        let was = h.state;
        h.state = TargetState::Draining;
        was != TargetState::Draining
    }

    fn status(&self) -> TargetStatus {
        let load = self.load();
        TargetStatus {
            id: self.id.clone(),
            addr: self.addr,
            state: self.state(),
            open_streams: load.open_streams,
            in_flight: load.in_flight,
            total_requests: load.total,
        }
    }
}

/// Counts one request against a target from the moment it is chosen until it is dropped.
#[derive(Debug)]
pub(crate) struct LoadGuard {
    target: Arc<Target>,
    streaming: bool,
}

impl LoadGuard {
    fn new(target: Arc<Target>) -> Self {
        target.load.send_modify(|l| {
            l.in_flight += 1;
            l.total += 1;
        });
        Self {
            target,
            streaming: false,
        }
    }

    pub(crate) fn target(&self) -> &Arc<Target> {
        &self.target
    }

    /// The response headers arrived: from now on the request is also an open stream.
    pub(crate) fn start_streaming(&mut self) {
        if !self.streaming {
            self.streaming = true;
            self.target.load.send_modify(|l| l.open_streams += 1);
        }
    }
}

impl Drop for LoadGuard {
    fn drop(&mut self) {
        let streaming = self.streaming;
        self.target.load.send_modify(|l| {
            l.in_flight -= 1;
            if streaming {
                l.open_streams -= 1;
            }
        });
    }
}

/// Every known target in registration order, plus the rotation used by both algorithms.
#[derive(Debug)]
pub(crate) struct Registry {
    targets: Mutex<Vec<Arc<Target>>>,
    next: AtomicUsize,
    algorithm: Algorithm,
    /// Bumped on every registration, removal and state change, so callers can await a state.
    changes: watch::Sender<u64>,
}

impl Registry {
    pub(crate) fn new(algorithm: Algorithm) -> Self {
        Self {
            targets: Mutex::new(Vec::new()),
            next: AtomicUsize::new(0),
            algorithm,
            changes: watch::Sender::new(0),
        }
    }

    /// Adds a target, replacing (and returning) one with the same id.
    pub(crate) fn insert(&self, target: Arc<Target>) -> Option<Arc<Target>> {
        let replaced = {
            let mut targets = lock(&self.targets);
            match targets.iter_mut().find(|t| t.id == target.id) {
                Some(slot) => Some(std::mem::replace(slot, target)),
                None => {
                    targets.push(target);
                    None
                }
            }
        };
        self.changed();
        replaced
    }

    pub(crate) fn remove(&self, id: &str) -> Option<Arc<Target>> {
        let removed = {
            let mut targets = lock(&self.targets);
            let pos = targets.iter().position(|t| t.id == id)?;
            targets.remove(pos)
        };
        self.changed();
        Some(removed)
    }

    pub(crate) fn get(&self, id: &str) -> Option<Arc<Target>> {
        lock(&self.targets).iter().find(|t| t.id == id).cloned()
    }

    pub(crate) fn snapshot(&self) -> Vec<TargetStatus> {
        lock(&self.targets).iter().map(|t| t.status()).collect()
    }

    /// Tells waiters that something changed (a registration or a state change).
    pub(crate) fn changed(&self) {
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    pub(crate) fn subscribe_changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Chooses a healthy target for a new request and counts the request against it. The
    /// choice and the count happen under one lock, so a burst of requests under
    /// `least_outstanding` spreads instead of piling onto the target that looked idlest.
    /// [`Registry::pick`], but the target named `preferred` (stickiness) while it is healthy.
    pub(crate) fn pick_preferring(&self, preferred: Option<&str>) -> Option<LoadGuard> {
        if let Some(id) = preferred {
            let targets = lock(&self.targets);
            if let Some(t) = targets
                .iter()
                .find(|t| t.id.as_str() == id && t.state() == TargetState::Healthy)
            {
                return Some(LoadGuard::new(Arc::clone(t)));
            }
        }
        self.pick()
    }

    pub(crate) fn pick(&self) -> Option<LoadGuard> {
        let targets = lock(&self.targets);
        let healthy: Vec<&Arc<Target>> = targets
            .iter()
            .filter(|t| t.state() == TargetState::Healthy)
            .collect();
        if healthy.is_empty() {
            return None;
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed) % healthy.len();
        let chosen = match self.algorithm {
            Algorithm::RoundRobin => healthy[start],
            // Ties go to the first in rotation order, so equal targets still take turns.
            Algorithm::LeastOutstanding => (0..healthy.len())
                .map(|i| healthy[(start + i) % healthy.len()])
                .min_by_key(|t| t.load().in_flight)?,
        };
        Some(LoadGuard::new(Arc::clone(chosen)))
    }
}

/// Locks a mutex, ignoring poisoning: every critical section here leaves the data valid.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Thresholds = Thresholds {
        healthy: 2,
        unhealthy: 3,
    };

    fn target(id: &str) -> Arc<Target> {
        let addr = SocketAddr::from(([127, 0, 0, 1], 1));
        Arc::new(Target::new(id.into(), addr, CancellationToken::new()))
    }

    fn make_healthy(t: &Target) {
        for _ in 0..T.healthy {
            t.record_check(true, T);
        }
    }

    #[test]
    fn router_health_thresholds_need_consecutive_results() {
        let t = target("a");
        assert_eq!(t.record_check(true, T), None);
        assert_eq!(
            t.record_check(true, T),
            Some((TargetState::Initial, TargetState::Healthy))
        );
        // A pass in between resets the failure run.
        for passed in [false, false, true, false, false] {
            assert_eq!(t.record_check(passed, T), None);
        }
        assert_eq!(
            t.record_check(false, T),
            Some((TargetState::Healthy, TargetState::Unhealthy))
        );
        assert!(t.start_draining());
        assert_eq!(t.record_check(true, T), None);
        assert_eq!(t.state(), TargetState::Draining);
    }

    #[test]
    fn router_pick_rotates_and_prefers_least_outstanding() {
        let rr = Registry::new(Algorithm::RoundRobin);
        for id in ["a", "b", "c"] {
            let t = target(id);
            make_healthy(&t);
            rr.insert(t);
        }
        let order: Vec<String> = (0..6)
            .filter_map(|_| rr.pick())
            .map(|g| g.target().id.clone())
            .collect();
        assert_eq!(order, ["a", "b", "c", "a", "b", "c"]);

        let lo = Registry::new(Algorithm::LeastOutstanding);
        let (a, b) = (target("a"), target("b"));
        make_healthy(&a);
        make_healthy(&b);
        lo.insert(a);
        lo.insert(b);
        let held: Vec<LoadGuard> = (0..4).filter_map(|_| lo.pick()).collect();
        let on_a = held.iter().filter(|g| g.target().id == "a").count();
        assert_eq!(on_a, 2, "held requests spread evenly");
        let snapshot = lo.snapshot();
        assert_eq!(snapshot[0].in_flight, 2);
        drop(held);
        assert_eq!(lo.snapshot()[0].in_flight, 0);
        assert_eq!(lo.snapshot()[0].total_requests, 2);
    }

    #[test]
    fn router_pick_skips_targets_that_are_not_healthy() {
        let reg = Registry::new(Algorithm::RoundRobin);
        reg.insert(target("initial"));
        assert!(reg.pick().is_none());
        let draining = target("draining");
        make_healthy(&draining);
        draining.start_draining();
        reg.insert(draining);
        assert!(reg.pick().is_none());
    }
}
