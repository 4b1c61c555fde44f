//! The agent loop of one session: planner → DAG of steps → parallel workers → `done`.
//!
//! Everything a session does runs inside one task carrying a `session` span (so every log
//! line has `session_id`), and every event goes through its [`Emitter`] into the journal.
//! A session stops early for one of the [`Stop`] reasons; the first one wins:
//! `DELETE` (cancelled), a budget (budget_exceeded), the drain deadline (hand-off: no `done`,
//! ownership released so another replica may continue it), or a journal failure.
//!
//! Not for HTTP or streaming (see `api`), nor for storage (see `journal`).

mod dag;
mod planner;
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
    emitter::Emitter,
    llm::LlmClient,
    session::{SessionRecord, SessionStatus},
};

/// Why a session stopped before its steps finished.
#[derive(Debug, Clone, PartialEq)]
pub enum Stop {
    Cancelled,
    Budget(String),
    Handoff,
    Journal(String),
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

    pub async fn add_usage(&self, input: u64, output: u64) {
        if input + output == 0 {
            return;
        }
        if let Err(e) = self.emitter.add_usage(input, output).await {
            self.journal_failed(e);
        }
    }

    fn journal_failed(&self, e: crate::emitter::EmitError) {
        tracing::error!(error = %e, "journal append failed");
        self.stop_with(Stop::Journal(e.to_string()));
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
}

/// Run one session to its end. `cancel` is the session's `DELETE`; `hard_stop` the drain
/// deadline.
pub async fn run_session(
    ctx: SessionCtx,
    cancel: CancellationToken,
    hard_stop: CancellationToken,
) -> Outcome {
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
            _ = duration => ctx.stop_with(Stop::Budget(format!(
                "max_duration_s {} reached", ctx.record.budget.max_duration_s.unwrap_or(0.0)))),
        }
    };
    let drive = async {
        let result = drive(&ctx).await;
        finished.cancel();
        result
    };
    let (failure, ()) = tokio::join!(drive, watcher);
    let (status, reason) = match ctx.stop_reason() {
        Some(Stop::Handoff) => return handoff(&ctx).await,
        Some(Stop::Cancelled) => (SessionStatus::Cancelled, Some("cancelled by client".into())),
        Some(Stop::Budget(reason)) => (SessionStatus::BudgetExceeded, Some(reason)),
        Some(Stop::Journal(reason)) => (SessionStatus::Failed, Some(reason)),
        None => match failure {
            Some(reason) => (SessionStatus::Failed, Some(reason)),
            None => (SessionStatus::Completed, None),
        },
    };
    match ctx.emitter.done(status, reason).await {
        Ok(seq) => tracing::info!(status = status.as_str(), last_seq = seq, "session done"),
        Err(e) => tracing::error!(error = %e, "could not journal done"),
    }
    Outcome::Finished(status)
}

/// Plan, then run the DAG. Returns the reason the session failed, if a step failed.
async fn drive(ctx: &SessionCtx) -> Option<String> {
    ctx.emit(
        "session",
        json!({
            "session_id": ctx.record.session_id,
            "replica_id": ctx.config.replica_id,
            "created_at": ctx.record.created_at,
        }),
    )
    .await;
    let plan = match planner::plan(ctx).await {
        Ok(plan) => plan,
        Err(reason) => return Some(reason),
    };
    ctx.emit("plan", json!({"steps": plan.steps})).await;
    dag::run(ctx, &plan).await
}

/// The hand-off seam: today we only release ownership; a later change lets another replica
/// claim the session (lease takeover) and continue from the last journaled event.
async fn handoff(ctx: &SessionCtx) -> Outcome {
    let session_id = ctx.record.session_id.clone();
    if let Err(e) = ctx.emitter.journal().release(session_id).await {
        tracing::error!(error = %e, "releasing the session failed");
    }
    tracing::info!(
        last_seq = ctx.emitter.last_seq(),
        "session handed off at drain deadline"
    );
    Outcome::HandedOff
}
