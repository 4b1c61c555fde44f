//! [`AppError`]: every way a request can fail, and the one place that turns it into a
//! status code and the protocol's JSON body `{"error":{"type","message","field"?}}`.
//! Internal causes are logged inside the request span; clients get a public message.

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::json;

use crate::journal::JournalError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{message}")]
    InvalidRequest {
        message: String,
        field: Option<String>,
    },
    #[error("{0}")]
    InvalidLastEventId(String),
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("no such session")]
    NotFound,
    #[error("no such endpoint")]
    NoRoute,
    #[error("this endpoint does not serve that method")]
    MethodNotAllowed,
    #[error("this runtime does not support a second stream for a session (naive mode)")]
    ResumeUnsupported,
    #[error("request body larger than {0} bytes")]
    PayloadTooLarge(usize),
    #[error("the session already has {0} open streams on this replica; close one or retry later")]
    TooManyStreams(usize),
    #[error("replica is draining; retry on another replica")]
    Draining,
    #[error("journal error")]
    Journal(#[from] JournalError),
    /// The journal did not answer this replica's last lease heartbeat.
    #[error("the session journal is unreachable; retry later")]
    JournalUnavailable,
    /// A local failure (already logged with its cause).
    #[error("internal error")]
    Internal,
}

impl AppError {
    pub fn invalid(message: impl Into<String>, field: Option<&str>) -> AppError {
        AppError::InvalidRequest {
            message: message.into(),
            field: field.map(str::to_string),
        }
    }

    fn status_and_type(&self) -> (StatusCode, &'static str) {
        match self {
            AppError::InvalidRequest { .. } => (StatusCode::BAD_REQUEST, "invalid_request"),
            AppError::InvalidLastEventId(_) => (StatusCode::BAD_REQUEST, "invalid_last_event_id"),
            AppError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            AppError::NotFound | AppError::NoRoute => (StatusCode::NOT_FOUND, "not_found"),
            AppError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            AppError::ResumeUnsupported => (StatusCode::CONFLICT, "resume_unsupported"),
            AppError::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            AppError::TooManyStreams(_) => (StatusCode::TOO_MANY_REQUESTS, "too_many_streams"),
            AppError::Draining => (StatusCode::SERVICE_UNAVAILABLE, "draining"),
            AppError::Journal(_) | AppError::JournalUnavailable => {
                (StatusCode::SERVICE_UNAVAILABLE, "journal_unavailable")
            }
            AppError::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

/// A session id that is not a valid path segment (e.g. percent-encoded bytes that are not
/// UTF-8): the request is malformed, in the protocol's error shape rather than axum's text.
impl From<axum::extract::rejection::PathRejection> for AppError {
    fn from(rejection: axum::extract::rejection::PathRejection) -> AppError {
        AppError::invalid(rejection.body_text(), Some("id"))
    }
}

impl From<axum::extract::rejection::QueryRejection> for AppError {
    fn from(rejection: axum::extract::rejection::QueryRejection) -> AppError {
        AppError::invalid(rejection.body_text(), None)
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, kind) = self.status_and_type();
        let message = match &self {
            AppError::Journal(e) => {
                tracing::error!(error = %e, "journal failure while serving a request");
                "the session journal is unavailable".to_string()
            }
            other => other.to_string(),
        };
        let mut error = json!({"type": kind, "message": message});
        if let AppError::InvalidRequest {
            field: Some(field), ..
        } = &self
        {
            error["field"] = json!(field);
        }
        let mut response = (status, Json(json!({ "error": error }))).into_response();
        let retry_after = match status {
            StatusCode::SERVICE_UNAVAILABLE => Some("2"),
            StatusCode::TOO_MANY_REQUESTS => Some("1"),
            _ => None,
        };
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static(seconds));
        }
        response
    }
}
