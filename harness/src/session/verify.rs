//! The per-session verifier: a pure state machine fed every SSE event of a session, across
//! all of its streams, in the order the client received them.
//!
//! It checks what protocol v1 promises (`docs/protocol.md` §1): seqs start at 1 and are
//! contiguous; a resume replays only seqs above `Last-Event-ID`; `done.content_sha256` is the
//! SHA-256 of every token text in seq order and `done.last_seq` is the `done` event's own seq.
//! It does no I/O and knows nothing about time, retries or HTTP: the client decides what an
//! event means for latency and reconnection.

use dropzero_sse::Event;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::outcome::MAX_STORED_REPLICAS;

/// The terminal status carried by `done`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DoneStatus {
    Completed,
    Failed,
    Cancelled,
    BudgetExceeded,
    /// A status protocol v1 does not define; classified as failed.
    Unknown,
}

/// What an accepted event was, as far as the client cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Token,
    Done(DoneStatus),
    /// A `session` event announcing that another replica took the session over (see
    /// [`Verifier::takeover_from`]).
    Takeover,
    Other,
}

/// What the verifier made of one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A new seq (possibly after a gap, which is counted as lost).
    Accepted(EventKind),
    /// A seq at or below the last accepted one: counted and otherwise ignored.
    Duplicate,
    /// No numeric `id`: counted and ignored, since it cannot be placed in the sequence.
    Malformed,
}

#[derive(Deserialize)]
struct TokenData {
    text: String,
}

#[derive(Deserialize)]
struct SessionData {
    replica_id: String,
    takeover: Option<TakeoverData>,
}

#[derive(Deserialize)]
struct TakeoverData {
    from: Option<String>,
}

#[derive(Deserialize)]
struct UsageData {
    output_tokens: u64,
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    cost_usd: Option<f64>,
}

#[derive(Deserialize)]
struct DoneData {
    status: String,
    last_seq: u64,
    content_sha256: String,
    usage: Option<UsageData>,
}

/// Verification state for one session.
#[derive(Debug, Default)]
pub struct Verifier {
    last_seq: u64,
    lost: u64,
    duplicated: u64,
    malformed: u64,
    tokens: u64,
    digest: Sha256,
    content_mismatch: bool,
    replica: Option<String>,
    replicas: Vec<String>,
    output_tokens: Option<u64>,
    input_tokens: Option<u64>,
    cost_usd: Option<f64>,
    takeover_from: Option<String>,
}

impl Verifier {
    pub fn new() -> Self {
        Self::default()
    }

    /// Check one event and fold it into the session's state.
    pub fn accept(&mut self, ev: &Event) -> Verdict {
        // `last_event_id` persists across events (WHATWG), so only an event's own `id` counts.
        let own_id = ev.last_event_id.as_deref().filter(|_| ev.has_id);
        let Some(seq) = own_id.and_then(|id| id.parse::<u64>().ok()) else {
            return self.malformed();
        };
        if seq <= self.last_seq {
            self.duplicated += 1;
            return Verdict::Duplicate;
        }
        self.lost = self.lost.saturating_add(seq - self.last_seq - 1);
        self.last_seq = seq;
        let kind = match ev.event.as_str() {
            "token" => match serde_json::from_str::<TokenData>(&ev.data) {
                Ok(t) => {
                    self.digest.update(t.text.as_bytes());
                    self.tokens += 1;
                    EventKind::Token
                }
                Err(_) => {
                    // Its text is unknown, so the digest can no longer match; that is reported
                    // as a content mismatch when `done` arrives.
                    self.malformed += 1;
                    EventKind::Token
                }
            },
            "session" => match serde_json::from_str::<SessionData>(&ev.data) {
                Ok(s) => {
                    self.saw_replica(s.replica_id);
                    match s.takeover {
                        Some(t) => {
                            self.takeover_from = t.from;
                            EventKind::Takeover
                        }
                        None => EventKind::Other,
                    }
                }
                Err(_) => {
                    self.malformed += 1;
                    EventKind::Other
                }
            },
            "usage" => {
                match serde_json::from_str::<UsageData>(&ev.data) {
                    Ok(u) => {
                        self.output_tokens = Some(u.output_tokens);
                        self.input_tokens = u.input_tokens.or(self.input_tokens);
                        self.cost_usd = u.cost_usd.or(self.cost_usd);
                        self.cost_usd = u.cost_usd.or(self.cost_usd);
                        self.input_tokens = u.input_tokens.or(self.input_tokens);
                        self.cost_usd = u.cost_usd.or(self.cost_usd);
                    }
                    Err(_) => self.malformed += 1,
                }
                EventKind::Other
            }
            "done" => match serde_json::from_str::<DoneData>(&ev.data) {
                Ok(d) => EventKind::Done(self.done(seq, d)),
                Err(_) => {
                    // A `done` we cannot read still ends the session (the stream ends after
                    // it), but nothing it claims can be checked.
                    self.malformed += 1;
                    self.content_mismatch = true;
                    EventKind::Done(DoneStatus::Unknown)
                }
            },
            _ => EventKind::Other,
        };
        Verdict::Accepted(kind)
    }

