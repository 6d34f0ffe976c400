//! Apply: carries out a plan — keys, then one fresh value per rotation, then seal and push
//! to every target, recording each success and failure in the ledger.
//!
//! **Idempotent**: applying the plan made right after a successful apply pushes nothing.
//! **One failing target never stops the others**: each failure is reported with its policy,
//! target, secret and GitHub's message. Public keys are fetched before the source rotates,
//! so a GitHub that refuses the credentials (or every target) costs no new source version.
//!
//! The report types are in `report`; a target's seal-and-PUT, and the sealer thread that
//! runs ahead of it, in `push`.

mod lease;
mod prefetch;
mod push;
mod report;
mod runner;
mod txn;
mod verify;

pub use prefetch::KeyPrefetch;
pub use report::{
    Failure, Leases, NoProgress, PolicyReport, Progress, Report, Summary, TxnReport, Verification,
};
pub use verify::{PollSettings, EXCERPT_LINES};

use std::collections::HashMap;

use chrono::Utc;
use futures::stream::{self, StreamExt};

use self::push::{spawn_sealer, TargetOutcome};
use crate::audit::{AuditEvent, AuditRecord};
use crate::context::Context;
use crate::github::error::explain;
use crate::github::{ErrorKind, GitHubError};
use crate::ledger::{Entry, FailureRecord, KeyRecord, RotationRecord};
use crate::model::{PublicKey, SecretScope};
use crate::plan::{Action, Plan, PolicyPlan, TargetPlan};
use crate::policy::{Policy, PolicySet};
use crate::source::SourceValue;

/// What apply needs to reach the outside world: the [`Context`] it borrows (its
/// `concurrency` is the number of targets pushed at once, its `stop` ends the starting of
/// new rotations and pushes).
pub struct Applier<'a> {
    pub ctx: &'a Context,
    /// Keys whose fetch `observe` started ahead (see [`KeyPrefetch`]).
    pub prefetched: Option<&'a KeyPrefetch>,
}

