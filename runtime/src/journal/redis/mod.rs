//! The Redis journal: sessions and events in one Redis server that every replica, on any
//! host, talks to. The production backend (`--journal redis://host:port/db?prefix=NAME`).
//!
//! # Keys (all under one prefix, so runs never collide and a run is deleted by pattern)
//! - `{p}:s:{id}`: a hash per session: `record` (the [`SessionRecord`] as created, JSON) and
//!   the fields that change afterwards, `status`, `owner`, `lease`, `last_seq`, `usage`. A
//!   missing `owner`/`lease` field is `None`.
//! - `{p}:ev:{id}`: a Stream per session; event `seq` has the explicit entry id `{seq}-1` and
//!   the fields `k` (kind) and `d` (data). `read_after` is `XRANGE (after-1 + COUNT limit`.
//! - `{p}:idem:{key}`: the session id an idempotency key created.
//! - `{p}:leases`: a sorted set of every *running* session, scored by lease expiry in ms
//!   (`-inf` when released, `+inf` when owned without a lease). `orphans` is one
//!   `ZRANGEBYSCORE -inf (now`; finishing a session removes it.
//! - `{p}:owner:{owner}`: the set of running sessions an owner holds, for `heartbeat`.
//!
//! Every write is one Lua script (atomic on the server), so two replicas racing to create the
//! same idempotency key, or to claim the same session, see exactly one winner. An append
//! checks that `seq` is exactly one more than the stream's last entry: no gap, no duplicate,
//! and a stale owner that lost its session cannot write a seq the new owner already wrote
//! ([`JournalError::SeqTaken`]; a gap is [`JournalError::OutOfOrder`]). Which of two live writers gets a seq first is decided by
//! the lease, not here: `append` does not carry the owner.
//!
//! # Ordering and group commit
//! Writes go through one writer task per process: [`Journal::append`] queues its command when
//! it is *called* (the trait's ordering contract), and the writer sends everything queued
//! as one pipeline, waits for Redis's replies, then sends the next. No linger: whatever
//! queued while a pipeline was in flight forms the next one, so a lone session pays one
//! round trip and a thousand sessions share one. Reads go straight to the multiplexed
//! connection and never wait for the writer.
//!
//! # Durability
//! An append resolves once Redis has applied it and replied, and only then does the emitter
//! wake local streams; a stream on another replica reads with `XRANGE`, whose reply Redis
//! sends after the same AOF write (replies leave at the end of an event-loop iteration,
//! after the AOF buffer is written, and fsynced first with `appendfsync always`). So a
//! client never sees an event Redis has not made as durable as its configuration promises.
//! What that is, is the operator's choice: with `appendonly yes` Redis writes the AOF before
//! replying, so an acknowledged event survives a crash *of the Redis process*
//! (`appendfsync everysec`, the usual setting, may lose about a second on a power cut or
//! kernel crash; `always` loses nothing, at a cost measured in `docs/benchmarks.md`).
//! Without AOF, a crash loses everything since the last RDB snapshot, events clients saw
//! included; the harness's `journal_kill` fault shows that (`scenarios/journal-kill-unsafe.toml`).
//! Replication is asynchronous: a failover to a replica may lose acknowledged events.
//!
//! # Failures
//! A down or unreachable Redis is [`JournalError::Redis`], never a panic or a hang: every
//! operation is bounded by [`RedisOptions::op_timeout`], and the `ConnectionManager`
//! reconnects on the next operation after a connection is lost (one reconnect attempt per
//! operation, so a refused connection fails in a fraction of a second and the replica can
//! report it: see `lease::heartbeat` and `/readyz`). If Redis restarted empty, the scripts
//! are loaded again (on `NOSCRIPT`).
//!
//! # Layout
//! - this file: options, connecting, the [`Journal`] impl (which keys, which script).
//! - `scripts.rs`: the Lua scripts, one per write.
//! - `writer.rs`: the writer task (pipelined group commit, `NOSCRIPT` reload, timeouts).
//! - `decode.rs`: Redis replies into [`SessionRecord`]s and [`EventRecord`]s.
//!
//! Not for Redis Cluster: scripts touch keys they compute (owner sets, other sessions'
//! hashes), so all keys must live on one server. Nothing expires: a run's keys stay until
//! deleted, which is why each run should use its own prefix.

mod decode;
mod scripts;
mod writer;

use std::time::Duration;

