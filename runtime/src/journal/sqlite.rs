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
//! Not for notification: other processes learn of new rows by polling `read_after`.

use std::{
    collections::HashSet,
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex,
        mpsc::{self, RecvTimeoutError},
    },
    time::{Duration, Instant},
};

use futures::{FutureExt, future::BoxFuture};
use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::oneshot;

use super::{Claimed, Created, Journal, JournalError, JournalResult};
use crate::session::{Budget, EventRecord, SessionRecord, SessionStatus, Usage};

/// The schema; `CREATE … IF NOT EXISTS` so every replica may run it at start-up.
///
/// Events are keyed by the session's integer `sid`, not its 36-character id: a batch dirties
/// about one B-tree leaf per session in it and writes each dirty leaf whole to the WAL, so
/// the smaller the rows, the more sessions share a leaf and the fewer pages a commit writes.
/// `AUTOINCREMENT` so a sid is never reused for another session's events.
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

/// The `sid` of session `?1`, as a scalar subquery (NULL for an unknown session).
macro_rules! sid_of {
    () => {
        "(SELECT sid FROM sessions WHERE session_id = ?1)"
    };
}

/// The longest the writer waits after the first queued write for more to join its batch.
pub const DEFAULT_LINGER: Duration = Duration::from_millis(2);
const MAX_BATCH: usize = 2048;
/// The writer's page cache (KiB). A batch dirties about one B-tree leaf per session in it;
/// with SQLite's default 2 MiB, a 1,000-session batch spilled dirty pages into the WAL
/// mid-transaction (rewritten again at commit) and read evicted pages back from the WAL:
/// together a quarter of the writer's time. Pages are allocated as used, not up front.
const WRITER_CACHE_KIB: i64 = 64 * 1024;
/// WAL size (pages) at which the committing writer checkpoints itself. The checkpointer
/// thread copies most of the WAL in the background, but a PASSIVE checkpoint racing a busy
/// writer never finds the WAL fully copied, and only a fully copied WAL restarts from the
/// top: this bounds the WAL and the stall of the writer's own checkpoint. SQLite's default,
/// on purpose: measured on a quiet box (`journal_bench`, docs/benchmarks.md), 16,384 pages
/// gave ~1.35× the appends/s of 1,000 but a worse append p99 than before any of these
/// changes (200 × 500: 18–28 ms against 14–15 ms), while 1,000 beats the old journal on
/// both (1.5× the appends/s, p99 12–13 ms).
const WAL_AUTOCHECKPOINT_PAGES: i64 = 1000;
/// How often, at most, the checkpointer thread copies the WAL into the database. Each run
/// copies every hot page once however many commits rewrote it since the last one.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);

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

