//! Decoding what a client sends, apart from any I/O: the create-session body and its
//! headers, and a stream's cursor (`Last-Event-ID` / `?after=`). Every rule of protocol §1
//! about request contents is here, so the handlers only read bytes and act, and the fuzzer
//! (`fuzz/fuzz_targets/request_decode.rs`) drives exactly what the handlers run.
//! Not for authentication or limits on the body's size (the handler reads at most
//! `--max-body` bytes before calling in).

use std::collections::HashMap;

use axum::http::HeaderMap;
use serde::Deserialize;

use super::AppError;
use crate::session::Budget;

/// The longest `query`, in bytes.
pub const MAX_QUERY: usize = 16 * 1024;
/// The longest `Idempotency-Key`, in bytes.
pub const MAX_IDEMPOTENCY_KEY: usize = 200;
/// The longest `budget.max_duration_s`: one year (docs/openapi.yaml says the same).
pub const MAX_DURATION_S: f64 = 365.0 * 24.0 * 3600.0;

/// A create-session request that passed every check.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateSession {
    pub query: String,
    pub budget: Budget,
    pub metadata: Option<serde_json::Value>,
    pub idempotency_key: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    query: String,
    #[serde(default)]
    budget: Budget,
    #[serde(default)]
    metadata: Option<serde_json::Value>,
}

/// The body (JSON, strict) and headers of `POST /v1/sessions`; an error names the field.
pub fn create_session(headers: &HeaderMap, body: &[u8]) -> Result<CreateSession, AppError> {
    let body = parse_body(body)?;
    if body.query.is_empty() || body.query.len() > MAX_QUERY {
        return Err(AppError::invalid(
            format!("query must be 1..={MAX_QUERY} bytes"),
            Some("query"),
        ));
    }
    check_budget(&body.budget)?;
    Ok(CreateSession {
        query: body.query,
        budget: body.budget,
        metadata: body.metadata,
        idempotency_key: idempotency_key(headers)?,
    })
}

fn parse_body(bytes: &[u8]) -> Result<Body, AppError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        // The path already ends in an unknown field's name.
        let mut field = e.path().to_string();
        let message = e.inner().to_string();
        // A missing field is named in the message, not the path.
        if let Some(rest) = message.strip_prefix("missing field `")
            && let Some(name) = rest.split('`').next()
        {
            field = if field == "." {
                name.to_string()
            } else {
                format!("{field}.{name}")
            };
        }
        let field = (field != ".").then_some(field);
        AppError::invalid(message, field.as_deref())
    })
}

/// Ranges serde cannot check: a negative or endless budget is a client error, not a
/// session that can never run (an endless duration cannot be a timer).
fn check_budget(budget: &Budget) -> Result<(), AppError> {
    if let Some(cost) = budget.max_cost_usd
        && !(cost.is_finite() && cost >= 0.0)
    {
        return Err(AppError::invalid(
            format!("max_cost_usd must be a number >= 0, got {cost}"),
            Some("budget.max_cost_usd"),
        ));
    }
    if let Some(secs) = budget.max_duration_s
        && !(0.0..=MAX_DURATION_S).contains(&secs)
    {
        return Err(AppError::invalid(
            format!("max_duration_s must be within 0..={MAX_DURATION_S}, got {secs}"),
            Some("budget.max_duration_s"),
        ));
    }
    Ok(())
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, AppError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    match value.to_str() {
        Ok(k) if !k.is_empty() && k.len() <= MAX_IDEMPOTENCY_KEY => Ok(Some(k.to_string())),
        _ => Err(AppError::invalid(
            format!("Idempotency-Key must be 1..={MAX_IDEMPOTENCY_KEY} visible ASCII bytes"),
            Some("Idempotency-Key"),
        )),
    }
}

/// A stream's cursor: `Last-Event-ID` wins over `?after=`; absent or empty means 0.
pub fn cursor(headers: &HeaderMap, query: &HashMap<String, String>) -> Result<u64, AppError> {
    let raw = match headers.get("last-event-id") {
        Some(v) => Some(v.to_str().unwrap_or("?").trim().to_string()),
        None => query.get("after").cloned(),
    };
    match raw {
        None => Ok(0),
        Some(s) if s.is_empty() => Ok(0),
        Some(s) => s
            .parse()
            .map_err(|_| AppError::InvalidLastEventId(format!("{s:?} is not an event id"))),
    }
}
