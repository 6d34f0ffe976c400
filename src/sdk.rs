//! rotor as a library, for vendors who embed it instead of running the daemon: build a
//! policy in code, plan, apply (with a token or as a GitHub App), and read the typed
//! report. The same validation, planning, sealing and ledger as `rotor apply`.
//!
//! ```
//! use rotor::sdk::{PolicyBuilder, Rotor};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let emulator = github_emulator::Emulator::new(github_emulator::FleetSpec::generate(&["acme"], 3));
//! # let server = emulator.serve("127.0.0.1:0".parse()?).await?;
//! # let state = tempfile::tempdir()?;
//! # let api_url = server.url.clone();
//! // A value rotor generates, pushed as VENDOR_TOKEN to every repository of acme.
//! let policy = PolicyBuilder::new("vendor-token")
//!     .generate(40)
//!     .secret("VENDOR_TOKEN", "value")
//!     .org("acme")
//!     .build()?;
//! let rotor = Rotor::builder()
//!     .api_url(&api_url)
//!     .github_token("emulator-token")
//!     .state_dir(state.path())
//!     .build()?;
//! let report = rotor.apply(&[policy]).await;
//! assert_eq!(report.summary.pushed, 3);
//! assert_eq!(report.summary.failed, 0);
//! # Ok(())
//! # }
//! ```

#![deny(missing_docs)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use secrecy::SecretString;
use serde_json::{json, Map, Value};

use crate::apply::Report;
use crate::context::Context;
use crate::github::{AppConfig, AppKey, Client, GitHubConfig};
use crate::ledger::Ledger;
use crate::pass::Pass;
use crate::plan::Plan;
use crate::policy::{Diagnostic, Policy, PolicySet};
use crate::source::{Sources, VaultConfig};

/// Why a [`Rotor`] or a policy could not be built. Never carries a credential.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The policy breaks a rule a YAML policy would break; every diagnostic, with its code.
    #[error("invalid policy: {}", .0.iter().map(|d| format!("{} {}", d.code, d.message)).collect::<Vec<_>>().join("; "))]
    Policy(Vec<Diagnostic>),
    /// A GitHub or Vault setting is unusable (a malformed URL, an unreadable key).
    #[error("{0}")]
    Settings(String),
    /// The state folder (ledger) cannot be opened, or another rotor holds it.
    #[error(transparent)]
    Ledger(#[from] crate::ledger::journal::LedgerError),
}

/// A policy built in code. It goes through exactly the validation a YAML policy does
/// (`rotor validate`), so [`PolicyBuilder::build`] refuses what the YAML would.
///
/// ```
/// use rotor::sdk::PolicyBuilder;
///
/// let policy = PolicyBuilder::new("npm-token")
///     .vault_kv("secret", "ci/npm")
///     .secret("NPM_TOKEN", "token")
///     .repo("acme", "web")
///     .org_repos("acme", &["payments-*", "!payments-legacy"])
///     .every("30d")
///     .build()
///     .expect("a valid policy");
/// assert_eq!(policy.name, "npm-token");
/// assert_eq!(policy.targets.len(), 2);
///
/// // A bad secret name is refused with the same code as in YAML (E0301).
/// let err = PolicyBuilder::new("bad").generate(32).secret("GITHUB_X", "value").org("acme").build();
/// assert!(err.unwrap_err().to_string().contains("E0301"));
/// ```
#[derive(Debug, Clone)]
pub struct PolicyBuilder {
    doc: Map<String, Value>,
    secrets: Map<String, Value>,
    targets: Vec<Value>,
}

impl PolicyBuilder {
    /// A policy named `name` (`[a-z0-9-]`, unique among the policies applied together).
    pub fn new(name: &str) -> PolicyBuilder {
        let mut doc = Map::new();
        doc.insert("version".into(), json!(1));
        doc.insert("name".into(), json!(name));
        PolicyBuilder {
            doc,
            secrets: Map::new(),
            targets: Vec::new(),
        }
    }

    /// Who owns it (shown in plans, audit records and alerts).
    pub fn owner(mut self, owner: &str) -> Self {
        self.doc.insert("owner".into(), json!(owner));
        self
    }

    /// rotor generates `length` random alphanumeric characters on each rotation and keeps
    /// them nowhere but in GitHub (field `value`).
    pub fn generate(mut self, length: usize) -> Self {
        self.doc
            .insert("source".into(), json!({ "generate": { "length": length } }));
        self
    }

