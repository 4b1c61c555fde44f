//! Fault-injection endpoints, served only with `--fault-endpoints` (otherwise they do not
//! exist: 404). They make real failures happen inside a real replica for chaos tests; nothing
//! here is simulated.
//!
//! `POST /admin/oom` → `202 {"allocating": true}`, then a background thread allocates memory
//! for real — 16 MiB chunks, every page written so it is resident, one chunk every ~5 ms,
//! all kept — until the allocator fails. Under an address-space limit (`RLIMIT_AS`, which
//! the harness sets for its OOM fault) Rust's allocation-error handler then prints
//! `memory allocation of … bytes failed` and aborts the process (SIGABRT); without a limit
//! the kernel's OOM killer ends it (SIGKILL). Either way the process dies as a real OOM does.

use std::time::Duration;

use axum::{Json, http::StatusCode, response::IntoResponse};
use serde_json::json;

use super::AppError;

const CHUNK: usize = 16 << 20;
const PAUSE: Duration = Duration::from_millis(5);

pub async fn oom() -> Result<impl IntoResponse, AppError> {
    std::thread::Builder::new()
        .name("oom-fault".into())
        .spawn(allocate_until_the_allocator_fails)
        .map_err(|e| {
            tracing::error!(error = %e, "could not start the OOM fault thread");
            AppError::Internal
        })?;
    tracing::warn!("OOM fault: allocating memory until the allocator fails");
    Ok((StatusCode::ACCEPTED, Json(json!({"allocating": true}))))
}

fn allocate_until_the_allocator_fails() {
    let mut held: Vec<Vec<u8>> = Vec::new();
    loop {
        // A non-zero fill writes every page; zeroed memory could stay unbacked (calloc).
        held.push(vec![0xA5; CHUNK]);
        if held.len().is_multiple_of(64) {
            tracing::warn!(
                mib = held.len() * (CHUNK >> 20),
                "OOM fault: still allocating"
            );
        }
        std::thread::sleep(PAUSE);
    }
}
