//! The loop's side of the listener's messages: webhook work (a targeted pass over the
//! event's repositories), and the control API's runs and plans.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};

use super::{Loop, PassDone};
use crate::daemon::inbox::{Inbound, RunAnswer};
use crate::focus::FocusOutcome;
use crate::policy::{PolicySet, TargetSpec};
use crate::webhook::Work;

/// A targeted pass finished.
pub(super) struct FocusDone {
    outcome: FocusOutcome,
    label: String,
    received: Instant,
    /// Policies left out because their own pass was running.
    busy: Vec<String>,
    /// Owners whose policies should run a normal pass.
    owner_passes: Vec<String>,
}

/// Run requests waiting for a pass, and the ones a started pass will answer.
#[derive(Default)]
pub(super) struct Waiters {
    waiting: HashMap<String, Vec<oneshot::Sender<RunAnswer>>>,
    claimed: HashMap<u64, Vec<(String, oneshot::Sender<RunAnswer>)>>,
}

impl Waiters {
    /// A pass `id` starts for `names`: it answers the requests waiting for them.
    pub(super) fn claim(&mut self, id: u64, names: &[String]) {
        let mut mine = Vec::new();
        for n in names {
            for reply in self.waiting.remove(n).unwrap_or_default() {
                mine.push((n.clone(), reply));
            }
        }
        if !mine.is_empty() {
            self.claimed.insert(id, mine);
        }
    }

    /// Pass `done` finished: tell whoever asked for it.
    pub(super) fn answer(&mut self, done: &PassDone) {
        for (name, reply) in self.claimed.remove(&done.id).unwrap_or_default() {
            let report = done.report.policies.iter().find(|p| p.policy == name);
            let converged = !done.panicked
                && report
                    .is_some_and(|p| p.error.is_none() && p.failures.is_empty() && p.skipped == 0);
            let report = report
                .and_then(|r| serde_json::to_value(r).ok())
                .unwrap_or(serde_json::Value::Null);
            let _ = reply.send(RunAnswer::Done { converged, report });
        }
    }
}

fn names_owner(t: &TargetSpec, owner: &str) -> bool {
    match t {
        TargetSpec::Repo { owner: o, .. } => o.eq_ignore_ascii_case(owner),
        TargetSpec::OrgRepos { org, .. } | TargetSpec::OrgSecret { org, .. } => {
            org.eq_ignore_ascii_case(owner)
        }
        TargetSpec::VaultKv(_) => false,
    }
}

impl Loop {
    pub(super) fn inbound(&mut self, msg: Inbound, focus_done: mpsc::UnboundedSender<FocusDone>) {
        match msg {
            Inbound::Webhook {
                work,
                label,
                received,
            } => self.spawn_focus(work, label, received, focus_done),
            Inbound::Run {
                policy,
                force,
                reply,
            } => {
                if self.shared.status().shutting_down {
                    let _ = reply.send(RunAnswer::ShuttingDown);
                    return;
                }
                let Some(slot) = self.slots.slots.get_mut(&policy) else {
                    let _ = reply.send(RunAnswer::Unknown);
                    return;
                };
                slot.run_now = true;
                if force {
                    self.forced.insert(policy.clone());
                }
                tracing::info!(policy = %policy, force, "control API: a pass is asked for");
                self.waiters.waiting.entry(policy).or_default().push(reply);
            }
            Inbound::Plan { reply } => {
                let shared = Arc::clone(&self.shared);
                self.tracker.spawn_local(async move {
                    let set = shared.policies();
                    let state = shared
                        .ctx
                        .ledger
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .snapshot();
                    let plan = crate::pass::plan_with_state(
                        &set,
                        &shared.ctx.github,
                        &shared.ctx.sources,
                        &state,
                        &BTreeSet::new(),
                        shared.ctx.concurrency,
                    )
                    .await;
                    let _ = reply.send(serde_json::to_value(&plan).unwrap_or_default());
                });
            }
        }
    }

    fn spawn_focus(
        &mut self,
        work: Work,
        label: String,
        received: Instant,
        done: mpsc::UnboundedSender<FocusDone>,
    ) {
        let all = self.shared.policies();
        let mut held = Vec::new();
        let mut busy = Vec::new();
        let mut set = PolicySet::default();
        for p in &all.policies {
            let guard = Arc::clone(self.guards.entry(p.name.clone()).or_default());
            match guard.try_lock_owned() {
                Ok(g) => {
                    held.push(g);
                    set.policies.push(p.clone());
                }
                Err(_) => busy.push(p.name.clone()),
            }
        }
        let shared = Arc::clone(&self.shared);
        let owner_passes = work.owner_passes.clone();
        self.tracker.spawn_local(async move {
            let _held = held;
            let outcome = crate::focus::provision(&shared.ctx, &set, &work).await;
            let _ = done.send(FocusDone {
                outcome,
                label,
                received,
                busy,
                owner_passes,
            });
        });
    }

    pub(super) fn finish_focus(&mut self, f: FocusDone) {
        let took = f.received.elapsed();
        let failed = !f.outcome.failures.is_empty();
        {
            let mut st = self.shared.status();
            *st.targeted
                .entry(if failed { "failed" } else { "converged" })
                .or_default() += 1;
            st.targeted_seconds.0 += took.as_secs_f64();
            st.targeted_seconds.1 += 1;
        }
        let mut again: BTreeSet<String> = f.outcome.need_full_pass.iter().cloned().collect();
        again.extend(f.busy.iter().cloned());
        for owner in &f.owner_passes {
            for slot in self.slots.slots.values() {
                if slot.policy.targets.iter().any(|t| names_owner(t, owner)) {
                    again.insert(slot.policy.name.clone());
                }
            }
        }
        for name in &again {
            if let Some(slot) = self.slots.slots.get_mut(name) {
                slot.run_now = true;
            }
        }
        if failed {
            tracing::warn!(
                event = %f.label, repos = f.outcome.repos, policies = ?f.outcome.policies,
                pushed = f.outcome.pushed(), failures = ?f.outcome.failures,
                took_ms = took.as_millis() as u64, "targeted pass left work undone"
            );
        } else {
            tracing::info!(
                event = %f.label, repos = f.outcome.repos, policies = ?f.outcome.policies,
                pushed = f.outcome.pushed(), selected_added = f.outcome.selected_added,
                selected_removed = f.outcome.selected_removed, full_passes = ?again,
                took_ms = took.as_millis() as u64, "targeted pass done"
            );
        }
    }
}