    /// As [`PolicyBuilder::generate`], keeping each value as a new KV v2 version at
    /// `mount`/`path` (check-and-set), so it can be sent again to new repositories.
    pub fn generate_stored(mut self, length: usize, mount: &str, path: &str) -> Self {
        self.doc.insert(
            "source".into(),
            json!({ "generate": { "length": length, "store": { "vault_kv": { "mount": mount, "path": path } } } }),
        );
        self
    }

    /// Vault KV v2 at `mount`/`path` holds the value; each new version is pushed.
    pub fn vault_kv(mut self, mount: &str, path: &str) -> Self {
        self.doc.insert(
            "source".into(),
            json!({ "vault_kv": { "mount": mount, "path": path } }),
        );
        self
    }

    /// GitHub secret `name` gets the source's field `field` (`value` for `generate`).
    pub fn secret(mut self, name: &str, field: &str) -> Self {
        self.secrets.insert(name.into(), json!(field));
        self
    }

    /// Repository secrets in every repository of organization `org`.
    pub fn org(mut self, org: &str) -> Self {
        self.targets.push(json!({ "org": org }));
        self
    }

    /// Repository secrets in the repositories of `org` whose names match `globs`
    /// (`payments-*`; a leading `!` excludes).
    pub fn org_repos(mut self, org: &str, globs: &[&str]) -> Self {
        self.targets.push(json!({ "org": org, "repos": globs }));
        self
    }

    /// Repository secrets in `owner/repo`.
    pub fn repo(mut self, owner: &str, repo: &str) -> Self {
        self.targets
            .push(json!({ "repo": format!("{owner}/{repo}") }));
        self
    }

    /// Rotate every `interval` (`90s`, `12h`, `30d`).
    pub fn every(mut self, interval: &str) -> Self {
        self.doc
            .insert("schedule".into(), json!({ "every": interval }));
        self
    }

    /// Validates the policy; every problem at once, with the codes of `docs/policy.md`.
    pub fn build(self) -> Result<Policy, Error> {
        let mut doc = self.doc;
        let name = doc
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("policy")
            .to_string();
        doc.insert("secrets".into(), Value::Object(self.secrets));
        doc.insert("targets".into(), Value::Array(self.targets));
        // JSON is YAML: the policy is checked by the very validator of policy files.
        let text = serde_json::to_string_pretty(&Value::Object(doc)).expect("JSON serializes");
        let file = PathBuf::from(format!("{name}.json"));
        let mut policies = crate::policy::load_str(&file, &text).map_err(Error::Policy)?;
        Ok(policies.remove(0))
    }
}

/// Settings for a [`Rotor`]; see [`Rotor::builder`].
#[derive(Debug, Default)]
pub struct RotorBuilder {
    github: GitHubConfig,
    vault: Option<VaultConfig>,
    state_dir: Option<PathBuf>,
    concurrency: Option<usize>,
}

impl RotorBuilder {
    /// GitHub's API root (default `https://api.github.com`; GitHub Enterprise Server:
    /// `https://HOST/api/v3`).
    pub fn api_url(mut self, url: &str) -> Self {
        self.github.api_url = url.to_string();
        self
    }

    /// Reach GitHub with a token.
    pub fn github_token(mut self, token: &str) -> Self {
        self.github.token = Some(SecretString::from(token.to_string()));
        self
    }

    /// Reach GitHub as a GitHub App: `issuer` is its id or client id, `private_key_pem` its
    /// private key. Each organization is served by its installation's token (minted with
    /// the permissions rotor needs, refreshed before it expires).
    pub fn github_app(mut self, issuer: &str, private_key_pem: SecretString) -> Self {
        self.github.app = Some(AppConfig {
            issuer: issuer.to_string(),
            key: AppKey::Pem(private_key_pem),
        });
        self
    }

    /// Vault / OpenBao, for policies whose source is there.
    pub fn vault(mut self, config: VaultConfig) -> Self {
        self.vault = Some(config);
        self
    }

    /// The ledger's folder (what was pushed, with which key, at which version). One
    /// process at a time may hold it. Default: `rotor-state` in the working directory.
    pub fn state_dir(mut self, dir: &Path) -> Self {
        self.state_dir = Some(dir.to_path_buf());
        self
    }

