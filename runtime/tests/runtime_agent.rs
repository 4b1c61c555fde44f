//! Agent behaviour against the LLM stub: retries with prefill, budgets, cancel, naive mode.

mod support;

use std::{sync::atomic::Ordering, time::Duration};

use dropzero_runtime::{Config, Mode};
use serde_json::json;
use support::{Resume, create, digest, memory, read, serve, stub_llm, verify};

async fn run_once(stub: stub_llm::Stub, query: &str) -> Vec<support::Ev> {
    let (llm, _stub) = stub_llm::start(stub).await;
    let rt = serve(Config::new(&llm), memory()).await;
    let s = create(&rt.base, json!({"query": query})).await;
    read(&rt.base, &s, Resume::Start, None).await
}

#[tokio::test]
async fn cut_stream_is_retried_with_prefill_and_no_token_repeats() {
    let query = "cut me [dz tokens=30] [dz steps=1]";
    let clean = run_once(stub_llm::Stub::default(), query).await;
    let cut = stub_llm::Stub::default();
    cut.cut_after.store(10, Ordering::SeqCst);
    let events = run_once(cut, query).await;
    let done = verify(&events, 1);
    assert_eq!(done["status"], "completed", "{events:#?}");
    assert!(events.iter().any(|e| e.kind == "step" && e.data["state"] == "retrying"));
    assert_eq!(digest(&events), digest(&clean), "same text as without the cut");
    assert_eq!(events.iter().filter(|e| e.kind == "token").count(), 30);
}

#[tokio::test]
async fn overloaded_is_retried() {
    let stub = stub_llm::Stub::default();
    stub.status_once.store(529, Ordering::SeqCst);
    let events = run_once(stub, "busy [dz tokens=6] [dz steps=1]").await;
    assert_eq!(verify(&events, 1)["status"], "completed");
    let retry = events
        .iter()
        .find(|e| e.kind == "step" && e.data["state"] == "retrying")
        .expect("a retrying event");
    assert!(retry.data["error"].as_str().unwrap().contains("529"));
}

#[tokio::test]
async fn runaway_agent_is_cut_at_the_budget() {
    let (llm, stub) = stub_llm::start(stub_llm::Stub::default()).await;
    let rt = serve(Config::new(&llm), memory()).await;
    let s = create(
        &rt.base,
        json!({"query": "loop [dz runaway] [dz steps=1]", "budget": {"max_output_tokens": 20}}),
    )
    .await;
    let events = read(&rt.base, &s, Resume::Start, None).await;
    let done = verify(&events, 1);
    assert_eq!(done["status"], "budget_exceeded", "{done}");
    let output = done["usage"]["output_tokens"].as_u64().unwrap();
    // Each runaway call bills 2 output tokens: overshoot at most one call.
    assert!((20..=22).contains(&output), "{output}");
    assert_eq!(stub.output_tokens.load(Ordering::SeqCst), output);
}

#[tokio::test]
async fn duration_budget_stops_a_slow_session() {
    let (llm, _stub) = stub_llm::start(stub_llm::Stub {
        gap: Duration::from_millis(20),
        ..Default::default()
    })
    .await;
    let rt = serve(Config::new(&llm), memory()).await;
    let s = create(
        &rt.base,
        json!({"query": "slow [dz tokens=500]", "budget": {"max_duration_s": 0.3}}),
    )
    .await;
    let events = read(&rt.base, &s, Resume::Start, None).await;
    assert_eq!(verify(&events, 1)["status"], "budget_exceeded");
}

#[tokio::test]
async fn delete_cancels_running_steps() {
    let (llm, stub) = stub_llm::start(stub_llm::Stub {
        gap: Duration::from_millis(10),
        ..Default::default()
    })
    .await;
    let rt = serve(Config::new(&llm), memory()).await;
    let s = create(&rt.base, json!({"query": "long [dz tokens=1000] [dz steps=3]"})).await;
    let first = read(&rt.base, &s, Resume::Start, Some(8)).await;
    let response = reqwest::Client::new()
        .delete(format!("{}/v1/sessions/{}", rt.base, s.id))
        .bearer_auth(&s.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let rest = read(&rt.base, &s, Resume::Header(first.last().unwrap().seq), None).await;
    let all: Vec<_> = first.into_iter().chain(rest).collect();
    let done = verify(&all, 1);
    assert_eq!(done["status"], "cancelled");
    assert!(all.iter().any(|e| e.kind == "step" && e.data["state"] == "cancelled"));
    let billed = stub.output_tokens.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(stub.output_tokens.load(Ordering::SeqCst), billed, "no LLM calls after done");
    assert!(billed < 1000);
}

#[tokio::test]
async fn naive_mode_refuses_a_second_stream() {
    let (llm, _stub) = stub_llm::start(stub_llm::Stub {
        gap: Duration::from_millis(5),
        ..Default::default()
    })
    .await;
    let mut config = Config::new(&llm);
    config.mode = Mode::Naive;
    let rt = serve(config, memory()).await;
    let s = create(&rt.base, json!({"query": "q [dz tokens=100]"})).await;
    let first = read(&rt.base, &s, Resume::Start, Some(3)).await;
    assert_eq!(first.len(), 3);
    let second = reqwest::Client::new()
        .get(format!("{}/v1/sessions/{}/events", rt.base, s.id))
        .bearer_auth(&s.token)
        .send()
        .await
        .unwrap();
    assert_eq!(second.status(), 409);
    let body: serde_json::Value = second.json().await.unwrap();
    assert_eq!(body["error"]["type"], "resume_unsupported");
}
