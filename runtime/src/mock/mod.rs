//! The mock LLM provider (`dropzero mock-llm`): the Anthropic Messages and OpenAI Chat
//! Completions APIs, streaming and not, with deterministic content per seed, lognormal
//! latency that degrades under load, injectable faults and a billing ledger. The contract with
//! the runtime is docs/protocol.md §4.
//!
//! This module is the entry point (`run` for the CLI, `serve` for tests); it is not where any
//! behaviour lives.
//!
//! # Layout
//! - [`profile`]: the model profile (latency, price, default lengths, initial faults) and its TOML file.
//! - `text`: deterministic tokens, `[dz …]` directives, prefill continuation.
//! - `latency`: lognormal sampler from median + p99, load multiplier.
//! - `agent`: plain / planner / worker / runaway replies.
//! - [`faults`]: fault windows and the per-request draw.
//! - [`ledger`]: billed tokens in total and per session.
//! - `frame`: pre-serialised per-token events.
//! - `generate`: paces a reply, applies faults, bills tokens as generated.
//! - [`lateness`]: how late paced tokens reach the connection (benchmarks only).
//! - `anthropic`, `openai`: the wire formats.
//! - `server`: routes and the request flow.
//!
//! # Control endpoints
//! - `POST /mock/faults` starts a fault window now (replacing the active one); every field is
//!   optional, unknown fields are a 400:
//!   ```json
//!   {"rate_limit": 0.2, "overloaded": 0.1, "server_error": 0.0,
//!    "cut_after_tokens": 50, "cut_rate": 1.0, "stream_error_after_tokens": 20,
//!    "stall": {"after_tokens": 10, "duration_ms": 5000},
//!    "extra_latency_ms": 100, "retry_after_s": 1, "duration_ms": 30000}
//!   ```
//!   Error rates are drawn per request (429 `rate_limit_error` with `retry-after`, 529
//!   `overloaded_error`, 500 `api_error`; OpenAI: 429, 503, 500). A cut closes the connection
//!   abruptly after N output tokens; `stream_error_after_tokens` sends an SSE `error` event
//!   (`overloaded_error`) instead. No `duration_ms` = until `DELETE /mock/faults`.
//!   `GET /mock/faults` → `{"active": spec|null, "remaining_ms": n|null}`.
//! - `GET /mock/ledger`, `POST /mock/ledger/reset`; `GET /healthz`.

mod agent;
mod anthropic;
pub mod faults;
mod frame;
mod generate;
mod latency;
pub mod lateness;
pub mod ledger;
mod openai;
pub mod outage;
pub mod profile;
mod server;
mod text;

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

pub use faults::{FaultSpec, Stall};
pub use latency::{Sampler, load_multiplier};
pub use lateness::Lateness;
pub use profile::{LatencySpec, Price, Profile, ProfileError};

/// Command-line arguments of `dropzero mock-llm`.
#[derive(Debug, Clone, clap::Args)]
pub struct MockArgs {
    /// Port to listen on (0 = ephemeral; the bound address is printed on stdout).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Seed of the generated content (same request + seed → same tokens).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// TOML model profile (latency, price, default lengths, initial faults).
    #[arg(long)]
    pub profile: Option<PathBuf>,
}

/// Everything [`serve`] needs.
#[derive(Debug, Clone, PartialEq)]
pub struct MockConfig {
    /// Seed of the content (and of latency and fault draws).
    pub seed: u64,
    pub profile: Profile,
}

impl Default for MockConfig {
    /// Fast latencies for tests ([`Profile::fast`]), seed 0.
    fn default() -> Self {
        MockConfig {
            seed: 0,
            profile: Profile::fast(),
        }
    }
}

/// Serve the mock on `listener` until `shutdown` fires; open streams end when it does.
pub async fn serve(
    listener: tokio::net::TcpListener,
    config: MockConfig,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    serve_with(listener, config, shutdown, None).await
}

/// [`serve`], recording in `lateness` how late each paced token reaches the connection
/// (`examples/mock_throughput`).
pub async fn serve_recording(
    listener: tokio::net::TcpListener,
    config: MockConfig,
    shutdown: CancellationToken,
    lateness: Arc<Lateness>,
) -> anyhow::Result<()> {
    serve_with(listener, config, shutdown, Some(lateness)).await
}

async fn serve_with(
    listener: tokio::net::TcpListener,
    config: MockConfig,
    shutdown: CancellationToken,
    lateness: Option<Arc<Lateness>>,
) -> anyhow::Result<()> {
    config
        .profile
        .validate()
        .map_err(|(field, reason)| anyhow::anyhow!("invalid profile: field `{field}`: {reason}"))?;
    server::serve(listener, config, shutdown, lateness)
        .await
        .context("mock LLM server failed")
}

/// Serve the mock LLM until `shutdown` fires.
pub async fn run(args: MockArgs, shutdown: CancellationToken) -> anyhow::Result<()> {
    let profile = match &args.profile {
        Some(path) => Profile::load(path)?,
        None => Profile::default(),
    };
    let addr = SocketAddr::from(([127, 0, 0, 1], args.port));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot bind {addr}"))?;
    let bound = listener.local_addr().context("no local address")?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "{}",
            serde_json::json!({ "listening": bound.to_string() })
        )?;
        out.flush()?;
    }
    tracing::info!(addr = %bound, seed = args.seed, "mock LLM listening");
    serve(
        listener,
        MockConfig {
            seed: args.seed,
            profile,
        },
        shutdown,
    )
    .await
}
