//! A pass over just the repositories a webhook names ("targeted"): each is read once
//! (`GET /repos/{o}/{r}`), the policies whose selection can match it push their *current*
//! version to its targets (no rotation, no listing of the owner), and the `selected`
//! organization secrets rotor keeps gain or lose it. The requests made are proportional to
//! the repositories in the event, not to the fleet.
//!
//! Policies this cannot serve alone are named in `FocusOutcome::need_full_pass`, for the
//! caller to run their own pass now: a value stored nowhere (a `generate` without `store`,
//! a dynamic `vault_read`) cannot be sent again without rotating for every target, and a
//! policy with `verify` or `rollout` rotates only as a transaction.

use std::collections::{BTreeMap, BTreeSet};

use chrono::Utc;
use futures::stream::{self, StreamExt};

use crate::apply::{Applier, Report};
use crate::context::Context;
use crate::model::{Repo, SecretScope};
use crate::observe::{observe_with, Focus};
use crate::plan::resolve::Matcher;
use crate::plan::PlanOptions;
use crate::policy::{Policy, PolicySet, TargetSpec, Visibility};
use crate::webhook::{RepoRef, Work};

/// What a targeted pass did.
#[derive(Debug, Default)]
pub struct FocusOutcome {
    /// Repositories read from GitHub.
    pub repos: usize,
    /// Policies that had a target among them and were served here.
    pub policies: Vec<String>,
    /// Policies whose own pass should run now (see the module's doc).
    pub need_full_pass: Vec<String>,
    /// Repositories that joined or left `selected` organization secrets.
    pub selected_added: usize,
    pub selected_removed: usize,
    /// Failures, in GitHub's words (a repository that could not be read, a push, a
    /// selected-list change).
    pub failures: Vec<String>,
    /// The apply's report for the served policies.
    pub report: Option<Report>,
}

impl FocusOutcome {
    pub fn pushed(&self) -> usize {
        self.report.as_ref().map_or(0, |r| r.summary.pushed)
    }
}

/// Carries out `work` for the policies of `set` (the caller leaves out the ones whose pass
/// runs right now).
pub async fn provision(ctx: &Context, set: &PolicySet, work: &Work) -> FocusOutcome {
    let mut out = FocusOutcome::default();
    // Whole-path syncs get their secrets first: the selections below need their names.
    let expanded = crate::observe::expand::expand(set, &ctx.sources, ctx.concurrency).await;
    let set = expanded.as_ref().map_or(set, |e| &e.set);
    for owner in &work.invalidate {
        ctx.github.forget_owner(owner);
    }
    let mut wanted: Vec<&RepoRef> = work.reconcile.iter().collect();
    wanted.sort();
    wanted.dedup_by(|a, b| {
        a.owner.eq_ignore_ascii_case(&b.owner) && a.name.eq_ignore_ascii_case(&b.name)
    });
    let fetched: Vec<(&RepoRef, Result<Repo, String>)> = stream::iter(wanted)
        .map(|r| async move {
            let got = ctx
                .github
                .get_repo(&r.owner, &r.name)
                .await
                .map_err(|e| e.to_string());
            (r, got)
        })
        .buffer_unordered(ctx.concurrency.max(1))
        .collect()
        .await;
    let mut focus = Focus::default();
    for (r, got) in fetched {
        out.repos += 1;
        match got {
            Ok(repo) => focus
                .repos
                .entry(repo.owner().to_ascii_lowercase())
                .or_default()
                .push(repo),
            Err(e) => out
                .failures
                .push(format!("reading {}/{} failed: {e}", r.owner, r.name)),
        }
    }

    let mut derived = PolicySet::default();
    for p in &set.policies {
        let targets = focused_targets(p, &focus);
        let selected = selected_targets(p, &focus, &work.withdraw);
        if targets.is_empty() && selected.is_empty() {
            continue;
        }
        if !targets.is_empty() && (!p.source.is_stored() || p.is_transactional()) {
            out.need_full_pass.push(p.name.clone());
            continue;
        }
        out.policies.push(p.name.clone());
        if !targets.is_empty() {
            derived.policies.push(Policy {
                targets,
                ..p.clone()
            });
        }
    }

    if !derived.policies.is_empty() {
        let state = ctx
            .ledger
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .snapshot();
        let now = Utc::now();
        let observed = observe_with(
            &derived,
            &ctx.github,
            &ctx.sources,
            &state,
            now,
            &BTreeSet::new(),
            ctx.concurrency,
            None,
            Some(&focus),
        )
        .await;
        let mut plan = crate::plan::plan(
            &derived,
            &observed,
            &state,
            now,
            &PlanOptions {
                hold_version: true,
                ..Default::default()
            },
        );
        drop(state);
        if let Some(e) = &expanded {
            e.finish(&mut plan);
        }
        let report = Applier::new(ctx).apply(&derived, &plan).await;
        for p in &report.policies {
            out.failures.extend(
                p.failures
                    .iter()
                    .map(|f| format!("{}: {}", f.target, f.message)),
            );
        }
        out.report = Some(report);
    }

    update_selected(ctx, set, &focus, work, &mut out).await;
    out
}

