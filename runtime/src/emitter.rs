//! The per-session event writer: assigns `seq`, keeps the running `content_sha256` and the
//! cumulative usage, appends each event to the journal and wakes local streams once it is
//! durable. One `Emitter` per running session; parallel steps share it. A replica that takes
//! a session over starts its emitter with [`Emitter::resume`] from the journal's state.
//!
//! If an append finds its seq already journaled ([`JournalError::SeqTaken`]), another replica
//! owns the session now: the emitter is *superseded* and refuses every later event.
//!
//! Not for reading: streams read the journal, never the emitter, so a client can only see
//! what was journaled.

use std::{
    sync::{Mutex, MutexGuard},
    time::Instant,
};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use crate::{
    config::Prices,
    journal::{Journal, JournalError},
    metrics::Metrics,
    session::{EventRecord, SessionStatus, Usage},
};

pub struct Emitter {
    session_id: String,
    journal: std::sync::Arc<dyn Journal>,
    metrics: std::sync::Arc<Metrics>,
    prices: Prices,
    appended: watch::Sender<u64>,
    state: Mutex<EmitState>,
}

impl std::fmt::Debug for Emitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emitter")
            .field("session_id", &self.session_id)
            .field("last_seq", &self.last_seq())
            .finish()
    }
}

struct EmitState {
    next_seq: u64,
    digest: Sha256,
    usage: Usage,
    done: bool,
    superseded: bool,
}

/// Where a resumed session's emitter starts: what the journal already holds.
#[derive(Debug, Clone, Default)]
pub struct ResumeFrom {
    pub last_seq: u64,
    /// SHA-256 over every journaled token text, in seq order.
    pub digest: Sha256,
    pub usage: Usage,
}

/// Returned when the session already emitted `done`: nothing may follow it.
#[derive(Debug, thiserror::Error)]
pub enum EmitError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("session already finished")]
    Finished,
    #[error("another replica took the session over")]
    Superseded,
}

impl Emitter {
    /// The emitter of a new session: seq 1 comes next.
    pub fn new(
        session_id: String,
        journal: std::sync::Arc<dyn Journal>,
        metrics: std::sync::Arc<Metrics>,
        prices: Prices,
    ) -> Emitter {
        Emitter::resume(session_id, journal, metrics, prices, ResumeFrom::default())
    }

    /// The emitter of a session taken over: continues the journal's seq, digest and usage.
    pub fn resume(
        session_id: String,
        journal: std::sync::Arc<dyn Journal>,
        metrics: std::sync::Arc<Metrics>,
        prices: Prices,
        from: ResumeFrom,
    ) -> Emitter {
        Emitter {
            session_id,
            journal,
            metrics,
            prices,
            appended: watch::Sender::new(from.last_seq),
            state: Mutex::new(EmitState {
                next_seq: from.last_seq + 1,
                digest: from.digest,
                usage: from.usage,
                done: false,
                superseded: false,
            }),
        }
    }

    /// Whether another replica took the session over (an append found its seq taken).
    pub fn is_superseded(&self) -> bool {
        self.lock().superseded
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.appended.subscribe()
    }

    pub fn journal(&self) -> &std::sync::Arc<dyn Journal> {
        &self.journal
    }

    pub fn usage(&self) -> Usage {
        self.lock().usage
    }

    pub fn last_seq(&self) -> u64 {
        self.lock().next_seq - 1
    }

    fn lock(&self) -> MutexGuard<'_, EmitState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub async fn emit(&self, kind: &str, data: Value) -> Result<u64, EmitError> {
        self.emit_with(kind, |_| data).await
    }

    pub async fn token(&self, step: &str, text: &str) -> Result<u64, EmitError> {
        self.emit_with("token", |st| {
            st.digest.update(text.as_bytes());
            json!({"step": step, "text": text})
        })
        .await
    }

    /// Add one LLM call's usage and emit the cumulative `usage` event, naming the step whose
    /// call it was (so a takeover knows which journaled tokens no usage event covers yet).
    pub async fn add_usage(
        &self,
        step: &str,
        input_tokens: u64,
        output_tokens: u64,
    ) -> Result<u64, EmitError> {
        self.metrics
            .input_tokens
            .fetch_add(input_tokens, std::sync::atomic::Ordering::Relaxed);
        self.metrics
            .output_tokens
            .fetch_add(output_tokens, std::sync::atomic::Ordering::Relaxed);
        let prices = self.prices;
        self.emit_with("usage", |st| {
            st.usage.input_tokens += input_tokens;
            st.usage.output_tokens += output_tokens;
            st.usage.cost_usd = prices.cost(st.usage.input_tokens, st.usage.output_tokens);
            let mut data = json!(st.usage);
            data["step"] = json!(step);
            data
        })
        .await
    }

    /// Emit the terminal `done` event and record the outcome in the journal.
    pub async fn done(
        &self,
        status: SessionStatus,
        reason: Option<String>,
    ) -> Result<u64, EmitError> {
        let mut usage = Usage::default();
        let seq = self
            .emit_with("done", |st| {
                st.done = true;
                usage = st.usage;
                let digest = hex::encode(st.digest.clone().finalize());
                let mut data = json!({
                    "status": status.as_str(),
                    "usage": st.usage,
                    "last_seq": st.next_seq,
                    "content_sha256": digest,
                });
                if let Some(reason) = reason {
                    data["reason"] = json!(reason);
                }
                data
            })
            .await?;
        self.journal
            .finish(self.session_id.clone(), status, usage, seq)
            .await?;
        self.metrics.session_ended(status);
        Ok(seq)
    }

    /// Order the event under the lock (the journal orders appends at call time), then wait
    /// for durability outside it so parallel steps do not serialise on commits.
    async fn emit_with(
        &self,
        kind: &str,
        data: impl FnOnce(&mut EmitState) -> Value,
    ) -> Result<u64, EmitError> {
        let (seq, durable) = {
            let mut st = self.lock();
            if st.superseded {
                return Err(EmitError::Superseded);
            }
            if st.done {
                return Err(EmitError::Finished);
            }
            let seq = st.next_seq;
            let data = data(&mut st).to_string();
            st.next_seq += 1;
            let record = EventRecord {
                session_id: self.session_id.clone(),
                seq,
                kind: kind.to_string(),
                data,
            };
            (seq, self.journal.append(record))
        };
        let started = Instant::now();
        if let Err(e) = durable.await {
            if matches!(e, JournalError::SeqTaken { .. }) {
                self.lock().superseded = true;
            } else {
                self.metrics
                    .journal_append_errors
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            return Err(e.into());
        }
        self.metrics.journal_append.observe(started.elapsed());
        self.appended.send_if_modified(|last| {
            let newer = seq > *last;
            if newer {
                *last = seq;
            }
            newer
        });
        Ok(seq)
    }
}
