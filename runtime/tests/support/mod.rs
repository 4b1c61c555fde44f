//! Shared helpers for the runtime's integration tests: an LLM stub, a runtime served on
//! port 0, and an SSE reader that verifies what it reads.
#![allow(dead_code)]

use std::sync::Arc;

use dropzero_runtime::{
    AppState, Config,
    journal::Journal,
    mock::{LatencySpec, MockConfig, Profile},
};
use dropzero_sse::{Item, Limits, Parser};
use futures::StreamExt;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The real mock LLM (docs/protocol.md §4) on port 0; it stops when the test's runtime does.
pub struct Mock {
    pub url: String,
    pub shutdown: CancellationToken,
}

/// A mock whose tokens arrive `gap` apart (TTFT a few ms).
pub fn profile(gap: std::time::Duration) -> Profile {
    let mut p = Profile::fast();
    if !gap.is_zero() {
        p.itl = LatencySpec {
            median: gap,
            p99: gap * 2,
        };
    }
    p
}

pub async fn mock(profile: Profile) -> Mock {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let shutdown = CancellationToken::new();
    let config = MockConfig { seed: 7, profile };
    tokio::spawn(dropzero_runtime::mock::serve(
        listener,
        config,
        shutdown.clone(),
    ));
    Mock { url, shutdown }
}

impl Mock {
    pub async fn faults(&self, spec: Value) {
        let r = reqwest::Client::new()
            .post(format!("{}/mock/faults", self.url))
            .json(&spec)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{:?}", r.text().await);
    }

    /// The ledger row of one session (`x-dropzero-session`).
    pub async fn billed(&self, session_id: &str) -> Value {
        let ledger: Value = reqwest::get(format!("{}/mock/ledger", self.url))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        ledger["sessions"][session_id].clone()
    }
}

pub struct Runtime {
    pub base: String,
    pub state: AppState,
    pub shutdown: CancellationToken,
    pub handle: JoinHandle<anyhow::Result<()>>,
}

pub fn memory() -> Arc<dyn Journal> {
    Arc::new(dropzero_runtime::journal::memory::MemoryJournal::new())
}

pub async fn serve(config: Config, journal: Arc<dyn Journal>) -> Runtime {
    let state = AppState::new(config, journal);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let shutdown = CancellationToken::new();
    let handle = tokio::spawn(dropzero_runtime::serve(
        listener,
        state.clone(),
        shutdown.clone(),
    ));
    Runtime {
        base,
        state,
        shutdown,
        handle,
    }
}

pub struct Created {
    pub id: String,
    pub token: String,
}

pub async fn create(base: &str, body: Value) -> Created {
    let response = reqwest::Client::new()
        .post(format!("{base}/v1/sessions"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let v: Value = response.json().await.unwrap();
    Created {
        id: v["session_id"].as_str().unwrap().to_string(),
        token: v["resume_token"].as_str().unwrap().to_string(),
    }
}

/// One received event.
#[derive(Debug, Clone, PartialEq)]
pub struct Ev {
    pub seq: u64,
    pub kind: String,
    pub data: Value,
}

/// How the stream was opened.
#[derive(Debug, Clone, Copy)]
pub enum Resume {
    Start,
    Header(u64),
    Query(u64),
}

/// Read a stream until it ends (or `max` events arrived, then disconnect).
pub async fn read(base: &str, s: &Created, resume: Resume, max: Option<usize>) -> Vec<Ev> {
    tokio::time::timeout(
        std::time::Duration::from_secs(20),
        read_inner(base, s, resume, max),
    )
    .await
    .expect("stream did not end within 20 s")
}

async fn read_inner(base: &str, s: &Created, resume: Resume, max: Option<usize>) -> Vec<Ev> {
    let mut url = format!("{base}/v1/sessions/{}/events", s.id);
    if let Resume::Query(k) = resume {
        url.push_str(&format!("?after={k}"));
    }
    let mut req = reqwest::Client::new().get(url).bearer_auth(&s.token);
    if let Resume::Header(k) = resume {
        req = req.header("last-event-id", k.to_string());
    }
    let response = req.send().await.unwrap();
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
    let mut body = response.bytes_stream();
    let mut parser = Parser::new(Limits::default());
    let mut items = Vec::new();
    let mut out = Vec::new();
    while let Some(chunk) = body.next().await {
        let Ok(chunk) = chunk else { break };
        parser.feed(&chunk, &mut items).unwrap();
        for item in items.drain(..) {
            if let Item::Event(e) = item {
                out.push(Ev {
                    seq: e.last_event_id.unwrap().parse().unwrap(),
                    kind: e.event,
                    data: serde_json::from_str(&e.data).unwrap(),
                });
                if max.is_some_and(|m| out.len() >= m) {
                    return out;
                }
            }
        }
    }
    out
}

/// Check a complete session's events: contiguous from `first`, one `done` at the end whose
/// digest and last_seq match. Returns the done data.
pub fn verify(events: &[Ev], first: u64) -> Value {
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.seq, first + i as u64, "contiguous seq: {events:#?}");
    }
    let done = events.last().expect("some events");
    assert_eq!(done.kind, "done", "{events:#?}");
    assert_eq!(done.data["last_seq"], json!(done.seq));
    done.data.clone()
}

pub fn digest(events: &[Ev]) -> String {
    let mut h = Sha256::new();
    for e in events.iter().filter(|e| e.kind == "token") {
        h.update(e.data["text"].as_str().unwrap().as_bytes());
    }
    hex::encode(h.finalize())
}
