//! The SQLite journal: one database file that several replica processes open at once.
//!
//! Writes go through one writer thread per process that batches everything queued (plus a
//! short linger) into one `BEGIN IMMEDIATE` transaction — group commit — and then answers
//! each caller. Reads use a small pool of separate connections on the blocking pool; in WAL
//! mode they never wait for the writer and only ever see committed rows, which is what
//! makes "journaled before any client sees it" hold. `busy_timeout` covers the moments when
//! another process holds the write lock. `synchronous = NORMAL` survives a process crash
//! (our fault model: kill, OOM), not a power cut. A third thread checkpoints the WAL into
//! the database so that no append waits for the copy (see `CHECKPOINT_EVERY`).
//!
//! Appends land in a small `hot` table and the writer sweeps them into `events` a slice of
//! sessions per batch; reads look at both (see `schema` for why, `writer` for how).
//!
//! Not for notification: other processes learn of new rows by polling `read_after`.

mod schema;
mod writer;

use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex, mpsc},
    time::Duration,
};

use futures::{FutureExt, future::BoxFuture};
use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::oneshot;

pub use schema::{SCHEMA, SCHEMA_VERSION};
pub use writer::DEFAULT_LINGER;
use writer::{Command, WAL_AUTOCHECKPOINT_PAGES, WRITER_CACHE_KIB, checkpoint_loop, writer_loop};

use super::{Claimed, Created, Journal, JournalError, JournalResult};
use crate::session::{Budget, EventRecord, SessionRecord, SessionStatus, Usage};

/// The `sid` of session `?1`, as a scalar subquery (NULL for an unknown session).
macro_rules! sid_of {
    () => {
        "(SELECT sid FROM sessions WHERE session_id = ?1)"
    };
}

/// A journal in one SQLite file. Dropping it stops the writer thread after it drains.
pub struct SqliteJournal {
    path: PathBuf,
    writer: mpsc::Sender<Command>,
    readers: Arc<Mutex<Vec<Connection>>>,
}

impl std::fmt::Debug for SqliteJournal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteJournal")
            .field("path", &self.path)
            .finish()
    }
}

fn sql(context: &'static str) -> impl FnOnce(rusqlite::Error) -> JournalError {
    move |source| JournalError::Sqlite { context, source }
}

fn open_connection(path: &Path) -> JournalResult<Connection> {
    let conn = Connection::open(path).map_err(sql("open"))?;
    conn.busy_timeout(Duration::from_secs(10))
        .map_err(sql("busy_timeout"))?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(sql("journal_mode=WAL"))?;
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(sql("synchronous"))?;
    Ok(conn)
}

impl SqliteJournal {
    /// Open (creating if needed) the journal at `path` with the default group-commit linger.
    pub fn open(path: impl AsRef<Path>) -> JournalResult<SqliteJournal> {
        SqliteJournal::open_with_linger(path, DEFAULT_LINGER)
    }

    pub fn open_with_linger(
        path: impl AsRef<Path>,
        linger: Duration,
    ) -> JournalResult<SqliteJournal> {
        let path = path.as_ref().to_path_buf();
        let mut conn = open_connection(&path)?;
        conn.pragma_update(None, "cache_size", -WRITER_CACHE_KIB)
            .map_err(sql("cache_size"))?;
        conn.pragma_update(None, "wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES)
            .map_err(sql("wal_autocheckpoint"))?;
        schema::prepare(&mut conn, &path)?;
        let checkpoints = open_connection(&path)?;
        let (tx, rx) = mpsc::channel();
        let (committed, commits) = mpsc::sync_channel(1);
        let spawn_failed = |e: std::io::Error| JournalError::Corrupt {
            session_id: String::new(),
            message: format!("spawning a journal thread: {e}"),
        };
        std::thread::Builder::new()
            .name("journal-ckpt".into())
            .spawn(move || checkpoint_loop(checkpoints, commits))
            .map_err(spawn_failed)?;
        std::thread::Builder::new()
            .name("journal-writer".into())
            .spawn(move || writer_loop(conn, rx, linger, committed))
            .map_err(spawn_failed)?;
        Ok(SqliteJournal {
            path,
            writer: tx,
            readers: Arc::new(Mutex::new(Vec::new())),
        })
    }

    fn send<T: Send + 'static>(
        &self,
        make: impl FnOnce(oneshot::Sender<JournalResult<T>>) -> Command,
    ) -> BoxFuture<'static, JournalResult<T>> {
        let (reply, rx) = oneshot::channel();
        let sent = self.writer.send(make(reply)).is_ok();
        async move {
            if !sent {
                return Err(JournalError::WriterGone);
            }
            rx.await.unwrap_or(Err(JournalError::WriterGone))
        }
        .boxed()
    }

    /// Run `f` on a pooled read connection on the blocking pool.
    fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> JournalResult<T> + Send + 'static,
    ) -> BoxFuture<'static, JournalResult<T>> {
        let pool = self.readers.clone();
        let path = self.path.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                let pooled = pool.lock().unwrap_or_else(|e| e.into_inner()).pop();
                let conn = match pooled {
                    Some(conn) => conn,
                    None => open_connection(&path)?,
                };
                let result = f(&conn);
                pool.lock().unwrap_or_else(|e| e.into_inner()).push(conn);
                result
            })
            .await
            .unwrap_or(Err(JournalError::WriterGone))
        }
        .boxed()
    }
}

const SELECT_SESSION: &str =
    "SELECT session_id, resume_token, idempotency_key, query, budget, metadata,
        status, owner, lease_expires_at_ms, created_at, last_seq, usage FROM sessions";

