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
use crate::github::{Client, GitHubError, PublicKey, SecretScope};
use crate::ledger::{Entry, FailureRecord, Ledger, PushRecord, RotationRecord};
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

impl Applier<'_> {
    /// Carry out `plan` for the policies of `set` it names.
    pub async fn apply(&self, set: &PolicySet, plan: &Plan) -> Report {
        let mut report = Report::default();
        for pp in &plan.policies {
            let Some(policy) = set.get(&pp.policy) else {
                continue;
            };
            if self.stopping() {
                report.interrupted = true;
                break;
            }
            let pr = self.apply_policy(policy, pp).await;
            let s = &mut report.summary;
            s.policies += 1;
            s.rotated += usize::from(pr.rotated.is_some());
            s.pushed += pr.pushed;
            s.created += pr.created;
            s.updated += pr.updated;
            s.unchanged += pr.unchanged;
            s.failed += pr.failures.len();
            s.skipped += pr.skipped;
            report.interrupted |= pr.skipped > 0;
            report.policies.push(pr);
        }
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

    async fn apply_policy(&self, policy: &Policy, pp: &PolicyPlan) -> PolicyReport {
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
        let work: Vec<&TargetPlan> = pp.targets.iter().filter(|t| t.needs_push()).collect();
        if work.is_empty() {
            return pr;
        }

        // 1. Public keys, before anything changes at the source.
        let keys: HashMap<SecretScope, Result<PublicKey, GitHubError>> = stream::iter(&work)
            .map(|t| async move { (t.scope.clone(), self.github.public_key(&t.scope).await) })
            .buffer_unordered(self.concurrency.max(1))
            .collect()
            .await;
        if let Some(e) = keys.values().filter_map(|k| k.as_ref().err()).find(|e| e.status == Some(401)) {
            pr.error = Some(format!("GitHub refused the credentials: {e}"));
            return pr;
        }
        let mut deliverable = Vec::new();
        for t in &work {
            match &keys[&t.scope] {
                Ok(k) => deliverable.push((*t, k.clone())),
                Err(e) => {
                    for s in t.secrets.iter().filter(|s| s.action != Action::Unchanged) {
                        let msg = format!("fetching the public key failed: {e}");
                        let failure = Some((e.status, msg.as_str()));
                        let _ = self.audit_push(policy, &t.scope, &s.name, pp.version, None, "failed", e.request_id.clone(), failure);
                    }
                    self.fail(&mut pr, &t.scope, None, pp.version, e.status, e.to_string())
                }
            }
        }
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

        // 3. Seal and push, target by target.
        let results: Vec<TargetOutcome> = stream::iter(deliverable)
            .map(|(t, key)| self.push_target(policy, t, key, &value))
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

    /// A version rotor minted and stored, newer than the ledger's last rotation record: a
    /// rotation interrupted (a crash) between writing the version and recording it. The
    /// ledger learns it now, so `status` and the next plans count from it.
    fn record_recovered(&self, policy: &Policy, pp: &PolicyPlan, version: u64, pr: &mut PolicyReport) {
        if !crate::plan::build::mints(&policy.source) || !crate::plan::build::is_stored(&policy.source) {
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

    async fn push_target(&self, policy: &Policy, t: &TargetPlan, mut key: PublicKey, value: &SourceValue) -> TargetOutcome {
        let mut out = TargetOutcome::default();
        for s in t.secrets.iter().filter(|s| s.action != Action::Unchanged) {
            if self.stopping() {
                out.skipped += 1;
                continue;
            }
            let Some(plaintext) = value.fields.get(&s.field) else {
                out.failures.push((
                    t.scope.clone(),
                    Some(s.name.clone()),
                    None,
                    format!("the source has no field `{}` (version {})", s.field, value.version),
                ));
                continue;
            };
            let mut attempt = 0;
            let result = loop {
                attempt += 1;
                let sealed = match seal(&key.key, plaintext) {
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
                    Err(e) if e.status == Some(422) && attempt == 1 => match self.github.public_key(&t.scope).await {
                        Ok(k) if k.key_id != key.key_id => key = k,
                        _ => break Err((e.status, e.to_string(), e.request_id.clone())),
                    },
                    Err(e) => break Err((e.status, e.to_string(), e.request_id.clone())),
                }
            };
            match result {
                Ok(receipt) => {
                    let outcome = receipt.outcome;
                    let result = match outcome {
                        crate::github::PutOutcome::Created => "created",
                        crate::github::PutOutcome::Updated => "updated",
                    };
                    // On disk before the push counts as done (ledger, report).
                    if let Err(e) = self.audit_push(policy, &t.scope, &s.name, Some(value.version), Some(&key.key_id), result, receipt.request_id, None) {
                        out.ledger_error.get_or_insert(e);
                    }
                    match outcome {
                        crate::github::PutOutcome::Created => out.created += 1,
                        crate::github::PutOutcome::Updated => out.updated += 1,
                    }
                    tracing::debug!(policy = %policy.name, target = %t.target, secret = %s.name, version = value.version, "pushed");
                    let rec = Entry::Push(PushRecord {
                        policy: policy.name.clone(),
                        scope: t.scope.clone(),
                        secret: s.name.clone(),
                        version: value.version,
                        key_id: key.key_id.clone(),
                        at: Utc::now(),
                        outcome: match outcome {
                            crate::github::PutOutcome::Created => "created".into(),
                            crate::github::PutOutcome::Updated => "updated".into(),
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
                    out.failures.push((t.scope.clone(), Some(s.name.clone()), status, message))
                }
            }
        }
        out
    }
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
