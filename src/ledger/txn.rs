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

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::schedule::clock;

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

/// A lease issued (outside a transaction), renewed or revoked by rotor.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LeaseRecord {
    pub policy: String,
    pub lease_id: String,
    /// `issued`, `renewed` or `revoked`.
    pub action: String,
    pub at: DateTime<Utc>,
    /// With `renewed`: the TTL Vault granted, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_secs: Option<u64>,
    /// With `issued`: the version whose credential the lease is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// With `issued`: the lease as Vault described it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<LeaseInfo>,
    /// With `issued` and `renewed`: when the lease runs out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
}

impl LeaseRecord {
    /// A record of `action` on `lease_id`, with the optional fields empty.
    pub fn new(policy: &str, lease_id: &str, action: &str) -> LeaseRecord {
        LeaseRecord {
            policy: policy.to_string(),
            lease_id: lease_id.to_string(),
            action: action.to_string(),
            at: Utc::now(),
            duration_secs: None,
            version: None,
            lease: None,
            expires_at: None,
        }
    }
}

/// A lease rotor issued and has not revoked: some target may rely on its credential.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct HeldLease {
    pub info: LeaseInfo,
    /// The version whose credential it is.
    pub version: u64,
    /// When it runs out (issue time plus its TTL, or the last renewal's grant).
    pub expires_at: DateTime<Utc>,
}

