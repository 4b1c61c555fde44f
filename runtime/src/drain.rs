//! Graceful drain, in two phases driven by the shutdown token from `main`:
//!
//! 1. **Draining** (shutdown token cancelled): `/readyz` answers 503, `POST /v1/sessions`
//!    answers 503 with `Retry-After`, in-flight sessions keep running and streaming.
//! 2. **Deadline** (all local sessions ended, or `--drain-timeout` passed): [`Drain::hard_stop`]
//!    fires; every open stream ends cleanly without `done` (clients reconnect elsewhere with
//!    `Last-Event-ID`), remaining agent loops stop and hand their sessions off (`handoff`
//!    seam in `agent`), and the server's graceful shutdown can complete.
//!
//! Not for naive mode, which stops at once (that is the failure it exists to show).

use std::sync::atomic::{AtomicBool, Ordering};

use tokio_util::sync::CancellationToken;

#[derive(Debug, Default)]
pub struct Drain {
    draining: AtomicBool,
    /// Cancelled at the drain deadline: ends streams and stops remaining agent loops.
    pub hard_stop: CancellationToken,
    /// Woken whenever a local session ends, so the drain notices "none left" at once.
    pub session_ended: tokio::sync::Notify,
}

impl Drain {
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    pub fn start(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }
}
