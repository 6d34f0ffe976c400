//! One target's delivery: every secret sealed with the target's public key and PUT, the
//! key fetched again once when GitHub no longer accepts it, each push audited and then
//! recorded in the ledger. Sealing runs ahead of the pushes on a blocking thread
//! (`spawn_sealer`).

use chrono::Utc;
use futures::stream;

use super::Applier;
use crate::github::error::explain;
use crate::github::limits::MAX_VALUE_BYTES;
use crate::ledger::{ClaimRecord, Entry, PushRecord};
use crate::model::{PublicKey, SecretScope};
use crate::plan::TargetPlan;
use crate::policy::Policy;
use crate::seal::seal;
use crate::source::SourceValue;

impl Applier<'_> {
    /// Seals (or takes from `presealed`, in [`pushed_secrets`] order) and PUTs each secret
    /// of `t` that receives `value`, one after another.
    pub(super) async fn push_target(
        &self,
        policy: &Policy,
        t: &TargetPlan,
        mut key: PublicKey,
        value: &SourceValue,
        mut presealed: Vec<Option<String>>,
    ) -> TargetOutcome {
        let mut out = TargetOutcome::default();
        // Claimed before the first PUT: a process that dies after GitHub's answer but before
        // the push record is written leaves a secret whose `updated_at` the claim explains,
        // so the next run pushes again instead of taking rotor's own write for someone
        // else's.
        let claim = Entry::Claim(ClaimRecord {
            policy: policy.name.clone(),
            scope: (*t.scope).clone(),
            secrets: pushed_secrets(t).map(|s| s.name.to_string()).collect(),
            version: Some(value.version),
            at: Utc::now(),
        });
        if !self.stopping() {
            if let Err(e) = self.record(claim) {
                for s in pushed_secrets(t) {
                    out.failures.push((
                        (*t.scope).clone(),
                        Some(s.name.to_string()),
                        None,
                        format!("not pushed: recording the claim in the ledger failed: {e}"),
                    ));
                }
                out.ledger_error = Some(format!("recording a claim in the ledger failed: {e}"));
                return out;
            }
        }
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
                    format!(
                        "the source has no field `{}` (version {})",
                        s.field, value.version
                    ),
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
                let ahead = presealed
                    .get_mut(i)
                    .and_then(Option::take)
                    .filter(|_| attempt == 1);
                let sealed = match ahead.map(Ok).unwrap_or_else(|| seal(&key.key, plaintext)) {
                    Ok(c) => c,
                    // The key (perhaps a cached one) cannot seal: fetch it again once, so
                    // that a bad key is not kept for the next runs.
                    Err(e) if attempt == 1 => match self.fetch_key(&t.scope).await {
                        Ok(k) => {
                            key = k;
                            continue;
                        }
                        Err(fetch) => {
                            break Err((
                                fetch.status,
                                format!(
                                    "sealing failed: {e}; fetching the key again failed: {}",
                                    explain(&t.scope, &fetch)
                                ),
                                fetch.request_id.clone(),
                            ))
                        }
                    },
                    Err(e) => break Err((None, format!("sealing failed: {e}"), None)),
                };
                match self
                    .ctx
                    .github
                    .put_secret_with_meta(
                        &t.scope,
                        &s.name,
                        &sealed,
                        &key.key_id,
                        t.access.as_ref(),
                    )
                    .await
                {
                    Ok(receipt) => break Ok(receipt),
                    // GitHub refuses a key id that is no longer current: fetch the key again once.
                    Err(e) if e.status == Some(422) && attempt == 1 => match self
                        .fetch_key(&t.scope)
                        .await
                    {
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
                    if let Err(e) = self.audit_push(
                        policy,
                        &t.scope,
                        &s.name,
                        Some(value.version),
                        Some(&key.key_id),
                        result,
                        receipt.request_id,
                        None,
                    ) {
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
                        out.ledger_error =
                            Some(format!("recording a push in the ledger failed: {e}"));
                    }
                }
                Err((status, message, request_id)) => {
                    let failure = Some((status, message.as_str()));
                    if let Err(e) = self.audit_push(
                        policy,
                        &t.scope,
                        &s.name,
                        Some(value.version),
                        Some(&key.key_id),
                        "failed",
                        request_id,
                        failure,
                    ) {
                        out.ledger_error.get_or_insert(e);
                    }
                    out.failures.push((
                        (*t.scope).clone(),
                        Some(s.name.to_string()),
                        status,
                        message,
                    ))
                }
            }
        }
        out
    }
}

/// The secrets of a target that receive a value, in the order `push_target` sends them.
pub(super) fn pushed_secrets(t: &TargetPlan) -> impl Iterator<Item = &crate::plan::SecretPlan> {
    t.secrets.iter().filter(|s| s.action.sends_value())
}

/// Seals every value `deliverable` needs on a blocking thread, at most `ahead` targets
/// ahead of the pushes that consume them; yields (index into `deliverable`, one sealed
/// value per secret in [`pushed_secrets`] order). A value that cannot be sealed (no such
/// field, a malformed key) is `None`: `push_target` seals it again and reports why.
/// Plaintext crosses the thread only as `SecretString`; what comes back is ciphertext.
pub(super) fn spawn_sealer(
    deliverable: &[(&TargetPlan, PublicKey)],
    value: &SourceValue,
    ahead: usize,
) -> impl futures::Stream<Item = (usize, Vec<Option<String>>)> + use<> {
    let jobs: Vec<(String, Vec<std::sync::Arc<str>>)> = deliverable
        .iter()
        .map(|(t, key)| {
            (
                key.key.clone(),
                pushed_secrets(t).map(|s| s.field.clone()).collect(),
            )
        })
        .collect();
    let fields = std::sync::Arc::clone(&value.fields);
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
    stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
}

/// What became of one target's secrets.
#[derive(Default)]
pub(super) struct TargetOutcome {
    pub(super) created: usize,
    pub(super) updated: usize,
    pub(super) failures: Vec<(SecretScope, Option<String>, Option<u16>, String)>,
    /// Recording in the ledger or the audit log failed.
    pub(super) ledger_error: Option<String>,
    pub(super) skipped: usize,
}
