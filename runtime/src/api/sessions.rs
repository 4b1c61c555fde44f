//! `POST /v1/sessions`, `GET /v1/sessions/{id}` and `DELETE /v1/sessions/{id}`, and the body
//! limit; the API key and resume token checks are in `auth.rs`, decoding in `decode.rs`.

use axum::{
    Json,
    body::{Body, to_bytes},
    extract::{
        Path, Query, State,
        rejection::{PathRejection, QueryRejection},
    },
    http::{HeaderMap, StatusCode, header},
    response::IntoResponse,
};
use serde_json::json;
use std::collections::HashMap;

use super::{
    AppError,
    auth::{authorize, check_api_key},
    decode,
};
use crate::{
    session::{SessionRecord, SessionStatus},
    state::AppState,
};

pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<impl IntoResponse, AppError> {
    if state.drain.is_draining() {
        return Err(AppError::Draining);
    }
    if !state.leases.is_healthy() {
        // Refuse at once rather than after the journal's operation timeout.
        return Err(AppError::JournalUnavailable);
    }
    check_api_key(&state, &headers)?;
    let bytes = read_body(&headers, body, state.config.max_body).await?;
    let request = decode::create_session(&headers, &bytes)?;
    let mut record = SessionRecord::new(
        &state.config.replica_id,
        request.query,
        request.budget,
        request.metadata,
        request.idempotency_key,
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

/// At most `limit` bytes of the body (`413` beyond), before any decoding.
async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<bytes::Bytes, AppError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(AppError::PayloadTooLarge(limit));
    }
    to_bytes(body, limit).await.map_err(|e| {
        if e.into_inner()
            .downcast_ref::<http_body_util::LengthLimitError>()
            .is_some()
        {
            AppError::PayloadTooLarge(limit)
        } else {
            AppError::invalid("could not read the request body", None)
        }
    })
}

pub async fn status(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, AppError> {
    let (Path(id), Query(query)) = (path?, query?);
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
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, AppError> {
    let (Path(id), Query(query)) = (path?, query?);
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
