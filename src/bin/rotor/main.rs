//! The `rotor` binary: the command line. Flags -> settings -> library calls; errors -> exit
//! codes. Parsing never acts; each command lives in its own file. The binary is the only
//! part of the package that links the GitHub emulator (`rotor emulate`, `rotor sandbox`).

use std::process::ExitCode;

use clap::Parser;

mod actions;
mod args;
mod commands;
mod progress;
mod remote;
#[cfg(feature = "emulator")]
mod sandbox;
mod settings;

use args::{Cli, Command, LogFormat};

/// Exit codes (DESIGN.md): 0 done, 1 some target failed, 2 bad input.
pub mod exit {
    pub const OK: u8 = 0;
    pub const FAILED: u8 = 1;
    pub const BAD_INPUT: u8 = 2;
    /// `plan --detailed-exitcode`: changes are pending.
    pub const CHANGES: u8 = 2;
    /// `plan --detailed-exitcode`: invalid policies or settings (2 is taken by changes).
    pub const DETAILED_BAD_INPUT: u8 = 3;
}

fn init_logging(format: LogFormat, default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour_on_stderr(
            std::io::IsTerminal::is_terminal(&std::io::stderr()),
            std::env::var_os("NO_COLOR").as_deref(),
        ))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Text logs are coloured only on a terminal, and never when `NO_COLOR` is set to anything
/// but the empty string (no-color.org): a log file or a pipe gets plain text.
fn colour_on_stderr(is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    is_terminal && no_color.is_none_or(|v| v.is_empty())
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
        Command::Validate(a) => commands::validate(a).await,
        Command::Plan(a) => commands::plan(a).await,
        Command::Apply(a) => commands::apply(a).await,
        Command::Rotate(a) => commands::rotate(a).await,
        Command::Rollback(a) => commands::rollback(a).await,
        Command::Status(a) => commands::status(a),
        Command::Run(a) => commands::run_daemon(a).await,
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(*shell, &mut cmd, "rotor", &mut std::io::stdout());
            exit::OK
        }
        Command::Schema => {
            print!("{}", rotor::policy::schema::schema_text());
            exit::OK
        }
        Command::Man => {
            let cmd = <Cli as clap::CommandFactory>::command();
            match clap_mangen::Man::new(cmd).render(&mut std::io::stdout()) {
                Ok(()) => exit::OK,
                Err(e) => {
                    eprintln!("rotor man: {e}");
                    exit::FAILED
                }
            }
        }
        #[cfg(feature = "emulator")]
        Command::Emulate(a) => match github_emulator::run(a.clone()).await {
            Ok(()) => exit::OK,
            Err(e) => {
                eprintln!("emulator: {e}");
                exit::FAILED
            }
        },
        #[cfg(feature = "emulator")]
        Command::Sandbox(a) => match sandbox::run(a.clone()).await {
            Ok(code) => code,
            Err(e) => {
                eprintln!("sandbox: {e}");
                exit::FAILED
            }
        },
    };
    ExitCode::from(code)
}

#[cfg(test)]
mod colour_tests {
    use super::colour_on_stderr;
    use std::ffi::OsStr;

    #[test]
    fn logs_were_coloured_in_a_file_or_a_pipe() {
        assert!(colour_on_stderr(true, None));
        assert!(colour_on_stderr(true, Some(OsStr::new(""))));
        assert!(!colour_on_stderr(true, Some(OsStr::new("1"))));
        assert!(!colour_on_stderr(false, None));
    }
}
