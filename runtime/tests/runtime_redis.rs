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
