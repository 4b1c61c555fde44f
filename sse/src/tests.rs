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

/// The event source's last event ID string after `input`, fed whole and byte by byte.
fn dispatched_after(seed: Option<&str>, input: &[u8]) -> Option<String> {
    let mut seen = Vec::new();
    for split in [input.len().max(1), 1] {
        let mut p = Parser::with_last_event_id(Limits::default(), seed.map(Into::into));
        let mut out = Vec::new();
        for chunk in input.chunks(split) {
            p.feed(chunk, &mut out).expect("within limits");
        }
        seen.push(p.dispatched_last_event_id().map(str::to_string));
    }
    assert_eq!(seen[0], seen[1], "{:?}", String::from_utf8_lossy(input));
    seen.swap_remove(0)
}

#[test]
fn the_last_event_id_string_moves_at_dispatch_only() {
    let s = |v: &str| Some(v.to_string());
    let cases: &[(Option<&str>, &[u8], Option<String>)] = &[
        (None, b"", None),
        (None, b"retry: 10\n\n", None),
        (None, b"id: 1\ndata: a\n\n", s("1")),
        // Events without an id keep it.
        (None, b"id: 1\ndata: a\n\ndata: b\n\n", s("1")),
        // A block without data still dispatches its id.
        (None, b"id: 1\ndata: a\n\nid: 7\n\n", s("7")),
        // An event cut off by the end of the stream does not.
        (None, b"id: 1\ndata: a\n\nid: 2\ndata: b\n", s("1")),
        // An empty id resets it; one with NUL is ignored.
        (None, b"id: 1\ndata: a\n\nid\ndata: b\n\n", s("")),
        (None, b"id: 1\ndata: a\n\nid: 2\0\ndata: b\n\n", s("1")),
        (None, b"id: 1\r\ndata: a\r\rid: 2\r\n\r\n", s("2")),
        // Seeded from the previous stream: a prelude without id keeps the seed.
        (Some("5"), b"retry: 1000\n\n", s("5")),
        (Some("5"), b"id: 6\ndata: x\n\n", s("6")),
    ];
    for (seed, input, expected) in cases {
        assert_eq!(
            &dispatched_after(*seed, input),
            expected,
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
    let mut p = Parser::new(Limits::default());
    p.feed(b"id: 3\ndata: a\n\nid: 4\n", &mut Vec::new())
        .expect("ok");
    assert_eq!(
        (p.last_event_id(), p.dispatched_last_event_id()),
        (Some("4"), Some("3"))
    );
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
fn invalid_utf8_cannot_grow_a_line_past_the_limit() {
    // 12 raw bytes, within the limit, decode to 3 + 9 × 3 = 30 bytes of `id: \u{FFFD}…`.
    let limits = Limits {
        max_line: 16,
        max_event: 64,
    };
    for field in [&b"id: "[..], b"event: "] {
        let mut input = field.to_vec();
        input.extend_from_slice(&[0xFF; 9]);
        input.extend_from_slice(b"\ndata: x\n\n");
        let mut p = Parser::new(limits);
        let mut out = Vec::new();
        let err = p
            .feed(&input, &mut out)
            .expect_err("over the limit once decoded");
        assert_eq!(err, SseError::LineTooLong { limit: 16 });
        assert!(p.last_event_id().is_none_or(|id| id.len() <= 16));
        assert!(p.buffered() <= 16 + 64);
    }
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
