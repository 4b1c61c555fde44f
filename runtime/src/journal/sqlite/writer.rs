//! The journal's writer thread (group commit), its checkpointer thread, and the statements
//! that run inside a batch: create, append (the fence), finish, release, heartbeat, claim,
//! and one slice of the `hot` → `events` sweep per batch.

use std::{
    collections::{HashMap, HashSet},
    sync::mpsc::{self, RecvTimeoutError},
    time::{Duration, Instant},
};

use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::oneshot;

use super::{SELECT_SESSION, row_to_record, sql};
use crate::journal::{Claimed, Created, JournalError, JournalResult};
use crate::session::{EventRecord, SessionRecord, SessionStatus, Usage};

/// The longest the writer waits after the first queued write for more to join its batch.
pub const DEFAULT_LINGER: Duration = Duration::from_millis(2);
const MAX_BATCH: usize = 2048;
/// The writer's page cache (KiB). A batch may dirty up to one B-tree leaf per session in it;
/// with SQLite's default 2 MiB, a 1,000-session batch spilled dirty pages into the WAL
/// mid-transaction (rewritten again at commit) and read evicted pages back from the WAL:
/// together a quarter of the writer's time. Pages are allocated as used, not up front.
pub(super) const WRITER_CACHE_KIB: i64 = 64 * 1024;
/// WAL size (pages) at which the committing writer checkpoints itself. The checkpointer
/// thread copies most of the WAL in the background, but a PASSIVE checkpoint racing a busy
/// writer never finds the WAL fully copied, and only a fully copied WAL restarts from the
/// top: this bounds the WAL and the stall of the writer's own checkpoint. SQLite's default,
/// on purpose: measured on a quiet box (`journal_bench`, docs/benchmarks.md), 16,384 pages
/// gave ~1.35× the appends/s of 1,000 but a worse append p99 than before any of these
/// changes (200 × 500: 18–28 ms against 14–15 ms), while 1,000 beats the old journal on
/// both (1.5× the appends/s, p99 12–13 ms).
pub(super) const WAL_AUTOCHECKPOINT_PAGES: i64 = 1000;
/// How often, at most, the checkpointer thread copies the WAL into the database. Each run
/// copies every hot page once however many commits rewrote it since the last one.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);

/// A session's rows stay in `hot` for about this many batches before the sweep moves them
/// to `events` (each batch moves the sessions in one slice of `hot`'s sid range, see
/// [`compact_slice`]). More batches: fewer, fuller rewrites of each session's `events` leaf,
/// but a bigger `hot` whose leaves a batch dirties more of.
const SWEEP_BATCHES: i64 = 8;
/// The writer forgets its `session_id → sid` cache when it grows past this many sessions.
const SID_CACHE_MAX: usize = 100_000;

pub(super) enum Command {
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

/// The group-commit loop: take everything queued, write it in one transaction, answer.
///
/// The batch closes when `linger` has passed since its first command, or as soon as the
/// queue has stayed empty for an eighth of it: a burst of appends (every session answering
/// the previous commit) arrives microseconds apart and lands in one batch, while a lone
/// session no longer pays the whole linger per append. Waiting is a blocking receive with a
/// timeout, not sleep-polling.
pub(super) fn writer_loop(
    conn: Connection,
    rx: mpsc::Receiver<Command>,
    linger: Duration,
    committed: mpsc::SyncSender<()>,
) {
    let mut writer = Writer {
        conn,
        state: BatchState::default(),
        sweep_from: 0,
    };
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
        writer.commit_batch(batch);
        // Full means a checkpoint is already due.
        let _ = committed.try_send(());
    }
}

struct Writer {
    conn: Connection,
    state: BatchState,
    /// Where the next slice of the `hot` → `events` sweep starts (a sid).
    sweep_from: i64,
}

