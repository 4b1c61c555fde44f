//! Graceful drain, in two phases driven by the shutdown token from `main`:
//!
//! 1. **Draining** (shutdown token cancelled): `/readyz` answers 503, `POST /v1/sessions`
//!    answers 503 with `Retry-After`, in-flight sessions keep running and streaming.
//! 2. **Deadline** (all local sessions ended, or `--drain-timeout` passed): [`Drain::hard_stop`]
//!    fires; every open stream ends cleanly without `done` (clients reconnect elsewhere with
//!    `Last-Event-ID`), remaining agent loops stop and hand their sessions off (release the
//!    lease, `agent::handoff`), and the server's graceful shutdown can complete. The client's
//!    reconnect lands on another replica, whose stream claims the released session at once.
//!
//! While draining, a replica takes no session over (neither by sweep nor by stream). When
//! `serve` returns it logs one `drain summary` line from the counters kept here.
//!
//! Not for naive mode, which stops at once (that is the failure it exists to show).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio_util::sync::CancellationToken;

#[derive(Debug, Default)]
pub struct Drain {
    draining: AtomicBool,
    /// Cancelled at the drain deadline: ends streams and stops remaining agent loops.
    pub hard_stop: CancellationToken,
    /// Woken whenever a local session ends, so the drain notices "none left" at once.
    pub session_ended: tokio::sync::Notify,
    /// Local sessions when the drain started.
    pub in_flight_at_start: AtomicU64,
    /// Sessions that reached `done` here while draining.
    pub finished_during_drain: AtomicU64,
    /// Sessions released at the drain deadline, or taken over by another replica while
    /// draining.
    pub handed_off: AtomicU64,
}

impl Drain {
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Enter phase 1 with `in_flight` local sessions.
    pub fn start(&self, in_flight: usize) {
        self.in_flight_at_start
            .store(in_flight as u64, Ordering::SeqCst);
        self.draining.store(true, Ordering::SeqCst);
    }

    /// Log the one-line summary the harness reads from replica logs.
    pub fn log_summary(&self) {
        tracing::info!(
            in_flight_at_sigterm = self.in_flight_at_start.load(Ordering::SeqCst),
            finished_during_drain = self.finished_during_drain.load(Ordering::SeqCst),
            handed_off = self.handed_off.load(Ordering::SeqCst),
            "drain summary"
        );
    }
}
