//! The mock LLM unreachable on demand (`POST /mock/outage`): for a window nothing listens on
//! its port, so a new connection is refused by the kernel, and every open connection —
//! pooled keep-alive ones and responses mid-stream — is closed; then it listens on the same
//! address again. The ledger and the fault state live in this process, so the billing truth
//! survives the window. This is how a provider outage looks to a client (connection
//! refused), as opposed to a brownout (`/mock/faults`: errors from a provider that answers).
//! Not for errors the provider answers with (see `faults`).

use std::{net::SocketAddr, time::Duration};

use axum::Router;
use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::conn::auto::Builder,
    service::TowerToHyperService,
};
use tokio::{net::TcpListener, sync::mpsc};
use tokio_util::sync::CancellationToken;

/// Where `POST /mock/outage` sends the window it asks for.
pub type OutageRequests = mpsc::UnboundedSender<Duration>;

/// The longest window one request may ask for.
pub const MAX_OUTAGE: Duration = Duration::from_secs(3600);

/// How long the accept loop waits after a request before closing everything, so the answer
/// to `POST /mock/outage` reaches its caller first.
const ANSWER_GRACE: Duration = Duration::from_millis(50);
/// Binding the address again after a window: attempts, and the pause between them (another
/// process may hold the port for a moment).
const REBIND_ATTEMPTS: u32 = 100;
const REBIND_PAUSE: Duration = Duration::from_millis(50);

/// Serve `router` on `listener` until `shutdown` fires, going dark for each window that
/// arrives on `outages`.
pub async fn serve(
    mut listener: TcpListener,
    router: Router,
    mut outages: mpsc::UnboundedReceiver<Duration>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    loop {
        let connections = CancellationToken::new();
        let window = tokio::select! {
            _ = shutdown.cancelled() => None,
            window = outages.recv() => window,
            () = accept(&listener, &router, &connections) => None,
        };
        let Some(window) = window else {
            connections.cancel();
            return Ok(());
        };
        tokio::time::sleep(ANSWER_GRACE).await;
        drop(listener);
        connections.cancel();
        tracing::warn!(
            window_ms = window.as_millis() as u64,
            "outage: refusing connections"
        );
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = tokio::time::sleep(window) => {}
        }
        listener = rebind(addr).await?;
        tracing::info!(%addr, "outage over: listening again");
    }
}

/// Accept connections forever; each one is served until `connections` is cancelled, when
/// dropping it closes the socket.
async fn accept(listener: &TcpListener, router: &Router, connections: &CancellationToken) {
    let builder = Builder::new(TokioExecutor::new());
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(REBIND_PAUSE).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        let builder = builder.clone();
        let cut = connections.clone();
        tokio::spawn(async move {
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
            tokio::select! {
                _ = conn => {}
                _ = cut.cancelled() => {}
            }
        });
    }
}

async fn rebind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let mut attempt = 1;
    loop {
        match TcpListener::bind(addr).await {
            Ok(listener) => return Ok(listener),
            Err(e) if attempt < REBIND_ATTEMPTS => {
                tracing::warn!(%addr, error = %e, attempt, "outage over: cannot listen yet");
                attempt += 1;
                tokio::time::sleep(REBIND_PAUSE).await;
            }
            Err(e) => return Err(e),
        }
    }
}
