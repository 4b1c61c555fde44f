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
        self, Outcome, SessionCtx, Start, StopSignals, Takeover,
        resume::{Progress, RebuildError, TakeoverReason},
        tools::Tools,
    },
    config::{Config, Mode},
    drain::Drain,
    emitter::{Emitter, ResumeFrom},
    journal::{Claimed, Journal, JournalError},
    llm::LlmClient,
    metrics::Metrics,
    session::{LocalSession, LocalSessions, SessionRecord, SessionStatus},
};

/// Events read per journal page while rebuilding a session.
const REBUILD_PAGE: usize = 1024;
/// How often a takeover is retried after losing the race for a seq to a lapsed owner that is
/// still writing, and the pause before each retry.
const RACE_RETRIES: u32 = 20;
const RACE_RETRY_PAUSE: std::time::Duration = std::time::Duration::from_millis(50);

/// A takeover in progress: who held the session before, and how many races it lost so far.
#[derive(Debug, Clone)]
struct Attempt {
    from: Option<String>,
    lost_races: u32,
}

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub journal: Arc<dyn Journal>,
    pub local: Arc<LocalSessions>,
    pub metrics: Arc<Metrics>,
    pub drain: Arc<Drain>,
    pub llm: LlmClient,
    pub tools: Arc<Tools>,
    /// Whether this replica's lease heartbeats currently succeed.
    pub leases: Arc<crate::lease::LeaseHealth>,
    /// Every agent task, so `run` can wait for hand-offs to finish before returning.
    pub tasks: TaskTracker,
    /// Open streams per session (`--max-streams-per-session`).
    pub streams: Arc<crate::api::streams::StreamSlots>,
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
            llm: LlmClient::new(&config.llm_url, &config.model, config.llm_client),
            tools: Arc::new(Tools::new(config.tool_latency)),
            config: Arc::new(config),
            journal,
            local: Arc::new(LocalSessions::default()),
            metrics: Arc::new(Metrics::default()),
            drain: Arc::new(Drain::default()),
            leases: Arc::default(),
            tasks: TaskTracker::new(),
            streams: Arc::default(),
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
        self.launch(record, emitter, Start::Fresh, None);
    }

    /// Continue a session this replica has just claimed: read its events, rebuild its
    /// progress, and run it here from there. If it cannot be continued (the journal fails, or
    /// this replica started draining meanwhile) it is released again for someone else.
    pub fn resume_session(&self, claimed: Claimed) {
        let attempt = Attempt {
            from: claimed.previous_owner.clone(),
            lost_races: 0,
        };
        self.spawn_resume(claimed.record, attempt);
    }

    fn spawn_resume(&self, record: SessionRecord, attempt: Attempt) {
        let state = self.clone();
        let id = record.session_id.clone();
        let span = tracing::info_span!("session", session_id = %id);
        self.tasks.spawn(
            async move {
                if let Err(e) = state.continue_claimed(record, attempt).await {
                    tracing::error!(error = %e, "cannot continue the claimed session; releasing it");
                    if let Err(e) = state.journal.release(id).await {
                        tracing::error!(error = %e, "releasing the session failed");
                    }
                }
            }
            .instrument(span),
        );
    }

    async fn continue_claimed(
        &self,
        record: SessionRecord,
        attempt: Attempt,
    ) -> Result<(), ResumeError> {
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
        let reason = TakeoverReason::from_previous_owner(attempt.from.as_deref());
        tracing::info!(
            from = ?attempt.from,
            reason = reason.as_str(),
            after_seq = progress.last_seq,
            plan = progress.plan.is_some(),
            steps = progress.steps.len(),
            lost_races = attempt.lost_races,
            "taking the session over"
        );
        if attempt.lost_races == 0 {
            self.metrics.took_over(reason);
        }
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
            from: attempt.from.clone(),
            reason,
        };
        self.launch(
            record,
            emitter,
            Start::Takeover(Box::new(takeover)),
            Some(attempt),
        );
        Ok(())
    }

    /// This replica's takeover lost the race for a seq. If the journal still names us the
    /// owner, the previous owner's lease had lapsed but it was still writing: try again from
    /// the journal (once we win a seq it is fenced out), a bounded number of times; past
    /// that, or while draining, release the session for anyone to claim.
    async fn after_lost_race(&self, id: String, attempt: Attempt) {
        let current = match self.journal.session(id.clone()).await {
            Ok(Some(record))
                if record.status == SessionStatus::Running
                    && record.owner.as_deref() == Some(self.config.replica_id.as_str()) =>
            {
                record
            }
            Ok(_) => return, // someone else owns it now, or it ended
            Err(e) => {
                tracing::warn!(error = %e, "reading the session after a lost race failed");
                return;
            }
        };
        if self.drain.is_draining() || attempt.lost_races >= RACE_RETRIES {
            tracing::warn!(
                lost_races = attempt.lost_races,
                "giving the takeover up; releasing the session"
            );
            if let Err(e) = self.journal.release(id).await {
                tracing::error!(error = %e, "releasing the session failed");
            }
            return;
        }
        tokio::time::sleep(RACE_RETRY_PAUSE).await;
        let retry = Attempt {
            lost_races: attempt.lost_races + 1,
            ..attempt
        };
        self.spawn_resume(current, retry);
    }

    /// Register a session's loop here and spawn it; `attempt` is set for a takeover.
    fn launch(
        &self,
        record: SessionRecord,
        emitter: Emitter,
        start: Start,
        attempt: Option<Attempt>,
    ) {
        let id = record.session_id.clone();
        let emitter = Arc::new(emitter);
        let signals = StopSignals {
            hard_stop: self.drain.hard_stop.clone(),
            ..StopSignals::default()
        };
        let cancel = signals.cancel.clone();
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
                lease_lost: signals.lease_lost.clone(),
                leased_at: std::time::Instant::now(),
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
                let outcome = tokio::select! {
                    _ = opened.cancelled() => {
                        let outcome = agent::run_session(ctx, start, signals).await;
                        tracing::debug!(?outcome, "agent loop ended");
                        state.count_outcome(&outcome);
                        Some(outcome)
                    }
                    _ = cancel.cancelled() => {
                        tracing::info!("cancelled before any stream opened");
                        None
                    }
                };
                state.local.remove(&id);
                state.drain.session_ended.notify_waiters();
                if let (Some(Outcome::Superseded), Some(attempt)) = (outcome, attempt) {
                    state.after_lost_race(id, attempt).await;
                }
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
            // Moved to another replica during the drain (it claimed the lease first): for the
            // drain account that is a hand-off too, not a severed session.
            Outcome::Superseded | Outcome::LeaseLost if self.drain.is_draining() => {
                self.drain.handed_off.fetch_add(1, Ordering::SeqCst);
            }
            _ => {}
        }
    }
}
