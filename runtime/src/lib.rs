//! # dropzero-runtime
//!
//! The system under test: a reference SSE agent runtime (`dropzero runtime`) and a mock LLM
//! provider (`dropzero mock-llm`). The harness never links this crate's internals into its
//! load or measurement code; only the two subcommands call [`run`] and [`mock::run`].
//!
//! # Layout
//! - [`mock`]: the mock LLM provider (Anthropic + OpenAI streaming, latency, faults, ledger).

pub mod mock;

use tokio_util::sync::CancellationToken;

/// Command-line arguments of `dropzero runtime`.
#[derive(Debug, Clone, clap::Args)]
pub struct RuntimeArgs {
    /// Port to listen on (0 = ephemeral; the bound address is printed on stdout).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
}

/// Serve the runtime until `shutdown` fires, then drain and return.
pub async fn run(_args: RuntimeArgs, _shutdown: CancellationToken) -> anyhow::Result<()> {
    anyhow::bail!("the runtime is not built yet")
}
