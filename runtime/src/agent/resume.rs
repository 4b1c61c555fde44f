//! Rebuilding a session's progress from its journaled events, so a replica that takes a
//! session over continues exactly where the journal stops: the next seq, the running
//! `content_sha256` digest, the cumulative usage, the plan, and for each step its state, the
//! tool rounds it completed and the text of the turn it was in the middle of (the prefill).
//!
//! Pure: events in, [`Progress`] out. Not for reading the journal or running anything (see
//! `state::AppState::resume_session` and `agent::run_session`).

use std::collections::HashMap;

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::planner::Plan;
use crate::session::{EventRecord, SessionStatus, Usage};

/// Why a replica took a session over: its owner released it (drain hand-off), or its lease
/// expired (the owner crashed or stalled).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TakeoverReason {
    Released,
    LeaseExpired,
}

impl TakeoverReason {
    /// A claim's previous owner tells the reason: release clears the owner, expiry does not.
    pub fn from_previous_owner(previous_owner: Option<&str>) -> TakeoverReason {
        match previous_owner {
            None => TakeoverReason::Released,
            Some(_) => TakeoverReason::LeaseExpired,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TakeoverReason::Released => "released",
            TakeoverReason::LeaseExpired => "lease_expired",
        }
    }
}

/// Where a step stands in the journal.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum StepState {
    /// Started (or retrying) and not ended: the new owner continues it.
    #[default]
    Running,
    Completed,
    Failed(String),
    Cancelled,
}

/// One tool call a step's LLM asked for: the assistant text before it, and the call.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    pub text: String,
    /// The `tool_use` id; journals written before ids were recorded get a stable synthetic one.
    pub id: String,
    pub tool: String,
    pub input: Value,
}

/// A tool call and its journaled result.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolRound {
    pub call: ToolCall,
    pub output: String,
}

/// What the journal says about one step.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StepProgress {
    pub state: StepState,
    /// Tool rounds with a journaled result, in order.
    pub rounds: Vec<ToolRound>,
    /// A tool `call` without a `result`: the new owner runs the tool again.
    pub pending_call: Option<ToolCall>,
    /// Text of the current turn so far (the prefill for the next LLM call).
    pub text: String,
}

/// The terminal event, if the session already has one.
#[derive(Debug, Clone, PartialEq)]
pub struct Done {
    pub status: SessionStatus,
    pub usage: Usage,
    pub last_seq: u64,
}

/// A session's progress as far as the journal knows it.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    pub last_seq: u64,
    /// SHA-256 over every token text so far, in seq order (continues into `done`).
    pub digest: Sha256,
    /// The last `usage` event (cumulative).
    pub usage: Usage,
    /// Per step, token events journaled since that step's last `usage` event: output of
    /// calls interrupted mid-stream, billed by the provider but in no usage event.
    unbilled: HashMap<String, u64>,
    pub plan: Option<Plan>,
    pub steps: HashMap<String, StepProgress>,
    /// Set when the session already ended: there is nothing to resume.
    pub done: Option<Done>,
}

/// An event the rebuild cannot make sense of (the journal is not what this runtime wrote).
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("journal event {seq}: {message}")]
pub struct RebuildError {
    pub seq: u64,
    pub message: String,
}

