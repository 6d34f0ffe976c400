//! Plan-time warnings about dynamic credentials (pure): a lease that runs out before the
//! policy's next rotation leaves the targets holding a dead credential, unless rotor can
//! renew it.

use super::estimate::human_secs;
use super::model::PlanWarning;
use crate::ledger::{HeldLease, LedgerState};
use crate::policy::{Policy, PolicySet, SourceSpec};
use crate::schedule::next_due;

/// One warning per `vault_read` policy whose newest credential's lease (as the ledger
/// recorded it when issued) is shorter than the time from its issue to the next rotation.
pub fn warnings(set: &PolicySet, ledger: &LedgerState) -> Vec<PlanWarning> {
    set.policies
        .iter()
        .filter(|p| matches!(p.source, SourceSpec::VaultRead { .. }))
        .filter_map(|p| {
            let book = &ledger.policies.get(&p.name)?.txn;
            let newest = book.leases.values().max_by_key(|h| h.version)?;
            short_lease(p, newest)
        })
        .collect()
}

fn short_lease(policy: &Policy, lease: &HeldLease) -> Option<PlanWarning> {
    let schedule = policy.schedule.as_ref()?;
    let issued = lease.info.issued_at;
    let due = next_due(&policy.name, schedule, issued)?;
    let term = lease.info.duration_secs;
    let until_due = (due - issued).num_seconds().max(0) as u64;
    if term >= until_due {
        return None;
    }
    let lasts = human_secs(term as f64);
    let gap = human_secs(until_due as f64);
    let message = if lease.info.renewable {
        format!(
            "the credential's lease lasts {lasts}, shorter than the {gap} until the next rotation ({due}): rotor renews it at half its term while targets rely on it (keep `rotor run` going, or apply that often), up to the engine's max TTL"
        )
    } else {
        format!(
            "the credential's lease lasts {lasts} and cannot be renewed, but the next rotation is {gap} after it was issued ({due}): the targets hold an expired credential from {} until then; rotate more often or raise the role's TTL",
            lease.expires_at.format("%Y-%m-%d %H:%M:%SZ")
        )
    };
    Some(PlanWarning {
        policy: policy.name.clone(),
        target: String::new(),
        secret: None,
        message,
    })
}