    /// Requests in flight at once (default 16; GitHub's limits are kept whatever it is).
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = Some(n.max(1));
        self
    }

    /// Connects (no network I/O yet) and opens the ledger.
    pub fn build(self) -> Result<Rotor, Error> {
        let state_dir = self
            .state_dir
            .unwrap_or_else(|| PathBuf::from("rotor-state"));
        let mut github = self.github;
        github.listing_cache = Some(state_dir.join("listings.json"));
        let client = Client::new(github).map_err(|e| Error::Settings(e.to_string()))?;
        let sources = Sources::new(self.vault).map_err(|e| Error::Settings(e.to_string()))?;
        let ledger = Ledger::open(&state_dir)?;
        Ok(Rotor {
            ctx: Context::new(client, sources, ledger, self.concurrency.unwrap_or(16)),
        })
    }
}

/// rotor embedded: plans and applies policies against GitHub (and Vault), recording what
/// it did in its ledger.
pub struct Rotor {
    ctx: Context,
}

impl Rotor {
    /// Settings, starting from GitHub's public API and no credential.
    pub fn builder() -> RotorBuilder {
        RotorBuilder::default()
    }

    /// What [`Rotor::apply`] would do now, per policy and target, with reasons; no value
    /// is read and nothing is written.
    ///
    /// ```
    /// # use rotor::sdk::{PolicyBuilder, Rotor};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let emulator = github_emulator::Emulator::new(github_emulator::FleetSpec::generate(&["acme"], 2));
    /// # let server = emulator.serve("127.0.0.1:0".parse()?).await?;
    /// # let state = tempfile::tempdir()?;
    /// let rotor = Rotor::builder().api_url(&server.url).github_token("emulator-token").state_dir(state.path()).build()?;
    /// let policy = PolicyBuilder::new("p").generate(32).secret("TOKEN", "value").org("acme").build()?;
    /// let plan = rotor.plan(&[policy]).await;
    /// assert_eq!(plan.policies[0].targets.len(), 2);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn plan(&self, policies: &[Policy]) -> Plan {
        Pass::new(&self.ctx)
            .plan(&set_of(policies), &BTreeSet::new())
            .await
    }

    /// Brings every target of `policies` to its source's current version, rotating the
    /// policies that are due (or have never rotated); one failing target never stops the
    /// others. The report says per policy and target what happened, in GitHub's words
    /// for failures.
    pub async fn apply(&self, policies: &[Policy]) -> Report {
        Pass::new(&self.ctx)
            .run(&set_of(policies), &BTreeSet::new())
            .await
            .1
    }

    /// As [`Rotor::apply`], rotating `policy` now whether due or not.
    ///
    /// ```
    /// # use rotor::sdk::{PolicyBuilder, Rotor};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let emulator = github_emulator::Emulator::new(github_emulator::FleetSpec::generate(&["acme"], 1));
    /// # let server = emulator.serve("127.0.0.1:0".parse()?).await?;
    /// # let state = tempfile::tempdir()?;
    /// # let rotor = Rotor::builder().api_url(&server.url).github_token("emulator-token").state_dir(state.path()).build()?;
    /// let policy = PolicyBuilder::new("p").generate(32).secret("TOKEN", "value").org("acme").build()?;
    /// rotor.apply(std::slice::from_ref(&policy)).await;
    /// let again = rotor.rotate(&policy).await;
    /// assert!(again.policies[0].rotated.is_some());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn rotate(&self, policy: &Policy) -> Report {
        let force = BTreeSet::from([policy.name.clone()]);
        Pass::new(&self.ctx)
            .run(&set_of(std::slice::from_ref(policy)), &force)
            .await
            .1
    }

    /// The GitHub App's installations (as the App: `GET /app/installations`), each with
    /// its account — the organizations a vendor provisions. Needs [`RotorBuilder::github_app`].
    pub async fn installations(
        &self,
    ) -> Result<Vec<crate::model::Installation>, crate::github::GitHubError> {
        self.ctx.github.app_installations().await
    }

    /// The underlying context (GitHub client, sources, ledger), for what this facade does
    /// not cover.
    pub fn context(&self) -> &Context {
        &self.ctx
    }
}

fn set_of(policies: &[Policy]) -> PolicySet {
    let mut policies = policies.to_vec();
    policies.sort_by(|a, b| a.name.cmp(&b.name));
    PolicySet { policies }
}
