//! Target resolution: policy target specs + repository listings -> concrete secret scopes.

use std::collections::BTreeSet;

use crate::model::plan::Listings;
use crate::model::{OrgAccess, Repo, SecretScope};
use crate::policy::glob::NameMatcher;
use crate::policy::{Policy, RepoSelector, RepoVisibility, TargetSpec, Visibility};

/// One concrete place a policy writes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedTarget {
    pub scope: SecretScope,
    /// For organization secrets: visibility and selected repository ids.
    pub access: Option<OrgAccess>,
    /// Set when the target could not be resolved (listing failed); carries the reason.
    pub problem: Option<String>,
}

/// Compiled form of a `RepoSelector`: names by glob, then the repository's own state.
pub struct Matcher<'a> {
    sel: &'a RepoSelector,
    names: Option<NameMatcher>,
}

impl<'a> Matcher<'a> {
    pub fn new(sel: &'a RepoSelector) -> Self {
        // Validation already refused bad globs; should one slip through, nothing matches.
        Matcher {
            sel,
            names: NameMatcher::new(sel).ok(),
        }
    }

    /// Whether the selector picks this repository.
    pub fn selects(&self, repo: &Repo) -> bool {
        let s = self.sel;
        if repo.archived && !s.include_archived {
            return false;
        }
        if repo.disabled && !s.include_disabled {
            return false;
        }
        if !self.names.as_ref().is_some_and(|n| n.matches(&repo.name)) {
            return false;
        }
        if !s
            .topics
            .iter()
            .all(|t| repo.topics.iter().any(|rt| rt.eq_ignore_ascii_case(t)))
        {
            return false;
        }
        if !s.visibility.is_empty() {
            let v = match repo.visibility.as_deref() {
                Some("internal") => RepoVisibility::Internal,
                Some("private") => RepoVisibility::Private,
                Some("public") => RepoVisibility::Public,
                _ if repo.private => RepoVisibility::Private,
                _ => RepoVisibility::Public,
            };
            if !s.visibility.contains(&v) {
                return false;
            }
        }
        true
    }
}

/// Resolve every target of one policy. Scopes appear once each, in a stable order.
pub fn resolve(policy: &Policy, listings: &Listings) -> Vec<ResolvedTarget> {
    let mut out: Vec<ResolvedTarget> = Vec::new();
    let mut seen = BTreeSet::new();
    let mut push = |t: ResolvedTarget, out: &mut Vec<ResolvedTarget>| {
        if seen.insert(t.scope.clone()) {
            out.push(t);
        }
    };
    for spec in &policy.targets {
        match spec {
            TargetSpec::Repo {
                owner,
                repo,
                environment,
                app,
            } => push(
                ResolvedTarget {
                    scope: scope_for(owner, repo, environment.as_deref(), *app),
                    access: None,
                    problem: None,
                },
                &mut out,
            ),
            TargetSpec::OrgRepos {
                org,
                selector,
                environment,
                app,
            } => match listings.orgs.get(org) {
                Some(Ok(repos)) => {
                    let m = Matcher::new(selector);
                    let mut picked: Vec<&Repo> = repos.iter().filter(|r| m.selects(r)).collect();
                    picked.sort_by(|a, b| a.name.cmp(&b.name));
                    for r in picked {
                        push(
                            ResolvedTarget {
                                scope: scope_for(r.owner(), &r.name, environment.as_deref(), *app),
                                access: None,
                                problem: None,
                            },
                            &mut out,
                        );
                    }
                }
                other => push(
                    ResolvedTarget {
                        scope: SecretScope::Org {
                            org: org.clone(),
                            app: *app,
                        },
                        access: None,
                        problem: Some(listing_problem(org, other)),
                    },
                    &mut out,
                ),
            },
            // Written to Vault by `apply` itself (a runner token): no GitHub scope.
            TargetSpec::VaultKv(_) => {}
            TargetSpec::OrgSecret {
                org,
                visibility,
                selector,
                app,
            } => {
                let scope = SecretScope::Org {
                    org: org.clone(),
                    app: *app,
                };
                let mut problem = None;
                let mut ids = Vec::new();
                if *visibility == Visibility::Selected {
                    match listings.orgs.get(org) {
                        Some(Ok(repos)) => {
                            let default = RepoSelector::default();
                            let m = Matcher::new(selector.as_ref().unwrap_or(&default));
                            ids = repos
                                .iter()
                                .filter(|r| m.selects(r))
                                .map(|r| r.id)
                                .collect();
                            ids.sort_unstable();
                        }
                        other => problem = Some(listing_problem(org, other)),
                    }
                }
                push(
                    ResolvedTarget {
                        scope,
                        access: Some(OrgAccess {
                            visibility: *visibility,
                            selected_repository_ids: ids,
                        }),
                        problem,
                    },
                    &mut out,
                )
            }
        }
    }
    out
}

/// Whether a target's problem is that its organization could not be listed (such a
/// target stands for the whole selection, under the organization's scope).
pub fn is_listing_problem(problem: &str) -> bool {
    problem.starts_with("listing the repositories of ")
        || problem.starts_with("the repositories of ")
}

fn listing_problem(org: &str, got: Option<&Result<Vec<Repo>, String>>) -> String {
    match got {
        Some(Err(e)) => format!("listing the repositories of {org} failed: {e}"),
        _ => format!("the repositories of {org} were not listed"),
    }
}

fn scope_for(
    owner: &str,
    repo: &str,
    environment: Option<&str>,
    app: crate::policy::App,
) -> SecretScope {
    match environment {
        Some(env) => SecretScope::Environment {
            owner: owner.to_string(),
            repo: repo.to_string(),
            environment: env.to_string(),
        },
        None => SecretScope::Repo {
            owner: owner.to_string(),
            repo: repo.to_string(),
            app,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(name: &str, topics: &[&str], archived: bool) -> Repo {
        Repo {
            id: name.len() as u64,
            name: name.into(),
            full_name: format!("acme/{name}"),
            archived,
            disabled: false,
            private: true,
            visibility: Some("private".into()),
            topics: topics.iter().map(|t| t.to_string()).collect(),
        }
    }

    #[test]
    fn globs_exclusions_topics_and_archived_repos_are_honoured() {
        let sel = RepoSelector {
            include: vec!["payments-*".into()],
            exclude: vec!["payments-legacy".into()],
            topics: vec!["pci".into()],
            ..Default::default()
        };
        let m = Matcher::new(&sel);
        assert!(m.selects(&repo("payments-api", &["pci", "go"], false)));
        assert!(!m.selects(&repo("payments-legacy", &["pci"], false)));
        assert!(!m.selects(&repo("payments-web", &["go"], false)));
        assert!(!m.selects(&repo("payments-old", &["pci"], true)));
        assert!(!m.selects(&repo("billing", &["pci"], false)));
    }

    #[test]
    fn an_empty_include_list_selects_every_repository() {
        let sel = RepoSelector::default();
        assert!(Matcher::new(&sel).selects(&repo("anything", &[], false)));
    }

    #[test]
    fn visibility_filter_uses_the_repository_visibility() {
        let sel = RepoSelector {
            visibility: vec![RepoVisibility::Public],
            ..Default::default()
        };
        let m = Matcher::new(&sel);
        assert!(!m.selects(&repo("x", &[], false)));
        let mut r = repo("y", &[], false);
        r.visibility = Some("public".into());
        r.private = false;
        assert!(m.selects(&r));
    }
}
