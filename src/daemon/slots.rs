//! The scheduler's bookkeeping, one slot per policy: when it next needs a pass (its cadence
//! from the ledger, a retry with backoff, a new source version), whether a pass is running,
//! and what the last pass left unconverged. Pure: no I/O, the time is passed in.
//!
//! Time math is rotor's own (`schedule::next_due`, on the policy's wall clock), so the
//! daemon is right across DST changes whatever wakes it up, and a late wake-up only runs a
//! due policy late, never twice: a policy with a pass in flight is never due.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::apply::PolicyReport;
use crate::plan::{Action, PolicyPlan};
use crate::policy::{Policy, PolicySet};
use crate::schedule::next_due;

/// Longest wait between retries of a policy whose targets did not converge.
pub const MAX_BACKOFF: Duration = Duration::from_secs(15 * 60);

/// What one pass did for one policy, read from its plan and report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyOutcome {
    /// Every target holds the source's current version.
    pub converged: bool,
    pub rotated: bool,
    /// A rotation was planned and did not happen.
    pub rotation_failed: bool,
    pub created: usize,
    pub updated: usize,
    pub failed: usize,
    /// Targets (secrets) still behind; `None` when the pass did not get as far as knowing.
    pub unconverged: Option<usize>,
    /// The source version the targets were brought to.
    pub version: Option<u64>,
    /// A problem that stopped the policy (Vault unreachable, ...), or the first failure.
    pub error: Option<String>,
    /// Verification runs that concluded `success`, and those that did not.
    pub verifications_ok: usize,
    pub verifications_failed: usize,
    /// The state the policy's transaction reached in this pass (`committed`, ...).
    pub txn_state: Option<String>,
    /// The transaction failed in this pass (rolled back or halted).
    pub txn_failed: bool,
    /// The pass panicked before it could say what it did.
    pub panicked: bool,
}

impl PolicyOutcome {
    /// The outcome of a pass that panicked: failed, with nothing known about the targets.
    pub fn panicked() -> PolicyOutcome {
        PolicyOutcome {
            panicked: true,
            error: Some(
                "the pass panicked (a bug in rotor; the panic message is in the log); retried with backoff"
                    .to_string(),
            ),
            ..Default::default()
        }
    }

    /// Reads the outcome of one policy; `None` for either half means the pass stopped
    /// (shutdown) before getting there.
    pub fn from_pass(pp: Option<&PolicyPlan>, pr: Option<&PolicyReport>) -> PolicyOutcome {
        let (Some(pp), Some(pr)) = (pp, pr) else {
            return PolicyOutcome {
                error: Some("the pass stopped before this policy".to_string()),
                ..Default::default()
            };
        };
        let work: usize = pp
            .targets
            .iter()
            .map(|t| {
                if t.problem.is_some() {
                    t.secrets.len().max(1)
                } else {
                    t.secrets
                        .iter()
                        .filter(|s| s.action != Action::Unchanged)
                        .count()
                }
            })
            .sum();
        let known = pp.problem.is_none()
            && (pr.error.is_none() || pr.pushed > 0 || !pr.failures.is_empty());
        let unconverged = known.then(|| work.saturating_sub(pr.pushed).max(pr.failures.len()));
        let converged = pr.error.is_none() && pr.failures.is_empty() && pr.skipped == 0;
        PolicyOutcome {
            converged,
            rotated: pr.rotated.is_some(),
            rotation_failed: pp.rotate.is_some() && pr.rotated.is_none() && pr.error.is_some(),
            created: pr.created,
            updated: pr.updated,
            failed: pr.failures.len(),
            unconverged: if converged { Some(0) } else { unconverged },
            version: pr.version.or(pp.version),
            error: pr
                .error
                .clone()
                .or_else(|| {
                    pr.failures
                        .first()
                        .map(|f| format!("{}: {}", f.target, f.message))
                })
                .or_else(|| (pr.skipped > 0).then(|| "interrupted by shutdown".to_string())),
            verifications_ok: pr.transaction.as_ref().map_or(0, |t| {
                t.verifications.iter().filter(|v| v.succeeded()).count()
            }),
            verifications_failed: pr.transaction.as_ref().map_or(0, |t| {
                t.verifications.iter().filter(|v| !v.succeeded()).count()
            }),
            txn_state: pr.transaction.as_ref().map(|t| t.state.clone()),
            txn_failed: pr
                .transaction
                .as_ref()
                .is_some_and(|t| matches!(t.state.as_str(), "rolled_back" | "halted" | "failed")),
            panicked: false,
        }
    }
}