impl Progress {
    /// Fold every event of a session, in seq order.
    pub fn rebuild<'a>(
        events: impl IntoIterator<Item = &'a EventRecord>,
    ) -> Result<Progress, RebuildError> {
        let mut progress = Progress::default();
        for event in events {
            progress.apply(event)?;
        }
        Ok(progress)
    }

    /// Fold one more event (the next seq).
    pub fn apply(&mut self, event: &EventRecord) -> Result<(), RebuildError> {
        let error = |message: String| RebuildError {
            seq: event.seq,
            message,
        };
        if event.seq != self.last_seq + 1 {
            return Err(error(format!("expected seq {}", self.last_seq + 1)));
        }
        let data: Value = serde_json::from_str(&event.data)
            .map_err(|e| error(format!("data is not JSON: {e}")))?;
        let text = |key: &str| data[key].as_str().unwrap_or_default().to_string();
        match event.kind.as_str() {
            "plan" => {
                let plan = serde_json::from_value(data.clone())
                    .map_err(|e| error(format!("plan: {e}")))?;
                self.plan = Some(plan);
            }
            "usage" => {
                match data["step"].as_str() {
                    Some(step) => drop(self.unbilled.remove(step)),
                    // Written before usage named its step: assume it covers everything.
                    None => self.unbilled.clear(),
                }
                self.usage =
                    serde_json::from_value(data).map_err(|e| error(format!("usage: {e}")))?;
            }
            "token" => {
                let chunk = text("text");
                let step = text("step");
                self.digest.update(chunk.as_bytes());
                *self.unbilled.entry(step.clone()).or_default() += 1;
                self.step(&step).text.push_str(&chunk);
            }
            "step" => {
                let step = self.step(&text("step"));
                step.state = match data["state"].as_str() {
                    Some("completed") => StepState::Completed,
                    Some("failed") => StepState::Failed(text("error")),
                    Some("cancelled") => StepState::Cancelled,
                    // started, retrying: still running (a retry keeps the turn's text).
                    _ => StepState::Running,
                };
            }
            "tool" => {
                let name = text("step");
                let step = self.step(&name);
                match data["phase"].as_str() {
                    Some("call") => {
                        let id = match data["id"].as_str() {
                            Some(id) => id.to_string(),
                            None => format!("toolu_dz_{name}_{}", step.rounds.len() + 1),
                        };
                        step.pending_call = Some(ToolCall {
                            text: std::mem::take(&mut step.text),
                            id,
                            tool: text("tool"),
                            input: data["input"].clone(),
                        });
                    }
                    Some("result") => {
                        let call = step.pending_call.take().ok_or_else(|| {
                            error(format!("tool result without a call in {name}"))
                        })?;
                        step.rounds.push(ToolRound {
                            call,
                            output: text("output"),
                        });
                    }
                    other => return Err(error(format!("tool phase {other:?}"))),
                }
            }
            "done" => {
                let status = data["status"]
                    .as_str()
                    .and_then(SessionStatus::parse)
                    .ok_or_else(|| error("done without a status".into()))?;
                let usage = serde_json::from_value(data["usage"].clone())
                    .map_err(|e| error(format!("done usage: {e}")))?;
                self.done = Some(Done {
                    status,
                    usage,
                    last_seq: event.seq,
                });
            }
            // `session` (who ran it, takeovers), `error` (informational), anything newer.
            _ => {}
        }
        self.last_seq = event.seq;
        Ok(())
    }

    /// Output tokens journaled by calls whose usage was never journaled (their replica died
    /// or handed off mid-call). The provider billed them; a takeover adds them to the usage.
    pub fn unbilled_output(&self) -> u64 {
        self.unbilled.values().sum()
    }

    fn step(&mut self, id: &str) -> &mut StepProgress {
        self.steps.entry(id.to_string()).or_default()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests fail loudly
mod tests {
    use serde_json::json;

    use super::*;

    fn events(list: &[(&str, Value)]) -> Vec<EventRecord> {
        list.iter()
            .enumerate()
            .map(|(i, (kind, data))| EventRecord {
                session_id: "s".into(),
                seq: i as u64 + 1,
                kind: kind.to_string(),
                data: data.to_string(),
            })
            .collect()
    }

    fn token(step: &str, text: &str) -> (&'static str, Value) {
        ("token", json!({"step": step, "text": text}))
    }

    #[test]
    fn rebuilds_steps_rounds_prefill_digest_and_usage() {
        let list = [
            ("session", json!({"session_id": "s", "replica_id": "a"})),
            (
                "plan",
                json!({"steps": [
                    {"id": "s1", "task": "t1", "depends_on": [], "tool": null},
                    {"id": "s2", "task": "t2", "depends_on": [], "tool": "search"},
                    {"id": "s3", "task": "t3", "depends_on": ["s1"], "tool": null}]}),
            ),
            (
                "step",
                json!({"step": "s1", "state": "started", "attempt": 1}),
            ),
            (
                "step",
                json!({"step": "s2", "state": "started", "attempt": 1}),
            ),
            token("s1", " alpha"),
            token("s2", " look"),
            (
                "tool",
                json!({"step": "s2", "phase": "call", "tool": "search", "id": "toolu_1", "input": {"query": "q"}}),
            ),
            token("s1", " beta"),
            (
                "tool",
                json!({"step": "s2", "phase": "result", "tool": "search", "output": "found"}),
            ),
            (
                "usage",
                json!({"input_tokens": 10, "output_tokens": 4, "cost_usd": 0.5, "step": "s2"}),
            ),
            ("step", json!({"step": "s1", "state": "completed"})),
            token("s2", " after"),
            (
                "step",
                json!({"step": "s2", "state": "retrying", "attempt": 2, "error": "cut"}),
            ),
            token("s2", " more"),
            (
                "step",
                json!({"step": "s3", "state": "started", "attempt": 1}),
            ),
            (
                "tool",
                json!({"step": "s3", "phase": "call", "tool": "fetch", "input": {"query": "x"}}),
            ),
        ];
        let progress = Progress::rebuild(&events(&list)).unwrap();
        assert_eq!(progress.last_seq, list.len() as u64);
        assert!(progress.done.is_none());
        assert_eq!(progress.usage.output_tokens, 4);
        // s1's 2 tokens, and s2's 2 after its usage event: in no usage event yet.
        assert_eq!(progress.unbilled_output(), 4);
        assert_eq!(progress.plan.as_ref().map(|p| p.steps.len()), Some(3));
        let digest = hex::encode(progress.digest.clone().finalize());
        let all = " alpha look beta after more";
        assert_eq!(digest, hex::encode(Sha256::digest(all.as_bytes())));

        let s1 = &progress.steps["s1"];
        assert_eq!(
            (&s1.state, s1.text.as_str()),
            (&StepState::Completed, " alpha beta")
        );
        let s2 = &progress.steps["s2"];
        assert_eq!(s2.state, StepState::Running);
        assert_eq!(
            s2.text, " after more",
            "the current turn's text survives a retry"
        );
        assert_eq!(s2.pending_call, None);
        assert_eq!(
            s2.rounds,
            [ToolRound {
                call: ToolCall {
                    text: " look".into(),
                    id: "toolu_1".into(),
                    tool: "search".into(),
                    input: json!({"query": "q"}),
                },
                output: "found".into(),
            }]
        );
        let s3 = &progress.steps["s3"];
        let pending = s3.pending_call.as_ref().unwrap();
        assert_eq!(
            (pending.tool.as_str(), pending.id.as_str()),
            ("fetch", "toolu_dz_s3_1")
        );
        assert!(s3.rounds.is_empty() && s3.text.is_empty());
    }

    #[test]
    fn terminal_states_and_done() {
        let list = [
            (
                "step",
                json!({"step": "s1", "state": "failed", "error": "boom"}),
            ),
            ("step", json!({"step": "s2", "state": "cancelled"})),
            (
                "done",
                json!({"status": "failed", "usage": {"input_tokens": 1, "output_tokens": 2, "cost_usd": 0.0}, "last_seq": 3, "content_sha256": ""}),
            ),
        ];
        let progress = Progress::rebuild(&events(&list)).unwrap();
        assert_eq!(progress.steps["s1"].state, StepState::Failed("boom".into()));
        assert_eq!(progress.steps["s2"].state, StepState::Cancelled);
        let done = progress.done.unwrap();
        assert_eq!(
            (done.status, done.last_seq, done.usage.output_tokens),
            (SessionStatus::Failed, 3, 2)
        );
    }

    #[test]
    fn rejects_what_this_runtime_never_writes() {
        let check = |list: Vec<EventRecord>, seq: u64, needle: &str| {
            let err = Progress::rebuild(&list).unwrap_err();
            assert_eq!(err.seq, seq, "{err}");
            assert!(err.message.contains(needle), "{err}");
        };
        let mut gap = events(&[token("s1", " a"), token("s1", " b")]);
        gap[1].seq = 3;
        check(gap, 3, "expected seq 2");
        let mut bad = events(&[token("s1", " a")]);
        bad[0].data = "{".into();
        check(bad, 1, "not JSON");
        check(
            events(&[(
                "tool",
                json!({"step": "s1", "phase": "result", "output": "x"}),
            )]),
            1,
            "without a call",
        );
    }
}