impl<'a> Applier<'a> {
    /// An applier working with `ctx`.
    pub fn new(ctx: &'a Context) -> Applier<'a> {
        Applier {
            ctx,
            prefetched: None,
        }
    }

    /// The same applier, taking keys from `prefetched` before asking GitHub.
    pub fn with_prefetched(mut self, prefetched: &'a KeyPrefetch) -> Applier<'a> {
        self.prefetched = Some(prefetched);
        self
    }

    /// Carry out `plan` for the policies of `set` it names.
    pub async fn apply(&self, set: &PolicySet, plan: &Plan) -> Report {
        self.apply_with_progress(set, plan, &NoProgress).await
    }

    /// [`Applier::apply`], telling `progress` as targets are done.
    pub async fn apply_with_progress(
        &self,
        set: &PolicySet,
        plan: &Plan,
        progress: &dyn Progress,
    ) -> Report {
        let mut report = Report::default();
        for pp in &plan.policies {
            let Some(policy) = set.get(&pp.policy) else {
                continue;
            };
            if self.stopping() {
                report.interrupted = true;
                break;
            }
            let pr = self.apply_policy(policy, pp, progress).await;
            let s = &mut report.summary;
            s.policies += 1;
            s.rotated += usize::from(pr.rotated.is_some());
            s.pushed += pr.pushed;
            s.created += pr.created;
            s.updated += pr.updated;
            s.unchanged += pr.unchanged;
            s.access_updated += pr.access_updated;
            s.failed += pr.failures.len();
            s.skipped += pr.skipped;
            report.interrupted |= pr.skipped > 0;
            report.policies.push(pr);
        }
        progress.finish();
        if let Ok(mut l) = self.ctx.ledger.lock() {
            if let Err(e) = l.sync() {
                tracing::error!(error = %e, "syncing the ledger failed");
            }
        }
        report
    }

    fn stopping(&self) -> bool {
        self.ctx.stopping()
    }

    /// Writes an audit record, when auditing is on. A failure is logged and returned.
    pub(super) fn audit(&self, record: AuditRecord) -> Result<(), String> {
        let Some(log) = &self.ctx.audit else {
            return Ok(());
        };
        log.write(&record).map_err(|e| {
            tracing::error!(error = %e, "writing the audit log failed");
            format!("writing the audit log failed: {e}")
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn audit_push(
        &self,
        policy: &Policy,
        scope: &SecretScope,
        secret: &str,
        version: Option<u64>,
        key_id: Option<&str>,
        result: &str,
        request_id: Option<String>,
        failure: Option<(Option<u16>, &str)>,
    ) -> Result<(), String> {
        let mut r = AuditRecord::new(AuditEvent::Push, &policy.name, result);
        r.owner = policy.owner.clone();
        r.target = Some(scope.key());
        r.secret = Some(secret.to_string());
        r.source_version = version;
        r.key_id = key_id.map(str::to_string);
        r.github_request_id = request_id;
        if let Some((status, message)) = failure {
            r.status = status;
            r.message = Some(message.to_string());
        }
        self.audit(r)
    }

    fn audit_rotation(
        &self,
        policy: &Policy,
        version: Option<u64>,
        result: &str,
        reason: &str,
        message: Option<String>,
    ) -> Result<(), String> {
        let mut r = AuditRecord::new(AuditEvent::Rotation, &policy.name, result);
        r.owner = policy.owner.clone();
        r.source_version = version;
        r.reason = Some(reason.to_string());
        r.message = message;
        self.audit(r)
    }

    pub(super) fn record(&self, entry: Entry) -> Result<(), String> {
        let mut l = self
            .ctx
            .ledger
            .lock()
            .map_err(|_| "ledger lock poisoned".to_string())?;
        l.append(entry).map_err(|e| e.to_string())
    }

    pub(super) fn fail(
        &self,
        pr: &mut PolicyReport,
        scope: &SecretScope,
        secret: Option<&str>,
        version: Option<u64>,
        status: Option<u16>,
        message: String,
    ) {
        tracing::warn!(policy = %pr.policy, target = %scope.key(), secret = secret.unwrap_or(""), %message, "target failed");
        let _ = self.record(Entry::Failure(FailureRecord {
            policy: pr.policy.clone(),
            scope: scope.clone(),
            secret: secret.map(str::to_string),
            version,
            at: Utc::now(),
            message: message.clone(),
        }));
        pr.failures.push(Failure {
            target: scope.key(),
            secret: secret.map(str::to_string),
            status,
            message,
        });
    }

    async fn apply_policy(
        &self,
        policy: &Policy,
        pp: &PolicyPlan,
        progress: &dyn Progress,
    ) -> PolicyReport {
        let mut pr = PolicyReport {
            policy: policy.name.clone(),
            version: pp.version,
            ..Default::default()
        };
        // Credentials some target still relies on stay valid, whatever else this pass does.
        self.renew_due(policy, &mut pr.leases).await;
        if let Some(problem) = &pp.problem {
            pr.error = Some(problem.clone());
            return pr;
        }
        if matches!(
            policy.source,
            crate::policy::SourceSpec::GithubRunnerToken { .. }
        ) {
            return self.apply_runner_token(policy, pp, pr).await;
        }
        pr.unchanged = pp
            .targets
            .iter()
            .filter(|t| t.problem.is_none())
            .flat_map(|t| &t.secrets)
            .filter(|s| s.action == Action::Unchanged)
            .count();
        for t in pp.targets.iter().filter(|t| t.problem.is_some()) {
            let msg = t.problem.clone().unwrap_or_default();
            self.fail(&mut pr, &t.scope, None, pp.version, None, msg);
        }
        // Secrets someone else wrote are left alone, and said so.
        for t in pp.targets.iter().filter(|t| t.problem.is_none()) {
            for s in t.secrets.iter().filter(|s| s.action == Action::Conflict) {
                let msg = format!("conflict: {}", s.reason);
                self.fail(&mut pr, &t.scope, Some(&s.name), pp.version, None, msg);
            }
        }
        // Selected-repository lists that changed while the value did not: no value needed.
        let access_only: Vec<&TargetPlan> = pp
            .targets
            .iter()
            .filter(|t| t.problem.is_none() && t.secrets.iter().any(|s| s.action == Action::Access))
            .collect();
        if !access_only.is_empty() {
            self.update_access(&mut pr, pp, &access_only).await;
        }
        // A transaction needs every target: canaries verified, the previous value restored.
        let work: Vec<&TargetPlan> = if pp.txn.is_some() {
            pp.targets
                .iter()
                .filter(|t| t.problem.is_none() && !t.all_in_conflict())
                .collect()
        } else {
            pp.targets.iter().filter(|t| t.needs_value()).collect()
        };
        if work.is_empty() {
            return pr;
        }
        progress.policy(&policy.name, work.len());

        // 1. Public keys, before anything changes at the source: the ledger's, else GitHub's.
        let Some(deliverable) = self.fetch_keys(policy, pp, &work, &mut pr, progress).await else {
            return pr;
        };
        if self.stopping() {
            pr.skipped += deliverable.len();
            return pr;
        }
        if let Some(tp) = &pp.txn {
            return self
                .apply_txn(policy, pp, tp, deliverable, pr, progress)
                .await;
        }
        if deliverable.is_empty() {
            if pp.rotate.is_some() {
                pr.error = Some("no target can receive a value: the source was not rotated".into());
            }
            return pr;
        }

        // 2. One value for every target: a fresh version, or the current one.
        let value = match self.value_for(policy, pp, &mut pr).await {
            Ok(v) => v,
            Err(e) => {
                pr.error = Some(e);
                return pr;
            }
        };
        pr.version = Some(value.version);
        if pp.rotate.is_some() {
            self.record_issued(policy, &value);
        }

        // 3. Seal and push, target by target.
        self.push_wave(policy, &deliverable, &value, &mut pr, progress)
            .await;
        // 4. Every target holds the new credential: the ones it replaces may go.
        if value.lease.is_some() && pr.failures.is_empty() && !self.stopping() {
            self.revoke_superseded(policy, value.version, &mut pr.leases)
                .await;
        }
        pr
    }

    /// Each target's public key; the targets whose key GitHub gave, with it. `None` when
    /// GitHub refused the credentials (the policy's error says so).
    async fn fetch_keys<'t>(
        &self,
        policy: &Policy,
        pp: &PolicyPlan,
        work: &[&'t TargetPlan],
        pr: &mut PolicyReport,
        progress: &dyn Progress,
    ) -> Option<Vec<(&'t TargetPlan, PublicKey)>> {
        let keys: HashMap<&SecretScope, Result<PublicKey, GitHubError>> = stream::iter(work)
            .map(|t| async move { (&*t.scope, self.key_for(&t.scope).await) })
            .buffer_unordered(self.ctx.concurrency.max(1))
            .collect()
            .await;
        if let Some(e) = keys
            .values()
            .filter_map(|k| k.as_ref().err())
            .find(|e| e.status == Some(401))
        {
            pr.error = Some(format!("GitHub refused the credentials: {e}"));
            return None;
        }
        let mut deliverable = Vec::new();
        for t in work {
            match &keys[&*t.scope] {
                Ok(k) => deliverable.push((*t, k.clone())),
                Err(e) => {
                    progress.target_done(false);
                    for s in t.secrets.iter().filter(|s| s.action.sends_value()) {
                        let msg = format!("fetching the public key failed: {e}");
                        let failure = Some((e.status, msg.as_str()));
                        let _ = self.audit_push(
                            policy,
                            &t.scope,
                            &s.name,
                            pp.version,
                            None,
                            "failed",
                            e.request_id.clone(),
                            failure,
                        );
                    }
                    self.fail(
                        pr,
                        &t.scope,
                        None,
                        pp.version,
                        e.status,
                        explain(&t.scope, e),
                    )
                }
            }
        }
        Some(deliverable)
    }

    /// Seals `value` for each target and PUTs it, recording each push and failure.
    pub(super) async fn push_wave(
        &self,
        policy: &Policy,
        deliverable: &[(&TargetPlan, PublicKey)],
        value: &SourceValue,
        pr: &mut PolicyReport,
        progress: &dyn Progress,
    ) {
        // Sealing runs ahead of the pushes on a thread
        // of its own, so a push whose slot frees is sent at once instead of waiting for the
        // curve arithmetic of the pushes before it, and a second core does that arithmetic
        // (about 5% off a CPU-bound 10 x 10,000 run; within noise when latency dominates).
        let value_ref = value;
        let sealed = spawn_sealer(deliverable, value, self.ctx.concurrency.max(1) * 2);
        let results: Vec<TargetOutcome> = sealed
            .map(|(i, sealed)| {
                let (t, key) = deliverable[i].clone();
                async move {
                    let out = self.push_target(policy, t, key, value_ref, sealed).await;
                    progress.target_done(out.failures.is_empty());
                    out
                }
            })
            .buffer_unordered(self.ctx.concurrency.max(1))
            .collect()
            .await;
        for r in results {
            pr.created += r.created;
            pr.updated += r.updated;
            pr.pushed += r.created + r.updated;
            pr.skipped += r.skipped;
            for (scope, secret, status, message) in r.failures {
                self.fail(
                    pr,
                    &scope,
                    secret.as_deref(),
                    Some(value.version),
                    status,
                    message,
                );
            }
            if let Some(e) = r.ledger_error {
                pr.error.get_or_insert(e);
            }
        }
    }

    /// The scope's public key as the ledger last recorded it; fetched from GitHub (and
    /// recorded) only when the ledger has none — or taken from a fetch started ahead, which
    /// is the same request made earlier. A recorded key GitHub no longer accepts is
    /// replaced when a PUT is refused with 422 (see `push_target`).
    async fn key_for(&self, scope: &SecretScope) -> Result<PublicKey, GitHubError> {
        let cached = self.ctx.ledger.lock().ok().and_then(|l| {
            l.state().key(scope).map(|k| PublicKey {
                key_id: k.key_id.clone(),
                key: k.key.clone(),
            })
        });
        match cached {
            // A key recorded by an older rotor is checked as a fetched one is; a bad one
            // is passed over, and the key fetched now replaces it in the ledger.
            Some(k) if crate::seal::check_public_key(&k.key_id, &k.key).is_ok() => return Ok(k),
            Some(_) => {
                tracing::warn!(target = %scope.key(), "the public key recorded for this target is unusable; fetching it again");
                return self.fetch_key(scope).await;
            }
            None => {}
        }
        let ahead = match self.prefetched {
            Some(p) => p.take(scope).await,
            None => None,
        };
        match ahead {
            Some(answer) => Ok(self.record_key(scope, answer?)),
            None => self.fetch_key(scope).await,
        }
    }

    /// Fetches the scope's key from GitHub and records it in the ledger.
    async fn fetch_key(&self, scope: &SecretScope) -> Result<PublicKey, GitHubError> {
        let key = self.ctx.github.public_key(scope).await?;
        Ok(self.record_key(scope, key))
    }

    /// Records a key GitHub gave for `scope` in the ledger, and hands it on.
    fn record_key(&self, scope: &SecretScope, key: PublicKey) -> PublicKey {
        let rec = Entry::Key(KeyRecord {
            scope: scope.clone(),
            key_id: key.key_id.clone(),
            key: key.key.clone(),
            at: Utc::now(),
        });
        if let Err(e) = self.record(rec) {
            tracing::warn!(target = %scope.key(), error = %e, "recording a public key in the ledger failed");
        }
        key
    }

    pub(super) async fn value_for(
        &self,
        policy: &Policy,
        pp: &PolicyPlan,
        pr: &mut PolicyReport,
    ) -> Result<SourceValue, String> {
        match &pp.rotate {
            Some(reason) => {
                let ledger_version = self
                    .ctx
                    .ledger
                    .lock()
                    .map_err(|_| "ledger lock poisoned".to_string())?
                    .state()
                    .policies
                    .get(&policy.name)
                    .and_then(|p| p.version)
                    .unwrap_or(0);
                let Some(local) = ledger_version.max(pp.version.unwrap_or(0)).checked_add(1) else {
                    return Err(format!(
                        "policy {}: the version number is at its maximum; rotor cannot count further",
                        policy.name
                    ));
                };
                let value = match self
                    .ctx
                    .sources
                    .rotate(&policy.source, pp.version, local)
                    .await
                {
                    Ok(v) => v,
                    Err(e) => {
                        let msg = format!("rotating the source failed: {e}");
                        let _ = self.audit_rotation(
                            policy,
                            None,
                            "failed",
                            reason.code(),
                            Some(msg.clone()),
                        );
                        return Err(msg);
                    }
                };
                // The audit record first: the new version exists at the source from now on.
                if let Err(e) =
                    self.audit_rotation(policy, Some(value.version), "rotated", reason.code(), None)
                {
                    pr.error.get_or_insert(e);
                }
                self.record(Entry::Rotation(RotationRecord {
                    policy: policy.name.clone(),
                    version: value.version,
                    at: Utc::now(),
                    reason: reason.code().to_string(),
                    total_rotations: None,
                    expires_at: None,
                }))
                .map_err(|e| format!("recording the rotation in the ledger failed: {e}"))?;
                tracing::info!(policy = %policy.name, version = value.version, reason = reason.code(), "rotated");
                pr.rotated = Some(reason.code().to_string());
                Ok(value)
            }
            None => {
                let version = pp
                    .version
                    .ok_or_else(|| "the source holds no version to push".to_string())?;
                let value = self
                    .ctx
                    .sources
                    .read(&policy.source, version)
                    .await
                    .map_err(|e| format!("reading the source failed: {e}"))?;
                self.record_recovered(policy, pp, version, pr);
                Ok(value)
            }
        }
    }

    /// `PUT .../repositories` for each organization secret whose value is current but whose
    /// selected repositories are not. GitHub's 409 means its visibility is no longer
    /// `selected`: the next plan sees that and writes the secret again in full.
    async fn update_access(&self, pr: &mut PolicyReport, pp: &PolicyPlan, targets: &[&TargetPlan]) {
        let calls = targets.iter().flat_map(|t| {
            t.secrets
                .iter()
                .filter(|s| s.action == Action::Access)
                .map(move |s| (*t, s.name.to_string()))
        });
        let results: Vec<(&TargetPlan, String, Result<(), GitHubError>)> = stream::iter(calls)
            .map(|(t, name)| async move {
                let r = match (&*t.scope, &t.access) {
                    (SecretScope::Org { org, app }, Some(access)) => {
                        self.ctx
                            .github
                            .set_selected_repos(org, *app, &name, &access.selected_repository_ids)
                            .await
                    }
                    _ => Ok(()),
                };
                (t, name, r)
            })
            .buffer_unordered(self.ctx.concurrency.max(1))
            .collect()
            .await;
        for (t, name, r) in results {
            match r {
                Ok(()) => {
                    tracing::info!(policy = %pr.policy, target = %t.target, secret = %name, "selected repositories updated");
                    // Should GitHub count this as an update, it is rotor's, not someone else's.
                    let _ = self.record(Entry::Claim(crate::ledger::ClaimRecord {
                        policy: pr.policy.clone(),
                        scope: (*t.scope).clone(),
                        secrets: vec![name.clone()],
                        version: None,
                        at: Utc::now(),
                    }));
                    pr.access_updated += 1;
                }
                Err(e) => {
                    let message = if e.kind == ErrorKind::Conflict {
                        format!("{e}: the secret's visibility is no longer `selected` on GitHub; the next apply writes it again with the policy's visibility")
                    } else {
                        explain(&t.scope, &e)
                    };
                    self.fail(pr, &t.scope, Some(&name), pp.version, e.status, message);
                }
            }
        }
    }

    /// A version rotor minted and stored, newer than the ledger's last rotation record: a
    /// rotation interrupted (a crash) between writing the version and recording it. The
    /// ledger learns it now, so `status` and the next plans count from it.
    fn record_recovered(
        &self,
        policy: &Policy,
        pp: &PolicyPlan,
        version: u64,
        pr: &mut PolicyReport,
    ) {
        if !policy.source.mints() || !policy.source.is_stored() {
            return;
        }
        let recorded = match self.ctx.ledger.lock() {
            Ok(l) => l.state().policies.get(&policy.name).and_then(|p| p.version),
            Err(_) => return,
        };
        if recorded.is_some_and(|v| v >= version) {
            return;
        }
        tracing::warn!(policy = %policy.name, version, "the source holds a version the ledger never recorded (an interrupted rotation): converging to it");
        if let Err(e) = self.audit_rotation(policy, Some(version), "recovered", "recovered", None) {
            pr.error.get_or_insert(e);
        }
        if let Err(e) = self.record(Entry::Rotation(RotationRecord {
            policy: policy.name.clone(),
            version,
            at: pp.last_rotated_at.unwrap_or_else(Utc::now),
            reason: "recovered".to_string(),
            total_rotations: None,
            expires_at: None,
        })) {
            pr.error
                .get_or_insert(format!("recording the rotation in the ledger failed: {e}"));
        }
    }
}
