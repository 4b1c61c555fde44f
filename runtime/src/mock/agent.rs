//! What the mock answers: a wire-independent [`Conversation`] in, a [`Reply`] (text tokens,
//! maybe one tool call, a stop reason) out — plain completions, planner plans, worker tool
//! calls and runaway agents, per docs/protocol.md §4.
//!
//! It is not for wire formats (the API modules turn requests into a `Conversation` and a
//! `Reply` into bytes) nor for timing (the generator).

use rand::Rng;
use serde_json::json;

use super::profile::Profile;
use super::text::{self, ContentKey, Directives};

/// How the caller asked the mock to behave (`x-dropzero-role`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Plain,
    Planner,
    Worker,
}

impl Role {
    pub fn from_header(value: Option<&str>) -> Role {
        match value.map(str::trim) {
            Some(v) if v.eq_ignore_ascii_case("planner") => Role::Planner,
            Some(v) if v.eq_ignore_ascii_case("worker") => Role::Worker,
            _ => Role::Plain,
        }
    }
}

/// A request, whatever API it came through.
#[derive(Debug, Clone, Default)]
pub struct Conversation {
    pub model: String,
    pub system: String,
    /// Messages without a trailing assistant prefill: (role, canonical JSON of the content).
    pub messages: Vec<(String, String)>,
    /// Text of the last user message that has text (the query or the step's task).
    pub last_user_text: String,
    /// Text of a trailing assistant message.
    pub prefill: Option<String>,
    /// Names of the tools the request offers.
    pub tools: Vec<String>,
    /// Whether any message carries a tool result.
    pub has_tool_result: bool,
    pub max_tokens: Option<u32>,
    /// Bytes of all message and system text (input tokens = ceil(bytes / 4)).
    pub input_bytes: usize,
}

impl Conversation {
    pub fn input_tokens(&self) -> u64 {
        self.input_bytes.div_ceil(4) as u64
    }
}

/// Why generation stopped, in API-neutral terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    EndTurn,
    MaxTokens,
    ToolUse,
}

/// One tool call: its input JSON is streamed in chunks, one output token each.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    pub input: serde_json::Value,
    pub input_chunks: Vec<String>,
}

/// What the mock will generate, after prefill and `max_tokens` are applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub text: Vec<String>,
    pub tool: Option<ToolCall>,
    pub stop: Stop,
}

impl Reply {
    /// Output tokens this reply bills when generated in full.
    pub fn tokens(&self) -> usize {
        self.text.len() + self.tool.as_ref().map_or(0, |t| t.input_chunks.len())
    }
}

/// Characters per token when JSON (plans, tool inputs) is streamed.
const JSON_CHUNK: usize = 8;
/// Text tokens a runaway worker emits before each tool call.
const RUNAWAY_TEXT: usize = 3;

/// Decide the reply to `conv` for `role`.
pub fn reply(seed: u64, profile: &Profile, role: Role, conv: &Conversation) -> Reply {
    let content_seed = ContentKey {
        seed,
        model: &conv.model,
        system: &conv.system,
        messages: &conv.messages,
    }
    .digest();
    let directives = Directives::parse(&conv.last_user_text);
    let length = directives.tokens.unwrap_or(profile.default_output_tokens) as usize;
    let mut words = text::rng(content_seed, 1);
    let (full, tool) = match role {
        Role::Plain => (text::words(&mut words, length), None),
        Role::Planner => {
            let plan = plan(content_seed, &directives, length);
            (text::chunk(&plan.to_string(), JSON_CHUNK), None)
        }
        Role::Worker if directives.runaway => {
            let name = directives
                .tool
                .clone()
                .or_else(|| conv.tools.first().cloned())
                .unwrap_or_else(|| "search".to_owned());
            let text = text::words(&mut words, RUNAWAY_TEXT);
            (text, Some(tool_call(content_seed, name)))
        }
        Role::Worker => match &directives.tool {
            Some(name) if !conv.tools.is_empty() && !conv.has_tool_result => {
                (Vec::new(), Some(tool_call(content_seed, name.clone())))
            }
            _ => (text::words(&mut words, length), None),
        },
    };
    // A prefill continues the text; a tool call after the text still follows (a runaway
    // worker cut inside its text resumes with the rest of it, then calls the tool).
    let text = match &conv.prefill {
        Some(prefill) => text::continue_after(full, prefill),
        None => full,
    };
    cap(
        Reply {
            stop: if tool.is_some() {
                Stop::ToolUse
            } else {
                Stop::EndTurn
            },
            text,
            tool,
        },
        conv.max_tokens,
    )
}

