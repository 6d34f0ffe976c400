//! `rotor rollback POLICY [--to VERSION]`: an earlier stored version becomes the current
//! one again. The version is written back at the source as a new KV version (check-and-set
//! on the current one), so Vault's current value is the one the targets will hold; the
//! apply that follows pushes it to every target, through the policy's canaries and
//! verification when it has them. Values stored nowhere cannot be rolled back.

use chrono::Utc;

use crate::audit::{AuditEvent, AuditRecord};
use crate::context::Context;
use crate::ledger::{Entry, RotationRecord};
use crate::policy::Policy;

/// Why a rollback did not start.
#[derive(Debug, thiserror::Error)]
pub enum RollbackError {
    /// Asked for something that cannot be done (bad input: exit 2).
    #[error("{0}")]
    Refused(String),
    /// The source could not be read or written (exit 1).
    #[error("{0}")]
    Failed(String),
}

/// What the write-back made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollbackStart {
    /// The version whose value comes back.
    pub to: u64,
    /// The source's current version before.
    pub from: u64,
    /// The new version holding `to`'s value.
    pub restored_as: u64,
}

/// Writes version `to` (default: the one before the current, skipping versions that
/// failed verification) of `policy`'s source back as its current version, and records it
/// in the ledger and the audit log.
pub async fn start(
    ctx: &Context,
    policy: &Policy,
    to: Option<u64>,
) -> Result<RollbackStart, RollbackError> {
    if !policy.source.is_stored() {
        return Err(RollbackError::Refused(format!(
            "policy `{}` cannot be rolled back: its values are stored nowhere (a `generate` without `store`, or a dynamic `vault_read`), so no earlier value exists to push again",
            policy.name
        )));
    }
    let from = ctx
        .sources
        .current_version(&policy.source)
        .await
        .map_err(|e| RollbackError::Failed(format!("reading the source failed: {e}")))?
        .ok_or_else(|| RollbackError::Refused("the source holds no version yet".into()))?;
    let failed = ctx
        .ledger
        .lock()
        .map(|l| {
            l.state()
                .policies
                .get(&policy.name)
                .map(|p| p.txn.failed_versions.clone())
                .unwrap_or_default()
        })
        .unwrap_or_default();
    let to = match to {
        Some(v) if v >= from => {
            return Err(RollbackError::Refused(format!(
                "--to {v}: the current version is {from}; roll back to an earlier one"
            )))
        }
        Some(0) => return Err(RollbackError::Refused("--to 0: versions start at 1".into())),
        Some(v) if failed.contains(&v) => {
            return Err(RollbackError::Refused(format!(
                "--to {v}: that version failed verification and is never pushed again"
            )))
        }
        Some(v) => v,
        None => (1..from)
            .rev()
            .find(|v| !failed.contains(v))
            .ok_or_else(|| {
                RollbackError::Refused(format!(
                    "no earlier version to roll back to (the current version is {from})"
                ))
            })?,
    };
    let restored_as = ctx
        .sources
        .restore(&policy.source, to, from)
        .await
        .map_err(|e| {
            RollbackError::Failed(format!(
                "writing version {to} back at the source failed: {e}"
            ))
        })?;
    let mut r = AuditRecord::new(AuditEvent::Rollback, &policy.name, "restored");
    r.owner = policy.owner.clone();
    r.source_version = Some(restored_as);
    r.reason = Some("rollback".into());
    r.message = Some(format!(
        "version {to} written back as version {restored_as} (was {from})"
    ));
    if let Some(log) = &ctx.audit {
        log.write(&r)
            .map_err(|e| RollbackError::Failed(format!("writing the audit log failed: {e}")))?;
    }
    if let Ok(mut l) = ctx.ledger.lock() {
        l.append(Entry::Rotation(RotationRecord {
            policy: policy.name.clone(),
            version: restored_as,
            at: Utc::now(),
            reason: "rollback".into(),
            total_rotations: None,
            expires_at: None,
        }))
        .map_err(|e| RollbackError::Failed(format!("recording the rollback failed: {e}")))?;
    }
    tracing::info!(policy = %policy.name, to, from, restored_as, "rolled back at the source");
    Ok(RollbackStart {
        to,
        from,
        restored_as,
    })
}
