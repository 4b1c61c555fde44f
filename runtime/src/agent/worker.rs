//! One step of a plan: worker LLM calls (`x-dropzero-role: worker`), tool use, and the
//! retry loop shared with the planner.
//!
//! Retries (429/529/5xx, connection errors, a cut stream, a call exceeding `--step-timeout`)
//! back off exponentially with jitter and emit `step` `retrying`. While the LLM refuses
//! connections outright (an outage), retries go on without counting against
//! `--max-retries`, for at most `--llm-outage-wait` from the first refusal in a row, and
//! always within the session's budget (checked before each attempt); then the step fails
//! with "LLM unreachable". After a cut, the retry
//! carries a **prefill** — a trailing assistant message with the text already emitted in
//! this turn — so the LLM continues where it stopped and no token is emitted twice.
//!
//! A step taken over from another replica starts from its journaled [`StepProgress`]: the
//! messages of its completed tool rounds are rebuilt exactly as they were sent (so the
//! deterministic LLM answers the same), the current turn's text becomes the prefill, and a
//! tool call without a journaled result runs again.
//!
//! Not for scheduling steps (see `dag`).

use std::time::Duration;

use serde_json::{Value, json};

use super::{
    SessionCtx,
    planner::PlanStep,
    resume::{StepProgress, ToolCall},
    retry::backoff,
    tools::Tools,
};
use crate::llm::{LlmError, LlmEvent, LlmRequest};

const MAX_TOKENS: u64 = 4096;

/// How a step ended.
#[derive(Debug, Clone, PartialEq)]
pub enum StepOutcome {
    Completed,
    Failed(String),
    /// The session is stopping (cancel, budget, drain); not the step's fault.
    Stopped,
}

/// The result of one turn (one logical LLM response, possibly over several attempts).
#[derive(Debug, Default)]
pub struct Turn {
    pub text: String,
    pub tool_use: Option<(String, String, Value)>,
}

#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("{0}")]
    Llm(#[from] LlmError),
    #[error("LLM call exceeded the step timeout of {0:?}")]
    Timeout(Duration),
    #[error("LLM unreachable for {0:?} (outage); last error: {1}")]
    Unreachable(Duration, LlmError),
    #[error("session stopping")]
    Stopped,
}

/// Run one step to its end; `resumed` is its journaled progress when the session was taken
/// over mid-step (then `started` is not emitted again).
pub async fn run_step(
    ctx: &SessionCtx,
    step: &PlanStep,
    resumed: Option<StepProgress>,
) -> StepOutcome {
    let progress = match resumed {
        Some(progress) => progress,
        None => {
            ctx.emit(
                "step",
                json!({"step": step.id, "state": "started", "attempt": 1}),
            )
            .await;
            StepProgress::default()
        }
    };
    let mut messages = vec![json!({"role": "user", "content": step.task})];
    for round in &progress.rounds {
        messages.extend(round_messages(&round.call, &round.output));
    }
    let mut prefill = progress.text;
    let mut pending = progress.pending_call;
    let tools = step.tool.as_deref().map(Tools::definition);
    loop {
        let call = match pending.take() {
            Some(call) => call,
            None => {
                if ctx.check_budget() {
                    return StepOutcome::Stopped;
                }
                let prefill = std::mem::take(&mut prefill);
                let turn = call_with_retries(
                    ctx,
                    &step.id,
                    "worker",
                    true,
                    &messages,
                    tools.clone(),
                    prefill,
                )
                .await;
                let turn = match turn {
                    Ok(turn) => turn,
                    Err(CallError::Stopped) => return StepOutcome::Stopped,
                    Err(e) => return StepOutcome::Failed(e.to_string()),
                };
                let Some((id, tool, input)) = turn.tool_use else {
                    return StepOutcome::Completed;
                };
                ctx.emit(
                    "tool",
                    json!({"step": step.id, "phase": "call", "tool": tool, "id": id, "input": input}),
                )
                .await;
                ToolCall {
                    text: turn.text,
                    id,
                    tool,
                    input,
                }
            }
        };
        let output = tokio::select! {
            _ = ctx.stop.cancelled() => return StepOutcome::Stopped,
            out = ctx.tools.call(&call.tool, &call.input) => match out {
                Ok(out) => out,
                Err(e) => return StepOutcome::Failed(e.to_string()),
            },
        };
        ctx.emit(
            "tool",
            json!({"step": step.id, "phase": "result", "tool": call.tool, "output": output}),
        )
        .await;
        messages.extend(round_messages(&call, &output));
    }
}

/// The two messages one tool round adds: the assistant's text and `tool_use`, then the user's
/// `tool_result`. Built the same way live and after a takeover, so the LLM sees identical bytes.
fn round_messages(call: &ToolCall, output: &str) -> [Value; 2] {
    let mut content = Vec::new();
    if !call.text.is_empty() {
        content.push(json!({"type": "text", "text": call.text}));
    }
    content
        .push(json!({"type": "tool_use", "id": call.id, "name": call.tool, "input": call.input}));
    [
        json!({"role": "assistant", "content": content}),
        json!({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": call.id, "content": output}
        ]}),
    ]
}

