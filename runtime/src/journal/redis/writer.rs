//! The Redis journal's writer task: group commit by pipelining. Every write is queued here
//! when it is *called*; the task sends everything queued as one pipeline, waits for the
//! replies, answers each caller, and repeats, so writes reach Redis in call order. Not for
//! reads (they use the shared connection directly) nor for what the commands mean.

use std::time::Duration;

use redis::{Cmd, RedisError, Value, aio::ConnectionManager};
use tokio::sync::{mpsc, oneshot};

use super::scripts::SCRIPTS;

/// The most commands the writer puts in one pipeline.
const MAX_BATCH: usize = 4096;

/// A command queued for the writer, and where its reply goes.
pub(super) struct Queued {
    pub(super) cmd: Cmd,
    pub(super) reply: oneshot::Sender<Result<Value, RedisError>>,
}

pub(super) fn timed_out(after: Duration) -> RedisError {
    RedisError::from(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!("no reply from redis within {after:?}"),
    ))
}

/// `fut`, or a timeout error after `limit`.
pub(super) async fn bounded<T>(
    limit: Duration,
    fut: impl Future<Output = Result<T, RedisError>>,
) -> Result<T, RedisError> {
    tokio::time::timeout(limit, fut)
        .await
        .unwrap_or_else(|_| Err(timed_out(limit)))
}

pub(super) async fn load_scripts(conn: &mut ConnectionManager) -> Result<(), RedisError> {
    for script in SCRIPTS.all() {
        script.prepare_invoke().load_async(conn).await?;
    }
    Ok(())
}

/// The group-commit loop: send everything queued as one pipeline, answer, repeat.
pub(super) async fn writer_loop(
    mut conn: ConnectionManager,
    mut rx: mpsc::UnboundedReceiver<Queued>,
    op_timeout: Duration,
) {
    let mut batch = Vec::new();
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        // A caller that timed out has reported failure; do not apply its write later.
        batch.retain(|q| !q.reply.is_closed());
        let retry = send_batch(&mut conn, std::mem::take(&mut batch), op_timeout).await;
        if !retry.is_empty() {
            // Redis lost its script cache (it restarted, or SCRIPT FLUSH): load and resend
            // the commands that failed, in their order. Those that succeeded are answered.
            match bounded(op_timeout, load_scripts(&mut conn)).await {
                Ok(()) => {
                    for q in send_batch(&mut conn, retry, op_timeout).await {
                        let _ = q.reply.send(Err(RedisError::from((
                            redis::ErrorKind::Server(redis::ServerErrorKind::NoScript),
                            "script missing right after loading it",
                        ))));
                    }
                }
                Err(e) => {
                    for q in retry {
                        let _ = q.reply.send(Err(e.clone()));
                    }
                }
            }
        }
    }
}

/// Send `batch` as one pipeline and answer each command, except those that failed with
/// `NOSCRIPT`, which are returned (in order) for a retry.
async fn send_batch(
    conn: &mut ConnectionManager,
    batch: Vec<Queued>,
    op_timeout: Duration,
) -> Vec<Queued> {
    if batch.is_empty() {
        return batch;
    }
    let mut pipe = redis::pipe();
    for q in &batch {
        pipe.add_command(q.cmd.clone());
    }
    let sent = bounded(op_timeout, conn.send_packed_commands(&pipe, 0, batch.len())).await;
    let values = match sent {
        Ok(values) if values.len() == batch.len() => values,
        Ok(values) => {
            let e = RedisError::from((
                redis::ErrorKind::Client,
                "pipeline reply count mismatch",
                format!("{} replies to {} commands", values.len(), batch.len()),
            ));
            for q in batch {
                let _ = q.reply.send(Err(e.clone()));
            }
            return Vec::new();
        }
        Err(e) => {
            for q in batch {
                let _ = q.reply.send(Err(e.clone()));
            }
            return Vec::new();
        }
    };
    let mut retry = Vec::new();
    for (q, value) in batch.into_iter().zip(values) {
        let noscript = matches!(&value, Value::ServerError(e)
            if e.kind() == Some(redis::ServerErrorKind::NoScript));
        if noscript {
            retry.push(q);
        } else {
            let _ = q.reply.send(Ok(value));
        }
    }
    retry
}
