//! Data-driven cases from the WHATWG event-stream rules, each fed whole and byte by byte.

use super::*;

fn ev(event: &str, data: &str, id: Option<&str>) -> Item {
    Item::Event(Event {
        event: event.into(),
        data: data.into(),
        last_event_id: id.map(Into::into),
        has_id: false,
    })
}

/// Parse `input` in one chunk and one byte at a time; both must give `expected`.
/// `has_id` is normalised away so cases stay short; it has its own test.
fn check(input: &[u8], expected: &[Item]) {
    for split in [input.len().max(1), 1, 2, 3] {
        let mut p = Parser::new(Limits::default());
        let mut out = Vec::new();
        for chunk in input.chunks(split) {
            p.feed(chunk, &mut out).expect("within limits");
        }
        for item in &mut out {
            if let Item::Event(e) = item {
                e.has_id = false;
            }
        }
        assert_eq!(
            out,
            expected,
            "input {:?} split every {split}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn line_endings_and_fields() {
    check(b"data: a\n\n", &[ev("message", "a", None)]);
    check(b"data: a\r\n\r\n", &[ev("message", "a", None)]);
    check(
        b"data: a\r\rdata: b\r\r",
        &[ev("message", "a", None), ev("message", "b", None)],
    );
    check(b"data:a\n\n", &[ev("message", "a", None)]);
    check(b"data:  a\n\n", &[ev("message", " a", None)]);
    check(b"event: token\ndata: x\n\n", &[ev("token", "x", None)]);
    check(b"data\n\n", &[ev("message", "", None)]);
}

#[test]
fn multi_line_data_joins_with_newline() {
    check(
        b"data: a\ndata: b\ndata\n\n",
        &[ev("message", "a\nb\n", None)],
    );
}

#[test]
fn comments_retry_and_unknown_fields() {
    check(
        b": keepalive\nretry: 1500\nretry: 1x\nfoo: bar\ndata: z\n\n",
        &[
            Item::Comment("keepalive".into()),
            Item::Retry(1500),
            ev("message", "z", None),
        ],
    );
}

#[test]
fn ids_persist_and_nul_ids_are_ignored() {
    check(
        b"id: 7\ndata: a\n\ndata: b\n\nid: 8\0\ndata: c\n\nid\ndata: d\n\n",
        &[
            ev("message", "a", Some("7")),
            ev("message", "b", Some("7")),
            ev("message", "c", Some("7")),
            ev("message", "d", Some("")),
        ],
    );
}

#[test]
fn events_without_data_are_not_dispatched_and_partial_events_are_dropped() {
    check(b"event: x\n\nid: 3\n\ndata: tail", &[]);
}

#[test]
fn bom_is_dropped_once() {
    check(b"\xEF\xBB\xBFdata: a\n\n", &[ev("message", "a", None)]);
    // A broken BOM is not a BOM: its bytes make the first field name unknown.
    check(b"\xEF\xBBdata: a\n\n", &[]);
}

#[test]
fn has_id_marks_events_that_carried_an_id() {
    let mut p = Parser::new(Limits::default());
    let mut out = Vec::new();
    p.feed(b"id: 1\ndata: a\n\ndata: b\n\n", &mut out)
        .expect("ok");
    let flags: Vec<bool> = out
        .iter()
        .map(|i| matches!(i, Item::Event(e) if e.has_id))
        .collect();
    assert_eq!(flags, [true, false]);
}

#[test]
fn a_line_that_never_ends_is_bounded() {
    let limits = Limits {
        max_line: 1024,
        max_event: 4096,
    };
    let mut p = Parser::new(limits);
    let mut out = Vec::new();
    let chunk = [b'a'; 100];
    let mut err = None;
    for _ in 0..100 {
        if let Err(e) = p.feed(&chunk, &mut out) {
            err = Some(e);
            break;
        }
        assert!(p.buffered() <= 1024);
    }
    assert_eq!(err, Some(SseError::LineTooLong { limit: 1024 }));
}

#[test]
fn an_event_that_never_dispatches_is_bounded() {
    let limits = Limits {
        max_line: 1024,
        max_event: 4096,
    };
    let mut p = Parser::new(limits);
    let mut out = Vec::new();
    let line = format!("data: {}\n", "b".repeat(500));
    let mut err = None;
    for _ in 0..100 {
        if let Err(e) = p.feed(line.as_bytes(), &mut out) {
            err = Some(e);
            break;
        }
        assert!(p.buffered() <= 4096 + 1024);
    }
    assert_eq!(err, Some(SseError::EventTooLarge { limit: 4096 }));
}
