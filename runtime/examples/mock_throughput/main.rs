//! Measures the mock LLM: streamed tokens per second on one core with per-token SSE framing,
//! and the latency the mock adds to the configured inter-token gap.
//!
//! The mock runs on its own current-thread runtime in one OS thread (one core at most); the
//! clients run on other threads so their parsing is not billed to the mock. The thread's own
//! CPU time (`RUSAGE_THREAD`) is reported too, since the host may be shared.
//!
//! The latency phase reports the added latency twice: at the clients (what a caller sees,
//! their own queueing included) and inside the mock ([`mock::Lateness`]: how late each paced
//! token reached the connection), so the two can be told apart. Its clients are the lean
//! reader in `lean.rs`, spread over `client_threads` threads (default 2).
//!
//! `cargo run --release -p dropzero-runtime --example mock_throughput -- [clients] [tokens] [secs] [client_threads]`

mod lean;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use dropzero_runtime::mock::{self, LatencySpec, Lateness, MockConfig, Profile};
use dropzero_sse::{Item, Limits, Parser};
use futures::StreamExt;
use hdrhistogram::Histogram;
use tokio_util::sync::CancellationToken;

/// A mock on its own thread; `stop` returns the CPU time that thread used and how long it
/// was runnable but waiting for a CPU (the host is shared: that wait is lateness too).
struct Server {
    addr: SocketAddr,
    shutdown: CancellationToken,
    thread: std::thread::JoinHandle<anyhow::Result<(Duration, Duration)>>,
}

impl Server {
    fn start(profile: Profile, lateness: Option<Arc<Lateness>>) -> anyhow::Result<Server> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let shutdown = CancellationToken::new();
        let token = shutdown.clone();
        // Named so that `perf report --comm mock` shows the mock alone.
        let thread = std::thread::Builder::new().name("mock".into()).spawn(
            move || -> anyhow::Result<(Duration, Duration)> {
                let waited = run_delay();
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                rt.block_on(async {
                    let listener = tokio::net::TcpListener::from_std(listener)?;
                    let config = MockConfig { seed: 1, profile };
                    match lateness {
                        Some(l) => mock::serve_recording(listener, config, token, l).await,
                        None => mock::serve(listener, config, token).await,
                    }
                })?;
                Ok((thread_cpu()?, run_delay().saturating_sub(waited)))
            },
        )?;
        Ok(Server {
            addr,
            shutdown,
            thread,
        })
    }

    fn stop(self) -> anyhow::Result<(Duration, Duration)> {
        self.shutdown.cancel();
        self.thread
            .join()
            .map_err(|_| anyhow::anyhow!("server thread panicked"))?
    }
}

/// Time the calling thread has spent runnable but not running (Linux schedstat; zero where
/// it cannot be read).
fn run_delay() -> Duration {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse().ok())
        .map_or(Duration::ZERO, Duration::from_nanos)
}

/// CPU time (user + system) the calling thread has used.
fn thread_cpu() -> anyhow::Result<Duration> {
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_THREAD)?;
    let (u, s) = (usage.user_time(), usage.system_time());
    Ok(
        Duration::from_micros((u.tv_sec() * 1_000_000 + u.tv_usec()) as u64)
            + Duration::from_micros((s.tv_sec() * 1_000_000 + s.tv_usec()) as u64),
    )
}

/// The Messages request both clients send: one streamed answer of `tokens` tokens.
fn request_body(tokens: u32) -> serde_json::Value {
    serde_json::json!({
        "model": "bench", "max_tokens": 1_000_000, "stream": true,
        "messages": [{"role": "user", "content": format!("bench [dz tokens={tokens}]")}],
    })
}

