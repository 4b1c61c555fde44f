//! The zero-cost protocol-v1 target of `dropzero calibrate` (hidden subcommand
//! `dropzero calibrate-target`): just enough of `docs/protocol.md` §1 for the session engine
//! to run and verify real sessions, at as little CPU per event as a server can spend.
//!
//! It exists so that `calibrate` measures the *harness*: the target keeps no state beyond
//! each open connection (the session id carries the token count, so resumes work), runs on
//! one current-thread runtime (pinned to its own core by the harness where there is one),
//! parses requests with `httparse`, and streams each event with one `write` from a reused
//! buffer, on an absolute schedule (`t0 + k × interval`) so its timer error never
//! accumulates. Event streams are close-delimited HTTP/1.1 bodies (no chunk framing);
//! create responses keep their connection alive.
//!
//! What it serves: `POST /v1/sessions` (`201`, the token count from the query's
//! `[dz tokens=N]`, default [`DEFAULT_TOKENS`]) and `GET /v1/sessions/{id}/events` (`session`,
//! N `token`s (each with its write time, `written_us`), `done` with `last_seq` and `content_sha256`, honouring `Last-Event-ID`).
//! `GET /calibrate/write-gaps` answers how far the gaps between its own token writes were from
//! the interval since the last such request (p50, p99, max in µs), so `calibrate` can tell the
//! target's share of the ITL error from the harness's. Anything else is a `404`. It is not
//! the reference runtime and checks no credentials.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use hdrhistogram::Histogram;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::{Instant, MissedTickBehavior};

/// Tokens of a session whose query names none.
pub const DEFAULT_TOKENS: u64 = 300;
/// The most tokens one session may ask for.
pub const MAX_TOKENS: u64 = 1_000_000;
/// `GET` this for the target's own write-gap error since the last such request (and reset it).
pub const WRITE_GAPS_PATH: &str = "/calibrate/write-gaps";
/// A request head or body larger than this is refused (the harness sends a few hundred bytes).
const MAX_REQUEST: usize = 64 * 1024;
/// The token texts, cycled; plain ASCII words that need no JSON escaping.
const WORDS: [&str; 8] = [
    " the", " quick", " brown", " fox", " jumps", " over", " a", " lazy",
];

/// `dropzero calibrate-target`: started by `dropzero calibrate`, not by hand.
#[derive(Debug, clap::Args)]
pub struct TargetArgs {
    /// Address to listen on (port 0: any free port); printed as `{"listening":"addr"}`.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Token events per second of every stream.
    #[arg(long)]
    pub tokens_per_second: f64,
    /// Pin the process to this CPU.
    #[arg(long)]
    pub cpu: Option<usize>,
}

