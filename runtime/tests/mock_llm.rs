//! End-to-end tests of the mock LLM over real HTTP on 127.0.0.1 (port 0): determinism,
//! prefill, agent roles, faults, the ledger, both wire formats, shutdown, and the latency
//! sampler. Each test starts its own mock in-process.

use std::time::Duration;

use dropzero_runtime::mock::{self, LatencySpec, MockConfig, Profile, Sampler};
use dropzero_sse::{Event, Item, Limits, Parser};
use futures::StreamExt;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// A mock served in-process for the duration of one test.
struct Mock {
    base: String,
    http: reqwest::Client,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Mock {
    async fn start(config: MockConfig) -> Mock {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(mock::serve(listener, config, shutdown.clone()));
        Mock {
            base,
            http: reqwest::Client::new(),
            shutdown,
            task,
        }
    }

    async fn fast() -> Mock {
        Mock::start(MockConfig {
            seed: 1,
            ..MockConfig::default()
        })
        .await
    }

    async fn post(&self, path: &str, headers: &[(&str, &str)], body: &Value) -> reqwest::Response {
        let mut req = self.http.post(format!("{}{path}", self.base)).json(body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send().await.expect("request")
    }

    async fn get(&self, path: &str) -> Value {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("get");
        resp.json().await.expect("json")
    }

    /// Wait until no generator is running (the signal that billing is final).
    async fn idle(&self) {
        for _ in 0..1000 {
            if self.get("/healthz").await["open_streams"] == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("generators still running");
    }

    async fn stop(self) {
        self.shutdown.cancel();
        let done = tokio::time::timeout(Duration::from_secs(5), self.task).await;
        assert!(
            matches!(done, Ok(Ok(Ok(())))),
            "serve did not stop cleanly: {done:?}"
        );
    }
}

fn anthropic(messages: Value, stream: bool) -> Value {
    json!({"model": "claude-test", "max_tokens": 4096, "stream": stream, "messages": messages})
}

fn user(text: &str) -> Value {
    json!([{"role": "user", "content": text}])
}

/// Read an SSE body to its end; `false` in the second field when the connection broke.
async fn sse(resp: reqwest::Response) -> (Vec<Event>, bool) {
    let mut parser = Parser::new(Limits::default());
    let mut body = resp.bytes_stream();
    let (mut events, mut items) = (Vec::new(), Vec::new());
    let mut clean = true;
    while let Some(chunk) = body.next().await {
        match chunk {
            Ok(bytes) => parser.feed(&bytes, &mut items).expect("valid SSE"),
            Err(_) => {
                clean = false;
                break;
            }
        }
        for item in items.drain(..) {
            if let Item::Event(e) = item {
                events.push(e);
            }
        }
    }
    (events, clean)
}

fn data(e: &Event) -> Value {
    serde_json::from_str(&e.data).expect("event data is JSON")
}

/// Text deltas of an Anthropic stream.
fn text_deltas(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e.event == "content_block_delta")
        .map(data)
        .filter(|d| d["delta"]["type"] == "text_delta")
        .map(|d| d["delta"]["text"].as_str().unwrap_or_default().to_owned())
        .collect()
}

async fn whole_text(m: &Mock, headers: &[(&str, &str)], body: &Value) -> (String, Value) {
    let resp = m.post("/v1/messages", headers, body).await;
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.expect("json");
    let text = v["content"]
        .as_array()
        .map(|c| {
            c.iter()
                .filter_map(|b| b["text"].as_str())
                .collect::<String>()
        })
        .unwrap_or_default();
    (text, v)
}

#[tokio::test]
async fn same_request_and_seed_give_the_same_text() {
    let (a, b) = (Mock::fast().await, Mock::fast().await);
    let c = Mock::start(MockConfig {
        seed: 2,
        ..MockConfig::default()
    })
    .await;
    let body = anthropic(user("tell me [dz tokens=30]"), false);
    let (t1, v) = whole_text(&a, &[], &body).await;
    let (t2, _) = whole_text(&b, &[], &body).await;
    let (t3, _) = whole_text(&c, &[], &body).await;
    assert_eq!(t1, t2);
    assert_ne!(t1, t3);
    assert_eq!(t1.split_whitespace().count(), 30);
    assert_eq!(v["usage"]["output_tokens"], 30);
    assert_eq!(v["stop_reason"], "end_turn");
    // Streaming gives the same tokens, in the full Anthropic event sequence.
    let streamed = anthropic(user("tell me [dz tokens=30]"), true);
    let (events, clean) = sse(a.post("/v1/messages", &[], &streamed).await).await;
    assert!(clean);
    assert_eq!(text_deltas(&events).concat(), t1);
    let names: Vec<&str> = events.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(
        &names[..3],
        ["message_start", "ping", "content_block_start"]
    );
    assert_eq!(
        &names[names.len() - 3..],
        ["content_block_stop", "message_delta", "message_stop"]
    );
    let start = data(&events[0]);
    assert!(start["message"]["usage"]["input_tokens"].as_u64() > Some(0));
    assert_eq!(
        data(&events[events.len() - 2])["usage"]["output_tokens"],
        30
    );
    for m in [a, b, c] {
        m.stop().await;
    }
}

#[tokio::test]
async fn prefill_continues_and_bills_only_the_continuation() {
    let m = Mock::fast().await;
    let (full, _) = whole_text(&m, &[], &anthropic(user("go [dz tokens=20]"), false)).await;
    // The first 8 tokens (each is " word").
    let cut = full
        .match_indices(' ')
        .nth(8)
        .map_or(full.len(), |(i, _)| i);
    let prefill = full[..cut].to_owned();
    let mut messages = user("go [dz tokens=20]");
    if let Some(a) = messages.as_array_mut() {
        a.push(json!({"role": "assistant", "content": prefill}));
    }
    let headers = [("x-dropzero-session", "p")];
    let (events, clean) = sse(m
        .post("/v1/messages", &headers, &anthropic(messages, true))
        .await)
    .await;
    assert!(clean);
    let rest = text_deltas(&events).concat();
    assert_eq!(format!("{prefill}{rest}"), full);
    m.idle().await;
    let ledger = m.get("/mock/ledger").await;
    assert_eq!(ledger["sessions"]["p"]["output_tokens"], 12);
    m.stop().await;
}

#[tokio::test]
async fn planner_returns_a_dag_that_splits_the_tokens() {
    let m = Mock::fast().await;
    let query = "incident [dz tokens=100] [dz steps=3] [dz tool=search] [dz runaway]";
    let body = anthropic(user(query), true);
    let (events, _) = sse(m
        .post("/v1/messages", &[("x-dropzero-role", "planner")], &body)
        .await)
    .await;
    let plan: Value = serde_json::from_str(&text_deltas(&events).concat()).expect("plan JSON");
    let steps = plan["steps"].as_array().expect("steps");
    assert_eq!(steps.len(), 3);
    let mut total = 0;
    for (i, step) in steps.iter().enumerate() {
        assert_eq!(step["id"], format!("s{}", i + 1));
        for dep in step["depends_on"].as_array().expect("deps") {
            let n: usize = dep.as_str().and_then(|d| d[1..].parse().ok()).expect("sN");
            assert!(n <= i, "step {i} depends on a later step");
        }
        let task = step["task"].as_str().expect("task");
        assert!(task.contains("[dz runaway]"));
        let k = task
            .split("[dz tokens=")
            .nth(1)
            .and_then(|t| t.split(']').next());
        total += k
            .and_then(|k| k.parse::<u64>().ok())
            .expect("tokens directive");
    }
    assert_eq!(total, 100);
    assert_eq!(steps.iter().filter(|s| s["tool"] == "search").count(), 1);
    m.stop().await;
}

fn worker_body(task: &str, tool_result: bool) -> Value {
    let mut messages = vec![json!({"role": "user", "content": task})];
    if tool_result {
        messages.push(json!({"role": "assistant", "content": [
            {"type": "tool_use", "id": "toolu_1", "name": "search", "input": {"query": "q"}}]}));
        messages.push(json!({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "found it"}]}));
    }
    json!({"model": "claude-test", "max_tokens": 1000, "messages": messages,
           "tools": [{"name": "search", "description": "d", "input_schema": {"type": "object"}}]})
}

