//! Flags and subcommands (clap). Every setting can also come from the environment.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "rotor",
    version,
    about = "Keeps GitHub encrypted secrets fresh across a fleet of repositories."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Log format on stderr (the level comes from RUST_LOG, default `warn`).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Output {
    #[default]
    Text,
    Json,
    /// Markdown, for a pull request comment or `$GITHUB_STEP_SUMMARY` (`plan`; other
    /// commands print text).
    Markdown,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Parse and check every policy; print every error, not only the first. With
    /// `--online`, also ask Vault and GitHub (writing nothing) whether they would accept it.
    Validate(ValidateArgs),
    /// Show, per policy and target, what apply would do and why. Never shows values.
    Plan(PlanArgs),
    /// Carry out the plan now.
    Apply(RunArgs),
    /// Rotate one policy now, whether due or not.
    Rotate(RotateArgs),
    /// Make an earlier stored version current again and push it to every target
    /// (verified when the policy has `verify`).
    Rollback(RollbackArgs),
    /// What the ledger knows: last rotation per policy and target, next due time, failures.
    Status(StatusArgs),
    /// Run as a daemon: every policy on its cadence, with health, readiness and metrics over
    /// HTTP; SIGHUP reloads the policies, SIGTERM/SIGINT shut down cleanly.
    Run(RunDaemonArgs),
    /// Print shell completions: `rotor completions bash > /etc/bash_completion.d/rotor`.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Print rotor's man page (roff): `rotor man > /usr/local/share/man/man1/rotor.1`.
    Man,
    /// Print the JSON Schema (draft 2020-12) of the policy format, for editors.
    Schema,
    /// Run the GitHub emulator on its own (for sandboxes and your own tests).
    #[cfg(feature = "emulator")]
    Emulate(github_emulator::EmulateArgs),
    /// Rotate the example policies against the built-in emulator and a local OpenBao dev
    /// server, then check every value the emulator decrypted.
    #[cfg(feature = "emulator")]
    Sandbox(crate::sandbox::SandboxArgs),
}

#[derive(Debug, Args, Clone)]
pub struct PolicyArgs {
    /// Folder of policy files.
    #[arg(long, env = "ROTOR_POLICIES", default_value = "policies")]
    pub policies: PathBuf,
    /// Vault paths policies may use as sources: globs over mount/path separated by commas
    /// (secret/ci/*,database/creds/*). Without it, any path but Vault's own (auth/, sys/,
    /// cubbyhole/, identity/).
    #[arg(long, env = "ROTOR_ALLOWED_SOURCES", value_parser = parse_source_rules)]
    pub allowed_sources: Option<rotor::policy::SourceRules>,
}

impl PolicyArgs {
    /// The operator's rules for Vault sources.
    pub fn source_rules(&self) -> rotor::policy::SourceRules {
        self.allowed_sources.clone().unwrap_or_default()
    }
}

fn parse_source_rules(spec: &str) -> Result<rotor::policy::SourceRules, String> {
    rotor::policy::SourceRules::from_spec(spec)
}

#[derive(Debug, Args, Clone)]
pub struct CommonArgs {
    #[command(flatten)]
    pub policy_dir: PolicyArgs,
    /// Folder of the embedded ledger.
    #[arg(long, env = "ROTOR_STATE_DIR", default_value = "rotor-state")]
    pub state_dir: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
    /// Targets handled at once. GitHub allows 100 requests in flight per token, and the
    /// client's governor keeps to that (and to the points budget) whatever this says; with
    /// `--github-limits off` the requests in flight follow this, past 100 if asked.
    #[arg(long, env = "ROTOR_CONCURRENCY", default_value_t = 100)]
    pub concurrency: usize,
    #[command(flatten)]
    pub limits: LimitArgs,
    /// Audit log (JSON lines, one record per rotation and push; never a value).
    /// Default: `audit.jsonl` in the state folder.
    #[arg(long, env = "ROTOR_AUDIT_LOG")]
    pub audit_log: Option<PathBuf>,
    /// First wait between two polls of a verification run (doubling, at most 30s or this).
    #[arg(long, env = "ROTOR_VERIFY_POLL", default_value = "5s", value_parser = rotor::github::governor::parse_gap)]
    pub verify_poll: Duration,
}

impl CommonArgs {
    /// How verification runs are polled.
    pub fn poll_settings(&self) -> rotor::model::plan::PollSettings {
        rotor::model::plan::PollSettings {
            initial: self.verify_poll,
            max: self.verify_poll.max(Duration::from_secs(30)),
        }
    }

