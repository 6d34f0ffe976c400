//! `rotor validate --online`: with the configured credentials, and without writing
//! anything, whether every policy would work — Vault lets the token read each source and
//! write each `store` (`sys/capabilities-self`), and GitHub lets the credential see every
//! target and write its secrets (a plan: repositories it cannot see, missing environments,
//! an App not installed or missing a permission, counts over GitHub's limits). Every
//! problem comes back at once as a diagnostic pointing at the source or target it is about.

use std::collections::BTreeSet;
use std::path::Path;

use futures::StreamExt;

use crate::github::Client;
use crate::ledger::LedgerState;
use crate::model::SecretScope;
use crate::policy::{Diagnostic, LocatedPolicy, PolicySet, SourceSpec, TargetSpec};
use crate::source::Sources;

/// The codes of online findings (the table is `policy::diag::ONLINE_CODES`).
pub use crate::policy::diag::ONLINE_CODES;

/// What a path needs, and why.
struct Need {
    path: String,
    any_of: &'static [&'static str],
    what: String,
}

fn kv_needs(mount: &str, path: &str, write: bool, what: &str) -> Vec<Need> {
    let (mount, path) = (mount.trim_matches('/'), path.trim_matches('/'));
    let mut out = vec![Need {
        path: format!("{mount}/metadata/{path}"),
        any_of: &["read", "root"],
        what: format!("{what}: reading its versions ({mount}/metadata/{path})"),
    }];
    out.push(if write {
        Need {
            path: format!("{mount}/data/{path}"),
            any_of: &["create", "update", "root"],
            what: format!("{what}: writing it ({mount}/data/{path})"),
        }
    } else {
        Need {
            path: format!("{mount}/data/{path}"),
            any_of: &["read", "root"],
            what: format!("{what}: reading it ({mount}/data/{path})"),
        }
    });
    out
}

/// The Vault capabilities a policy needs, with where to report a refusal.
fn vault_needs(lp: &LocatedPolicy) -> Vec<(Need, (usize, usize))> {
    let p = &lp.policy;
    let mut out = Vec::new();
    match &p.source {
        SourceSpec::VaultKv(kv) => {
            for n in kv_needs(&kv.mount, &kv.path, false, "vault_kv") {
                out.push((n, lp.source_at));
            }
        }
        SourceSpec::Generate {
            store: Some(kv), ..
        } => {
            for n in kv_needs(&kv.mount, &kv.path, true, "generate.store") {
                out.push((n, lp.source_at));
            }
        }
        SourceSpec::VaultRead { path, params } => out.push((
            Need {
                path: path.trim_matches('/').to_string(),
                any_of: if params.is_empty() {
                    &["read", "root"]
                } else {
                    &["create", "update", "root"]
                },
                what: format!("vault_read {path}"),
            },
            lp.source_at,
        )),
        SourceSpec::Generate { store: None, .. } | SourceSpec::GithubRunnerToken { .. } => {}
    }
    for (i, t) in p.targets.iter().enumerate() {
        if let TargetSpec::VaultKv(kv) = t {
            let at = lp.targets_at.get(i).copied().unwrap_or(lp.at);
            for n in kv_needs(&kv.mount, &kv.path, true, "vault_kv target") {
                out.push((n, at));
            }
        }
    }
    out
}

/// Which target spec of `p` a planned scope came from.
fn spec_of(p: &LocatedPolicy, scope: &SecretScope) -> (usize, usize) {
    let idx = p.policy.targets.iter().position(|t| match (t, scope) {
        (
            TargetSpec::Repo {
                owner,
                repo,
                environment: None,
                app,
                ..
            },
            SecretScope::Repo {
                owner: o,
                repo: r,
                app: a,
            },
        ) => owner.eq_ignore_ascii_case(o) && repo.eq_ignore_ascii_case(r) && app == a,
        (
            TargetSpec::Repo {
                owner,
                repo,
                environment: Some(e),
                ..
            },
            SecretScope::Environment {
                owner: o,
                repo: r,
                environment: env,
            },
        ) => owner.eq_ignore_ascii_case(o) && repo.eq_ignore_ascii_case(r) && e == env,
        (TargetSpec::OrgRepos { org, .. }, SecretScope::Repo { owner, .. })
        | (TargetSpec::OrgRepos { org, .. }, SecretScope::Environment { owner, .. }) => {
            org.eq_ignore_ascii_case(owner)
        }
        (TargetSpec::OrgSecret { org, app, .. }, SecretScope::Org { org: o, app: a }) => {
            org.eq_ignore_ascii_case(o) && app == a
        }
        _ => false,
    });
    idx.and_then(|i| p.targets_at.get(i).copied())
        .unwrap_or(p.at)
}

fn diag(file: &Path, at: (usize, usize), code: &'static str, message: String) -> Diagnostic {
    Diagnostic::at(file, at.0, at.1, code, message)
}

