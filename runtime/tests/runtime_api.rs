//! Handler tests through `app(...).oneshot`: status codes and error bodies of protocol §1.

#![allow(clippy::unwrap_used)] // tests fail loudly on setup errors

mod support;

use axum::{
    body::Body,
    http::{Request, StatusCode},
};
use dropzero_runtime::{AppState, Config, app};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

fn state(config: Config) -> AppState {
    // The LLM URL is never reached in these tests' assertions.
    AppState::new(config, support::memory())
}

async fn call(state: &AppState, req: Request<Body>) -> (StatusCode, axum::http::HeaderMap, Value) {
    let response = app(state.clone()).oneshot(req).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, headers, body)
}

fn post(body: &str) -> axum::http::request::Builder {
    let _ = body;
    Request::post("/v1/sessions").header("content-type", "application/json")
}

fn create_req(body: &str) -> Request<Body> {
    post(body).body(Body::from(body.to_string())).unwrap()
}

#[tokio::test]
async fn create_is_idempotent_per_key() {
    let st = state(Config::new("http://127.0.0.1:9"));
    let req = |key: &str| {
        Request::post("/v1/sessions")
            .header("idempotency-key", key)
            .body(Body::from(r#"{"query":"hi"}"#))
            .unwrap()
    };
    let (s1, _, b1) = call(&st, req("k1")).await;
    assert_eq!(s1, StatusCode::CREATED);
    assert!(b1["session_id"].as_str().unwrap().starts_with("s_"));
    assert_eq!(
        b1["events_url"],
        json!(format!(
            "/v1/sessions/{}/events",
            b1["session_id"].as_str().unwrap()
        ))
    );
    let (s2, _, b2) = call(&st, req("k1")).await;
    assert_eq!(s2, StatusCode::OK);
    assert_eq!(b1, b2);
    let (s3, _, b3) = call(&st, req("k2")).await;
    assert_eq!(s3, StatusCode::CREATED);
    assert_ne!(b1["session_id"], b3["session_id"]);
}

#[tokio::test]
async fn bad_bodies_name_the_field() {
    let st = state(Config::new("http://127.0.0.1:9"));
    for (body, field) in [
        (r#"{"query":"x","bogus":1}"#, Some("bogus")),
        (
            r#"{"query":"x","budget":{"max_cost_usd":"lots"}}"#,
            Some("budget.max_cost_usd"),
        ),
        (r#"{"query":"x","budget":{"nope":1}}"#, Some("budget.nope")),
        (r#"{"query":""}"#, Some("query")),
        (r#"{"query":7}"#, Some("query")),
        (r#"{}"#, Some("query")),
        (r#"{"query":"#, Some("query")),
        (r#"7"#, None),
    ] {
        let (status, _, b) = call(&st, create_req(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(b["error"]["type"], "invalid_request", "{body}");
        assert_eq!(b["error"]["field"].as_str(), field, "{body}: {b}");
    }
}

#[tokio::test]
async fn api_key_and_body_limit() {
    let mut config = Config::new("http://127.0.0.1:9");
    config.api_keys = vec!["secret".into()];
    config.max_body = 100;
    let st = state(config);
    let (status, _, b) = call(&st, create_req(r#"{"query":"x"}"#)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(b["error"]["type"], "unauthorized");
    let ok = Request::post("/v1/sessions")
        .header("x-api-key", "secret")
        .body(Body::from(r#"{"query":"x"}"#))
        .unwrap();
    assert_eq!(call(&st, ok).await.0, StatusCode::CREATED);
    let big = format!(r#"{{"query":"{}"}}"#, "a".repeat(200));
    let req = Request::post("/v1/sessions")
        .header("x-api-key", "secret")
        .body(Body::from(big))
        .unwrap();
    let (status, _, b) = call(&st, req).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(b["error"]["type"], "payload_too_large");
}

#[tokio::test]
async fn tokens_unknown_sessions_and_last_event_id() {
    let st = state(Config::new("http://127.0.0.1:9"));
    let (_, _, created) = call(&st, create_req(r#"{"query":"x"}"#)).await;
    let id = created["session_id"].as_str().unwrap();
    let token = created["resume_token"].as_str().unwrap();
    let get = |uri: String, auth: Option<&str>, last: Option<&str>| {
        let mut b = Request::get(uri);
        if let Some(a) = auth {
            b = b.header("authorization", format!("Bearer {a}"));
        }
        if let Some(l) = last {
            b = b.header("last-event-id", l);
        }
        b.body(Body::empty()).unwrap()
    };
    let events = format!("/v1/sessions/{id}/events");
    for (req, status, kind) in [
        (get(events.clone(), None, None), 401, "unauthorized"),
        (
            get(events.clone(), Some("rt_wrong"), None),
            401,
            "unauthorized",
        ),
        (
            get(format!("/v1/sessions/{id}"), None, None),
            401,
            "unauthorized",
        ),
        (
            get("/v1/sessions/s_nope/events".into(), Some(token), None),
            404,
            "not_found",
        ),
        (
            get("/v1/sessions/s_nope".into(), Some(token), None),
            404,
            "not_found",
        ),
        (
            get(events.clone(), Some(token), Some("abc")),
            400,
            "invalid_last_event_id",
        ),
        (
            get(events.clone(), Some(token), Some("-1")),
            400,
            "invalid_last_event_id",
        ),
        (
            get(events.clone(), Some(token), Some("999999")),
            400,
            "invalid_last_event_id",
        ),
        (
            get(format!("{events}?after=x&token={token}"), None, None),
            400,
            "invalid_last_event_id",
        ),
    ] {
        let uri = req.uri().clone();
        let (s, _, b) = call(&st, req).await;
        assert_eq!(s.as_u16(), status, "{uri}: {b}");
        assert_eq!(b["error"]["type"], kind, "{uri}");
    }
    let (s, _, b) = call(
        &st,
        get(format!("/v1/sessions/{id}?token={token}"), None, None),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["session_id"], id);
    let del = Request::delete(format!("/v1/sessions/{id}"))
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let (s, _, b) = call(&st, del).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    assert_eq!(b["status"], "cancelling");
}

#[tokio::test]
async fn health_ready_metrics_and_cors() {
    let mut config = Config::new("http://127.0.0.1:9");
    config.cors_origins = vec!["http://app.example".into()];
    let st = state(config);
    let (s, _, b) = call(&st, Request::get("/healthz").body(Body::empty()).unwrap()).await;
    assert_eq!((s, b), (StatusCode::OK, json!({"status": "ok"})));
    let (s, _, _) = call(&st, Request::get("/readyz").body(Body::empty()).unwrap()).await;
    assert_eq!(s, StatusCode::OK);
    let response = app(st.clone())
        .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let text = String::from_utf8(
        response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap();
    for name in [
        "dropzero_replica_info{",
        "dropzero_active_sessions ",
        "dropzero_open_streams ",
        "dropzero_sessions_total{outcome=\"completed\"}",
        "dropzero_tokens_total{direction=\"output\"}",
        "dropzero_draining 0",
        "dropzero_journal_append_seconds_bucket{le=\"+Inf\"}",
        "dropzero_llm_requests_total{result=\"retried\"}",
    ] {
        assert!(text.contains(name), "{name} missing from\n{text}");
    }
    let preflight = Request::options("/v1/sessions")
        .header("origin", "http://app.example")
        .header("access-control-request-method", "POST")
        .body(Body::empty())
        .unwrap();
    let (_, h, _) = call(&st, preflight).await;
    assert_eq!(h["access-control-allow-origin"], "http://app.example");
    st.drain.start(0);
    let (s, _, b) = call(&st, Request::get("/readyz").body(Body::empty()).unwrap()).await;
    assert_eq!(
        (s, b),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": "draining"})
        )
    );
    let (s, h, b) = call(&st, create_req(r#"{"query":"x"}"#)).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(b["error"]["type"], "draining");
    assert!(h.contains_key("retry-after"));
}