/// An alert the scheduler decided to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertNeed {
    pub kind: AlertKind,
    pub policy: String,
    pub message: String,
    pub unconverged: usize,
    pub since: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AlertKind {
    /// A pass failed for the policy (a rotation that did not happen, an unreadable source).
    RotationFailed,
    /// Targets stayed behind the source for longer than the threshold.
    Unconverged,
    /// A transactional rotation failed its verification (rolled back or halted).
    TransactionFailed,
}

impl AlertKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::RotationFailed => "rotation_failed",
            AlertKind::Unconverged => "unconverged",
            AlertKind::TransactionFailed => "transaction_failed",
        }
    }
}

/// The scheduler's view of one policy.
#[derive(Debug, Clone)]
pub struct Slot {
    pub policy: Policy,
    /// Run at the first chance: after start (catch-up), a reload, or a new source version.
    pub run_now: bool,
    /// When the next pass is due (the cadence, or a retry), when known.
    pub next_run: Option<DateTime<Utc>>,
    /// The next cadence time (for metrics), when the policy has one.
    pub next_due: Option<DateTime<Utc>>,
    /// Failed passes in a row.
    pub attempt: u32,
    /// A pass for this policy is running.
    pub in_flight: bool,
    /// The source version the last pass brought the targets to.
    pub known_version: Option<u64>,
    pub unconverged: usize,
    pub unconverged_since: Option<DateTime<Utc>>,
    alerted_unconverged: bool,
    failing: bool,
}

impl Slot {
    pub fn new(policy: Policy) -> Slot {
        Slot {
            policy,
            run_now: true,
            next_run: None,
            next_due: None,
            attempt: 0,
            in_flight: false,
            known_version: None,
            unconverged: 0,
            unconverged_since: None,
            alerted_unconverged: false,
            failing: false,
        }
    }

    pub fn is_due(&self, now: DateTime<Utc>) -> bool {
        !self.in_flight && (self.run_now || self.next_run.is_some_and(|t| t <= now))
    }

    /// Records a finished pass: the next cadence time counts from `last_rotation` (the
    /// later of the ledger's record and the source's write time); a pass that left targets
    /// behind is retried with backoff, at the same source version. A pass that could not
    /// read the source while the policy was due to rotate counts as a failed rotation.
    /// Returns the alert to send, if the pass starts a failure streak.
    pub fn finish(
        &mut self,
        outcome: &mut PolicyOutcome,
        last_rotation: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
        backoff_base: Duration,
    ) -> Option<AlertNeed> {
        let was_due = self.policy.source.mints() && self.next_due.is_none_or(|d| d <= now);
        if outcome.unconverged.is_none() && !outcome.converged && was_due {
            outcome.rotation_failed = true;
        }
        self.in_flight = false;
        self.next_due = match (&self.policy.schedule, last_rotation) {
            (Some(s), Some(last)) => next_due(&self.policy.name, s, last),
            _ => None,
        };
        if outcome.version.is_some() {
            self.known_version = outcome.version;
        }
        if let Some(n) = outcome.unconverged {
            self.unconverged = n;
        }
        if self.unconverged == 0 && outcome.converged {
            self.unconverged_since = None;
            self.alerted_unconverged = false;
        } else {
            self.unconverged_since.get_or_insert(now);
        }
        if outcome.converged {
            self.attempt = 0;
            self.failing = false;
            self.next_run = self.next_due;
            return None;
        }
        self.attempt = self.attempt.saturating_add(1);
        let retry = now
            + chrono::Duration::from_std(backoff(backoff_base, self.attempt)).unwrap_or_default();
        self.next_run = Some(match self.next_due {
            Some(due) if due > now => due.min(retry),
            _ => retry,
        });
        let starts_streak = !self.failing;
        self.failing = true;
        // Every failed transaction is news of its own, streak or not.
        if outcome.txn_failed {
            return Some(AlertNeed {
                kind: AlertKind::TransactionFailed,
                policy: self.policy.name.clone(),
                message: outcome
                    .error
                    .clone()
                    .unwrap_or_else(|| "the transaction failed".to_string()),
                unconverged: self.unconverged,
                since: self.unconverged_since,
            });
        }
        (starts_streak && (outcome.rotation_failed || outcome.unconverged.is_none())).then(|| {
            AlertNeed {
                kind: AlertKind::RotationFailed,
                policy: self.policy.name.clone(),
                message: outcome
                    .error
                    .clone()
                    .unwrap_or_else(|| "the pass failed".to_string()),
                unconverged: self.unconverged,
                since: self.unconverged_since,
            }
        })
    }