/// Files written before events were keyed by `sid` cannot be read by this code: say so
/// instead of failing on the first append. (The journal holds in-flight sessions, not
/// archives, so such a file is retired rather than migrated.)
fn refuse_old_schema(conn: &Connection, path: &Path) -> JournalResult<()> {
    let has_sid: bool = conn
        .query_row(
            "SELECT COUNT(*) > 0 FROM pragma_table_info('events') WHERE name = 'sid'",
            [],
            |row| row.get(0),
        )
        .map_err(sql("schema check"))?;
    if has_sid {
        return Ok(());
    }
    Err(JournalError::Corrupt {
        session_id: String::new(),
        message: format!(
            "{} has the old journal schema (events keyed by session_id text); \
             start this version on a fresh journal file",
            path.display()
        ),
    })
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
        conn.pragma_update(None, "cache_size", -WRITER_CACHE_KIB)
            .map_err(sql("cache_size"))?;
        conn.pragma_update(None, "wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES)
            .map_err(sql("wal_autocheckpoint"))?;
        conn.execute_batch(SCHEMA).map_err(sql("schema"))?;
        refuse_old_schema(&conn, &path)?;
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

/// The group-commit loop: take everything queued, write it in one transaction, answer.
///
/// The batch closes when `linger` has passed since its first command, or as soon as the
/// queue has stayed empty for an eighth of it: a burst of appends (every session answering
/// the previous commit) arrives microseconds apart and lands in one batch, while a lone
/// session no longer pays the whole linger per append. Waiting is a blocking receive with a
/// timeout, not sleep-polling.
///
/// `fenced` holds the sessions for which one of this process's appends hit a taken seq:
/// every later append of ours for them fails too, so a replica that lost a session can never
/// slip an event in behind the new owner's. A successful claim lifts the fence. The fence is
/// per process, which is sound because a process never runs two agent loops for one session
/// (`AppState` does not claim a session whose loop runs locally).
fn writer_loop(
    mut conn: Connection,
    rx: mpsc::Receiver<Command>,
    linger: Duration,
    committed: mpsc::SyncSender<()>,
) {
    let mut fenced = HashSet::new();
    let quiet = linger / 8;
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        let deadline = Instant::now() + linger;
        while batch.len() < MAX_BATCH {
            if let Ok(cmd) = rx.try_recv() {
                batch.push(cmd);
                continue;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match rx.recv_timeout(left.min(quiet)) {
                Ok(cmd) => batch.push(cmd),
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
            }
        }
        commit_batch(&mut conn, batch, &mut fenced);
        // Full means a checkpoint is already due.
        let _ = committed.try_send(());
    }
}

/// Checkpoint the WAL (PASSIVE: never blocks the writer or readers) after commits, at most
/// every [`CHECKPOINT_EVERY`], on this thread's own connection, so no append waits for the
/// copy or its fsyncs. Ends when the writer does. Failures are left to the next round and
/// to the writer's backstop.
fn checkpoint_loop(conn: Connection, commits: mpsc::Receiver<()>) {
    while commits.recv().is_ok() {
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::debug!(error = %e, "journal checkpoint");
        }
        std::thread::sleep(CHECKPOINT_EVERY);
    }
}

/// A command's answer, held until the transaction commits (`None`) or fails (`Some(msg)`).
type Pending = Box<dyn FnOnce(Option<&str>) + Send>;

fn pending<T: Send + 'static>(
    reply: oneshot::Sender<JournalResult<T>>,
    result: JournalResult<T>,
) -> Pending {
    Box::new(move |commit_failed| {
        let _ = reply.send(match commit_failed {
            None => result,
            Some(msg) => Err(commit_error(msg)),
        });
    })
}

fn commit_batch(conn: &mut Connection, batch: Vec<Command>, fenced: &mut HashSet<String>) {
    let tx = match conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => {
            let msg = e.to_string();
            for cmd in batch {
                cmd.run_failed(&msg);
            }
            return;
        }
    };
    let pending: Vec<Pending> = batch.into_iter().map(|cmd| cmd.run(&tx, fenced)).collect();
    let committed = tx.commit().map_err(|e| e.to_string());
    let failed = committed.as_ref().err().map(String::as_str);
    for p in pending {
        p(failed);
    }
}

impl Command {
    /// Execute inside the batch's transaction; the answer waits for the commit.
    fn run(self, tx: &Connection, fenced: &mut HashSet<String>) -> Pending {
        match self {
            Command::Create(record, reply) => pending(reply, create(tx, record)),
            Command::Append(event, reply) => {
                let result = if fenced.contains(&event.session_id) {
                    Err(JournalError::SeqTaken {
                        session_id: event.session_id.clone(),
                        seq: event.seq,
                    })
                } else {
                    append(tx, &event)
                };
                if let Err(JournalError::SeqTaken { session_id, .. }) = &result {
                    fenced.insert(session_id.clone());
                }
                pending(reply, result)
            }
            Command::Finish {
                session_id,
                status,
                usage,
                last_seq,
                reply,
            } => pending(reply, finish(tx, &session_id, status, usage, last_seq)),
            Command::Release(session_id, reply) => pending(
                reply,
                tx.execute(
                    "UPDATE sessions SET owner = NULL, lease_expires_at_ms = NULL
                     WHERE session_id = ?1",
                    params![session_id],
                )
                .map(|_| ())
                .map_err(sql("release")),
            ),
            Command::Heartbeat {
                owner,
                expires_at_ms,
                reply,
            } => pending(
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
            } => {
                let result = claim(tx, &session_id, &owner, now_ms, expires_at_ms);
                if let Ok(Some(_)) = &result {
                    fenced.remove(&session_id);
                }
                pending(reply, result)
            }
        }
    }

