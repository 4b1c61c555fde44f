//! A Server-Sent Events parser that follows the WHATWG "event stream interpretation" rules
//! and never holds more memory than its [`Limits`] allow.
//!
//! It is for reading streams we do not trust: a target runtime under test, or an LLM
//! provider. Feed it byte chunks exactly as they arrive off the socket (events and lines may
//! be split anywhere, even inside a CRLF pair or a UTF-8 sequence); it returns each complete
//! event. It is not an HTTP client and does no I/O.
//!
//! Rules implemented (<https://html.spec.whatwg.org/multipage/server-sent-events.html>):
//! lines end in CR, LF or CRLF; a leading UTF-8 BOM is dropped; lines starting with `:` are
//! comments (reported, so idle timers can be reset by keepalives); `field: value` strips one
//! leading space; `data` lines are joined with `\n`; `id` containing NUL is ignored; `retry`
//! takes only ASCII digits; an empty line dispatches; an event with no data is not dispatched
//! (but its `id` still updates the last event id); a stream that ends mid-event drops it.
//!
//! The last event ID is kept twice, as the spec does: the *buffer* ([`Parser::last_event_id`])
//! changes as soon as an `id` field is read; the event source's *last event ID string*
//! ([`Parser::dispatched_last_event_id`], what a browser sends as `Last-Event-ID` when it
//! reconnects) takes the buffer's value at each dispatch, also of a block without data
//! ("dispatch the event", step 1), so an event cut off by the end of the stream leaves it as
//! it was.

use std::mem;

/// Hard bounds on what one stream can make us buffer.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Longest line (bytes, without its terminator), before and after UTF-8 decoding (an
    /// invalid byte decodes to the three bytes of U+FFFD).
    pub max_line: usize,
    /// Largest event (bytes of `data` accumulated across its lines).
    pub max_event: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_line: 64 * 1024,
            max_event: 256 * 1024,
        }
    }
}

/// A violation of [`Limits`]: the stream is hostile or broken and must be abandoned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SseError {
    #[error("SSE line longer than {limit} bytes")]
    LineTooLong { limit: usize },
    #[error("SSE event larger than {limit} bytes")]
    EventTooLarge { limit: usize },
}

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Event {
    /// The `event` field, or `"message"` when absent.
    pub event: String,
    /// The `data` lines joined with `\n`.
    pub data: String,
    /// The last event id *after* this event (WHATWG: it persists across events).
    pub last_event_id: Option<String>,
    /// Whether this event itself carried an `id` field.
    pub has_id: bool,
}

/// Something the parser saw that a client may care about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    Event(Event),
    /// A `:` comment line (its text after the colon); keepalives arrive as these.
    Comment(String),
    /// A valid `retry:` field, in milliseconds.
    Retry(u64),
}

/// Incremental parser state for one stream.
#[derive(Debug)]
pub struct Parser {
    limits: Limits,
    line: Vec<u8>,
    /// The previous chunk ended in CR: a following LF belongs to the same line break.
    after_cr: bool,
    /// Still at the very start of the stream, where a BOM may appear.
    at_start: bool,
    data: String,
    data_seen: bool,
    event_type: String,
    event_has_id: bool,
    last_event_id: Option<String>,
    /// The buffer's value at the latest dispatch (the event source's last event ID string).
    dispatched_last_event_id: Option<String>,
}

impl Parser {
    pub fn new(limits: Limits) -> Self {
        Parser {
            limits,
            line: Vec::new(),
            after_cr: false,
            at_start: true,
            data: String::new(),
            data_seen: false,
            event_type: String::new(),
            event_has_id: false,
            last_event_id: None,
            dispatched_last_event_id: None,
        }
    }

    /// Start with a known last event id (a client resuming with `Last-Event-ID`): both the
    /// buffer and the dispatched string start from it.
    pub fn with_last_event_id(limits: Limits, id: Option<String>) -> Self {
        let mut p = Parser::new(limits);
        p.dispatched_last_event_id.clone_from(&id);
        p.last_event_id = id;
        p
    }

    /// The last event ID buffer: the latest `id` field read, even of an event not yet
    /// dispatched. `None` until an `id` field arrives; `Some("")` after an empty one.
    pub fn last_event_id(&self) -> Option<&str> {
        self.last_event_id.as_deref()
    }

    /// The event source's last event ID string: the buffer's value at the latest dispatch,
    /// including dispatches of blocks without data (WHATWG "dispatch the event", step 1). This
    /// is what a browser sends as `Last-Event-ID` on reconnecting (none when it is empty).
    pub fn dispatched_last_event_id(&self) -> Option<&str> {
        self.dispatched_last_event_id.as_deref()
    }

    /// Bytes held for an unfinished line and event; useful to assert memory stays bounded.
    pub fn buffered(&self) -> usize {
        self.line.len() + self.data.len() + self.event_type.len()
    }

