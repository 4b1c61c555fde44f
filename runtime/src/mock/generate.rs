//! The generator: one task per response that paces a [`Reply`]'s tokens with the latency
//! model, applies the request's fault verdict (stall, cut, in-stream error), bills every token
//! in the ledger as it is generated, and hands bytes to the HTTP body through a small channel.
//!
//! The channel is what makes billing honest: when the client goes away the body is dropped,
//! the next send (or the wait before it) fails, and generation stops. Wire formats are behind
//! the [`Wire`] trait; this file knows none of them.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use rand_chacha::ChaCha8Rng;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::Instrument;

use super::agent::{Reply, Stop, ToolCall};
use super::faults::Verdict;
use super::latency::load_multiplier;
use super::lateness::{Lateness, Paced};
use super::ledger::Entry;
use super::server::State;

/// Turns generation events into an API's bytes, appended to `out`. Non-streaming encoders
/// append nothing until [`Wire::finish`].
pub trait Wire: Send + 'static {
    fn start(&mut self, out: &mut BytesMut);
    fn text(&mut self, token: &str, out: &mut BytesMut);
    fn tool_start(&mut self, call: &ToolCall, out: &mut BytesMut);
    fn tool_json(&mut self, chunk: &str, out: &mut BytesMut);
    fn finish(&mut self, stop: Stop, output_tokens: u64, out: &mut BytesMut);
    /// An in-stream error (the response then ends without its normal ending); `false` when
    /// the format cannot say it mid-way (a whole body), so the response is aborted instead.
    fn stream_error(&mut self, out: &mut BytesMut) -> bool;
}

/// Bytes for the body, and the due instants of the paced tokens among them (for
/// [`Lateness`]).
struct Frame {
    bytes: Bytes,
    paced: Option<Paced>,
}

/// The body stream of one response: the generator's frames, recorded in the mock's
/// [`Lateness`] (if any) as hyper takes them.
pub struct Body {
    rx: mpsc::Receiver<Result<Frame, std::io::Error>>,
    lateness: Option<Arc<Lateness>>,
    /// Hand-over instant and last due of this stream's previous paced frame.
    prev: Option<(Instant, Instant)>,
}

impl futures::Stream for Body {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        this.rx.poll_recv(cx).map(|item| {
            item.map(|frame| {
                let frame = frame?;
                if let (Some(lateness), Some(paced)) = (&this.lateness, frame.paced) {
                    lateness.record(paced, Instant::now(), &mut this.prev);
                }
                Ok(frame.bytes)
            })
        })
    }
}

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
    let lateness = state.lateness.clone();
    tokio::spawn(produce(state, job, wire, tx).instrument(tracing::Span::current()));
    Body {
        rx,
        lateness,
        prev: None,
    }
}

type Tx = mpsc::Sender<Result<Frame, std::io::Error>>;

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

/// A batch flushes once it holds this many bytes even if more tokens are due (about 150
/// Anthropic text events): bounds memory and what is generated ahead of the socket.
const FLUSH_AT: usize = 16 * 1024;

/// Events generated but not yet handed to the body, and the output tokens among them.
///
/// Tokens due at the same instant (every token at zero latency) go out in one body frame —
/// one write instead of one per token, still one SSE event per token. A token that has to
/// wait first flushes what is pending, so with any latency each token leaves on its own, as
/// soon as it is generated. Tokens are billed when their batch is flushed or dropped, so the
/// ledger still counts every generated token.
struct Batch<'a> {
    state: &'a State,
    session: Option<&'a str>,
    tx: &'a Tx,
    buf: BytesMut,
    tokens: u64,
    /// Paced tokens in `buf` (see [`Lateness`]).
    paced: Option<Paced>,
}

impl Batch<'_> {
    fn bill(&mut self) {
        if self.tokens > 0 {
            let n = std::mem::take(&mut self.tokens);
            self.state
                .ledger
                .record(self.session, Entry::OutputTokens(n));
        }
    }

    /// Bill and send what is pending; `false` when the body is gone or the server stops.
    async fn flush(&mut self) -> bool {
        self.bill();
        if self.buf.is_empty() {
            return true;
        }
        let frame = Frame {
            bytes: self.buf.split().freeze(),
            paced: self.paced.take(),
        };
        send(self.state, self.tx, frame).await
    }
}

