//! Properties of the [`Verifier`] over generated sessions and deliveries (proptest), where
//! the example tests in `verify.rs` pin single cases.
//!
//! A session is a sequence of events `1..=n` (tokens with text, usage, steps, takeover
//! `session` events) ending in `done` with the digest of its tokens. A delivery is what a
//! client receives across reconnects: stream after stream, each replaying from a cursor
//! (`Last-Event-ID`) up to where it is cut, the last one through `done`.
//!
//! - Any interleaving of resume points at or before the last event received (a client
//!   resuming from an older cursor, a replica replaying too much, a takeover in between)
//!   gives exactly the events after each point: nothing counted lost, every replayed event
//!   counted as a duplicate exactly once, every token hashed once, the digest matches.
//! - A cursor past the last event received (a genuine gap) is always counted: lost is the
//!   number of skipped events, and a skipped token always breaks the digest.

use dropzero_sse::Event;
use proptest::prelude::*;
use sha2::{Digest, Sha256};

use super::verify::{DoneStatus, EventKind, Verdict, Verifier};

#[derive(Debug, Clone)]
enum Kind {
    Token(String),
    Usage,
    Step,
    /// A `session` event naming the replica that took the session over.
    Takeover,
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        6 => "[a-z ]{1,6}".prop_map(Kind::Token),
        1 => Just(Kind::Usage),
        1 => Just(Kind::Step),
        1 => Just(Kind::Takeover),
    ]
}

/// The session's events as the runtime journals them: `session`, the body, `done`.
fn session_events(body: &[Kind]) -> Vec<Event> {
    let n = body.len() as u64 + 2;
    let mut events = vec![event(1, "session", r#"{"replica_id":"r1"}"#.into())];
    let mut texts = String::new();
    for (i, kind) in body.iter().enumerate() {
        let seq = i as u64 + 2;
        let (name, data) = match kind {
            Kind::Token(text) => {
                texts.push_str(text);
                ("token", serde_json::json!({"step": "s1", "text": text}))
            }
            Kind::Usage => (
                "usage",
                serde_json::json!({"input_tokens": 3, "output_tokens": seq, "cost_usd": 0.001}),
            ),
            Kind::Step => (
                "step",
                serde_json::json!({"step": "s1", "state": "retrying"}),
            ),
            Kind::Takeover => (
                "session",
                serde_json::json!({"replica_id": format!("r{seq}"), "takeover": {"from": "r1"}}),
            ),
        };
        events.push(event(seq, name, data.to_string()));
    }
    let done = serde_json::json!({
        "status": "completed",
        "last_seq": n,
        "content_sha256": hex::encode(Sha256::digest(texts.as_bytes())),
        "usage": {"input_tokens": 3, "output_tokens": 9, "cost_usd": 0.002},
    });
    events.push(event(n, "done", done.to_string()));
    events
}

fn event(seq: u64, name: &str, data: String) -> Event {
    Event {
        event: name.to_string(),
        data,
        last_event_id: Some(seq.to_string()),
        has_id: true,
    }
}

/// What the verifier concluded after a delivery.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    lost: u64,
    duplicated: u64,
    tokens: u64,
    mismatch: bool,
    terminal: Option<DoneStatus>,
}

/// Deliver `events` as streams: for stream `i`, `cursor(i, max, raw)` picks its
/// `Last-Event-ID` given the highest seq received so far; it replays `cursor+1..=cut` (at
/// least one event), the last stream through `done`. Returns what the verifier saw and what
/// it should have seen, counted independently from the seqs delivered.
fn deliver(
    events: &[Event],
    streams: &[(u64, u64)],
    cursor: impl Fn(usize, u64, u64) -> u64,
) -> (Seen, Seen) {
    let n = events.len() as u64;
    let is_token = |seq: u64| events[seq as usize - 1].event == "token";
    let mut v = Verifier::new();
    let mut terminal = None;
    let (mut max, mut lost, mut duplicated, mut skipped_tokens) = (0u64, 0u64, 0u64, 0u64);
    let last = streams.len() - 1;
    for (i, &(raw_cursor, raw_cut)) in streams.iter().enumerate() {
        // A stream can only start before `done` (a client stops at `done`).
        let from = cursor(i, max, raw_cursor).min(n - 1);
        let to = if i == last {
            n
        } else {
            from + 1 + raw_cut % (n - from)
        };
        if from > max {
            lost += from - max;
            skipped_tokens += (max + 1..=from).filter(|&s| is_token(s)).count() as u64;
        }
        for seq in from + 1..=to {
            let verdict = v.accept(&events[seq as usize - 1]);
            if seq <= max {
                duplicated += 1;
                assert_eq!(verdict, Verdict::Duplicate, "seq {seq} again (max {max})");
            } else {
                assert!(
                    matches!(verdict, Verdict::Accepted(_)),
                    "new seq {seq}: {verdict:?}"
                );
            }
            max = max.max(seq);
            if let Verdict::Accepted(EventKind::Done(status)) = verdict {
                terminal = Some(status);
                break;
            }
        }
        if terminal.is_some() {
            break;
        }
    }
    let tokens = (1..=n).filter(|&s| is_token(s)).count() as u64;
    let got = Seen {
        lost: v.lost(),
        duplicated: v.duplicated(),
        tokens: v.tokens(),
        mismatch: v.content_mismatch(),
        terminal,
    };
    let expected = Seen {
        lost,
        duplicated,
        tokens: tokens - skipped_tokens,
        // Token texts are never empty, so a skipped token always changes the digest.
        mismatch: skipped_tokens > 0,
        terminal: Some(DoneStatus::Completed),
    };
    (got, expected)
}

fn body() -> impl Strategy<Value = Vec<Kind>> {
    proptest::collection::vec(kind(), 0..40)
}

fn streams() -> impl Strategy<Value = Vec<(u64, u64)>> {
    proptest::collection::vec((any::<u64>(), any::<u64>()), 1..12)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn resuming_from_any_earlier_point_loses_nothing(body in body(), streams in streams()) {
        let events = session_events(&body);
        // Any cursor from 0 (replay everything) to the last seq received.
        let (got, expected) = deliver(&events, &streams, |_, max, raw| raw % (max + 1));
        prop_assert_eq!(expected.lost, 0);
        prop_assert!(!expected.mismatch);
        prop_assert_eq!(got, expected);
    }

    #[test]
    fn a_gap_is_always_counted(
        body in body(),
        streams in streams(),
        gap_at in any::<prop::sample::Index>(),
        gap in 1u64..5,
    ) {
        let events = session_events(&body);
        let gap_stream = gap_at.index(streams.len());
        // As above, except that one stream resumes `gap` events past the last one received
        // (clamped before `done`; the first stream always skips at least one event).
        let (got, expected) = deliver(&events, &streams, |i, max, raw| {
            if i == gap_stream { max + gap } else { raw % (max + 1) }
        });
        if gap_stream == 0 {
            prop_assert!(expected.lost > 0, "a gap at the first stream skips an event");
        }
        prop_assert_eq!(got, expected);
    }
}
