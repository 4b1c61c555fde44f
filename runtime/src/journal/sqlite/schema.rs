//! The journal file's schema, and the check that refuses files written by older layouts.
//!
//! Events live in two tables with the same key, `(sid, seq)`: appends go to the small `hot`
//! table, and the writer moves them into `events` a slice of sessions at a time (see
//! `writer::compact_slice`). Why: a group-commit batch writes every B-tree page it dirtied
//! to the WAL whole. In one session-keyed table a session with more than ~75 events fills
//! its own leaf, so a batch of N sessions wrote ~N pages (≈ 4 KiB of WAL per append). `hot`
//! holds only the last few batches' rows, so many sessions share each of its leaves; and a
//! session's leaf in `events` is rewritten once per sweep with all the rows gathered since,
//! not once per batch.
//!
//! `heads` is the fence and `last_seq`: one tiny row per session (so a batch dirties a few
//! pages of it, not one per session) holding the highest seq appended. Appends advance it
//! only from `seq - 1`, which is what makes a taken seq fail even after its row has left
//! `hot`.

use std::path::Path;

use rusqlite::Connection;

use super::sql;
use crate::journal::{JournalError, JournalResult};

/// `PRAGMA user_version` of this layout. Files of the two layouts before it have 0.
pub const SCHEMA_VERSION: i64 = 3;

/// The schema; run inside the same transaction as the version check (see [`prepare`]).
///
/// Events are keyed by the session's integer `sid`, not its 36-character id: the smaller the
/// rows, the more sessions share a leaf. `AUTOINCREMENT` so a sid is never reused for another
/// session's events (which also lets a writer cache `session_id → sid`).
pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS sessions (
    sid                 INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id          TEXT NOT NULL UNIQUE,
    resume_token        TEXT NOT NULL,
    idempotency_key     TEXT UNIQUE,
    query               TEXT NOT NULL,
    budget              TEXT NOT NULL,
    metadata            TEXT,
    status              TEXT NOT NULL,
    owner               TEXT,
    lease_expires_at_ms INTEGER,
    created_at          TEXT NOT NULL,
    last_seq            INTEGER NOT NULL DEFAULT 0,
    usage               TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS heads (
    sid INTEGER PRIMARY KEY,
    seq INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS hot (
    sid  INTEGER NOT NULL,
    seq  INTEGER NOT NULL,
    kind TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (sid, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (
    sid  INTEGER NOT NULL,
    seq  INTEGER NOT NULL,
    kind TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (sid, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS sessions_running_owner ON sessions (owner) WHERE status = 'running';
CREATE INDEX IF NOT EXISTS sessions_running_lease
    ON sessions (lease_expires_at_ms) WHERE status = 'running';
";

/// Create the schema in a fresh file, or check that an existing file has this layout.
///
/// One `BEGIN IMMEDIATE` transaction, so a replica opening the file while another creates it
/// sees either nothing or the whole schema with its version. Files of older layouts are
/// refused with a message naming the layout: the journal holds in-flight sessions, not
/// archives, so such a file is retired rather than migrated.
pub fn prepare(conn: &mut Connection, path: &Path) -> JournalResult<()> {
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(sql("schema: begin"))?;
    let version: i64 = tx
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(sql("schema: user_version"))?;
    let tables: i64 = tx
        .query_row(
            "SELECT COUNT(*) FROM sqlite_schema WHERE type = 'table' AND name = 'events'",
            [],
            |row| row.get(0),
        )
        .map_err(sql("schema: tables"))?;
    if tables > 0 && version != SCHEMA_VERSION {
        let has_sid: bool = tx
            .query_row(
                "SELECT COUNT(*) > 0 FROM pragma_table_info('events') WHERE name = 'sid'",
                [],
                |row| row.get(0),
            )
            .map_err(sql("schema: events columns"))?;
        let layout = if has_sid {
            "events keyed by sid in one table, no hot/heads tables"
        } else {
            "events keyed by session_id text"
        };
        return Err(JournalError::Corrupt {
            session_id: String::new(),
            message: format!(
                "{} has an old journal schema ({layout}; version {version}, this build \
                 reads {SCHEMA_VERSION}); start this version on a fresh journal file",
                path.display()
            ),
        });
    }
    if tables == 0 {
        tx.execute_batch(SCHEMA).map_err(sql("schema"))?;
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)
            .map_err(sql("schema: set user_version"))?;
    }
    tx.commit().map_err(sql("schema: commit"))
}
