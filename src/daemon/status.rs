//! What the daemon reports about itself and each policy: counters and gauges the scheduler
//! updates and the HTTP listener reads (`/metrics`, `/readyz`).

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::slots::PolicyOutcome;

/// Per-policy numbers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyStatus {
    pub rotations_ok: u64,
    pub rotations_failed: u64,
    pub pushes_created: u64,
    pub pushes_updated: u64,
    pub pushes_failed: u64,
    pub passes_converged: u64,
    pub passes_unconverged: u64,
    pub last_success: Option<DateTime<Utc>>,
    pub next_due: Option<DateTime<Utc>>,
    pub unconverged: usize,
    pub version: Option<u64>,
    pub in_flight: bool,
    pub last_error: Option<String>,
    pub verifications_ok: u64,
    pub verifications_failed: u64,
    /// Transactions that ended rolled back, and halted.
    pub rollbacks: u64,
    pub halts: u64,
    /// The state the last transaction reached.
    pub txn_state: Option<String>,
    /// Passes that panicked, and whether the last one did (shown by `/readyz`).
    pub passes_panicked: u64,
    pub last_pass_panicked: bool,
}

impl PolicyStatus {
    /// Counts one finished pass.
    pub fn record(&mut self, o: &PolicyOutcome, now: DateTime<Utc>) {
        self.rotations_ok += u64::from(o.rotated);
        self.rotations_failed += u64::from(o.rotation_failed);
        self.pushes_created += o.created as u64;
        self.pushes_updated += o.updated as u64;
        self.pushes_failed += o.failed as u64;
        self.verifications_ok += o.verifications_ok as u64;
        self.verifications_failed += o.verifications_failed as u64;
        match o.txn_state.as_deref() {
            Some("rolled_back") => self.rollbacks += 1,
            Some("halted") => self.halts += 1,
            _ => {}
        }
        if o.txn_state.is_some() {
            self.txn_state = o.txn_state.clone();
        }
        self.last_pass_panicked = o.panicked;
        if o.panicked {
            self.passes_panicked += 1;
            self.last_error = o.error.clone();
        } else if o.converged {
            self.passes_converged += 1;
            self.last_success = Some(now);
            self.last_error = None;
        } else {
            self.passes_unconverged += 1;
            self.last_error = o.error.clone();
        }
        if let Some(n) = o.unconverged {
            self.unconverged = n;
        }
        if o.version.is_some() {
            self.version = o.version;
        }
    }
}

/// The whole daemon's numbers.
#[derive(Debug, Clone, Default)]
pub struct Status {
    pub policies: BTreeMap<String, PolicyStatus>,
    pub reloads_ok: u64,
    pub reloads_failed: u64,
    /// Whether Vault answered the daemon's last request to it; `None` before any, or
    /// without Vault.
    pub vault_up: Option<bool>,
    /// Time left on the Vault token at the last check (`None`: never expires, or unknown).
    pub vault_token_ttl: Option<Duration>,
    /// Alerts by (kind, `sent` or `failed`).
    pub alerts: BTreeMap<(&'static str, &'static str), u64>,
    /// The daemon is draining: nothing new starts.
    pub shutting_down: bool,
    /// Webhook deliveries by event (`repository`, ...; `other` for the rest) and result
    /// (`accepted`, `duplicate`, `ignored`, `invalid`, or the refusal).
    pub webhooks: BTreeMap<(&'static str, &'static str), u64>,
    /// Targeted passes (for webhook events) by result (`converged`, `failed`).
    pub targeted: BTreeMap<&'static str, u64>,
    /// Seconds from receiving a delivery to the end of its targeted pass: sum and count.
    pub targeted_seconds: (f64, u64),
}

impl Status {
    /// Keeps exactly the named policies, adding empty entries for new ones.
    pub fn keep_policies<'a>(&mut self, names: impl Iterator<Item = &'a String>) {
        let mut next = BTreeMap::new();
        for name in names {
            let entry = self.policies.remove(name).unwrap_or_default();
            next.insert(name.clone(), entry);
        }
        self.policies = next;
    }

    /// Records whether Vault answered; says so in the log when that changes.
    pub fn set_vault_up(&mut self, up: bool, why: Option<&str>) {
        match (self.vault_up, up) {
            (Some(true) | None, false) => {
                tracing::error!(
                    error = why.unwrap_or(""),
                    "Vault is unavailable: rotations that need it wait until it answers again"
                )
            }
            (Some(false), true) => tracing::info!("Vault answers again"),
            _ => {}
        }
        self.vault_up = Some(up);
    }
}
