//! The plan's types: per policy a rotation decision, per target and secret an action.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::model::github::{InstallationRepos, OrgAccess, Repo, SecretMeta};
use crate::model::policy::{OnFailure, Policy, TargetSpec, Visibility};
use crate::model::SecretScope;

/// What `apply` will do, and why. Holds no values.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Plan {
    pub generated_at: Option<DateTime<Utc>>,
    pub policies: Vec<PolicyPlan>,
    /// How long apply will take within GitHub's budget (set by the command line, which
    /// knows the budget; `plan` leaves it empty).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimate: Option<Estimate>,
    /// Things worth knowing that block nothing (e.g. a repository secret that shadows an
    /// organization secret of the same name).
    #[serde(default)]
    pub warnings: Vec<PlanWarning>,
}

/// A pre-flight finding that does not stop apply.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PlanWarning {
    pub policy: String,
    pub target: String,
    pub secret: Option<String>,
    pub message: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct PolicyPlan {
    pub policy: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Where the value comes from, e.g. `generate -> vault kv secret/ci/token`.
    pub source: String,
    /// Set when apply will make a new version at the source first.
    pub rotate: Option<RotateReason>,
    /// The source version the targets must hold when no rotation happens.
    pub version: Option<u64>,
    pub last_rotated_at: Option<DateTime<Utc>>,
    pub next_due: Option<DateTime<Utc>>,
    /// When the current value expires, when its issuer says (a runner registration token).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    /// Vault KV paths the value is written to (a runner token's targets), as `mount/path`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub vault_targets: Vec<String>,
    /// A problem that stops the whole policy (e.g. Vault unreachable).
    pub problem: Option<String>,
    pub targets: Vec<TargetPlan>,
    /// Set when the policy has `verify` or `rollout` and a new version must go through a
    /// transaction (or one is open and resumes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub txn: Option<TxnPlan>,
}

/// A transactional rotation as the plan sees it: which version, from which state, in which
/// waves, verified where.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TxnPlan {
    /// The new version; `None` when apply mints it.
    pub version: Option<u64>,
    /// The version the targets hold now; what a rollback restores.
    pub previous: Option<u64>,
    /// The state an interrupted transaction resumes from (`canary_pushed`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resume: Option<String>,
    /// The workflow each verified repository runs (file name or id), if the policy verifies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workflow: Option<String>,
    /// Each run's timeout, in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_secs: Option<u64>,
    /// An open transaction whose value is stored nowhere (lost with the run that minted
    /// it): apply ends it as halted before it starts this one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub abandon: Option<u64>,
    pub waves: Waves,
}

/// The waves and the verification runs of one transactional rotation.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Waves {
    /// Target keys pushed first.
    pub canary: Vec<String>,
    /// Target keys pushed once the canaries are verified.
    pub rest: Vec<String>,
    /// `owner/repo` of each repository that runs the workflow after the canary wave.
    pub verify_canary: Vec<String>,
    /// ... and after the rest.
    pub verify_rest: Vec<String>,
    #[serde(serialize_with = "on_failure_str")]
    pub on_failure: OnFailure,
}

fn on_failure_str<S: serde::Serializer>(o: &OnFailure, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(o.as_str())
}

impl PolicyPlan {
    /// Whether apply has anything to do for this policy.
    pub fn has_work(&self) -> bool {
        self.problem.is_none()
            && (self.txn.is_some() || self.targets.iter().any(|t| t.needs_push()))
    }
}

/// Why a policy rotates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum RotateReason {
    /// The source has no value yet.
    Initial,
    /// A cadence slot has passed since the last rotation.
    Due { due_at: DateTime<Utc> },
    /// The value is older than `max_age`.
    MaxAge { due_at: DateTime<Utc> },
    /// Asked for with `rotor rotate`.
    Forced,
    /// The value is not stored anywhere, and some target lacks it: every target gets a new one.
    Unconvergeable,
}

