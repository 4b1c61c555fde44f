//! A streaming client for the Anthropic Messages API (`POST {base}/v1/messages`,
//! `"stream": true`), reading the response with the workspace SSE parser. It turns the wire
//! events into [`LlmEvent`]s and classifies failures as retryable or not.
//!
//! The request goes out through the workspace's lean HTTP/1.1 client (`dropzero_wire`) when
//! the URL is plain `http://` (the mock LLM of a load test), else through reqwest (`https://`
//! to a provider, proxies, or `--llm-client reqwest`). hyper's client holds ~29 KB of heap per
//! open connection, more than everything else a session holds; the lean one reads the
//! response in the step's own task with one 2–16 KiB buffer (docs/benchmarks.md, "A lean LLM
//! client").
//!
//! Not for retries, budgets or prefill policy: the agent decides those (see `agent::worker`).

use std::{collections::VecDeque, pin::Pin, time::Duration};

use bytes::Bytes;
use dropzero_sse::{Item, Limits, Parser};
use futures::{Stream, StreamExt};
use serde_json::{Value, json};
use url::Url;

use crate::config::LlmClientKind;

/// How long a connection to the LLM may take to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How much of an error response's body is read (the first 500 characters are kept).
const ERROR_BODY_CAP: usize = 16 * 1024;

/// Why an LLM call failed.
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    #[error("LLM answered HTTP {status}: {body}")]
    Status { status: u16, body: String },
    /// The request did not get a response head: `unreachable` when no connection could be
    /// made at all (refused, no route, connect timeout).
    #[error("LLM connection failed: {message}")]
    Connect { message: String, unreachable: bool },
    #[error("LLM stream cut after {received_tokens} tokens: {reason}")]
    Cut {
        received_tokens: u64,
        reason: String,
    },
    #[error("LLM stream error event {kind}: {message}")]
    Api { kind: String, message: String },
    #[error("LLM sent something we cannot read: {0}")]
    Protocol(String),
}

impl LlmError {
    /// The request never reached the LLM: no connection could be made (refused, no route,
    /// connect timeout). An outage rather than a failure of this call.
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            LlmError::Connect {
                unreachable: true,
                ..
            }
        )
    }

    /// 429, 529, 5xx, connection errors, cut streams and overload events are worth retrying.
    pub fn is_retryable(&self) -> bool {
        match self {
            LlmError::Status { status, .. } => *status == 429 || *status >= 500,
            LlmError::Connect { .. } | LlmError::Cut { .. } => true,
            LlmError::Api { kind, .. } => {
                matches!(
                    kind.as_str(),
                    "overloaded_error" | "api_error" | "rate_limit_error"
                )
            }
            LlmError::Protocol(_) => false,
        }
    }
}

/// One request: the conversation so far and who is asking (for the mock's behaviour and ledger).
///
/// It borrows the conversation: a request lives as long as its response streams, and an owned
/// copy of the messages per call in flight was about 1 KB per step.
#[derive(Debug, Clone)]
pub struct LlmRequest<'a> {
    pub role: &'static str,
    pub session_id: &'a str,
    pub messages: &'a [Value],
    /// Text of this turn already received, sent as a trailing assistant message so the LLM
    /// continues it (after a cut, or a takeover mid-turn).
    pub prefill: Option<String>,
    pub tools: Option<&'a Value>,
    pub max_tokens: u64,
}

/// What the caller sees of a streaming response, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum LlmEvent {
    Started {
        input_tokens: u64,
    },
    Text(String),
    ToolUse {
        id: String,
        name: String,
        input: Value,
    },
    Finished {
        stop_reason: String,
        output_tokens: u64,
    },
}

/// A cheap-to-clone client (one connection pool per process).
#[derive(Debug, Clone)]
pub struct LlmClient {
    http: reqwest::Client,
    base: String,
    /// `{base}/v1/messages`, when the lean client reads it.
    lean: Option<Url>,
    model: String,
    /// `$ANTHROPIC_API_KEY` at start-up (on ECS: the task definition's `secrets`), sent as
    /// `x-api-key`; the mock LLM ignores it. Never printed.
    api_key: Option<ApiKey>,
}

/// An API key whose `Debug` never shows it (the client is logged in debug output).
#[derive(Clone)]
struct ApiKey(String);

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(redacted)")
    }
}

