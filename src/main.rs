//! The `rotor` binary: parses flags and hands over to the library.

use std::process::ExitCode;

use clap::Parser;
use rotor::cli::{self, args::LogFormat, Cli, Command};

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let code = match &cli.command {
        Command::Validate(a) => cli::commands::validate(a),
        Command::Plan(a) => cli::commands::plan(a).await,
        Command::Apply(a) => cli::commands::apply(a).await,
        Command::Rotate(a) => cli::commands::rotate(a).await,
        Command::Status(a) => cli::commands::status(a),
        Command::Emulate(a) => match rotor::emulator::run(a.clone()).await {
            Ok(()) => cli::exit::OK,
            Err(e) => {
                eprintln!("emulator: {e}");
                cli::exit::FAILED
            }
        },
        Command::Sandbox(a) => match rotor::sandbox::run(a.clone()).await {
            Ok(code) => code,
            Err(e) => {
                eprintln!("sandbox: {e}");
                cli::exit::FAILED
            }
        },
    };
    ExitCode::from(code)
}
