//! The `fulcrum-mock` binary: see [`fulcrum_mock::cli`].

use clap::Parser;
use std::process::ExitCode;

/// Mock inference server with scriptable latency, capacity and failures.
#[derive(Debug, Parser)]
#[command(name = "fulcrum-mock", version)]
struct Cli {
    #[command(flatten)]
    args: fulcrum_mock::cli::MockArgs,
}

fn main() -> ExitCode {
    match fulcrum_mock::cli::run(Cli::parse().args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fulcrum-mock: {e}");
            ExitCode::FAILURE
        }
    }
}