/// One turn with retries. `emit_tokens` is false for the planner (its text is the plan).
/// `prefill` is text of this turn already emitted (by an earlier owner of the session).
pub async fn call_with_retries(
    ctx: &SessionCtx,
    step: &str,
    role: &'static str,
    emit_tokens: bool,
    messages: &[Value],
    tools: Option<Value>,
    prefill: String,
) -> Result<Turn, CallError> {
    let mut turn = Turn {
        text: prefill,
        tool_use: None,
    };
    let mut attempt = 1;
    // Failures that count against `max_retries` (refused connections do not).
    let mut counted = 0;
    // Since when every attempt was refused at connect (the LLM is down).
    let mut unreachable_since: Option<tokio::time::Instant> = None;
    loop {
        let request = LlmRequest {
            role,
            session_id: &ctx.record.session_id,
            messages,
            prefill: (!turn.text.is_empty()).then(|| turn.text.clone()),
            tools: tools.as_ref(),
            max_tokens: MAX_TOKENS,
        };
        let mut usage = (0, 0);
        let timeout = ctx.config.step_timeout;
        let call = one_call(ctx, step, emit_tokens, &request, &mut turn, &mut usage);
        let result = tokio::select! {
            _ = ctx.stop.cancelled() => Err(CallError::Stopped),
            r = tokio::time::timeout(timeout, call) => r.unwrap_or(Err(CallError::Timeout(timeout))),
        };
        ctx.add_usage(step, usage.0, usage.1).await;
        let error = match result {
            Ok(()) => {
                ctx.metrics
                    .llm_ok
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                return Ok(turn);
            }
            Err(CallError::Stopped) => return Err(CallError::Stopped),
            Err(e) => e,
        };
        let retryable = match &error {
            CallError::Llm(e) => e.is_retryable(),
            CallError::Timeout(_) => true,
            CallError::Stopped | CallError::Unreachable(..) => false,
        };
        let refused = matches!(&error, CallError::Llm(e) if e.is_unreachable());
        let error = match error {
            CallError::Llm(e) if refused => {
                let since = *unreachable_since.get_or_insert_with(tokio::time::Instant::now);
                let wait = ctx.config.retry.outage_wait;
                if since.elapsed() >= wait {
                    CallError::Unreachable(wait, e)
                } else {
                    CallError::Llm(e)
                }
            }
            other => {
                unreachable_since = None;
                counted += 1;
                other
            }
        };
        let gave_up = matches!(error, CallError::Unreachable(..));
        if !retryable || gave_up || counted > ctx.config.retry.max_retries {
            ctx.metrics
                .llm_failed
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::warn!(step, attempt, error = %error, "LLM call failed for good");
            return Err(error);
        }
        ctx.metrics
            .llm_retried
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        attempt += 1;
        tracing::info!(step, attempt, error = %error, prefill_chars = turn.text.len(), "retrying LLM call");
        ctx.emit(
            "step",
            json!({"step": step, "state": "retrying", "attempt": attempt, "error": error.to_string()}),
        )
        .await;
        tokio::select! {
            _ = ctx.stop.cancelled() => return Err(CallError::Stopped),
            _ = tokio::time::sleep(backoff(&ctx.config.retry, attempt - 1)) => {}
        }
        if ctx.check_budget() {
            return Err(CallError::Stopped);
        }
    }
}

/// One HTTP call. Text is appended to `turn.text` (and emitted) as it arrives, so a cut
/// leaves exactly the prefill for the next attempt; `usage` survives the future being dropped.
async fn one_call(
    ctx: &SessionCtx,
    step: &str,
    emit_tokens: bool,
    request: &LlmRequest<'_>,
    turn: &mut Turn,
    usage: &mut (u64, u64),
) -> Result<(), CallError> {
    // Boxed: the request future (~1.3 KB: body, headers, connect) is dead once the response
    // starts, but inline it would size every step's future for the whole stream.
    let mut stream = Box::pin(ctx.llm.stream(request)).await?;
    loop {
        let event = match stream.next().await {
            Ok(Some(event)) => event,
            Ok(None) => return Ok(()),
            Err(e) => {
                usage.1 = usage.1.max(stream.text_tokens());
                return Err(e.into());
            }
        };
        match event {
            LlmEvent::Started { input_tokens } => usage.0 = input_tokens,
            LlmEvent::Text(text) => {
                if emit_tokens {
                    ctx.token(step, &text).await;
                }
                turn.text.push_str(&text);
                usage.1 = stream.text_tokens();
            }
            LlmEvent::ToolUse { id, name, input } => turn.tool_use = Some((id, name, input)),
            LlmEvent::Finished { output_tokens, .. } => usage.1 = output_tokens,
        }
    }
}