    /// The unconverged alert, once per streak, when targets have stayed behind for
    /// `after`.
    pub fn unconverged_alert(&mut self, now: DateTime<Utc>, after: Duration) -> Option<AlertNeed> {
        let since = self.unconverged_since?;
        let after = chrono::Duration::from_std(after).unwrap_or_default();
        if self.alerted_unconverged || self.unconverged == 0 || now - since < after {
            return None;
        }
        self.alerted_unconverged = true;
        Some(AlertNeed {
            kind: AlertKind::Unconverged,
            policy: self.policy.name.clone(),
            message: format!(
                "{} target(s) have not converged since {}",
                self.unconverged,
                since.format("%Y-%m-%d %H:%M:%SZ")
            ),
            unconverged: self.unconverged,
            since: Some(since),
        })
    }
}

/// The retry delay after `attempt` failed passes in a row: `base`, doubling, at most
/// `MAX_BACKOFF` (or `base`, if that is longer).
pub fn backoff(base: Duration, attempt: u32) -> Duration {
    let factor = 1u32 << attempt.saturating_sub(1).min(16);
    base.saturating_mul(factor).min(MAX_BACKOFF.max(base))
}

/// Every policy's slot.
#[derive(Debug, Default)]
pub struct Slots {
    pub slots: BTreeMap<String, Slot>,
}

impl Slots {
    pub fn new(set: &PolicySet) -> Slots {
        Slots {
            slots: set
                .policies
                .iter()
                .map(|p| (p.name.clone(), Slot::new(p.clone())))
                .collect(),
        }
    }

    /// The policies due now, marked in flight.
    pub fn take_due(&mut self, now: DateTime<Utc>) -> Vec<Policy> {
        let mut due = Vec::new();
        for slot in self.slots.values_mut().filter(|s| s.is_due(now)) {
            slot.in_flight = true;
            slot.run_now = false;
            due.push(slot.policy.clone());
        }
        due
    }

    /// When the earliest policy that is not running is due.
    pub fn next_wake(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.slots
            .values()
            .filter(|s| !s.in_flight)
            .filter_map(|s| if s.run_now { Some(now) } else { s.next_run })
            .min()
    }

    /// Takes a new policy set: new or changed policies get a pass at once; unchanged ones
    /// keep their schedule; removed ones are dropped (a pass already running finishes).
    /// A policy whose pass is running stays marked so, whatever its new definition.
    pub fn replace(&mut self, set: &PolicySet) -> (usize, usize, usize) {
        let (mut added, mut changed, mut removed) = (0, 0, 0);
        let mut next = BTreeMap::new();
        for p in &set.policies {
            let slot = match self.slots.remove(&p.name) {
                Some(old) if same_policy(&old.policy, p) => old,
                Some(old) => {
                    changed += 1;
                    let mut s = Slot::new(p.clone());
                    s.in_flight = old.in_flight;
                    s.known_version = old.known_version;
                    s
                }
                None => {
                    added += 1;
                    Slot::new(p.clone())
                }
            };
            next.insert(p.name.clone(), slot);
        }
        removed += self.slots.len();
        self.slots = next;
        (added, changed, removed)
    }
}

