//! Session ownership in resilient mode: leases, heartbeats and takeover.
//!
//! The replica running a session's agent loop owns it in the journal with a lease
//! (`lease_expires_at_ms`). Three things keep that honest:
//! - [`heartbeat`]: every ttl/3 this replica extends the lease of every session it owns, in
//!   one journal call. A crashed replica stops heartbeating; its leases lapse after the TTL.
//!   A replica that is alive but cannot renew stops each session before its lease can have
//!   lapsed (and claims nothing meanwhile), so a claimer never races a live writer.
//! - [`sweep_orphans`]: every ttl/2 (jittered) this replica lists orphans — running sessions
//!   whose lease expired or whose owner released them at its drain deadline — and claims them.
//! - [`try_take_over`]: the same claim, asked for by a stream serving a session that runs
//!   nowhere (so a reconnecting client does not wait for a sweep).
//!
//! A claim is atomic in the journal, so exactly one replica wins; the winner rebuilds the
//! session from its events (`AppState::resume_session`). A replica that lost its lease
//! without dying is stopped by the journal itself: its next append finds the seq taken.
//! A draining replica claims nothing.
//!
//! Not for what a takeover does to the session (see `agent::resume`).

use std::{
    sync::atomic::{AtomicBool, Ordering},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use rand::Rng;

use crate::{config::Mode, state::AppState};

/// Most sessions one sweep claims, so one replica does not take a whole dead replica's load
/// at once while others also sweep (the rest waits for the next sweep or a reconnect).
const SWEEP_LIMIT: usize = 32;

/// Now as Unix epoch milliseconds, the lease clock every replica shares.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The lease a claim or heartbeat made now grants.
pub fn lease_from_now(state: &AppState) -> i64 {
    now_ms().saturating_add(millis(state.config.lease.ttl))
}

/// Whether this replica's last lease heartbeat succeeded (a replica that cannot renew its
/// own leases takes no session over).
#[derive(Debug)]
pub struct LeaseHealth {
    healthy: AtomicBool,
}

impl Default for LeaseHealth {
    fn default() -> LeaseHealth {
        LeaseHealth {
            healthy: AtomicBool::new(true),
        }
    }
}

impl LeaseHealth {
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::SeqCst)
    }
}

/// Extend this replica's leases every ttl/3 until the drain deadline. A failure is logged at
/// warn and counted; when renewals keep failing, each local session is stopped one
/// heartbeat before its lease could have lapsed (see [`stop_lapsing`]).
pub async fn heartbeat(state: AppState) {
    let stop = state.drain.hard_stop.clone();
    let mut tick = tokio::time::interval(state.config.lease.heartbeat);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Start of the last renewal the journal accepted: every lease we held then runs to at
    // least this + ttl.
    let mut renewed = Instant::now();
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let sent = Instant::now();
        let owner = state.config.replica_id.clone();
        match state.journal.heartbeat(owner, lease_from_now(&state)).await {
            Ok(sessions) => {
                renewed = sent;
                state.leases.healthy.store(true, Ordering::SeqCst);
                tracing::trace!(sessions, "lease heartbeat");
            }
            Err(e) => {
                state.leases.healthy.store(false, Ordering::SeqCst);
                state
                    .metrics
                    .lease_heartbeat_failures
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, "lease heartbeat failed");
                stop_lapsing(&state, renewed);
            }
        }
    }
}

/// Stop every local session whose lease may lapse before the next heartbeat: its lease runs
/// a TTL from when it was created or claimed here, or from the last accepted renewal,
/// whichever is later. Stopping one heartbeat early means a replica that claims the session
/// once the lease expired finds nobody still writing it.
fn stop_lapsing(state: &AppState, renewed: Instant) {
    let lease = state.config.lease;
    let now = Instant::now();
    for session in state.local.all() {
        let valid_until = session.leased_at.max(renewed) + lease.ttl;
        if now + lease.heartbeat >= valid_until && !session.lease_lost.is_cancelled() {
            session.lease_lost.cancel();
        }
    }
}

/// Claim orphaned sessions every sweep interval (±25% jitter, so replicas do not sweep in
/// lockstep) until this replica starts draining.
pub async fn sweep_orphans(state: AppState) {
    let stop = state.drain.hard_stop.clone();
    let every = state.config.lease.sweep;
    loop {
        let pause = every.mul_f64(rand::rng().random_range(0.75..1.25));
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(pause) => {}
        }
        if state.drain.is_draining() {
            return;
        }
        let orphans = match state.journal.orphans(now_ms(), SWEEP_LIMIT).await {
            Ok(ids) => ids,
            Err(e) => {
                tracing::warn!(error = %e, "listing orphaned sessions failed");
                continue;
            }
        };
        for id in orphans {
            try_take_over(&state, &id).await;
        }
    }
}

/// Claim session `id` and continue it here, unless this replica is naive, draining, cannot
/// renew its own leases, or already runs it. Returns whether this replica won the claim.
pub async fn try_take_over(state: &AppState, id: &str) -> bool {
    if state.config.mode != Mode::Resilient
        || state.drain.is_draining()
        || !state.leases.is_healthy()
        || state.local.get(id).is_some()
    {
        return false;
    }
    let claim = state.journal.claim(
        id.to_string(),
        state.config.replica_id.clone(),
        now_ms(),
        lease_from_now(state),
    );
    match claim.await {
        Ok(Some(claimed)) => {
            tracing::info!(session_id = %id, from = ?claimed.previous_owner, "claimed session");
            state.resume_session(claimed);
            true
        }
        Ok(None) => false,
        Err(e) => {
            tracing::warn!(session_id = %id, error = %e, "claiming a session failed");
            false
        }
    }
}
