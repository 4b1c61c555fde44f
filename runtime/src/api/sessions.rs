//! `POST /v1/sessions`, `GET /v1/sessions/{id}` and `DELETE /v1/sessions/{id}`, plus the
//! checks they share (API key, resume token, body limit, strict JSON).

use axum::{
    Json,
    body::{Body, to_bytes},
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode, header},
    response::IntoResponse,
};
use serde::Deserialize;
use serde_json::json;
use std::collections::HashMap;

use super::AppError;
use crate::{
    session::{Budget, SessionRecord, SessionStatus},
    state::AppState,
};

const MAX_QUERY: usize = 16 * 1024;
const MAX_IDEMPOTENCY_KEY: usize = 200;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateRequest {
    query: String,
    #[serde(default)]
    budget: Budget,
    #[serde(default)]
    metadata: Option<serde_json::Value>,
}

pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<impl IntoResponse, AppError> {
    if state.drain.is_draining() {
        return Err(AppError::Draining);
    }
    check_api_key(&state, &headers)?;
    let request = parse_body(&headers, body, state.config.max_body).await?;
    if request.query.is_empty() || request.query.len() > MAX_QUERY {
        return Err(AppError::invalid(
            format!("query must be 1..={MAX_QUERY} bytes"),
            Some("query"),
        ));
    }
    let key = match headers.get("idempotency-key") {
        None => None,
        Some(v) => match v.to_str() {
            Ok(k) if !k.is_empty() && k.len() <= MAX_IDEMPOTENCY_KEY => Some(k.to_string()),
            _ => {
                return Err(AppError::invalid(
                    format!(
                        "Idempotency-Key must be 1..={MAX_IDEMPOTENCY_KEY} visible ASCII bytes"
                    ),
                    Some("Idempotency-Key"),
                ));
            }
        },
    };
    let mut record = SessionRecord::new(
        &state.config.replica_id,
        request.query,
        request.budget,
        request.metadata,
        key,
    );
    record.lease_expires_at_ms = Some(crate::lease::lease_from_now(&state));
    let created = state.journal.create(record).await?;
    let record = created.record;
    let status = if created.existed {
        tracing::info!(session_id = %record.session_id, "idempotent repeat");
        StatusCode::OK
    } else {
        tracing::info!(session_id = %record.session_id, "session created");
        state.start_session(record.clone());
        StatusCode::CREATED
    };
    let id = &record.session_id;
    Ok((
        status,
        Json(json!({
            "session_id": id,
            "events_url": format!("/v1/sessions/{id}/events"),
            "resume_token": record.resume_token,
        })),
    ))
}

async fn parse_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<CreateRequest, AppError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(AppError::PayloadTooLarge(limit));
    }
    let bytes = to_bytes(body, limit).await.map_err(|e| {
        if e.into_inner()
            .downcast_ref::<http_body_util::LengthLimitError>()
            .is_some()
        {
            AppError::PayloadTooLarge(limit)
        } else {
            AppError::invalid("could not read the request body", None)
        }
    })?;
    let de = &mut serde_json::Deserializer::from_slice(&bytes);
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

fn check_api_key(state: &AppState, headers: &HeaderMap) -> Result<(), AppError> {
    let keys = &state.config.api_keys;
    if keys.is_empty() {
        return Ok(());
    }
    let given = headers.get("x-api-key").and_then(|v| v.to_str().ok());
    match given {
        Some(k) if keys.iter().any(|key| key == k) => Ok(()),
        _ => Err(AppError::Unauthorized("missing or wrong x-api-key")),
    }
}

/// Look a session up and check its resume token (`Authorization: Bearer` or `?token=`).
pub async fn authorize(
    state: &AppState,
    id: &str,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
) -> Result<SessionRecord, AppError> {
    let record = state
        .journal
        .session(id.to_string())
        .await?
        .ok_or(AppError::NotFound)?;
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let token = bearer.or(query.get("token").map(String::as_str));
    if token != Some(record.resume_token.as_str()) {
        return Err(AppError::Unauthorized("missing or wrong resume token"));
    }
    Ok(record)
}

pub async fn status(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, AppError> {
    let record = authorize(&state, &id, &headers, &query).await?;
    let (last_seq, usage) = match (record.status, state.local.get(&id)) {
        (SessionStatus::Running, Some(local)) => (local.emitter.last_seq(), local.emitter.usage()),
        // Owned by another process: the journal knows the last seq, usage arrives with done.
        (SessionStatus::Running, None) => (state.journal.last_seq(id.clone()).await?, record.usage),
        _ => (record.last_seq, record.usage),
    };
    Ok(Json(json!({
        "session_id": id,
        "status": record.status.as_str(),
        "replica_id": record.owner,
        "last_seq": last_seq,
        "usage": usage,
        "created_at": record.created_at,
    })))
}

pub async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, AppError> {
    let record = authorize(&state, &id, &headers, &query).await?;
    let status = match state.local.get(&id) {
        Some(local) => {
            local.cancel.cancel();
            "cancelling"
        }
        // Finished already, or running on another replica (cross-replica cancel is not
        // built: the owner does not poll for it).
        None => record.status.as_str(),
    };
    tracing::info!(session_id = %id, status, "cancel requested");
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"session_id": id, "status": status})),
    ))
}
