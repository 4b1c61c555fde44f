//! The runtime's request decoding (`dropzero_runtime::api::decode`, exactly what the
//! handlers run) on arbitrary create-session bodies and headers, and stream cursors.
//! Asserts: no panic; an error is a 400 in the protocol's JSON error shape; a request that
//! decodes obeys every documented bound, and re-encoding it decodes to the same request.
//!
//! Input layout (so seeds are readable): three lines — the `Idempotency-Key` header, the
//! `Last-Event-ID` header, the `after` query parameter, each absent when empty — then the
//! body.
#![no_main]

use std::collections::HashMap;

use axum::{
    http::{HeaderMap, HeaderValue, StatusCode},
    response::IntoResponse,
};
use dropzero_runtime::api::{AppError, decode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(4, |&b| b == b'\n');
    let (key, last, after) = (parts.next(), parts.next(), parts.next());
    let body = parts.next().unwrap_or_default();
    let mut headers = HeaderMap::new();
    for (name, value) in [("idempotency-key", key), ("last-event-id", last)] {
        if let Some(v) = value
            .filter(|v| !v.is_empty())
            .and_then(|v| HeaderValue::from_bytes(v).ok())
        {
            headers.insert(name, v);
        }
    }
    match decode::create_session(&headers, body) {
        Ok(request) => {
            assert!(!request.query.is_empty() && request.query.len() <= decode::MAX_QUERY);
            if let Some(key) = &request.idempotency_key {
                assert!(!key.is_empty() && key.len() <= decode::MAX_IDEMPOTENCY_KEY);
            }
            let b = request.budget;
            assert!(b.max_cost_usd.is_none_or(|c| c.is_finite() && c >= 0.0));
            assert!(
                b.max_duration_s
                    .is_none_or(|s| (0.0..=decode::MAX_DURATION_S).contains(&s))
            );
            let again = serde_json::json!({
                "query": request.query,
                "budget": b,
                "metadata": request.metadata,
            });
            let again = decode::create_session(&headers, again.to_string().as_bytes())
                .expect("a decoded request re-encodes to a valid one");
            assert_eq!(again, request);
        }
        Err(err) => check_error(err),
    }
    let mut query = HashMap::new();
    if let Some(after) = after.filter(|a| !a.is_empty()) {
        query.insert(
            "after".to_string(),
            String::from_utf8_lossy(after).into_owned(),
        );
    }
    if let Err(err) = decode::cursor(&headers, &query) {
        check_error(err);
    }
});

/// Every decoding error is the client's: 400, JSON.
fn check_error(err: AppError) {
    let response = err.into_response();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/json")
    );
}
