//! Agent behaviour against the mock LLM: retries with prefill, budgets, cancel, naive mode.

#![allow(clippy::unwrap_used)] // tests fail loudly on setup errors

mod support;

use std::time::Duration;

use dropzero_runtime::config::LlmClientKind;
use dropzero_runtime::{Config, Mode};
use serde_json::json;
use support::{Resume, create, digest, memory, read, serve, verify};

async fn run_once(faults: Option<serde_json::Value>, query: &str) -> Vec<support::Ev> {
    run_with_retries(faults, query, 8).await
}

async fn run_with_retries(
    faults: Option<serde_json::Value>,
    query: &str,
    max_retries: u32,
) -> Vec<support::Ev> {
    run_with_client(faults, query, max_retries, LlmClientKind::Lean).await
}

async fn run_with_client(
    faults: Option<serde_json::Value>,
    query: &str,
    max_retries: u32,
    client: LlmClientKind,
) -> Vec<support::Ev> {
    let mock = support::mock(support::profile(Duration::ZERO)).await;
    let mut config = Config::new(&mock.url);
    config.retry.max_retries = max_retries;
    config.llm_client = client;
    let rt = serve(config, memory()).await;
    if let Some(spec) = faults {
        mock.faults(spec).await;
    }
    let s = create(&rt.base, json!({"query": query})).await;
    read(&rt.base, &s, Resume::Start, None).await
}

#[tokio::test]
async fn cut_streams_are_retried_with_prefill_and_no_token_repeats() {
    let query = "cut me [dz tokens=30] [dz steps=1]";
    let clean = run_once(None, query).await;
    // Every response is cut after 10 tokens: each retry continues where the last stopped.
    let events = run_once(
        Some(json!({"cut_after_tokens": 10, "duration_ms": 2000})),
        query,
    )
    .await;
    let done = verify(&events, 1);
    assert_eq!(done["status"], "completed", "{events:#?}");
    assert!(
        events
            .iter()
            .any(|e| e.kind == "step" && e.data["state"] == "retrying")
    );
    assert_eq!(
        digest(&events),
        digest(&clean),
        "same text as without the cut"
    );
    let tokens = |evs: &[support::Ev]| evs.iter().filter(|e| e.kind == "token").count();
    assert_eq!(tokens(&events), tokens(&clean));
}

/// The lean LLM client (plain `http://`, the default) and reqwest (`https://`, or
/// `--llm-client reqwest`) give the same session: the same events and text, whether the
/// LLM streams cleanly, cuts every response, or answers 529 for a while.
#[tokio::test]
async fn both_llm_clients_give_the_same_session() {
    let query = "both clients [dz tokens=30] [dz steps=1]";
    let cases = [
        None,
        Some(json!({"cut_after_tokens": 10, "duration_ms": 2000})),
        Some(json!({"overloaded": 1.0, "duration_ms": 300})),
    ];
    for faults in cases {
        let mut runs = Vec::new();
        for client in [LlmClientKind::Lean, LlmClientKind::Reqwest] {
            let events = run_with_client(faults.clone(), query, 40, client).await;
            assert_eq!(
                verify(&events, 1)["status"],
                "completed",
                "{client:?}, {faults:?}: {events:#?}"
            );
            let tokens = events.iter().filter(|e| e.kind == "token").count();
            let retried = events
                .iter()
                .any(|e| e.kind == "step" && e.data["state"] == "retrying");
            runs.push((digest(&events), tokens, retried));
        }
        assert_eq!(runs[0], runs[1], "lean vs reqwest with faults {faults:?}");
        assert_eq!(
            runs[0].2,
            faults.is_some(),
            "a fault is retried: {faults:?}"
        );
    }
}

#[tokio::test]
async fn overloaded_is_retried() {
    // The window must still be open when the first call arrives on a loaded machine (30 ms
    // was not), and the retries must outlast it: 40 retries with full jitter on a 200 ms cap
    // wait about 7.5 s in all, far beyond the 500 ms window.
    let events = run_with_retries(
        Some(json!({"overloaded": 1.0, "duration_ms": 500})),
        "busy [dz tokens=6] [dz steps=1]",
        40,
    )
    .await;
    assert_eq!(verify(&events, 1)["status"], "completed", "{events:#?}");
    let retry = events
        .iter()
        .find(|e| e.kind == "step" && e.data["state"] == "retrying")
        .expect("a retrying event");
    assert!(retry.data["error"].as_str().unwrap().contains("529"));
}

#[tokio::test]
async fn runaway_agent_is_cut_at_the_budget() {
    let mock = support::mock(support::profile(Duration::ZERO)).await;
    let rt = serve(Config::new(&mock.url), memory()).await;
    let budget = 300;
    let s = create(
        &rt.base,
        json!({"query": "loop [dz runaway] [dz steps=1]", "budget": {"max_output_tokens": budget}}),
    )
    .await;
    let events = read(&rt.base, &s, Resume::Start, None).await;
    let done = verify(&events, 1);
    assert_eq!(done["status"], "budget_exceeded", "{done}");
    let output = done["usage"]["output_tokens"].as_u64().unwrap();
    let billed = mock.billed(&s.id).await;
    assert_eq!(
        billed["output_tokens"].as_u64().unwrap(),
        output,
        "{billed}"
    );
    // Overshoot at most one call: the usage before the last call was under the budget.
    let usages: Vec<u64> = events
        .iter()
        .filter(|e| e.kind == "usage")
        .map(|e| e.data["output_tokens"].as_u64().unwrap())
        .collect();
    assert!(usages.len() > 3, "the agent looped: {usages:?}");
    assert!(
        usages[usages.len() - 2] < budget && output >= budget,
        "{usages:?}"
    );
}

