//! `rotor emulate`: the emulator on its own, for sandboxes and users' own tests.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::fleet::{FleetSpec, TokenSpec};
use super::server::Emulator;

/// Options of `rotor emulate`.
#[derive(Debug, Clone, clap::Args)]
pub struct EmulateArgs {
    /// Address to listen on; port 0 picks a free port (the URL is printed).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Fleet file (YAML, or JSON when it ends in .json).
    #[arg(long, value_name = "FILE", conflicts_with = "orgs")]
    pub fleet: Option<PathBuf>,
    /// Generate a fleet with these organizations (comma-separated), e.g. acme,globex.
    #[arg(long, value_delimiter = ',', value_name = "ORGS")]
    pub orgs: Vec<String>,
    /// Repositories per generated organization (svc-0001, svc-0002, ...).
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub repos_per_org: usize,
    /// A token that sees everything (repeatable). Without any token, `emulator-token`.
    #[arg(long = "token", value_name = "T")]
    pub tokens: Vec<String>,
    /// Delay added to every API response, e.g. 50ms, 1s.
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub latency: Option<Duration>,
    /// Primary rate limit per token per hour (GitHub: 5000).
    #[arg(long, value_name = "N")]
    pub requests_per_hour: Option<u64>,
    /// Secondary limit: points per minute per token, GET 1, writes 5 (GitHub: 900).
    #[arg(long, value_name = "N")]
    pub points_per_minute: Option<u64>,
    /// Divide every limit window by N (60: a minute of budget passes in a second).
    #[arg(long, value_name = "N")]
    pub time_scale: Option<u32>,
    /// Serve every decrypted value at `GET /_emulator/secrets` (for tests; off by default).
    /// Only with a loopback `--listen` address.
    #[arg(long)]
    pub expose_values: bool,
    /// Also answer requests for this `Host` name (repeatable; loopback names always
    /// work). Needed when clients reach the emulator by another name (a container's).
    #[arg(long = "allow-host", value_name = "NAME")]
    pub allow_hosts: Vec<String>,
    /// Deliver signed webhooks (repository, installation, installation_repositories
    /// events) to this URL; the secret comes from --webhook-secret-file.
    #[arg(long, value_name = "URL", requires = "webhook_secret_file")]
    pub webhook_url: Option<String>,
    /// File holding the webhook secret.
    #[arg(long, value_name = "FILE", requires = "webhook_url")]
    pub webhook_secret_file: Option<std::path::PathBuf>,
}

pub use super::workflow_spec::parse_duration;

/// The fleet the arguments describe: the file, or a generated fleet (`acme` with the
/// requested repositories when no organization is named), plus `--token`s.
pub fn fleet_from_args(args: &EmulateArgs) -> Result<FleetSpec, Box<dyn std::error::Error>> {
    let mut spec = match &args.fleet {
        Some(path) => FleetSpec::load(path)?,
        None => {
            let orgs: Vec<&str> = if args.orgs.is_empty() {
                vec!["acme"]
            } else {
                args.orgs.iter().map(String::as_str).collect()
            };
            FleetSpec::generate(&orgs, args.repos_per_org)
        }
    };
    spec.tokens
        .extend(args.tokens.iter().map(|t| TokenSpec::all(t)));
    if let Some(n) = args.requests_per_hour {
        spec.limits.requests_per_hour = n;
    }
    if let Some(n) = args.points_per_minute {
        spec.limits.points_per_minute = Some(n);
    }
    if let Some(n) = args.time_scale {
        spec.limits.time_scale = n.max(1);
    }
    Ok(spec)
}

/// Serves until Ctrl-C (or SIGTERM), after printing
/// `rotor emulator listening on http://127.0.0.1:PORT` and the tokens it accepts.
pub async fn run(args: EmulateArgs) -> Result<(), Box<dyn std::error::Error>> {
    if args.expose_values && !args.listen.ip().is_loopback() {
        return Err(format!(
            "--expose-values serves every decrypted value: it listens on a loopback address only, not {}",
            args.listen
        )
        .into());
    }
    let mut spec = fleet_from_args(&args)?;
    if let (Some(url), Some(file)) = (&args.webhook_url, &args.webhook_secret_file) {
        let secret = std::fs::read_to_string(file)
            .map_err(|e| format!("--webhook-secret-file {}: {e}", file.display()))?;
        spec.webhook = Some(crate::fleet::WebhookSpec {
            url: url.clone(),
            secret: secret.trim().to_string(),
        });
    }
    let tokens = spec.effective_tokens();
    let repos: usize = spec.orgs.iter().map(|o| o.repos.len()).sum();
    let orgs = spec.orgs.len();
    let mut emulator = Emulator::try_new(spec)?.expose_values(args.expose_values);
    if !args.listen.ip().is_unspecified() {
        emulator = emulator.allow_host(&args.listen.ip().to_string());
    }
    for host in &args.allow_hosts {
        emulator = emulator.allow_host(host);
    }
    if let Some(latency) = args.latency {
        emulator = emulator.with_latency(latency);
    }
    let handle = emulator.serve(args.listen).await?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "rotor emulator listening on {}", handle.url)?;
    writeln!(out, "fleet: {orgs} organization(s), {repos} repositories")?;
    for t in &tokens {
        writeln!(out, "token: {}", t.token)?;
    }
    if args.expose_values {
        writeln!(out, "decrypted values: {}/_emulator/secrets", handle.url)?;
    }
    out.flush()?;
    drop(out);
    shutdown_signal().await;
    handle.stop().await;
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_with_their_units() {
        assert_eq!(parse_duration("50ms"), Ok(Duration::from_millis(50)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("75"), Ok(Duration::from_millis(75)));
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("5d").is_err());
    }

    #[test]
    fn arguments_without_a_fleet_generate_one_and_tokens_see_everything() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            args: EmulateArgs,
        }
        let cli = Cli::parse_from([
            "emulate",
            "--orgs",
            "a,b",
            "--repos-per-org",
            "4",
            "--token",
            "t1",
            "--token",
            "t2",
        ]);
        assert_eq!(cli.args.listen.port(), 8080);
        let spec = fleet_from_args(&cli.args).expect("fleet");
        assert_eq!(spec.orgs.iter().map(|o| o.repos.len()).sum::<usize>(), 8);
        assert_eq!(
            spec.effective_tokens(),
            vec![TokenSpec::all("t1"), TokenSpec::all("t2")]
        );
        let default = Cli::parse_from(["emulate"]);
        let spec = fleet_from_args(&default.args).expect("fleet");
        assert_eq!(
            (spec.orgs[0].name.as_str(), spec.orgs[0].repos.len()),
            ("acme", 10)
        );
        assert!(Cli::try_parse_from(["emulate", "--fleet", "f.yaml", "--orgs", "a"]).is_err());
    }
}
