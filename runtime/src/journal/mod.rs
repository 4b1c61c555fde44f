//! The write-ahead session journal: every event is appended here before any client can see
//! it, and every stream reads from here. One trait, [`Journal`], with three backends:
//! [`memory::MemoryJournal`] (one process), [`sqlite::SqliteJournal`] (one file shared by
//! several replica processes, WAL mode, group commit) and [`redis::RedisJournal`] (Redis
//! Streams shared by replicas on any host: the production backend).
//!
//! Ownership lives here too, as data: each running session has an `owner` (a replica id)
//! and a lease (`lease_expires_at_ms`, Unix epoch ms). [`Journal::heartbeat`] extends a
//! replica's leases, [`Journal::claim`] atomically takes over a session whose lease is free,
//! [`Journal::orphans`] lists such sessions. The *fence* against a replica that lost its
//! lease but still runs is the event key: an append whose `(session_id, seq)` already exists
//! fails with [`JournalError::SeqTaken`], and the agent stops on it.
//!
//! Not for live notification (the in-process `watch` in `session::LocalSession` does that)
//! nor for deciding *when* to heartbeat or claim (see `lease`).

pub mod memory;
pub mod redis;
pub mod sqlite;

use futures::future::BoxFuture;

use crate::session::{EventRecord, SessionRecord, SessionStatus, Usage};

/// A journal operation failed; the variants say which and for what session.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("sqlite journal: {context}: {source}")]
    Sqlite {
        context: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    #[error("redis journal: {context}: {source}")]
    Redis {
        context: &'static str,
        #[source]
        source: ::redis::RedisError,
    },
    #[error("session {session_id}: appended seq {seq} but expected {expected}")]
    OutOfOrder {
        session_id: String,
        seq: u64,
        expected: u64,
    },
    /// Another writer already journaled this seq: the session has a new owner (takeover)
    /// and this writer must stop. Every later append of this writer for the session fails too.
    #[error(
        "session {session_id}: seq {seq} is already journaled (another replica took the session over)"
    )]
    SeqTaken { session_id: String, seq: u64 },
    #[error("session {0}: unknown")]
    UnknownSession(String),
    #[error("corrupt journal row for session {session_id}: {message}")]
    Corrupt { session_id: String, message: String },
    #[error("the journal writer has stopped")]
    WriterGone,
}

impl JournalError {
    /// Whether the journal could not take a write right now (unreachable, timed out, its
    /// writer gone) or holds less than the writer wrote (`OutOfOrder`: it was restored from
    /// older state), rather than refusing it for good: the session can go on from what the
    /// journal holds once it answers.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            JournalError::Redis { .. } | JournalError::WriterGone | JournalError::OutOfOrder { .. }
        )
    }
}

pub type JournalResult<T> = Result<T, JournalError>;

/// What `create` did: stored a new session, or found one with the same idempotency key.
#[derive(Debug, Clone)]
pub struct Created {
    pub record: SessionRecord,
    pub existed: bool,
}

/// A session claimed by [`Journal::claim`]: its record (owner now the claimer) and who held it before.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub record: SessionRecord,
    pub previous_owner: Option<String>,
}

/// Durable storage of sessions and their events.
///
/// Ordering contract of [`Journal::append`]: the event is ordered *when the method is
/// called* (not when the future is polled), so a caller holding a per-session lock while
/// calling it gets events stored in seq order, and awaits durability after releasing it.
pub trait Journal: Send + Sync + 'static {
    /// Store a new session, unless one with the same idempotency key exists (then return it).
    /// `owner` and `lease_expires_at_ms` are stored as given (the creator holds the lease).
    fn create(&self, record: SessionRecord) -> BoxFuture<'static, JournalResult<Created>>;
    /// The session's record, if the journal knows it.
    fn session(
        &self,
        session_id: String,
    ) -> BoxFuture<'static, JournalResult<Option<SessionRecord>>>;
    /// Append one event; resolves once it is durable (committed).
    fn append(&self, event: EventRecord) -> BoxFuture<'static, JournalResult<()>>;
    /// Up to `limit` events with `seq > after`, in seq order.
    fn read_after(
        &self,
        session_id: String,
        after: u64,
        limit: usize,
    ) -> BoxFuture<'static, JournalResult<Vec<EventRecord>>>;
    /// The highest seq stored for the session (0 if none).
    fn last_seq(&self, session_id: String) -> BoxFuture<'static, JournalResult<u64>>;
    /// Record the session's terminal status, usage and last seq; clears owner and lease.
    fn finish(
        &self,
        session_id: String,
        status: SessionStatus,
        usage: Usage,
        last_seq: u64,
    ) -> BoxFuture<'static, JournalResult<()>>;
    /// Give up ownership (owner and lease cleared) without finishing, so another replica
    /// may claim the session at once (drain hand-off).
    fn release(&self, session_id: String) -> BoxFuture<'static, JournalResult<()>>;
    /// Extend to `expires_at_ms` (Unix epoch ms) the lease of every running session `owner` holds; returns how many.
    fn heartbeat(
        &self,
        owner: String,
        expires_at_ms: i64,
    ) -> BoxFuture<'static, JournalResult<u64>>;
    /// Atomically take over a *running* session whose lease is free (owner NULL, or lease_expires_at_ms < now_ms):
    /// set owner = `owner`, lease = `expires_at_ms`. `Ok(None)` if it is not running or someone else holds a live lease.
    fn claim(
        &self,
        session_id: String,
        owner: String,
        now_ms: i64,
        expires_at_ms: i64,
    ) -> BoxFuture<'static, JournalResult<Option<Claimed>>>;
    /// Ids of running sessions whose lease is free at `now_ms` (released or expired), oldest lease first, at most `limit`.
    fn orphans(&self, now_ms: i64, limit: usize) -> BoxFuture<'static, JournalResult<Vec<String>>>;
}
