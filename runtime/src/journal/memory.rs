//! The in-memory journal: sessions and events in one process's heap. Used by `naive` mode
//! and by `--journal memory`; everything is lost when the process exits. Not shareable
//! between processes.

use std::{
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
    events: HashMap<String, Vec<EventRecord>>,
}

impl MemoryJournal {
    pub fn new() -> MemoryJournal {
        MemoryJournal::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Whether another replica may take `record` over at `now_ms` (the rule of [`Journal::claim`]).
fn lease_is_free(record: &SessionRecord, now_ms: i64) -> bool {
    record.status == SessionStatus::Running
        && (record.owner.is_none() || record.lease_expires_at_ms.is_some_and(|l| l < now_ms))
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
        if event.seq != expected {
            return ready(Err(JournalError::OutOfOrder {
                session_id: event.session_id,
                seq: event.seq,
                expected,
            }));
        }
        events.push(event);
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
                events[start..].iter().take(limit).cloned().collect()
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
        let claimed = match state.sessions.get_mut(&session_id) {
            Some(record) if lease_is_free(record, now_ms) => {
                let previous_owner = record.owner.replace(owner);
                record.lease_expires_at_ms = Some(expires_at_ms);
                Some(Claimed {
                    record: record.clone(),
                    previous_owner,
                })
            }
            _ => None,
        };
        ready(Ok(claimed))
    }

    fn orphans(&self, now_ms: i64, limit: usize) -> BoxFuture<'static, JournalResult<Vec<String>>> {
        let state = self.lock();
        let mut free: Vec<(i64, &String)> = state
            .sessions
            .values()
            .filter(|r| lease_is_free(r, now_ms))
            // Released sessions (no owner) first: their lease is the oldest possible.
            .map(|r| match r.owner {
                None => (i64::MIN, &r.session_id),
                Some(_) => (r.lease_expires_at_ms.unwrap_or(i64::MIN), &r.session_id),
            })
            .collect();
        free.sort();
        ready(Ok(free
            .into_iter()
            .take(limit)
            .map(|(_, id)| id.clone())
            .collect()))
    }
}
