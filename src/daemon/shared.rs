//! The daemon's state that the loop, the passes, the HTTP listener and the token keeper
//! share (behind one `Arc`). It sits in a module of its own so that each of them imports
//! it and none imports the loop (`service`) back.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::alert::Alerter;
use super::status::Status;
use crate::context::Context;
use crate::policy::{PolicySet, SourceSpec};

/// What the loop, the passes and the HTTP listener share.
pub struct Shared {
    /// What every pass works with. Its audit log is always open in the daemon; its stop
    /// token is cancelled on SIGTERM/SIGINT: nothing new starts after it.
    pub ctx: Context,
    status: Mutex<Status>,
    needs_vault: AtomicBool,
    pub(super) alerter: Option<Alerter>,
    /// The policies loaded now (the loop replaces them on reload).
    policies: Mutex<Arc<PolicySet>>,
}

impl Shared {
    /// The daemon's state around `ctx`, with an empty status; `alerter` sends alerts to
    /// the webhook, when one is configured.
    pub fn new(ctx: Context, alerter: Option<Alerter>) -> Shared {
        Shared {
            ctx,
            status: Mutex::new(Status::default()),
            needs_vault: AtomicBool::new(false),
            alerter,
            policies: Mutex::new(Arc::new(PolicySet::default())),
        }
    }

    /// The status, locked briefly (never across an await).
    pub fn status(&self) -> MutexGuard<'_, Status> {
        self.status.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The policies loaded now.
    pub fn policies(&self) -> Arc<PolicySet> {
        Arc::clone(&self.policies.lock().unwrap_or_else(|p| p.into_inner()))
    }

    pub fn needs_vault(&self) -> bool {
        self.needs_vault.load(Ordering::Relaxed)
    }

    pub(super) fn set_policies(&self, set: &PolicySet) {
        *self.policies.lock().unwrap_or_else(|p| p.into_inner()) = Arc::new(set.clone());
        self.needs_vault.store(
            set.policies
                .iter()
                .any(|p| !matches!(p.source, SourceSpec::Generate { store: None, .. })),
            Ordering::Relaxed,
        );
        // What the ledger knows of each policy's last transaction, so the gauge is right
        // from the start (a restart) until this daemon's own passes say more.
        let recorded: Vec<(String, String)> = {
            let ledger = self.ctx.ledger.lock().unwrap_or_else(|p| p.into_inner());
            set.policies
                .iter()
                .filter_map(|p| {
                    let last = ledger.state().policies.get(&p.name)?.txn.last.as_ref()?;
                    Some((p.name.clone(), last.state.as_str().to_string()))
                })
                .collect()
        };
        let mut status = self.status();
        status.keep_policies(set.policies.iter().map(|p| &p.name));
        for (name, state) in recorded {
            if let Some(p) = status.policies.get_mut(&name) {
                p.txn_state.get_or_insert(state);
            }
        }
    }
}
