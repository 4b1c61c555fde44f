//! The runtime on ECS names itself by its task id: against a real local HTTP server standing
//! in for the task metadata endpoint v4 (`GET ${ECS_CONTAINER_METADATA_URI_V4}/task`,
//! the documented response shape), the id reaches the `x-dropzero-replica` header, the
//! `session` event and `/metrics`; a failing endpoint leaves the random id.

#![allow(clippy::unwrap_used)] // tests fail loudly on setup errors

mod support;

use std::time::Duration;

use axum::{Router, http::StatusCode, response::IntoResponse, routing::get};
use dropzero_runtime::{Config, ecs};
use serde_json::json;
use support::{Resume, create, memory, read, serve, verify};

const TASK_ID: &str = "0f1e2d3c4b5a49688796a1b2c3d4e5f6";

/// What the stand-in endpoint answers.
type Answer = fn() -> axum::response::Response;

/// A task metadata endpoint answering `/task` with `answer`; returns its base URI, shaped
/// like ECS's (`http://169.254.170.2/v4/<container-id>`).
async fn metadata_endpoint(answer: Answer) -> String {
    let app = Router::new().route("/v4/abc123-1234/task", get(move || async move { answer() }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let uri = format!("http://{}/v4/abc123-1234", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    uri
}

fn task_metadata() -> axum::response::Response {
    // An excerpt of a Fargate task metadata v4 response.
    axum::Json(json!({
        "Cluster": "arn:aws:ecs:eu-west-1:123456789012:cluster/agents",
        "TaskARN": format!("arn:aws:ecs:eu-west-1:123456789012:task/agents/{TASK_ID}"),
        "Family": "agents",
        "Revision": "7",
        "DesiredStatus": "RUNNING",
        "KnownStatus": "RUNNING",
        "LaunchType": "FARGATE",
        "AvailabilityZone": "eu-west-1a",
        "Containers": [],
    }))
    .into_response()
}

#[tokio::test]
async fn names_itself_by_the_task_id() {
    let uri = metadata_endpoint(task_metadata).await;
    let id = ecs::replica_id(None, Some(&uri), ecs::METADATA_TIMEOUT).await;
    assert_eq!(id.as_deref(), Some(TASK_ID));
    // A trailing slash on the variable is tolerated.
    let id = ecs::task_id(&format!("{uri}/"), ecs::METADATA_TIMEOUT)
        .await
        .unwrap();
    assert_eq!(id, TASK_ID);
    // An explicit --replica-id wins; no variable means not on ECS.
    assert_eq!(
        ecs::replica_id(Some("r1"), Some(&uri), ecs::METADATA_TIMEOUT).await,
        None
    );
    assert_eq!(
        ecs::replica_id(None, None, ecs::METADATA_TIMEOUT).await,
        None
    );
    assert_eq!(
        ecs::replica_id(None, Some(""), ecs::METADATA_TIMEOUT).await,
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_task_id_is_on_streams_and_metrics() {
    let uri = metadata_endpoint(task_metadata).await;
    let mock = support::mock(support::profile(Duration::from_millis(2))).await;
    let mut config = Config::new(&mock.url);
    config.replica_id = ecs::replica_id(None, Some(&uri), ecs::METADATA_TIMEOUT)
        .await
        .unwrap();
    let rt = serve(config, memory()).await;
    let s = create(&rt.base, json!({"query": "hello [dz tokens=5]"})).await;
    let events = read(&rt.base, &s, Resume::Start, None).await;
    verify(&events, 1);
    let session = events.iter().find(|e| e.kind == "session").unwrap();
    assert_eq!(session.data["replica_id"], TASK_ID);
    let response = reqwest::get(format!("{}/healthz", rt.base)).await.unwrap();
    assert_eq!(response.headers()["x-dropzero-replica"], TASK_ID);
    let metrics = response_text(&format!("{}/metrics", rt.base)).await;
    assert!(
        metrics.contains(&format!("replica_id=\"{TASK_ID}\"")),
        "{metrics}"
    );
}

async fn response_text(url: &str) -> String {
    reqwest::get(url).await.unwrap().text().await.unwrap()
}

#[tokio::test]
async fn a_failing_endpoint_is_a_clear_error_and_no_name() {
    let cases: [(Answer, &str); 3] = [
        (
            || StatusCode::INTERNAL_SERVER_ERROR.into_response(),
            "HTTP 500",
        ),
        (
            || "not json".into_response(),
            "not task metadata with a TaskARN",
        ),
        (
            || {
                axum::Json(json!({"TaskARN": "arn:aws:ecs:eu-west-1:1:task/agents/"}))
                    .into_response()
            },
            "has no task id",
        ),
    ];
    for (answer, expected) in cases {
        let uri = metadata_endpoint(answer).await;
        let err = ecs::task_id(&uri, ecs::METADATA_TIMEOUT).await.unwrap_err();
        assert!(err.to_string().contains(expected), "{err}");
        assert!(
            err.to_string().contains(&uri),
            "the error names the URL: {err}"
        );
        assert_eq!(
            ecs::replica_id(None, Some(&uri), ecs::METADATA_TIMEOUT).await,
            None
        );
    }
    // Nothing listening: a connection error, not a hang.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/v4/x", listener.local_addr().unwrap())
    };
    assert!(ecs::task_id(&closed, ecs::METADATA_TIMEOUT).await.is_err());
}

#[tokio::test]
async fn a_silent_endpoint_times_out() {
    // Accepts the connection and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let uri = format!("http://{}/v4/x", listener.local_addr().unwrap());
    let _keep = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let started = std::time::Instant::now();
    let err = ecs::task_id(&uri, Duration::from_millis(300))
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(matches!(err, ecs::MetadataError::Request { .. }), "{err}");
}
