//! `GET /v1/sessions/{id}/events`: the resumable SSE stream.
//!
//! A stream is a reader of the journal: it replays every event after the client's cursor
//! (`Last-Event-ID` or `?after=`), then waits for more — on the session's in-process `watch`
//! when its agent runs here, by polling the journal when another process owns it — and ends
//! after `done`. It never sees an event the journal does not hold. At the drain deadline it
//! ends without `done` so the client reconnects elsewhere; a `: keepalive` comment goes out
//! after every `--keepalive` of silence.
//!
//! In resilient mode a stream tailing a session that runs elsewhere also checks, every
//! [`LEASE_CHECK`], whether anyone still runs it: if its owner released it (drain hand-off)
//! or its lease expired (crash), this replica claims it and continues it here
//! (`lease::try_take_over`). The stream still only reads the journal; it merely switches from
//! polling to the new local loop's `watch`.
//!
//! A session has at most `--max-streams-per-session` streams open on one replica (see
//! `streams.rs`); one more is refused with 429.
//!
//! In naive mode the first stream starts the agent loop and its disconnection cancels the
//! session; a second stream is refused with 409.

use std::{collections::HashMap, convert::Infallible, sync::atomic::Ordering};

use axum::{
    body::Body,
    extract::{
        Path, Query, State,
        rejection::{PathRejection, QueryRejection},
    },
    http::{HeaderMap, HeaderValue, header},
    response::{IntoResponse, Response},
};
use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tracing::Instrument;

use super::{AppError, auth::authorize, decode, streams::StreamSlot};
use crate::{
    config::Mode,
    session::{EventRecord, LocalSession, SessionStatus},
    state::AppState,
};

const PAGE: usize = 256;

/// How often a stream tailing a session that runs elsewhere checks the session's lease.
pub const LEASE_CHECK: std::time::Duration = std::time::Duration::from_millis(200);

pub async fn events(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let (Path(id), Query(query)) = (path?, query?);
    let record = authorize(&state, &id, &headers, &query).await?;
    let cap = state.config.max_streams_per_session;
    let slot = state
        .streams
        .acquire(&id, cap)
        .ok_or(AppError::TooManyStreams(cap))?;
    let after = decode::cursor(&headers, &query)?;
    let last = state.journal.last_seq(id.clone()).await?;
    if after > last {
        return Err(AppError::InvalidLastEventId(format!(
            "event {after} is beyond the session's last event {last}"
        )));
    }
    // A finished session read from its last event on: nothing follows, end at once.
    let nothing_left = record.status != SessionStatus::Running && after >= record.last_seq;
    let local = state.local.get(&id);
    if state.config.mode == Mode::Naive {
        let Some(local) = &local else {
            // Finished (or never started here): naive mode keeps no history to replay.
            return Err(AppError::ResumeUnsupported);
        };
        if local.streamed.swap(true, Ordering::SeqCst) {
            return Err(AppError::ResumeUnsupported);
        }
        local.opened.cancel();
    }
    let (tx, rx) = mpsc::channel::<Result<Bytes, Infallible>>(64);
    let span = tracing::info_span!("stream", session_id = %id, after);
    if nothing_left {
        let _ = tx.try_send(Ok(Bytes::from_static(b"retry: 1000\n\n")));
    } else {
        tokio::spawn(pump(state, id, after, local, tx, slot).instrument(span));
    }
    let mut response = Body::from_stream(ReceiverStream::new(rx)).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}

pub fn format_event(e: &EventRecord) -> Bytes {
    Bytes::from(format!(
        "id: {}\nevent: {}\ndata: {}\n\n",
        e.seq, e.kind, e.data
    ))
}

/// Counts the stream as open while it lives; in naive mode its end cancels the session.
struct StreamGuard {
    state: AppState,
    naive_cancel: Option<tokio_util::sync::CancellationToken>,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.state
            .metrics
            .open_streams
            .fetch_sub(1, Ordering::Relaxed);
        if let Some(cancel) = &self.naive_cancel {
            cancel.cancel();
        }
    }
}

