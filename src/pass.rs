//! One pass: observe -> plan -> apply for a set of policies. `rotor apply` makes one; the
//! daemon makes one each time a policy is due, needs a retry, or its source moved.

use std::collections::BTreeSet;

use chrono::Utc;

use crate::apply::{Applier, KeyPrefetch, Progress, Report};
use crate::context::Context;
use crate::github::Client;
use crate::ledger::LedgerState;
use crate::observe::observe_with;
use crate::plan::{self, Plan, PlanOptions};
use crate::policy::PolicySet;
use crate::source::Sources;

/// What a pass needs to reach the outside world: the [`Context`] it borrows (once its
/// `stop` is cancelled, apply starts nothing new; see `Applier`), and the public keys its
/// plan started fetching ahead for its apply.
pub struct Pass<'a> {
    pub ctx: &'a Context,
    prefetched: KeyPrefetch,
}

impl<'a> Pass<'a> {
    /// A pass working with `ctx`.
    pub fn new(ctx: &'a Context) -> Pass<'a> {
        Pass {
            ctx,
            prefetched: KeyPrefetch::new(),
        }
    }

    /// Observe and plan against the ledger as it is now. `force`: policies to rotate
    /// whether due or not. The public keys apply will need start arriving meanwhile (a
    /// pass plans in order to apply; `rotor plan` uses [`plan_with_state`], which does not).
    pub async fn plan(&self, set: &PolicySet, force: &BTreeSet<String>) -> Plan {
        // A snapshot, not a copy: the lock cannot be held across the network reads.
        let state = self
            .ctx
            .ledger
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .snapshot();
        observe_and_plan(
            set,
            &self.ctx.github,
            &self.ctx.sources,
            &state,
            force,
            self.ctx.concurrency,
            Some(&self.prefetched),
        )
        .await
    }

    fn applier(&self) -> Applier<'_> {
        Applier::new(self.ctx).with_prefetched(&self.prefetched)
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
    observe_and_plan(set, github, sources, ledger, force, concurrency, None).await
}

async fn observe_and_plan(
    set: &PolicySet,
    github: &Client,
    sources: &Sources,
    ledger: &LedgerState,
    force: &BTreeSet<String>,
    concurrency: usize,
    prefetch: Option<&KeyPrefetch>,
) -> Plan {
    let now = Utc::now();
    let expanded = crate::observe::expand::expand(set, sources, concurrency).await;
    let set = expanded.as_ref().map_or(set, |e| &e.set);
    let observed = observe_with(
        set,
        github,
        sources,
        ledger,
        now,
        force,
        concurrency,
        prefetch,
        None,
    )
    .await;
    let mut plan = plan::plan(
        set,
        &observed,
        ledger,
        now,
        &PlanOptions {
            force: force.clone(),
            ..Default::default()
        },
    );
    if let Some(e) = &expanded {
        e.finish(&mut plan);
    }
    plan
}
