//! The Anthropic Messages API wire format (`POST /v1/messages`): request parsing into a
//! [`Conversation`], the streaming event sequence and the non-streaming message body, and
//! errors in Anthropic's own shape.
//!
//! Only what the official SDKs read is produced; behaviour lives in `agent.rs` and timing in
//! `generate.rs`.

use axum::http::{HeaderMap, StatusCode};
use bytes::BytesMut;
use serde_json::{Value, json};

use super::agent::{Conversation, Stop, ToolCall};
use super::frame::Template;
use super::generate::Wire;
use super::server::{ApiError, ErrorKind, Parsed, header};
use super::text::text_of;

/// Read a Messages request.
pub fn parse(body: &Value, headers: &HeaderMap) -> Result<Parsed, ApiError> {
    let obj = body
        .as_object()
        .ok_or_else(|| ApiError::invalid("request body must be a JSON object"))?;
    let model = obj
        .get("model")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::invalid("model: field required"))?
        .to_owned();
    let mut messages: Vec<&Value> = obj
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| ApiError::invalid("messages: field required"))?
        .iter()
        .collect();
    let max_tokens = match obj.get("max_tokens") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| ApiError::invalid("max_tokens: must be a positive integer"))?,
        ),
    };
    let system = obj.get("system").map(text_of).unwrap_or_default();
    let mut conv = Conversation {
        model,
        max_tokens,
        input_bytes: system.len(),
        system,
        ..Conversation::default()
    };
    if let Some(last) = messages.last()
        && role_of(last) == "assistant"
    {
        let prefill = text_of(&last["content"]);
        conv.input_bytes += prefill.len();
        conv.prefill = Some(prefill);
        messages.pop();
    }
    for m in messages {
        let role = role_of(m);
        let content = &m["content"];
        let text = text_of(content);
        conv.input_bytes += text.len();
        let mut carries_result = false;
        for b in content.as_array().map(Vec::as_slice).unwrap_or_default() {
            match b["type"].as_str() {
                Some("tool_result") => carries_result = true,
                Some("tool_use") => conv.input_bytes += b["input"].to_string().len(),
                _ => {}
            }
        }
        conv.has_tool_result |= carries_result;
        if role == "user" && !text.is_empty() && !carries_result {
            conv.last_user_text = text;
        }
        conv.messages.push((role.to_owned(), content.to_string()));
    }
    conv.tools = obj
        .get("tools")
        .and_then(Value::as_array)
        .map(|tools| {
            tools
                .iter()
                .filter_map(|t| t["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let session = header(headers, "x-dropzero-session").or_else(|| {
        obj.get("metadata")
            .and_then(|m| m["user_id"].as_str())
            .map(str::to_owned)
    });
    Ok(Parsed {
        conv,
        stream: obj.get("stream").and_then(Value::as_bool).unwrap_or(false),
        session,
        include_usage: false,
    })
}

fn role_of(m: &Value) -> &str {
    m["role"].as_str().unwrap_or("")
}

/// `{"type":"error","error":{"type":..,"message":..}}` with Anthropic's error type names.
pub fn error_body(err: &ApiError) -> Value {
    let kind = match err.kind {
        ErrorKind::InvalidRequest => "invalid_request_error",
        ErrorKind::RateLimited => "rate_limit_error",
        ErrorKind::Overloaded => "overloaded_error",
        ErrorKind::Server => "api_error",
    };
    json!({"type": "error", "error": {"type": kind, "message": err.message}})
}

/// Anthropic's status for an error (529 for overloaded).
pub fn status(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::InvalidRequest => StatusCode::BAD_REQUEST,
        ErrorKind::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        ErrorKind::Overloaded => {
            StatusCode::from_u16(529).unwrap_or(StatusCode::SERVICE_UNAVAILABLE)
        }
        ErrorKind::Server => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn stop_reason(stop: Stop) -> &'static str {
    match stop {
        Stop::EndTurn => "end_turn",
        Stop::MaxTokens => "max_tokens",
        Stop::ToolUse => "tool_use",
    }
}

fn event(name: &str, data: &Value) -> Vec<u8> {
    format!("event: {name}\ndata: {data}\n\n").into_bytes()
}

/// The event for one delta of the content block at `index`; `delta(hole)` is its `delta`.
fn delta_template(index: usize, delta: impl FnOnce(&str) -> Value) -> Template {
    Template::new(|hole| {
        event(
            "content_block_delta",
            &json!({"type": "content_block_delta", "index": index, "delta": delta(hole)}),
        )
    })
}

/// The streaming event sequence.
#[derive(Debug)]
pub struct Stream {
    pub id: String,
    pub model: String,
    pub input_tokens: u64,
    /// Index of the content block currently open, and how many blocks were opened.
    open: Option<usize>,
    blocks: usize,
    /// Delta events of the open block, rendered once per block (see `frame`).
    text_delta: Option<Template>,
    json_delta: Option<Template>,
}

impl Stream {
    pub fn new(id: String, model: String, input_tokens: u64) -> Stream {
        Stream {
            id,
            model,
            input_tokens,
            open: None,
            blocks: 0,
            text_delta: None,
            json_delta: None,
        }
    }

    fn close(&mut self, out: &mut BytesMut) {
        if let Some(index) = self.open.take() {
            out.extend_from_slice(&event(
                "content_block_stop",
                &json!({"type": "content_block_stop", "index": index}),
            ));
        }
    }

    fn open_block(&mut self, block: Value, out: &mut BytesMut) {
        self.close(out);
        let index = self.blocks;
        self.blocks += 1;
        self.open = Some(index);
        self.text_delta = None;
        self.json_delta = None;
        out.extend_from_slice(&event(
            "content_block_start",
            &json!({"type": "content_block_start", "index": index, "content_block": block}),
        ));
    }

    fn index(&self) -> usize {
        self.open.unwrap_or(0)
    }
}

impl Wire for Stream {
    fn start(&mut self, out: &mut BytesMut) {
        let message = json!({
            "id": self.id, "type": "message", "role": "assistant", "model": self.model,
            "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": self.input_tokens, "output_tokens": 0},
        });
        out.extend_from_slice(&event(
            "message_start",
            &json!({"type": "message_start", "message": message}),
        ));
        out.extend_from_slice(&event("ping", &json!({"type": "ping"})));
    }

    fn text(&mut self, token: &str, out: &mut BytesMut) {
        if self.open.is_none() {
            self.open_block(json!({"type": "text", "text": ""}), out);
        }
        let index = self.index();
        self.text_delta
            .get_or_insert_with(|| {
                delta_template(index, |t| json!({"type": "text_delta", "text": t}))
            })
            .write(token, out);
    }

    fn tool_start(&mut self, call: &ToolCall, out: &mut BytesMut) {
        let block = json!({"type": "tool_use", "id": call.id, "name": call.name, "input": {}});
        self.open_block(block, out);
    }

    fn tool_json(&mut self, chunk: &str, out: &mut BytesMut) {
        let index = self.index();
        self.json_delta
            .get_or_insert_with(|| {
                delta_template(
                    index,
                    |c| json!({"type": "input_json_delta", "partial_json": c}),
                )
            })
            .write(chunk, out);
    }

    fn finish(&mut self, stop: Stop, output_tokens: u64, out: &mut BytesMut) {
        self.close(out);
        out.extend_from_slice(&event(
            "message_delta",
            &json!({"type": "message_delta",
                    "delta": {"stop_reason": stop_reason(stop), "stop_sequence": null},
                    "usage": {"output_tokens": output_tokens}}),
        ));
        out.extend_from_slice(&event("message_stop", &json!({"type": "message_stop"})));
    }

    fn stream_error(&mut self, out: &mut BytesMut) -> bool {
        let err = ApiError::new(ErrorKind::Overloaded, "Overloaded");
        out.extend_from_slice(&event("error", &error_body(&err)));
        true
    }
}

/// The non-streaming message body, built as tokens are generated.
#[derive(Debug)]
pub struct Whole {
    pub id: String,
    pub model: String,
    pub input_tokens: u64,
    text: String,
    tool: Option<ToolCall>,
}

impl Whole {
    pub fn new(id: String, model: String, input_tokens: u64) -> Whole {
        Whole {
            id,
            model,
            input_tokens,
            text: String::new(),
            tool: None,
        }
    }
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
        let mut content = Vec::new();
        if !self.text.is_empty() {
            content.push(json!({"type": "text", "text": self.text}));
        }
        if let Some(call) = &self.tool {
            content.push(
                json!({"type": "tool_use", "id": call.id, "name": call.name, "input": call.input}),
            );
        }
        let body = json!({
            "id": self.id, "type": "message", "role": "assistant", "model": self.model,
            "content": content, "stop_reason": stop_reason(stop), "stop_sequence": null,
            "usage": {"input_tokens": self.input_tokens, "output_tokens": output_tokens},
        });
        out.extend_from_slice(body.to_string().as_bytes());
    }

    fn stream_error(&mut self, _out: &mut BytesMut) -> bool {
        false
    }
}
