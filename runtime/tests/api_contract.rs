//! The API contract (`docs/openapi.yaml`, served at `/openapi.json`) against the code: it
//! parses, every `$ref` resolves, it describes exactly the routes of the runtime's route
//! table, the mock's control paths it lists are served, and every documented error is in
//! the protocol's JSON error shape — as are the errors axum would otherwise answer in
//! plain text (wrong method, unknown path, a malformed path segment).

#![allow(clippy::unwrap_used)] // tests fail loudly on setup errors

mod support;

use std::collections::BTreeSet;

use axum::{
    body::Body,
    http::{Method, Request, StatusCode, header},
};
use dropzero_runtime::{AppState, Config, api, app};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

fn doc() -> Value {
    api::openapi::document().unwrap()
}

fn config() -> Config {
    let mut config = Config::new("http://127.0.0.1:9");
    // The contract describes the fault endpoints too (documented as 404 without the flag).
    config.fault_endpoints = true;
    config
}

async fn call(state: &AppState, req: Request<Body>) -> (StatusCode, Option<String>, Value) {
    let response = app(state.clone()).oneshot(req).await.unwrap();
    let status = response.status();
    let kind = response
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_string());
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        kind,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// (path, method) of every operation, split into the runtime's and the mock's (those whose
/// path item names the mock LLM's server).
/// A set of (path, method) pairs.
type Operations = BTreeSet<(String, String)>;

fn operations(doc: &Value) -> (Operations, Operations) {
    let mut runtime = BTreeSet::new();
    let mut mock = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        let on_mock = item.get("servers").is_some();
        for method in item.as_object().unwrap().keys() {
            if ["get", "post", "put", "delete", "patch", "head", "options"].contains(&&**method) {
                let op = (path.clone(), method.to_uppercase());
                if on_mock {
                    mock.insert(op);
                } else {
                    runtime.insert(op);
                }
            }
        }
    }
    (runtime, mock)
}

#[test]
fn the_document_is_openapi_3_1_and_every_ref_resolves() {
    let doc = doc();
    assert_eq!(doc["openapi"], "3.1.0");
    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    assert!(refs.len() > 20, "expected many $refs, found {}", refs.len());
    for r in refs {
        let pointer = r
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("{r}: only local refs"));
        assert!(doc.pointer(pointer).is_some(), "{r} does not resolve");
    }
}

fn collect_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("$ref") {
                out.push(r.clone());
            }
            map.values().for_each(|v| collect_refs(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

#[test]
fn the_document_describes_exactly_the_runtimes_routes() {
    let (documented, _) = operations(&doc());
    let served: Operations = api::routes(&config())
        .into_iter()
        .map(|(path, method)| (path.to_string(), method.to_string()))
        .collect();
    let missing: Vec<_> = served.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "served but not in docs/openapi.yaml: {missing:?}"
    );
    let extra: Vec<_> = documented.difference(&served).collect();
    assert!(
        extra.is_empty(),
        "in docs/openapi.yaml but not served: {extra:?}"
    );
}

#[test]
fn every_documented_error_is_the_json_error_shape() {
    let doc = doc();
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let Some(responses) = op.get("responses").and_then(Value::as_object) else {
                continue;
            };
            for (status, response) in responses {
                if !(status.starts_with('4') || status.starts_with('5')) {
                    continue;
                }
                let response = resolve(&doc, response);
                let schema = &response["content"]["application/json"]["schema"]["$ref"];
                // /readyz's 503 is its documented readiness body, not an error.
                if path == "/readyz" {
                    continue;
                }
                assert_eq!(
                    schema, "#/components/schemas/Error",
                    "{method} {path} {status} must be the Error shape"
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 20, "only {checked} error responses checked");
}

fn resolve<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
    match v.get("$ref").and_then(Value::as_str) {
        Some(r) => doc.pointer(&r[1..]).unwrap(),
        None => v,
    }
}

#[tokio::test]
async fn the_runtime_serves_the_document_as_json() {
    let st = AppState::new(Config::new("http://127.0.0.1:9"), support::memory());
    let req = Request::get("/openapi.json").body(Body::empty()).unwrap();
    let (status, kind, body) = call(&st, req).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(kind.as_deref(), Some("application/json"));
    assert_eq!(body, doc());
}

#[tokio::test]
async fn every_route_in_the_table_is_routed() {
    let st = AppState::new(config(), support::memory());
    for (path, method) in api::routes(&config()) {
        if path == "/admin/oom" {
            continue; // it would allocate until this test process dies
        }
        let uri = path.replace("{id}", "s_unknown");
        let req = Request::builder()
            .method(method.clone())
            .uri(&uri)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from("{}"))
            .unwrap();
        let (status, _, body) = call(&st, req).await;
        assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {uri}");
        assert_ne!(
            body["error"]["message"], "no such endpoint",
            "{method} {uri}"
        );
    }
}

