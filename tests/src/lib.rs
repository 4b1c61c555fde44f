//! Helpers for the end-to-end tests: where the built `dropzero` binary is, and how to run it
//! with a bound on time.

use std::path::PathBuf;

/// The `dropzero` binary built by `cargo build --bin dropzero` (scripts/test.sh does that
/// first). Overridable with `DROPZERO_BIN`.
pub fn dropzero_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("DROPZERO_BIN") {
        return PathBuf::from(p);
    }
    // target/<profile>/deps/it-<hash> → target/<profile>/dropzero
    let exe = std::env::current_exe().unwrap_or_default();
    let profile_dir = exe
        .parent()
        .and_then(|d| d.parent())
        .map(PathBuf::from)
        .unwrap_or_default();
    profile_dir.join("dropzero")
}

/// The workspace root (for `scenarios/`).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}