impl Drop for Batch<'_> {
    /// A response that stops early (client gone, shutdown) still bills what it generated.
    fn drop(&mut self) {
        self.bill();
    }
}

async fn produce(state: Arc<State>, mut job: Job, mut wire: Box<dyn Wire>, tx: Tx) {
    state.open.fetch_add(1, Ordering::Relaxed);
    let _open = OpenGuard(state.clone());
    let verdict = job.verdict;
    let mut out = Batch {
        state: &state,
        session: job.session.as_deref(),
        tx: &tx,
        buf: BytesMut::new(),
        tokens: 0,
        paced: None,
    };
    let mut due = Instant::now();
    wire.start(&mut out.buf);
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
            if !out.flush().await {
                return;
            }
            state.ledger.record(out.session, Entry::Cut);
            tracing::info!(tokens = emitted, "fault: cutting the stream");
            abort(&tx, "fault: cut").await;
            return;
        }
        if verdict.stream_error_after == Some(emitted) {
            state.ledger.record(out.session, Entry::StreamError);
            if wire.stream_error(&mut out.buf) {
                let _ = out.flush().await;
            } else if out.flush().await {
                // A whole-body response has no way to say it mid-way: abort it.
                abort(&tx, "fault: in-stream error").await;
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
        // Paced from when the previous token was due, not from when it was written: the
        // mock's own delays (and tokio's 1 ms timer tick, which rounds every deadline the
        // same way) then do not add up across a stream. A token already due (zero latency,
        // or the host fell behind) joins the pending batch instead of waiting.
        let paced = !delay.is_zero();
        if paced {
            due = due.checked_add(delay).unwrap_or(due);
        }
        let waits = paced && due > Instant::now();
        let go_on = if waits {
            out.flush().await && wait(&state, &tx, due).await
        } else {
            alive(&state, &tx).await
        };
        if !go_on {
            return;
        }
        out.tokens += 1;
        emitted += 1;
        if paced {
            Paced::add(&mut out.paced, due);
        }
        match piece {
            Piece::Text(t) => wire.text(t, &mut out.buf),
            Piece::Tool(call, i) => {
                if i == 0 {
                    wire.tool_start(call, &mut out.buf);
                }
                if let Some(chunk) = call.input_chunks.get(i) {
                    wire.tool_json(chunk, &mut out.buf);
                }
            }
        }
        if out.buf.len() >= FLUSH_AT {
            if !out.flush().await {
                return;
            }
            // Tokens are coming back to back: size the next batch at once rather than
            // growing it by doubling (paced streams keep their small buffer).
            out.buf.reserve(FLUSH_AT + FLUSH_AT / 4);
        }
    }
    wire.finish(reply.stop, u64::from(emitted), &mut out.buf);
    let _ = out.flush().await;
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

/// `false` (and the response ends) when the client has left or the server is stopping.
async fn alive(state: &State, tx: &Tx) -> bool {
    if state.shutdown.is_cancelled() {
        shut_down(tx).await;
        return false;
    }
    !tx.is_closed()
}

/// Sleep until `due` unless the client leaves or the server shuts down first (then `false`).
async fn wait(state: &State, tx: &Tx, due: Instant) -> bool {
    tokio::select! {
        _ = tokio::time::sleep_until(due) => true,
        _ = tx.closed() => false,
        _ = state.shutdown.cancelled() => {
            shut_down(tx).await;
            false
        }
    }
}

/// Send bytes; `false` when the body is gone or the server shuts down.
async fn send(state: &State, tx: &Tx, frame: Frame) -> bool {
    tokio::select! {
        r = tx.send(Ok(frame)) => r.is_ok(),
        _ = state.shutdown.cancelled() => {
            shut_down(tx).await;
            false
        }
    }
}