/// Pin (when asked), then serve on one current-thread runtime until killed.
pub fn main(args: TargetArgs) -> anyhow::Result<()> {
    if !(args.tokens_per_second > 0.0 && args.tokens_per_second <= 1000.0) {
        anyhow::bail!(
            "--tokens-per-second must be in (0, 1000], got {}",
            args.tokens_per_second
        );
    }
    if let Some(cpu) = args.cpu {
        super::usage::pin_to(cpu)?;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the target's runtime")?;
    rt.block_on(serve(args))
}

struct Config {
    interval: Duration,
    created_at: String,
    next_id: AtomicU64,
    /// Token events carry their write time, in µs since this instant (`written_us`).
    epoch: Instant,
    /// |gap between two token writes of a stream − interval|, in µs: the target's own share
    /// of the ITL error the harness measures (read and reset by `GET /calibrate/write-gaps`).
    write_gap_error: Mutex<Histogram<u64>>,
}

async fn serve(args: TargetArgs) -> anyhow::Result<()> {
    let socket = match args.listen {
        SocketAddr::V4(_) => TcpSocket::new_v4(),
        SocketAddr::V6(_) => TcpSocket::new_v6(),
    }
    .context("creating the listening socket")?;
    socket.set_reuseaddr(true)?;
    socket
        .bind(args.listen)
        .with_context(|| format!("binding {}", args.listen))?;
    // Thousands of sessions are created within seconds: a deep accept queue.
    let listener = socket.listen(8192).context("listening")?;
    let addr = listener.local_addr()?;
    println!("{}", serde_json::json!({ "listening": addr.to_string() }));
    let cfg = Arc::new(Config {
        interval: Duration::from_secs_f64(1.0 / args.tokens_per_second),
        created_at: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        next_id: AtomicU64::new(1),
        epoch: Instant::now(),
        write_gap_error: Mutex::new(
            Histogram::new_with_bounds(1, 3_600_000_000, 3).context("histogram bounds")?,
        ),
    });
    loop {
        let (sock, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            // Out of file descriptors or a connection reset before accept: keep serving.
            Err(e) => {
                eprintln!("{}", serde_json::json!({ "accept_error": e.to_string() }));
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = sock.set_nodelay(true);
        tokio::spawn(connection(sock, cfg.clone()));
    }
}

/// One parsed request: what the target needs of it.
enum Request {
    Create { tokens: u64 },
    WriteGaps,
    Events { tokens: u64, id: String, after: u64 },
    Other { status: &'static str },
}

/// Serve requests on one connection until it closes or becomes an event stream.
async fn connection(mut sock: TcpStream, cfg: Arc<Config>) {
    let mut buf = Vec::with_capacity(1024);
    loop {
        let Some(request) = read_request(&mut sock, &mut buf).await else {
            return;
        };
        let written = match request {
            Request::Create { tokens } => {
                let n = cfg.next_id.fetch_add(1, Ordering::Relaxed);
                let id = format!("s_{n}_{tokens}");
                let body = format!(
                    r#"{{"session_id":"{id}","events_url":"/v1/sessions/{id}/events","resume_token":"rt_calibrate"}}"#
                );
                respond(&mut sock, "201 Created", &body).await
            }
            Request::WriteGaps => respond(&mut sock, "200 OK", &take_write_gaps(&cfg)).await,
            Request::Events { tokens, id, after } => {
                stream(sock, &cfg, &id, tokens, after).await;
                return;
            }
            Request::Other { status } => {
                let body =
                    r#"{"error":{"type":"not_found","message":"not served by calibrate-target"}}"#;
                respond(&mut sock, status, body).await
            }
        };
        if written.is_err() {
            return;
        }
    }
}

async fn respond(sock: &mut TcpStream, status: &str, body: &str) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    sock.write_all(format!("{head}{body}").as_bytes()).await
}

/// Read one request (head and body) from `buf` + the socket; `None` when the connection
/// closed or sent something this target will not parse. Bytes after it stay in `buf`.
async fn read_request(sock: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Request> {
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        if let Ok(httparse::Status::Complete(head_len)) = req.parse(buf) {
            let content_length = header(&req, "content-length")
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0);
            if content_length > MAX_REQUEST {
                return None;
            }
            let request = classify(&req);
            let total = head_len + content_length;
            while buf.len() < total {
                read_more(sock, buf).await?;
            }
            let request = match request {
                Classified::Done(r) => r,
                Classified::NeedsBody => create(&buf[head_len..total]),
            };
            buf.drain(..total);
            return Some(request);
        }
        if buf.len() > MAX_REQUEST {
            return None;
        }
        read_more(sock, buf).await?;
    }
}

async fn read_more(sock: &mut TcpStream, buf: &mut Vec<u8>) -> Option<()> {
    let mut chunk = [0u8; 4096];
    match sock.read(&mut chunk).await {
        Ok(0) | Err(_) => None,
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            Some(())
        }
    }
}

enum Classified {
    Done(Request),
    /// A create: its body decides the token count.
    NeedsBody,
}

fn header<'a>(req: &httparse::Request<'_, 'a>, name: &str) -> Option<&'a str> {
    req.headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .and_then(|h| std::str::from_utf8(h.value).ok())
        .map(str::trim)
}

fn classify(req: &httparse::Request<'_, '_>) -> Classified {
    let path = req.path.unwrap_or("");
    match (req.method.unwrap_or(""), path) {
        ("POST", "/v1/sessions") => Classified::NeedsBody,
        ("GET", WRITE_GAPS_PATH) => Classified::Done(Request::WriteGaps),
        ("GET", p) => match events_path(p) {
            Some((id, tokens)) => {
                let after = header(req, "last-event-id")
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0);
                Classified::Done(Request::Events {
                    tokens,
                    id: id.to_string(),
                    after,
                })
            }
            None => Classified::Done(Request::Other {
                status: "404 Not Found",
            }),
        },
        _ => Classified::Done(Request::Other {
            status: "404 Not Found",
        }),
    }
}

/// `/v1/sessions/s_<n>_<tokens>/events` → the id and its token count.
fn events_path(path: &str) -> Option<(&str, u64)> {
    let id = path
        .strip_prefix("/v1/sessions/")?
        .strip_suffix("/events")?;
    let tokens = id.rsplit('_').next()?.parse::<u64>().ok()?;
    (id.starts_with("s_") && (1..=MAX_TOKENS).contains(&tokens)).then_some((id, tokens))
}

/// A create body → the session's token count from its query's `[dz tokens=N]`.
fn create(body: &[u8]) -> Request {
    #[derive(serde::Deserialize)]
    struct Body {
        query: String,
    }
    match serde_json::from_slice::<Body>(body) {
        Ok(b) => Request::Create {
            tokens: tokens_of(&b.query),
        },
        Err(_) => Request::Other {
            status: "400 Bad Request",
        },
    }
}

