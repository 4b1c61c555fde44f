//! A small Anthropic-format LLM stub following docs/protocol.md §4 (planner JSON, worker
//! text of `[dz tokens=K]` words, tool_use, runaway, prefill), with two one-shot faults.
//! Stands in for the real mock LLM until it lands on `main`.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{
    Json, Router,
    body::Body,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::post,
};
use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

#[derive(Debug, Default)]
pub struct Stub {
    /// Gap between tokens.
    pub gap: Duration,
    /// Cut the next worker text response after this many tokens (0 = off; one shot).
    pub cut_after: AtomicUsize,
    /// Answer the next worker request with this status (0 = off; one shot).
    pub status_once: AtomicU64,
    pub requests: AtomicU64,
    pub output_tokens: AtomicU64,
}

pub async fn start(stub: Stub) -> (String, Arc<Stub>) {
    let stub = Arc::new(stub);
    let app = Router::new()
        .route("/v1/messages", post(messages))
        .with_state(stub.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("stub LLM setup");
    let addr = listener.local_addr().expect("stub LLM setup");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), stub)
}

fn directive(text: &str, name: &str) -> Option<String> {
    let start = text.find(&format!("[dz {name}"))?;
    let rest = &text[start + name.len() + 4..];
    let end = rest.find(']')?;
    Some(rest[..end].trim_start_matches('=').to_string())
}

fn text_of(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(blocks) => blocks
            .iter()
            .filter_map(|b| b["text"].as_str())
            .collect::<Vec<_>>()
            .join(""),
        _ => String::new(),
    }
}

/// The deterministic words of a response to `task`.
pub fn words(task: &str, n: usize) -> Vec<String> {
    let h = task
        .bytes()
        .fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(b as u64))
        % 997;
    (0..n).map(|i| format!(" w{h}x{i}")).collect()
}

async fn messages(
    State(stub): State<Arc<Stub>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    stub.requests.fetch_add(1, Ordering::Relaxed);
    let role = headers
        .get("x-dropzero-role")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let msgs = body["messages"].as_array().cloned().unwrap_or_default();
    let first = msgs
        .first()
        .map(|m| text_of(&m["content"]))
        .unwrap_or_default();
    let prefill = msgs
        .last()
        .filter(|m| m["role"] == "assistant" && m["content"].is_string())
        .map(|m| text_of(&m["content"]))
        .unwrap_or_default();
    let has_tool_result = msgs.iter().any(|m| {
        m["content"]
            .as_array()
            .is_some_and(|bs| bs.iter().any(|b| b["type"] == "tool_result"))
    });
    if role == "planner" {
        let steps: usize = directive(&first, "steps")
            .and_then(|s| s.parse().ok())
            .unwrap_or(3);
        let tokens: usize = directive(&first, "tokens")
            .and_then(|s| s.parse().ok())
            .unwrap_or(12);
        let tool = directive(&first, "tool");
        let runaway = first.contains("[dz runaway]");
        let plan: Vec<Value> = (1..=steps)
            .map(|i| {
                let topic: String = first.split('[').next().unwrap_or("").trim().to_string();
                let mut task = format!("step {i} of {topic} [dz tokens={}]", tokens / steps);
                if runaway {
                    task.push_str(" [dz runaway]");
                }
                json!({
                    "id": format!("s{i}"),
                    "task": task,
                    "depends_on": if i == 1 { vec![] } else { vec!["s1".to_string()] },
                    "tool": if i == 1 { tool.clone() } else { None },
                })
            })
            .collect();
        let text = json!({"steps": plan}).to_string();
        return sse(stub, vec![text], None, None, 0);
    }
    if stub.status_once.swap(0, Ordering::SeqCst) != 0 {
        return (StatusCode::from_u16(529).expect("stub LLM setup"), Json(json!({"type":"error","error":{"type":"overloaded_error","message":"stub overloaded"}}))).into_response();
    }
    let offers_tools = body["tools"].is_array();
    if first.contains("[dz runaway]") {
        let tool = json!({"id": format!("tu_{}", msgs.len()), "name": "search", "input": {"query": "more"}});
        return sse(stub, vec![" thinking".into()], Some(tool), None, 0);
    }
    if offers_tools && !has_tool_result {
        let name = body["tools"][0]["name"]
            .as_str()
            .unwrap_or("search")
            .to_string();
        let tool = json!({"id": "tu_1", "name": name, "input": {"query": first}});
        return sse(stub, vec![], Some(tool), None, 0);
    }
    let n: usize = directive(&first, "tokens")
        .and_then(|s| s.parse().ok())
        .unwrap_or(8);
    let all = words(&first, n);
    let mut skip = 0;
    let mut acc = String::new();
    while skip < all.len() && acc.len() < prefill.len() {
        acc.push_str(&all[skip]);
        skip += 1;
    }
    assert_eq!(
        acc, prefill,
        "prefill must be a prefix of the deterministic text"
    );
    let cut = stub.cut_after.swap(0, Ordering::SeqCst);
    sse(
        stub,
        all[skip..].to_vec(),
        None,
        (cut > 0).then_some(cut),
        n,
    )
}

fn sse(
    stub: Arc<Stub>,
    texts: Vec<String>,
    tool: Option<Value>,
    cut: Option<usize>,
    _n: usize,
) -> Response {
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::convert::Infallible>>(16);
    tokio::spawn(async move {
        let send = |event: &str, data: Value| {
            let tx = tx.clone();
            let frame = format!("event: {event}\ndata: {data}\n\n");
            async move { tx.send(Ok(Bytes::from(frame))).await.is_ok() }
        };
        send("message_start", json!({"type":"message_start","message":{"usage":{"input_tokens":10,"output_tokens":0}}})).await;
        send("content_block_start", json!({"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}})).await;
        let mut out = 0u64;
        for (i, text) in texts.iter().enumerate() {
            if cut == Some(i) {
                stub.output_tokens.fetch_add(out, Ordering::Relaxed);
                return; // the body ends without message_stop
            }
            if !stub.gap.is_zero() {
                tokio::time::sleep(stub.gap).await;
            }
            if !send("content_block_delta", json!({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":text}})).await {
                return;
            }
            out += 1;
        }
        send(
            "content_block_stop",
            json!({"type":"content_block_stop","index":0}),
        )
        .await;
        let stop = if let Some(tool) = &tool {
            send("content_block_start", json!({"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":tool["id"],"name":tool["name"],"input":{}}})).await;
            send("content_block_delta", json!({"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":tool["input"].to_string()}})).await;
            send(
                "content_block_stop",
                json!({"type":"content_block_stop","index":1}),
            )
            .await;
            out += 1;
            "tool_use"
        } else {
            "end_turn"
        };
        stub.output_tokens.fetch_add(out, Ordering::Relaxed);
        send("message_delta", json!({"type":"message_delta","delta":{"stop_reason":stop},"usage":{"output_tokens":out}})).await;
        send("message_stop", json!({"type":"message_stop"})).await;
    });
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from_stream(ReceiverStream::new(rx)))
        .expect("stub LLM setup")
}
