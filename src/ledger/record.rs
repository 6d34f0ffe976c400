//! Ledger records and the state they fold into.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::txn::{LeaseRecord, TxnBook, TxnRecord};
use crate::model::SecretScope;

/// One line of the journal.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Entry {
    /// A policy's source produced a new version.
    Rotation(RotationRecord),
    /// A target accepted a sealed value (GitHub answered 201 or 204).
    Push(PushRecord),
    /// A push to a target failed.
    Failure(FailureRecord),
    /// A scope's public key, kept so that later runs need not fetch it again (it is public).
    Key(KeyRecord),
    /// A rotation transaction reached a state (policies with `verify` or `rollout`).
    Txn(TxnRecord),
    /// rotor revoked or renewed a dynamic credential's lease.
    Lease(LeaseRecord),
    /// rotor is about to write these secrets of a target (before the PUTs), or has just
    /// changed who may use them: a secret GitHub shows as updated around then was written
    /// by rotor, even if the process died before it could record the push.
    Claim(ClaimRecord),
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ClaimRecord {
    pub policy: String,
    pub scope: SecretScope,
    /// GitHub secret names.
    pub secrets: Vec<String>,
    /// The version about to be pushed (`None` for a change of access only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct KeyRecord {
    pub scope: SecretScope,
    pub key_id: String,
    /// Base64 of the 32-byte public key.
    pub key: String,
    /// When it was fetched from GitHub.
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RotationRecord {
    pub policy: String,
    pub version: u64,
    pub at: DateTime<Utc>,
    /// Why it rotated (`initial`, `due`, `max_age`, `forced`, `unconvergeable`).
    pub reason: String,
    /// Set only by compaction: the number of rotations this record stands for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_rotations: Option<u64>,
    /// When the value made expires, when its issuer says (a runner registration token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PushRecord {
    pub policy: String,
    pub scope: SecretScope,
    pub secret: String,
    pub version: u64,
    pub key_id: String,
    pub at: DateTime<Utc>,
    /// `created` or `updated`.
    pub outcome: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FailureRecord {
    pub policy: String,
    pub scope: SecretScope,
    pub secret: Option<String>,
    pub version: Option<u64>,
    pub at: DateTime<Utc>,
    pub message: String,
}

/// What the ledger knows about one policy.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct PolicyState {
    /// The latest version rotor rotated to (or first pushed, for Vault-held values).
    pub version: Option<u64>,
    pub rotated_at: Option<DateTime<Utc>>,
    pub rotations: u64,
    /// When the current version expires, when known (a runner registration token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    /// Transactions (verify/rollout) and dynamic leases.
    #[serde(skip_serializing_if = "is_empty_book")]
    pub txn: TxnBook,
}

fn is_empty_book(b: &TxnBook) -> bool {
    *b == TxnBook::default()
}

/// What the ledger knows about one secret in one target.
///
/// A fleet's ledger holds one of these per policy, target and secret (100,000s), so the
/// strings they repeat (policy, scope, secret name, key id) are shared, not copied.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TargetState {
    pub scope: Arc<SecretScope>,
    pub secret: Arc<str>,
    /// The last version pushed successfully, with when and with which key.
    pub pushed: Option<PushedState>,
    /// The last failure, if it came after the last success.
    pub failure: Option<Box<FailureState>>,
    /// The last time rotor set out to write this secret, when later than `pushed` (a push
    /// it may have made but not recorded, or a change of access).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub claimed: Option<DateTime<Utc>>,
}

