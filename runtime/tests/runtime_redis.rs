//! Two runtimes (two `AppState`s, separate connections) sharing ONE Redis journal: each
//! serves the other's sessions (live tail by polling, replay, resume across replicas), and
//! idempotency keys hold across them. Runs a real `redis-server` (see `journal/redis_server.rs`).

#![allow(clippy::unwrap_used)] // tests fail loudly on setup errors

#[path = "journal/redis_server.rs"]
mod redis_server;
mod support;

use std::{sync::Arc, time::Duration};

use dropzero_runtime::{Config, JournalSpec, journal::Journal, open_journal};
use redis_server::RedisServer;
use serde_json::json;
use support::{Resume, create, digest, read, serve, verify};

async fn open(server: &RedisServer) -> Arc<dyn Journal> {
    let spec: JournalSpec = format!("{}?prefix=replicas", server.url()).parse().unwrap();
    open_journal(&spec).await.unwrap()
}

#[tokio::test]
async fn each_replica_serves_the_others_sessions() {
    let redis = RedisServer::start();
    let mock = support::mock(support::profile(Duration::from_millis(2))).await;
    let llm = &mock.url;
    let a = serve(Config::new(llm), open(&redis).await).await;
    let b = serve(Config::new(llm), open(&redis).await).await;
    let on_a = create(&a.base, json!({"query": "alpha [dz tokens=40]"})).await;
    let on_b = create(
        &b.base,
        json!({"query": "beta [dz tokens=40] [dz tool=search]"}),
    )
    .await;
    for (session, reader, owner) in [(&on_a, &b, &a), (&on_b, &a, &b)] {
        let remote = read(&reader.base, session, Resume::Start, None).await;
        let done = verify(&remote, 1);
        assert_eq!(done["status"], "completed");
        assert_eq!(done["content_sha256"], json!(digest(&remote)));
        let local = read(&owner.base, session, Resume::Start, None).await;
        assert_eq!(local, remote);
        let half = remote.len() as u64 / 2;
        let rest = read(&reader.base, session, Resume::Header(half), None).await;
        assert_eq!(rest, remote[half as usize..].to_vec());
    }
    let client = reqwest::Client::new();
    let post = |base: String| {
        client
            .post(format!("{base}/v1/sessions"))
            .header("idempotency-key", "same")
            .json(&json!({"query": "once"}))
            .send()
    };
    let first = post(a.base.clone()).await.unwrap();
    assert_eq!(first.status(), 201);
    let second = post(b.base.clone()).await.unwrap();
    assert_eq!(second.status(), 200);
    let (x, y): (serde_json::Value, serde_json::Value) =
        (first.json().await.unwrap(), second.json().await.unwrap());
    assert_eq!(x["session_id"], y["session_id"]);
}

/// `GET path` on `base`: status and body text.
async fn get_text(base: &str, path: &str) -> (u16, String) {
    let resp = reqwest::get(format!("{base}{path}")).await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// Poll `/readyz` (every 50 ms, for at most 20 s) until it answers `status`.
async fn wait_ready_status(base: &str, status: u16) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (got, body) = get_text(base, "/readyz").await;
        if got == status {
            return body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "/readyz never answered {status}; last {got} {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The journal dies under a running replica and comes back (an empty server on the same
/// port): meanwhile the replica says so — `/readyz` 503 `journal_unavailable`,
/// `dropzero_journal_up 0` — and refuses new sessions with 503, `Retry-After` and the
/// protocol's error body; afterwards, without a restart, it is ready again and serves a
/// session end to end.
#[tokio::test]
async fn a_journal_outage_is_reported_refused_and_recovered_from() {
    let mut redis = RedisServer::start();
    let mock = support::mock(support::profile(Duration::from_millis(2))).await;
    let mut config = Config::new(&mock.url);
    config.lease = dropzero_runtime::config::LeaseConfig::new(Duration::from_millis(600), None);
    let rt = serve(config, open(&redis).await).await;
    let (status, metrics) = get_text(&rt.base, "/metrics").await;
    assert_eq!(status, 200);
    assert!(metrics.contains("dropzero_journal_up 1"), "{metrics}");

    redis.kill();
    let body = wait_ready_status(&rt.base, 503).await;
    assert!(body.contains("journal_unavailable"), "{body}");
    let (_, metrics) = get_text(&rt.base, "/metrics").await;
    assert!(metrics.contains("dropzero_journal_up 0"), "{metrics}");
    let refused = reqwest::Client::new()
        .post(format!("{}/v1/sessions", rt.base))
        .json(&json!({"query": "during the outage"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 503);
    assert!(
        refused.headers().get("retry-after").is_some(),
        "{:?}",
        refused.headers()
    );
    let error: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(error["error"]["type"], "journal_unavailable", "{error}");

    redis.restart();
    wait_ready_status(&rt.base, 200).await;
    let (_, metrics) = get_text(&rt.base, "/metrics").await;
    assert!(metrics.contains("dropzero_journal_up 1"), "{metrics}");
    let session = create(&rt.base, json!({"query": "after [dz tokens=30]"})).await;
    let events = read(&rt.base, &session, Resume::Start, None).await;
    assert_eq!(verify(&events, 1)["status"], "completed");
}
