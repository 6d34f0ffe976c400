//! The leases of dynamic credentials (`vault_read`): recorded when issued, renewed while a
//! target relies on them, revoked once every target holds a newer credential. A lease id is
//! not a secret; nothing here touches a value.
//!
//! Which leases rotor holds is the ledger's `TxnBook::leases`: every lease it issued and has
//! not revoked. A commit of version N (a transaction verified, or a plain rotation pushed to
//! every target) revokes the others, so the previous credential stays valid exactly as long
//! as some target may still use it.

use chrono::Utc;

use super::{Applier, Leases};
use crate::audit::{AuditEvent, AuditRecord};
use crate::ledger::{Entry, HeldLease, LeaseInfo, LeaseRecord};
use crate::policy::Policy;
use crate::source::SourceValue;

impl Applier<'_> {
    /// The ledger's form of `value`'s lease, stamped now.
    pub(super) fn lease_info(value: &SourceValue) -> Option<LeaseInfo> {
        value.lease.as_ref().map(|l| LeaseInfo {
            lease_id: l.id.clone(),
            duration_secs: l.duration_secs,
            renewable: l.renewable,
            issued_at: Utc::now(),
        })
    }

    /// Records the lease of a credential minted outside a transaction (a transaction
    /// records it with its `pending` state).
    pub(super) fn record_issued(&self, policy: &Policy, value: &SourceValue) {
        let Some(info) = Self::lease_info(value) else {
            return;
        };
        let id = info.lease_id.clone();
        let r = LeaseRecord {
            version: Some(value.version),
            lease: Some(info),
            ..LeaseRecord::new(&policy.name, &id, "issued")
        };
        if let Err(e) = self.record(Entry::Lease(r)) {
            tracing::error!(policy = %policy.name, error = %e, "recording a lease in the ledger failed");
        }
    }

    /// After every target holds `version`: revokes the leases of every other credential
    /// rotor issued for the policy (the previous one, a halted transaction's, a lost one's).
    pub(super) async fn revoke_superseded(
        &self,
        policy: &Policy,
        version: u64,
        leases: &mut Leases,
    ) {
        let old: Vec<HeldLease> = self.held(policy, |b| {
            b.superseded(version, Utc::now())
                .into_iter()
                .cloned()
                .collect()
        });
        for h in old {
            self.revoke(policy, &h.info.lease_id, version, leases).await;
        }
    }

    /// Revokes one lease and records it (ledger and audit). Failure is reported, not
    /// fatal: the lease then runs out with its TTL.
    pub(super) async fn revoke(
        &self,
        policy: &Policy,
        lease_id: &str,
        version: u64,
        leases: &mut Leases,
    ) {
        match self.ctx.sources.revoke_lease(lease_id).await {
            Ok(()) => {
                tracing::info!(policy = %policy.name, lease_id, "lease revoked");
                let _ = self.record(Entry::Lease(LeaseRecord::new(
                    &policy.name,
                    lease_id,
                    "revoked",
                )));
                self.audit_lease(
                    policy,
                    version,
                    "revoked",
                    format!("lease {lease_id} revoked"),
                );
                leases.revoked.push(lease_id.to_string());
            }
            Err(e) => {
                tracing::warn!(policy = %policy.name, lease_id, error = %e, "revoking a lease failed; it runs out with its TTL");
                let msg = format!("revoking {lease_id} failed: {e}");
                self.audit_lease(policy, version, "revoke_failed", msg.clone());
                leases.failed.push(msg);
            }
        }
    }

    /// Renews every renewable lease of `policy` that has used half its term: a target may
    /// still rely on its credential. Vault may grant less than asked (the engine's max TTL);
    /// the grant is recorded, and the next renewal counts from it.
    pub(super) async fn renew_due(&self, policy: &Policy, leases: &mut Leases) {
        let due: Vec<HeldLease> = self.held(policy, |b| {
            b.due_for_renewal(Utc::now()).into_iter().cloned().collect()
        });
        for h in due {
            let id = &h.info.lease_id;
            match self.ctx.sources.renew_lease(id, h.info.duration_secs).await {
                Ok(granted) => {
                    let now = Utc::now();
                    let expires_at = crate::schedule::clock::add_secs(now, granted);
                    tracing::info!(policy = %policy.name, lease_id = %id, granted, "lease renewed");
                    let _ = self.record(Entry::Lease(LeaseRecord {
                        duration_secs: Some(granted),
                        expires_at: Some(expires_at),
                        ..LeaseRecord::new(&policy.name, id, "renewed")
                    }));
                    self.audit_lease(
                        policy,
                        h.version,
                        "renewed",
                        format!("lease {id} renewed for {granted}s"),
                    );
                    leases.renewed.push(id.clone());
                }
                Err(e) => {
                    tracing::warn!(policy = %policy.name, lease_id = %id, error = %e, "renewing a lease failed");
                    let msg = format!("renewing {id} failed: {e}");
                    self.audit_lease(policy, h.version, "renew_failed", msg.clone());
                    leases.failed.push(msg);
                }
            }
        }
    }

    fn held(
        &self,
        policy: &Policy,
        pick: impl Fn(&crate::ledger::TxnBook) -> Vec<HeldLease>,
    ) -> Vec<HeldLease> {
        match self.ctx.ledger.lock() {
            Ok(l) => l
                .state()
                .policies
                .get(&policy.name)
                .map(|p| pick(&p.txn))
                .unwrap_or_default(),
            Err(_) => Vec::new(),
        }
    }

    fn audit_lease(&self, policy: &Policy, version: u64, result: &str, message: String) {
        let mut r = AuditRecord::new(AuditEvent::Lease, &policy.name, result);
        r.owner = policy.owner.clone();
        r.source_version = Some(version);
        r.message = Some(message);
        let _ = self.audit(r);
    }
}
