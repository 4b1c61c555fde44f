//! Full sessions over real HTTP against the mock LLM: events, digest, resume at every seq.

#![allow(clippy::unwrap_used)] // tests fail loudly on setup errors

mod support;

use std::time::Duration;

use dropzero_runtime::Config;
use serde_json::json;
use support::{Resume, create, digest, memory, read, serve, verify};

#[tokio::test]
async fn session_completes_and_resumes_at_every_seq() {
    let llm = support::mock(support::profile(Duration::ZERO)).await;
    let llm = &llm.url;
    let rt = serve(Config::new(llm), memory()).await;
    let s = create(
        &rt.base,
        json!({"query": "explain [dz tokens=12] [dz tool=search]"}),
    )
    .await;
    let all = read(&rt.base, &s, Resume::Start, None).await;
    let done = verify(&all, 1);
    assert_eq!(done["status"], "completed", "{all:#?}");
    assert_eq!(done["content_sha256"], json!(digest(&all)));
    assert_eq!(all[0].kind, "session");
    let kinds: Vec<&str> = all.iter().map(|e| e.kind.as_str()).collect();
    let plan_at = kinds.iter().position(|k| *k == "plan").unwrap();
    assert!(plan_at < kinds.iter().position(|k| *k == "step").unwrap());
    assert_eq!(kinds.iter().filter(|k| **k == "token").count(), 12);
    assert!(
        kinds.contains(&"tool") && kinds.contains(&"usage"),
        "{kinds:?}"
    );
    let last = done["last_seq"].as_u64().unwrap();
    for k in 0..=last {
        for resume in [Resume::Header(k), Resume::Query(k)] {
            let tail = read(&rt.base, &s, resume, None).await;
            assert_eq!(tail, all[k as usize..].to_vec(), "resume {resume:?}");
        }
    }
}

#[tokio::test]
async fn resume_mid_session_loses_and_repeats_nothing() {
    let mock = support::mock(support::profile(Duration::from_millis(2))).await;
    let llm = &mock.url;
    let rt = serve(Config::new(llm), memory()).await;
    let s = create(
        &rt.base,
        json!({"query": "long [dz tokens=60] [dz steps=3]"}),
    )
    .await;
    let mut seen = Vec::new();
    loop {
        let after = seen.last().map_or(0, |e: &support::Ev| e.seq);
        let part = read(&rt.base, &s, Resume::Header(after), Some(7)).await;
        let finished = part.last().is_some_and(|e| e.kind == "done");
        seen.extend(part);
        if finished {
            break;
        }
    }
    let done = verify(&seen, 1);
    assert_eq!(done["status"], "completed");
    assert_eq!(done["content_sha256"], json!(digest(&seen)));
}

#[tokio::test]
async fn silence_is_filled_with_keepalives() {
    let mut slow = support::profile(Duration::ZERO);
    slow.ttft = dropzero_runtime::mock::LatencySpec {
        median: Duration::from_millis(400),
        p99: Duration::from_millis(500),
    };
    let mock = support::mock(slow).await;
    let mut config = Config::new(&mock.url);
    config.keepalive = Duration::from_millis(40);
    let rt = serve(config, memory()).await;
    let s = create(
        &rt.base,
        json!({"query": "wait [dz tokens=3] [dz steps=1]"}),
    )
    .await;
    let mut response = reqwest::Client::new()
        .get(format!(
            "{}/v1/sessions/{}/events?token={}",
            rt.base, s.id, s.token
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    assert_eq!(response.headers()["cache-control"], "no-cache");
    let mut body = String::new();
    while !body.contains(": keepalive\n\n") {
        let chunk = tokio::time::timeout(Duration::from_secs(5), response.chunk())
            .await
            .expect("bytes within 5 s")
            .unwrap()
            .expect("stream still open");
        body.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    assert!(body.starts_with("retry: 1000\n\n"), "{body}");
}