/// What the commands of a batch read and update besides the database.
#[derive(Default)]
struct BatchState {
    /// The sessions for which one of this process's appends hit a taken seq: every later
    /// append of ours for them fails too, so a replica that lost a session can never slip
    /// an event in behind the new owner's. A successful claim lifts the fence. Per process,
    /// which is sound because a process never runs two agent loops for one session
    /// (`AppState` does not claim a session whose loop runs locally).
    fenced: HashSet<String>,
    /// `session_id → sid` of committed sessions. Safe to cache across processes: a sid is
    /// assigned once (`AUTOINCREMENT`) and sessions are never deleted. Saves an index seek
    /// on the 36-character id per append.
    sids: HashMap<String, i64>,
    /// Looked up in the open transaction; cached only once it commits (a rolled-back create
    /// would leave its sid free for another session).
    staged_sids: Vec<(String, i64)>,
}

impl BatchState {
    fn sid(&mut self, tx: &Connection, session_id: &str) -> JournalResult<Option<i64>> {
        if let Some(&sid) = self.sids.get(session_id) {
            return Ok(Some(sid));
        }
        let sid = tx
            .prepare_cached("SELECT sid FROM sessions WHERE session_id = ?1")
            .and_then(|mut stmt| {
                stmt.query_row(params![session_id], |row| row.get(0))
                    .optional()
            })
            .map_err(sql("append: sid"))?;
        if let Some(sid) = sid {
            self.staged_sids.push((session_id.to_string(), sid));
        }
        Ok(sid)
    }

    fn settle(&mut self, committed: bool) {
        if committed {
            if self.sids.len() + self.staged_sids.len() > SID_CACHE_MAX {
                self.sids.clear();
            }
            self.sids.extend(self.staged_sids.drain(..));
        } else {
            self.staged_sids.clear();
        }
    }
}

impl Writer {
    /// One transaction per batch, by hand (`BEGIN IMMEDIATE` … `COMMIT`, `ROLLBACK` on
    /// failure) so that a failed sweep can be rolled back and the batch run in a fresh one.
    fn commit_batch(&mut self, batch: Vec<Command>) {
        let conn = &self.conn;
        // The sweep goes first so that, should it fail, rolling back loses nothing else: a
        // failed sweep never fails the batch's own writes. (No savepoint around it instead:
        // every page it touched would be copied to a sub-journal first, ~6% of the writer.)
        let begun = conn.execute_batch("BEGIN IMMEDIATE").and_then(|()| {
            match compact_slice(conn, self.sweep_from) {
                Ok(next) => {
                    self.sweep_from = next;
                    Ok(())
                }
                Err(e) => {
                    tracing::warn!(error = %e, "journal: moving hot events failed");
                    conn.execute_batch("ROLLBACK; BEGIN IMMEDIATE")
                }
            }
        });
        if let Err(e) = begun {
            let _ = conn.execute_batch("ROLLBACK");
            let msg = e.to_string();
            for cmd in batch {
                cmd.run_failed(&msg);
            }
            return;
        }
        let pending: Vec<Pending> = batch
            .into_iter()
            .map(|cmd| cmd.run(conn, &mut self.state))
            .collect();
        let committed = conn.execute_batch("COMMIT").map_err(|e| {
            let _ = conn.execute_batch("ROLLBACK");
            e.to_string()
        });
        self.state.settle(committed.is_ok());
        let failed = committed.as_ref().err().map(String::as_str);
        for p in pending {
            p(failed);
        }
    }
}

