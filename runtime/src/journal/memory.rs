//! The in-memory journal: sessions and events in one process's heap. Used by `naive` mode
//! and by `--journal memory`; everything is lost when the process exits. Not shareable
//! between processes (so takeover only happens between replicas of one process, in tests).

use std::{
    borrow::Cow,
    collections::HashMap,
    sync::{Mutex, MutexGuard},
};

use futures::{FutureExt, future::BoxFuture};

use super::{Claimed, Created, Journal, JournalError, JournalResult};
use crate::session::{EventRecord, SessionRecord, SessionStatus, Usage};

#[derive(Debug, Default)]
pub struct MemoryJournal {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    sessions: HashMap<String, SessionRecord>,
    by_key: HashMap<String, String>,
    /// Each session's events; seq n lives at index n - 1.
    events: HashMap<String, Vec<Stored>>,
}

/// One event as this journal keeps it, rebuilt into an [`EventRecord`] when read. The session
/// id is the map key and the seq the position, so neither is stored again; the kinds the
/// runtime emits are not allocated; `data` loses the spare capacity of the `String` it was
/// built in. A token event then holds about 100 bytes of heap here instead of about 250
/// (estimated from the allocation sizes, glibc chunk headers included).
#[derive(Debug)]
struct Stored {
    kind: Cow<'static, str>,
    data: Box<str>,
}

/// The event kinds of docs/protocol.md, kept as `&'static str` instead of a `String` each.
const KINDS: [&str; 7] = ["token", "usage", "step", "tool", "session", "plan", "done"];

impl Stored {
    fn new(event: EventRecord) -> Stored {
        let kind = match KINDS.iter().find(|k| **k == event.kind) {
            Some(known) => Cow::Borrowed(*known),
            None => Cow::Owned(event.kind),
        };
        Stored {
            kind,
            data: event.data.into_boxed_str(),
        }
    }

    fn record(&self, session_id: &str, seq: u64) -> EventRecord {
        EventRecord {
            session_id: session_id.to_string(),
            seq,
            kind: self.kind.to_string(),
            data: self.data.to_string(),
        }
    }
}

impl MemoryJournal {
    pub fn new() -> MemoryJournal {
        MemoryJournal::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn ready<T: Send + 'static>(value: JournalResult<T>) -> BoxFuture<'static, JournalResult<T>> {
    futures::future::ready(value).boxed()
}

impl Journal for MemoryJournal {
    fn create(&self, record: SessionRecord) -> BoxFuture<'static, JournalResult<Created>> {
        let mut state = self.lock();
        if let Some(key) = &record.idempotency_key {
            if let Some(existing) = state.by_key.get(key).and_then(|id| state.sessions.get(id)) {
                let record = existing.clone();
                return ready(Ok(Created {
                    record,
                    existed: true,
                }));
            }
            state.by_key.insert(key.clone(), record.session_id.clone());
        }
        state.events.insert(record.session_id.clone(), Vec::new());
        state
            .sessions
            .insert(record.session_id.clone(), record.clone());
        ready(Ok(Created {
            record,
            existed: false,
        }))
    }

    fn session(
        &self,
        session_id: String,
    ) -> BoxFuture<'static, JournalResult<Option<SessionRecord>>> {
        ready(Ok(self.lock().sessions.get(&session_id).cloned()))
    }

