//! The billing ledger: the provider-side truth of what was requested and generated, in total
//! and per session, priced from the profile.
//!
//! Tokens are added *as they are generated*, so a stream cut by a fault or
//! abandoned by its client is billed for exactly what was produced. This file knows nothing
//! about HTTP or wire formats.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::Serialize;

use super::profile::Price;

/// Counters for one session (or the total).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub requests: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub errors: u64,
    pub cut_responses: u64,
}

/// One row of `GET /mock/ledger`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Row {
    pub requests: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cost_usd: f64,
    pub errors: u64,
    pub cut_responses: u64,
}

/// The body of `GET /mock/ledger`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Snapshot {
    pub total: Row,
    pub sessions: BTreeMap<String, Row>,
}

/// Which counter an event bumps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    /// A request accepted for generation, with its input tokens.
    Request { input_tokens: u64 },
    /// A request refused with an error status (billed nothing).
    Refused,
    /// Output tokens just generated (billed in batches of those generated at one instant).
    OutputTokens(u64),
    /// A response ended by an injected error after it started.
    StreamError,
    /// A response cut mid-stream by a fault.
    Cut,
}

#[derive(Debug)]
pub struct Ledger {
    price: Price,
    inner: Mutex<(Counts, BTreeMap<String, Counts>)>,
}

impl Ledger {
    pub fn new(price: Price) -> Ledger {
        Ledger {
            price,
            inner: Mutex::new(Default::default()),
        }
    }

    /// Record `entry` in the total and, when known, the session's row.
    pub fn record(&self, session: Option<&str>, entry: Entry) {
        let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let (total, sessions) = &mut *guard;
        apply(total, entry);
        if let Some(id) = session {
            match sessions.get_mut(id) {
                Some(c) => apply(c, entry),
                None => {
                    let mut c = Counts::default();
                    apply(&mut c, entry);
                    sessions.insert(id.to_owned(), c);
                }
            }
        }
    }

    pub fn snapshot(&self) -> Snapshot {
        let guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        Snapshot {
            total: self.row(&guard.0),
            sessions: guard
                .1
                .iter()
                .map(|(id, c)| (id.clone(), self.row(c)))
                .collect(),
        }
    }

    pub fn reset(&self) {
        *self.inner.lock().unwrap_or_else(|p| p.into_inner()) = Default::default();
    }

    fn row(&self, c: &Counts) -> Row {
        Row {
            requests: c.requests,
            input_tokens: c.input_tokens,
            output_tokens: c.output_tokens,
            cost_usd: (c.input_tokens as f64 * self.price.input_per_mtok
                + c.output_tokens as f64 * self.price.output_per_mtok)
                / 1e6,
            errors: c.errors,
            cut_responses: c.cut_responses,
        }
    }
}

fn apply(c: &mut Counts, entry: Entry) {
    match entry {
        Entry::Request { input_tokens } => {
            c.requests += 1;
            c.input_tokens += input_tokens;
        }
        Entry::Refused => {
            c.requests += 1;
            c.errors += 1;
        }
        Entry::OutputTokens(n) => c.output_tokens += n,
        Entry::StreamError => c.errors += 1,
        Entry::Cut => c.cut_responses += 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_sessions_and_cost() {
        let ledger = Ledger::new(Price {
            input_per_mtok: 3.0,
            output_per_mtok: 15.0,
        });
        ledger.record(Some("a"), Entry::Request { input_tokens: 1000 });
        for _ in 0..10 {
            ledger.record(Some("a"), Entry::OutputTokens(10));
        }
        ledger.record(None, Entry::Refused);
        ledger.record(Some("a"), Entry::Cut);
        let s = ledger.snapshot();
        assert_eq!(s.total.requests, 2);
        assert_eq!(s.total.errors, 1);
        assert_eq!(s.sessions["a"].output_tokens, 100);
        assert_eq!(s.sessions["a"].cut_responses, 1);
        assert!((s.sessions["a"].cost_usd - 0.0045).abs() < 1e-12);
        ledger.reset();
        assert_eq!(ledger.snapshot().total.requests, 0);
    }
}
