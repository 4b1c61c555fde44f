//! The OpenAI Chat Completions wire format (`POST /v1/chat/completions`): request parsing into
//! a [`Conversation`], `chat.completion.chunk` streams (with the final usage chunk when
//! `stream_options.include_usage`, then `data: [DONE]`), the non-streaming body, and errors in
//! OpenAI's own shape.
//!
//! Behaviour lives in `agent.rs` and timing in `generate.rs`.

use axum::http::{HeaderMap, StatusCode};
use bytes::BytesMut;
use serde_json::{Value, json};

use super::agent::{Conversation, Stop, ToolCall};
use super::frame::Template;
use super::generate::Wire;
use super::server::{ApiError, ErrorKind, Parsed, header};
use super::text::text_of;

/// Read a Chat Completions request.
pub fn parse(body: &Value, headers: &HeaderMap) -> Result<Parsed, ApiError> {
    let obj = body
        .as_object()
        .ok_or_else(|| ApiError::invalid("request body must be a JSON object"))?;
    let model = obj
        .get("model")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::invalid("model: field required"))?
        .to_owned();
    let all = obj
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| ApiError::invalid("messages: field required"))?;
    let max_tokens = match obj.get("max_completion_tokens").or(obj.get("max_tokens")) {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| ApiError::invalid("max_tokens: must be a positive integer"))?,
        ),
    };
    let mut conv = Conversation {
        model,
        max_tokens,
        ..Conversation::default()
    };
    let mut messages: Vec<&Value> = Vec::new();
    for m in all {
        let role = m["role"].as_str().unwrap_or("");
        if role == "system" || role == "developer" {
            conv.system.push_str(&text_of(&m["content"]));
        } else {
            messages.push(m);
        }
    }
    conv.input_bytes = conv.system.len();
    if let Some(last) = messages.last()
        && last["role"] == "assistant"
        && last.get("tool_calls").is_none()
    {
        let prefill = text_of(&last["content"]);
        conv.input_bytes += prefill.len();
        conv.prefill = Some(prefill);
        messages.pop();
    }
    for m in messages {
        let role = m["role"].as_str().unwrap_or("");
        let text = text_of(&m["content"]);
        conv.input_bytes += text.len();
        if let Some(calls) = m.get("tool_calls") {
            conv.input_bytes += calls.to_string().len();
        }
        if role == "tool" {
            conv.has_tool_result = true;
        } else if role == "user" && !text.is_empty() {
            conv.last_user_text = text;
        }
        conv.messages.push((role.to_owned(), m.to_string()));
    }
    conv.tools = obj
        .get("tools")
        .and_then(Value::as_array)
        .map(|tools| {
            tools
                .iter()
                .filter_map(|t| t["function"]["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let session = header(headers, "x-dropzero-session")
        .or_else(|| obj.get("user").and_then(Value::as_str).map(str::to_owned));
    Ok(Parsed {
        conv,
        stream: obj.get("stream").and_then(Value::as_bool).unwrap_or(false),
        session,
        include_usage: obj
            .get("stream_options")
            .and_then(|o| o["include_usage"].as_bool())
            .unwrap_or(false),
    })
}

/// `{"error":{"message","type","code"}}` with OpenAI's type names.
pub fn error_body(err: &ApiError) -> Value {
    let (kind, code) = match err.kind {
        ErrorKind::InvalidRequest => ("invalid_request_error", Value::Null),
        ErrorKind::RateLimited => ("rate_limit_exceeded", json!("rate_limit_exceeded")),
        ErrorKind::Overloaded => ("server_error", json!("overloaded")),
        ErrorKind::Server => ("server_error", Value::Null),
    };
    json!({"error": {"message": err.message, "type": kind, "param": null, "code": code}})
}

/// OpenAI's status for an error (503 for overloaded).
pub fn status(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::InvalidRequest => StatusCode::BAD_REQUEST,
        ErrorKind::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        ErrorKind::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Server => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn finish_reason(stop: Stop) -> &'static str {
    match stop {
        Stop::EndTurn => "stop",
        Stop::MaxTokens => "length",
        Stop::ToolUse => "tool_calls",
    }
}

fn usage(input: u64, output: u64) -> Value {
    json!({"prompt_tokens": input, "completion_tokens": output, "total_tokens": input + output})
}

/// The `chat.completion.chunk` stream.
#[derive(Debug)]
pub struct Stream {
    pub id: String,
    pub model: String,
    pub created: u64,
    pub input_tokens: u64,
    pub include_usage: bool,
    /// Text and tool-argument chunks, rendered once (see `frame`).
    text_delta: Template,
    json_delta: Template,
}

impl Stream {
    pub fn new(
        id: String,
        model: String,
        created: u64,
        input_tokens: u64,
        include_usage: bool,
    ) -> Stream {
        let mut s = Stream {
            id,
            model,
            created,
            input_tokens,
            include_usage,
            text_delta: Template::default(),
            json_delta: Template::default(),
        };
        s.text_delta = Template::new(|t| s.delta(json!({"content": t})));
        s.json_delta = Template::new(|c| {
            s.delta(json!({"tool_calls": [{"index": 0, "function": {"arguments": c}}]}))
        });
        s
    }

    fn chunk(&self, choices: Value, usage: Value) -> Vec<u8> {
        let mut c = json!({
            "id": self.id, "object": "chat.completion.chunk", "created": self.created,
            "model": self.model, "system_fingerprint": null, "choices": choices,
        });
        if self.include_usage {
            c["usage"] = usage;
        }
        format!("data: {c}\n\n").into_bytes()
    }

    fn delta(&self, delta: Value) -> Vec<u8> {
        self.chunk(
            json!([{"index": 0, "delta": delta, "logprobs": null, "finish_reason": null}]),
            Value::Null,
        )
    }
}

impl Wire for Stream {
    fn start(&mut self, out: &mut BytesMut) {
        out.extend_from_slice(&self.delta(json!({"role": "assistant", "content": ""})));
    }

    fn text(&mut self, token: &str, out: &mut BytesMut) {
        self.text_delta.write(token, out);
    }

    fn tool_start(&mut self, call: &ToolCall, out: &mut BytesMut) {
        out.extend_from_slice(&self.delta(
            json!({"tool_calls": [{"index": 0, "id": call.id, "type": "function",
            "function": {"name": call.name, "arguments": ""}}]}),
        ));
    }

    fn tool_json(&mut self, chunk: &str, out: &mut BytesMut) {
        self.json_delta.write(chunk, out);
    }

    fn finish(&mut self, stop: Stop, output_tokens: u64, out: &mut BytesMut) {
        out.extend_from_slice(&self.chunk(
            json!([{"index": 0, "delta": {}, "logprobs": null, "finish_reason": finish_reason(stop)}]),
            Value::Null,
        ));
        if self.include_usage {
            out.extend_from_slice(&self.chunk(json!([]), usage(self.input_tokens, output_tokens)));
        }
        out.extend_from_slice(b"data: [DONE]\n\n");
    }

    fn stream_error(&mut self, out: &mut BytesMut) -> bool {
        let err = ApiError::new(ErrorKind::Overloaded, "Overloaded");
        out.extend_from_slice(format!("data: {}\n\n", error_body(&err)).as_bytes());
        true
    }
}

/// The non-streaming `chat.completion` body.
#[derive(Debug)]
pub struct Whole {
    pub id: String,
    pub model: String,
    pub created: u64,
    pub input_tokens: u64,
    pub text: String,
    pub tool: Option<ToolCall>,
}

impl Wire for Whole {
    fn start(&mut self, _out: &mut BytesMut) {}

    fn text(&mut self, token: &str, _out: &mut BytesMut) {
        self.text.push_str(token);
    }

    fn tool_start(&mut self, call: &ToolCall, _out: &mut BytesMut) {
        self.tool = Some(call.clone());
    }

    fn tool_json(&mut self, _chunk: &str, _out: &mut BytesMut) {}

    fn finish(&mut self, stop: Stop, output_tokens: u64, out: &mut BytesMut) {
        let mut message = json!({"role": "assistant", "content": self.text, "refusal": null});
        if let Some(call) = &self.tool {
            message["tool_calls"] = json!([{"id": call.id, "type": "function",
                "function": {"name": call.name, "arguments": call.input.to_string()}}]);
        }
        let body = json!({
            "id": self.id, "object": "chat.completion", "created": self.created,
            "model": self.model, "system_fingerprint": null,
            "choices": [{"index": 0, "message": message, "logprobs": null,
                         "finish_reason": finish_reason(stop)}],
            "usage": usage(self.input_tokens, output_tokens),
        });
        out.extend_from_slice(body.to_string().as_bytes());
    }

    fn stream_error(&mut self, _out: &mut BytesMut) -> bool {
        false
    }
}
