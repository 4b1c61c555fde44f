//! Turning Redis replies into journal records: a session hash into a [`SessionRecord`], a
//! stream entry into an [`EventRecord`]. Anything that does not parse is
//! [`JournalError::Corrupt`] naming the session. No I/O.

use redis::{FromRedisValue, Value};

use super::redis_error;
use crate::{
    journal::{JournalError, JournalResult},
    session::{EventRecord, SessionRecord, SessionStatus, Usage},
};

pub(super) fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".into())
}

pub(super) fn parse<T: FromRedisValue>(
    context: &'static str,
    value: Value,
) -> Result<T, JournalError> {
    redis::from_redis_value(value).map_err(|e| redis_error(context)(e.into()))
}

/// Build a record from the [`FIELDS`](super::scripts::FIELDS) of its hash; `None` if the hash does not exist.
pub(super) fn record_from(
    session_id: &str,
    fields: Vec<Option<String>>,
) -> JournalResult<Option<SessionRecord>> {
    let corrupt = |message: String| JournalError::Corrupt {
        session_id: session_id.to_string(),
        message,
    };
    let mut fields = fields.into_iter();
    let mut next = || fields.next().flatten();
    let (Some(record), status, owner, lease, last_seq, usage) =
        (next(), next(), next(), next(), next(), next())
    else {
        return Ok(None);
    };
    let mut record: SessionRecord =
        serde_json::from_str(&record).map_err(|e| corrupt(format!("record: {e}")))?;
    let status = status.unwrap_or_default();
    record.status =
        SessionStatus::parse(&status).ok_or_else(|| corrupt(format!("status {status:?}")))?;
    record.owner = owner;
    record.lease_expires_at_ms = lease
        .map(|l| l.parse().map_err(|_| corrupt(format!("lease {l:?}"))))
        .transpose()?;
    let last_seq = last_seq.unwrap_or_default();
    record.last_seq = last_seq
        .parse()
        .map_err(|_| corrupt(format!("last_seq {last_seq:?}")))?;
    let usage: Usage = usage
        .map(|u| serde_json::from_str(&u).map_err(|e| corrupt(format!("usage: {e}"))))
        .transpose()?
        .unwrap_or_default();
    record.usage = usage;
    Ok(Some(record))
}

/// One stream entry as `XRANGE` returns it: the id and the flat field/value list.
pub(super) type Entry = (String, Vec<String>);

pub(super) fn seq_of(session_id: &str, id: &str) -> JournalResult<u64> {
    id.split_once('-')
        .and_then(|(seq, _)| seq.parse().ok())
        .ok_or_else(|| JournalError::Corrupt {
            session_id: session_id.to_string(),
            message: format!("stream entry id {id:?}"),
        })
}

pub(super) fn event_from(session_id: &str, (id, fields): Entry) -> JournalResult<EventRecord> {
    let seq = seq_of(session_id, &id)?;
    let (mut kind, mut data) = (None, None);
    let mut fields = fields.into_iter();
    while let (Some(name), Some(value)) = (fields.next(), fields.next()) {
        match name.as_str() {
            "k" => kind = Some(value),
            "d" => data = Some(value),
            _ => {}
        }
    }
    match (kind, data) {
        (Some(kind), Some(data)) => Ok(EventRecord {
            session_id: session_id.to_string(),
            seq,
            kind,
            data,
        }),
        _ => Err(JournalError::Corrupt {
            session_id: session_id.to_string(),
            message: format!("stream entry {id} lacks `k` or `d`"),
        }),
    }
}