    /// Answer with an error without executing (the transaction could not begin).
    fn run_failed(self, msg: &str) {
        let err = commit_error(msg);
        match self {
            Command::Create(_, reply) => drop(reply.send(Err(err))),
            Command::Append(_, reply)
            | Command::Finish { reply, .. }
            | Command::Release(_, reply) => drop(reply.send(Err(err))),
            Command::Heartbeat { reply, .. } => drop(reply.send(Err(err))),
            Command::Claim { reply, .. } => drop(reply.send(Err(err))),
        }
    }
}

fn commit_error(msg: &str) -> JournalError {
    JournalError::Corrupt {
        session_id: String::new(),
        message: format!("commit failed: {msg}"),
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
    conn.prepare_cached(concat!(
        "INSERT INTO events (sid, seq, kind, data) VALUES (",
        sid_of!(),
        ", ?2, ?3, ?4)"
    ))
    .and_then(|mut stmt| stmt.execute(params![event.session_id, event.seq, event.kind, event.data]))
    .map(|_| ())
    .map_err(|e| match e {
        rusqlite::Error::SqliteFailure(f, _)
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_NOTNULL =>
        {
            // `sid` came out NULL: no such session.
            JournalError::UnknownSession(event.session_id.clone())
        }
        // The primary key (sid, seq): another writer holds this seq.
        _ if e.sqlite_error_code() == Some(rusqlite::ErrorCode::ConstraintViolation) => {
            JournalError::SeqTaken {
                session_id: event.session_id.clone(),
                seq: event.seq,
            }
        }
        _ => sql("append event")(e),
    })
}

/// Take a running session over if its lease is free. Runs inside the writer's
/// `BEGIN IMMEDIATE` transaction, so the read of the previous owner and the conditional
/// update are atomic with respect to every other process.
fn claim(
    conn: &Connection,
    session_id: &str,
    owner: &str,
    now_ms: i64,
    expires_at_ms: i64,
) -> JournalResult<Option<Claimed>> {
    let previous_owner: Option<Option<String>> = conn
        .query_row(
            "SELECT owner FROM sessions WHERE session_id = ?1",
            params![session_id],
            |row| row.get(0),
        )
        .optional()
        .map_err(sql("claim: read owner"))?;
    let Some(previous_owner) = previous_owner else {
        return Ok(None);
    };
    let updated = conn
        .execute(
            "UPDATE sessions SET owner = ?2, lease_expires_at_ms = ?4
             WHERE session_id = ?1 AND status = 'running'
               AND (owner IS NULL OR lease_expires_at_ms < ?3)",
            params![session_id, owner, now_ms, expires_at_ms],
        )
        .map_err(sql("claim"))?;
    if updated == 0 {
        return Ok(None);
    }
    let record = conn
        .query_row(
            &format!("{SELECT_SESSION} WHERE session_id = ?1"),
            params![session_id],
            row_to_record,
        )
        .map_err(sql("claim: read record"))??;
    Ok(Some(Claimed {
        record,
        previous_owner,
    }))
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
                .prepare_cached(concat!(
                    "SELECT seq, kind, data FROM events WHERE sid = ",
                    sid_of!(),
                    " AND seq > ?2 ORDER BY seq LIMIT ?3"
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
                    "SELECT COALESCE(MAX(seq), 0) FROM events WHERE sid = ",
                    sid_of!()
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
