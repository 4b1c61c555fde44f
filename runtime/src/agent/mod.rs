//! The agent loop of one session: planner → DAG of steps → parallel workers → `done`.
//!
//! Everything a session does runs inside one task carrying a `session` span (so every log
//! line has `session_id`), and every event goes through its [`Emitter`] into the journal.
//! A session stops early for one of the [`Stop`] reasons; the first one wins:
//! `DELETE` (cancelled), a budget (budget_exceeded), the drain deadline (hand-off: no `done`,
//! ownership released so another replica may continue it), a lease this replica could not
//! renew (no `done`; another replica claims it once the lease expired), or a journal failure
//! (including finding that another replica took the session over: then this loop stops
//! without writing anything more).
//!
//! A loop either starts a session ([`Start::Fresh`]) or continues one another replica began
//! ([`Start::Takeover`]): it announces the takeover in a `session` event, re-plans only if no
//! plan was journaled, and runs the DAG from the journaled progress (`resume`).
//!
//! Not for HTTP or streaming (see `api`), nor for storage (see `journal`).

mod dag;
pub mod planner;
pub mod resume;
pub mod retry;
pub mod tools;
mod worker;

use std::{
    sync::{Arc, Mutex},
    time::Instant,
};

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::{
    budget,
    config::Config,
    emitter::{EmitError, Emitter},
    journal::JournalError,
    llm::LlmClient,
    session::{SessionRecord, SessionStatus},
};

/// Why a session stopped before its steps finished.
#[derive(Debug, Clone, PartialEq)]
pub enum Stop {
    Cancelled,
    Budget(String),
    Handoff,
    /// This replica could not renew its lease in time: stop before another replica may
    /// claim the session, so two replicas never write it at once.
    LeaseLost,
    /// The journal did not take an append: unreachable, or it holds less than this writer
    /// wrote (restored from older state). The session goes on from what the journal holds,
    /// here or elsewhere, once the journal answers.
    JournalUnavailable(String),
    Journal(String),
}

impl Stop {
    /// Whether the session goes on elsewhere (no `done`, steps not marked cancelled).
    pub fn leaves_session_running(&self) -> bool {
        matches!(
            self,
            Stop::Handoff | Stop::LeaseLost | Stop::JournalUnavailable(_)
        )
    }
}

/// The signals that stop a session from outside its loop.
#[derive(Debug, Clone, Default)]
pub struct StopSignals {
    /// `DELETE` (or, in naive mode, the stream's client leaving).
    pub cancel: CancellationToken,
    /// The drain deadline.
    pub hard_stop: CancellationToken,
    /// The lease could not be renewed (see `lease::heartbeat`).
    pub lease_lost: CancellationToken,
}

/// Everything the steps of one session share.
pub struct SessionCtx {
    pub record: SessionRecord,
    pub config: Arc<Config>,
    pub emitter: Arc<Emitter>,
    pub llm: LlmClient,
    pub tools: Arc<tools::Tools>,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Cancelled when the session must stop; every step and backoff listens to it.
    pub stop: CancellationToken,
    stop_reason: Mutex<Option<Stop>>,
    started: Instant,
}

impl SessionCtx {
    pub fn new(
        record: SessionRecord,
        config: Arc<Config>,
        emitter: Arc<Emitter>,
        llm: LlmClient,
        tools: Arc<tools::Tools>,
        metrics: Arc<crate::metrics::Metrics>,
    ) -> SessionCtx {
        SessionCtx {
            record,
            config,
            emitter,
            llm,
            tools,
            metrics,
            stop: CancellationToken::new(),
            stop_reason: Mutex::new(None),
            started: Instant::now(),
        }
    }

    pub fn stop_with(&self, reason: Stop) {
        let mut slot = self.stop_reason.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none() {
            tracing::info!(?reason, "session stopping");
            *slot = Some(reason);
        }
        self.stop.cancel();
    }

