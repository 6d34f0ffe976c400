//! One pass: observe -> plan -> apply for a set of policies. `rotor apply` makes one; the
//! daemon makes one each time a policy is due, needs a retry, or its source moved.

use std::collections::BTreeSet;
use std::sync::Mutex;

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use crate::apply::{Applier, Progress, Report};
use crate::audit::AuditLog;
use crate::github::Client;
use crate::ledger::{Ledger, LedgerState};
use crate::observe::observe;
use crate::plan::{self, Plan, PlanOptions};
use crate::policy::PolicySet;
use crate::source::Sources;

/// What a pass needs to reach the outside world.
pub struct Pass<'a> {
    pub github: &'a Client,
    pub sources: &'a Sources,
    pub ledger: &'a Mutex<Ledger>,
    /// Requests (listings, keys, pushes) in flight at once.
    pub concurrency: usize,
    pub audit: Option<&'a AuditLog>,
    /// Once cancelled, apply starts nothing new (see `Applier::stop`).
    pub stop: Option<&'a CancellationToken>,
}

impl Pass<'_> {
    /// Observe and plan against the ledger as it is now. `force`: policies to rotate
    /// whether due or not.
    pub async fn plan(&self, set: &PolicySet, force: &BTreeSet<String>) -> Plan {
        // A snapshot, not a copy: the lock cannot be held across the network reads.
        let state = self
            .ledger
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .snapshot();
        plan_with_state(
            set,
            self.github,
            self.sources,
            &state,
            force,
            self.concurrency,
        )
        .await
    }

    fn applier(&self) -> Applier<'_> {
        Applier {
            github: self.github,
            sources: self.sources,
            ledger: self.ledger,
            concurrency: self.concurrency,
            audit: self.audit,
            stop: self.stop,
        }
    }

    /// Carry out `plan`.
    pub async fn apply(&self, set: &PolicySet, plan: &Plan) -> Report {
        self.applier().apply(set, plan).await
    }

    /// Carry out `plan`, telling `progress` as targets are done.
    pub async fn apply_with_progress(
        &self,
        set: &PolicySet,
        plan: &Plan,
        progress: &dyn Progress,
    ) -> Report {
        self.applier()
            .apply_with_progress(set, plan, progress)
            .await
    }

    /// `plan`, then `apply`.
    pub async fn run(&self, set: &PolicySet, force: &BTreeSet<String>) -> (Plan, Report) {
        let plan = self.plan(set, force).await;
        let report = self.apply(set, &plan).await;
        (plan, report)
    }
}

/// Observe and plan against a given ledger state (`rotor plan` reads the ledger without
/// taking its lock).
pub async fn plan_with_state(
    set: &PolicySet,
    github: &Client,
    sources: &Sources,
    ledger: &LedgerState,
    force: &BTreeSet<String>,
    concurrency: usize,
) -> Plan {
    let now = Utc::now();
    let observed = observe(set, github, sources, ledger, now, force, concurrency).await;
    plan::plan(
        set,
        &observed,
        ledger,
        now,
        &PlanOptions {
            force: force.clone(),
        },
    )
}
