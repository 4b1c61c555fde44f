//! The write-ahead session journal: every event is appended here before any client can see
//! it, and every stream reads from here. One trait, [`Journal`], with two backends:
//! [`memory::MemoryJournal`] (one process) and [`sqlite::SqliteJournal`] (one file shared by
//! several replica processes, WAL mode, group commit).
//!
//! Not for live notification (the in-process `watch` in `session::LocalSession` does that)
//! nor for deciding who runs a session (the `owner`/`lease` columns are stored here, but the
//! policy lives with the agent).

pub mod memory;
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
    #[error("session {session_id}: appended seq {seq} but expected {expected}")]
    OutOfOrder {
        session_id: String,
        seq: u64,
        expected: u64,
    },
    #[error("session {0}: unknown")]
    UnknownSession(String),
    #[error("corrupt journal row for session {session_id}: {message}")]
    Corrupt { session_id: String, message: String },
    #[error("the journal writer has stopped")]
    WriterGone,
}

pub type JournalResult<T> = Result<T, JournalError>;

/// What `create` did: stored a new session, or found one with the same idempotency key.
#[derive(Debug, Clone)]
pub struct Created {
    pub record: SessionRecord,
    pub existed: bool,
}

/// Durable storage of sessions and their events.
///
/// Ordering contract of [`Journal::append`]: the event is ordered *when the method is
/// called* (not when the future is polled), so a caller holding a per-session lock while
/// calling it gets events stored in seq order, and awaits durability after releasing it.
pub trait Journal: Send + Sync + 'static {
    /// Store a new session, unless one with the same idempotency key exists (then return it).
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
    /// Record the session's terminal status, usage and last seq.
    fn finish(
        &self,
        session_id: String,
        status: SessionStatus,
        usage: Usage,
        last_seq: u64,
    ) -> BoxFuture<'static, JournalResult<()>>;
    /// Hand-off seam: give up ownership (owner and lease cleared) without finishing, so
    /// another replica may take the session over. Nothing claims released sessions yet.
    fn release(&self, session_id: String) -> BoxFuture<'static, JournalResult<()>>;
}
