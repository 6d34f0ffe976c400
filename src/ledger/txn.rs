//! Transaction records: the states a rotation with `verify` or `rollout` goes through, and
//! the leases of dynamic credentials. Never a value.
//!
//! ```text
//! pending -> canary_pushed -> canary_verified -> fleet_pushed -> verified -> committed
//!    \____________\_______________\__________________\______> failed -> rolled_back | halted
//! ```
//!
//! A transaction is named by its policy and its new version. Each state is appended to the
//! journal when it is reached, so a run that was killed resumes from the last one written.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Where a transaction stands.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "snake_case")]
pub enum TxnState {
    /// The new version exists at the source (minted and stored, or read); nothing pushed.
    Pending,
    /// Every canary target holds the new version.
    CanaryPushed,
    /// Every canary repository's verification run concluded `success`.
    CanaryVerified,
    /// Every target holds the new version.
    FleetPushed,
    /// Every verification run of the fleet concluded `success`.
    Verified,
    /// Done: the previous lease (if any) revoked, the new version is the policy's.
    Committed,
    /// A verification failed (or could not run); rollback or halt follows.
    Failed,
    /// The targets that got the new version hold the previous value again.
    RolledBack,
    /// Stopped after a failure, leaving what was pushed (`on_failure: halt`).
    Halted,
}

impl TxnState {
    pub fn as_str(self) -> &'static str {
        match self {
            TxnState::Pending => "pending",
            TxnState::CanaryPushed => "canary_pushed",
            TxnState::CanaryVerified => "canary_verified",
            TxnState::FleetPushed => "fleet_pushed",
            TxnState::Verified => "verified",
            TxnState::Committed => "committed",
            TxnState::Failed => "failed",
            TxnState::RolledBack => "rolled_back",
            TxnState::Halted => "halted",
        }
    }

    /// Whether the transaction is over (nothing left to resume).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            TxnState::Committed | TxnState::RolledBack | TxnState::Halted
        )
    }

    /// Every state, in the order of a transaction that goes well, then the failure states.
    pub const ALL: [TxnState; 9] = [
        TxnState::Pending,
        TxnState::CanaryPushed,
        TxnState::CanaryVerified,
        TxnState::FleetPushed,
        TxnState::Verified,
        TxnState::Committed,
        TxnState::Failed,
        TxnState::RolledBack,
        TxnState::Halted,
    ];
}

/// A dynamic credential's lease, as Vault described it when it was issued. Never the value.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LeaseInfo {
    pub lease_id: String,
    /// The lease's TTL in seconds when issued.
    pub duration_secs: u64,
    pub renewable: bool,
    pub issued_at: DateTime<Utc>,
}

/// One transaction state reached.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TxnRecord {
    pub policy: String,
    /// The new version (the transaction's name within its policy).
    pub version: u64,
    /// The version the targets held before; what a rollback goes back to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<u64>,
    pub state: TxnState,
    pub at: DateTime<Utc>,
    /// Why it failed, rolled back or halted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// With `rolled_back`: the version that now holds the previous value (a write-back of
    /// `previous` as a new KV version), which is what the rolled-back targets hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restored_as: Option<u64>,
    /// With `pending` for a dynamic source: the new credential's lease.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<LeaseInfo>,
}

/// A lease revoked or renewed by rotor.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LeaseRecord {
    pub policy: String,
    pub lease_id: String,
    /// `revoked` or `renewed`.
    pub action: String,
    pub at: DateTime<Utc>,
    /// With `renewed`: the TTL Vault granted, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_secs: Option<u64>,
}

/// The last transaction of a policy, as the ledger folds it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TxnStatus {
    pub version: u64,
    pub previous: Option<u64>,
    pub state: TxnState,
    pub since: DateTime<Utc>,
    pub message: Option<String>,
    pub restored_as: Option<u64>,
    /// The new credential's lease (dynamic sources).
    pub lease: Option<LeaseInfo>,
}

/// What the ledger knows of a policy's transactions and leases.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct TxnBook {
    /// The latest transaction (open or final).
    pub last: Option<TxnStatus>,
    /// Versions that failed verification: never pushed again.
    pub failed_versions: BTreeSet<u64>,
    /// The lease of the credential the targets rely on now (a committed dynamic value).
    pub lease: Option<LeaseInfo>,
    /// Leases rotor revoked (kept so a resumed run does not revoke twice).
    #[serde(skip)]
    pub revoked: BTreeSet<String>,
}

impl TxnBook {
    /// Folds one transaction record.
    pub fn apply(&mut self, r: &TxnRecord) {
        let same = self.last.as_ref().is_some_and(|l| l.version == r.version);
        if !same {
            // A newer transaction starts: only `pending` can start one; a stray later
            // state of an unknown transaction still counts, so nothing is lost.
            self.last = Some(TxnStatus {
                version: r.version,
                previous: r.previous,
                state: r.state,
                since: r.at,
                message: r.message.clone(),
                restored_as: r.restored_as,
                lease: r.lease.clone(),
            });
        } else if let Some(l) = self.last.as_mut() {
            l.state = r.state;
            l.since = r.at;
            if r.previous.is_some() {
                l.previous = r.previous;
            }
            if r.message.is_some() {
                l.message = r.message.clone();
            }
            if r.restored_as.is_some() {
                l.restored_as = r.restored_as;
            }
            if r.lease.is_some() {
                l.lease = r.lease.clone();
            }
        }
        match r.state {
            TxnState::Failed | TxnState::RolledBack | TxnState::Halted => {
                self.failed_versions.insert(r.version);
            }
            TxnState::Committed => {
                if let Some(lease) = self.last.as_ref().and_then(|l| l.lease.clone()) {
                    self.lease = Some(lease);
                }
            }
            _ => {}
        }
    }

