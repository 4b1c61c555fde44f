//! The SSE parser on arbitrary bytes split at arbitrary points, under small limits so the
//! fuzzer reaches them. Asserts: no panic; the buffered state never exceeds what the limits
//! allow after any chunk; and feeding the stream in one chunk or in the input's chunks gives
//! the same items and the same error (an event split across reads is the same event).
//!
//! Input layout (so a seed is a header plus a real stream):
//! `[max_line, max_event lo, max_event hi, n, split_1 … split_n, stream …]`; the split
//! lengths are cycled over the stream (0 = an empty chunk, which must be harmless).
#![no_main]

use dropzero_sse::{Item, Limits, Parser, SseError};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [max_line, lo, hi, n, rest @ ..] = data else {
        return;
    };
    let n = usize::from(*n).min(rest.len());
    let (splits, stream) = rest.split_at(n);
    let limits = Limits {
        max_line: usize::from(*max_line) + 1,
        max_event: usize::from(u16::from_le_bytes([*lo, *hi]) % 4096) + 1,
    };
    let whole = parse(limits, stream, &[]);
    let chunked = parse(limits, stream, splits);
    assert_eq!(whole, chunked, "one chunk vs split {splits:?}");
});

/// Items until the first error, and that error. Checks the memory bound after every chunk.
fn parse(limits: Limits, bytes: &[u8], splits: &[u8]) -> (Vec<Item>, Option<SseError>) {
    let mut parser = Parser::new(limits);
    let mut out = Vec::new();
    let mut rest = bytes;
    let mut cycle = splits.iter().cycle();
    while !rest.is_empty() {
        let n = match cycle.next() {
            Some(&n) => usize::from(n).min(rest.len()),
            None => rest.len(),
        };
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
        // What one stream may hold: an unfinished line, the event's data and its type.
        let bound = 2 * limits.max_line + limits.max_event;
        assert!(
            parser.buffered() <= bound,
            "buffered {} > {bound} with {limits:?}",
            parser.buffered()
        );
        let id = parser.last_event_id().map_or(0, str::len);
        assert!(
            id <= limits.max_line,
            "last event id of {id} bytes with {limits:?}"
        );
    }
    (out, None)
}
