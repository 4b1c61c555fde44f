//! Properties of the parser over generated streams (proptest), where the example tests in
//! `src/tests.rs` pin single cases: a valid stream written with any mix of CR, LF and CRLF,
//! comments, `retry` fields and an optional BOM parses to exactly the events it was written
//! from however it is split into chunks; and on any bytes at all, under small limits,
//! chunked parsing gives the same items and error as one-chunk parsing and the buffered
//! state stays within the limits (the same property `fuzz/` checks at depth).

use dropzero_sse::{Event, Item, Limits, Parser, SseError};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Block {
    Event {
        event: Option<String>,
        data: Vec<String>,
        id: Option<String>,
    },
    Comment(String),
    Retry(u64),
}

fn text() -> impl Strategy<Value = String> {
    // Any text without line breaks, including NUL, colons, spaces and non-ASCII.
    proptest::string::string_regex("[^\r\n]{0,24}").expect("a valid regex")
}

fn block() -> impl Strategy<Value = Block> {
    prop_oneof![
        4 => (
            proptest::option::of("[a-z_]{1,10}"),
            proptest::collection::vec(text(), 1..4),
            proptest::option::of("[0-9]{1,6}"),
        )
            .prop_map(|(event, data, id)| Block::Event { event, data, id }),
        1 => text().prop_map(Block::Comment),
        1 => any::<u32>().prop_map(|ms| Block::Retry(u64::from(ms))),
    ]
}

/// The stream's bytes and the items a correct parser returns for it.
fn render(blocks: &[Block], endings: &[u8], bom: bool) -> (Vec<u8>, Vec<Item>) {
    let mut lines: Vec<String> = Vec::new();
    let mut expected = Vec::new();
    let mut last_id: Option<String> = None;
    for block in blocks {
        match block {
            Block::Event { event, data, id } => {
                if let Some(e) = event {
                    lines.push(format!("event: {e}"));
                }
                for d in data {
                    lines.push(format!("data: {d}"));
                }
                if let Some(id) = id {
                    lines.push(format!("id: {id}"));
                    last_id = Some(id.clone());
                }
                lines.push(String::new());
                expected.push(Item::Event(Event {
                    event: event.clone().unwrap_or_else(|| "message".into()),
                    data: data.join("\n"),
                    last_event_id: last_id.clone(),
                    has_id: id.is_some(),
                }));
            }
            Block::Comment(c) => {
                lines.push(format!(": {c}"));
                expected.push(Item::Comment(c.clone()));
            }
            Block::Retry(ms) => {
                lines.push(format!("retry: {ms}"));
                expected.push(Item::Retry(*ms));
            }
        }
    }
    let mut out = if bom {
        b"\xEF\xBB\xBF".to_vec()
    } else {
        Vec::new()
    };
    let mut previous_cr = false;
    for (i, line) in lines.iter().enumerate() {
        out.extend_from_slice(line.as_bytes());
        let mut ending: &[u8] = match endings.get(i % endings.len().max(1)).copied() {
            Some(0) | None => b"\n",
            Some(1) => b"\r",
            Some(_) => b"\r\n",
        };
        // CR, then an empty line ended by LF, would read as one CRLF break, not two.
        if previous_cr && line.is_empty() && ending == b"\n" {
            ending = b"\r\n";
        }
        out.extend_from_slice(ending);
        previous_cr = ending == b"\r";
    }
    (out, expected)
}

/// Items until the first error, and that error; checks the memory bound after every chunk.
fn parse(limits: Limits, bytes: &[u8], splits: &[usize]) -> (Vec<Item>, Option<SseError>) {
    let mut parser = Parser::new(limits);
    let mut out = Vec::new();
    let mut rest = bytes;
    let mut cycle = splits.iter().cycle();
    while !rest.is_empty() {
        let n = cycle.next().map_or(rest.len(), |&n| n.min(rest.len()));
        if n == 0 {
            // An empty read must be harmless; then take a byte so the loop advances.
            parser
                .feed(&[], &mut out)
                .expect("an empty chunk never fails");
        }
        let (chunk, tail) = rest.split_at(n.max(1));
        rest = tail;
        if let Err(e) = parser.feed(chunk, &mut out) {
            return (out, Some(e));
        }
        assert!(parser.buffered() <= 2 * limits.max_line + limits.max_event);
    }
    (out, None)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_chunking_of_a_valid_stream_gives_its_events(
        blocks in proptest::collection::vec(block(), 0..12),
        endings in proptest::collection::vec(0u8..3, 1..5),
        bom: bool,
        splits in proptest::collection::vec(0usize..9, 0..6),
    ) {
        let (stream, expected) = render(&blocks, &endings, bom);
        let (items, error) = parse(Limits::default(), &stream, &splits);
        prop_assert_eq!(error, None);
        prop_assert_eq!(items, expected);
    }

    #[test]
    fn chunking_never_changes_the_result_on_any_bytes(
        bytes in proptest::collection::vec(
            prop_oneof![Just(b'\n'), Just(b'\r'), Just(b':'), Just(b' '), any::<u8>(),
                        Just(b'd'), Just(b'a'), Just(b't')],
            0..300,
        ),
        max_line in 1usize..40,
        max_event in 1usize..80,
        splits in proptest::collection::vec(0usize..9, 1..6),
    ) {
        let limits = Limits { max_line, max_event };
        prop_assert_eq!(parse(limits, &bytes, &[]), parse(limits, &bytes, &splits));
    }
}