    /// `--audit-log`, or `audit.jsonl` in the state folder.
    pub fn audit_path(&self) -> PathBuf {
        self.audit_log
            .clone()
            .unwrap_or_else(|| self.state_dir.join(rotor::audit::AUDIT_FILE))
    }
}

/// How rotor keeps within GitHub's rate limits (see docs/scale.md).
#[derive(Debug, Args, Clone, Default)]
pub struct LimitArgs {
    /// Rate limits to keep to: `github` (published limits: 900 points a minute, the hourly
    /// budget from x-ratelimit-* headers) or `off` (GitHub Enterprise Server's default).
    #[arg(long, env = "ROTOR_GITHUB_LIMITS", value_name = "github|off")]
    pub github_limits: Option<rotor::github::Limits>,
    /// Points per minute instead of the default (reads 1 point, writes 5); 0 turns it off.
    #[arg(long, env = "ROTOR_POINTS_PER_MINUTE", value_name = "N")]
    pub points_per_minute: Option<u64>,
    /// Least time between two writes, e.g. 1s (GitHub's best practice for bulk writes).
    #[arg(long, env = "ROTOR_MIN_WRITE_GAP", value_name = "DURATION", value_parser = rotor::github::governor::parse_gap)]
    pub min_write_gap: Option<std::time::Duration>,
    /// Divide GitHub's limit windows by N (only against a time-scaled emulator).
    #[arg(long, env = "ROTOR_TIME_SCALE", value_name = "N", hide = true)]
    pub time_scale: Option<u32>,
}

impl LimitArgs {
    /// Puts these settings on a GitHub client configuration.
    pub fn apply_to(&self, config: &mut rotor::github::GitHubConfig) {
        if let Some(l) = self.github_limits {
            config.limits = l;
        }
        if let Some(p) = self.points_per_minute {
            config.points_per_minute = Some(p);
        }
        if let Some(g) = self.min_write_gap {
            config.min_write_gap = g;
        }
        if let Some(t) = self.time_scale {
            config.time_scale = t.max(1);
        }
    }
}

#[derive(Debug, Args, Clone)]
pub struct RunArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Only this policy.
    #[arg(long)]
    pub policy: Option<String>,
}

#[derive(Debug, Args, Clone)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub policy_dir: PolicyArgs,
    /// Also check with the configured credentials, writing nothing, that Vault lets the
    /// token read every source and write every store, and that GitHub lets the credential
    /// see every target and write its secrets. Exit 2 with every problem at file:line:col.
    #[arg(long)]
    pub online: bool,
    /// Folder of the embedded ledger (read, for what was pushed before; with --online).
    #[arg(long, env = "ROTOR_STATE_DIR", default_value = "rotor-state")]
    pub state_dir: PathBuf,
}

#[derive(Debug, Args, Clone)]
pub struct PlanArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// Exit 0 when nothing would change, 2 when changes are pending, 1 when some policy or
    /// target cannot be planned, and 3 (not 2) for invalid policies or settings — as
    /// Terraform's `plan -detailed-exitcode`, with bad input kept apart.
    #[arg(long)]
    pub detailed_exitcode: bool,
}