/// The repository-level targets of `p` that can reach a focus repository.
fn focused_targets(p: &Policy, focus: &Focus) -> Vec<TargetSpec> {
    p.targets
        .iter()
        .filter(|t| match t {
            TargetSpec::Repo { owner, repo, .. } => focus
                .repos
                .get(&owner.to_ascii_lowercase())
                .is_some_and(|rs| rs.iter().any(|r| r.name.eq_ignore_ascii_case(repo))),
            TargetSpec::OrgRepos { org, selector, .. } => {
                let m = Matcher::new(selector);
                focus
                    .repos
                    .get(&org.to_ascii_lowercase())
                    .is_some_and(|rs| rs.iter().any(|r| m.selects(r)))
            }
            TargetSpec::OrgSecret { .. } | TargetSpec::VaultKv(_) => false,
        })
        .cloned()
        .collect()
}

/// The `selected` organization-secret targets of `p` whose owner a focus or withdrawn
/// repository belongs to.
fn selected_targets<'p>(
    p: &'p Policy,
    focus: &Focus,
    withdrawn: &[RepoRef],
) -> Vec<&'p TargetSpec> {
    p.targets
        .iter()
        .filter(|t| match t {
            TargetSpec::OrgSecret {
                org,
                visibility: Visibility::Selected,
                ..
            } => {
                focus.repos.contains_key(&org.to_ascii_lowercase())
                    || withdrawn.iter().any(|w| w.owner.eq_ignore_ascii_case(org))
            }
            _ => false,
        })
        .collect()
}

/// Adds each focus repository to the `selected` organization secrets whose selection
/// matches it, and takes it (and every withdrawn repository) out of those it no longer
/// matches — only for secrets rotor keeps (the ledger has a push of it).
async fn update_selected(
    ctx: &Context,
    set: &PolicySet,
    focus: &Focus,
    work: &Work,
    out: &mut FocusOutcome,
) {
    // (org, app, secret name, repository id) -> add (true) or remove (false)
    let mut changes: BTreeMap<(String, crate::policy::App, String, u64), bool> = BTreeMap::new();
    {
        let ledger = ctx.ledger.lock().unwrap_or_else(|p| p.into_inner());
        let state = ledger.state();
        for p in &set.policies {
            if out.need_full_pass.contains(&p.name) {
                continue;
            }
            for t in selected_targets(p, focus, &work.withdraw) {
                let TargetSpec::OrgSecret {
                    org, selector, app, ..
                } = t
                else {
                    continue;
                };
                let scope = SecretScope::Org {
                    org: org.clone(),
                    app: *app,
                };
                let matcher = selector.as_ref().map(Matcher::new);
                for name in p.secrets.keys() {
                    let kept = state
                        .target(&p.name, &scope, name)
                        .is_some_and(|s| s.pushed.is_some());
                    if !kept {
                        continue;
                    }
                    for r in focus
                        .repos
                        .get(&org.to_ascii_lowercase())
                        .into_iter()
                        .flatten()
                    {
                        let wants = matcher.as_ref().is_some_and(|m| m.selects(r));
                        if wants || work.may_withdraw {
                            changes.insert((org.clone(), *app, name.clone(), r.id), wants);
                        }
                    }
                    for w in work
                        .withdraw
                        .iter()
                        .filter(|w| w.owner.eq_ignore_ascii_case(org))
                    {
                        if let Some(id) = w.id {
                            changes.insert((org.clone(), *app, name.clone(), id), false);
                        }
                    }
                }
            }
        }
    }
    let results: Vec<(bool, Result<(), String>, String)> = stream::iter(changes)
        .map(|((org, app, name, id), add)| async move {
            let r = ctx
                .github
                .set_selected_repo(&org, app, &name, id, add)
                .await
                .map_err(|e| e.to_string());
            (add, r, format!("{org} {name} repository {id}"))
        })
        .buffer_unordered(ctx.concurrency.max(1))
        .collect()
        .await;
    for (add, r, what) in results {
        match r {
            Ok(()) if add => out.selected_added += 1,
            Ok(()) => out.selected_removed += 1,
            Err(e) => out.failures.push(format!(
                "{} {what} failed: {e}",
                if add { "selecting" } else { "unselecting" }
            )),
        }
    }
}
