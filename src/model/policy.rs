//! The validated policy model: what every module downstream of `policy` accepts.
//!
//! Values of these types exist only after `policy::load` has checked them; nothing here
//! holds a secret value.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

pub use crate::model::scope::{App, Visibility};

/// Every policy found under a policies folder, valid and with unique names.
#[derive(Debug, Clone, Default)]
pub struct PolicySet {
    pub policies: Vec<Policy>,
}

impl PolicySet {
    pub fn get(&self, name: &str) -> Option<&Policy> {
        self.policies.iter().find(|p| p.name == name)
    }
}

/// One validated policy.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Unique across the set; `[a-z0-9-]`.
    pub name: String,
    pub description: Option<String>,
    pub owner: Option<String>,
    pub source: SourceSpec,
    /// GitHub secret name (as written, validated) -> field of the source. Empty as loaded
    /// for a whole-path sync (`from_keys`), whose names come from the KV path's keys at
    /// each pass (see `expand`).
    pub secrets: BTreeMap<String, String>,
    /// `secrets: { from_keys, name }`: every selected key of the `vault_kv` path.
    pub from_keys: Option<crate::model::template::FromKeys>,
    pub targets: Vec<TargetSpec>,
    pub schedule: Option<Schedule>,
    /// Workflow runs that prove a new value works before the rotation counts.
    pub verify: Option<Verify>,
    /// How a new value spreads: canary targets first, then the rest.
    pub rollout: Option<Rollout>,
    /// Whether a secret of the same name that rotor did not write (there before rotor's
    /// first push, or changed since its last) is overwritten; otherwise it is a conflict.
    pub takeover: bool,
    /// The file the policy came from (for messages).
    pub file: PathBuf,
}

impl Policy {
    /// Whether a rotation of this policy is a transaction (canary, verification, rollback):
    /// it has `verify` or `rollout`.
    pub fn is_transactional(&self) -> bool {
        self.verify.is_some() || self.rollout.is_some()
    }
}

/// A policy's `verify` block: a workflow dispatched in each verified repository after the
/// new value reached it; only a run that concludes `success` within `timeout` proves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verify {
    pub workflow: WorkflowRef,
    /// Branch or tag to run on; `None`: the repository's default branch.
    pub git_ref: Option<String>,
    /// Workflow inputs (at most 25), as strings: GitHub passes every input as a string.
    pub inputs: BTreeMap<String, String>,
    /// Per run, from dispatch to conclusion. Default 15 minutes.
    pub timeout: Duration,
    /// Repository-name globs (a leading `!` excludes) choosing which targets' repositories
    /// run it. Empty: every repository a repository or environment target writes to. For
    /// organization targets it is required (the repositories that use the secret).
    pub repos: Vec<String>,
}

/// The workflow `verify` dispatches: a file name in `.github/workflows/` or a numeric id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkflowRef {
    File(String),
    Id(u64),
}

impl WorkflowRef {
    /// As it goes into `…/actions/workflows/{workflow_id}/…`.
    pub fn path_segment(&self) -> String {
        match self {
            WorkflowRef::File(f) => f.clone(),
            WorkflowRef::Id(id) => id.to_string(),
        }
    }
}

/// A policy's `rollout` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rollout {
    pub canary: Canary,
    pub on_failure: OnFailure,
}

/// Which targets get a new value first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Canary {
    /// The first N targets in name order.
    Count(usize),
    /// This share of the targets (1..=100), rounded up, in name order.
    Percent(u8),
    /// Targets whose repository name matches one of these globs (a leading `!` excludes).
    Repos(Vec<String>),
}

/// What a failed verification does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnFailure {
    /// Re-push the previous value to every target that got the new one; the new version is
    /// marked failed and never pushed again.
    #[default]
    Rollback,
    /// Stop pushing and leave what was pushed.
    Halt,
}

impl OnFailure {
    pub fn as_str(self) -> &'static str {
        match self {
            OnFailure::Rollback => "rollback",
            OnFailure::Halt => "halt",
        }
    }
}

