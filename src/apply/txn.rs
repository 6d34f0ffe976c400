//! A transactional rotation (a policy with `verify` or `rollout`): the new version goes to
//! the canary targets, is verified there, then goes to the rest and is verified there; only
//! then is it committed and the previous credential's lease revoked. A failed verification
//! rolls the targets that got the new version back to the previous value (or halts).
//!
//! Every state is appended to the ledger the moment it is reached, so a run that was killed
//! resumes from the last state written, with the same new version: it never mints a second
//! one for the same transaction. States and their meaning: `ledger::TxnState`.

use std::collections::HashMap;

use chrono::Utc;
use secrecy::SecretString;

use super::{Applier, PolicyReport, Progress, TxnReport, Verification};
use crate::audit::{AuditEvent, AuditRecord};
use crate::ledger::{Entry, LeaseInfo, PushRecord, RotationRecord, TxnRecord, TxnState};
use crate::model::plan::{Action, PolicyPlan, TargetPlan, TxnPlan};
use crate::model::policy::OnFailure;
use crate::model::PublicKey;
use crate::policy::Policy;
use crate::source::SourceValue;

impl Applier<'_> {
    /// Carries out (or resumes) the transaction `tp` of `policy`, with the keys of its
    /// targets in `keyed`.
    pub(super) async fn apply_txn(
        &self,
        policy: &Policy,
        pp: &PolicyPlan,
        tp: &TxnPlan,
        keyed: Vec<(&TargetPlan, PublicKey)>,
        mut pr: PolicyReport,
        progress: &dyn Progress,
    ) -> PolicyReport {
        if let Some(lost) = tp.abandon {
            self.abandon(policy, lost, &mut pr).await;
        }
        let keyed: HashMap<String, (&TargetPlan, PublicKey)> = keyed
            .into_iter()
            .map(|(t, k)| (t.scope.key(), (t, k)))
            .collect();

        // The new value: minted now, or the version the transaction already has.
        let resumed = tp.resume.as_deref().and_then(parse_state);
        let (value, mut state) = match tp.version {
            Some(v) => match self.ctx.sources.read(&policy.source, v).await {
                Ok(value) => (value, resumed.unwrap_or(TxnState::Pending)),
                Err(e) => {
                    pr.error = Some(format!("reading version {v} of the source failed: {e}"));
                    return pr;
                }
            },
            None => match self.value_for(policy, pp, &mut pr).await {
                Ok(v) => (v, TxnState::Pending),
                Err(e) => {
                    pr.error = Some(e);
                    return pr;
                }
            },
        };
        let version = value.version;
        pr.version = Some(version);
        let previous = tp.previous.filter(|p| *p != version);
        if resumed.is_none() {
            let lease = Self::lease_info(&value);
            self.txn_state(
                policy,
                version,
                previous,
                TxnState::Pending,
                None,
                None,
                lease,
            );
        } else {
            tracing::info!(policy = %policy.name, version, state = state.as_str(), "resuming a transaction");
        }
        let mut report = TxnReport {
            version,
            previous,
            state: state.as_str().to_string(),
            canary: tp.waves.canary.clone(),
            rest: tp.waves.rest.clone(),
            ..Default::default()
        };
        // The previous value, for the log redaction and a rollback; stored sources only.
        let previous_value = match previous.filter(|_| policy.source.is_stored()) {
            Some(p) => self.ctx.sources.read(&policy.source, p).await.ok(),
            None => None,
        };
        let secrets: Vec<&SecretString> = value
            .fields
            .values()
            .chain(previous_value.iter().flat_map(|v| v.fields.values()))
            .collect();
        let canary_first = !tp.waves.canary.is_empty();
        let mut restored_as = self.open_restored(policy, version);

        loop {
            if self.stopping() && !state.is_final() {
                pr.skipped += 1;
                break;
            }
            let next = match state {
                TxnState::Pending => {
                    let wave = if canary_first {
                        &tp.waves.canary
                    } else {
                        &tp.waves.rest
                    };
                    if !self
                        .push_to(policy, wave, &keyed, &value, &mut pr, progress)
                        .await
                    {
                        break;
                    }
                    if canary_first {
                        TxnState::CanaryPushed
                    } else {
                        TxnState::FleetPushed
                    }
                }
                TxnState::CanaryPushed => {
                    let runs = &tp.waves.verify_canary;
                    let ok = self
                        .verify_into(policy, runs, "canary", &secrets, &mut report)
                        .await;
                    if ok {
                        TxnState::CanaryVerified
                    } else {
                        TxnState::Failed
                    }
                }
                TxnState::CanaryVerified => {
                    if !self
                        .push_to(policy, &tp.waves.rest, &keyed, &value, &mut pr, progress)
                        .await
                    {
                        break;
                    }
                    TxnState::FleetPushed
                }
                TxnState::FleetPushed => {
                    let runs = &tp.waves.verify_rest;
                    let ok = self
                        .verify_into(policy, runs, "fleet", &secrets, &mut report)
                        .await;
                    if ok {
                        TxnState::Verified
                    } else {
                        TxnState::Failed
                    }
                }
                TxnState::Verified => {
                    self.revoke_superseded(policy, version, &mut pr.leases)
                        .await;
                    TxnState::Committed
                }
                TxnState::Failed => match tp.waves.on_failure {
                    OnFailure::Halt => TxnState::Halted,
                    OnFailure::Rollback => {
                        match self
                            .roll_back(
                                policy,
                                version,
                                previous,
                                previous_value.as_ref(),
                                &mut restored_as,
                                &keyed,
                                &mut pr,
                                &mut report,
                                progress,
                            )
                            .await
                        {
                            Ok(true) => TxnState::RolledBack,
                            Ok(false) => break,
                            Err(why) => {
                                pr.error.get_or_insert(why.clone());
                                self.txn_state(
                                    policy,
                                    version,
                                    previous,
                                    TxnState::Halted,
                                    Some(&why),
                                    None,
                                    None,
                                );
                                state = TxnState::Halted;
                                break;
                            }
                        }
                    }
                },
                TxnState::Committed | TxnState::RolledBack | TxnState::Halted => break,
            };
            let message =
                (next == TxnState::Failed).then(|| failure_summary(&report.verifications));
            let restored = (next == TxnState::RolledBack)
                .then_some(restored_as)
                .flatten();
            self.txn_state(
                policy,
                version,
                previous,
                next,
                message.as_deref(),
                restored,
                None,
            );
            state = next;
        }
        report.state = state.as_str().to_string();
        report.restored_as = restored_as;
        match state {
            TxnState::Committed => {}
            TxnState::RolledBack => {
                pr.error.get_or_insert(format!(
                    "{}; rolled back: the targets that got version {version} hold version {} again (the value of version {})",
                    failure_summary(&report.verifications),
                    restored_as.unwrap_or_default(),
                    previous.unwrap_or_default(),
                ));
            }
            TxnState::Halted => {
                pr.error.get_or_insert(format!(
                    "{}; halted (on_failure: halt): the targets that got version {version} keep it, the others were not written",
                    failure_summary(&report.verifications)
                ));
            }
            open => {
                pr.error.get_or_insert(format!(
                    "the transaction for version {version} stopped in state {}: the next run resumes it",
                    open.as_str()
                ));
            }
        }
        pr.transaction = Some(report);
        pr
    }

    /// Runs one wave's verifications into `report`; true when every run succeeded.
    async fn verify_into(
        &self,
        policy: &Policy,
        repos: &[String],
        wave: &str,
        secrets: &[&SecretString],
        report: &mut TxnReport,
    ) -> bool {
        let runs = self.verify_wave(policy, repos, wave, secrets).await;
        let ok = runs.iter().all(Verification::succeeded);
        report.verifications.extend(runs);
        ok
    }

    /// Pushes `value` to the targets of `wave` that do not hold it yet. True when every one
    /// of them holds it now.
    async fn push_to(
        &self,
        policy: &Policy,
        wave: &[String],
        keyed: &HashMap<String, (&TargetPlan, PublicKey)>,
        value: &SourceValue,
        pr: &mut PolicyReport,
        progress: &dyn Progress,
    ) -> bool {
        let planned: Vec<TargetPlan> = wave
            .iter()
            .filter_map(|k| keyed.get(k))
            .filter_map(|(t, _)| self.needing(policy, t, value.version))
            .collect();
        let missing = wave.iter().filter(|k| !keyed.contains_key(*k)).count();
        if planned.is_empty() {
            return missing == 0;
        }
        let deliverable: Vec<(&TargetPlan, PublicKey)> = planned
            .iter()
            .map(|t| (t, keyed[&t.scope.key()].1.clone()))
            .collect();
        let before = pr.failures.len();
        self.push_wave(policy, &deliverable, value, pr, progress)
            .await;
        pr.failures.len() == before && missing == 0 && !self.stopping()
    }

    /// `t` with each secret that does not hold `version` (by the ledger) marked for a push;
    /// `None` when every secret holds it.
    fn needing(&self, policy: &Policy, t: &TargetPlan, version: u64) -> Option<TargetPlan> {
        let ledger = self.ctx.ledger.lock().ok()?;
        let mut t = t.clone();
        let mut any = false;
        for s in &mut t.secrets {
            // Someone else's secret stays theirs, whatever the transaction does.
            if s.action == Action::Conflict {
                continue;
            }
            let held = ledger
                .state()
                .target(&policy.name, &t.scope, &s.name)
                .and_then(|r| r.pushed.as_ref())
                .map(|p| p.version);
            if held == Some(version) {
                s.action = Action::Unchanged;
            } else {
                s.action = Action::Rotate;
                any = true;
            }
        }
        any.then_some(t)
    }

    /// Rolls the targets holding `version` back to the previous value: writes `previous`
    /// back at the source as a new version (check-and-set on `version`), pushes it to
    /// them, and re-labels the targets that were never written (they hold the previous
    /// value, which the new version is a copy of). `Ok(false)`: some push failed; the next
    /// run resumes the rollback.
    #[allow(clippy::too_many_arguments)]
    async fn roll_back(
        &self,
        policy: &Policy,
        version: u64,
        previous: Option<u64>,
        previous_value: Option<&SourceValue>,
        restored_as: &mut Option<u64>,
        keyed: &HashMap<String, (&TargetPlan, PublicKey)>,
        pr: &mut PolicyReport,
        report: &mut TxnReport,
        progress: &dyn Progress,
    ) -> Result<bool, String> {
        let Some(previous) = previous else {
            return Err(
                "there is no earlier version to roll back to (this was the policy's first)".into(),
            );
        };
        if !policy.source.is_stored() || previous_value.is_none() {
            return Err(format!(
                "version {previous} is stored nowhere, so it cannot be pushed again"
            ));
        }
        let restored = match *restored_as {
            Some(r) => r,
            None => {
                let r = self
                    .ctx
                    .sources
                    .restore(&policy.source, previous, version)
                    .await
                    .map_err(|e| {
                        format!("writing version {previous} back at the source failed: {e}")
                    })?;
                // Recorded before anything is pushed, so a resumed rollback pushes this
                // version instead of writing another.
                self.txn_state(
                    policy,
                    version,
                    Some(previous),
                    TxnState::Failed,
                    None,
                    Some(r),
                    None,
                );
                let _ = self.record(Entry::Rotation(RotationRecord {
                    policy: policy.name.clone(),
                    version: r,
                    at: Utc::now(),
                    reason: "rollback".into(),
                    total_rotations: None,
                    expires_at: None,
                }));
                *restored_as = Some(r);
                r
            }
        };
        let value = self
            .ctx
            .sources
            .read(&policy.source, restored)
            .await
            .map_err(|e| format!("reading version {restored} of the source failed: {e}"))?;
        // Every target some secret of which holds the failed version.
        let touched: Vec<String> = keyed
            .iter()
            .filter(|(_, (t, _))| self.holds(policy, t, version))
            .map(|(k, _)| k.clone())
            .collect();
        let failures_before = pr.failures.len();
        let ok = self
            .push_to(policy, &touched, keyed, &value, pr, progress)
            .await;
        report.rolled_back += touched
            .len()
            .saturating_sub(pr.failures.len() - failures_before);
        self.relabel(policy, previous, restored);
        Ok(ok)
    }

    /// Whether some secret of `t` holds `version`, by the ledger.
    fn holds(&self, policy: &Policy, t: &TargetPlan, version: u64) -> bool {
        let Ok(ledger) = self.ctx.ledger.lock() else {
            return false;
        };
        t.secrets.iter().any(|s| {
            ledger
                .state()
                .target(&policy.name, &t.scope, &s.name)
                .and_then(|r| r.pushed.as_ref())
                .is_some_and(|p| p.version == version)
        })
    }

    /// Records that the targets holding `previous` hold `restored` (the same value written
    /// back as a new version), keeping when and with which key they were written, so they
    /// are not written again.
    fn relabel(&self, policy: &Policy, previous: u64, restored: u64) {
        let records: Vec<PushRecord> = match self.ctx.ledger.lock() {
            Ok(l) => l
                .state()
                .targets_of(&policy.name)
                .filter_map(|t| {
                    let p = t.pushed.as_ref().filter(|p| p.version == previous)?;
                    Some(PushRecord {
                        policy: policy.name.clone(),
                        scope: (*t.scope).clone(),
                        secret: t.secret.to_string(),
                        version: restored,
                        key_id: p.key_id.to_string(),
                        at: p.at,
                        outcome: "restored".into(),
                    })
                })
                .collect(),
            Err(_) => return,
        };
        for r in records {
            let _ = self.record(Entry::Push(r));
        }
    }

    /// The version an open, failed transaction already wrote back (a rollback that was
    /// interrupted).
    fn open_restored(&self, policy: &Policy, version: u64) -> Option<u64> {
        let l = self.ctx.ledger.lock().ok()?;
        let last = l.state().policies.get(&policy.name)?.txn.last.clone()?;
        (last.version == version)
            .then_some(last.restored_as)
            .flatten()
    }

    /// Ends an open transaction whose value was stored nowhere (it lived only in the run
    /// that was stopped): recorded as halted, and its credential's lease revoked when no
    /// target got it. One some target got is revoked by the next commit.
    async fn abandon(&self, policy: &Policy, lost: u64, pr: &mut PolicyReport) {
        let open = self.ctx.ledger.lock().ok().and_then(|l| {
            let last = l.state().policies.get(&policy.name)?.txn.last.clone()?;
            (last.version == lost).then_some(last)
        });
        let msg = "its value was stored nowhere and was lost when the run that minted it stopped; a new version is minted";
        self.txn_state(policy, lost, None, TxnState::Halted, Some(msg), None, None);
        if let Some(open) = open.filter(|o| o.state == TxnState::Pending) {
            if let Some(lease) = open.lease {
                self.revoke(policy, &lease.lease_id, lost, &mut pr.leases)
                    .await;
            }
        }
    }

    /// Appends one transaction state to the ledger and the audit log.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn txn_state(
        &self,
        policy: &Policy,
        version: u64,
        previous: Option<u64>,
        state: TxnState,
        message: Option<&str>,
        restored_as: Option<u64>,
        lease: Option<LeaseInfo>,
    ) {
        tracing::info!(policy = %policy.name, version, state = state.as_str(), "transaction");
        if let Err(e) = self.record(Entry::Txn(TxnRecord {
            policy: policy.name.clone(),
            version,
            previous,
            state,
            at: Utc::now(),
            message: message.map(str::to_string),
            restored_as,
            lease,
        })) {
            tracing::error!(policy = %policy.name, error = %e, "recording a transaction state in the ledger failed");
        } else if let Ok(mut l) = self.ctx.ledger.lock() {
            // A state is a promise to the next run: on disk before anything follows it.
            if let Err(e) = l.sync() {
                tracing::error!(error = %e, "syncing the ledger failed");
            }
        }
        let mut r = AuditRecord::new(AuditEvent::Transaction, &policy.name, state.as_str());
        r.owner = policy.owner.clone();
        r.source_version = Some(version);
        r.message = message.map(str::to_string);
        let _ = self.audit(r);
        crash_point(state);
    }
}

/// One line naming the verification runs that failed.
fn failure_summary(runs: &[Verification]) -> String {
    let failed: Vec<String> = runs
        .iter()
        .filter(|r| !r.succeeded())
        .map(|r| match r.run_id {
            Some(id) => format!("{} (run {id}: {})", r.repo, r.conclusion),
            None => format!("{} ({})", r.repo, r.conclusion),
        })
        .collect();
    if failed.is_empty() {
        return "verification failed".into();
    }
    format!("verification failed in {}", failed.join(", "))
}

/// A crash on purpose, for the tests that kill rotor in every transaction state:
/// `ROTOR_CRASH_AT=txn:<state>` aborts the process (no unwinding, no flush: what `kill -9`
/// does) right after that state is written. Unset, it costs one environment lookup.
fn crash_point(state: TxnState) {
    if let Ok(at) = std::env::var("ROTOR_CRASH_AT") {
        if at.strip_prefix("txn:") == Some(state.as_str()) {
            eprintln!("ROTOR_CRASH_AT: aborting after {}", state.as_str());
            std::process::abort();
        }
    }
}

fn parse_state(s: &str) -> Option<TxnState> {
    TxnState::ALL.into_iter().find(|t| t.as_str() == s)
}
