//! The daemon's settings (from `rotor run` flags) and the errors that stop it from starting.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;

/// Everything `rotor run` is told.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    /// Folder of policy files (read again on SIGHUP).
    pub policies_dir: PathBuf,
    /// The operator's rules for Vault sources, applied at every reload.
    pub source_rules: crate::policy::SourceRules,
    /// Folder of the ledger, held locked while the daemon runs.
    pub state_dir: PathBuf,
    pub audit_log: PathBuf,
    /// Requests in flight at once within one pass.
    pub concurrency: usize,
    /// Address of the HTTP listener.
    pub listen: SocketAddr,
    /// How long in-flight work may take to finish after SIGTERM/SIGINT.
    pub shutdown_timeout: Duration,
    /// How often KV-backed sources are checked for a new version.
    pub vault_poll_interval: Duration,
    /// First retry delay for a policy whose targets did not converge (doubling).
    pub retry_backoff: Duration,
    /// Where alerts are POSTed (may hold a credential: never logged).
    pub alert_webhook: Option<SecretString>,
    /// How long targets may stay unconverged before an alert.
    pub alert_after: Duration,
    /// How verification runs are polled.
    pub verify_poll: crate::model::plan::PollSettings,
    /// The webhook secret: `POST /webhooks/github` is served only with one.
    pub webhook_secret: Option<SecretString>,
    /// The control API's bearer token: `/v1/...` is served only with one.
    pub api_token: Option<SecretString>,
}

/// Why the daemon could not start (once running, it reports problems and goes on).
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Ledger(#[from] crate::ledger::journal::LedgerError),
    #[error(transparent)]
    Audit(#[from] crate::audit::AuditError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot handle signals: {0}")]
    Signals(#[source] std::io::Error),
    #[error("{0}")]
    Settings(String),
}
