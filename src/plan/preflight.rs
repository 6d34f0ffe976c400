//! Pre-flight checks across a whole plan, after every policy has been planned: what GitHub
//! would refuse is stopped here, per target, with the reason, before anything is written.
//!
//! - a generated value longer than GitHub's 48 KB;
//! - a GitHub App installation that is missing, or does not reach a repository, or lacks a
//!   permission the target needs (and organization Codespaces secrets, which no App may
//!   manage);
//! - two policies writing one secret name to one target (validation catches the static
//!   cases; this catches selectors written differently that meet at run time);
//! - more secrets than GitHub allows in a repository (100), environment (100) or
//!   organization (1,000), counting the names observed and the ones the plan adds;
//!
//! and, as warnings, a repository secret that shadows an organization secret of the same
//! name (workflows then see the repository's value).

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::model::{Plan, PlanWarning};
use super::resolve::is_listing_problem;
use crate::github::error::permissions_for;
use crate::github::limits::{holder, secret_limit, MAX_VALUE_BYTES};
use crate::model::plan::Observed;
use crate::model::{Repo, SecretScope};
use crate::policy::{App, Charset, PolicySet, SourceSpec, Visibility};

/// Runs every check; blocks targets by setting their `problem`, and returns warnings.
pub fn check(plan: &mut Plan, set: &PolicySet, observed: &Observed) -> Vec<PlanWarning> {
    value_sizes(plan, set);
    if observed.app_auth {
        installations(plan, observed);
    }
    doubled_names(plan);
    limits(plan, observed);
    shadows(plan, observed)
}

/// Sets `why` as the problem, over whatever was found before (a root cause).
fn set(problem: &mut Option<String>, why: String) {
    *problem = Some(why);
}

/// Sets `why` as the problem unless there is one already.
fn block(problem: &mut Option<String>, why: String) {
    if problem.is_none() {
        *problem = Some(why);
    }
}

/// The owner (organization or user) a scope belongs to.
fn owner_of(scope: &SecretScope) -> &str {
    match scope {
        SecretScope::Repo { owner, .. } | SecretScope::Environment { owner, .. } => owner,
        SecretScope::Org { org, .. } => org,
    }
}

fn repo_of(scope: &SecretScope) -> Option<&str> {
    match scope {
        SecretScope::Repo { repo, .. } | SecretScope::Environment { repo, .. } => Some(repo),
        SecretScope::Org { .. } => None,
    }
}

/// A generated value's largest size in bytes (a custom alphabet may hold multi-byte
/// characters). Vault-held values are checked by apply, before sealing.
fn value_sizes(plan: &mut Plan, set: &PolicySet) {
    for pp in &mut plan.policies {
        let Some(policy) = set.get(&pp.policy) else {
            continue;
        };
        if let SourceSpec::Generate {
            length,
            charset,
            prefix,
            ..
        } = &policy.source
        {
            let widest = match charset {
                Charset::Custom(a) => a.chars().map(char::len_utf8).max().unwrap_or(1),
                _ => 1,
            };
            let bytes = prefix.as_deref().map_or(0, str::len) + length * widest;
            if bytes > MAX_VALUE_BYTES {
                block(
                    &mut pp.problem,
                    format!(
                        "a generated value may take {bytes} bytes; GitHub accepts at most {MAX_VALUE_BYTES} (48 KB)"
                    ),
                );
            }
        }
    }
}

/// With App auth: the owner's installation exists, reaches the repository, and carries
/// the permissions the target needs. These are root causes: they replace what observing
/// the target ran into (GitHub's 403 or 404 on the listing).
fn installations(plan: &mut Plan, observed: &Observed) {
    for pp in &mut plan.policies {
        for t in &mut pp.targets {
            if t.problem.as_deref().is_some_and(is_listing_problem) {
                continue;
            }
            let owner = owner_of(&t.scope).to_ascii_lowercase();
            let Some(needed) = permissions_for(&t.scope) else {
                set(
                    &mut t.problem,
                    "GitHub does not let a GitHub App manage organization Codespaces secrets: use a token with admin:org for this target".into(),
                );
                continue;
            };
            let inst = match observed.installations.get(&owner) {
                None => continue,
                Some(Err(e)) => {
                    set(&mut t.problem, e.clone());
                    continue;
                }
                Some(Ok(None)) => {
                    set(
                        &mut t.problem,
                        format!("the GitHub App is not installed on {owner}: install it there, or remove the target"),
                    );
                    continue;
                }
                Some(Ok(Some(inst))) => inst,
            };
            let id = inst.installation.id;
            if let Some(repo) = repo_of(&t.scope) {
                if !inst.repos.iter().any(|r| r.name.eq_ignore_ascii_case(repo)) {
                    set(
                        &mut t.problem,
                        format!(
                            "the GitHub App's installation {id} on {owner} does not reach {owner}/{repo} (repository selection: {}): add the repository to the installation",
                            inst.installation.repository_selection
                        ),
                    );
                    continue;
                }
            }
            let missing: Vec<&str> = needed
                .iter()
                .copied()
                .filter(|p| {
                    !inst
                        .installation
                        .permissions
                        .get(*p)
                        .is_some_and(|l| l == "write" || l == "admin")
                })
                .collect();
            if !missing.is_empty() {
                let grant: Vec<String> = missing.iter().map(|p| format!("{p}: write")).collect();
                set(
                    &mut t.problem,
                    format!(
                        "the GitHub App's installation {id} on {owner} lacks a permission this target needs: grant the GitHub App {}",
                        grant.join(", ")
                    ),
                );
            }
        }
    }
}

