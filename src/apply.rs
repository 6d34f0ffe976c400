//! Apply: carries out a plan — keys, then one fresh value per rotation, then seal and push
//! to every target, recording each success and failure in the ledger.
//!
//! **Idempotent**: applying the plan made right after a successful apply pushes nothing.
//! **One failing target never stops the others**: each failure is reported with its policy,
//! target, secret and GitHub's message. Public keys are fetched before the source rotates,
//! so a GitHub that refuses the credentials (or every target) costs no new source version.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::Utc;
use futures::stream::{self, StreamExt};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::audit::{AuditEvent, AuditLog, AuditRecord};
use crate::github::error::explain;
use crate::github::limits::MAX_VALUE_BYTES;
use crate::github::{Client, ErrorKind, GitHubError};
use crate::model::{PublicKey, SecretScope};
use crate::ledger::{Entry, FailureRecord, KeyRecord, Ledger, PushRecord, RotationRecord};
use crate::plan::{Action, Plan, PolicyPlan, TargetPlan};
use crate::policy::{Policy, PolicySet};
use crate::seal::seal;
use crate::source::{SourceValue, Sources};

/// What apply needs to reach the outside world.
pub struct Applier<'a> {
    pub github: &'a Client,
    pub sources: &'a Sources,
    pub ledger: &'a Mutex<Ledger>,
    /// Targets pushed at once (the GitHub client bounds requests on its own too).
    pub concurrency: usize,
    /// Where rotations and pushes are recorded for auditors, when enabled. A push's record
    /// is on disk before the push is recorded in the ledger.
    pub audit: Option<&'a AuditLog>,
    /// Once cancelled, no new rotation or push starts; pushes already sent finish.
    pub stop: Option<&'a CancellationToken>,
}

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