    fn malformed(&mut self) -> Verdict {
        self.malformed += 1;
        Verdict::Malformed
    }

    fn saw_replica(&mut self, id: String) {
        if !self.replicas.contains(&id) && self.replicas.len() < MAX_STORED_REPLICAS {
            self.replicas.push(id.clone());
        }
        self.replica = Some(id);
    }

    fn done(&mut self, seq: u64, d: DoneData) -> DoneStatus {
        let ours = hex::encode(self.digest.clone().finalize());
        if !ours.eq_ignore_ascii_case(&d.content_sha256) || d.last_seq != seq {
            self.content_mismatch = true;
        }
        if let Some(u) = d.usage {
            self.output_tokens = Some(u.output_tokens);
        }
        match d.status.as_str() {
            "completed" => DoneStatus::Completed,
            "failed" => DoneStatus::Failed,
            "cancelled" => DoneStatus::Cancelled,
            "budget_exceeded" => DoneStatus::BudgetExceeded,
            _ => DoneStatus::Unknown,
        }
    }

    /// The target refused to resume after `seq`, a seq it sent, as beyond the session's
    /// events: it lost events it had delivered, so the session's content as the target
    /// holds it differs from what the client saw (a content mismatch, whatever `done` says).
    pub fn target_forgot(&mut self, seq: u64) {
        if seq > 0 && seq <= self.last_seq {
            self.content_mismatch = true;
        }
    }

