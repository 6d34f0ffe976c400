//! The GitHub emulator on its own: `cargo run --example emulate -- --orgs acme --repos-per-org 50`.
//! Same options as `rotor emulate`; see docs/emulator.md.

use std::process::ExitCode;

use clap::Parser;
use github_emulator::{run, EmulateArgs};

/// Serve rotor's GitHub REST emulator until Ctrl-C.
#[derive(Parser)]
#[command(name = "emulate", version)]
struct Cli {
    #[command(flatten)]
    args: EmulateArgs,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("emulate: {e}");
            ExitCode::FAILURE
        }
    }
}
