//! Raise the open-file limit to its hard maximum: every session holds a socket (and through
//! the local router, two), so the default soft limit of 1024 caps a run at a few hundred
//! sessions.

use nix::sys::resource::{Resource, getrlimit, setrlimit};

pub fn raise() {
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => {
            if let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
                tracing::warn!("cannot raise the open-file limit from {soft} to {hard}: {e}");
            }
        }
        Ok(_) => {}
        Err(e) => tracing::warn!("cannot read the open-file limit: {e}"),
    }
}

/// Raise the soft limit to the hard one, and both to `wanted` when the hard limit is lower
/// and the process may raise it (root, `CAP_SYS_RESOURCE`). Returns the soft limit after.
pub fn raise_to(wanted: u64) -> u64 {
    raise();
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if hard < wanted => {
            if setrlimit(Resource::RLIMIT_NOFILE, wanted, wanted).is_ok() {
                wanted
            } else {
                soft
            }
        }
        Ok((soft, _)) => soft,
        Err(_) => 0,
    }
}
