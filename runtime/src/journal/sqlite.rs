//! The SQLite journal: one database file that several replica processes open at once.
//!
//! Writes go through one writer thread per process that batches everything queued (plus a
//! short linger) into one `BEGIN IMMEDIATE` transaction — group commit — and then answers
//! each caller. Reads use a small pool of separate connections on the blocking pool; in WAL
//! mode they never wait for the writer and only ever see committed rows, which is what
//! makes "journaled before any client sees it" hold. `busy_timeout` covers the moments when
//! another process holds the write lock. `synchronous = NORMAL` survives a process crash
//! (our fault model: kill, OOM), not a power cut.
//!
//! Not for notification: other processes learn of new rows by polling `read_after`.

use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use futures::{FutureExt, future::BoxFuture};
use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::{mpsc, oneshot};

use super::{Claimed, Created, Journal, JournalError, JournalResult};
use crate::session::{Budget, EventRecord, SessionRecord, SessionStatus, Usage};

/// The schema; `CREATE … IF NOT EXISTS` so every replica may run it at start-up.
pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS sessions (
    session_id          TEXT PRIMARY KEY,
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
CREATE TABLE IF NOT EXISTS events (
    session_id TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    kind       TEXT NOT NULL,
    data       TEXT NOT NULL,
    PRIMARY KEY (session_id, seq)
) WITHOUT ROWID;
";

/// How long the writer waits after the first queued write for more to join its batch.
pub const DEFAULT_LINGER: Duration = Duration::from_millis(2);
const MAX_BATCH: usize = 2048;

enum Command {
    Create(SessionRecord, oneshot::Sender<JournalResult<Created>>),
    Append(EventRecord, oneshot::Sender<JournalResult<()>>),
    Finish {
        session_id: String,
        status: SessionStatus,
        usage: Usage,
        last_seq: u64,
        reply: oneshot::Sender<JournalResult<()>>,
    },
    Release(String, oneshot::Sender<JournalResult<()>>),
    Heartbeat {
        owner: String,
        expires_at_ms: i64,
        reply: oneshot::Sender<JournalResult<u64>>,
    },
    Claim {
        session_id: String,
        owner: String,
        now_ms: i64,
        expires_at_ms: i64,
        reply: oneshot::Sender<JournalResult<Option<Claimed>>>,
    },
}

/// A journal in one SQLite file. Dropping it stops the writer thread after it drains.
pub struct SqliteJournal {
    path: PathBuf,
    writer: mpsc::UnboundedSender<Command>,
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
        let conn = open_connection(&path)?;
        conn.execute_batch(SCHEMA).map_err(sql("schema"))?;
        let (tx, rx) = mpsc::unbounded_channel();
        std::thread::Builder::new()
            .name("journal-writer".into())
            .spawn(move || writer_loop(conn, rx, linger))
            .map_err(|e| JournalError::Corrupt {
                session_id: String::new(),
                message: format!("spawning the writer thread: {e}"),
            })?;
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

/// The group-commit loop: take everything queued, write it in one transaction, answer.
fn writer_loop(mut conn: Connection, mut rx: mpsc::UnboundedReceiver<Command>, linger: Duration) {
    while let Some(first) = rx.blocking_recv() {
        let mut batch = vec![first];
        let deadline = Instant::now() + linger;
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(cmd) => batch.push(cmd),
                Err(mpsc::error::TryRecvError::Empty) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_micros(200));
                }
                Err(_) => break,
            }
        }
        commit_batch(&mut conn, batch);
    }
}

/// The outcome of one command inside a transaction, delivered after the commit.
enum Pending {
    // Boxed: a created session record is large, and batches hold many small `Unit`s.
    Create(
        oneshot::Sender<JournalResult<Created>>,
        Box<JournalResult<Created>>,
    ),
    Unit(oneshot::Sender<JournalResult<()>>, JournalResult<()>),
    Count(oneshot::Sender<JournalResult<u64>>, JournalResult<u64>),
    Claim(
        oneshot::Sender<JournalResult<Option<Claimed>>>,
        Box<JournalResult<Option<Claimed>>>,
    ),
}

