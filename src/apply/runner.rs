//! A `github_runner_token` policy's rotation: GitHub mints a registration token, and each
//! `vault_kv` target gets it as a new KV v2 version (check-and-set) with its `expires_at`.
//! The token exists only in a `SecretString` between GitHub's answer and Vault's write; the
//! ledger and the audit log record the KV version and the expiry, never the token.

use std::collections::BTreeMap;

use chrono::Utc;
use secrecy::SecretString;

use super::{Applier, PolicyReport};
use crate::ledger::{Entry, RotationRecord};
use crate::plan::PolicyPlan;
use crate::policy::{Policy, SourceSpec, TargetSpec};

/// The KV field the expiry is written under, beside the token's own key.
pub const EXPIRES_FIELD: &str = "expires_at";

impl Applier<'_> {
    pub(super) async fn apply_runner_token(
        &self,
        policy: &Policy,
        pp: &PolicyPlan,
        mut pr: PolicyReport,
    ) -> PolicyReport {
        let SourceSpec::GithubRunnerToken { owner, repo } = &policy.source else {
            return pr;
        };
        let Some(reason) = &pp.rotate else {
            return pr; // the current token is still fresh
        };
        if self.stopping() {
            pr.skipped += 1;
            return pr;
        }
        let minted = match self
            .ctx
            .github
            .runner_registration_token(owner, repo.as_deref())
            .await
        {
            Ok(t) => t,
            Err(e) => {
                let msg = format!("minting the runner registration token failed: {e}");
                let _ =
                    self.audit_rotation(policy, None, "failed", reason.code(), Some(msg.clone()));
                pr.error = Some(msg);
                return pr;
            }
        };
        let mut version = None;
        for t in &policy.targets {
            let TargetSpec::VaultKv(kv) = t else { continue };
            let key = kv.key.clone().unwrap_or_else(|| "token".to_string());
            let fields = BTreeMap::from([
                (key, minted.token.clone()),
                (
                    EXPIRES_FIELD.to_string(),
                    SecretString::from(minted.expires_at.to_rfc3339()),
                ),
            ]);
            match self.ctx.sources.write_kv(kv, &fields).await {
                Ok(v) => {
                    version = Some(version.map_or(v, |w: u64| w.max(v)));
                    pr.pushed += 1;
                    pr.created += 1;
                }
                Err(e) => {
                    pr.failures.push(super::report::Failure {
                        target: format!("vault kv {}/{}", kv.mount, kv.path),
                        secret: None,
                        status: None,
                        message: format!("writing the runner token failed: {e}"),
                    });
                }
            }
        }
        let Some(version) = version else {
            pr.error = Some("the runner token was minted but no vault_kv target took it".into());
            let _ = self.audit_rotation(policy, None, "failed", reason.code(), pr.error.clone());
            return pr;
        };
        let recorded = self.record(Entry::Rotation(RotationRecord {
            policy: policy.name.clone(),
            version,
            at: Utc::now(),
            reason: reason.code().to_string(),
            total_rotations: None,
            expires_at: Some(minted.expires_at),
        }));
        if let Err(e) = recorded {
            tracing::error!(policy = %policy.name, error = %e, "recording the runner token's rotation failed");
        }
        let _ = self.audit_rotation(policy, Some(version), "rotated", reason.code(), None);
        tracing::info!(
            policy = %policy.name, version, expires_at = %minted.expires_at.to_rfc3339(),
            "runner registration token written to Vault"
        );
        pr.rotated = Some(reason.code().to_string());
        pr.version = Some(version);
        pr
    }
}