#[tokio::test]
async fn worker_calls_its_tool_then_answers() {
    let m = Mock::fast().await;
    let worker = [("x-dropzero-role", "worker")];
    let task = "look it up [dz tokens=7] [dz tool=search]";
    let (_, first) = whole_text(&m, &worker, &worker_body(task, false)).await;
    assert_eq!(first["stop_reason"], "tool_use");
    assert_eq!(first["content"][0]["type"], "tool_use");
    assert_eq!(first["content"][0]["name"], "search");
    assert!(first["content"][0]["input"]["query"].is_string());
    let (text, second) = whole_text(&m, &worker, &worker_body(task, true)).await;
    assert_eq!(second["stop_reason"], "end_turn");
    assert_eq!(text.split_whitespace().count(), 7);
    m.stop().await;
}

#[tokio::test]
async fn runaway_worker_keeps_calling_tools() {
    let m = Mock::fast().await;
    let worker = [("x-dropzero-role", "worker")];
    let mut body = worker_body("spin [dz tokens=7] [dz runaway]", true);
    body["stream"] = json!(true);
    for round in 0..3 {
        let (events, clean) = sse(m.post("/v1/messages", &worker, &body).await).await;
        assert!(clean);
        assert!(
            !text_deltas(&events).is_empty(),
            "runaway calls bill some text"
        );
        let json: String = events
            .iter()
            .filter(|e| e.event == "content_block_delta")
            .map(data)
            .filter(|d| d["delta"]["type"] == "input_json_delta")
            .map(|d| {
                d["delta"]["partial_json"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect();
        let input: Value = serde_json::from_str(&json).expect("tool input JSON");
        assert!(input["query"].is_string());
        let delta = events.iter().find(|e| e.event == "message_delta").map(data);
        assert_eq!(
            delta.expect("message_delta")["delta"]["stop_reason"],
            "tool_use"
        );
        // The next turn carries one more tool round trip, and still gets a tool call.
        let id = format!("toolu_r{round}");
        if let Some(msgs) = body["messages"].as_array_mut() {
            msgs.push(json!({"role": "assistant", "content": [
                {"type": "tool_use", "id": id, "name": "search", "input": input}]}));
            msgs.push(json!({"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": id, "content": "more"}]}));
        }
    }
    m.stop().await;
}

#[tokio::test]
async fn max_tokens_caps_the_output() {
    let m = Mock::fast().await;
    let mut body = anthropic(user("long [dz tokens=50]"), false);
    body["max_tokens"] = json!(10);
    let (text, v) = whole_text(&m, &[], &body).await;
    assert_eq!(text.split_whitespace().count(), 10);
    assert_eq!(v["stop_reason"], "max_tokens");
    m.stop().await;
}

#[tokio::test]
async fn rate_limit_window_refuses_every_request_until_it_ends() {
    let m = Mock::fast().await;
    let set = m
        .post(
            "/mock/faults",
            &[],
            &json!({"rate_limit": 1.0, "duration_ms": 300}),
        )
        .await;
    assert_eq!(set.status(), 200);
    let body = anthropic(user("hi [dz tokens=3]"), true);
    let session = [("x-dropzero-session", "r")];
    for _ in 0..5 {
        let resp = m.post("/v1/messages", &session, &body).await;
        assert_eq!(resp.status(), 429);
        assert!(resp.headers().contains_key("retry-after"));
        let err: Value = resp.json().await.expect("json");
        assert_eq!(err["type"], "error");
        assert_eq!(err["error"]["type"], "rate_limit_error");
    }
    // Wait out the window by the time the mock says is left.
    let left = m.get("/mock/faults").await["remaining_ms"]
        .as_u64()
        .expect("window active");
    tokio::time::sleep(Duration::from_millis(left + 20)).await;
    assert!(m.get("/mock/faults").await["active"].is_null());
    for _ in 0..5 {
        let resp = m.post("/v1/messages", &session, &body).await;
        assert_eq!(resp.status(), 200);
    }
    let row = m.get("/mock/ledger").await["sessions"]["r"].clone();
    assert_eq!(
        (row["requests"].as_u64(), row["errors"].as_u64()),
        (Some(10), Some(5))
    );
    m.stop().await;
}

#[tokio::test]
async fn overloaded_and_server_errors_use_anthropic_and_openai_shapes() {
    let m = Mock::fast().await;
    m.post("/mock/faults", &[], &json!({"overloaded": 1.0}))
        .await;
    let resp = m
        .post("/v1/messages", &[], &anthropic(user("x"), true))
        .await;
    assert_eq!(resp.status().as_u16(), 529);
    let v: Value = resp.json().await.expect("json");
    assert_eq!(v["error"]["type"], "overloaded_error");
    m.post("/mock/faults", &[], &json!({"server_error": 1.0}))
        .await;
    let openai = json!({"model": "g", "messages": user("x")});
    let resp = m.post("/v1/chat/completions", &[], &openai).await;
    assert_eq!(resp.status(), 500);
    let v: Value = resp.json().await.expect("json");
    assert!(v["error"]["message"].is_string() && v["error"]["type"].is_string());
    let cleared = m
        .http
        .delete(format!("{}/mock/faults", m.base))
        .send()
        .await
        .expect("delete");
    assert_eq!(cleared.status(), 200);
    let resp = m
        .post("/v1/messages", &[], &anthropic(user("x"), false))
        .await;
    assert_eq!(resp.status(), 200);
    m.stop().await;
}

#[tokio::test]
async fn bad_fault_specs_and_bad_requests_are_json_400s() {
    let m = Mock::fast().await;
    for spec in [
        json!({"rate_limt": 0.2}),
        json!({"rate_limit": 3.0}),
        json!([1]),
    ] {
        let resp = m.post("/mock/faults", &[], &spec).await;
        assert_eq!(resp.status(), 400, "{spec}");
        let v: Value = resp.json().await.expect("json");
        assert!(v["error"]["message"].is_string());
    }
    let resp = m.post("/v1/messages", &[], &json!({"messages": []})).await;
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.expect("json");
    assert_eq!(v["error"]["type"], "invalid_request_error");
    m.stop().await;
}

#[tokio::test]
async fn cut_ends_the_stream_without_message_stop_and_bills_what_was_generated() {
    let m = Mock::fast().await;
    m.post("/mock/faults", &[], &json!({"cut_after_tokens": 5}))
        .await;
    let body = anthropic(user("x [dz tokens=20]"), true);
    let headers = [("x-dropzero-session", "c")];
    let (events, clean) = sse(m.post("/v1/messages", &headers, &body).await).await;
    assert!(!clean, "a cut is an abrupt close, not a clean end");
    assert_eq!(text_deltas(&events).len(), 5);
    assert!(events.iter().all(|e| e.event != "message_stop"));
    m.idle().await;
    let row = m.get("/mock/ledger").await["sessions"]["c"].clone();
    assert_eq!(row["output_tokens"], 5);
    assert_eq!(row["cut_responses"], 1);
    m.stop().await;
}

/// At zero latency tokens leave in batches (one write for many events); a cut must still
/// deliver every token before it, and bill exactly those.
#[tokio::test]
async fn cut_at_zero_latency_delivers_and_bills_every_token_before_it() {
    let m = Mock::start(MockConfig {
        seed: 1,
        profile: Profile::zero_latency(),
    })
    .await;
    m.post("/mock/faults", &[], &json!({"cut_after_tokens": 1500}))
        .await;
    let body = anthropic(user("x [dz tokens=2000]"), true);
    let headers = [("x-dropzero-session", "z")];
    let (events, clean) = sse(m.post("/v1/messages", &headers, &body).await).await;
    assert!(!clean, "a cut is an abrupt close, not a clean end");
    assert_eq!(text_deltas(&events).len(), 1500);
    m.idle().await;
    let row = m.get("/mock/ledger").await["sessions"]["z"].clone();
    assert_eq!(row["output_tokens"], 1500);
    assert_eq!(row["cut_responses"], 1);
    m.stop().await;
}

#[tokio::test]
async fn in_stream_error_event_is_sent_as_overloaded_error() {
    let m = Mock::fast().await;
    m.post(
        "/mock/faults",
        &[],
        &json!({"stream_error_after_tokens": 2}),
    )
    .await;
    let body = anthropic(user("x [dz tokens=9]"), true);
    let (events, _) = sse(m.post("/v1/messages", &[], &body).await).await;
    assert_eq!(text_deltas(&events).len(), 2);
    let last = events.last().expect("events");
    assert_eq!(last.event, "error");
    assert_eq!(data(last)["error"]["type"], "overloaded_error");
    m.stop().await;
}

#[tokio::test]
async fn a_client_that_leaves_is_billed_only_for_what_was_generated() {
    let profile = Profile {
        itl: LatencySpec {
            median: Duration::from_millis(2),
            p99: Duration::from_millis(4),
        },
        ..Profile::fast()
    };
    let m = Mock::start(MockConfig { seed: 1, profile }).await;
    let body = anthropic(user("x [dz tokens=5000]"), true);
    let resp = m
        .post("/v1/messages", &[("x-dropzero-session", "gone")], &body)
        .await;
    let mut parser = Parser::new(Limits::default());
    let mut stream = resp.bytes_stream();
    let (mut items, mut deltas) = (Vec::new(), 0);
    while deltas < 10 {
        let chunk = stream.next().await.expect("more").expect("bytes");
        parser.feed(&chunk, &mut items).expect("sse");
        deltas += items
            .drain(..)
            .filter(|i| matches!(i, Item::Event(e) if e.event == "content_block_delta"))
            .count();
    }
    drop(stream);
    m.idle().await;
    let ledger = m.get("/mock/ledger").await;
    let billed = ledger["sessions"]["gone"]["output_tokens"]
        .as_u64()
        .expect("row");
    assert!(
        (10..100).contains(&billed),
        "billed {billed} of 5000 after reading 10"
    );
    m.stop().await;
}

#[tokio::test]
async fn openai_stream_has_role_content_finish_usage_and_done() {
    let m = Mock::fast().await;
    let body = json!({"model": "gpt-test", "stream": true, "stream_options": {"include_usage": true},
                      "messages": [{"role": "system", "content": "be brief"},
                                   {"role": "user", "content": "hi [dz tokens=12]"}]});
    let headers = [("x-dropzero-session", "o")];
    let (events, clean) = sse(m.post("/v1/chat/completions", &headers, &body).await).await;
    assert!(clean);
    assert_eq!(events.last().map(|e| e.data.as_str()), Some("[DONE]"));
    let chunks: Vec<Value> = events[..events.len() - 1].iter().map(data).collect();
    assert!(
        chunks
            .iter()
            .all(|c| c["object"] == "chat.completion.chunk")
    );
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text.split_whitespace().count(), 12);
    let finish = &chunks[chunks.len() - 2];
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    let usage = &chunks[chunks.len() - 1];
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["completion_tokens"], 12);
    assert!(usage["usage"]["prompt_tokens"].as_u64() > Some(0));
    // Non-streaming: the same text, whole.
    let mut whole = body.clone();
    whole["stream"] = json!(false);
    let v: Value = m
        .post("/v1/chat/completions", &[], &whole)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(v["choices"][0]["message"]["content"], text);
    assert_eq!(v["usage"]["completion_tokens"], 12);
    m.idle().await;
    assert_eq!(
        m.get("/mock/ledger").await["sessions"]["o"]["output_tokens"],
        12
    );
    m.stop().await;
}