    /// The last accepted seq: what to send as `Last-Event-ID` on resume.
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }
    pub fn lost(&self) -> u64 {
        self.lost
    }
    pub fn duplicated(&self) -> u64 {
        self.duplicated
    }
    pub fn malformed_count(&self) -> u64 {
        self.malformed
    }
    pub fn tokens(&self) -> u64 {
        self.tokens
    }
    pub fn content_mismatch(&self) -> bool {
        self.content_mismatch
    }
    /// The previous owner named by the latest takeover `session` event.
    pub fn takeover_from(&self) -> Option<&str> {
        self.takeover_from.as_deref()
    }

    /// The replica named by the latest `session` event.
    pub fn replica(&self) -> Option<&str> {
        self.replica.as_deref()
    }
    pub fn replicas(&self) -> &[String] {
        &self.replicas
    }
    pub fn output_tokens(&self) -> Option<u64> {
        self.output_tokens
    }

    /// `cost_usd` of the last usage seen, when the target reports it.
    pub fn cost_usd(&self) -> Option<f64> {
        self.cost_usd
    }

    /// `input_tokens` of the last usage seen, when the target reports it.
    pub fn input_tokens(&self) -> Option<u64> {
        self.input_tokens
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An event as the parser would hand it over; `id` `None` means no `id` field.
    fn ev(id: Option<&str>, event: &str, data: &str) -> Event {
        Event {
            event: event.to_string(),
            data: data.to_string(),
            last_event_id: id.map(str::to_string),
            has_id: id.is_some(),
        }
    }

    fn token(seq: u64, text: &str) -> Event {
        let data = serde_json::json!({"step": "s1", "text": text}).to_string();
        ev(Some(&seq.to_string()), "token", &data)
    }

    fn done(seq: u64, last_seq: u64, texts: &[&str]) -> Event {
        let digest = hex::encode(Sha256::digest(texts.concat().as_bytes()));
        let data = serde_json::json!({
            "status": "completed", "last_seq": last_seq, "content_sha256": digest,
            "usage": {"input_tokens": 3, "output_tokens": 7, "cost_usd": 0.0}
        });
        ev(Some(&seq.to_string()), "done", &data.to_string())
    }

    fn session(seq: u64, replica: &str) -> Event {
        let data = serde_json::json!({"session_id": "s_1", "replica_id": replica});
        ev(Some(&seq.to_string()), "session", &data.to_string())
    }

    #[derive(Debug, PartialEq, Eq)]
    struct Counts {
        lost: u64,
        duplicated: u64,
        malformed: u64,
        mismatch: bool,
        tokens: u64,
        terminal: Option<DoneStatus>,
    }

    fn check(name: &str, events: &[Event], expected: Counts) {
        let mut v = Verifier::new();
        let mut terminal = None;
        for e in events {
            if let Verdict::Accepted(EventKind::Done(s)) = v.accept(e) {
                terminal = Some(s);
            }
        }
        let got = Counts {
            lost: v.lost(),
            duplicated: v.duplicated(),
            malformed: v.malformed_count(),
            mismatch: v.content_mismatch(),
            tokens: v.tokens(),
            terminal,
        };
        assert_eq!(got, expected, "case {name}");
    }

    fn counts(lost: u64, duplicated: u64, malformed: u64, mismatch: bool, tokens: u64) -> Counts {
        Counts {
            lost,
            duplicated,
            malformed,
            mismatch,
            tokens,
            terminal: Some(DoneStatus::Completed),
        }
    }

    #[test]
    fn verifier_cases() {
        let ab = ["a", "b"];
        check(
            "clean",
            &[
                session(1, "r1"),
                token(2, "a"),
                token(3, "b"),
                done(4, 4, &ab),
            ],
            counts(0, 0, 0, false, 2),
        );
        check(
            "gap loses events and breaks the digest",
            &[
                session(1, "r1"),
                token(2, "a"),
                token(5, "b"),
                done(6, 6, &["a", "x", "y", "b"]),
            ],
            counts(2, 0, 0, true, 2),
        );
        check(
            "a gap that skips no token keeps the digest",
            &[token(1, "a"), token(2, "b"), done(4, 4, &ab)],
            counts(1, 0, 0, false, 2),
        );
        check(
            "repeats are counted and not hashed twice",
            &[
                token(1, "a"),
                token(1, "a"),
                token(2, "b"),
                token(1, "a"),
                done(3, 3, &ab),
            ],
            counts(0, 2, 0, false, 2),
        );
        check(
            "wrong digest",
            &[token(1, "a"), token(2, "b"), done(3, 3, &["a", "c"])],
            counts(0, 0, 0, true, 2),
        );
        check(
            "last_seq disagrees with done's seq",
            &[token(1, "a"), token(2, "b"), done(3, 5, &ab)],
            counts(0, 0, 0, true, 2),
        );
        check(
            "event without id is malformed",
            &[
                token(1, "a"),
                ev(None, "token", r#"{"text":"b"}"#),
                done(2, 2, &["a"]),
            ],
            counts(0, 0, 1, false, 1),
        );
        check(
            "non-numeric id is malformed",
            &[
                ev(Some("x"), "token", r#"{"text":"b"}"#),
                token(1, "a"),
                done(2, 2, &["a"]),
            ],
            counts(0, 0, 1, false, 1),
        );
        check(
            "unreadable token data is malformed and mismatches",
            &[
                token(1, "a"),
                ev(Some("2"), "token", "not json"),
                done(3, 3, &["a", "b"]),
            ],
            counts(0, 0, 1, true, 1),
        );
        let mut unreadable_done = counts(0, 0, 1, true, 1);
        unreadable_done.terminal = Some(DoneStatus::Unknown);
        check(
            "unreadable done ends the session unverified",
            &[token(1, "a"), ev(Some("2"), "done", "{}")],
            unreadable_done,
        );
        let mut no_done = counts(0, 0, 0, false, 1);
        no_done.terminal = None;
        check("no done yet", &[session(1, "r1"), token(2, "a")], no_done);
    }

    #[test]
    fn resume_across_replicas_tracks_replicas_and_usage() {
        let mut v = Verifier::new();
        v.accept(&session(1, "r1"));
        v.accept(&token(2, "a"));
        let usage = r#"{"input_tokens":1,"output_tokens":1,"cost_usd":0.0}"#;
        v.accept(&ev(Some("3"), "usage", usage));
        assert_eq!(v.output_tokens(), Some(1));
        // A resume replays from 3; a replica that re-sends seq 3 is a duplicate.
        assert_eq!(v.accept(&ev(Some("3"), "usage", usage)), Verdict::Duplicate);
        assert_eq!(v.last_seq(), 3);
        assert_eq!(v.replica(), Some("r1"));
        assert_eq!(
            v.accept(&done(4, 4, &["a"])),
            Verdict::Accepted(EventKind::Done(DoneStatus::Completed))
        );
        assert_eq!(v.output_tokens(), Some(7));
        assert_eq!(v.replicas(), ["r1".to_string()]);
    }

    #[test]
    fn a_target_that_forgot_delivered_events_is_a_content_mismatch() {
        // The journal lost seqs 2..=3 (restored from an older snapshot): a resume after 3 is
        // refused, then the regenerated session completes with a digest of its own making.
        let mut v = Verifier::new();
        v.accept(&token(1, "a"));
        v.accept(&token(2, "b"));
        v.accept(&token(3, "c"));
        v.target_forgot(3);
        v.accept(&done(4, 4, &["a", "b", "c"]));
        assert!(v.content_mismatch(), "even though done's digest matches");
        // A cursor the client never had proves nothing about the target.
        let mut v = Verifier::new();
        v.accept(&token(1, "a"));
        v.target_forgot(7);
        v.target_forgot(0);
        v.accept(&done(2, 2, &["a"]));
        assert!(!v.content_mismatch());
    }

    #[test]
    fn regenerated_events_under_seen_seqs_are_duplicates_and_their_text_a_mismatch() {
        // A target that lost seqs 2..=3 and replays from 1 again: the client skips the
        // re-sent seqs (counted as duplicated), and `done`'s digest covers the regenerated
        // text, not what the client assembled.
        check(
            "regenerated",
            &[
                token(1, "a"),
                token(2, "b"),
                token(3, "c"),
                token(2, "B"),
                token(3, "C"),
                token(4, "d"),
                done(5, 5, &["a", "B", "C", "d"]),
            ],
            counts(0, 2, 0, true, 4),
        );
    }

    #[test]
    fn done_statuses() {
        for (status, expected) in [
            ("failed", DoneStatus::Failed),
            ("cancelled", DoneStatus::Cancelled),
            ("budget_exceeded", DoneStatus::BudgetExceeded),
            ("exploded", DoneStatus::Unknown),
        ] {
            let digest = hex::encode(Sha256::digest(b""));
            let data =
                serde_json::json!({"status": status, "last_seq": 1, "content_sha256": digest});
            let mut v = Verifier::new();
            let got = v.accept(&ev(Some("1"), "done", &data.to_string()));
            assert_eq!(
                got,
                Verdict::Accepted(EventKind::Done(expected)),
                "{status}"
            );
            assert!(!v.content_mismatch(), "{status}");
        }
    }
}