impl LlmClient {
    pub fn new(base: &str, model: &str, kind: LlmClientKind) -> LlmClient {
        let base = base.trim_end_matches('/').to_string();
        let lean = Url::parse(&format!("{base}/v1/messages"))
            .ok()
            .filter(|u| kind == LlmClientKind::Lean && dropzero_wire::usable(u));
        LlmClient {
            http: reqwest::Client::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .build()
                .unwrap_or_default(),
            base,
            lean,
            model: model.to_string(),
            api_key: std::env::var("ANTHROPIC_API_KEY")
                .ok()
                .filter(|k| !k.is_empty())
                .map(ApiKey),
        }
    }

    /// Send the request and return the response as a stream of events.
    pub async fn stream(&self, req: &LlmRequest<'_>) -> Result<LlmStream, LlmError> {
        let mut messages = req.messages.to_vec();
        if let Some(prefill) = &req.prefill {
            messages.push(json!({"role": "assistant", "content": prefill}));
        }
        let mut body = json!({
            "model": self.model,
            "max_tokens": req.max_tokens,
            "stream": true,
            "messages": messages,
            "metadata": {"user_id": req.session_id},
        });
        if let Some(tools) = req.tools {
            body["tools"] = tools.clone();
        }
        let body = serde_json::to_vec(&body).map_err(|e| LlmError::Protocol(e.to_string()))?;
        let mut headers = vec![
            ("content-type", "application/json"),
            ("anthropic-version", "2023-06-01"),
            ("x-dropzero-role", req.role),
            ("x-dropzero-session", req.session_id),
        ];
        if let Some(key) = &self.api_key {
            headers.push(("x-api-key", &key.0));
        }
        let (status, body) = match &self.lean {
            Some(url) => send_lean(url, &headers, &body).await?,
            None => self.send_reqwest(&headers, body).await?,
        };
        if !status.is_success() {
            let body = body.read_capped(ERROR_BODY_CAP).await;
            return Err(LlmError::Status {
                status: status.as_u16(),
                body: String::from_utf8_lossy(&body).chars().take(500).collect(),
            });
        }
        Ok(LlmStream {
            body,
            parser: Parser::new(Limits::default()),
            items: Vec::new(),
            queue: VecDeque::new(),
            tool: None,
            text_tokens: 0,
            finished: false,
        })
    }