#[tokio::test]
async fn shutdown_ends_open_streams() {
    let m = Mock::fast().await;
    let body = anthropic(user("x [dz tokens=100000]"), true);
    let resp = m.post("/v1/messages", &[], &body).await;
    let reader = tokio::spawn(sse(resp));
    m.stop().await;
    let ended = tokio::time::timeout(Duration::from_secs(5), reader).await;
    let (_, clean) = ended.expect("stream ended").expect("join");
    assert!(!clean, "a stream cut by shutdown is not a clean end");
}

#[test]
fn sampled_gaps_have_the_configured_median_and_p99() {
    use rand::SeedableRng;
    let spec = LatencySpec {
        median: Duration::from_millis(700),
        p99: Duration::from_secs(3),
    };
    let sampler = Sampler::new(spec);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    let mut v: Vec<Duration> = (0..50_000).map(|_| sampler.sample(&mut rng)).collect();
    v.sort();
    let median = v[v.len() / 2].as_secs_f64();
    let p99 = v[v.len() * 99 / 100].as_secs_f64();
    assert!((0.63..0.77).contains(&median), "median {median}");
    assert!((2.5..3.6).contains(&p99), "p99 {p99}");
    assert_eq!(mock::load_multiplier(30, 20, 1.0), 1.5);
}