async fn pump(
    state: AppState,
    id: String,
    mut after: u64,
    local: Option<LocalSession>,
    tx: mpsc::Sender<Result<Bytes, Infallible>>,
    // Held until the stream ends: it counts against `--max-streams-per-session`.
    _slot: StreamSlot,
) {
    state.metrics.open_streams.fetch_add(1, Ordering::Relaxed);
    let naive = state.config.mode == Mode::Naive;
    let _guard = StreamGuard {
        state: state.clone(),
        naive_cancel: local.as_ref().filter(|_| naive).map(|l| l.cancel.clone()),
    };
    let mut appended = local.map(|l| l.emitter.subscribe());
    let keepalive = state.config.keepalive;
    let hard_stop = state.drain.hard_stop.clone();
    if tx
        .send(Ok(Bytes::from_static(b"retry: 1000\n\n")))
        .await
        .is_err()
    {
        return;
    }
    let mut quiet_since = tokio::time::Instant::now();
    let mut next_lease_check = tokio::time::Instant::now() + LEASE_CHECK;
    loop {
        let events = match state.journal.read_after(id.clone(), after, PAGE).await {
            Ok(events) => events,
            Err(e) => {
                tracing::error!(error = %e, "journal read failed; ending stream");
                return;
            }
        };
        let full_page = events.len() == PAGE;
        for event in &events {
            if tx.send(Ok(format_event(event))).await.is_err() {
                tracing::info!(last_sent = after, "client went away");
                return;
            }
            after = event.seq;
            if event.is_terminal() {
                tracing::info!(last_seq = after, "stream complete");
                return;
            }
        }
        if !events.is_empty() {
            quiet_since = tokio::time::Instant::now();
        }
        if full_page {
            continue;
        }
        if appended.is_none() && !naive {
            match watch_or_take_over(&state, &id, &mut next_lease_check).await {
                Ok(watch) => appended = watch,
                Err(Vanished) => {
                    // The journal lost the session (restored from state older than it): end
                    // the stream so the client learns it on reconnecting (404).
                    tracing::error!(
                        last_sent = after,
                        "session vanished from the journal; ending stream"
                    );
                    return;
                }
            }
        }
        let more = async {
            let agent_ended = match &mut appended {
                Some(rx) => rx.wait_for(|&seq| seq > after).await.is_err(),
                None => {
                    tokio::time::sleep(state.config.remote_poll).await;
                    false
                }
            };
            if agent_ended {
                // The agent loop ended here; what is left is in the journal.
                appended = None;
            }
        };
        tokio::select! {
            _ = more => {}
            _ = tx.closed() => {
                tracing::info!(last_sent = after, "client went away");
                return;
            }
            _ = hard_stop.cancelled(), if !naive => {
                tracing::info!(last_sent = after, "drain deadline: ending stream without done");
                return;
            }
            _ = tokio::time::sleep_until(quiet_since + keepalive) => {
                if tx.send(Ok(Bytes::from_static(b": keepalive\n\n"))).await.is_err() {
                    return;
                }
                quiet_since = tokio::time::Instant::now();
            }
        }
    }
}

/// For a stream of a session whose loop does not run here: the local loop's `watch` if one
/// started here meanwhile; else, at most every [`LEASE_CHECK`], claim the session if nobody
/// holds its lease (released → at once; expired → once the TTL passed).
async fn watch_or_take_over(
    state: &AppState,
    id: &str,
    next_check: &mut tokio::time::Instant,
) -> Result<Option<tokio::sync::watch::Receiver<u64>>, Vanished> {
    if let Some(local) = state.local.get(id) {
        return Ok(Some(local.emitter.subscribe()));
    }
    let now = tokio::time::Instant::now();
    if now < *next_check || state.drain.is_draining() {
        return Ok(None);
    }
    *next_check = now + LEASE_CHECK;
    match state.journal.session(id.to_string()).await {
        Ok(Some(record)) if record.lease_free(crate::lease::now_ms()) => {
            crate::lease::try_take_over(state, id).await;
        }
        Ok(Some(_)) => {}
        Ok(None) => return Err(Vanished),
        Err(e) => tracing::warn!(error = %e, "reading the session's lease failed"),
    }
    Ok(None)
}

/// The journal no longer knows a session this stream was serving.
struct Vanished;