    /// Feed one chunk; complete items are appended to `out` in stream order.
    pub fn feed(&mut self, mut chunk: &[u8], out: &mut Vec<Item>) -> Result<(), SseError> {
        if self.at_start {
            // The BOM may itself be split across chunks; hold bytes until we can decide.
            const BOM: &[u8] = b"\xEF\xBB\xBF";
            let have = self.line.len();
            let take = (BOM.len() - have).min(chunk.len());
            self.line.extend_from_slice(&chunk[..take]);
            if BOM.starts_with(&self.line) {
                chunk = &chunk[take..];
                if self.line.len() < BOM.len() {
                    return Ok(());
                }
                self.line.clear();
            } else {
                // Not a BOM: re-feed the held bytes as ordinary input.
                let held = mem::take(&mut self.line);
                let held = &held[..held.len() - take];
                self.at_start = false;
                self.feed_bytes(held, out)?;
                return self.feed_bytes(chunk, out);
            }
            self.at_start = false;
        }
        self.feed_bytes(chunk, out)
    }

    fn feed_bytes(&mut self, chunk: &[u8], out: &mut Vec<Item>) -> Result<(), SseError> {
        let mut rest = chunk;
        while !rest.is_empty() {
            if self.after_cr {
                self.after_cr = false;
                if rest[0] == b'\n' {
                    rest = &rest[1..];
                    continue;
                }
            }
            match rest.iter().position(|&b| b == b'\n' || b == b'\r') {
                Some(pos) => {
                    self.push_line_bytes(&rest[..pos])?;
                    self.after_cr = rest[pos] == b'\r';
                    rest = &rest[pos + 1..];
                    let line = mem::take(&mut self.line);
                    self.process_line(&line, out)?;
                    self.line = line;
                    self.line.clear();
                }
                None => {
                    self.push_line_bytes(rest)?;
                    rest = &[];
                }
            }
        }
        Ok(())
    }

    fn push_line_bytes(&mut self, bytes: &[u8]) -> Result<(), SseError> {
        if self.line.len() + bytes.len() > self.limits.max_line {
            self.line.clear();
            return Err(SseError::LineTooLong {
                limit: self.limits.max_line,
            });
        }
        self.line.extend_from_slice(bytes);
        Ok(())
    }

    fn process_line(&mut self, line: &[u8], out: &mut Vec<Item>) -> Result<(), SseError> {
        // Streams are UTF-8; invalid sequences become U+FFFD as the spec's decoder does.
        // `from_utf8` first: its ASCII fast path is cheaper than the lossy decoder's chunking,
        // and every line of a well-behaved stream is valid.
        let line = match std::str::from_utf8(line) {
            Ok(valid) => std::borrow::Cow::Borrowed(valid),
            Err(_) => String::from_utf8_lossy(line),
        };
        // Each invalid byte grows to three (U+FFFD), so the limit holds on the decoded line
        // too: otherwise an `event` or `id` value could hold up to 3 × `max_line` (found by
        // fuzz/fuzz_targets/sse_parser.rs).
        if line.len() > self.limits.max_line {
            self.reset_event();
            return Err(SseError::LineTooLong {
                limit: self.limits.max_line,
            });
        }
        if line.is_empty() {
            self.dispatch(out);
            return Ok(());
        }
        if let Some(comment) = line.strip_prefix(':') {
            out.push(Item::Comment(
                comment.strip_prefix(' ').unwrap_or(comment).to_string(),
            ));
            return Ok(());
        }
        let (field, value) = match line.find(':') {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(' ').unwrap_or(v))
            }
            None => (&line[..], ""),
        };
        match field {
            "event" => value.clone_into(&mut self.event_type),
            "data" => {
                let extra = value.len() + usize::from(self.data_seen);
                if self.data.len() + extra > self.limits.max_event {
                    self.reset_event();
                    return Err(SseError::EventTooLarge {
                        limit: self.limits.max_event,
                    });
                }
                if self.data_seen {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.data_seen = true;
            }
            "id" if !value.contains('\0') => {
                // Reuse the buffer: every event of a numbered stream changes the id.
                match &mut self.last_event_id {
                    Some(id) => value.clone_into(id),
                    None => self.last_event_id = Some(value.to_string()),
                }
                self.event_has_id = true;
            }
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                if let Ok(ms) = value.parse() {
                    out.push(Item::Retry(ms));
                }
            }
            _ => {} // Unknown fields are ignored, as the spec requires.
        }
        Ok(())
    }

    fn dispatch(&mut self, out: &mut Vec<Item>) {
        if self.dispatched_last_event_id != self.last_event_id {
            self.dispatched_last_event_id
                .clone_from(&self.last_event_id);
        }
        if self.data_seen {
            let event = if self.event_type.is_empty() {
                "message".to_string()
            } else {
                mem::take(&mut self.event_type)
            };
            out.push(Item::Event(Event {
                event,
                data: mem::take(&mut self.data),
                last_event_id: self.last_event_id.clone(),
                has_id: self.event_has_id,
            }));
        }
        self.reset_event();
    }

    fn reset_event(&mut self) {
        self.data.clear();
        self.data_seen = false;
        self.event_type.clear();
        self.event_has_id = false;
    }
}

#[cfg(test)]
mod tests;