impl RotateReason {
    pub fn code(&self) -> &'static str {
        match self {
            RotateReason::Initial => "initial",
            RotateReason::Due { .. } => "due",
            RotateReason::MaxAge { .. } => "max_age",
            RotateReason::Forced => "forced",
            RotateReason::Unconvergeable => "unconvergeable",
        }
    }

    pub fn describe(&self) -> String {
        match self {
            RotateReason::Initial => "no version yet".into(),
            RotateReason::Due { due_at } => {
                format!("due since {}", due_at.format("%Y-%m-%d %H:%M:%SZ"))
            }
            RotateReason::MaxAge { due_at } => {
                format!(
                    "older than max_age since {}",
                    due_at.format("%Y-%m-%d %H:%M:%SZ")
                )
            }
            RotateReason::Forced => "forced by rotor rotate".into(),
            RotateReason::Unconvergeable => {
                "value is not stored, and some target lacks it: rotating for every target".into()
            }
        }
    }
}

/// One per policy and target: a fleet's plan holds 100,000s, so the scope and the
/// strings repeated across targets (names, fields, reasons) are shared, not copied.
#[derive(Debug, Clone, Serialize)]
pub struct TargetPlan {
    /// Human key of the scope, e.g. `acme/api`, `acme/api env:production`, `org:acme`.
    pub target: Arc<str>,
    pub scope: Arc<SecretScope>,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "ser_access")]
    pub access: Option<OrgAccess>,
    /// A problem found while observing (e.g. GitHub's 404): the target fails without a push.
    pub problem: Option<String>,
    pub secrets: Vec<SecretPlan>,
}

impl TargetPlan {
    pub fn needs_push(&self) -> bool {
        self.problem.is_none() && self.secrets.iter().any(|s| s.action.writes())
    }

    /// Whether every secret here is someone else's (`conflict`): the target takes no part in
    /// a rotation, its waves or its verification.
    pub fn all_in_conflict(&self) -> bool {
        !self.secrets.is_empty() && self.secrets.iter().all(|s| s.action == Action::Conflict)
    }

    /// Whether apply must seal and PUT a value here (not only update who may use it).
    pub fn needs_value(&self) -> bool {
        self.problem.is_none() && self.secrets.iter().any(|s| s.action.sends_value())
    }
}

fn ser_access<S: serde::Serializer>(a: &Option<OrgAccess>, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let a = a.as_ref().expect("skipped when none");
    let mut m = s.serialize_map(Some(2))?;
    m.serialize_entry("visibility", a.visibility.as_str())?;
    m.serialize_entry("selected_repository_ids", &a.selected_repository_ids)?;
    m.end()
}

#[derive(Debug, Clone, Serialize)]
pub struct SecretPlan {
    /// The GitHub secret name.
    pub name: Arc<str>,
    /// The source field it holds.
    pub field: Arc<str>,
    pub action: Action,
    pub reason: Arc<str>,
}

/// What happens to one secret in one target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// The secret does not exist yet in the target.
    Create,
    /// A new source version replaces the current value.
    Rotate,
    /// The target is behind the source's current version.
    Sync,
    /// Someone changed the secret outside rotor; it is written again.
    Drift,
    /// The value is current, but the repositories a `selected` organization secret is
    /// shared with differ from the policy's: the list is replaced (no value is sent).
    Access,
    /// A secret of that name exists that rotor did not write (there before rotor's first
    /// push, or changed since its last), and the policy has no `takeover: true`: it is left
    /// alone and reported.
    Conflict,
    Unchanged,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Rotate => "rotate",
            Action::Sync => "sync",
            Action::Drift => "drift",
            Action::Access => "access",
            Action::Conflict => "conflict",
            Action::Unchanged => "unchanged",
        }
    }

    /// Whether apply writes anything for it (a value, or who may use it).
    pub fn writes(self) -> bool {
        !matches!(self, Action::Unchanged | Action::Conflict)
    }

    /// Whether apply seals and PUTs a value for it.
    pub fn sends_value(self) -> bool {
        !matches!(self, Action::Unchanged | Action::Access | Action::Conflict)
    }
}

/// What rotor saw before planning. Gathered by `observe`; the planner only reads it.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    pub listings: Listings,
    /// Existing secrets per scope key. A scope absent here was not looked at.
    pub secrets: BTreeMap<String, Result<Vec<SecretMeta>, String>>,
    /// The source's current version per policy (KV-backed sources), or the error reading it.
    pub source_versions: BTreeMap<String, Result<Option<u64>, String>>,
    /// Whether GitHub is reached as a GitHub App (installation tokens).
    pub app_auth: bool,
    /// With App auth, per owner (lower-case): its installation and the repositories it
    /// reaches (`None`: the App is not installed there).
    pub installations: BTreeMap<String, Result<Option<InstallationRepos>, String>>,
    /// The repositories a `selected` organization secret is shared with on GitHub, per
    /// (scope key, upper-case secret name).
    pub selected_repos: BTreeMap<(String, String), Result<Vec<u64>, String>>,
    /// When the source's current version was written, per policy (KV metadata), when known.
    pub source_written: BTreeMap<String, DateTime<Utc>>,
}