/// `… [dz tokens=42] …` → 42 (clamped to `1..=MAX_TOKENS`); [`DEFAULT_TOKENS`] without it.
fn tokens_of(query: &str) -> u64 {
    query
        .split("[dz tokens=")
        .nth(1)
        .and_then(|rest| rest.split(']').next())
        .and_then(|n| n.trim().parse::<u64>().ok())
        .map_or(DEFAULT_TOKENS, |n| n.clamp(1, MAX_TOKENS))
}

/// The event stream of session `id`: seq 1 `session`, seqs 2..=tokens+1 `token`, then `done`;
/// only seqs above `after` are sent. The first event goes at once, each token after the
/// first `interval` after the previous one, `done` with the last token.
async fn stream(mut sock: TcpStream, cfg: &Config, id: &str, tokens: u64, after: u64) {
    let done_seq = tokens + 2;
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n\
          connection: close\r\n\r\nretry: 1000\n\n",
    );
    if after == 0 {
        push_event(
            &mut out,
            1,
            "session",
            format_args!(
                r#"{{"session_id":"{id}","replica_id":"calibrate-target","created_at":"{}"}}"#,
                cfg.created_at
            ),
        );
    }
    let mut digest = Sha256::new();
    // Tokens at or below `after` were delivered before: only their text enters the digest.
    let first_token = after.saturating_sub(1).min(tokens) + 1;
    for k in 1..first_token {
        digest.update(word(k).as_bytes());
    }
    let mut tick = tokio::time::interval_at(Instant::now(), cfg.interval);
    let mut last_write = None;
    // Late wakes fire at once and keep the schedule: gaps stay exact on average.
    tick.set_missed_tick_behavior(MissedTickBehavior::Burst);
    for k in first_token..=tokens {
        tick.tick().await;
        let now = Instant::now();
        if let Some(last) = last_write.replace(now) {
            let gap = now.duration_since(last);
            let error = gap.abs_diff(cfg.interval).as_micros();
            if let Ok(mut h) = cfg.write_gap_error.lock() {
                h.saturating_record(u64::try_from(error).unwrap_or(u64::MAX));
            }
        }
        let text = word(k);
        digest.update(text.as_bytes());
        push_event(
            &mut out,
            k + 1,
            "token",
            format_args!(
                r#"{{"step":"s1","text":"{text}","written_us":{}}}"#,
                now.duration_since(cfg.epoch).as_micros()
            ),
        );
        if k == tokens {
            break;
        }
        if sock.write_all(&out).await.is_err() {
            return;
        }
        out.clear();
    }
    if after < done_seq {
        let sha = hex::encode(std::mem::take(&mut digest).finalize());
        push_event(
            &mut out,
            done_seq,
            "done",
            format_args!(
                r#"{{"status":"completed","usage":{{"input_tokens":0,"output_tokens":{tokens},"cost_usd":0.0}},"last_seq":{done_seq},"content_sha256":"{sha}"}}"#
            ),
        );
    }
    if sock.write_all(&out).await.is_ok() {
        let _ = sock.shutdown().await;
    }
}

/// The write-gap histogram as JSON (µs), emptied for the next window.
fn take_write_gaps(cfg: &Config) -> String {
    let Ok(mut h) = cfg.write_gap_error.lock() else {
        return "{}".into();
    };
    let body = serde_json::json!({
        "count": h.len(),
        "error_p50_us": h.value_at_quantile(0.5),
        "error_p99_us": h.value_at_quantile(0.99),
        "error_max_us": h.max(),
    });
    h.reset();
    body.to_string()
}

fn word(k: u64) -> &'static str {
    WORDS[(k % WORDS.len() as u64) as usize]
}

fn push_event(out: &mut Vec<u8>, seq: u64, event: &str, data: std::fmt::Arguments<'_>) {
    use std::io::Write;
    // Writing into a Vec cannot fail.
    let _ = write!(out, "id: {seq}\nevent: {event}\ndata: {data}\n\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_count_comes_from_the_query() {
        let check = |q: &str, n: u64| assert_eq!(tokens_of(q), n, "{q}");
        check("Investigate x (session 3) [dz tokens=42]", 42);
        check("no marker", DEFAULT_TOKENS);
        check("[dz tokens=0]", 1);
        check("[dz tokens=99999999999]", MAX_TOKENS);
        check("[dz tokens=abc]", DEFAULT_TOKENS);
    }

    #[test]
    fn event_paths_carry_the_token_count() {
        assert_eq!(
            events_path("/v1/sessions/s_7_300/events"),
            Some(("s_7_300", 300))
        );
        assert_eq!(events_path("/v1/sessions/s_7_0/events"), None);
        assert_eq!(events_path("/v1/sessions/x_7/events"), None);
        assert_eq!(events_path("/v1/sessions/s_7_3"), None);
    }
}
