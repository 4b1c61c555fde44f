//! Operational signals: ECS scale-in protection follows the local session count (against a
//! stub standing in for the ECS agent's documented endpoint), the lease and takeover metrics
//! are exported, and fault endpoints do not exist unless asked for.

#![allow(clippy::unwrap_used)] // tests fail loudly on setup errors

mod support;

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{Json, Router, extract::State, routing::put};
use dropzero_runtime::Config;
use serde_json::{Value, json};
use support::{Resume, create, memory, read, serve, verify};

type Calls = Arc<Mutex<Vec<Value>>>;

/// The ECS agent's task-protection endpoint, recording every request body.
async fn ecs_agent() -> (String, Calls) {
    let calls = Calls::default();
    let app = Router::new()
        .route(
            "/task-protection/v1/state",
            put(
                |State(calls): State<Calls>, Json(body): Json<Value>| async move {
                    calls.lock().unwrap().push(body.clone());
                    Json(json!({"protection": {"ProtectionEnabled": body["ProtectionEnabled"]}}))
                },
            ),
        )
        .with_state(calls.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let uri = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (uri, calls)
}

async fn wait_for_calls(calls: &Calls, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let seen = calls.lock().unwrap().clone();
        if seen.len() >= n || Instant::now() > deadline {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_in_protection_follows_the_sessions() {
    let mock = support::mock(support::profile(Duration::from_millis(2))).await;
    let (uri, calls) = ecs_agent().await;
    let mut config = Config::new(&mock.url);
    config.protection.ecs_agent_uri = Some(uri);
    config.protection.debounce = Duration::from_millis(300);
    let rt = serve(config, memory()).await;
    assert!(calls.lock().unwrap().is_empty(), "idle: no call");

    // Two sessions back to back: protection goes on once, and off only after the debounce.
    for query in ["first [dz tokens=20]", "second [dz tokens=20]"] {
        let s = create(&rt.base, json!({"query": query})).await;
        verify(&read(&rt.base, &s, Resume::Start, None).await, 1);
    }
    let seen = wait_for_calls(&calls, 2).await;
    assert_eq!(
        seen,
        [
            json!({"ProtectionEnabled": true, "ExpiresInMinutes": 120}),
            json!({"ProtectionEnabled": false, "ExpiresInMinutes": 120}),
        ]
    );
    let metrics = reqwest::get(format!("{}/metrics", rt.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("dropzero_scale_in_protected 0"),
        "{metrics}"
    );
}

#[tokio::test]
async fn metrics_export_leases_and_takeovers() {
    let rt = serve(Config::new("http://127.0.0.1:1"), memory()).await;
    let metrics = reqwest::get(format!("{}/metrics", rt.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "dropzero_takeovers_total{reason=\"released\"} 0",
        "dropzero_takeovers_total{reason=\"lease_expired\"} 0",
        "dropzero_handoffs_total 0",
        "dropzero_lease_heartbeat_failures_total 0",
        "dropzero_scale_in_protected 0",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in\n{metrics}");
    }
}

#[tokio::test]
async fn fault_endpoints_are_off_by_default() {
    let rt = serve(Config::new("http://127.0.0.1:1"), memory()).await;
    let response = reqwest::Client::new()
        .post(format!("{}/admin/oom", rt.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "not_found");
}
