//! The command line: one enum of subcommands and one dispatch. Exit codes are chosen here
//! and only here: 0 every gate passed, 1 a gate failed, 2 the harness itself failed.

use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

/// Every gate passed.
pub const EXIT_OK: u8 = 0;
/// At least one gate failed.
pub const EXIT_GATE_FAILED: u8 = 1;
/// The harness could not do its job (bad scenario, target would not start, I/O).
pub const EXIT_HARNESS_FAILED: u8 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "dropzero",
    version,
    about = "Load and chaos testing for streaming LLM agent runtimes"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the reference SSE agent runtime.
    Runtime(dropzero_runtime::RuntimeArgs),
    /// Serve the mock LLM provider (Anthropic and OpenAI streaming APIs, with a billing ledger).
    MockLlm(dropzero_runtime::mock::MockArgs),
}

pub fn main(cli: Cli) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Runtime::new().context("starting the tokio runtime")?;
    match cli.command {
        Command::Runtime(args) => {
            init_json_logs();
            rt.block_on(async {
                let shutdown = shutdown_on_signal();
                dropzero_runtime::run(args, shutdown).await
            })?;
        }
        Command::MockLlm(args) => {
            init_json_logs();
            rt.block_on(async {
                let shutdown = shutdown_on_signal();
                dropzero_runtime::mock::run(args, shutdown).await
            })?;
        }
    }
    Ok(ExitCode::from(EXIT_OK))
}

/// JSON logs on stderr, one object per line, filtered by `RUST_LOG` (default `info`).
/// Stdout stays free for the single `{"listening": ...}` line the fleet reads.
fn init_json_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .json()
        .with_current_span(true)
        .with_span_list(false)
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// A token cancelled by the first SIGTERM or SIGINT. A second signal exits at once, so an
/// operator is never stuck behind a drain they did not want.
fn shutdown_on_signal() -> CancellationToken {
    use tokio::signal::unix::{SignalKind, signal};
    let token = CancellationToken::new();
    let fired = token.clone();
    tokio::spawn(async move {
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            tracing::error!("cannot install signal handlers; shutdown only by kill");
            return;
        };
        tokio::select! {
            _ = term.recv() => tracing::info!(signal = "SIGTERM", "shutdown requested"),
            _ = int.recv() => tracing::info!(signal = "SIGINT", "shutdown requested"),
        }
        fired.cancel();
        tokio::select! {
            _ = term.recv() => {},
            _ = int.recv() => {},
        }
        tracing::warn!("second signal: exiting now");
        std::process::exit(130);
    });
    token
}