/// Checks `policies` against Vault and GitHub; every problem found, sorted.
pub async fn check(
    policies: &[LocatedPolicy],
    github: &Client,
    sources: &Sources,
    ledger: &LedgerState,
    concurrency: usize,
) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    // Vault: one capabilities-self request for every path of every policy.
    let needs: Vec<(&LocatedPolicy, Need, (usize, usize))> = policies
        .iter()
        .flat_map(|lp| vault_needs(lp).into_iter().map(move |(n, at)| (lp, n, at)))
        .collect();
    if !needs.is_empty() {
        match sources.vault() {
            None => {
                for (lp, n, at) in &needs {
                    diags.push(diag(
                        &lp.policy.file,
                        *at,
                        "E0801",
                        format!(
                            "{} needs Vault, and VAULT_ADDR with a credential is not set",
                            n.what
                        ),
                    ));
                }
            }
            Some(vault) => {
                let paths: Vec<String> = needs
                    .iter()
                    .map(|(_, n, _)| n.path.clone())
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect();
                match vault.capabilities(&paths).await {
                    Ok(caps) => {
                        for (lp, n, at) in &needs {
                            let has = caps.get(&n.path).cloned().unwrap_or_default();
                            if !has.iter().any(|c| n.any_of.contains(&c.as_str())) {
                                diags.push(diag(
                                    &lp.policy.file,
                                    *at,
                                    "E0801",
                                    format!(
                                        "Vault would refuse {}: the token may only {} there (needs {})",
                                        n.what,
                                        if has.is_empty() { "deny".to_string() } else { has.join(", ") },
                                        n.any_of.join(" or ")
                                    ),
                                ));
                            }
                        }
                    }
                    Err(e) => {
                        for lp in policies.iter().filter(|lp| !vault_needs(lp).is_empty()) {
                            diags.push(diag(
                                &lp.policy.file,
                                lp.source_at,
                                "E0801",
                                format!(
                                    "the token's capabilities could not be asked (the token needs update on sys/capabilities-self, which Vault's default policy grants): {e}"
                                ),
                            ));
                        }
                    }
                }
            }
        }
    }

    // GitHub: a plan reads what apply would touch and writes nothing.
    let set = PolicySet {
        policies: policies.iter().map(|lp| lp.policy.clone()).collect(),
    };
    let plan =
        crate::pass::plan_with_state(&set, github, sources, ledger, &BTreeSet::new(), concurrency)
            .await;
    for pp in &plan.policies {
        let Some(lp) = policies.iter().find(|lp| lp.policy.name == pp.policy) else {
            continue;
        };
        if let Some(problem) = &pp.problem {
            // Vault's own refusals are reported above; this is what reading the source said.
            let code = if problem.contains("Vault") {
                "E0801"
            } else {
                "E0802"
            };
            diags.push(diag(&lp.policy.file, lp.source_at, code, problem.clone()));
        }
        for t in &pp.targets {
            if let Some(problem) = &t.problem {
                diags.push(diag(
                    &lp.policy.file,
                    spec_of(lp, &t.scope),
                    "E0802",
                    format!("target {}: {problem}", t.target),
                ));
            }
        }
    }
    // A policy that rotates lists no repository target before writing (the PUT tells); here
    // each is asked once, read-only, whether the credential can see it.
    let unlisted: Vec<(&LocatedPolicy, &crate::plan::TargetPlan)> = plan
        .policies
        .iter()
        .filter(|pp| pp.problem.is_none() && pp.rotate.is_some())
        .filter_map(|pp| {
            policies
                .iter()
                .find(|lp| lp.policy.name == pp.policy)
                .map(|lp| (lp, pp))
        })
        .flat_map(|(lp, pp)| {
            pp.targets
                .iter()
                .filter(|t| t.problem.is_none())
                .map(move |t| (lp, t))
        })
        .collect();
    let probed: Vec<Option<Diagnostic>> = futures::stream::iter(unlisted)
        .map(|(lp, t)| async move {
            let err = github.list_secrets(&t.scope).await.err()?;
            Some(diag(
                &lp.policy.file,
                spec_of(lp, &t.scope),
                "E0802",
                format!(
                    "target {}: {}",
                    t.target,
                    crate::github::error::explain(&t.scope, &err)
                ),
            ))
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    diags.extend(probed.into_iter().flatten());
    for w in &plan.warnings {
        let Some(lp) = policies.iter().find(|lp| lp.policy.name == w.policy) else {
            continue;
        };
        let at = plan
            .policies
            .iter()
            .find(|p| p.policy == w.policy)
            .and_then(|p| p.targets.iter().find(|t| *t.target == *w.target))
            .map(|t| spec_of(lp, &t.scope))
            .unwrap_or(lp.at);
        diags.push(diag(
            &lp.policy.file,
            at,
            "E0803",
            format!(
                "{}{}",
                if w.target.is_empty() {
                    String::new()
                } else {
                    format!("target {}: ", w.target)
                },
                w.message
            ),
        ));
    }
    Diagnostic::sort(&mut diags);
    diags.dedup_by(|a, b| a.to_string() == b.to_string());
    diags
}

#[cfg(test)]
mod tests {
    #[test]
    fn online_codes_are_apart_from_the_offline_ones() {
        for (code, _) in super::ONLINE_CODES {
            assert!(
                !crate::policy::CODES.iter().any(|(c, _)| c == code),
                "{code} is also an offline code"
            );
        }
    }
}
