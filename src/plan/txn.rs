//! Whether a policy with `verify` or `rollout` rotates as a transaction (pure): a new
//! version that no target holds yet goes through canaries and verification; an open
//! transaction resumes from the state the ledger last recorded; a version that failed
//! verification is never pushed again.

use super::rollout::{waves, Waves};
use crate::ledger::LedgerState;
use crate::model::plan::{Listings, PolicyPlan, TxnPlan};
use crate::model::policy::Policy;
use crate::model::SecretScope;

/// The transaction `pp` needs, if any; `Err` is a problem that stops the policy.
pub fn transaction(
    policy: &Policy,
    ledger: &LedgerState,
    pp: &PolicyPlan,
    listings: &Listings,
) -> Result<Option<TxnPlan>, String> {
    let tp = decide(policy, ledger, pp, listings)?;
    if let Some(why) = tp
        .as_ref()
        .filter(|t| t.resume.is_none())
        .and_then(|t| unverified(policy, &t.waves))
    {
        return Err(why);
    }
    Ok(tp)
}

/// Why a new transaction would prove nothing: `verify` is set but covers none of the
/// repositories of its first wave (the canaries, or every target without them), which is
/// what must prove the value before it spreads.
fn unverified(policy: &Policy, waves: &Waves) -> Option<String> {
    policy.verify.as_ref()?;
    let (first, verified, which) = if waves.canary.is_empty() {
        (&waves.rest, &waves.verify_rest, "targets")
    } else {
        (&waves.canary, &waves.verify_canary, "canary targets")
    };
    (!first.is_empty() && verified.is_empty()).then(|| {
        format!(
            "verify covers none of the {which}' repositories ({}): no run would verify the new value before it spreads; widen verify.repos, or choose canaries it covers",
            first.join(", ")
        )
    })
}

fn decide(
    policy: &Policy,
    ledger: &LedgerState,
    pp: &PolicyPlan,
    listings: &Listings,
) -> Result<Option<TxnPlan>, String> {
    if !policy.is_transactional() {
        return Ok(None);
    }
    let book = ledger.policies.get(&policy.name).map(|p| &p.txn);
    let scopes: Vec<SecretScope> = pp
        .targets
        .iter()
        .filter(|t| t.problem.is_none() && !t.all_in_conflict())
        .map(|t| (*t.scope).clone())
        .collect();
    let waves = waves(policy, &scopes, listings);
    let plan = |version, previous, resume: Option<String>, abandon| TxnPlan {
        version,
        previous,
        resume,
        workflow: policy.verify.as_ref().map(|v| v.workflow.path_segment()),
        timeout_secs: policy.verify.as_ref().map(|v| v.timeout.as_secs()),
        abandon,
        waves: waves.clone(),
    };
    let mut abandon = None;
    if let Some(open) = book.and_then(|b| b.open()) {
        if policy.source.is_stored() {
            return Ok(Some(plan(
                Some(open.version),
                open.previous,
                Some(open.state.as_str().to_string()),
                None,
            )));
        }
        // Its value lived only in the run that minted it: this run mints another.
        abandon = Some(open.version);
    }
    let failed = |v: u64| book.is_some_and(|b| b.failed_versions.contains(&v));
    // The last good version: what the untouched targets hold after a halt.
    let good = |v: Option<u64>| match v {
        Some(v) if failed(v) => book.and_then(|b| b.last.as_ref()).and_then(|l| {
            if l.version == v {
                l.previous
            } else {
                None
            }
        }),
        other => other,
    };
    let needs_push = pp.targets.iter().any(|t| t.needs_push());
    if pp.rotate.is_some() || abandon.is_some() {
        return Ok(Some(plan(None, good(pp.version), None, abandon)));
    }
    let Some(version) = pp.version else {
        return Ok(None);
    };
    if failed(version) {
        if needs_push {
            return Err(format!(
                "version {version} failed verification and is never pushed again: rotate (`rotor rotate {name}`), write a new version to the source, or roll back (`rotor rollback {name}`)",
                name = policy.name
            ));
        }
        return Ok(None);
    }
    if !needs_push {
        return Ok(None);
    }
    // A version some target already holds was delivered (and verified, if it went through a
    // transaction); targets that lack it just converge. A version none holds is new.
    let held: Vec<u64> = ledger
        .targets_of(&policy.name)
        .filter_map(|t| t.pushed.as_ref().map(|p| p.version))
        .collect();
    if held.contains(&version) {
        return Ok(None);
    }
    Ok(Some(plan(
        Some(version),
        held.iter().copied().max(),
        None,
        None,
    )))
}