/// Move the `hot` rows of the sessions in one slice of `hot`'s sid range into `events`,
/// starting at sid `from` (wrapping to the lowest sid once past the highest); returns where
/// the next slice starts. A slice is 1/[`SWEEP_BATCHES`] of the range, so every session
/// present is moved about once per that many batches, each time with all the rows it
/// gathered since: its `events` leaf is rewritten once per sweep, not once per batch.
/// Whole sessions move in one transaction, so for every sid the rows in `events` precede
/// those in `hot` and a reader of both (one statement, one snapshot) sees each row once.
///
/// `OR IGNORE` because a statement that may abort halfway has SQLite copy every page it
/// touches to a statement journal first. It ignores nothing in practice: the head admits
/// each `(sid, seq)` once, so no row of `hot` is already in `events`.
fn compact_slice(tx: &Connection, from: i64) -> rusqlite::Result<i64> {
    let (min, max): (Option<i64>, Option<i64>) = tx
        .prepare_cached("SELECT (SELECT MIN(sid) FROM hot), (SELECT MAX(sid) FROM hot)")?
        .query_row([], |row| Ok((row.get(0)?, row.get(1)?)))?;
    let (Some(min), Some(max)) = (min, max) else {
        return Ok(from);
    };
    let lo = if (min..=max).contains(&from) {
        from
    } else {
        min
    };
    let hi = lo + (max - min) / SWEEP_BATCHES;
    tx.prepare_cached(
        "INSERT OR IGNORE INTO events (sid, seq, kind, data)
         SELECT sid, seq, kind, data FROM hot WHERE sid BETWEEN ?1 AND ?2",
    )?
    .execute(params![lo, hi])?;
    tx.prepare_cached("DELETE FROM hot WHERE sid BETWEEN ?1 AND ?2")?
        .execute(params![lo, hi])?;
    Ok(hi + 1)
}

/// Checkpoint the WAL (PASSIVE: never blocks the writer or readers) after commits, at most
/// every [`CHECKPOINT_EVERY`], on this thread's own connection, so no append waits for the
/// copy or its fsyncs. Ends when the writer does. Failures are left to the next round and
/// to the writer's backstop.
pub(super) fn checkpoint_loop(conn: Connection, commits: mpsc::Receiver<()>) {
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

impl Command {
    /// Execute inside the batch's transaction; the answer waits for the commit.
    fn run(self, tx: &Connection, state: &mut BatchState) -> Pending {
        match self {
            Command::Create(record, reply) => pending(reply, create(tx, record)),
            Command::Append(event, reply) => {
                let result = if state.fenced.contains(&event.session_id) {
                    Err(JournalError::SeqTaken {
                        session_id: event.session_id.clone(),
                        seq: event.seq,
                    })
                } else {
                    append(tx, state, &event)
                };
                if let Err(JournalError::SeqTaken { session_id, .. }) = &result {
                    state.fenced.insert(session_id.clone());
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
                    state.fenced.remove(&session_id);
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
        conn.execute(
            "INSERT INTO heads (sid, seq) VALUES (?1, 0)",
            params![conn.last_insert_rowid()],
        )
        .map_err(sql("insert head"))?;
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

/// Append one event: advance the session's head from `seq - 1` to `seq`, then store the row
/// in `hot`. The head is the fence: it only moves forward by one, so a seq that is already
/// journaled (`SeqTaken`) or one that skips ahead (`OutOfOrder`) changes nothing, wherever
/// the earlier rows now live.
fn append(tx: &Connection, state: &mut BatchState, event: &EventRecord) -> JournalResult<()> {
    let unknown = || JournalError::UnknownSession(event.session_id.clone());
    let sid = state.sid(tx, &event.session_id)?.ok_or_else(unknown)?;
    let advanced = tx
        .prepare_cached("UPDATE heads SET seq = ?2 WHERE sid = ?1 AND seq = ?2 - 1")
        .and_then(|mut stmt| stmt.execute(params![sid, event.seq]))
        .map_err(sql("append: advance head"))?;
    if advanced == 0 {
        let head: Option<u64> = tx
            .prepare_cached("SELECT seq FROM heads WHERE sid = ?1")
            .and_then(|mut stmt| stmt.query_row(params![sid], |row| row.get(0)).optional())
            .map_err(sql("append: read head"))?;
        return Err(match head {
            None => unknown(),
            Some(head) if head >= event.seq => JournalError::SeqTaken {
                session_id: event.session_id.clone(),
                seq: event.seq,
            },
            Some(head) => JournalError::OutOfOrder {
                session_id: event.session_id.clone(),
                seq: event.seq,
                expected: head + 1,
            },
        });
    }
    tx.prepare_cached("INSERT INTO hot (sid, seq, kind, data) VALUES (?1, ?2, ?3, ?4)")
        .and_then(|mut stmt| stmt.execute(params![sid, event.seq, event.kind, event.data]))
        .map(|_| ())
        .map_err(sql("append event"))
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