#[derive(Debug, Args, Clone)]
pub struct RotateArgs {
    /// The policy to rotate.
    pub name: String,
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(Debug, Args, Clone)]
pub struct RollbackArgs {
    /// The policy to roll back.
    pub name: String,
    /// The version to go back to; default: the one before the current (skipping versions
    /// that failed verification).
    #[arg(long, value_name = "VERSION")]
    pub to: Option<u64>,
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(Debug, Args, Clone)]
pub struct StatusArgs {
    /// Folder of the embedded ledger.
    #[arg(long, env = "ROTOR_STATE_DIR", default_value = "rotor-state")]
    pub state_dir: PathBuf,
    /// Folder of policy files (used for next due times when present).
    #[arg(long, env = "ROTOR_POLICIES", default_value = "policies")]
    pub policies: PathBuf,
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

#[derive(Debug, Args, Clone)]
pub struct RunDaemonArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Address of the HTTP listener (`/healthz`, `/readyz`, `/metrics`).
    #[arg(long, env = "ROTOR_LISTEN", default_value = "127.0.0.1:9464")]
    pub listen: SocketAddr,
    /// How long in-flight pushes may take to finish after SIGTERM/SIGINT.
    #[arg(long, env = "ROTOR_SHUTDOWN_TIMEOUT", default_value = "30s", value_parser = rotor::policy::duration::parse_duration)]
    pub shutdown_timeout: Duration,
    /// How often Vault-held sources are checked for a new version.
    #[arg(long, env = "ROTOR_VAULT_POLL_INTERVAL", default_value = "1m", value_parser = rotor::policy::duration::parse_duration)]
    pub vault_poll_interval: Duration,
    /// First retry delay for targets left unconverged (doubles per failed pass, at most 15m).
    #[arg(long, env = "ROTOR_RETRY_BACKOFF", default_value = "15s", value_parser = rotor::policy::duration::parse_duration)]
    pub retry_backoff: Duration,
    /// URL that receives a JSON alert when a pass fails or targets stay unconverged. A
    /// flag shows in `ps`: prefer ROTOR_ALERT_WEBHOOK or --alert-webhook-file.
    #[arg(long, env = "ROTOR_ALERT_WEBHOOK", hide_env_values = true)]
    pub alert_webhook: Option<secrecy::SecretString>,
    /// File holding the alert webhook URL (read once at start, surrounding whitespace
    /// dropped).
    #[arg(
        long,
        env = "ROTOR_ALERT_WEBHOOK_FILE",
        conflicts_with = "alert_webhook"
    )]
    pub alert_webhook_file: Option<PathBuf>,
    /// File holding the GitHub webhook secret: `POST /webhooks/github` is served only with
    /// a secret (this, or GITHUB_WEBHOOK_SECRET).
    #[arg(long, env = "GITHUB_WEBHOOK_SECRET_FILE")]
    pub webhook_secret_file: Option<PathBuf>,
    /// File holding the control API's bearer token: `/v1/...` is served only with one.
    #[arg(long, env = "ROTOR_API_TOKEN_FILE")]
    pub api_token_file: Option<PathBuf>,
    /// How long targets may stay unconverged before an alert.
    #[arg(long, env = "ROTOR_ALERT_AFTER", default_value = "1h", value_parser = rotor::policy::duration::parse_duration)]
    pub alert_after: Duration,
}

/// A secret read from a file, surrounding whitespace dropped; an empty one is refused.
pub fn secret_from_file(
    flag: &str,
    path: &std::path::Path,
) -> Result<secrecy::SecretString, String> {
    let text = zeroize::Zeroizing::new(
        std::fs::read_to_string(path).map_err(|e| format!("{flag} {}: {e}", path.display()))?,
    );
    let value = text.trim();
    if value.is_empty() {
        return Err(format!("{flag} {} is empty", path.display()));
    }
    Ok(secrecy::SecretString::from(value.to_string()))
}

impl RunDaemonArgs {
    /// The webhook secret, from `--webhook-secret-file` or `GITHUB_WEBHOOK_SECRET`.
    pub fn webhook_secret(&self) -> Result<Option<secrecy::SecretString>, String> {
        if let Some(path) = &self.webhook_secret_file {
            return secret_from_file("--webhook-secret-file", path).map(Some);
        }
        Ok(std::env::var("GITHUB_WEBHOOK_SECRET")
            .ok()
            .filter(|v| !v.trim().is_empty())
            .map(|v| secrecy::SecretString::from(v.trim().to_string())))
    }

    /// The control API's token, from `--api-token-file`.
    pub fn api_token(&self) -> Result<Option<secrecy::SecretString>, String> {
        self.api_token_file
            .as_deref()
            .map(|p| secret_from_file("--api-token-file", p))
            .transpose()
    }

    /// The alert webhook URL, from the flag, the environment or the file.
    pub fn alert_webhook(&self) -> Result<Option<secrecy::SecretString>, String> {
        if let Some(url) = &self.alert_webhook {
            return Ok(Some(url.clone()));
        }
        let Some(path) = &self.alert_webhook_file else {
            return Ok(None);
        };
        let text = zeroize::Zeroizing::new(
            std::fs::read_to_string(path)
                .map_err(|e| format!("--alert-webhook-file {}: {e}", path.display()))?,
        );
        let url = text.trim();
        if url.is_empty() {
            return Err(format!("--alert-webhook-file {} is empty", path.display()));
        }
        Ok(Some(secrecy::SecretString::from(url.to_string())))
    }
}