    async fn send_reqwest(
        &self,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Result<(reqwest::StatusCode, Body), LlmError> {
        let mut request = self.http.post(format!("{}/v1/messages", self.base));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request
            .body(body)
            .send()
            .await
            .map_err(|e| LlmError::Connect {
                message: e.to_string(),
                unreachable: e.is_connect(),
            })?;
        let status = response.status();
        let stream = Box::pin(response.bytes_stream());
        Ok((status, Body::Reqwest(stream, Bytes::new())))
    }
}

/// `POST` through the lean client: a failed or timed-out connect is `unreachable`.
async fn send_lean(
    url: &Url,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<(reqwest::StatusCode, Body), LlmError> {
    let failed = |e: std::io::Error, unreachable| LlmError::Connect {
        message: e.to_string(),
        unreachable,
    };
    let sock = match tokio::time::timeout(CONNECT_TIMEOUT, dropzero_wire::connect(url)).await {
        Ok(Ok(sock)) => sock,
        Ok(Err(e)) => return Err(failed(e, true)),
        Err(_) => {
            let e = std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out");
            return Err(failed(e, true));
        }
    };
    let response = dropzero_wire::send(sock, "POST", url, headers, body)
        .await
        .map_err(|e| failed(e, false))?;
    Ok((response.status, Body::Wire(response.body)))
}

type BodyStream = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// A response body, from whichever client sent the request.
enum Body {
    Wire(dropzero_wire::Body),
    /// reqwest's stream, and the piece it gave last (so [`Body::next`] can lend it).
    Reqwest(BodyStream, Bytes),
    /// Read to its end after `message_stop`.
    Done,
}

impl Body {
    /// The next piece of the body, `None` at its clean end, or why it broke.
    async fn next(&mut self) -> Option<Result<&[u8], String>> {
        match self {
            Body::Wire(body) => Some(body.next().await?.map_err(|e| e.to_string())),
            Body::Reqwest(stream, piece) => Some(match stream.next().await? {
                Ok(next) => {
                    *piece = next;
                    Ok(&piece[..])
                }
                Err(e) => Err(e.to_string()),
            }),
            Body::Done => None,
        }
    }

    /// The rest of the body, at most `cap` bytes of it (an error ends it early).
    async fn read_capped(mut self, cap: usize) -> Vec<u8> {
        let mut out = Vec::new();
        while out.len() < cap {
            match self.next().await {
                Some(Ok(piece)) => out.extend_from_slice(piece),
                _ => break,
            }
        }
        out.truncate(cap);
        out
    }
}

/// A response being read. `next` yields events until `Finished`, then `None`.
pub struct LlmStream {
    body: Body,
    parser: Parser,
    items: Vec<Item>,
    queue: VecDeque<LlmEvent>,
    /// The tool_use block being assembled: id, name, partial JSON input.
    tool: Option<(String, String, String)>,
    text_tokens: u64,
    finished: bool,
}

impl LlmStream {
    pub async fn next(&mut self) -> Result<Option<LlmEvent>, LlmError> {
        loop {
            if let Some(event) = self.queue.pop_front() {
                return Ok(Some(event));
            }
            if self.finished {
                if let Body::Wire(body) = std::mem::replace(&mut self.body, Body::Done) {
                    body.finish(dropzero_wire::FINISH_WITHIN).await;
                }
                return Ok(None);
            }
            let cut = |reason: String, tokens| LlmError::Cut {
                received_tokens: tokens,
                reason,
            };
            match self.body.next().await {
                Some(Ok(piece)) => {
                    self.parser
                        .feed(piece, &mut self.items)
                        .map_err(|e| LlmError::Protocol(e.to_string()))?;
                    for item in std::mem::take(&mut self.items) {
                        if let Item::Event(ev) = item {
                            self.on_event(&ev.event, &ev.data)?;
                        }
                    }
                }
                Some(Err(e)) => return Err(cut(e, self.text_tokens)),
                None => {
                    return Err(cut(
                        "response ended before message_stop".into(),
                        self.text_tokens,
                    ));
                }
            }
        }
    }

    fn on_event(&mut self, kind: &str, data: &str) -> Result<(), LlmError> {
        if kind == "ping" {
            return Ok(());
        }
        let v: Value = serde_json::from_str(data)
            .map_err(|e| LlmError::Protocol(format!("{kind} data is not JSON: {e}")))?;
        match kind {
            "message_start" => {
                let input_tokens = v["message"]["usage"]["input_tokens"].as_u64().unwrap_or(0);
                self.queue.push_back(LlmEvent::Started { input_tokens });
            }
            "content_block_start" if v["content_block"]["type"] == "tool_use" => {
                let block = &v["content_block"];
                self.tool = Some((
                    block["id"].as_str().unwrap_or_default().to_string(),
                    block["name"].as_str().unwrap_or_default().to_string(),
                    String::new(),
                ));
            }
            "content_block_delta" => match v["delta"]["type"].as_str() {
                Some("text_delta") => {
                    let text = v["delta"]["text"].as_str().unwrap_or_default();
                    self.text_tokens += 1;
                    self.queue.push_back(LlmEvent::Text(text.to_string()));
                }
                Some("input_json_delta") => {
                    if let Some((_, _, json)) = &mut self.tool {
                        json.push_str(v["delta"]["partial_json"].as_str().unwrap_or_default());
                    }
                }
                _ => {}
            },
            "content_block_stop" => {
                if let Some((id, name, json)) = self.tool.take() {
                    let input = if json.trim().is_empty() {
                        json!({})
                    } else {
                        serde_json::from_str(&json)
                            .map_err(|e| LlmError::Protocol(format!("tool input: {e}")))?
                    };
                    self.queue.push_back(LlmEvent::ToolUse { id, name, input });
                }
            }
            "message_delta" => {
                let stop_reason = v["delta"]["stop_reason"].as_str().unwrap_or("end_turn");
                let output_tokens = v["usage"]["output_tokens"]
                    .as_u64()
                    .unwrap_or(self.text_tokens);
                self.queue.push_back(LlmEvent::Finished {
                    stop_reason: stop_reason.to_string(),
                    output_tokens,
                });
            }
            "message_stop" => self.finished = true,
            "error" => {
                return Err(LlmError::Api {
                    kind: v["error"]["type"].as_str().unwrap_or("error").to_string(),
                    message: v["error"]["message"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                });
            }
            _ => {}
        }
        Ok(())
    }

    /// Text tokens received so far (what a cut response is billed for, at least).
    pub fn text_tokens(&self) -> u64 {
        self.text_tokens
    }
}

#[cfg(test)]
mod api_key_tests {
    use super::ApiKey;

    #[test]
    fn an_api_key_never_shows_in_debug_output() {
        let shown = format!("{:?}", Some(ApiKey("sk-ant-secret".into())));
        assert!(!shown.contains("sk-ant"), "{shown}");
    }
}
