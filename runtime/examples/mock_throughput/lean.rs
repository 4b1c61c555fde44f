//! A minimal streaming client for the latency phase: one HTTP/1.1 request on a raw TCP
//! connection, the chunked body de-framed by hand, and `content_block_delta` events found by
//! their first line. Each token is timestamped when the read that completed it returns.
//!
//! Why not reqwest and the SSE parser: with them the example's one client thread was 74–83%
//! busy at 256 streams (docs/benchmarks.md), so tokens arriving together queued behind each
//! other's parsing and that queueing was measured as the mock's added latency. This reader
//! does a few comparisons per event and is spread over several threads.

use std::net::SocketAddr;
use std::time::Instant;

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const DELTA: &[u8] = b"event: content_block_delta\n";

/// Stream one Anthropic response of `tokens` tokens; call `on_token` at each text delta.
pub async fn stream(
    addr: SocketAddr,
    tokens: u32,
    mut on_token: impl FnMut(Instant),
) -> anyhow::Result<()> {
    let body = serde_json::json!({
        "model": "bench", "max_tokens": 1_000_000, "stream": true,
        "messages": [{"role": "user", "content": format!("bench [dz tokens={tokens}]")}],
    })
    .to_string();
    let mut conn = tokio::net::TcpStream::connect(addr).await?;
    conn.set_nodelay(true)?;
    let head = format!(
        "POST /v1/messages HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    conn.write_all(format!("{head}{body}").as_bytes()).await?;

    let (mut raw, mut dechunk, mut events) =
        (Vec::with_capacity(64 * 1024), Dechunk::Head, Vec::new());
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = conn.read(&mut buf).await?;
        let now = Instant::now();
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
        let used = dechunk.feed(&raw, &mut events)?;
        raw.drain(..used);
        // Whole events only: an event ends with a blank line.
        let mut start = 0;
        while let Some(end) = find(&events[start..], b"\n\n") {
            if events[start..].starts_with(DELTA) {
                on_token(now);
            }
            start += end + 2;
        }
        events.drain(..start);
        if matches!(dechunk, Dechunk::Done) {
            break;
        }
    }
    if !matches!(dechunk, Dechunk::Done) {
        bail!("the body ended before its last chunk");
    }
    Ok(())
}

/// Where the reader is in the response: the head, a chunk-size line, `n` bytes of chunk data
/// (then its CRLF), or after the last chunk.
enum Dechunk {
    Head,
    Size,
    Data(usize),
    DataEnd,
    Done,
}

impl Dechunk {
    /// Consume what it can of `raw`, appending chunk data to `out`; returns the bytes used.
    fn feed(&mut self, raw: &[u8], out: &mut Vec<u8>) -> anyhow::Result<usize> {
        let mut at = 0;
        loop {
            let rest = &raw[at..];
            match *self {
                Dechunk::Head => {
                    let Some(end) = find(rest, b"\r\n\r\n") else {
                        return Ok(at);
                    };
                    let head = std::str::from_utf8(&rest[..end]).context("response head")?;
                    if !head.starts_with("HTTP/1.1 200") {
                        bail!("unexpected response: {head}");
                    }
                    if !head
                        .to_ascii_lowercase()
                        .contains("transfer-encoding: chunked")
                    {
                        bail!("expected a chunked body: {head}");
                    }
                    at += end + 4;
                    *self = Dechunk::Size;
                }
                Dechunk::Size => {
                    let Some(end) = find(rest, b"\r\n") else {
                        return Ok(at);
                    };
                    let line = std::str::from_utf8(&rest[..end]).context("chunk size")?;
                    let size = line.split(';').next().unwrap_or("").trim();
                    let size = usize::from_str_radix(size, 16).context("chunk size")?;
                    at += end + 2;
                    // The last chunk: no trailers are sent, so what follows is its CRLF.
                    *self = if size == 0 {
                        Dechunk::Done
                    } else {
                        Dechunk::Data(size)
                    };
                }
                Dechunk::Data(left) => {
                    if rest.is_empty() {
                        return Ok(at);
                    }
                    let take = left.min(rest.len());
                    out.extend_from_slice(&rest[..take]);
                    at += take;
                    *self = if take == left {
                        Dechunk::DataEnd
                    } else {
                        Dechunk::Data(left - take)
                    };
                }
                Dechunk::DataEnd => {
                    if rest.len() < 2 {
                        return Ok(at);
                    }
                    if &rest[..2] != b"\r\n" {
                        bail!("chunk data not followed by CRLF");
                    }
                    at += 2;
                    *self = Dechunk::Size;
                }
                Dechunk::Done => return Ok(at),
            }
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