    pub fn stop_reason(&self) -> Option<Stop> {
        self.stop_reason
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Emit an event; a journal failure stops the session (nothing can be delivered anyway).
    pub async fn emit(&self, kind: &str, data: Value) {
        if let Err(e) = self.emitter.emit(kind, data).await {
            self.journal_failed(e);
        }
    }

    pub async fn token(&self, step: &str, text: &str) {
        if let Err(e) = self.emitter.token(step, text).await {
            self.journal_failed(e);
        }
    }

    /// Account one LLM call of `step` (`planner` for the plan).
    pub async fn add_usage(&self, step: &str, input: u64, output: u64) {
        if input + output == 0 {
            return;
        }
        if let Err(e) = self.emitter.add_usage(step, input, output).await {
            self.journal_failed(e);
        }
    }

    fn journal_failed(&self, e: EmitError) {
        match &e {
            EmitError::Superseded | EmitError::Journal(JournalError::SeqTaken { .. }) => {
                tracing::warn!(error = %e, "another replica took the session over")
            }
            EmitError::Journal(j) if j.is_unavailable() => {
                tracing::warn!(error = %e, "journal append failed; leaving the session for a takeover");
                return self.stop_with(Stop::JournalUnavailable(e.to_string()));
            }
            _ => tracing::error!(error = %e, "journal append failed"),
        }
        self.stop_with(Stop::Journal(e.to_string()));
    }

    /// Count the time the session already ran elsewhere against its duration budget.
    pub fn started_ago(mut self, elapsed: std::time::Duration) -> SessionCtx {
        self.started = Instant::now().checked_sub(elapsed).unwrap_or(self.started);
        self
    }

    /// Stop with `budget_exceeded` if a limit is reached; true when the caller must stop.
    pub fn check_budget(&self) -> bool {
        let usage = self.emitter.usage();
        match budget::exceeded(&self.record.budget, &usage, self.started.elapsed()) {
            Some(reason) => {
                self.stop_with(Stop::Budget(reason));
                true
            }
            None => self.stop.is_cancelled(),
        }
    }
}

/// How a session ended here.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Finished(SessionStatus),
    /// Stopped at the drain deadline without `done`; the session is left to another replica.
    HandedOff,
    /// Another writer took the session's next seq; stopped without writing more.
    Superseded,
    /// Stopped because the lease could not be renewed; another replica will claim it.
    LeaseLost,
    /// The journal failed and even `done` could not be written; ownership was released.
    Abandoned,
}

/// How a session's agent loop begins.
#[derive(Debug)]
pub enum Start {
    /// A new session: announce it, plan, run every step.
    Fresh,
    /// Continue a session another replica began, from its journaled progress.
    Takeover(Box<Takeover>),
}

/// What a takeover continues from.
#[derive(Debug)]
pub struct Takeover {
    pub progress: resume::Progress,
    pub from: Option<String>,
    pub reason: resume::TakeoverReason,
}