impl TargetState {
    /// The last time rotor wrote (or may have written) this secret: GitHub's `updated_at`
    /// later than this, beyond clock skew, is someone else's change.
    pub fn last_written(&self) -> Option<DateTime<Utc>> {
        self.pushed.as_ref().map(|p| p.at).max(self.claimed)
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PushedState {
    pub version: u64,
    pub at: DateTime<Utc>,
    pub key_id: Arc<str>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FailureState {
    pub version: Option<u64>,
    pub at: DateTime<Utc>,
    pub message: String,
}

/// Key of a target record: (policy, scope key, upper-case secret name).
pub type TargetKey = (Arc<str>, Arc<str>, Arc<str>);

/// The folded state of the journal.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct LedgerState {
    pub policies: BTreeMap<String, PolicyState>,
    #[serde(serialize_with = "serialize_targets")]
    pub targets: BTreeMap<TargetKey, TargetState>,
    /// The last public key seen per scope, by scope key.
    #[serde(skip)]
    pub keys: BTreeMap<String, KeyRecord>,
    /// One copy of each string and scope the records repeat.
    #[serde(skip)]
    shared: crate::intern::Interner,
}

fn serialize_targets<S: serde::Serializer>(
    t: &BTreeMap<TargetKey, TargetState>,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_seq(t.iter().map(|((policy, _, _), v)| (policy, v)))
}

/// The key a target record is found under (not shared: for lookups).
pub fn target_key(policy: &str, scope: &SecretScope, secret: &str) -> TargetKey {
    (
        Arc::from(policy),
        Arc::from(scope.key()),
        Arc::from(secret.to_ascii_uppercase()),
    )
}

impl LedgerState {
    /// Fold one entry into the state.
    pub fn apply(&mut self, e: &Entry) {
        match e {
            Entry::Rotation(r) => {
                let p = self.policies.entry(r.policy.clone()).or_default();
                if p.version.is_none_or(|v| r.version >= v) {
                    p.version = Some(r.version);
                    p.rotated_at = Some(r.at);
                    p.expires_at = r.expires_at;
                }
                p.rotations = r.total_rotations.unwrap_or(p.rotations.saturating_add(1));
            }
            Entry::Push(r) => {
                let key_id = self.shared.str(&r.key_id);
                let t = self.target_mut(&r.policy, &r.scope, &r.secret);
                t.pushed = Some(PushedState {
                    version: r.version,
                    at: r.at,
                    key_id,
                });
                t.failure = None;
                if t.claimed.is_some_and(|c| c <= r.at) {
                    t.claimed = None;
                }
            }
            Entry::Claim(c) => {
                for secret in &c.secrets {
                    let t = self.target_mut(&c.policy, &c.scope, secret);
                    if t.last_written().is_none_or(|w| c.at > w) {
                        t.claimed = Some(c.at);
                    }
                }
            }
            Entry::Failure(r) => {
                let secret = r.secret.clone().unwrap_or_default();
                let t = self.target_mut(&r.policy, &r.scope, &secret);
                t.failure = Some(Box::new(FailureState {
                    version: r.version,
                    at: r.at,
                    message: r.message.clone(),
                }));
            }
            Entry::Key(k) => {
                self.keys.insert(k.scope.key(), k.clone());
            }
            Entry::Txn(r) => {
                let p = self.policies.entry(r.policy.clone()).or_default();
                p.txn.apply(r);
            }
            Entry::Lease(r) => {
                let p = self.policies.entry(r.policy.clone()).or_default();
                p.txn.apply_lease(r);
            }
        }
    }

    /// The public key last recorded for a scope.
    pub fn key(&self, scope: &SecretScope) -> Option<&KeyRecord> {
        self.keys.get(&scope.key())
    }

    fn target_mut(&mut self, policy: &str, scope: &SecretScope, secret: &str) -> &mut TargetState {
        let upper = secret.to_ascii_uppercase();
        let (scope_key, scope) = self.shared.scope(scope);
        let key = (self.shared.str(policy), scope_key, self.shared.str(&upper));
        let secret = Arc::clone(&key.2);
        self.targets.entry(key).or_insert_with(|| TargetState {
            scope,
            secret,
            pushed: None,
            failure: None,
            claimed: None,
        })
    }

    pub fn target(&self, policy: &str, scope: &SecretScope, secret: &str) -> Option<&TargetState> {
        self.targets.get(&target_key(policy, scope, secret))
    }

    /// Every target record of one policy.
    pub fn targets_of<'a>(&'a self, policy: &'a str) -> impl Iterator<Item = &'a TargetState> + 'a {
        self.targets
            .iter()
            .filter(move |((p, _, _), _)| **p == *policy)
            .map(|(_, v)| v)
    }

    /// Entries that reproduce this state (used to compact the journal).
    pub fn to_entries(&self) -> Vec<Entry> {
        let mut out = Vec::new();
        for (name, p) in &self.policies {
            if let (Some(version), Some(at)) = (p.version, p.rotated_at) {
                out.push(Entry::Rotation(RotationRecord {
                    policy: name.clone(),
                    version,
                    at,
                    reason: "compacted".into(),
                    total_rotations: Some(p.rotations),
                    expires_at: p.expires_at,
                }));
            }
        }
        for (name, p) in &self.policies {
            let (txns, leases) = p.txn.to_records(name);
            out.extend(txns.into_iter().map(Entry::Txn));
            out.extend(leases.into_iter().map(Entry::Lease));
        }
        out.extend(self.keys.values().cloned().map(Entry::Key));
        for ((policy, _, _), t) in &self.targets {
            if let Some(p) = &t.pushed {
                out.push(Entry::Push(PushRecord {
                    policy: policy.to_string(),
                    scope: (*t.scope).clone(),
                    secret: t.secret.to_string(),
                    version: p.version,
                    key_id: p.key_id.to_string(),
                    at: p.at,
                    outcome: "compacted".into(),
                }));
            }
            if let Some(at) = t.claimed {
                out.push(Entry::Claim(ClaimRecord {
                    policy: policy.to_string(),
                    scope: (*t.scope).clone(),
                    secrets: vec![t.secret.to_string()],
                    version: None,
                    at,
                }));
            }
            if let Some(f) = &t.failure {
                out.push(Entry::Failure(FailureRecord {
                    policy: policy.to_string(),
                    scope: (*t.scope).clone(),
                    secret: Some(t.secret.to_string()),
                    version: f.version,
                    at: f.at,
                    message: f.message.clone(),
                }));
            }
        }
        out
    }
}