use futures::{FutureExt, future::BoxFuture};
use redis::{
    Cmd, FromRedisValue, RedisError, Value,
    aio::{ConnectionManager, ConnectionManagerConfig},
};
use tokio::sync::{mpsc, oneshot};

use super::{Claimed, Created, Journal, JournalError, JournalResult};
use crate::session::{EventRecord, SessionRecord, SessionStatus, Usage};
use decode::{Entry, event_from, parse, record_from, seq_of, to_json};
use scripts::{FIELDS, SCRIPTS, evalsha, lease_score};
use writer::{Queued, bounded, load_scripts, timed_out, writer_loop};

/// The key prefix used when the URL names none.
pub const DEFAULT_PREFIX: &str = "dropzero";
/// The bound on any one journal operation unless [`RedisOptions`] says otherwise.
pub const DEFAULT_OP_TIMEOUT: Duration = Duration::from_secs(5);

/// How to talk to Redis, besides the URL.
#[derive(Debug, Clone)]
pub struct RedisOptions {
    /// Every key starts with `{prefix}:`.
    pub prefix: String,
    /// The longest any one operation may take (queueing, reconnecting and the reply
    /// included) before it fails with a timeout.
    pub op_timeout: Duration,
    /// For a `rediss://` URL: PEM of the CA certificates the server's certificate must chain
    /// to, replacing the system's trust store (`None` = the system's, e.g. for ElastiCache).
    pub ca_pem: Option<Vec<u8>>,
}

impl RedisOptions {
    pub fn new(prefix: impl Into<String>) -> RedisOptions {
        RedisOptions {
            prefix: prefix.into(),
            op_timeout: DEFAULT_OP_TIMEOUT,
            ca_pem: None,
        }
    }
}

/// A journal in one Redis server. Dropping it stops the writer task after it drains.
pub struct RedisJournal {
    keys: Keys,
    conn: ConnectionManager,
    writer: mpsc::UnboundedSender<Queued>,
    op_timeout: Duration,
}

impl std::fmt::Debug for RedisJournal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisJournal")
            .field("prefix", &self.keys.prefix)
            .finish()
    }
}

impl RedisJournal {
    /// Connect to `url` (`redis://host:port[/db]`, or `rediss://` for TLS: rustls, the
    /// server's name checked against its certificate), load the scripts, start the writer.
    /// Fails with [`JournalError::Redis`] if Redis cannot be reached within the timeout or
    /// its certificate is not trusted.
    pub async fn open(url: &str, options: RedisOptions) -> JournalResult<RedisJournal> {
        let client = match options.ca_pem {
            Some(pem) => redis::Client::build_with_tls(
                url,
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem),
                },
            ),
            None => redis::Client::open(url),
        }
        .map_err(redis_error("parsing the URL"))?;
        let op_timeout = options.op_timeout;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(op_timeout.min(Duration::from_secs(2))))
            .set_response_timeout(Some(op_timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(1));
        let mut conn = bounded(
            op_timeout,
            ConnectionManager::new_with_config(client, config),
        )
        .await
        .map_err(redis_error("connecting"))?;
        bounded(op_timeout, load_scripts(&mut conn))
            .await
            .map_err(redis_error("loading the scripts"))?;
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(writer_loop(conn.clone(), rx, op_timeout));
        Ok(RedisJournal {
            keys: Keys {
                prefix: options.prefix,
            },
            conn,
            writer: tx,
            op_timeout,
        })
    }

    /// Queue a write now (so calls are applied in call order); resolve with its reply.
    fn write(
        &self,
        context: &'static str,
        cmd: Cmd,
    ) -> impl Future<Output = JournalResult<Value>> + Send + 'static {
        let (reply, rx) = oneshot::channel();
        let sent = self.writer.send(Queued { cmd, reply }).is_ok();
        let op_timeout = self.op_timeout;
        async move {
            if !sent {
                return Err(JournalError::WriterGone);
            }
            let reply = tokio::time::timeout(op_timeout, rx)
                .await
                .map_err(|_| redis_error(context)(timed_out(op_timeout)))?
                .map_err(|_| JournalError::WriterGone)?;
            reply
                .and_then(|value| value.extract_error())
                .map_err(redis_error(context))
        }
    }

    /// Run a read on the shared multiplexed connection.
    fn read<T: FromRedisValue + Send + 'static>(
        &self,
        context: &'static str,
        cmd: Cmd,
    ) -> impl Future<Output = JournalResult<T>> + Send + 'static {
        let mut conn = self.conn.clone();
        let op_timeout = self.op_timeout;
        async move {
            bounded(op_timeout, cmd.query_async::<T>(&mut conn))
                .await
                .map_err(redis_error(context))
        }
    }
}

