//! Pre-serialised SSE events whose only varying part is one JSON string (a text token, a
//! chunk of tool-input JSON).
//!
//! Building a `serde_json::Value` and formatting it for every token was most of the
//! generator's CPU at zero latency. A [`Template`] renders the event once, through the same
//! code as before, with a placeholder string, and keeps the bytes on either side of it; each
//! token then costs two copies and serde_json's string escaping. The bytes are identical to
//! rendering the whole event (see the tests), whatever key order serde_json uses.

use bytes::{BufMut, BytesMut};

/// A placeholder no real token contains (control characters are escaped, so its JSON form
/// `"\u0001dz-hole\u0001"` cannot occur elsewhere in a rendered event either).
const HOLE: &str = "\u{1}dz-hole\u{1}";

/// One event, split around the JSON string that varies (the default is the bare string).
#[derive(Debug, Clone, Default)]
pub struct Template {
    head: Vec<u8>,
    tail: Vec<u8>,
}

impl Template {
    /// `render` builds the complete event for a given string value; it is called once.
    pub fn new(render: impl FnOnce(&str) -> Vec<u8>) -> Template {
        let whole = render(HOLE);
        let hole = serde_json::to_vec(HOLE).unwrap_or_default();
        let at = whole
            .windows(hole.len())
            .position(|w| w == hole.as_slice())
            .expect("the rendered event contains the placeholder once");
        Template {
            head: whole[..at].to_vec(),
            tail: whole[at + hole.len()..].to_vec(),
        }
    }

    /// Append the event for `value` to `out`.
    pub fn write(&self, value: &str, out: &mut BytesMut) {
        out.reserve(self.head.len() + value.len() + 2 + self.tail.len());
        out.put_slice(&self.head);
        // Writing a `&str` into a BytesMut cannot fail.
        let _ = serde_json::to_writer(out.writer(), value);
        out.put_slice(&self.tail);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render(value: &str) -> Vec<u8> {
        let data = json!({"type": "delta", "index": 3, "delta": {"text": value, "n": null}});
        format!("event: delta\ndata: {data}\n\n").into_bytes()
    }

    #[test]
    fn writes_the_same_bytes_as_rendering_the_whole_event() {
        let t = Template::new(render);
        let mut out = BytesMut::new();
        for value in [
            "",
            " the",
            "quote\" back\\ slash",
            "nl\n tab\t cr\r bell\u{7} del\u{7f}",
            "é ✓ 🚀 \u{2028}",
            HOLE,
        ] {
            out.clear();
            t.write(value, &mut out);
            assert_eq!(&out[..], render(value).as_slice(), "{value:?}");
        }
    }
}