/// Run one session to its end, or until one of `signals` stops it.
pub async fn run_session(ctx: SessionCtx, start: Start, signals: StopSignals) -> Outcome {
    let StopSignals {
        cancel,
        hard_stop,
        lease_lost,
    } = signals;
    let finished = CancellationToken::new();
    let watcher = async {
        let max = budget::max_duration(&ctx.record.budget);
        let duration = async {
            match max {
                Some(d) => tokio::time::sleep(d.saturating_sub(ctx.started.elapsed())).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = finished.cancelled() => {}
            _ = cancel.cancelled() => ctx.stop_with(Stop::Cancelled),
            _ = hard_stop.cancelled() => ctx.stop_with(Stop::Handoff),
            _ = lease_lost.cancelled() => ctx.stop_with(Stop::LeaseLost),
            _ = duration => ctx.stop_with(Stop::Budget(format!(
                "max_duration_s {} reached", ctx.record.budget.max_duration_s.unwrap_or(0.0)))),
        }
    };
    let drive = async {
        let result = drive(&ctx, start).await;
        finished.cancel();
        result
    };
    let (failure, ()) = tokio::join!(drive, watcher);
    if ctx.emitter.is_superseded() {
        return superseded(&ctx).await;
    }
    let (status, reason) = match ctx.stop_reason() {
        Some(Stop::Handoff) => return handoff(&ctx).await,
        Some(Stop::LeaseLost) => {
            tracing::warn!(
                last_seq = ctx.emitter.last_seq(),
                "lease not renewed in time: stopped so another replica can take over"
            );
            give_up(&ctx, &hard_stop).await;
            return Outcome::LeaseLost;
        }
        Some(Stop::JournalUnavailable(reason)) => {
            tracing::warn!(
                last_seq = ctx.emitter.last_seq(),
                reason,
                "journal unavailable: stopped without done; the session continues from the journal"
            );
            give_up(&ctx, &hard_stop).await;
            return Outcome::Abandoned;
        }
        Some(Stop::Cancelled) => (SessionStatus::Cancelled, Some("cancelled by client".into())),
        Some(Stop::Budget(reason)) => (SessionStatus::BudgetExceeded, Some(reason)),
        Some(Stop::Journal(reason)) => (SessionStatus::Failed, Some(reason)),
        None => match failure {
            Some(reason) => (SessionStatus::Failed, Some(reason)),
            None => (SessionStatus::Completed, None),
        },
    };
    match ctx.emitter.done(status, reason).await {
        Ok(seq) => {
            tracing::info!(status = status.as_str(), last_seq = seq, "session done");
            Outcome::Finished(status)
        }
        Err(EmitError::Superseded | EmitError::Journal(JournalError::SeqTaken { .. })) => {
            superseded(&ctx).await
        }
        Err(e) => {
            // Leave the session to a replica whose journal works, rather than heartbeat it.
            tracing::error!(error = %e, "could not journal done; releasing the session");
            give_up(&ctx, &hard_stop).await;
            Outcome::Abandoned
        }
    }
}

/// Announce, plan (unless a plan is journaled), then run the DAG. Returns the reason the
/// session failed, if a step failed.
async fn drive(ctx: &SessionCtx, start: Start) -> Option<String> {
    let mut announce = json!({
        "session_id": ctx.record.session_id,
        "replica_id": ctx.config.replica_id,
        "created_at": ctx.record.created_at,
    });
    let (plan, steps) = match start {
        Start::Fresh => (None, Default::default()),
        Start::Takeover(takeover) => {
            let Takeover {
                progress,
                from,
                reason,
            } = *takeover;
            announce["takeover"] = json!({
                "from": from,
                "after_seq": progress.last_seq,
                "reason": reason.as_str(),
            });
            (progress.plan, progress.steps)
        }
    };
    ctx.emit("session", announce).await;
    let plan = match plan {
        Some(plan) => plan,
        None => {
            // After a takeover this call is billed again: real waste, and the harness counts it.
            // Boxed: the planner's call (~2.6 KB of future) is over before the steps run;
            // inline it would size the session's task for its whole life.
            let plan = match Box::pin(planner::plan(ctx)).await {
                Ok(plan) => plan,
                Err(reason) => return Some(reason),
            };
            ctx.emit("plan", json!({"steps": plan.steps})).await;
            plan
        }
    };
    dag::run(ctx, &plan, steps).await
}

/// Another writer holds the session's next seq: usually this replica lost its lease and the
/// new owner fenced it out. Nothing is released here: if this replica is still the recorded
/// owner (it claimed the session while the lapsed owner was still writing, and lost the race
/// for a seq), `AppState` tries the takeover again.
async fn superseded(ctx: &SessionCtx) -> Outcome {
    tracing::warn!(
        last_seq = ctx.emitter.last_seq(),
        "stopped: another replica writes the session"
    );
    Outcome::Superseded
}

/// Stopped at the drain deadline: release ownership so another replica claims the session at
/// once (a reconnecting client's stream or an orphan sweep) and continues from the journal.
async fn handoff(ctx: &SessionCtx) -> Outcome {
    if !release_if_mine(ctx).await {
        tracing::error!("could not release the session at the drain deadline");
    }
    tracing::info!(
        last_seq = ctx.emitter.last_seq(),
        "session handed off at drain deadline"
    );
    Outcome::HandedOff
}

/// This loop stopped without `done` and the session must go on from the journal: release it,
/// retrying (100 ms doubling to 2 s) until the journal takes the release or the drain
/// deadline passes. A session left owned here would have its lease renewed by this replica's
/// heartbeat for as long as the replica lives, and nobody would continue it.
async fn give_up(ctx: &SessionCtx, hard_stop: &CancellationToken) {
    let mut wait = std::time::Duration::from_millis(100);
    while !release_if_mine(ctx).await {
        tokio::select! {
            _ = hard_stop.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        wait = (wait * 2).min(std::time::Duration::from_secs(2));
    }
}

/// Release the session unless another replica already took it over (releasing theirs would
/// make a running session look orphaned). The check and the release are not atomic; the seq
/// fence keeps the rare race safe. Returns false when the journal failed (nothing released).
async fn release_if_mine(ctx: &SessionCtx) -> bool {
    let journal = ctx.emitter.journal();
    let id = ctx.record.session_id.clone();
    match journal.session(id.clone()).await {
        Ok(Some(record)) if record.owner.as_deref() != Some(ctx.config.replica_id.as_str()) => {
            tracing::info!(owner = ?record.owner, "not releasing: no longer the owner");
            return true;
        }
        Ok(_) => {}
        Err(e) => {
            tracing::warn!(error = %e, "reading the owner before release failed");
            return false;
        }
    }
    match journal.release(id).await {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(error = %e, "releasing the session failed");
            false
        }
    }
}
