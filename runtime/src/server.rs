//! The runtime's HTTP server: the axum router on hyper, with the connection limits that
//! `axum::serve` does not expose (docs/security.md):
//!
//! - a **header read timeout**: a client must send a whole request head within
//!   `--header-read-timeout`, or its connection is closed. A slow client (slowloris) cannot
//!   hold a connection, and its memory, open by trickling a request line. Hyper runs the same
//!   timer while a keep-alive connection waits for its next request, so the timeout is also
//!   the idle keep-alive limit: behind a load balancer it must exceed the balancer's idle
//!   timeout (the infra module passes the ALB's plus a margin).
//! - a **request head size limit**: a request line and headers larger than
//!   `--max-header-bytes` get hyper's own `431 Request Header Fields Too Large` (before any
//!   handler runs, so not in the protocol's JSON error shape) and the connection is closed.
//!
//! Graceful shutdown works as in `axum::serve`: when `shutdown` fires, stop accepting, tell
//! every connection to finish its in-flight requests, and return once they all closed (SSE
//! streams end themselves at the drain deadline, see `api::stream`).
//! Not for routes or handlers (see `api`).

use std::{future::Future, pin::pin, time::Duration};

use axum::Router;
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::conn::auto::Builder,
    service::TowerToHyperService,
};
use tokio::{net::TcpListener, sync::watch};

/// Limits applied to every connection before a request reaches the router.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Longest time a client may take to send a request head (and a keep-alive connection
    /// may stay idle between requests).
    pub header_read_timeout: Duration,
    /// Largest request head (request line and headers) in bytes; at least
    /// [`MIN_HEADER_BYTES`].
    pub max_header_bytes: usize,
}

/// Hyper's smallest read buffer: a request head limit below it cannot be enforced.
pub const MIN_HEADER_BYTES: usize = 8192;

/// After a failed `accept` (e.g. out of file descriptors), wait this long before the next.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Serve `router` on `listener` until `shutdown` fires and every connection has closed.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let builder = builder(limits);
    // Every connection task holds a receiver of `signal` (dropped: shut down) and of `closed`
    // (the server waits until every one has been dropped).
    let (signal_tx, signal_rx) = watch::channel(());
    tokio::spawn(async move {
        shutdown.await;
        drop(signal_rx);
    });
    let (closed_tx, closed_rx) = watch::channel(());
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
            _ = signal_tx.closed() => break,
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        let builder = builder.clone();
        let signal_tx = signal_tx.clone();
        let closed_rx = closed_rx.clone();
        tokio::spawn(async move {
            let mut conn =
                pin!(builder.serve_connection_with_upgrades(TokioIo::new(stream), service));
            let mut signal = pin!(signal_tx.closed());
            let mut shutting_down = false;
            loop {
                tokio::select! {
                    result = conn.as_mut() => {
                        if let Err(e) = result {
                            // A header timeout, an oversized head or a client that went away.
                            tracing::debug!(error = %e, "connection ended with an error");
                        }
                        break;
                    }
                    _ = &mut signal, if !shutting_down => {
                        shutting_down = true;
                        conn.as_mut().graceful_shutdown();
                    }
                }
            }
            drop(closed_rx);
        });
    }
    drop(closed_rx);
    drop(listener);
    closed_tx.closed().await;
}

fn builder(limits: ConnectionLimits) -> Builder<TokioExecutor> {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes.max(MIN_HEADER_BYTES));
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX));
    builder
}
