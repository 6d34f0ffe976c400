//! The `rotor` binary: parses flags and hands over to the library.

use std::process::ExitCode;

use clap::Parser;
use rotor::cli::{self, args::LogFormat, Cli, Command};

fn init_logging(format: LogFormat, default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // The daemon says what it does (info); one-shot commands print their results instead.
    let default_level = match cli.command {
        // vaultrs logs every Vault error answer (a 404 for a path with no version yet)
        // at ERROR; rotor reports the ones that matter itself, with their context.
        Command::Run(_) => "info,tokio_cron_scheduler=warn,vaultrs=off,rustify=off",
        _ => "warn,vaultrs=off,rustify=off",
    };
    init_logging(cli.log_format, default_level);
    let code = match &cli.command {
        Command::Validate(a) => cli::commands::validate(a),
        Command::Plan(a) => cli::commands::plan(a).await,
        Command::Apply(a) => cli::commands::apply(a).await,
        Command::Rotate(a) => cli::commands::rotate(a).await,
        Command::Status(a) => cli::commands::status(a),
        Command::Run(a) => cli::commands::run_daemon(a).await,
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