#[tokio::test]
async fn router_level_errors_are_json() {
    let st = AppState::new(Config::new("http://127.0.0.1:9"), support::memory());
    for (method, uri, status, kind) in [
        (Method::PUT, "/v1/sessions", 405, "method_not_allowed"),
        (Method::POST, "/healthz", 405, "method_not_allowed"),
        (Method::GET, "/nope", 404, "not_found"),
        (Method::POST, "/admin/oom", 404, "not_found"),
        // %FF is not UTF-8: axum's path rejection, in our shape.
        (Method::GET, "/v1/sessions/%FF", 400, "invalid_request"),
        (
            Method::GET,
            "/v1/sessions/%FF/events",
            400,
            "invalid_request",
        ),
    ] {
        let req = Request::builder()
            .method(method.clone())
            .uri(uri)
            .body(Body::empty())
            .unwrap();
        let (got, content_type, body) = call(&st, req).await;
        assert_eq!(got.as_u16(), status, "{method} {uri}: {body}");
        assert_eq!(
            content_type.as_deref(),
            Some("application/json"),
            "{method} {uri}"
        );
        assert_eq!(body["error"]["type"], kind, "{method} {uri}: {body}");
        assert!(body["error"]["message"].is_string(), "{method} {uri}");
    }
}

#[tokio::test]
async fn budgets_out_of_range_are_refused_with_the_field() {
    let st = AppState::new(Config::new("http://127.0.0.1:9"), support::memory());
    for (budget, field) in [
        (json!({"max_cost_usd": -1.0}), "budget.max_cost_usd"),
        (json!({"max_duration_s": -0.5}), "budget.max_duration_s"),
        // Beyond what a timer can hold: used to panic the session's agent task.
        (json!({"max_duration_s": 1e300}), "budget.max_duration_s"),
    ] {
        let body = json!({"query": "x", "budget": budget}).to_string();
        let req = Request::post("/v1/sessions")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body))
            .unwrap();
        let (status, _, b) = call(&st, req).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{budget}: {b}");
        assert_eq!(b["error"]["field"], field, "{budget}: {b}");
    }
}

#[tokio::test]
async fn the_mock_serves_the_documented_control_paths_and_json_errors() {
    let mock = support::mock(support::profile(std::time::Duration::ZERO)).await;
    let (_, documented) = operations(&doc());
    assert!(documented.len() >= 5, "{documented:?}");
    let client = reqwest::Client::new();
    for (path, method) in documented {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = client.request(method.clone(), format!("{}{path}", mock.url));
        if method == reqwest::Method::POST {
            req = req.json(&json!({}));
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 200, "{method} {path}");
    }
    for (method, path, status, kind) in [
        (
            reqwest::Method::PUT,
            "/mock/faults",
            405,
            "method_not_allowed",
        ),
        (reqwest::Method::GET, "/mock/nope", 404, "not_found"),
    ] {
        let resp = client
            .request(method.clone(), format!("{}{path}", mock.url))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), status, "{method} {path}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["type"], kind, "{method} {path}");
    }
    for spec in [
        json!({"duration_ms": u64::MAX}),
        json!({"extra_latency_ms": u64::MAX}),
        json!({"stall": {"after_tokens": 1, "duration_ms": u64::MAX}}),
    ] {
        let resp = client
            .post(format!("{}/mock/faults", mock.url))
            .json(&spec)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{spec}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["type"], "invalid_request", "{spec}");
    }
    mock.shutdown.cancel();
}

#[test]
fn a_decoded_budget_is_the_nearest_f64_and_survives_the_journal() {
    // From the fuzzer: serde_json's fast float parser (without `float_roundtrip`) read this
    // as 3.3333333333333332e128, one ULP off the nearest f64, and the number re-read from
    // the journaled record was 3.3333333333333336e128.
    let cost = format!("{}0.5", "3".repeat(128));
    let body = format!(r#"{{"query":"x","budget":{{"max_cost_usd":{cost}}}}}"#);
    let headers = axum::http::HeaderMap::new();
    let request = api::decode::create_session(&headers, body.as_bytes()).unwrap();
    let nearest: f64 = cost.parse().unwrap();
    assert_eq!(request.budget.max_cost_usd, Some(nearest));
    let journaled = serde_json::to_string(&request.budget).unwrap();
    let reread: dropzero_runtime::session::Budget = serde_json::from_str(&journaled).unwrap();
    assert_eq!(reread, request.budget);
}