/// Stream one response; call `on_token` at each text delta.
async fn stream(
    http: &reqwest::Client,
    addr: SocketAddr,
    tokens: u32,
    mut on_token: impl FnMut(Instant),
) -> anyhow::Result<()> {
    let resp = http
        .post(format!("http://{addr}/v1/messages"))
        .json(&request_body(tokens))
        .send()
        .await?;
    let mut parser = Parser::new(Limits::default());
    let (mut items, mut bytes) = (Vec::new(), resp.bytes_stream());
    while let Some(chunk) = bytes.next().await {
        parser.feed(&chunk?, &mut items)?;
        let now = Instant::now();
        for item in items.drain(..) {
            if matches!(&item, Item::Event(e) if e.event == "content_block_delta") {
                on_token(now);
            }
        }
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let arg = |i: usize, default: u64| -> anyhow::Result<u64> {
        std::env::args()
            .nth(i)
            .map_or(Ok(default), |a| a.parse().context("numeric argument"))
    };
    let (clients, tokens, secs) = (arg(1, 64)?, arg(2, 2000)? as u32, arg(3, 5)?);
    let threads = arg(4, 2)?.clamp(1, clients.max(1));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(clients as usize)
        .build()?;

    // 1. Throughput: zero latency, `clients` streams back to back for `secs` seconds.
    let server = Server::start(
        Profile {
            max_concurrent: 1 << 20,
            ..Profile::zero_latency()
        },
        None,
    )?;
    let deadline = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let counts = rt.block_on(futures::future::join_all((0..clients).map(|_| {
        let http = http.clone();
        async move {
            let mut n = 0u64;
            while Instant::now() < deadline {
                stream(&http, server.addr, tokens, |_| n += 1).await?;
            }
            anyhow::Ok(n)
        }
    })));
    let elapsed = started.elapsed().as_secs_f64();
    let total: u64 = counts.into_iter().sum::<anyhow::Result<u64>>()?;
    let cpu = server.stop()?.0.as_secs_f64();
    println!(
        "throughput: {clients} clients x {tokens}-token streams, {elapsed:.1}s: {total} tokens, \
         {:.0} tokens/s wall, mock thread CPU {cpu:.2}s => {:.0} tokens per mock CPU-second",
        total as f64 / elapsed,
        total as f64 / cpu.max(1e-9)
    );

    // 2. Added latency: a constant 2 ms gap (median = p99), `clients` streams of 500 tokens.
    let gap = Duration::from_millis(2);
    let profile = Profile {
        ttft: LatencySpec::ZERO,
        itl: LatencySpec {
            median: gap,
            p99: gap,
        },
        max_concurrent: 1 << 20,
        ..Profile::fast()
    };
    let lateness = Arc::new(Lateness::default());
    let server = Server::start(profile, Some(lateness.clone()))?;
    let addr = server.addr;
    let started = Instant::now();
    let per_thread: Vec<_> = (0..threads)
        .map(|t| {
            // Streams t, t + threads, …: the threads' shares differ by one at most.
            let n = (clients - t).div_ceil(threads);
            std::thread::spawn(move || latency_clients(addr, n, gap))
        })
        .collect();
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut client_cpu = Vec::new();
    for handle in per_thread {
        let (local, cpu) = handle
            .join()
            .map_err(|_| anyhow::anyhow!("client thread panicked"))??;
        hist.add(local)?;
        client_cpu.push(cpu.as_secs_f64());
    }
    let wall = started.elapsed().as_secs_f64();
    let (cpu, waited) = server.stop()?;
    let cpu = cpu.as_secs_f64();
    let mock = lateness.snapshot();
    // Paced tokens leave one write each, so this is the mock's cost per token at its dearest.
    let paced = (hist.len() + clients) as f64;
    let busy: Vec<String> = client_cpu
        .iter()
        .map(|c| format!("{:.0}%", c / wall * 100.0))
        .collect();
    println!(
        "added latency over a {gap:?} gap, {clients} streams x 500 tokens, {threads} client \
         threads ({} busy): at the clients p50 {}us p99 {}us p99.9 {}us max {}us ({} gaps); \
         in the mock p50 {}us p99 {}us p99.9 {}us max {}us; mock write lateness (handed to \
         the connection - due) p50 {}us p99 {}us max {}us; mock thread CPU {cpu:.2}s = \
         {:.1}us per paced token, waited {:.0}ms for a CPU in {wall:.2}s",
        busy.join(" "),
        hist.value_at_quantile(0.5),
        hist.value_at_quantile(0.99),
        hist.value_at_quantile(0.999),
        hist.max(),
        hist.len(),
        mock.added.value_at_quantile(0.5),
        mock.added.value_at_quantile(0.99),
        mock.added.value_at_quantile(0.999),
        mock.added.max(),
        mock.late.value_at_quantile(0.5),
        mock.late.value_at_quantile(0.99),
        mock.late.max(),
        cpu * 1e6 / paced,
        waited.as_secs_f64() * 1e3,
    );
    Ok(())
}

/// `n` concurrent 500-token streams on this thread's own runtime: the histogram of measured
/// gap − `gap` (µs), and this thread's CPU time.
fn latency_clients(
    addr: SocketAddr,
    n: u64,
    gap: Duration,
) -> anyhow::Result<(Histogram<u64>, Duration)> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let cpu0 = thread_cpu()?;
    let results = rt.block_on(futures::future::join_all((0..n).map(|_| async move {
        let mut local = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
        let mut prev: Option<Instant> = None;
        lean::stream(addr, 500, |now| {
            if let Some(p) = prev {
                let added = now.duration_since(p).saturating_sub(gap);
                local.saturating_record(added.as_micros().max(1) as u64);
            }
            prev = Some(now);
        })
        .await?;
        anyhow::Ok(local)
    })));
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    for local in results {
        hist.add(local?)?;
    }
    Ok((hist, thread_cpu()? - cpu0))
}
