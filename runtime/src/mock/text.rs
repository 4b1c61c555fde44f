//! Deterministic content: the token vocabulary, the content seed of a conversation, the
//! `[dz …]` directives, and prefill continuation.
//!
//! Everything here is a pure function of its inputs (no clock, no shared state), which is what
//! makes the mock's output reproducible per seed. Deciding *what kind* of reply to give
//! (plan, tool call, text) is `agent.rs`'s job.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};

/// Words the mock speaks; each token is one of these with a leading space.
const VOCAB: &[&str] = &[
    "the",
    "service",
    "latency",
    "request",
    "stream",
    "token",
    "replica",
    "session",
    "deploy",
    "budget",
    "agent",
    "planner",
    "worker",
    "tool",
    "result",
    "journal",
    "lease",
    "drain",
    "signal",
    "metric",
    "queue",
    "retry",
    "backoff",
    "timeout",
    "cluster",
    "region",
    "cache",
    "index",
    "query",
    "answer",
    "because",
    "therefore",
    "however",
    "quickly",
    "slowly",
    "every",
    "system",
    "failure",
    "recovery",
    "capacity",
    "throughput",
    "error",
    "window",
    "report",
    "incident",
    "summary",
    "analysis",
    "evidence",
    "shows",
    "that",
    "and",
    "with",
    "under",
    "load",
    "while",
    "after",
    "before",
    "during",
    "cost",
    "users",
    "traffic",
    "peak",
    "is",
    "a",
];

/// The conversation parts that determine the content (trailing assistant prefill excluded).
#[derive(Debug, Clone, Copy)]
pub struct ContentKey<'a> {
    pub seed: u64,
    pub model: &'a str,
    pub system: &'a str,
    /// Each message as (role, canonical JSON of its content).
    pub messages: &'a [(String, String)],
}

impl ContentKey<'_> {
    /// A 64-bit seed derived from every part of the key (length-prefixed, so no two different
    /// keys can concatenate to the same bytes).
    pub fn digest(&self) -> u64 {
        let mut h = Sha256::new();
        h.update(self.seed.to_le_bytes());
        for part in [self.model, self.system] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part.as_bytes());
        }
        for (role, content) in self.messages {
            for part in [role, content] {
                h.update((part.len() as u64).to_le_bytes());
                h.update(part.as_bytes());
            }
        }
        let out = h.finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&out[..8]);
        u64::from_le_bytes(first)
    }
}

/// A content RNG for one purpose (`salt`) of one conversation.
pub fn rng(content_seed: u64, salt: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(content_seed ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// `n` tokens, each a vocabulary word with a leading space.
pub fn words(rng: &mut impl Rng, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| {
            // Not `format!`: this runs once per generated token.
            let word = VOCAB[rng.random_range(0..VOCAB.len())];
            let mut token = String::with_capacity(1 + word.len());
            token.push(' ');
            token.push_str(word);
            token
        })
        .collect()
}

/// Split text into tokens of at most `size` characters (used for JSON: plans, tool inputs).
pub fn chunk(text: &str, size: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    chars
        .chunks(size.max(1))
        .map(|c| c.iter().collect())
        .collect()
}

/// The tokens still to generate when the assistant turn already starts with `prefill`.
///
/// When `prefill` is a prefix of the full text, the continuation starts exactly where it stops
/// (mid-token prefills continue with the token's remainder). A prefill that is not a prefix
/// is not ours to continue; the full text is returned.
pub fn continue_after(full: Vec<String>, prefill: &str) -> Vec<String> {
    let mut rest = prefill;
    for (i, token) in full.iter().enumerate() {
        if rest.is_empty() {
            return full.into_iter().skip(i).collect();
        }
        if let Some(after) = rest.strip_prefix(token.as_str()) {
            rest = after;
        } else if let Some(remainder) = token.strip_prefix(rest) {
            let remainder = remainder.to_owned();
            return std::iter::once(remainder)
                .chain(full.into_iter().skip(i + 1))
                .collect();
        } else {
            return full;
        }
    }
    if rest.is_empty() { Vec::new() } else { full }
}

/// The `[dz …]` directives found in a message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Directives {
    pub tokens: Option<u32>,
    pub steps: Option<u32>,
    pub tool: Option<String>,
    pub runaway: bool,
}

