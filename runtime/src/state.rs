//! [`AppState`]: what every handler shares — the resolved config, the journal, the sessions
//! running here, metrics, the drain state — and [`AppState::start_session`], which launches a
//! session's agent loop as a tracked task inside a span carrying its `session_id`.

use std::sync::{Arc, atomic::AtomicBool};

use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tracing::Instrument;

use crate::{
    agent::{self, SessionCtx, tools::Tools},
    config::{Config, Mode},
    drain::Drain,
    emitter::Emitter,
    journal::Journal,
    llm::LlmClient,
    metrics::Metrics,
    session::{LocalSession, LocalSessions, SessionRecord},
};

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
        let id = record.session_id.clone();
        let emitter = Arc::new(Emitter::new(
            id.clone(),
            self.journal.clone(),
            self.metrics.clone(),
            self.config.prices,
        ));
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
        let ctx = SessionCtx::new(
            record,
            self.config.clone(),
            emitter,
            self.llm.clone(),
            self.tools.clone(),
            self.metrics.clone(),
        );
        let state = self.clone();
        let span = tracing::info_span!("session", session_id = %id);
        self.tasks.spawn(
            async move {
                tokio::select! {
                    _ = opened.cancelled() => {
                        let hard_stop = state.drain.hard_stop.clone();
                        let outcome = agent::run_session(ctx, cancel, hard_stop).await;
                        tracing::debug!(?outcome, "agent loop ended");
                    }
                    _ = cancel.cancelled() => tracing::info!("cancelled before any stream opened"),
                }
                state.local.remove(&id);
                state.drain.session_ended.notify_waiters();
            }
            .instrument(span),
        );
    }
}
