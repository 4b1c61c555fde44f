//! Graceful drain in process, driven by the shutdown token: in-flight sessions finish, new
//! ones are refused with 503 + Retry-After, `/readyz` says draining, `serve` returns Ok; at
//! the drain deadline streams end without `done` and the session is released.

#![allow(clippy::unwrap_used)] // tests fail loudly on setup errors

mod support;

use std::time::Duration;

use dropzero_runtime::{Config, session::SessionStatus};
use serde_json::json;
use support::{Resume, create, memory, read, serve, verify};

#[tokio::test]
async fn in_flight_session_finishes_and_new_ones_are_refused() {
    let mock = support::mock(support::profile(Duration::from_millis(5))).await;
    let llm = &mock.url;
    let rt = serve(Config::new(llm), memory()).await;
    let s = create(&rt.base, json!({"query": "finish me [dz tokens=60]"})).await;
    let first = read(&rt.base, &s, Resume::Start, Some(5)).await;
    let base = rt.base.clone();
    let s2 = support::Created {
        id: s.id.clone(),
        token: s.token.clone(),
    };
    let after = first.last().unwrap().seq;
    let reader = tokio::spawn(async move { read(&base, &s2, Resume::Header(after), None).await });
    rt.shutdown.cancel();
    let client = reqwest::Client::new();
    let ready = client
        .get(format!("{}/readyz", rt.base))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
    let refused = client
        .post(format!("{}/v1/sessions", rt.base))
        .json(&json!({"query": "late"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 503);
    assert!(refused.headers().contains_key("retry-after"));
    let rest = reader.await.unwrap();
    let all: Vec<_> = first.into_iter().chain(rest).collect();
    assert_eq!(verify(&all, 1)["status"], "completed");
    tokio::time::timeout(Duration::from_secs(10), rt.handle)
        .await
        .expect("serve returns after the drain")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn drain_deadline_ends_streams_without_done() {
    let mock = support::mock(support::profile(Duration::from_millis(10))).await;
    let llm = &mock.url;
    let mut config = Config::new(llm);
    config.drain_timeout = Duration::from_millis(200);
    let journal = memory();
    let rt = serve(config, journal.clone()).await;
    let s = create(&rt.base, json!({"query": "too long [dz tokens=5000]"})).await;
    let base = rt.base.clone();
    let s2 = support::Created {
        id: s.id.clone(),
        token: s.token.clone(),
    };
    let reader = tokio::spawn(async move { read(&base, &s2, Resume::Start, None).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    rt.shutdown.cancel();
    let events = reader.await.unwrap();
    assert!(!events.is_empty());
    assert!(
        events.iter().all(|e| e.kind != "done"),
        "ended cleanly without done"
    );
    tokio::time::timeout(Duration::from_secs(10), rt.handle)
        .await
        .expect("serve returns after the deadline")
        .unwrap()
        .unwrap();
    let record = journal.session(s.id.clone()).await.unwrap().unwrap();
    assert_eq!(record.status, SessionStatus::Running);
    assert_eq!(record.owner, None, "released for a later takeover");
}
