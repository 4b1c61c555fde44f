//! A rolling deployment of the local fleet with ECS semantics (DESIGN §6): start new tasks
//! within `maximum_percent`, wait until they are healthy, then stop old ones in batches —
//! deregister, wait out the deregistration delay (which ends early when a replica has no
//! open streams), SIGTERM, SIGKILL after `stop_timeout` — never letting the healthy count
//! fall below `minimum_healthy_percent`.
//!
//! ECS rounds `maximum_percent` down and `minimum_healthy_percent` up (of the desired
//! count); so does this. Unlike ECS, a new task that never turns healthy stops the deploy
//! (noted in the report) instead of being retried or rolled back by a circuit breaker.

use std::sync::Arc;

use futures::future::join_all;

use super::stop::{How, stop_replica};
use super::{FaultId, FaultLog};
use crate::fleet::local::{LocalFleet, Replica};

/// `(max running, min healthy)` for `desired` tasks, as ECS computes them.
pub fn bounds(
    desired: usize,
    minimum_healthy_percent: u32,
    maximum_percent: u32,
) -> (usize, usize) {
    let max_running = desired * maximum_percent as usize / 100;
    let min_healthy = (desired * minimum_healthy_percent as usize).div_ceil(100);
    (max_running, min_healthy)
}

/// How many new tasks to start now: room under `max_running`, up to the desired count.
pub fn to_start(desired: usize, old_live: usize, new_started: usize, max_running: usize) -> usize {
    max_running
        .saturating_sub(old_live + new_started)
        .min(desired.saturating_sub(new_started))
}

/// How many old tasks to stop now without the healthy count falling below `min_healthy`.
pub fn to_stop(old_live: usize, healthy: usize, min_healthy: usize) -> usize {
    old_live.min(healthy.saturating_sub(min_healthy))
}

/// Replace every live replica with one of `version`. Returns an error message when the
/// deployment could not finish (the fault's notes say why).
pub async fn rolling(
    fleet: &LocalFleet,
    log: &FaultLog,
    id: FaultId,
    version: &str,
    (min_pct, max_pct): (u32, u32),
) -> Result<(), String> {
    fleet.set_deploying(true);
    let result = roll(fleet, log, id, version, (min_pct, max_pct)).await;
    fleet.set_deploying(false);
    result
}

async fn roll(
    fleet: &LocalFleet,
    log: &FaultLog,
    id: FaultId,
    version: &str,
    (min_pct, max_pct): (u32, u32),
) -> Result<(), String> {
    let old: Vec<Arc<Replica>> = fleet.live_replicas();
    let desired = old.len();
    log.update(id, |e| {
        e.replicas = old.iter().map(|r| r.id.clone()).collect()
    });
    fleet.set_version(version);
    let limits = bounds(desired, min_pct, max_pct);
    let mut new: Vec<Arc<Replica>> = Vec::new();
    loop {
        let old_live: Vec<&Arc<Replica>> = old.iter().filter(|r| r.is_live()).collect();
        new.retain(|r| r.child.exit_status().is_none());
        if old_live.is_empty() && new.len() >= desired {
            return Ok(());
        }
        let start = to_start(desired, old_live.len(), new.len(), limits.0);
        let mut started = Vec::new();
        for _ in 0..start {
            let replica = fleet.start_replica().await.map_err(|e| e.to_string())?;
            log.update(id, |e| e.started_replicas.push(replica.id.clone()));
            started.push(replica.id.clone());
            new.push(replica);
        }
        if !started.is_empty() {
            let timeout = fleet.config().ready_timeout;
            if let Err(e) = fleet.wait_healthy(&started, timeout).await {
                return Err(format!(
                    "new replicas {started:?} did not turn healthy: {e}"
                ));
            }
        }
        let healthy = fleet.healthy_count();
        let stop = to_stop(old_live.len(), healthy, limits.1);
        if start == 0 && stop == 0 {
            return Err(format!(
                "cannot progress: {} old live, {} new, {healthy} healthy, limits (max running, min healthy) = {limits:?}",
                old_live.len(),
                new.len()
            ));
        }
        let batch: Vec<&Arc<Replica>> = old_live
            .into_iter()
            .filter(|r| r.claim_for_stop())
            .take(stop)
            .collect();
        let stops = join_all(batch.iter().map(|r| stop_replica(fleet, r, How::Deploy))).await;
        log.update(id, |e| e.stops.extend(stops));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Simulate a whole deployment with the step function: every started task turns
    /// healthy, every stopped one goes away. Returns the (start, stop) steps.
    fn simulate(desired: usize, min: u32, max: u32) -> Vec<(usize, usize)> {
        let limits = bounds(desired, min, max);
        let (mut old, mut new, mut steps) = (desired, 0, Vec::new());
        while !(old == 0 && new >= desired) {
            let start = to_start(desired, old, new, limits.0);
            new += start;
            let stop = to_stop(old, old + new, limits.1);
            assert!(start + stop > 0, "stuck at old={old} new={new}");
            // minimum healthy holds throughout
            assert!(old + new - stop >= limits.1);
            // maximum running holds throughout
            assert!(old + new <= limits.0.max(desired));
            old -= stop;
            steps.push((start, stop));
            assert!(steps.len() < 20);
        }
        steps
    }

    #[test]
    fn max_200_min_100_starts_all_then_stops_all() {
        assert_eq!(simulate(3, 100, 200), vec![(3, 3)]);
    }

    #[test]
    fn max_100_min_50_stops_before_it_starts() {
        assert_eq!(simulate(2, 50, 100), vec![(0, 1), (1, 1), (1, 0)]);
    }

    #[test]
    fn max_150_min_100_rolls_in_batches() {
        assert_eq!(simulate(4, 100, 150), vec![(2, 2), (2, 2)]);
    }

    #[test]
    fn ecs_rounding() {
        assert_eq!(bounds(3, 50, 150), (4, 2));
        assert_eq!(bounds(1, 100, 200), (2, 1));
    }
}
