//! The test fleet for the router tests: small axum backends whose streams the test feeds
//! through channels, a router in front of them, and bounded waits.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use bytes::Bytes;
use dropzero::fleet::router::{self, Algorithm, Router, RouterConfig, TargetState};
use futures::channel::mpsc as fmpsc;
use futures::{Stream, StreamExt};
use tokio::net::TcpListener;
use tokio::sync::{Mutex, mpsc};
use tokio_util::sync::CancellationToken;
/// The sending half of one open response stream on a backend.
pub type StreamTx = fmpsc::UnboundedSender<Result<Bytes, Infallible>>;

#[derive(Clone)]
struct BackendState {
    name: &'static str,
    ready: Arc<AtomicBool>,
    readyz_hits: Arc<AtomicUsize>,
    opened: mpsc::UnboundedSender<StreamTx>,
}

/// A tiny replica: `/readyz` (switchable), `/whoami`, `/stream` (fed by the test),
/// `/echo` (method, path, query and body back) and `/hang` (never answers).
pub struct Backend {
    pub name: &'static str,
    pub addr: SocketAddr,
    pub ready: Arc<AtomicBool>,
    pub readyz_hits: Arc<AtomicUsize>,
    pub opened: Mutex<mpsc::UnboundedReceiver<StreamTx>>,
}

impl Backend {
    pub async fn start(name: &'static str, stop: &CancellationToken) -> Backend {
        let (opened_tx, opened_rx) = mpsc::unbounded_channel();
        let state = BackendState {
            name,
            ready: Arc::new(AtomicBool::new(true)),
            readyz_hits: Arc::new(AtomicUsize::new(0)),
            opened: opened_tx,
        };
        let app = axum::Router::new()
            .route("/readyz", get(readyz))
            .route(
                "/whoami",
                get(|State(s): State<BackendState>| async move { s.name }),
            )
            .route("/stream", get(stream))
            .route("/echo", any(echo))
            .route("/hang", get(std::future::pending::<()>))
            .with_state(state.clone());
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind backend");
        let addr = listener.local_addr().expect("backend addr");
        let stop = stop.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await;
        });
        Backend {
            name,
            addr,
            ready: state.ready,
            readyz_hits: state.readyz_hits,
            opened: Mutex::new(opened_rx),
        }
    }
}

async fn readyz(State(s): State<BackendState>) -> StatusCode {
    s.readyz_hits.fetch_add(1, Ordering::SeqCst);
    if s.ready.load(Ordering::SeqCst) {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    }
}

async fn stream(State(s): State<BackendState>) -> Response {
    let (tx, rx) = fmpsc::unbounded();
    let _ = s.opened.send(tx);
    (
        [("content-type", "text/event-stream")],
        Body::from_stream(rx),
    )
        .into_response()
}

async fn echo(req: Request) -> String {
    let head = format!("{} {}", req.method(), req.uri());
    let body = axum::body::to_bytes(req.into_body(), 1 << 20)
        .await
        .unwrap_or_default();
    format!("{head} {}", String::from_utf8_lossy(&body))
}

pub fn send(tx: &StreamTx, text: &'static str) {
    tx.unbounded_send(Ok(Bytes::from_static(text.as_bytes())))
        .expect("stream still open");
}

/// Bounds every wait in these tests.
pub async fn within<T>(fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(5), fut)
        .await
        .expect("timed out after 5 s")
}

pub fn config() -> RouterConfig {
    RouterConfig {
        algorithm: Algorithm::RoundRobin,
        health_check_interval: Duration::from_millis(20),
        healthy_threshold: 2,
        unhealthy_threshold: 2,
        health_check_timeout: Duration::from_millis(500),
        idle_timeout: Duration::from_secs(5),
        deregistration_delay: Duration::from_secs(5),
        stickiness: false,
    }
}

pub struct Fleet {
    pub router: Router,
    pub backends: Vec<Backend>,
    pub client: reqwest::Client,
    pub shutdown: CancellationToken,
}

impl Fleet {
    /// A router with `names` registered and healthy.
    pub async fn start(cfg: RouterConfig, names: &[&'static str]) -> Fleet {
        let shutdown = CancellationToken::new();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind router");
        let router = router::start(listener, cfg, shutdown.clone()).await;
        let mut backends = Vec::new();
        for &name in names {
            let backend = Backend::start(name, &shutdown).await;
            router.register(name, backend.addr);
            within(router.wait_for_state(name, TargetState::Healthy)).await;
            backends.push(backend);
        }
        let client = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client");
        Fleet {
            router,
            backends,
            client,
            shutdown,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.router.addr())
    }

    pub async fn get_text(&self, path: &str) -> (StatusCode, String) {
        let response = within(self.client.get(self.url(path)).send())
            .await
            .expect("request");
        let status = response.status();
        (status, within(response.text()).await.expect("body"))
    }

    /// Opens `/stream` through the router and returns the client's body stream together with
    /// the backend's sending half.
    pub async fn open_stream(&self) -> (ClientStream, &'static str, StreamTx) {
        let response = within(self.client.get(self.url("/stream")).send())
            .await
            .expect("stream request");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        let (name, tx) = within(async {
            loop {
                for b in &self.backends {
                    if let Ok(tx) = b.opened.lock().await.try_recv() {
                        return (b.name, tx);
                    }
                }
                tokio::task::yield_now().await;
            }
        })
        .await;
        (Box::pin(response.bytes_stream()), name, tx)
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub type ClientStream = std::pin::Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

pub async fn next_text(s: &mut ClientStream) -> String {
    let chunk = within(s.next()).await.expect("stream open").expect("chunk");
    String::from_utf8(chunk.to_vec()).expect("utf-8")
}

/// Asserts that the client stream is cut (an error), not ended cleanly.
pub async fn assert_aborted(s: &mut ClientStream) {
    loop {
        match within(s.next()).await {
            Some(Ok(_)) => continue,
            Some(Err(_)) => return,
            None => panic!("stream ended cleanly; expected an abort"),
        }
    }
}