impl Applier<'_> {
    /// Carry out `plan` for the policies of `set` it names.
    pub async fn apply(&self, set: &PolicySet, plan: &Plan) -> Report {
        self.apply_with_progress(set, plan, &NoProgress).await
    }

    /// [`Applier::apply`], telling `progress` as targets are done.
    pub async fn apply_with_progress(&self, set: &PolicySet, plan: &Plan, progress: &dyn Progress) -> Report {
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
        if let Ok(mut l) = self.ledger.lock() {
            if let Err(e) = l.sync() {
                tracing::error!(error = %e, "syncing the ledger failed");
            }
        }
        report
    }

    fn stopping(&self) -> bool {
        self.stop.is_some_and(|s| s.is_cancelled())
    }

    /// Writes an audit record, when auditing is on. A failure is logged and returned.
    fn audit(&self, record: AuditRecord) -> Result<(), String> {
        let Some(log) = self.audit else {
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

    fn audit_rotation(&self, policy: &Policy, version: Option<u64>, result: &str, reason: &str, message: Option<String>) -> Result<(), String> {
        let mut r = AuditRecord::new(AuditEvent::Rotation, &policy.name, result);
        r.owner = policy.owner.clone();
        r.source_version = version;
        r.reason = Some(reason.to_string());
        r.message = message;
        self.audit(r)
    }

    fn record(&self, entry: Entry) -> Result<(), String> {
        let mut l = self.ledger.lock().map_err(|_| "ledger lock poisoned".to_string())?;
        l.append(entry).map_err(|e| e.to_string())
    }

    fn fail(&self, pr: &mut PolicyReport, scope: &SecretScope, secret: Option<&str>, version: Option<u64>, status: Option<u16>, message: String) {
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

    async fn apply_policy(&self, policy: &Policy, pp: &PolicyPlan, progress: &dyn Progress) -> PolicyReport {
        let mut pr = PolicyReport {
            policy: policy.name.clone(),
            version: pp.version,
            ..Default::default()
        };
        if let Some(problem) = &pp.problem {
            pr.error = Some(problem.clone());
            return pr;
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
        // Selected-repository lists that changed while the value did not: no value needed.
        let access_only: Vec<&TargetPlan> = pp
            .targets
            .iter()
            .filter(|t| t.problem.is_none() && t.secrets.iter().any(|s| s.action == Action::Access))
            .collect();
        if !access_only.is_empty() {
            self.update_access(&mut pr, pp, &access_only).await;
        }
        let work: Vec<&TargetPlan> = pp.targets.iter().filter(|t| t.needs_value()).collect();
        if work.is_empty() {
            return pr;
        }
        progress.policy(&policy.name, work.len());

        // 1. Public keys, before anything changes at the source: the ledger's, else GitHub's.
        let keys: HashMap<&SecretScope, Result<PublicKey, GitHubError>> = stream::iter(&work)
            .map(|t| async move { (&*t.scope, self.key_for(&t.scope).await) })
            .buffer_unordered(self.concurrency.max(1))
            .collect()
            .await;
        if let Some(e) = keys.values().filter_map(|k| k.as_ref().err()).find(|e| e.status == Some(401)) {
            pr.error = Some(format!("GitHub refused the credentials: {e}"));
            return pr;
        }
        let mut deliverable = Vec::new();
        for t in &work {
            match &keys[&*t.scope] {
                Ok(k) => deliverable.push((*t, k.clone())),
                Err(e) => {
                    progress.target_done(false);
                    for s in t.secrets.iter().filter(|s| s.action != Action::Unchanged) {
                        let msg = format!("fetching the public key failed: {e}");
                        let failure = Some((e.status, msg.as_str()));
                        let _ = self.audit_push(policy, &t.scope, &s.name, pp.version, None, "failed", e.request_id.clone(), failure);
                    }
                    self.fail(&mut pr, &t.scope, None, pp.version, e.status, explain(&t.scope, e))
                }
            }
        }
        drop(keys);
        if self.stopping() {
            pr.skipped += deliverable.len();
            return pr;
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

        // 3. Seal and push, target by target. Sealing runs ahead of the pushes on a thread
        // of its own, so a push whose slot frees is sent at once instead of waiting for the
        // curve arithmetic of the pushes before it, and a second core does that arithmetic
        // (about 5% off a CPU-bound 10 x 10,000 run; within noise when latency dominates).
        let value_ref = &value;
        let sealed = spawn_sealer(&deliverable, &value, self.concurrency.max(1) * 2);
        let results: Vec<TargetOutcome> = sealed
            .map(|(i, sealed)| {
                let (t, key) = deliverable[i].clone();
                async move {
                    let out = self.push_target(policy, t, key, value_ref, sealed).await;
                    progress.target_done(out.failures.is_empty());
                    out
                }
            })
            .buffer_unordered(self.concurrency.max(1))
            .collect()
            .await;
        for r in results {
            pr.created += r.created;
            pr.updated += r.updated;
            pr.pushed += r.created + r.updated;
            pr.skipped += r.skipped;
            for (scope, secret, status, message) in r.failures {
                self.fail(&mut pr, &scope, secret.as_deref(), Some(value.version), status, message);
            }
            if let Some(e) = r.ledger_error {
                pr.error.get_or_insert(e);
            }
        }
        pr
    }

    /// The scope's public key as the ledger last recorded it; fetched from GitHub (and
    /// recorded) only when the ledger has none. A recorded key GitHub no longer accepts is
    /// replaced when a PUT is refused with 422 (see `push_target`).
    async fn key_for(&self, scope: &SecretScope) -> Result<PublicKey, GitHubError> {
        let cached = self.ledger.lock().ok().and_then(|l| {
            l.state().key(scope).map(|k| PublicKey {
                key_id: k.key_id.clone(),
                key: k.key.clone(),
            })
        });
        match cached {
            Some(k) => Ok(k),
            None => self.fetch_key(scope).await,
        }
    }

    /// Fetches the scope's key from GitHub and records it in the ledger.
    async fn fetch_key(&self, scope: &SecretScope) -> Result<PublicKey, GitHubError> {
        let key = self.github.public_key(scope).await?;
        let rec = Entry::Key(KeyRecord {
            scope: scope.clone(),
            key_id: key.key_id.clone(),
            key: key.key.clone(),
            at: Utc::now(),
        });
        if let Err(e) = self.record(rec) {
            tracing::warn!(target = %scope.key(), error = %e, "recording a public key in the ledger failed");
        }
        Ok(key)
    }

    async fn value_for(&self, policy: &Policy, pp: &PolicyPlan, pr: &mut PolicyReport) -> Result<SourceValue, String> {
        match &pp.rotate {
            Some(reason) => {
                let ledger_version = self
                    .ledger
                    .lock()
                    .map_err(|_| "ledger lock poisoned".to_string())?
                    .state()
                    .policies
                    .get(&policy.name)
                    .and_then(|p| p.version)
                    .unwrap_or(0);
                let local = ledger_version.max(pp.version.unwrap_or(0)) + 1;
                let value = match self.sources.rotate(&policy.source, pp.version, local).await {
                    Ok(v) => v,
                    Err(e) => {
                        let msg = format!("rotating the source failed: {e}");
                        let _ = self.audit_rotation(policy, None, "failed", reason.code(), Some(msg.clone()));
                        return Err(msg);
                    }
                };
                // The audit record first: the new version exists at the source from now on.
                if let Err(e) = self.audit_rotation(policy, Some(value.version), "rotated", reason.code(), None) {
                    pr.error.get_or_insert(e);
                }
                self.record(Entry::Rotation(RotationRecord {
                    policy: policy.name.clone(),
                    version: value.version,
                    at: Utc::now(),
                    reason: reason.code().to_string(),
                    total_rotations: None,
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
                        self.github
                            .set_selected_repos(org, *app, &name, &access.selected_repository_ids)
                            .await
                    }
                    _ => Ok(()),
                };
                (t, name, r)
            })
            .buffer_unordered(self.concurrency.max(1))
            .collect()
            .await;
        for (t, name, r) in results {
            match r {
                Ok(()) => {
                    tracing::info!(policy = %pr.policy, target = %t.target, secret = %name, "selected repositories updated");
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
    fn record_recovered(&self, policy: &Policy, pp: &PolicyPlan, version: u64, pr: &mut PolicyReport) {
        if !policy.source.mints() || !policy.source.is_stored() {
            return;
        }
        let recorded = match self.ledger.lock() {
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
        })) {
            pr.error.get_or_insert(format!("recording the rotation in the ledger failed: {e}"));
        }
    }

    async fn push_target(
        &self,
        policy: &Policy,
        t: &TargetPlan,
        mut key: PublicKey,
        value: &SourceValue,
        mut presealed: Vec<Option<String>>,
    ) -> TargetOutcome {
        let mut out = TargetOutcome::default();
        for (i, s) in pushed_secrets(t).enumerate() {
            if self.stopping() {
                out.skipped += 1;
                continue;
            }
            let Some(plaintext) = value.fields.get(&*s.field) else {
                out.failures.push((
                    (*t.scope).clone(),
                    Some(s.name.to_string()),
                    None,
                    format!("the source has no field `{}` (version {})", s.field, value.version),
                ));
                continue;
            };
            let size = secrecy::ExposeSecret::expose_secret(plaintext).len();
            if size > MAX_VALUE_BYTES {
                out.failures.push((
                    (*t.scope).clone(),
                    Some(s.name.to_string()),
                    None,
                    format!(
                        "the value of `{}` (version {}) is {size} bytes; GitHub accepts at most {MAX_VALUE_BYTES} (48 KB)",
                        s.field, value.version
                    ),
                ));
                continue;
            }
            let mut attempt = 0;
            let result = loop {
                attempt += 1;
                // Sealed ahead with this key, unless the key was fetched again since.
                let ahead = presealed.get_mut(i).and_then(Option::take).filter(|_| attempt == 1);
                let sealed = match ahead.map(Ok).unwrap_or_else(|| seal(&key.key, plaintext)) {
                    Ok(c) => c,
                    Err(e) => break Err((None, format!("sealing failed: {e}"), None)),
                };
                match self
                    .github
                    .put_secret_with_meta(&t.scope, &s.name, &sealed, &key.key_id, t.access.as_ref())
                    .await
                {
                    Ok(receipt) => break Ok(receipt),
                    // GitHub refuses a key id that is no longer current: fetch the key again once.
                    Err(e) if e.status == Some(422) && attempt == 1 => match self.fetch_key(&t.scope).await {
                        Ok(k) if k.key_id != key.key_id => key = k,
                        _ => break Err((e.status, explain(&t.scope, &e), e.request_id.clone())),
                    },
                    Err(e) => break Err((e.status, explain(&t.scope, &e), e.request_id.clone())),
                }
            };
            match result {
                Ok(receipt) => {
                    let outcome = receipt.outcome;
                    let result = match outcome {
                        crate::model::PutOutcome::Created => "created",
                        crate::model::PutOutcome::Updated => "updated",
                    };
                    // On disk before the push counts as done (ledger, report).
                    if let Err(e) = self.audit_push(policy, &t.scope, &s.name, Some(value.version), Some(&key.key_id), result, receipt.request_id, None) {
                        out.ledger_error.get_or_insert(e);
                    }
                    match outcome {
                        crate::model::PutOutcome::Created => out.created += 1,
                        crate::model::PutOutcome::Updated => out.updated += 1,
                    }
                    tracing::debug!(policy = %policy.name, target = %t.target, secret = %s.name, version = value.version, "pushed");
                    let rec = Entry::Push(PushRecord {
                        policy: policy.name.clone(),
                        scope: (*t.scope).clone(),
                        secret: s.name.to_string(),
                        version: value.version,
                        key_id: key.key_id.clone(),
                        at: Utc::now(),
                        outcome: match outcome {
                            crate::model::PutOutcome::Created => "created".into(),
                            crate::model::PutOutcome::Updated => "updated".into(),
                        },
                    });
                    if let Err(e) = self.record(rec) {
                        out.ledger_error = Some(format!("recording a push in the ledger failed: {e}"));
                    }
                }
                Err((status, message, request_id)) => {
                    let failure = Some((status, message.as_str()));
                    if let Err(e) = self.audit_push(policy, &t.scope, &s.name, Some(value.version), Some(&key.key_id), "failed", request_id, failure) {
                        out.ledger_error.get_or_insert(e);
                    }
                    out.failures.push(((*t.scope).clone(), Some(s.name.to_string()), status, message))
                }
            }
        }
        out
    }
}

/// The secrets of a target that receive a value, in the order `push_target` sends them.
fn pushed_secrets(t: &TargetPlan) -> impl Iterator<Item = &crate::plan::SecretPlan> {
    t.secrets
        .iter()
        .filter(|s| !matches!(s.action, Action::Unchanged | Action::Access))
}

/// Seals every value `deliverable` needs on a blocking thread, at most `ahead` targets
/// ahead of the pushes that consume them; yields (index into `deliverable`, one sealed
/// value per secret in [`pushed_secrets`] order). A value that cannot be sealed (no such
/// field, a malformed key) is `None`: `push_target` seals it again and reports why.
/// Plaintext crosses the thread only as `SecretString`; what comes back is ciphertext.
fn spawn_sealer(
    deliverable: &[(&TargetPlan, PublicKey)],
    value: &SourceValue,
    ahead: usize,
) -> impl futures::Stream<Item = (usize, Vec<Option<String>>)> + use<> {
    let jobs: Vec<(String, Vec<std::sync::Arc<str>>)> = deliverable
        .iter()
        .map(|(t, key)| (key.key.clone(), pushed_secrets(t).map(|s| s.field.clone()).collect()))
        .collect();
    let fields = value.fields.clone();
    let (tx, rx) = tokio::sync::mpsc::channel(ahead.max(1));
    tokio::task::spawn_blocking(move || {
        for (i, (key, wanted)) in jobs.into_iter().enumerate() {
            let sealed = wanted
                .iter()
                .map(|f| fields.get(&**f).and_then(|p| seal(&key, p).ok()))
                .collect();
            // The receiver is gone when apply stopped early: nothing more to seal.
            if tx.blocking_send((i, sealed)).is_err() {
                break;
            }
        }
    });
    stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) })
}

#[derive(Default)]
struct TargetOutcome {
    created: usize,
    updated: usize,
    failures: Vec<(SecretScope, Option<String>, Option<u16>, String)>,
    /// Recording in the ledger or the audit log failed.
    ledger_error: Option<String>,
    skipped: usize,
}