    /// Folds one lease record.
    pub fn apply_lease(&mut self, r: &LeaseRecord) {
        if r.action == "revoked" {
            self.revoked.insert(r.lease_id.clone());
            if self
                .lease
                .as_ref()
                .is_some_and(|l| l.lease_id == r.lease_id)
            {
                self.lease = None;
            }
        }
    }

    /// The open (not final) transaction, if any.
    pub fn open(&self) -> Option<&TxnStatus> {
        self.last.as_ref().filter(|l| !l.state.is_final())
    }

    /// Records that reproduce this book (for compaction).
    pub fn to_records(&self, policy: &str) -> (Vec<TxnRecord>, Vec<LeaseRecord>) {
        let mut txns = Vec::new();
        // Failed versions other than the last transaction's, as one `failed` record each.
        let last_version = self.last.as_ref().map(|l| l.version);
        for v in &self.failed_versions {
            if Some(*v) != last_version {
                txns.push(TxnRecord {
                    policy: policy.to_string(),
                    version: *v,
                    previous: None,
                    state: TxnState::Failed,
                    at: self.last.as_ref().map(|l| l.since).unwrap_or_else(Utc::now),
                    message: None,
                    restored_as: None,
                    lease: None,
                });
            }
        }
        // The committed lease, as a committed transaction record of its own when the last
        // transaction is not the one that holds it.
        if let Some(lease) = &self.lease {
            let held_by_last = self
                .last
                .as_ref()
                .is_some_and(|l| l.lease.as_ref() == Some(lease) && l.state == TxnState::Committed);
            if !held_by_last {
                txns.push(TxnRecord {
                    policy: policy.to_string(),
                    version: 0,
                    previous: None,
                    state: TxnState::Committed,
                    at: lease.issued_at,
                    message: None,
                    restored_as: None,
                    lease: Some(lease.clone()),
                });
            }
        }
        if let Some(l) = &self.last {
            txns.push(TxnRecord {
                policy: policy.to_string(),
                version: l.version,
                previous: l.previous,
                state: l.state,
                at: l.since,
                message: l.message.clone(),
                restored_as: l.restored_as,
                lease: l.lease.clone(),
            });
        }
        let leases = self
            .revoked
            .iter()
            .map(|id| LeaseRecord {
                policy: policy.to_string(),
                lease_id: id.clone(),
                action: "revoked".into(),
                at: Utc::now(),
                duration_secs: None,
            })
            .collect();
        (txns, leases)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(version: u64, state: TxnState) -> TxnRecord {
        TxnRecord {
            policy: "p".into(),
            version,
            previous: Some(version - 1),
            state,
            at: Utc::now(),
            message: None,
            restored_as: None,
            lease: None,
        }
    }

    #[test]
    fn states_fold_into_the_last_transaction_and_failures_are_remembered() {
        let mut b = TxnBook::default();
        b.apply(&rec(2, TxnState::Pending));
        assert_eq!(b.open().map(|o| o.state), Some(TxnState::Pending));
        b.apply(&rec(2, TxnState::CanaryPushed));
        b.apply(&rec(2, TxnState::Failed));
        assert_eq!(b.open().map(|o| o.state), Some(TxnState::Failed));
        let mut rb = rec(2, TxnState::RolledBack);
        rb.restored_as = Some(3);
        b.apply(&rb);
        assert!(b.open().is_none());
        assert_eq!(b.last.as_ref().unwrap().restored_as, Some(3));
        assert!(b.failed_versions.contains(&2));
        b.apply(&rec(4, TxnState::Pending));
        assert_eq!(b.open().map(|o| o.version), Some(4));
        assert!(
            b.failed_versions.contains(&2),
            "a failed version stays failed"
        );
    }

    #[test]
    fn a_committed_lease_becomes_the_policys_until_revoked() {
        let lease = LeaseInfo {
            lease_id: "pki/issue/x/abc".into(),
            duration_secs: 600,
            renewable: false,
            issued_at: Utc::now(),
        };
        let mut b = TxnBook::default();
        let mut p = rec(1, TxnState::Pending);
        p.lease = Some(lease.clone());
        b.apply(&p);
        assert_eq!(b.lease, None, "not the policy's before it commits");
        b.apply(&rec(1, TxnState::Committed));
        assert_eq!(b.lease.as_ref(), Some(&lease));
        b.apply_lease(&LeaseRecord {
            policy: "p".into(),
            lease_id: lease.lease_id.clone(),
            action: "revoked".into(),
            at: Utc::now(),
            duration_secs: None,
        });
        assert_eq!(b.lease, None);
        assert!(b.revoked.contains(&lease.lease_id));
    }

    #[test]
    fn compaction_records_rebuild_the_same_book() {
        let mut b = TxnBook::default();
        b.apply(&rec(2, TxnState::Pending));
        b.apply(&rec(2, TxnState::Failed));
        b.apply(&rec(2, TxnState::RolledBack));
        let mut p = rec(5, TxnState::Pending);
        p.lease = Some(LeaseInfo {
            lease_id: "l5".into(),
            duration_secs: 60,
            renewable: true,
            issued_at: Utc::now(),
        });
        b.apply(&p);
        b.apply(&rec(5, TxnState::CanaryPushed));
        let (txns, leases) = b.to_records("p");
        let mut again = TxnBook::default();
        for t in &txns {
            again.apply(t);
        }
        for l in &leases {
            again.apply_lease(l);
        }
        assert_eq!(again.failed_versions, b.failed_versions);
        assert_eq!(
            again.open().map(|o| (o.version, o.state)),
            Some((5, TxnState::CanaryPushed))
        );
        assert_eq!(
            again.last.as_ref().unwrap().lease,
            b.last.as_ref().unwrap().lease
        );
    }
}