impl HeldLease {
    /// When rotor renews it: once half of its last term has passed (renewable leases only).
    pub fn renew_at(&self) -> Option<DateTime<Utc>> {
        if !self.info.renewable {
            return None;
        }
        Some(clock::sub_secs(
            self.expires_at,
            self.info.duration_secs / 2,
        ))
    }
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
    /// Leases rotor issued and has not revoked, by lease id: the credentials some target
    /// may still rely on (the committed one, a halted transaction's, a lost one's).
    pub leases: BTreeMap<String, HeldLease>,
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
        if let Some(lease) = &r.lease {
            self.hold(lease, r.version, None);
        }
        if matches!(
            r.state,
            TxnState::Failed | TxnState::RolledBack | TxnState::Halted
        ) {
            self.failed_versions.insert(r.version);
        }
    }

    /// Folds one lease record.
    pub fn apply_lease(&mut self, r: &LeaseRecord) {
        match r.action.as_str() {
            "issued" => {
                if let (Some(lease), Some(version)) = (&r.lease, r.version) {
                    self.hold(lease, version, r.expires_at);
                }
            }
            "renewed" => {
                if let Some(held) = self.leases.get_mut(&r.lease_id) {
                    held.expires_at = r
                        .expires_at
                        .unwrap_or_else(|| clock::add_secs(r.at, r.duration_secs.unwrap_or(0)));
                }
            }
            "revoked" => {
                self.revoked.insert(r.lease_id.clone());
                self.leases.remove(&r.lease_id);
            }
            _ => {}
        }
    }

    fn hold(&mut self, lease: &LeaseInfo, version: u64, expires_at: Option<DateTime<Utc>>) {
        if self.revoked.contains(&lease.lease_id) {
            return;
        }
        let expires_at =
            expires_at.unwrap_or_else(|| clock::add_secs(lease.issued_at, lease.duration_secs));
        self.leases
            .entry(lease.lease_id.clone())
            .and_modify(|h| h.expires_at = h.expires_at.max(expires_at))
            .or_insert_with(|| HeldLease {
                info: lease.clone(),
                version,
                expires_at,
            });
    }

    /// The leases of versions other than `version` that have not run out by `now`: what a
    /// commit of `version` revokes.
    pub fn superseded(&self, version: u64, now: DateTime<Utc>) -> Vec<&HeldLease> {
        self.leases
            .values()
            .filter(|h| h.version != version && h.expires_at > now)
            .collect()
    }

    /// The renewable leases due for renewal at `now` (half their term gone, not run out).
    pub fn due_for_renewal(&self, now: DateTime<Utc>) -> Vec<&HeldLease> {
        self.leases
            .values()
            .filter(|h| h.expires_at > now && h.renew_at().is_some_and(|t| t <= now))
            .collect()
    }

    /// When the next renewal is due, if any lease is renewable.
    pub fn next_renewal(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.leases
            .values()
            .filter(|h| h.expires_at > now)
            .filter_map(HeldLease::renew_at)
            .min()
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
        let mut leases: Vec<LeaseRecord> = self
            .leases
            .values()
            .map(|h| LeaseRecord {
                version: Some(h.version),
                lease: Some(h.info.clone()),
                expires_at: Some(h.expires_at),
                ..LeaseRecord::new(policy, &h.info.lease_id, "issued")
            })
            .collect();
        leases.extend(
            self.revoked
                .iter()
                .map(|id| LeaseRecord::new(policy, id, "revoked")),
        );
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

    fn lease(id: &str, secs: u64, renewable: bool) -> LeaseInfo {
        LeaseInfo {
            lease_id: id.into(),
            duration_secs: secs,
            renewable,
            issued_at: Utc::now(),
        }
    }

    #[test]
    fn a_lease_is_held_until_revoked_and_a_commit_supersedes_the_others() {
        let mut b = TxnBook::default();
        let mut p1 = rec(1, TxnState::Pending);
        p1.lease = Some(lease("pki/issue/x/one", 600, false));
        b.apply(&p1);
        b.apply(&rec(1, TxnState::Committed));
        let mut p2 = rec(2, TxnState::Pending);
        p2.lease = Some(lease("pki/issue/x/two", 600, false));
        b.apply(&p2);
        let now = Utc::now();
        let ids = |v: Vec<&HeldLease>| -> Vec<String> {
            v.into_iter().map(|h| h.info.lease_id.clone()).collect()
        };
        assert_eq!(ids(b.superseded(2, now)), vec!["pki/issue/x/one"]);
        assert_eq!(ids(b.superseded(1, now)), vec!["pki/issue/x/two"]);
        b.apply_lease(&LeaseRecord::new("p", "pki/issue/x/one", "revoked"));
        assert!(b.superseded(2, now).is_empty());
        assert!(b.revoked.contains("pki/issue/x/one"));
        // A stray later record of a revoked lease does not bring it back.
        b.apply(&p1);
        assert!(!b.leases.contains_key("pki/issue/x/one"));
        // One that ran out is nobody's to revoke.
        assert!(b
            .superseded(3, now + chrono::Duration::seconds(601))
            .is_empty());
    }

    #[test]
    fn a_renewable_lease_is_due_at_half_its_term_and_a_renewal_moves_it() {
        let mut b = TxnBook::default();
        let info = lease("database/creds/ci/a", 3600, true);
        let t0 = info.issued_at;
        b.apply_lease(&LeaseRecord {
            version: Some(4),
            lease: Some(info.clone()),
            ..LeaseRecord::new("p", &info.lease_id, "issued")
        });
        b.apply(&{
            let mut p = rec(5, TxnState::Pending);
            p.lease = Some(lease("pki/issue/x/fixed", 3600, false));
            p
        });
        let at = |s: i64| t0 + chrono::Duration::seconds(s);
        assert!(b.due_for_renewal(at(1700)).is_empty());
        assert_eq!(b.next_renewal(at(0)), Some(at(1800)));
        let due = b.due_for_renewal(at(1800));
        assert_eq!(due.len(), 1, "only the renewable one");
        assert_eq!(due[0].info.lease_id, "database/creds/ci/a");
        b.apply_lease(&LeaseRecord {
            duration_secs: Some(3600),
            expires_at: Some(at(1800 + 3600)),
            ..LeaseRecord::new("p", &info.lease_id, "renewed")
        });
        assert!(b.due_for_renewal(at(1900)).is_empty());
        assert_eq!(b.next_renewal(at(1900)), Some(at(3600)));
        assert!(
            b.due_for_renewal(at(10_000)).is_empty(),
            "a lease that ran out is not renewed"
        );
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
        let renewed_until = Utc::now() + chrono::Duration::seconds(90);
        b.apply_lease(&LeaseRecord {
            duration_secs: Some(90),
            expires_at: Some(renewed_until),
            ..LeaseRecord::new("p", "l5", "renewed")
        });
        b.apply_lease(&LeaseRecord::new("p", "old", "revoked"));
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
        assert_eq!(again.leases, b.leases);
        assert_eq!(again.leases["l5"].expires_at, renewed_until);
        assert_eq!(again.revoked, b.revoked);
    }
}