/// Whether two definitions of a policy are the same (policies hold no values, so their
/// `Debug` text is a faithful fingerprint).
fn same_policy(a: &Policy, b: &Policy) -> bool {
    format!("{a:?}") == format!("{b:?}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::Failure;
    use crate::policy::{Cadence, Charset, Schedule, SourceSpec};
    use chrono::TimeZone;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap()
    }

    fn policy(name: &str, every_secs: u64) -> Policy {
        Policy {
            name: name.into(),
            description: None,
            owner: None,
            source: SourceSpec::Generate {
                length: 32,
                charset: Charset::Hex,
                prefix: None,
                store: None,
            },
            secrets: Default::default(),
            targets: vec![],
            schedule: Some(Schedule {
                cadence: Some(Cadence::Every(Duration::from_secs(every_secs))),
                timezone: "UTC".into(),
                jitter: None,
                max_age: None,
            }),
            verify: None,
            rollout: None,
            takeover: false,
            from_keys: None,
            file: "p.yaml".into(),
        }
    }

    fn ok() -> PolicyOutcome {
        PolicyOutcome {
            converged: true,
            unconverged: Some(0),
            version: Some(1),
            ..Default::default()
        }
    }

    fn failed(unconverged: usize) -> PolicyOutcome {
        PolicyOutcome {
            failed: unconverged,
            unconverged: Some(unconverged),
            version: Some(1),
            error: Some("acme/a: 502".into()),
            ..Default::default()
        }
    }

    #[test]
    fn every_policy_runs_at_start_and_a_running_one_is_never_due_again() {
        let set = PolicySet {
            policies: vec![policy("a", 60), policy("b", 60)],
        };
        let mut slots = Slots::new(&set);
        let due = slots.take_due(t0());
        assert_eq!(due.len(), 2, "catch-up: everything runs on start");
        assert!(
            slots
                .take_due(t0() + chrono::Duration::days(365))
                .is_empty(),
            "in flight"
        );
        assert_eq!(slots.next_wake(t0()), None);
    }

    #[test]
    fn a_converged_pass_waits_for_the_next_cadence_time_from_the_last_rotation() {
        let mut slot = Slot::new(policy("a", 60));
        slot.in_flight = true;
        slot.run_now = false;
        let last = t0() - chrono::Duration::seconds(10);
        assert_eq!(
            slot.finish(&mut ok(), Some(last), t0(), Duration::from_secs(5)),
            None
        );
        assert_eq!(slot.next_run, Some(last + chrono::Duration::seconds(60)));
        assert!(!slot.is_due(t0() + chrono::Duration::seconds(49)));
        assert!(slot.is_due(t0() + chrono::Duration::seconds(50)));
    }

    #[test]
    fn an_unconverged_pass_is_retried_with_doubling_backoff_before_the_cadence() {
        let mut slot = Slot::new(policy("a", 3600));
        let base = Duration::from_secs(5);
        let alert = slot.finish(&mut failed(2), Some(t0()), t0(), base);
        assert_eq!(alert, None, "target failures alert only past the threshold");
        assert_eq!(slot.next_run, Some(t0() + chrono::Duration::seconds(5)));
        slot.finish(&mut failed(2), Some(t0()), t0(), base);
        assert_eq!(slot.next_run, Some(t0() + chrono::Duration::seconds(10)));
        slot.finish(&mut ok(), Some(t0()), t0(), base);
        assert_eq!(slot.attempt, 0);
        assert_eq!(slot.next_run, Some(t0() + chrono::Duration::hours(1)));
    }

    #[test]
    fn a_retry_never_waits_past_the_next_cadence_time() {
        let mut slot = Slot::new(policy("a", 8));
        slot.attempt = 10;
        slot.finish(&mut failed(1), Some(t0()), t0(), Duration::from_secs(5));
        assert_eq!(slot.next_run, Some(t0() + chrono::Duration::seconds(8)));
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let base = Duration::from_secs(15);
        assert_eq!(backoff(base, 1), base);
        assert_eq!(backoff(base, 3), Duration::from_secs(60));
        assert_eq!(backoff(base, 40), MAX_BACKOFF);
        assert_eq!(
            backoff(Duration::from_secs(3600), 5),
            Duration::from_secs(3600)
        );
    }

    #[test]
    fn a_failed_rotation_alerts_once_per_streak() {
        let mut slot = Slot::new(policy("a", 60));
        // The source could not be read (no target state known) while the policy was due.
        let outcome = || PolicyOutcome {
            error: Some("Vault is sealed".into()),
            ..Default::default()
        };
        let mut first = outcome();
        let alert = slot
            .finish(&mut first, None, t0(), Duration::from_secs(1))
            .expect("alert");
        assert!(
            first.rotation_failed,
            "a due rotation that could not happen failed"
        );
        assert_eq!(alert.kind, AlertKind::RotationFailed);
        assert!(alert.message.contains("sealed"));
        assert_eq!(
            slot.finish(&mut outcome(), None, t0(), Duration::from_secs(1)),
            None
        );
        slot.finish(
            &mut ok(),
            Some(t0() - chrono::Duration::seconds(60)),
            t0(),
            Duration::from_secs(1),
        );
        assert!(slot
            .finish(&mut outcome(), None, t0(), Duration::from_secs(1))
            .is_some());
    }

    #[test]
    fn unconverged_targets_alert_once_after_the_threshold() {
        let mut slot = Slot::new(policy("a", 60));
        slot.finish(&mut failed(3), Some(t0()), t0(), Duration::from_secs(1));
        let after = Duration::from_secs(600);
        assert_eq!(
            slot.unconverged_alert(t0() + chrono::Duration::seconds(599), after),
            None
        );
        let alert = slot
            .unconverged_alert(t0() + chrono::Duration::seconds(600), after)
            .expect("alert");
        assert_eq!((alert.kind, alert.unconverged), (AlertKind::Unconverged, 3));
        assert_eq!(
            slot.unconverged_alert(t0() + chrono::Duration::hours(2), after),
            None
        );
    }

    #[test]
    fn a_reload_runs_new_and_changed_policies_and_keeps_a_running_one_marked() {
        let mut slots = Slots::new(&PolicySet {
            policies: vec![policy("a", 60), policy("b", 60), policy("c", 60)],
        });
        slots.take_due(t0());
        slots.slots.get_mut("a").unwrap().in_flight = false;
        let (added, changed, removed) = slots.replace(&PolicySet {
            policies: vec![policy("a", 60), policy("b", 120), policy("d", 60)],
        });
        assert_eq!((added, changed, removed), (1, 1, 1));
        assert!(!slots.slots["a"].run_now, "unchanged keeps its schedule");
        assert!(slots.slots["b"].run_now && slots.slots["b"].in_flight);
        assert!(slots.slots["d"].run_now);
        assert!(!slots.slots.contains_key("c"));
    }

    #[test]
    fn an_outcome_counts_targets_left_behind() {
        use crate::model::SecretScope;
        use crate::plan::{SecretPlan, TargetPlan};
        let target = |repo: &str| TargetPlan {
            target: format!("acme/{repo}").into(),
            scope: SecretScope::Repo {
                owner: "acme".into(),
                repo: repo.into(),
                app: Default::default(),
            }
            .into(),
            access: None,
            problem: None,
            secrets: vec![SecretPlan {
                name: "T".into(),
                field: "value".into(),
                action: Action::Sync,
                reason: "".into(),
            }],
        };
        let pp = PolicyPlan {
            policy: "a".into(),
            owner: None,
            source: String::new(),
            rotate: None,
            version: Some(4),
            last_rotated_at: None,
            next_due: None,
            expires_at: None,
            vault_targets: Vec::new(),
            problem: None,
            targets: vec![target("x"), target("y"), target("z")],
            txn: None,
        };
        let pr = PolicyReport {
            policy: "a".into(),
            version: Some(4),
            pushed: 2,
            updated: 2,
            failures: vec![Failure {
                target: "acme/z".into(),
                secret: Some("T".into()),
                status: Some(502),
                message: "Bad Gateway".into(),
            }],
            ..Default::default()
        };
        let o = PolicyOutcome::from_pass(Some(&pp), Some(&pr));
        assert!(!o.converged);
        assert_eq!((o.unconverged, o.failed, o.version), (Some(1), 1, Some(4)));
        assert_eq!(o.error.as_deref(), Some("acme/z: Bad Gateway"));
    }
}