impl Directives {
    /// Read every `[dz key=value]` / `[dz runaway]` in `text`; unknown or malformed ones are
    /// ignored (the text is free-form user input).
    pub fn parse(text: &str) -> Directives {
        let mut d = Directives::default();
        let mut rest = text;
        while let Some(start) = rest.find("[dz ") {
            let after = &rest[start + 4..];
            let Some(end) = after.find(']') else { break };
            let body = after[..end].trim();
            match body.split_once('=') {
                Some(("tokens", v)) => d.tokens = v.trim().parse().ok().or(d.tokens),
                Some(("steps", v)) => d.steps = v.trim().parse().ok().or(d.steps),
                Some(("tool", v)) if !v.trim().is_empty() => d.tool = Some(v.trim().to_owned()),
                None if body == "runaway" => d.runaway = true,
                _ => {}
            }
            rest = &after[end..];
        }
        d
    }
}

/// The text in a message `content` as both APIs write it: a string, or a list of blocks whose
/// `text` (and, for tool results, nested `content`) is collected in order.
pub fn text_of(content: &serde_json::Value) -> String {
    use serde_json::Value;
    match content {
        Value::String(s) => s.clone(),
        Value::Array(blocks) => blocks
            .iter()
            .map(|b| match b {
                Value::String(s) => s.clone(),
                Value::Object(o) => match (o.get("text"), o.get("content")) {
                    (Some(Value::String(t)), _) => t.clone(),
                    (_, Some(inner)) => text_of(inner),
                    _ => String::new(),
                },
                _ => String::new(),
            })
            .collect(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &[&str]) -> Vec<String> {
        s.iter().map(|t| t.to_string()).collect()
    }

    #[test]
    fn continuation_cases() {
        let full = toks(&[" a", " bb", " c"]);
        for (prefill, want) in [
            ("", vec![" a", " bb", " c"]),
            (" a", vec![" bb", " c"]),
            (" a b", vec!["b", " c"]),
            (" a bb c", vec![]),
            (" a bb c", vec![]),
            (" x", vec![" a", " bb", " c"]),
            (" a bb c d", vec![" a", " bb", " c"]),
        ] {
            assert_eq!(
                continue_after(full.clone(), prefill),
                toks(&want),
                "{prefill:?}"
            );
        }
    }

    #[test]
    fn directive_cases() {
        let d =
            Directives::parse("do it [dz tokens=600] [dz steps=3] [dz tool=search] [dz runaway]");
        assert_eq!(
            d,
            Directives {
                tokens: Some(600),
                steps: Some(3),
                tool: Some("search".into()),
                runaway: true
            }
        );
        assert_eq!(
            Directives::parse("[dz tokens=x] [dz"),
            Directives::default()
        );
    }

    #[test]
    fn chunk_keeps_every_char() {
        let s = "{\"a\":\"é\"}";
        assert_eq!(chunk(s, 3).concat(), s);
    }

    #[test]
    fn digest_depends_on_every_part() {
        let msgs = vec![("user".to_string(), "\"hi\"".to_string())];
        let key = ContentKey {
            seed: 1,
            model: "m",
            system: "",
            messages: &msgs,
        };
        let base = key.digest();
        assert_eq!(base, key.digest());
        assert_ne!(base, ContentKey { seed: 2, ..key }.digest());
        assert_ne!(base, ContentKey { model: "n", ..key }.digest());
        assert_ne!(base, ContentKey { system: "s", ..key }.digest());
    }
}
