//! `GET /openapi.json`: the API contract, `docs/openapi.yaml`, served as JSON.
//!
//! The YAML is embedded at build time and converted to JSON once, on first use, so the
//! document served is always the one in the repository at the commit the binary was built
//! from. A test parses it and checks that it describes every route in the router's table
//! ([`super::routes`]); schemathesis (`tests/python/test_api_contract.py`) checks the live
//! runtime against it. Not for describing anything: the YAML is the source.

use std::sync::LazyLock;

use axum::{
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
};
use bytes::Bytes;

use super::AppError;

/// The contract as written (OpenAPI 3.1, YAML).
pub const YAML: &str = include_str!("../../../docs/openapi.yaml");

static JSON: LazyLock<Result<Bytes, String>> = LazyLock::new(|| {
    document()
        .and_then(|doc| serde_json::to_vec(&doc).map_err(|e| e.to_string()))
        .map(Bytes::from)
});

/// The contract as a JSON value, or why the embedded YAML does not parse.
pub fn document() -> Result<serde_json::Value, String> {
    serde_norway::from_str(YAML).map_err(|e| format!("docs/openapi.yaml: {e}"))
}

pub async fn serve() -> Result<Response, AppError> {
    match &*JSON {
        Ok(body) => Ok((
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body.clone(),
        )
            .into_response()),
        Err(e) => {
            tracing::error!(error = %e, "the embedded OpenAPI document does not parse");
            Err(AppError::Internal)
        }
    }
}