/// Apply `max_tokens`: truncate the text; a tool call that no longer fits is dropped.
fn cap(mut reply: Reply, max_tokens: Option<u32>) -> Reply {
    let Some(max) = max_tokens.map(|m| m as usize) else {
        return reply;
    };
    if reply.tokens() > max {
        reply.text.truncate(max);
        reply.tool = None;
        reply.stop = Stop::MaxTokens;
    }
    reply
}

fn tool_call(content_seed: u64, name: String) -> ToolCall {
    let mut rng = text::rng(content_seed, 2);
    let id = format!(
        "toolu_{:016x}{:08x}",
        rng.random::<u64>(),
        rng.random::<u32>()
    );
    let query = text::words(&mut rng, 5).concat().trim_start().to_owned();
    let input = json!({ "query": query });
    ToolCall {
        id,
        name,
        input_chunks: text::chunk(&input.to_string(), JSON_CHUNK),
        input,
    }
}

/// The planner's plan: a DAG whose steps split `total` tokens and carry the query's
/// directives on to the workers.
fn plan(content_seed: u64, d: &Directives, total: usize) -> serde_json::Value {
    let mut rng = text::rng(content_seed, 3);
    let count = match d.steps {
        Some(k) => k.clamp(1, 8) as usize,
        None => rng.random_range(2..=4),
    };
    let weights: Vec<usize> = (0..count).map(|_| rng.random_range(1..=4)).collect();
    let sum: usize = weights.iter().sum();
    let mut split: Vec<usize> = weights.iter().map(|w| total * w / sum).collect();
    let short = total - split.iter().sum::<usize>();
    for part in split.iter_mut().take(short) {
        *part += 1;
    }
    let tool_step = d.tool.as_ref().map(|_| rng.random_range(0..count));
    let steps: Vec<serde_json::Value> = (0..count)
        .map(|i| {
            let depends_on: Vec<String> = (0..i)
                .filter(|&j| rng.random_bool(if j + 1 == i { 0.5 } else { 0.2 }))
                .map(|j| format!("s{}", j + 1))
                .collect();
            let mut task = text::words(&mut rng, 4).concat().trim_start().to_owned();
            task.push_str(&format!(" [dz tokens={}]", split[i]));
            let tool = match (&d.tool, tool_step) {
                (Some(name), Some(t)) if t == i => {
                    task.push_str(&format!(" [dz tool={name}]"));
                    Some(name.clone())
                }
                _ => None,
            };
            if d.runaway {
                task.push_str(" [dz runaway]");
            }
            json!({ "id": format!("s{}", i + 1), "task": task, "depends_on": depends_on, "tool": tool })
        })
        .collect();
    json!({ "steps": steps })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conv(text: &str) -> Conversation {
        Conversation {
            model: "m".into(),
            messages: vec![("user".into(), format!("{text:?}"))],
            last_user_text: text.into(),
            ..Conversation::default()
        }
    }

    #[test]
    fn plan_is_a_dag_whose_split_sums_to_the_total() {
        for seed in 0..50 {
            let r = reply(
                seed,
                &Profile::fast(),
                Role::Planner,
                &conv("q [dz tokens=97] [dz tool=search]"),
            );
            let plan: serde_json::Value = serde_json::from_str(&r.text.concat()).expect("json");
            let steps = plan["steps"].as_array().expect("steps");
            assert!((2..=4).contains(&steps.len()));
            let mut sum = 0;
            let mut tools = 0;
            for (i, s) in steps.iter().enumerate() {
                assert_eq!(s["id"], format!("s{}", i + 1));
                for dep in s["depends_on"].as_array().expect("deps") {
                    let n: usize = dep.as_str().and_then(|d| d[1..].parse().ok()).expect("sN");
                    assert!(n <= i, "dependency on a later step");
                }
                let task = s["task"].as_str().expect("task");
                sum += Directives::parse(task).tokens.expect("tokens") as usize;
                tools += usize::from(!s["tool"].is_null());
            }
            assert_eq!(sum, 97);
            assert_eq!(tools, 1);
        }
    }

    #[test]
    fn prefill_continues_the_text_before_a_tool_call() {
        let mut c = conv("go [dz runaway]");
        c.tools = vec!["search".into()];
        let full = reply(1, &Profile::fast(), Role::Worker, &c);
        assert_eq!((full.text.len(), full.stop), (RUNAWAY_TEXT, Stop::ToolUse));
        c.prefill = Some(full.text[..1].concat());
        let rest = reply(1, &Profile::fast(), Role::Worker, &c);
        assert_eq!(rest.text, full.text[1..].to_vec());
        assert_eq!(rest.tool, full.tool, "the same call follows");
    }

    #[test]
    fn max_tokens_truncates() {
        let mut c = conv("[dz tokens=10]");
        c.max_tokens = Some(4);
        let r = reply(1, &Profile::fast(), Role::Worker, &c);
        assert_eq!((r.text.len(), r.stop), (4, Stop::MaxTokens));
    }
}