/// Where a policy's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceSpec {
    /// rotor generates the value; `store` keeps each fresh value as a new KV v2 version.
    Generate {
        length: usize,
        charset: Charset,
        prefix: Option<String>,
        store: Option<KvRef>,
    },
    /// Vault KV v2 holds the value; every new version is pushed.
    VaultKv(KvRef),
    /// A dynamic engine path read for fresh credentials on each rotation.
    VaultRead {
        path: String,
        /// With parameters, the credential is issued by a write (`POST`), as PKI's
        /// `pki/issue/{role}` and SSH's `ssh/creds/{role}` do; without, by a read.
        params: BTreeMap<String, String>,
    },
    /// A self-hosted runner registration token GitHub mints for an organization (or one
    /// repository, `repo`); it lives an hour and goes to `vault_kv` targets.
    GithubRunnerToken { owner: String, repo: Option<String> },
}

impl SourceSpec {
    /// Whether the policy's value is kept at a source rotor can read again.
    pub fn is_stored(&self) -> bool {
        matches!(
            self,
            SourceSpec::VaultKv(_) | SourceSpec::Generate { store: Some(_), .. }
        )
    }

    /// Whether rotor mints new values for this source (rather than following Vault's versions).
    pub fn mints(&self) -> bool {
        matches!(
            self,
            SourceSpec::Generate { .. }
                | SourceSpec::VaultRead { .. }
                | SourceSpec::GithubRunnerToken { .. }
        )
    }

    /// The fields this source can yield, when known statically (`None`: any field).
    pub fn known_fields(&self) -> Option<Vec<String>> {
        match self {
            SourceSpec::Generate { .. } => Some(vec!["value".to_string()]),
            SourceSpec::VaultKv(kv) => kv.key.as_ref().map(|k| vec![k.clone()]),
            SourceSpec::VaultRead { .. } => None,
            SourceSpec::GithubRunnerToken { .. } => Some(vec!["token".to_string()]),
        }
    }
}

/// A KV v2 location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvRef {
    pub mount: String,
    pub path: String,
    /// For `generate.store`: the field the generated value is written to (default `value`).
    /// For `vault_kv`: restricts the fields read to this one.
    pub key: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Charset {
    Alphanumeric,
    Hex,
    Base64Url,
    Printable,
    Custom(String),
}

impl Charset {
    /// The alphabet the generator draws from (each char equally likely).
    pub fn alphabet(&self) -> Vec<char> {
        match self {
            Charset::Alphanumeric => ('A'..='Z').chain('a'..='z').chain('0'..='9').collect(),
            Charset::Hex => ('0'..='9').chain('a'..='f').collect(),
            Charset::Base64Url => ('A'..='Z')
                .chain('a'..='z')
                .chain('0'..='9')
                .chain(['-', '_'])
                .collect(),
            Charset::Printable => (0x21u8..=0x7e).map(char::from).collect(),
            Charset::Custom(a) => {
                let mut v: Vec<char> = a.chars().collect();
                v.sort_unstable();
                v.dedup();
                v
            }
        }
    }
}

/// Repository visibility filter for selection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RepoVisibility {
    Public,
    Private,
    Internal,
}

/// Which repositories of an organization a target selects.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RepoSelector {
    /// Globs a repository name must match (any of them); empty means every repository.
    pub include: Vec<String>,
    /// Globs (written with a leading `!`) that exclude a repository.
    pub exclude: Vec<String>,
    /// Topics a repository must all carry.
    pub topics: Vec<String>,
    /// Repository visibilities accepted; empty means any.
    pub visibility: Vec<RepoVisibility>,
    pub include_archived: bool,
    pub include_disabled: bool,
}

/// One entry of a policy's `targets`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetSpec {
    /// One repository (`repo: owner/name`), optionally an environment of it.
    Repo {
        owner: String,
        repo: String,
        environment: Option<String>,
        app: App,
    },
    /// Repository (or environment) secrets in every matching repository of an org.
    OrgRepos {
        org: String,
        selector: RepoSelector,
        environment: Option<String>,
        app: App,
    },
    /// A Vault KV v2 path (`vault_kv: {mount, path, key}`): where a `github_runner_token`
    /// is written, with its `expires_at`, by check-and-set.
    VaultKv(KvRef),
    /// One organization secret.
    OrgSecret {
        org: String,
        visibility: Visibility,
        /// With `visibility: selected`: the repositories that may use it.
        selector: Option<RepoSelector>,
        app: App,
    },
}

/// When a policy turns over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    pub cadence: Option<Cadence>,
    /// IANA time zone name; `UTC` when absent.
    pub timezone: String,
    pub jitter: Option<Duration>,
    pub max_age: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cadence {
    /// A cron expression as written (5 fields, or 6 with seconds).
    Cron(String),
    Every(Duration),
}