#[tokio::test]
async fn duration_budget_stops_a_slow_session() {
    let mock = support::mock(support::profile(Duration::from_millis(20))).await;
    let llm = &mock.url;
    let rt = serve(Config::new(llm), memory()).await;
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
    let mock = support::mock(support::profile(Duration::from_millis(10))).await;
    let llm = &mock.url;
    let rt = serve(Config::new(llm), memory()).await;
    let s = create(
        &rt.base,
        json!({"query": "long [dz tokens=1000] [dz steps=3]"}),
    )
    .await;
    let first = read(&rt.base, &s, Resume::Start, Some(8)).await;
    let response = reqwest::Client::new()
        .delete(format!("{}/v1/sessions/{}", rt.base, s.id))
        .bearer_auth(&s.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let rest = read(
        &rt.base,
        &s,
        Resume::Header(first.last().unwrap().seq),
        None,
    )
    .await;
    let all: Vec<_> = first.into_iter().chain(rest).collect();
    let done = verify(&all, 1);
    assert_eq!(done["status"], "cancelled");
    assert!(
        all.iter()
            .any(|e| e.kind == "step" && e.data["state"] == "cancelled")
    );
    let billed = mock.billed(&s.id).await["output_tokens"].as_u64().unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let later = mock.billed(&s.id).await["output_tokens"].as_u64().unwrap();
    assert_eq!(later, billed, "no LLM calls after done");
    assert!(billed < 1000);
}

#[tokio::test]
async fn naive_mode_refuses_a_second_stream() {
    let mock = support::mock(support::profile(Duration::from_millis(5))).await;
    let llm = &mock.url;
    let mut config = Config::new(llm);
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
    // The first stream's client went away (read returned and dropped it): the session is
    // cancelled, and its LLM calls stop.
    let status_url = format!("{}/v1/sessions/{}?token={}", rt.base, s.id, s.token);
    let mut status = String::new();
    for _ in 0..100 {
        let v: serde_json::Value = reqwest::get(&status_url)
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        status = v["status"].as_str().unwrap().to_string();
        if status != "running" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(status, "cancelled");
}

/// Start a session, take the mock down for `window` once it streams, and read to the end.
async fn through_outage(
    config: Config,
    mock: &support::Mock,
    window: Duration,
) -> Vec<support::Ev> {
    let rt = serve(config, memory()).await;
    let s = create(
        &rt.base,
        json!({"query": "outage [dz tokens=40] [dz steps=1]"}),
    )
    .await;
    let reader = {
        let base = rt.base.clone();
        tokio::spawn(async move { read(&base, &s, Resume::Start, None).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let r = reqwest::Client::new()
        .post(format!("{}/mock/outage", mock.url))
        .json(&json!({"duration_ms": window.as_millis() as u64}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    reader.await.unwrap()
}

#[tokio::test]
async fn an_llm_outage_is_waited_out_without_using_up_retries() {
    let query = "outage [dz tokens=40] [dz steps=1]";
    let clean = run_once(None, query).await;
    let mock = support::mock(support::profile(Duration::from_millis(20))).await;
    let mut config = Config::new(&mock.url);
    // A 1.5 s outage at ≤ 200 ms backoff is many refused attempts: more than 2 if counted.
    config.retry.max_retries = 2;
    config.retry.outage_wait = Duration::from_secs(30);
    let events = through_outage(config, &mock, Duration::from_millis(1500)).await;
    let done = verify(&events, 1);
    assert_eq!(done["status"], "completed", "{events:#?}");
    let refused = events
        .iter()
        .filter(|e| e.kind == "step" && e.data["state"] == "retrying")
        .filter(|e| {
            e.data["error"]
                .as_str()
                .unwrap()
                .contains("connection failed")
        })
        .count();
    assert!(
        refused > 2,
        "{refused} retries after refused connections: {events:#?}"
    );
    assert_eq!(
        digest(&events),
        digest(&clean),
        "same text as without the outage"
    );
}

#[tokio::test]
async fn an_llm_outage_longer_than_the_wait_fails_the_session_clearly() {
    let mock = support::mock(support::profile(Duration::from_millis(20))).await;
    let mut config = Config::new(&mock.url);
    config.retry.outage_wait = Duration::from_millis(300);
    let events = through_outage(config, &mock, Duration::from_secs(5)).await;
    let done = verify(&events, 1);
    assert_eq!(done["status"], "failed", "{events:#?}");
    // The failed step (or the planner, if the outage caught the session planning) and the
    // done event's reason say why.
    let why: Vec<&support::Ev> = events
        .iter()
        .filter(|e| e.data.to_string().contains("unreachable"))
        .collect();
    assert!(
        !why.is_empty(),
        "no event says the LLM was unreachable: {events:#?}"
    );
    mock.shutdown.cancel();
}
