//! The `dropzero` binary: parse the command line, run, pick the exit code. Everything else
//! lives in the library so tests can drive it.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = dropzero::cli::Cli::parse();
    let result = dropzero::cli::main(cli);
    dropzero::logs::flush();
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("dropzero: error: {err:#}");
            ExitCode::from(dropzero::cli::EXIT_HARNESS_FAILED)
        }
    }
}