/// The first policy seen writing a (target, name) pair, and all of them once there are two.
type Writers<'a> = (&'a str, Option<BTreeSet<&'a str>>);

/// Two policies writing the same name to the same scope: both targets are stopped.
fn doubled_names(plan: &mut Plan) {
    // Only names that more than one policy writes can meet: a fleet has 100,000s of
    // (target, name) pairs, and usually every policy writes names of its own.
    let mut policies_of: HashMap<String, BTreeSet<&str>> = HashMap::new();
    for pp in &plan.policies {
        let names: BTreeSet<&str> = pp
            .targets
            .iter()
            .flat_map(|t| &t.secrets)
            .map(|s| &*s.name)
            .collect();
        for name in names {
            policies_of
                .entry(name.to_ascii_uppercase())
                .or_default()
                .insert(&pp.policy);
        }
    }
    policies_of.retain(|_, p| p.len() > 1);
    if policies_of.is_empty() {
        return;
    }
    // (target, upper-case name) -> the policies writing it. Borrowed, and one policy
    // inline: almost every pair has one writer.
    let mut seen: HashMap<(&str, Cow<'_, str>), Writers<'_>> = HashMap::new();
    for pp in &plan.policies {
        for t in &pp.targets {
            for s in &t.secrets {
                let upper = if s.name.bytes().any(|b| b.is_ascii_lowercase()) {
                    Cow::Owned(s.name.to_ascii_uppercase())
                } else {
                    Cow::Borrowed(&*s.name)
                };
                if !policies_of.contains_key(upper.as_ref()) {
                    continue;
                }
                match seen.entry((&*t.target, upper)) {
                    std::collections::hash_map::Entry::Vacant(v) => {
                        v.insert((pp.policy.as_str(), None));
                    }
                    std::collections::hash_map::Entry::Occupied(mut o) => {
                        let (first, more) = o.get_mut();
                        if *first != pp.policy {
                            more.get_or_insert_with(|| BTreeSet::from([*first]))
                                .insert(&pp.policy);
                        }
                    }
                }
            }
        }
    }
    let writers: BTreeMap<(String, String), BTreeSet<String>> = seen
        .into_iter()
        .filter_map(|((target, name), (_, more))| {
            let more = more?.into_iter().map(str::to_string).collect();
            Some(((target.to_string(), name.into_owned()), more))
        })
        .collect();
    if writers.is_empty() {
        return;
    }
    for pp in &mut plan.policies {
        for t in &mut pp.targets {
            for s in &t.secrets {
                let Some(policies) =
                    writers.get(&(t.target.to_string(), s.name.to_ascii_uppercase()))
                else {
                    continue;
                };
                if policies.len() > 1 {
                    let names: Vec<&str> = policies.iter().map(String::as_str).collect();
                    block(
                        &mut t.problem,
                        format!(
                            "policies {} all write {} to {}: one secret can have only one owner; narrow the selectors so they no longer meet",
                            names.join(", "),
                            s.name.to_ascii_uppercase(),
                            t.target
                        ),
                    );
                }
            }
        }
    }
}

/// Existing names plus the names this plan adds may not exceed GitHub's limit per scope.
fn limits(plan: &mut Plan, observed: &Observed) {
    let mut adding: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for pp in &plan.policies {
        for t in pp.targets.iter().filter(|t| t.problem.is_none()) {
            let Some(Ok(existing)) = observed.secrets.get(&*t.target) else {
                continue;
            };
            let have: BTreeSet<String> = existing
                .iter()
                .map(|m| m.name.to_ascii_uppercase())
                .collect();
            for s in t.secrets.iter().filter(|s| s.action.writes()) {
                let name = s.name.to_ascii_uppercase();
                if !have.contains(&name) {
                    adding.entry(t.target.to_string()).or_default().insert(name);
                }
            }
        }
    }
    for pp in &mut plan.policies {
        for t in &mut pp.targets {
            let (Some(new), Some(Ok(existing))) =
                (adding.get(&*t.target), observed.secrets.get(&*t.target))
            else {
                continue;
            };
            let limit = secret_limit(&t.scope);
            let total = existing.len() + new.len();
            let adds_here = t
                .secrets
                .iter()
                .any(|s| new.contains(&s.name.to_ascii_uppercase()));
            if total > limit && adds_here {
                let names: Vec<&str> = new.iter().map(String::as_str).collect();
                block(
                    &mut t.problem,
                    format!(
                        "GitHub allows at most {limit} secrets per {}; {} holds {} and this plan would add {} ({})",
                        holder(&t.scope),
                        t.target,
                        existing.len(),
                        new.len(),
                        names.join(", ")
                    ),
                );
            }
        }
    }
}

/// Whether an organization secret with this access reaches `repo` (`None`: cannot tell).
fn reaches(visibility: &str, ids: Option<&[u64]>, repo: Option<&Repo>) -> Option<bool> {
    match visibility {
        "all" => Some(true),
        "private" => repo
            .map(|r| r.private || matches!(r.visibility.as_deref(), Some("private" | "internal"))),
        "selected" => match (ids, repo) {
            (Some(ids), Some(r)) => Some(ids.contains(&r.id)),
            _ => None,
        },
        _ => None,
    }
}

/// An organization secret, planned or on GitHub: (visibility, selected ids when known,
/// where it comes from).
type OrgSecretSeen = (String, Option<Vec<u64>>, String);

/// A repository secret named like an organization secret its repository can use wins over
/// it: say so, whether the organization secret is in this plan or already on GitHub.
fn shadows(plan: &Plan, observed: &Observed) -> Vec<PlanWarning> {
    let mut repos: HashMap<(String, String), &Repo> = HashMap::new();
    for list in observed.listings.orgs.values().flatten() {
        for r in list {
            repos.insert(
                (r.owner().to_ascii_lowercase(), r.name.to_ascii_lowercase()),
                r,
            );
        }
    }
    for inst in observed.installations.values().flatten().flatten() {
        for r in &inst.repos {
            repos.insert(
                (r.owner().to_ascii_lowercase(), r.name.to_ascii_lowercase()),
                r,
            );
        }
    }
    let mut org_secrets: BTreeMap<(String, App, String), OrgSecretSeen> = BTreeMap::new();
    for (key, list) in &observed.secrets {
        let Ok(list) = list else { continue };
        let Some(scope) = plan
            .policies
            .iter()
            .flat_map(|p| &p.targets)
            .map(|t| &t.scope)
            .find(|s| s.key() == *key && matches!(&***s, SecretScope::Org { .. }))
        else {
            continue;
        };
        let SecretScope::Org { org, app } = &**scope else {
            continue;
        };
        for m in list {
            let name = m.name.to_ascii_uppercase();
            let ids = observed
                .selected_repos
                .get(&(key.clone(), name.clone()))
                .and_then(|r| r.as_ref().ok())
                .cloned();
            org_secrets.insert(
                (org.to_ascii_lowercase(), *app, name),
                (
                    m.visibility.clone().unwrap_or_else(|| "all".into()),
                    ids,
                    format!("already on GitHub in {key}"),
                ),
            );
        }
    }
    for pp in &plan.policies {
        for t in pp.targets.iter().filter(|t| t.problem.is_none()) {
            let (SecretScope::Org { org, app }, Some(access)) = (&*t.scope, &t.access) else {
                continue;
            };
            let ids = (access.visibility == Visibility::Selected)
                .then(|| access.selected_repository_ids.clone());
            for s in &t.secrets {
                org_secrets.insert(
                    (org.to_ascii_lowercase(), *app, s.name.to_ascii_uppercase()),
                    (
                        access.visibility.as_str().to_string(),
                        ids.clone(),
                        format!("written by policy {} to {}", pp.policy, t.target),
                    ),
                );
            }
        }
    }
    let mut warnings = Vec::new();
    if org_secrets.is_empty() {
        return warnings;
    }
    for pp in &plan.policies {
        for t in pp.targets.iter().filter(|t| t.problem.is_none()) {
            let SecretScope::Repo { owner, repo, app } = &*t.scope else {
                continue;
            };
            let r = repos
                .get(&(owner.to_ascii_lowercase(), repo.to_ascii_lowercase()))
                .copied();
            for s in &t.secrets {
                let name = s.name.to_ascii_uppercase();
                let Some((visibility, ids, whence)) =
                    org_secrets.get(&(owner.to_ascii_lowercase(), *app, name.clone()))
                else {
                    continue;
                };
                if reaches(visibility, ids.as_deref(), r) == Some(false) {
                    continue;
                }
                warnings.push(PlanWarning {
                    policy: pp.policy.clone(),
                    target: t.target.to_string(),
                    secret: Some(name.clone()),
                    message: format!(
                        "this repository secret shadows the organization secret {name} ({whence}, visibility {visibility}): workflows in {owner}/{repo} will see the repository's value"
                    ),
                });
            }
        }
    }
    warnings
}

#[cfg(test)]
mod tests;
