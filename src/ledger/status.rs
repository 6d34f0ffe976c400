//! The rows `rotor status` prints and the control API's `GET /v1/status` answers: per
//! policy, its version, last rotation, next due time and targets, from the ledger.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::record::{LedgerState, TargetState};
use crate::policy::PolicySet;

/// One policy's row.
#[derive(Debug, Clone, Serialize)]
pub struct StatusRow {
    pub policy: String,
    pub version: Option<u64>,
    pub rotated_at: Option<DateTime<Utc>>,
    pub rotations: u64,
    /// From the policy's schedule, when `set` holds the policy.
    pub next_due: Option<DateTime<Utc>>,
    pub targets: usize,
    pub failing: usize,
    pub target_states: Vec<TargetState>,
}

/// Every policy the ledger knows, in name order; `set` gives next due times.
pub fn status_rows(state: &LedgerState, set: Option<&PolicySet>) -> Vec<StatusRow> {
    let mut names: std::collections::BTreeSet<&str> =
        state.policies.keys().map(String::as_str).collect();
    names.extend(state.targets.keys().map(|(p, _, _)| &**p));
    names
        .into_iter()
        .map(|name| {
            let ps = state.policies.get(name).cloned().unwrap_or_default();
            let next_due = match (set.and_then(|s| s.get(name)), ps.rotated_at) {
                (Some(p), Some(last)) => p
                    .schedule
                    .as_ref()
                    .and_then(|s| crate::schedule::next_due(&p.name, s, last)),
                _ => None,
            };
            let targets: Vec<_> = state.targets_of(name).cloned().collect();
            // Vault-held values are never rotated by rotor: their version is what was pushed.
            let version = ps.version.or_else(|| {
                targets
                    .iter()
                    .filter_map(|t| t.pushed.as_ref().map(|p| p.version))
                    .max()
            });
            StatusRow {
                policy: name.to_string(),
                version,
                rotated_at: ps.rotated_at,
                rotations: ps.rotations,
                next_due,
                targets: targets.len(),
                failing: targets.iter().filter(|t| t.failure.is_some()).count(),
                target_states: targets,
            }
        })
        .collect()
}
