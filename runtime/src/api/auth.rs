//! Who may do what: the API key on `POST /v1/sessions` and the resume token that every other
//! session endpoint requires (docs/protocol.md §1, docs/security.md).
//!
//! Secrets are compared in constant time with the `subtle` crate (`ConstantTimeEq` over the
//! bytes): how long a comparison takes does not depend on where the first differing byte is,
//! so response timing cannot be used to guess a token byte by byte. Only the length can
//! differ in timing, and every token has the same length. Every configured API key is
//! compared, so timing does not say which one matched either.
//! Not for minting tokens (see `session::new_resume_token`).

use std::collections::HashMap;

use axum::http::{HeaderMap, header};
use subtle::ConstantTimeEq;

use super::AppError;
use crate::{session::SessionRecord, state::AppState};

/// Whether two secrets are equal, in time independent of their contents.
pub fn secret_eq(given: &str, expected: &str) -> bool {
    bool::from(given.as_bytes().ct_eq(expected.as_bytes()))
}

/// `POST /v1/sessions` needs one of `--api-key` in `x-api-key` when any is configured.
pub fn check_api_key(state: &AppState, headers: &HeaderMap) -> Result<(), AppError> {
    let keys = &state.config.api_keys;
    if keys.is_empty() {
        return Ok(());
    }
    let given = headers.get("x-api-key").and_then(|v| v.to_str().ok());
    let matched = given.is_some_and(|given| {
        // `fold`, not `any`: compare with every key, whichever matches.
        keys.iter()
            .fold(false, |found, key| secret_eq(given, key) | found)
    });
    if matched {
        Ok(())
    } else {
        Err(AppError::Unauthorized("missing or wrong x-api-key"))
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
    match token {
        Some(token) if secret_eq(token, &record.resume_token) => Ok(record),
        _ => Err(AppError::Unauthorized("missing or wrong resume token")),
    }
}

#[cfg(test)]
mod tests {
    use super::secret_eq;

    #[test]
    fn secrets_compare_by_value() {
        for (given, expected, equal) in [
            ("rt_abc", "rt_abc", true),
            ("rt_abd", "rt_abc", false),
            ("rt_ab", "rt_abc", false),
            ("rt_abcd", "rt_abc", false),
            ("", "rt_abc", false),
            ("", "", true),
        ] {
            assert_eq!(
                secret_eq(given, expected),
                equal,
                "{given:?} vs {expected:?}"
            );
        }
    }
}
