//! The generator: one task per response that paces a [`Reply`]'s tokens with the latency
//! model, applies the request's fault verdict (stall, cut, in-stream error), bills every token
//! in the ledger as it is generated, and hands bytes to the HTTP body through a small channel.
//!
//! The channel is what makes billing honest: when the client goes away the body is dropped,
//! the next send (or the wait before it) fails, and generation stops. Wire formats are behind
//! the [`Wire`] trait; this file knows none of them.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use rand_chacha::ChaCha8Rng;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tracing::Instrument;

use super::agent::{Reply, Stop, ToolCall};
use super::faults::Verdict;
use super::latency::load_multiplier;
use super::ledger::Entry;
use super::server::State;

/// Turns generation events into an API's bytes. Non-streaming encoders buffer and return
/// `None` until [`Wire::finish`].
pub trait Wire: Send + 'static {
    fn start(&mut self) -> Option<Bytes>;
    fn text(&mut self, token: &str) -> Option<Bytes>;
    fn tool_start(&mut self, call: &ToolCall) -> Option<Bytes>;
    fn tool_json(&mut self, chunk: &str) -> Option<Bytes>;
    fn finish(&mut self, stop: Stop, output_tokens: u64) -> Bytes;
    /// An in-stream error (the response then ends without its normal ending).
    fn stream_error(&mut self) -> Option<Bytes>;
}

/// The body stream of one response.
pub type Body = ReceiverStream<Result<Bytes, std::io::Error>>;

/// Everything one response needs besides the shared state.
#[derive(Debug)]
pub struct Job {
    pub reply: Reply,
    pub verdict: Verdict,
    pub session: Option<String>,
    pub rng: ChaCha8Rng,
}

/// Start generating `job` and return the body that carries it.
pub fn spawn(state: Arc<State>, job: Job, wire: Box<dyn Wire>) -> Body {
    // Small on purpose: generation runs at most a couple of tokens ahead of the socket.
    let (tx, rx) = mpsc::channel(2);
    tokio::spawn(produce(state, job, wire, tx).instrument(tracing::Span::current()));
    ReceiverStream::new(rx)
}

type Tx = mpsc::Sender<Result<Bytes, std::io::Error>>;

/// Counts this response among the open streams for as long as it lives.
struct OpenGuard(Arc<State>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

enum Piece<'a> {
    Text(&'a str),
    Tool(&'a ToolCall, usize),
}

async fn produce(state: Arc<State>, mut job: Job, mut wire: Box<dyn Wire>, tx: Tx) {
    state.open.fetch_add(1, Ordering::Relaxed);
    let _open = OpenGuard(state.clone());
    let session = job.session.as_deref();
    let verdict = job.verdict;
    if !send(&state, &tx, wire.start()).await {
        return;
    }
    let reply = &job.reply;
    let pieces = reply.text.iter().map(|t| Piece::Text(t)).chain(
        reply
            .tool
            .iter()
            .flat_map(|c| (0..c.input_chunks.len()).map(move |i| Piece::Tool(c, i))),
    );
    let mut emitted: u32 = 0;
    for piece in pieces {
        if verdict.cut_after == Some(emitted) {
            state.ledger.record(session, Entry::Cut);
            tracing::info!(tokens = emitted, "fault: cutting the stream");
            abort(&tx, "fault: cut").await;
            return;
        }
        if verdict.stream_error_after == Some(emitted) {
            state.ledger.record(session, Entry::StreamError);
            match wire.stream_error() {
                Some(bytes) => {
                    let _ = send(&state, &tx, Some(bytes)).await;
                }
                // A whole-body response has no way to say it mid-way: abort it.
                None => abort(&tx, "fault: in-stream error").await,
            }
            return;
        }
        let base = if emitted == 0 {
            state.ttft.sample(&mut job.rng) + verdict.extra_latency
        } else {
            state.itl.sample(&mut job.rng)
        };
        let open = state.open.load(Ordering::Relaxed);
        let profile = &state.config.profile;
        let mut delay = base.mul_f64(load_multiplier(
            open,
            profile.max_concurrent,
            profile.load_factor,
        ));
        match verdict.stall {
            Some((after, stall)) if after == emitted => delay += stall,
            _ => {}
        }
        if !wait(&state, &tx, delay).await {
            return;
        }
        state.ledger.record(session, Entry::OutputToken);
        emitted += 1;
        let bytes = match piece {
            Piece::Text(t) => wire.text(t),
            Piece::Tool(call, i) => {
                let start = if i == 0 { wire.tool_start(call) } else { None };
                let json = call.input_chunks.get(i).and_then(|c| wire.tool_json(c));
                match (start, json) {
                    (Some(a), Some(b)) => Some([a, b].concat().into()),
                    (a, b) => a.or(b),
                }
            }
        };
        if !send(&state, &tx, bytes).await {
            return;
        }
    }
    let end = wire.finish(reply.stop, u64::from(emitted));
    let _ = send(&state, &tx, Some(end)).await;
}

/// The server is stopping: end this response as a broken connection (it is one), without
/// waiting for the client.
async fn shut_down(tx: &Tx) {
    let err = std::io::Error::new(std::io::ErrorKind::ConnectionAborted, "mock shutting down");
    let _ = tx.try_send(Err(err));
}

/// Close the connection abruptly (no terminating chunk, no stop event) once the tokens
/// already sent have reached the socket.
async fn abort(tx: &Tx, why: &'static str) {
    // Hyper drops its unflushed write buffer when the body fails, so first wait until it has
    // taken every queued frame (it flushes before asking for the next one), bounded in time.
    let drained = async {
        while tx.capacity() < tx.max_capacity() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    tokio::select! {
        _ = tokio::time::timeout(Duration::from_secs(1), drained) => {}
        _ = tx.closed() => return,
    }
    let err = std::io::Error::new(std::io::ErrorKind::ConnectionAborted, why);
    let _ = tx.send(Err(err)).await;
}

/// Sleep `delay` unless the client leaves or the server shuts down first (then `false`).
async fn wait(state: &State, tx: &Tx, delay: Duration) -> bool {
    if delay.is_zero() {
        if state.shutdown.is_cancelled() {
            shut_down(tx).await;
            return false;
        }
        return !tx.is_closed();
    }
    tokio::select! {
        _ = tokio::time::sleep(delay) => true,
        _ = tx.closed() => false,
        _ = state.shutdown.cancelled() => {
            shut_down(tx).await;
            false
        }
    }
}

/// Send bytes (if any); `false` when the body is gone or the server shuts down.
async fn send(state: &State, tx: &Tx, bytes: Option<Bytes>) -> bool {
    let Some(bytes) = bytes else {
        return true;
    };
    tokio::select! {
        r = tx.send(Ok(bytes)) => r.is_ok(),
        _ = state.shutdown.cancelled() => {
            shut_down(tx).await;
            false
        }
    }
}