    fn append(&self, event: EventRecord) -> BoxFuture<'static, JournalResult<()>> {
        let mut state = self.lock();
        let Some(events) = state.events.get_mut(&event.session_id) else {
            return ready(Err(JournalError::UnknownSession(event.session_id)));
        };
        let expected = events.len() as u64 + 1;
        if event.seq < expected {
            return ready(Err(JournalError::SeqTaken {
                session_id: event.session_id,
                seq: event.seq,
            }));
        }
        if event.seq != expected {
            return ready(Err(JournalError::OutOfOrder {
                session_id: event.session_id,
                seq: event.seq,
                expected,
            }));
        }
        events.push(Stored::new(event));
        ready(Ok(()))
    }

    fn read_after(
        &self,
        session_id: String,
        after: u64,
        limit: usize,
    ) -> BoxFuture<'static, JournalResult<Vec<EventRecord>>> {
        let state = self.lock();
        let events = state
            .events
            .get(&session_id)
            .map(|events| {
                // seq n lives at index n - 1.
                let start = (after as usize).min(events.len());
                events[start..]
                    .iter()
                    .take(limit)
                    .zip(start as u64 + 1..)
                    .map(|(event, seq)| event.record(&session_id, seq))
                    .collect()
            })
            .unwrap_or_default();
        ready(Ok(events))
    }

    fn last_seq(&self, session_id: String) -> BoxFuture<'static, JournalResult<u64>> {
        let state = self.lock();
        ready(Ok(state
            .events
            .get(&session_id)
            .map_or(0, |e| e.len() as u64)))
    }

    fn finish(
        &self,
        session_id: String,
        status: SessionStatus,
        usage: Usage,
        last_seq: u64,
    ) -> BoxFuture<'static, JournalResult<()>> {
        let mut state = self.lock();
        let result = match state.sessions.get_mut(&session_id) {
            Some(record) => {
                record.status = status;
                record.usage = usage;
                record.last_seq = last_seq;
                record.owner = None;
                record.lease_expires_at_ms = None;
                Ok(())
            }
            None => Err(JournalError::UnknownSession(session_id)),
        };
        ready(result)
    }

    fn release(&self, session_id: String) -> BoxFuture<'static, JournalResult<()>> {
        if let Some(record) = self.lock().sessions.get_mut(&session_id) {
            record.owner = None;
            record.lease_expires_at_ms = None;
        }
        ready(Ok(()))
    }

    fn heartbeat(
        &self,
        owner: String,
        expires_at_ms: i64,
    ) -> BoxFuture<'static, JournalResult<u64>> {
        let mut state = self.lock();
        let mut extended = 0;
        for record in state.sessions.values_mut() {
            if record.status == SessionStatus::Running && record.owner.as_ref() == Some(&owner) {
                record.lease_expires_at_ms = Some(expires_at_ms);
                extended += 1;
            }
        }
        ready(Ok(extended))
    }

    fn claim(
        &self,
        session_id: String,
        owner: String,
        now_ms: i64,
        expires_at_ms: i64,
    ) -> BoxFuture<'static, JournalResult<Option<Claimed>>> {
        let mut state = self.lock();
        let claimed = state
            .sessions
            .get_mut(&session_id)
            .filter(|r| r.lease_free(now_ms))
            .map(|record| {
                let previous_owner = record.owner.replace(owner);
                record.lease_expires_at_ms = Some(expires_at_ms);
                Claimed {
                    record: record.clone(),
                    previous_owner,
                }
            });
        ready(Ok(claimed))
    }

    fn orphans(&self, now_ms: i64, limit: usize) -> BoxFuture<'static, JournalResult<Vec<String>>> {
        let state = self.lock();
        let mut free: Vec<&SessionRecord> = state
            .sessions
            .values()
            .filter(|r| r.lease_free(now_ms))
            .collect();
        // Released (no lease) first, then the longest expired; ties by id, for stable tests.
        free.sort_by(|a, b| {
            (a.lease_expires_at_ms, &a.session_id).cmp(&(b.lease_expires_at_ms, &b.session_id))
        });
        ready(Ok(free
            .into_iter()
            .take(limit)
            .map(|r| r.session_id.clone())
            .collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Events come back exactly as appended, whatever their kind: the kinds the runtime
    /// emits are kept as `&'static str`, any other as its own string.
    #[tokio::test]
    async fn events_read_back_as_appended() {
        let journal = MemoryJournal::new();
        let record = SessionRecord::new("r1", "q".into(), Default::default(), None, None);
        let id = record.session_id.clone();
        journal.create(record).await.expect("create");
        let events: Vec<EventRecord> = ["session", "token", "not_a_protocol_kind", "", "done"]
            .iter()
            .zip(1..)
            .map(|(kind, seq)| EventRecord {
                session_id: id.clone(),
                seq,
                kind: (*kind).to_string(),
                data: format!(r#"{{"n":{seq}}}"#),
            })
            .collect();
        for event in &events {
            journal.append(event.clone()).await.expect("append");
        }
        assert_eq!(
            journal.read_after(id.clone(), 0, 10).await.expect("read"),
            events
        );
        assert_eq!(
            journal.read_after(id.clone(), 2, 2).await.expect("read"),
            events[2..4]
        );
    }
}
