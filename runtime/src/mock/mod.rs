//! The mock LLM provider.

use tokio_util::sync::CancellationToken;

/// Command-line arguments of `dropzero mock-llm`.
#[derive(Debug, Clone, clap::Args)]
pub struct MockArgs {
    /// Port to listen on (0 = ephemeral; the bound address is printed on stdout).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
}

/// Serve the mock LLM until `shutdown` fires.
pub async fn run(_args: MockArgs, _shutdown: CancellationToken) -> anyhow::Result<()> {
    anyhow::bail!("the mock LLM is not built yet")
}