fn commit_batch(conn: &mut Connection, batch: Vec<Command>) {
    let tx = match conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => {
            let msg = e.to_string();
            for cmd in batch {
                fail(cmd, &msg);
            }
            return;
        }
    };
    let mut pending = Vec::with_capacity(batch.len());
    for cmd in batch {
        pending.push(match cmd {
            Command::Create(record, reply) => Pending::Create(reply, Box::new(create(&tx, record))),
            Command::Append(event, reply) => Pending::Unit(reply, append(&tx, &event)),
            Command::Finish {
                session_id,
                status,
                usage,
                last_seq,
                reply,
            } => Pending::Unit(reply, finish(&tx, &session_id, status, usage, last_seq)),
            Command::Release(session_id, reply) => Pending::Unit(
                reply,
                tx.execute(
                    "UPDATE sessions SET owner = NULL, lease_expires_at_ms = NULL WHERE session_id = ?1",
                    params![session_id],
                )
                .map(|_| ())
                .map_err(sql("release")),
            ),
            Command::Heartbeat {
                owner,
                expires_at_ms,
                reply,
            } => Pending::Count(
                reply,
                tx.execute(
                    "UPDATE sessions SET lease_expires_at_ms = ?2
                     WHERE owner = ?1 AND status = 'running'",
                    params![owner, expires_at_ms],
                )
                .map(|n| n as u64)
                .map_err(sql("heartbeat")),
            ),
            Command::Claim {
                session_id,
                owner,
                now_ms,
                expires_at_ms,
                reply,
            } => Pending::Claim(
                reply,
                Box::new(claim(&tx, &session_id, &owner, now_ms, expires_at_ms)),
            ),
        });
    }
    let committed = tx.commit().map_err(|e| e.to_string());
    for p in pending {
        match (p, &committed) {
            (Pending::Create(reply, result), Ok(())) => drop(reply.send(*result)),
            (Pending::Unit(reply, result), Ok(())) => drop(reply.send(result)),
            (Pending::Count(reply, result), Ok(())) => drop(reply.send(result)),
            (Pending::Claim(reply, result), Ok(())) => drop(reply.send(*result)),
            (Pending::Create(reply, _), Err(msg)) => drop(reply.send(Err(commit_error(msg)))),
            (Pending::Unit(reply, _), Err(msg)) => drop(reply.send(Err(commit_error(msg)))),
            (Pending::Count(reply, _), Err(msg)) => drop(reply.send(Err(commit_error(msg)))),
            (Pending::Claim(reply, _), Err(msg)) => drop(reply.send(Err(commit_error(msg)))),
        }
    }
}

fn commit_error(msg: &str) -> JournalError {
    JournalError::Corrupt {
        session_id: String::new(),
        message: format!("commit failed: {msg}"),
    }
}

fn fail(cmd: Command, msg: &str) {
    let err = || commit_error(msg);
    match cmd {
        Command::Create(_, reply) => drop(reply.send(Err(err()))),
        Command::Append(_, reply) | Command::Finish { reply, .. } | Command::Release(_, reply) => {
            drop(reply.send(Err(err())))
        }
        Command::Heartbeat { reply, .. } => drop(reply.send(Err(err()))),
        Command::Claim { reply, .. } => drop(reply.send(Err(err()))),
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".into())
}

fn create(conn: &Connection, record: SessionRecord) -> JournalResult<Created> {
    let inserted = conn
        .execute(
            "INSERT INTO sessions (session_id, resume_token, idempotency_key, query, budget, metadata,
                                   status, owner, lease_expires_at_ms, created_at, last_seq, usage)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 0, ?11)
             ON CONFLICT(idempotency_key) DO NOTHING",
            params![
                record.session_id,
                record.resume_token,
                record.idempotency_key,
                record.query,
                to_json(&record.budget),
                record.metadata.as_ref().map(to_json),
                record.status.as_str(),
                record.owner,
                record.lease_expires_at_ms,
                record.created_at,
                to_json(&record.usage),
            ],
        )
        .map_err(sql("insert session"))?;
    if inserted == 1 {
        return Ok(Created {
            record,
            existed: false,
        });
    }
    let key = record.idempotency_key.clone().unwrap_or_default();
    let existing = conn
        .query_row(
            &format!("{SELECT_SESSION} WHERE idempotency_key = ?1"),
            params![key],
            row_to_record,
        )
        .map_err(sql("select by idempotency key"))??;
    Ok(Created {
        record: existing,
        existed: true,
    })
}

