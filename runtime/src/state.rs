//! [`AppState`]: what every handler shares — the resolved config, the journal, the sessions
//! running here, metrics, the drain state — and the two ways a session's agent loop starts
//! here: [`AppState::start_session`] for a new session, [`AppState::resume_session`] for one
//! this replica just claimed from another. Each loop runs as a tracked task inside a span
//! carrying its `session_id`.

use std::{
    sync::{Arc, atomic::AtomicBool, atomic::Ordering},
    time::SystemTime,
};

use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tracing::Instrument;

use crate::{
    agent::{
        self, Outcome, SessionCtx, Start, Takeover,
        resume::{Progress, RebuildError, TakeoverReason},
        tools::Tools,
    },
    config::{Config, Mode},
    drain::Drain,
    emitter::{Emitter, ResumeFrom},
    journal::{Claimed, Journal, JournalError},
    llm::LlmClient,
    metrics::Metrics,
    session::{LocalSession, LocalSessions, SessionRecord},
};

/// Events read per journal page while rebuilding a session.
const REBUILD_PAGE: usize = 1024;

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub journal: Arc<dyn Journal>,
    pub local: Arc<LocalSessions>,
    pub metrics: Arc<Metrics>,
    pub drain: Arc<Drain>,
    pub llm: LlmClient,
    pub tools: Arc<Tools>,
    /// Every agent task, so `run` can wait for hand-offs to finish before returning.
    pub tasks: TaskTracker,
}

/// Why a claimed session could not be continued here.
#[derive(Debug, thiserror::Error)]
enum ResumeError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Rebuild(#[from] RebuildError),
}

impl AppState {
    pub fn new(config: Config, journal: Arc<dyn Journal>) -> AppState {
        AppState {
            llm: LlmClient::new(&config.llm_url, &config.model),
            tools: Arc::new(Tools::new(config.tool_latency)),
            config: Arc::new(config),
            journal,
            local: Arc::new(LocalSessions::default()),
            metrics: Arc::new(Metrics::default()),
            drain: Arc::new(Drain::default()),
            tasks: TaskTracker::new(),
        }
    }

    /// Register a new session here and launch its agent loop (in naive mode the loop waits
    /// for the first stream to open).
    pub fn start_session(&self, record: SessionRecord) {
        let emitter = Emitter::new(
            record.session_id.clone(),
            self.journal.clone(),
            self.metrics.clone(),
            self.config.prices,
        );
        self.launch(record, emitter, Start::Fresh);
    }

    /// Continue a session this replica has just claimed: read its events, rebuild its
    /// progress, and run it here from there. If it cannot be continued (the journal fails, or
    /// this replica started draining meanwhile) it is released again for someone else.
    pub fn resume_session(&self, claimed: Claimed) {
        let state = self.clone();
        let id = claimed.record.session_id.clone();
        let span = tracing::info_span!("session", session_id = %id);
        self.tasks.spawn(
            async move {
                if let Err(e) = state.continue_claimed(claimed).await {
                    tracing::error!(error = %e, "cannot continue the claimed session; releasing it");
                    if let Err(e) = state.journal.release(id).await {
                        tracing::error!(error = %e, "releasing the session failed");
                    }
                }
            }
            .instrument(span),
        );
    }

    async fn continue_claimed(&self, claimed: Claimed) -> Result<(), ResumeError> {
        let Claimed {
            record,
            previous_owner,
        } = claimed;
        let id = record.session_id.clone();
        let mut progress = Progress::default();
        loop {
            let page = self
                .journal
                .read_after(id.clone(), progress.last_seq, REBUILD_PAGE)
                .await?;
            for event in &page {
                progress.apply(event)?;
            }
            if page.len() < REBUILD_PAGE {
                break;
            }
        }
        if let Some(done) = progress.done {
            // The previous owner journaled `done` but died before recording it.
            tracing::info!(
                status = done.status.as_str(),
                "session already ended; recording it"
            );
            return Ok(self
                .journal
                .finish(id, done.status, done.usage, done.last_seq)
                .await?);
        }
        if self.drain.is_draining() {
            self.journal.release(id).await?;
            return Ok(());
        }
        let reason = TakeoverReason::from_previous_owner(previous_owner.as_deref());
        tracing::info!(
            from = ?previous_owner,
            reason = reason.as_str(),
            after_seq = progress.last_seq,
            plan = progress.plan.is_some(),
            steps = progress.steps.len(),
            "taking the session over"
        );
        self.metrics.took_over(reason);
        // The previous owner's interrupted calls were billed for what they journaled.
        let mut usage = progress.usage;
        usage.output_tokens += progress.unbilled_output();
        usage.cost_usd = self
            .config
            .prices
            .cost(usage.input_tokens, usage.output_tokens);
        let emitter = Emitter::resume(
            id,
            self.journal.clone(),
            self.metrics.clone(),
            self.config.prices,
            ResumeFrom {
                last_seq: progress.last_seq,
                digest: std::mem::take(&mut progress.digest),
                usage,
            },
        );
        let takeover = Takeover {
            progress,
            from: previous_owner,
            reason,
        };
        self.launch(record, emitter, Start::Takeover(Box::new(takeover)));
        Ok(())
    }

    /// Register a session's loop here and spawn it.
    fn launch(&self, record: SessionRecord, emitter: Emitter, start: Start) {
        let id = record.session_id.clone();
        let emitter = Arc::new(emitter);
        let cancel = CancellationToken::new();
        let opened = CancellationToken::new();
        if self.config.mode == Mode::Resilient {
            opened.cancel();
        }
        self.local.insert(
            &id,
            LocalSession {
                cancel: cancel.clone(),
                emitter: emitter.clone(),
                opened: opened.clone(),
                streamed: Arc::new(AtomicBool::new(false)),
            },
        );
        let elapsed = humantime::parse_rfc3339(&record.created_at)
            .ok()
            .and_then(|created| SystemTime::now().duration_since(created).ok())
            .unwrap_or_default();
        let ctx = SessionCtx::new(
            record,
            self.config.clone(),
            emitter,
            self.llm.clone(),
            self.tools.clone(),
            self.metrics.clone(),
        )
        .started_ago(elapsed);
        let state = self.clone();
        let span = tracing::info_span!("session", session_id = %id);
        self.tasks.spawn(
            async move {
                tokio::select! {
                    _ = opened.cancelled() => {
                        let hard_stop = state.drain.hard_stop.clone();
                        let outcome = agent::run_session(ctx, start, cancel, hard_stop).await;
                        tracing::debug!(?outcome, "agent loop ended");
                        state.count_outcome(&outcome);
                    }
                    _ = cancel.cancelled() => tracing::info!("cancelled before any stream opened"),
                }
                state.local.remove(&id);
                state.drain.session_ended.notify_waiters();
            }
            .instrument(span),
        );
    }

    fn count_outcome(&self, outcome: &Outcome) {
        match outcome {
            Outcome::HandedOff => {
                self.metrics.handoffs.fetch_add(1, Ordering::Relaxed);
                self.drain.handed_off.fetch_add(1, Ordering::SeqCst);
            }
            Outcome::Finished(_) if self.drain.is_draining() => {
                self.drain
                    .finished_during_drain
                    .fetch_add(1, Ordering::SeqCst);
            }
            _ => {}
        }
    }
}
