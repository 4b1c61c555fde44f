//! The security review's checks (docs/security.md), one test per point: resume tokens and
//! API keys, the body limit, the request head limit and header read timeout (real TCP on
//! port 0), the per-session stream cap, fault endpoints off by default, and CORS.

#![allow(clippy::unwrap_used)] // tests fail loudly on setup errors

mod support;

use std::time::{Duration, Instant};

use axum::{
    body::Body,
    http::{Method, Request, StatusCode},
};
use dropzero_runtime::{AppState, Config, api::routes, app};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower::ServiceExt;

fn state(config: Config) -> AppState {
    AppState::new(config, support::memory())
}

async fn call(state: &AppState, req: Request<Body>) -> (StatusCode, axum::http::HeaderMap, Value) {
    let response = app(state.clone()).oneshot(req).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        headers,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn create(key: Option<&str>) -> Request<Body> {
    let mut req = Request::post("/v1/sessions").header("content-type", "application/json");
    if let Some(key) = key {
        req = req.header("x-api-key", key);
    }
    req.body(Body::from(r#"{"query":"x"}"#)).unwrap()
}

fn status_with(id: &str, token: &str) -> Request<Body> {
    Request::get(format!("/v1/sessions/{id}"))
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn resume_tokens_are_256_bit_and_checked_whole() {
    let st = state(Config::new("http://127.0.0.1:9"));
    let (s, _, created) = call(&st, create(None)).await;
    assert_eq!(s, StatusCode::CREATED);
    let id = created["session_id"].as_str().unwrap();
    let token = created["resume_token"].as_str().unwrap();
    let hex = token.strip_prefix("rt_").unwrap();
    assert_eq!(hex.len(), 64, "{token}");
    assert!(hex.bytes().all(|b| b.is_ascii_hexdigit()), "{token}");
    let last = token.chars().last().unwrap();
    let flipped = format!(
        "{}{}",
        &token[..token.len() - 1],
        if last == '0' { '1' } else { '0' }
    );
    for (given, expected) in [
        (token.to_string(), StatusCode::OK),
        (flipped, StatusCode::UNAUTHORIZED),
        (
            token[..token.len() - 1].to_string(),
            StatusCode::UNAUTHORIZED,
        ),
        (format!("{token}0"), StatusCode::UNAUTHORIZED),
        ("rt_".to_string(), StatusCode::UNAUTHORIZED),
    ] {
        let (s, _, b) = call(&st, status_with(id, &given)).await;
        assert_eq!(s, expected, "{given}: {b}");
    }
}

#[tokio::test]
async fn every_configured_api_key_is_accepted_and_nothing_else() {
    let mut config = Config::new("http://127.0.0.1:9");
    config.api_keys = vec!["key-one".into(), "key-two".into()];
    let st = state(config);
    for (key, expected) in [
        (Some("key-one"), StatusCode::CREATED),
        (Some("key-two"), StatusCode::CREATED),
        (Some("key-tw"), StatusCode::UNAUTHORIZED),
        (Some("key-two "), StatusCode::UNAUTHORIZED),
        (Some(""), StatusCode::UNAUTHORIZED),
        (None, StatusCode::UNAUTHORIZED),
    ] {
        let (s, _, b) = call(&st, create(key)).await;
        assert_eq!(s, expected, "{key:?}: {b}");
        if s == StatusCode::UNAUTHORIZED {
            assert_eq!(b["error"]["type"], "unauthorized");
        }
    }
}

#[tokio::test]
async fn bodies_over_the_limit_get_413_in_the_protocol_shape() {
    let mut config = Config::new("http://127.0.0.1:9");
    config.max_body = 1024;
    let st = state(config);
    let big = format!(r#"{{"query":"{}"}}"#, "a".repeat(4096));
    // Declared too large, and streamed without a length (chunked): both are cut at the limit.
    let declared = Request::post("/v1/sessions")
        .header("content-length", big.len())
        .body(Body::from(big.clone()))
        .unwrap();
    let chunks: Vec<Result<String, std::io::Error>> = big
        .as_bytes()
        .chunks(100)
        .map(|c| Ok(String::from_utf8(c.to_vec()).unwrap()))
        .collect();
    let streamed = Request::post("/v1/sessions")
        .body(Body::from_stream(futures::stream::iter(chunks)))
        .unwrap();
    for req in [declared, streamed] {
        let (s, _, b) = call(&st, req).await;
        assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{b}");
        assert_eq!(b["error"]["type"], "payload_too_large", "{b}");
        assert!(
            b["error"]["message"].as_str().unwrap().contains("1024"),
            "{b}"
        );
    }
}

/// A runtime on port 0 with `config`, for tests that need real connections.
async fn served(config: Config) -> support::Runtime {
    support::serve(config, support::memory()).await
}

fn addr(rt: &support::Runtime) -> String {
    rt.base.trim_start_matches("http://").to_string()
}

/// Send `request` on a new connection and read until the server closes it (at most 10 s).
async fn exchange(addr: &str, request: &[u8]) -> (String, Duration) {
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let started = Instant::now();
    tcp.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the server kept the connection open for 10 s");
    (
        String::from_utf8_lossy(&answer).into_owned(),
        started.elapsed(),
    )
}

#[tokio::test]
async fn request_heads_over_the_limit_get_431() {
    let mut config = Config::new("http://127.0.0.1:9");
    config.connection.max_header_bytes = 16 * 1024;
    let rt = served(config).await;
    let small = "GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n";
    let (answer, _) = exchange(&addr(&rt), small.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let big = format!(
        "GET /healthz HTTP/1.1\r\nhost: x\r\nx-filler: {}\r\nconnection: close\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    let (answer, _) = exchange(&addr(&rt), big.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    rt.shutdown.cancel();
}

#[tokio::test]
async fn slow_clients_are_cut_off_before_their_headers() {
    let timeout = Duration::from_millis(300);
    let mut config = Config::new("http://127.0.0.1:9");
    config.connection.header_read_timeout = timeout;
    let rt = served(config).await;
    // A whole request is answered, however close to the timeout the machine is.
    let whole = "GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n";
    let (answer, _) = exchange(&addr(&rt), whole.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // Half a request line, then nothing: the server closes the connection once the timeout
    // passed (never before), without answering the request.
    let (answer, took) = exchange(&addr(&rt), b"GET /healthz HT").await;
    assert!(
        took >= timeout,
        "closed after {took:?}, before the {timeout:?} timeout"
    );
    assert!(
        !answer.contains(" 200 "),
        "a half request was answered: {answer}"
    );
    rt.shutdown.cancel();
}

#[tokio::test]
async fn a_session_has_at_most_max_streams_open() {
    // Tokens 100 ms apart for 300 tokens: the session outlives the test.
    let llm = support::mock(support::profile(Duration::from_millis(100))).await;
    let mut config = Config::new(&llm.url);
    config.max_streams_per_session = 2;
    let rt = served(config).await;
    let s = support::create(&rt.base, json!({"query": "long [dz tokens=300]"})).await;
    let client = reqwest::Client::new();
    let open = || {
        client
            .get(format!("{}/v1/sessions/{}/events", rt.base, s.id))
            .bearer_auth(&s.token)
            .send()
    };
    let first = open().await.unwrap();
    let second = open().await.unwrap();
    assert_eq!(
        (first.status().as_u16(), second.status().as_u16()),
        (200, 200)
    );
    let third = open().await.unwrap();
    assert_eq!(third.status(), 429);
    assert_eq!(third.headers()["retry-after"], "1");
    let body: Value = third.json().await.unwrap();
    assert_eq!(body["error"]["type"], "too_many_streams", "{body}");
    // Another session has its own allowance.
    let other = support::create(&rt.base, json!({"query": "long [dz tokens=300]"})).await;
    let resp = client
        .get(format!("{}/v1/sessions/{}/events", rt.base, other.id))
        .bearer_auth(&other.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // A closed stream frees its slot as soon as the replica notices.
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let again = open().await.unwrap();
        if again.status() == 200 {
            break;
        }
        assert_eq!(again.status(), 429);
        assert!(
            Instant::now() < deadline,
            "the closed stream's slot was never freed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(second);
    rt.shutdown.cancel();
    llm.shutdown.cancel();
}

#[tokio::test]
async fn fault_endpoints_are_404_unless_enabled() {
    let config = Config::new("http://127.0.0.1:9");
    assert!(!config.fault_endpoints, "off by default");
    let has_oom = |c: &Config| routes(c).contains(&("/admin/oom", Method::POST));
    assert!(!has_oom(&config));
    let st = state(config.clone());
    let oom = Request::post("/admin/oom").body(Body::empty()).unwrap();
    let (s, _, b) = call(&st, oom).await;
    assert_eq!(
        (s, b["error"]["type"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    // Enabled, the route exists (calling it would abort this test process).
    let mut enabled = config;
    enabled.fault_endpoints = true;
    assert!(has_oom(&enabled));
}

#[tokio::test]
async fn cors_answers_only_configured_origins() {
    let mut config = Config::new("http://127.0.0.1:9");
    config.cors_origins = vec!["https://app.example".into()];
    let configured = state(config);
    let unconfigured = state(Config::new("http://127.0.0.1:9"));
    let preflight = |origin: &str| {
        Request::options("/v1/sessions")
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .body(Body::empty())
            .unwrap()
    };
    let simple = |origin: &str| {
        Request::get("/healthz")
            .header("origin", origin)
            .body(Body::empty())
            .unwrap()
    };
    for (st, origin, allowed) in [
        (&configured, "https://app.example", true),
        (&configured, "https://evil.example", false),
        (&configured, "https://app.example.evil.example", false),
        (&configured, "null", false),
        (&unconfigured, "https://app.example", false),
    ] {
        for req in [preflight(origin), simple(origin)] {
            let what = format!("{} {origin}", req.method());
            let (_, h, _) = call(st, req).await;
            let got = h.get("access-control-allow-origin");
            if allowed {
                assert_eq!(got.unwrap(), origin, "{what}");
            } else {
                assert!(got.is_none(), "{what}: {got:?}");
            }
        }
    }
    // `*` is any origin (and does not panic, as a wildcard inside tower-http's list would).
    let mut config = Config::new("http://127.0.0.1:9");
    config.cors_origins = vec!["https://app.example".into(), "*".into()];
    let any = state(config);
    let (_, h, _) = call(&any, simple("https://elsewhere.example")).await;
    assert_eq!(h.get("access-control-allow-origin").unwrap(), "*");
}