/// Map a row; the inner `Result` reports JSON columns that do not parse.
fn row_to_record(row: &rusqlite::Row<'_>) -> rusqlite::Result<JournalResult<SessionRecord>> {
    let session_id: String = row.get(0)?;
    let budget: String = row.get(4)?;
    let metadata: Option<String> = row.get(5)?;
    let status: String = row.get(6)?;
    let usage: String = row.get(11)?;
    let corrupt = |message: String| JournalError::Corrupt {
        session_id: session_id.clone(),
        message,
    };
    let parsed = (|| {
        let budget: Budget = serde_json::from_str(&budget).map_err(|e| corrupt(e.to_string()))?;
        let usage: Usage = serde_json::from_str(&usage).map_err(|e| corrupt(e.to_string()))?;
        let metadata = match metadata {
            Some(m) => Some(serde_json::from_str(&m).map_err(|e| corrupt(e.to_string()))?),
            None => None,
        };
        let status =
            SessionStatus::parse(&status).ok_or_else(|| corrupt(format!("status {status:?}")))?;
        Ok((budget, usage, metadata, status))
    })();
    let (budget, usage, metadata, status) = match parsed {
        Ok(p) => p,
        Err(e) => return Ok(Err(e)),
    };
    Ok(Ok(SessionRecord {
        session_id: session_id.clone(),
        resume_token: row.get(1)?,
        idempotency_key: row.get(2)?,
        query: row.get(3)?,
        budget,
        metadata,
        status,
        owner: row.get(7)?,
        lease_expires_at_ms: row.get(8)?,
        created_at: row.get(9)?,
        last_seq: row.get::<_, i64>(10)? as u64,
        usage,
    }))
}

impl Journal for SqliteJournal {
    fn create(&self, record: SessionRecord) -> BoxFuture<'static, JournalResult<Created>> {
        self.send(|reply| Command::Create(record, reply))
    }

    fn session(
        &self,
        session_id: String,
    ) -> BoxFuture<'static, JournalResult<Option<SessionRecord>>> {
        self.read(move |conn| {
            conn.query_row(
                &format!("{SELECT_SESSION} WHERE session_id = ?1"),
                params![session_id],
                row_to_record,
            )
            .optional()
            .map_err(sql("select session"))?
            .transpose()
        })
    }

    fn append(&self, event: EventRecord) -> BoxFuture<'static, JournalResult<()>> {
        self.send(|reply| Command::Append(event, reply))
    }

    fn read_after(
        &self,
        session_id: String,
        after: u64,
        limit: usize,
    ) -> BoxFuture<'static, JournalResult<Vec<EventRecord>>> {
        // One statement, so one snapshot: the sweep moves a session's rows from `hot` to
        // `events` in one transaction, so each row is seen exactly once; both arms are
        // primary-key range scans of this session only.
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(concat!(
                    "SELECT seq, kind, data FROM events WHERE sid = ",
                    sid_of!(),
                    " AND seq > ?2
                     UNION ALL
                     SELECT seq, kind, data FROM hot WHERE sid = ",
                    sid_of!(),
                    " AND seq > ?2
                     ORDER BY seq LIMIT ?3"
                ))
                .map_err(sql("prepare read_after"))?;
            let rows = stmt
                .query_map(params![session_id, after, limit as i64], |row| {
                    Ok(EventRecord {
                        session_id: session_id.clone(),
                        seq: row.get::<_, i64>(0)? as u64,
                        kind: row.get(1)?,
                        data: row.get(2)?,
                    })
                })
                .map_err(sql("read_after"))?;
            rows.collect::<Result<Vec<_>, _>>()
                .map_err(sql("read_after row"))
        })
    }

    fn last_seq(&self, session_id: String) -> BoxFuture<'static, JournalResult<u64>> {
        self.read(move |conn| {
            conn.query_row(
                concat!(
                    "SELECT COALESCE((SELECT seq FROM heads WHERE sid = ",
                    sid_of!(),
                    "), 0)"
                ),
                params![session_id],
                |row| row.get::<_, i64>(0),
            )
            .map(|n| n as u64)
            .map_err(sql("last_seq"))
        })
    }

    fn finish(
        &self,
        session_id: String,
        status: SessionStatus,
        usage: Usage,
        last_seq: u64,
    ) -> BoxFuture<'static, JournalResult<()>> {
        self.send(|reply| Command::Finish {
            session_id,
            status,
            usage,
            last_seq,
            reply,
        })
    }

    fn release(&self, session_id: String) -> BoxFuture<'static, JournalResult<()>> {
        self.send(|reply| Command::Release(session_id, reply))
    }

    fn heartbeat(
        &self,
        owner: String,
        expires_at_ms: i64,
    ) -> BoxFuture<'static, JournalResult<u64>> {
        self.send(|reply| Command::Heartbeat {
            owner,
            expires_at_ms,
            reply,
        })
    }

    fn claim(
        &self,
        session_id: String,
        owner: String,
        now_ms: i64,
        expires_at_ms: i64,
    ) -> BoxFuture<'static, JournalResult<Option<Claimed>>> {
        self.send(|reply| Command::Claim {
            session_id,
            owner,
            now_ms,
            expires_at_ms,
            reply,
        })
    }

    fn orphans(&self, now_ms: i64, limit: usize) -> BoxFuture<'static, JournalResult<Vec<String>>> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT session_id FROM sessions
                     WHERE status = 'running' AND (owner IS NULL OR lease_expires_at_ms < ?1)
                     ORDER BY lease_expires_at_ms, session_id LIMIT ?2",
                )
                .map_err(sql("prepare orphans"))?;
            let rows = stmt
                .query_map(params![now_ms, limit as i64], |row| row.get(0))
                .map_err(sql("orphans"))?;
            rows.collect::<Result<Vec<String>, _>>()
                .map_err(sql("orphans row"))
        })
    }
}
