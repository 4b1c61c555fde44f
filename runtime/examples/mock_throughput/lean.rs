//! A minimal streaming client for the latency phase: one request through the workspace's lean
//! HTTP/1.1 client (`dropzero_wire`, which reads the body in this task), and
//! `content_block_delta` events found by their first line. Each token is timestamped when the
//! read that completed it returns.
//!
//! Why not reqwest and the SSE parser: with them the example's one client thread was 74–83%
//! busy at 256 streams (docs/benchmarks.md), so tokens arriving together queued behind each
//! other's parsing and that queueing was measured as the mock's added latency. This reader
//! does a few comparisons per event and is spread over several threads.

use std::net::SocketAddr;
use std::time::Instant;

use anyhow::{Context, bail};

const DELTA: &[u8] = b"event: content_block_delta\n";

/// Stream one Anthropic response of `tokens` tokens; call `on_token` at each text delta.
pub async fn stream(
    addr: SocketAddr,
    tokens: u32,
    mut on_token: impl FnMut(Instant),
) -> anyhow::Result<()> {
    let body = super::request_body(tokens).to_string();
    let url = format!("http://{addr}/v1/messages")
        .parse()
        .context("url")?;
    let headers = [("content-type", "application/json")];
    let mut resp = dropzero_wire::request("POST", &url, &headers, body.as_bytes()).await?;
    if resp.status != 200 {
        bail!("unexpected response: {}", resp.status);
    }
    // The body as `dropzero_wire` de-frames it, read in this task: whole events only (an
    // event ends with a blank line), a token recognised by its first line.
    let mut events = Vec::new();
    while let Some(piece) = resp.body.next().await {
        let now = Instant::now();
        events.extend_from_slice(piece?);
        let mut start = 0;
        while let Some(end) = find(&events[start..], b"\n\n") {
            if events[start..].starts_with(DELTA) {
                on_token(now);
            }
            start += end + 2;
        }
        events.drain(..start);
    }
    Ok(())
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