fn append(conn: &Connection, event: &EventRecord) -> JournalResult<()> {
    conn.prepare_cached("INSERT INTO events (session_id, seq, kind, data) VALUES (?1, ?2, ?3, ?4)")
        .and_then(|mut stmt| {
            stmt.execute(params![event.session_id, event.seq, event.kind, event.data])
        })
        .map(|_| ())
        .map_err(sql("append event"))
}

fn finish(
    conn: &Connection,
    session_id: &str,
    status: SessionStatus,
    usage: Usage,
    last_seq: u64,
) -> JournalResult<()> {
    conn.execute(
        "UPDATE sessions SET status = ?2, usage = ?3, last_seq = ?4, owner = NULL,
                             lease_expires_at_ms = NULL
         WHERE session_id = ?1",
        params![session_id, status.as_str(), to_json(&usage), last_seq],
    )
    .map(|_| ())
    .map_err(sql("finish session"))
}

/// The rule of [`Journal::claim`] and [`Journal::orphans`]: running, and released or expired.
const LEASE_IS_FREE: &str = "status = 'running' AND (owner IS NULL OR lease_expires_at_ms < ?1)";

/// Inside the writer's transaction (which holds the write lock), so read-then-update is atomic.
fn claim(
    conn: &Connection,
    session_id: &str,
    owner: &str,
    now_ms: i64,
    expires_at_ms: i64,
) -> JournalResult<Option<Claimed>> {
    let previous_owner: Option<Option<String>> = conn
        .query_row(
            &format!("SELECT owner FROM sessions WHERE session_id = ?2 AND {LEASE_IS_FREE}"),
            params![now_ms, session_id],
            |row| row.get(0),
        )
        .optional()
        .map_err(sql("claim: select"))?;
    let Some(previous_owner) = previous_owner else {
        return Ok(None);
    };
    conn.execute(
        "UPDATE sessions SET owner = ?2, lease_expires_at_ms = ?3 WHERE session_id = ?1",
        params![session_id, owner, expires_at_ms],
    )
    .map_err(sql("claim: update"))?;
    let record = conn
        .query_row(
            &format!("{SELECT_SESSION} WHERE session_id = ?1"),
            params![session_id],
            row_to_record,
        )
        .map_err(sql("claim: reread"))??;
    Ok(Some(Claimed {
        record,
        previous_owner,
    }))
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
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT seq, kind, data FROM events WHERE session_id = ?1 AND seq > ?2
                     ORDER BY seq LIMIT ?3",
                )
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
                "SELECT COALESCE(MAX(seq), 0) FROM events WHERE session_id = ?1",
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
            // Released sessions (no owner) first: their lease is the oldest possible.
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT session_id FROM sessions WHERE {LEASE_IS_FREE}
                     ORDER BY owner IS NOT NULL, lease_expires_at_ms, session_id LIMIT ?2"
                ))
                .map_err(sql("prepare orphans"))?;
            let rows = stmt
                .query_map(params![now_ms, limit as i64], |row| row.get(0))
                .map_err(sql("orphans"))?;
            rows.collect::<Result<Vec<String>, _>>()
                .map_err(sql("orphans row"))
        })
    }
}