fn redis_error(context: &'static str) -> impl FnOnce(RedisError) -> JournalError {
    move |source| JournalError::Redis { context, source }
}

/// Key names under one prefix.
#[derive(Debug, Clone)]
struct Keys {
    prefix: String,
}

impl Keys {
    fn session(&self, id: &str) -> String {
        format!("{}:s:{id}", self.prefix)
    }
    fn events(&self, id: &str) -> String {
        format!("{}:ev:{id}", self.prefix)
    }
    fn idempotency(&self, key: &str) -> String {
        format!("{}:idem:{key}", self.prefix)
    }
    fn leases(&self) -> String {
        format!("{}:leases", self.prefix)
    }
    fn owner(&self, owner: &str) -> String {
        format!("{}:owner:{owner}", self.prefix)
    }
}

impl Journal for RedisJournal {
    fn create(&self, record: SessionRecord) -> BoxFuture<'static, JournalResult<Created>> {
        let id = record.session_id.clone();
        let idempotency = record.idempotency_key.as_deref().unwrap_or_default();
        let mut cmd = evalsha(
            &SCRIPTS.create,
            &[
                &self.keys.session(&id),
                &self.keys.leases(),
                &self.keys.idempotency(idempotency),
            ],
        );
        cmd.arg(&self.keys.prefix)
            .arg(&id)
            .arg(to_json(&record))
            .arg(record.status.as_str())
            .arg(record.owner.as_deref().unwrap_or_default())
            .arg(
                record
                    .lease_expires_at_ms
                    .map(|l| l.to_string())
                    .unwrap_or_default(),
            )
            .arg(to_json(&record.usage))
            .arg(lease_score(
                record.owner.as_deref(),
                record.lease_expires_at_ms,
            ))
            .arg(if record.idempotency_key.is_some() {
                "1"
            } else {
                "0"
            });
        let reply = self.write("create", cmd);
        async move {
            let reply: Vec<Value> = parse("create reply", reply.await?)?;
            let mut reply = reply.into_iter();
            match reply
                .next()
                .map(|v| parse::<i64>("create reply", v))
                .transpose()?
            {
                Some(0) => Ok(Created {
                    record,
                    existed: false,
                }),
                Some(1) => {
                    let existing: String = parse("create reply", reply.next().unwrap_or_default())?;
                    let fields = parse("create reply", reply.next().unwrap_or_default())?;
                    let record =
                        record_from(&existing, fields)?.ok_or_else(|| JournalError::Corrupt {
                            session_id: existing.clone(),
                            message: "an idempotency key names a session that does not exist"
                                .into(),
                        })?;
                    Ok(Created {
                        record,
                        existed: true,
                    })
                }
                _ => Err(JournalError::Corrupt {
                    session_id: id,
                    message: "a session with this id already exists".into(),
                }),
            }
        }
        .boxed()
    }

    fn session(
        &self,
        session_id: String,
    ) -> BoxFuture<'static, JournalResult<Option<SessionRecord>>> {
        let mut cmd = redis::cmd("HMGET");
        cmd.arg(self.keys.session(&session_id)).arg(&FIELDS[..]);
        let fields = self.read::<Vec<Option<String>>>("session", cmd);
        async move { record_from(&session_id, fields.await?) }.boxed()
    }

    fn append(&self, event: EventRecord) -> BoxFuture<'static, JournalResult<()>> {
        let mut cmd = evalsha(
            &SCRIPTS.append,
            &[
                &self.keys.events(&event.session_id),
                &self.keys.session(&event.session_id),
            ],
        );
        cmd.arg(event.seq).arg(&event.kind).arg(&event.data);
        let reply = self.write("append", cmd);
        async move {
            match parse::<i64>("append reply", reply.await?)? {
                0 => Ok(()),
                -1 => Err(JournalError::UnknownSession(event.session_id)),
                // The seq is already written: another owner got there (the fence).
                expected if (expected as u64) > event.seq => Err(JournalError::SeqTaken {
                    session_id: event.session_id,
                    seq: event.seq,
                }),
                expected => Err(JournalError::OutOfOrder {
                    session_id: event.session_id,
                    seq: event.seq,
                    expected: expected as u64,
                }),
            }
        }
        .boxed()
    }

    fn read_after(
        &self,
        session_id: String,
        after: u64,
        limit: usize,
    ) -> BoxFuture<'static, JournalResult<Vec<EventRecord>>> {
        if limit == 0 {
            return futures::future::ready(Ok(Vec::new())).boxed();
        }
        let mut cmd = redis::cmd("XRANGE");
        cmd.arg(self.keys.events(&session_id))
            .arg(format!("({after}-1"))
            .arg("+")
            .arg("COUNT")
            .arg(limit);
        let entries = self.read::<Vec<Entry>>("read_after", cmd);
        async move {
            entries
                .await?
                .into_iter()
                .map(|entry| event_from(&session_id, entry))
                .collect()
        }
        .boxed()
    }

    fn last_seq(&self, session_id: String) -> BoxFuture<'static, JournalResult<u64>> {
        let mut cmd = redis::cmd("XREVRANGE");
        cmd.arg(self.keys.events(&session_id))
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1);
        let entries = self.read::<Vec<Entry>>("last_seq", cmd);
        async move {
            match entries.await?.first() {
                Some((id, _)) => seq_of(&session_id, id),
                None => Ok(0),
            }
        }
        .boxed()
    }

    fn finish(
        &self,
        session_id: String,
        status: SessionStatus,
        usage: Usage,
        last_seq: u64,
    ) -> BoxFuture<'static, JournalResult<()>> {
        let mut cmd = evalsha(
            &SCRIPTS.finish,
            &[&self.keys.session(&session_id), &self.keys.leases()],
        );
        cmd.arg(&self.keys.prefix)
            .arg(&session_id)
            .arg(status.as_str())
            .arg(to_json(&usage))
            .arg(last_seq);
        let reply = self.write("finish", cmd);
        async move {
            match parse::<i64>("finish reply", reply.await?)? {
                0 => Ok(()),
                _ => Err(JournalError::UnknownSession(session_id)),
            }
        }
        .boxed()
    }

    fn release(&self, session_id: String) -> BoxFuture<'static, JournalResult<()>> {
        let mut cmd = evalsha(
            &SCRIPTS.release,
            &[&self.keys.session(&session_id), &self.keys.leases()],
        );
        cmd.arg(&self.keys.prefix).arg(&session_id);
        let reply = self.write("release", cmd);
        async move { reply.await.map(drop) }.boxed()
    }

    fn heartbeat(
        &self,
        owner: String,
        expires_at_ms: i64,
    ) -> BoxFuture<'static, JournalResult<u64>> {
        let mut cmd = evalsha(
            &SCRIPTS.heartbeat,
            &[&self.keys.owner(&owner), &self.keys.leases()],
        );
        cmd.arg(&self.keys.prefix).arg(&owner).arg(expires_at_ms);
        let reply = self.write("heartbeat", cmd);
        async move { parse::<u64>("heartbeat reply", reply.await?) }.boxed()
    }

    fn claim(
        &self,
        session_id: String,
        owner: String,
        now_ms: i64,
        expires_at_ms: i64,
    ) -> BoxFuture<'static, JournalResult<Option<Claimed>>> {
        let mut cmd = evalsha(
            &SCRIPTS.claim,
            &[&self.keys.session(&session_id), &self.keys.leases()],
        );
        cmd.arg(&self.keys.prefix)
            .arg(&session_id)
            .arg(&owner)
            .arg(now_ms)
            .arg(expires_at_ms);
        let reply = self.write("claim", cmd);
        async move {
            let reply: Option<(Option<String>, Vec<Option<String>>)> =
                parse("claim reply", reply.await?)?;
            let Some((previous_owner, fields)) = reply else {
                return Ok(None);
            };
            let record =
                record_from(&session_id, fields)?.ok_or_else(|| JournalError::Corrupt {
                    session_id: session_id.clone(),
                    message: "claimed a session whose record vanished".into(),
                })?;
            Ok(Some(Claimed {
                record,
                previous_owner,
            }))
        }
        .boxed()
    }

    fn orphans(&self, now_ms: i64, limit: usize) -> BoxFuture<'static, JournalResult<Vec<String>>> {
        if limit == 0 {
            return futures::future::ready(Ok(Vec::new())).boxed();
        }
        let mut cmd = redis::cmd("ZRANGEBYSCORE");
        cmd.arg(self.keys.leases())
            .arg("-inf")
            .arg(format!("({now_ms}"))
            .arg("LIMIT")
            .arg(0)
            .arg(limit.min(i64::MAX as usize));
        self.read::<Vec<String>>("orphans", cmd).boxed()
    }
}
