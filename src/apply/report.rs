//! What apply tells its caller: the report (per policy, and totals) and its progress as
//! targets are done.

use serde::Serialize;

/// The outcome of an apply: per policy what happened, and totals.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Report {
    pub policies: Vec<PolicyReport>,
    pub summary: Summary,
    /// Apply was asked to stop (shutdown) before it finished.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub interrupted: bool,
}

#[derive(Debug, Clone, Serialize, Default, PartialEq, Eq)]
pub struct Summary {
    pub policies: usize,
    pub rotated: usize,
    pub pushed: usize,
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub failed: usize,
    /// Organization secrets whose selected repositories were replaced (no value sent).
    #[serde(default)]
    pub access_updated: usize,
    /// Pushes not started because apply was asked to stop.
    #[serde(skip_serializing_if = "is_zero")]
    pub skipped: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct PolicyReport {
    pub policy: String,
    /// Why the source rotated, when it did.
    pub rotated: Option<String>,
    /// The source version the targets were brought to.
    pub version: Option<u64>,
    pub pushed: usize,
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    /// Organization secrets whose selected repositories were replaced.
    pub access_updated: usize,
    pub failures: Vec<Failure>,
    /// A problem that stopped the whole policy.
    pub error: Option<String>,
    /// Pushes not started because apply was asked to stop.
    #[serde(skip_serializing_if = "is_zero")]
    pub skipped: usize,
    /// A transactional rotation (verify/rollout): where it ended and what verified it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transaction: Option<TxnReport>,
    /// Dynamic credentials: the leases rotor revoked, renewed, or failed to renew or revoke.
    #[serde(skip_serializing_if = "Leases::is_empty")]
    pub leases: Leases,
}

/// What happened to the leases of a policy's dynamic credentials in this apply.
#[derive(Debug, Clone, Serialize, Default, PartialEq, Eq)]
pub struct Leases {
    /// Superseded leases revoked after every target got the new credential (a transaction's
    /// after it was verified), and a lost transaction's that no target held.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub revoked: Vec<String>,
    /// Renewable leases renewed because a target still relies on them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub renewed: Vec<String>,
    /// Lease calls Vault refused, with its message: `lease_id: message`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<String>,
}

impl Leases {
    pub fn is_empty(&self) -> bool {
        self.revoked.is_empty() && self.renewed.is_empty() && self.failed.is_empty()
    }
}

/// Where a transaction stands after this apply, and its verification runs.
#[derive(Debug, Clone, Serialize, Default)]
pub struct TxnReport {
    /// The new version.
    pub version: u64,
    /// The version a rollback goes back to.
    pub previous: Option<u64>,
    /// The state reached: `committed`, `rolled_back`, `halted`, or where it stopped.
    pub state: String,
    /// After a rollback: the source version that holds the previous value again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restored_as: Option<u64>,
    /// The canary targets, then the rest (target keys).
    pub canary: Vec<String>,
    pub rest: Vec<String>,
    /// Targets written back with the previous value.
    #[serde(skip_serializing_if = "is_zero")]
    pub rolled_back: usize,
    pub verifications: Vec<Verification>,
}

/// One verification run, as it concluded.
#[derive(Debug, Clone, Serialize, Default, PartialEq, Eq)]
pub struct Verification {
    /// `owner/repo`.
    pub repo: String,
    /// `canary` or `fleet`.
    pub wave: String,
    pub run_id: Option<u64>,
    pub url: Option<String>,
    /// GitHub's conclusion (`success`, `failure`, `cancelled`, `timed_out`,
    /// `startup_failure`, ...), or `none` when the run did not conclude within the timeout,
    /// or `not_started` when the dispatch failed.
    pub conclusion: String,
    /// The job and step that failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// The failing step's last lines, with every occurrence of the new and the previous
    /// value (and their base64 forms) replaced by `***`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub excerpt: Option<String>,
    /// Why it failed, in words (dispatch refused, no conclusion in time, log unavailable).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl Verification {
    pub fn succeeded(&self) -> bool {
        self.conclusion == "success"
    }
}

/// One target (and secret) that did not get its value.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub target: String,
    pub secret: Option<String>,
    pub status: Option<u16>,
    pub message: String,
}

impl Report {
    /// True when every policy and target converged.
    pub fn all_done(&self) -> bool {
        self.summary.failed == 0
            && self.summary.skipped == 0
            && !self.interrupted
            && self.policies.iter().all(|p| p.error.is_none())
    }
}

/// Where apply reports its progress, target by target (a progress bar, log lines).
pub trait Progress: Send + Sync {
    /// Apply starts on a policy with this many targets to push.
    fn policy(&self, _policy: &str, _targets: usize) {}
    /// One target is done: every secret pushed (`ok`), or some failed.
    fn target_done(&self, _ok: bool) {}
    /// Apply is over.
    fn finish(&self) {}
}

/// Reports nothing.
pub struct NoProgress;

impl Progress for NoProgress {}
