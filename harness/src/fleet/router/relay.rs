//! The response body relay: forwards a target's response body to the client chunk by chunk
//! as it arrives (no buffering, so SSE flows token by token), and is where the idle timeout,
//! the network faults and shutdown act on a live stream.
//!
//! Every way a relay ends other than the target finishing its body is an *abort*: the relay
//! yields an error, hyper drops the downstream connection without a terminating chunk, and
//! the client sees a cut stream, which is what an ALB closing a connection looks like.
//! The relay owns the request's [`LoadGuard`], so the target's counters drop the moment the
//! relay ends or the client goes away (hyper drops the body).

use std::pin::Pin;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use tokio::sync::watch;
use tokio::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::faults::{FaultEffect, NetworkFault};
use super::targets::LoadGuard;

type Upstream = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// Why a relay aborted the downstream connection.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RelayError {
    #[error("no bytes from target {target} for {idle:?} (idle timeout)")]
    IdleTimeout { target: String, idle: Duration },
    #[error("network fault: connection reset on a stream from target {target}")]
    FaultReset { target: String },
    #[error("router shutting down")]
    Shutdown,
    #[error("target {target} response body failed")]
    Upstream {
        target: String,
        #[source]
        source: reqwest::Error,
    },
}

/// The state of one relayed body; see the module docs.
pub(crate) struct Relay {
    upstream: Upstream,
    guard: LoadGuard,
    idle_timeout: Duration,
    idle_deadline: Instant,
    shutdown: CancellationToken,
    faults: watch::Receiver<Option<NetworkFault>>,
    stream_seq: u64,
    /// The effect of the current fault on this stream, if it hits this stream.
    effect: Option<FaultEffect>,
    stall_until: Option<Instant>,
    done: bool,
}

impl Relay {
    pub(crate) fn new(
        upstream: Upstream,
        mut guard: LoadGuard,
        idle_timeout: Duration,
        shutdown: CancellationToken,
        faults: watch::Receiver<Option<NetworkFault>>,
        stream_seq: u64,
    ) -> Self {
        guard.start_streaming();
        let mut relay = Self {
            upstream,
            guard,
            idle_timeout,
            idle_deadline: Instant::now() + idle_timeout,
            shutdown,
            faults,
            stream_seq,
            effect: None,
            stall_until: None,
            done: false,
        };
        relay.apply_current_fault();
        relay
    }

    /// Turns the relay into a body stream that runs inside `span`.
    pub(crate) fn into_stream(
        self,
        span: tracing::Span,
    ) -> impl Stream<Item = Result<Bytes, RelayError>> + Send + 'static {
        futures::stream::unfold(self, move |mut relay| {
            let span = span.clone();
            async move {
                let item = relay.next_chunk().await?;
                Some((item, relay))
            }
            .instrument(span)
        })
    }

    fn target(&self) -> String {
        self.guard.target().id.clone()
    }

    /// Reads the current fault and decides what it does to this stream.
    fn apply_current_fault(&mut self) {
        let fault = self.faults.borrow_and_update().clone();
        self.effect = fault.filter(|f| f.hits(self.stream_seq)).map(|f| f.effect);
        self.stall_until = match self.effect {
            Some(FaultEffect::Stall { duration }) => Some(Instant::now() + duration),
            _ => None,
        };
    }

    async fn next_chunk(&mut self) -> Option<Result<Bytes, RelayError>> {
        if self.done {
            return None;
        }
        let item = self.next_inner().await;
        match &item {
            None => tracing::debug!("stream finished by target"),
            Some(Err(e)) => {
                self.done = true;
                tracing::info!(error = %e, "stream aborted");
            }
            Some(Ok(_)) => {}
        }
        item
    }

    async fn next_inner(&mut self) -> Option<Result<Bytes, RelayError>> {
        loop {
            if self.effect == Some(FaultEffect::Reset) {
                let target = self.target();
                return Some(Err(RelayError::FaultReset { target }));
            }
            let stalled = self.stall_until.is_some();
            let stall_end = self.stall_until.unwrap_or(self.idle_deadline);
            tokio::select! {
                biased;
                _ = self.shutdown.cancelled() => return Some(Err(RelayError::Shutdown)),
                Ok(()) = self.faults.changed() => self.apply_current_fault(),
                _ = tokio::time::sleep_until(self.idle_deadline) => {
                    let (target, idle) = (self.target(), self.idle_timeout);
                    return Some(Err(RelayError::IdleTimeout { target, idle }));
                }
                _ = tokio::time::sleep_until(stall_end), if stalled => self.stall_until = None,
                chunk = self.upstream.next(), if !stalled => {
                    return match chunk {
                        None => None,
                        Some(Err(source)) => {
                            let target = self.target();
                            Some(Err(RelayError::Upstream { target, source }))
                        }
                        Some(Ok(bytes)) => self.forward(bytes).await,
                    };
                }
            }
        }
    }

    /// Hands a chunk on, after the fault's added latency if there is one.
    async fn forward(&mut self, bytes: Bytes) -> Option<Result<Bytes, RelayError>> {
        if let Some(FaultEffect::Latency { per_chunk }) = self.effect {
            tokio::select! {
                _ = self.shutdown.cancelled() => return Some(Err(RelayError::Shutdown)),
                _ = tokio::time::sleep(per_chunk) => {}
            }
        }
        self.idle_deadline = Instant::now() + self.idle_timeout;
        Some(Ok(bytes))
    }
}