#[tokio::test]
async fn openai_worker_gets_tool_calls_then_text() {
    let m = Mock::fast().await;
    let worker = [("x-dropzero-role", "worker")];
    let tools = json!([{"type": "function", "function": {"name": "search", "parameters": {}}}]);
    let task = "look [dz tokens=4] [dz tool=search]";
    let mut body = json!({"model": "g", "tools": tools, "messages": user(task)});
    let v: Value = m
        .post("/v1/chat/completions", &worker, &body)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
    let call = &v["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["function"]["name"], "search");
    let args = call["function"]["arguments"].as_str().expect("arguments");
    assert!(serde_json::from_str::<Value>(args).is_ok());
    if let Some(msgs) = body["messages"].as_array_mut() {
        msgs.push(json!({"role": "assistant", "content": null, "tool_calls": [call]}));
        msgs.push(json!({"role": "tool", "tool_call_id": call["id"], "content": "found"}));
    }
    body["stream"] = json!(true);
    let (events, clean) = sse(m.post("/v1/chat/completions", &worker, &body).await).await;
    assert!(clean);
    let chunks: Vec<Value> = events[..events.len() - 1].iter().map(data).collect();
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text.split_whitespace().count(), 4);
    assert_eq!(
        chunks[chunks.len() - 1]["choices"][0]["finish_reason"],
        "stop"
    );
    m.stop().await;
}