#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    /// Policies to rotate now whether due or not (`rotor rotate`).
    pub force: BTreeSet<String>,
    /// Bring targets to each policy's current version and never rotate (a pass for the
    /// repositories of a webhook event): no policy is due, none starts a transaction, and
    /// one that has no version yet is left to its own pass.
    pub hold_version: bool,
}

/// Repository listings per organization, as observed (an error keeps GitHub's message).
#[derive(Debug, Clone, Default)]
pub struct Listings {
    pub orgs: BTreeMap<String, Result<Vec<Repo>, String>>,
}

impl Listings {
    /// The organizations whose listings a policy set needs.
    pub fn orgs_needed<'a>(policies: impl IntoIterator<Item = &'a Policy>) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for p in policies {
            for t in &p.targets {
                match t {
                    TargetSpec::OrgRepos { org, .. } => {
                        out.insert(org.clone());
                    }
                    TargetSpec::OrgSecret {
                        org,
                        visibility: Visibility::Selected,
                        ..
                    } => {
                        out.insert(org.clone());
                    }
                    _ => {}
                }
            }
        }
        out
    }
}

/// The budget apply runs within (from the GitHub client's settings and the last
/// `x-ratelimit-*` headers seen).
#[derive(Debug, Clone, PartialEq)]
pub struct Budget {
    /// Points per minute (GET 1, writes 5); `None`: no points budget.
    pub points_per_minute: Option<u64>,
    /// Requests in flight at once.
    pub max_concurrency: usize,
    /// Least time between two writes.
    pub min_write_gap: Duration,
    /// The primary budget: requests left now, the hourly limit, and seconds until the
    /// reset; `None` when unknown or not followed.
    pub primary: Option<(u64, u64, f64)>,
    /// Typical time of one request (GitHub: a few hundred milliseconds).
    pub latency: Duration,
    /// Divides GitHub's windows (1 against GitHub).
    pub time_scale: u32,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            points_per_minute: Some(900),
            max_concurrency: 100,
            min_write_gap: Duration::ZERO,
            primary: None,
            latency: Duration::from_millis(300),
            time_scale: 1,
        }
    }
}

/// What apply will cost and the least time it can take.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Estimate {
    /// Secret writes (PUTs).
    pub writes: u64,
    /// Public keys to fetch (scopes the ledger holds no key for).
    pub key_fetches: u64,
    pub requests: u64,
    pub points: u64,
    /// Verification runs a transaction dispatches (canary and fleet waves).
    #[serde(default)]
    pub verification_runs: u64,
    /// The requests those runs cost at most (dispatch, default branch, polls until the
    /// policy's timeout), included in `requests` and `points`.
    #[serde(default)]
    pub verification_requests: u64,
    /// The least time apply can take within the budget, in seconds (the runs' own duration
    /// not included).
    pub seconds: f64,
    /// The limit that sets that time: `points`, `primary`, `concurrency` or `write_gap`.
    pub bound_by: &'static str,
    /// The points budget it was estimated for.
    pub points_per_minute: Option<u64>,
}

/// How often a run is polled: from `initial`, doubling up to `max`. Requests go through the
/// GitHub client, so the governor paces them within the credential's budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollSettings {
    pub initial: Duration,
    pub max: Duration,
}

impl Default for PollSettings {
    fn default() -> Self {
        PollSettings {
            initial: Duration::from_secs(5),
            max: Duration::from_secs(30),
        }
    }
}

impl PollSettings {
    /// The polls a run of `duration` costs at most (for the plan's estimate).
    pub fn polls_for(&self, duration: Duration) -> u64 {
        let mut waited = Duration::ZERO;
        let mut step = self.initial.max(Duration::from_millis(1));
        let mut n = 0;
        while waited < duration {
            waited += step;
            step = (step * 2).min(self.max.max(self.initial));
            n += 1;
        }
        n.max(1)
    }
}
