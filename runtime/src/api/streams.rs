//! How many streams each session has open on this replica, and the cap on them
//! (`--max-streams-per-session`, docs/security.md). A stream holds a [`StreamSlot`] for as
//! long as it lives; one past the cap is refused with `429 too_many_streams` and
//! `Retry-After`, so a leaked resume token or a client stuck in a reconnect loop cannot pin
//! unbounded work (a journal reader each) on one session. A client that reconnects after a
//! cut is not refused for long: its old stream's slot is freed as soon as the replica sees
//! the connection closed.
//! Not for the replica-wide open-stream gauge (see `metrics`).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

/// Open streams per session id; ids with none are not kept.
#[derive(Debug, Default)]
pub struct StreamSlots {
    open: Mutex<HashMap<String, usize>>,
}

/// One open stream of a session; dropping it frees the slot.
#[derive(Debug)]
pub struct StreamSlot {
    slots: Arc<StreamSlots>,
    id: String,
}

impl StreamSlots {
    /// A slot for one more stream of `id`, unless it already has `cap` open.
    pub fn acquire(self: &Arc<Self>, id: &str, cap: usize) -> Option<StreamSlot> {
        let mut open = self.lock();
        let count = open.entry(id.to_string()).or_insert(0);
        if *count >= cap {
            if *count == 0 {
                open.remove(id);
            }
            return None;
        }
        *count += 1;
        Some(StreamSlot {
            slots: Arc::clone(self),
            id: id.to_string(),
        })
    }

    /// Streams of `id` open now.
    pub fn open(&self, id: &str) -> usize {
        self.lock().get(id).copied().unwrap_or(0)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        // Single integer updates: a panic elsewhere cannot leave the map inconsistent.
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self.slots.lock();
        if let Some(count) = open.get_mut(&self.id) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_is_freed_when_its_stream_ends() {
        let slots = Arc::new(StreamSlots::default());
        let a = slots.acquire("s", 2).expect("first");
        let b = slots.acquire("s", 2).expect("second");
        assert!(slots.acquire("s", 2).is_none(), "third is over the cap");
        assert!(
            slots.acquire("t", 2).is_some(),
            "another session has its own cap"
        );
        drop(a);
        assert_eq!(slots.open("s"), 1);
        let _c = slots.acquire("s", 2).expect("a freed slot is reusable");
        drop(b);
        assert!(
            slots.acquire("z", 0).is_none(),
            "cap 0 refuses every stream"
        );
        assert_eq!(
            slots.lock().len(),
            1,
            "only s is kept; t's slot was dropped at once"
        );
    }
}
