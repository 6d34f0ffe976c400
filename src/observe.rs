//! Observation: the network reads the planner needs — source versions, repository
//! listings (with GitHub App auth: what each installation reaches), existing secrets, and
//! the repositories `selected` organization secrets are shared with. The only place
//! besides `apply` that does I/O for a plan.

pub mod expand;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt};

use crate::apply::KeyPrefetch;
use crate::github::error::explain;
use crate::github::{Client, ErrorKind};
use crate::ledger::LedgerState;
use crate::model::SecretScope;
use crate::plan::{self, Listings, Observed};
use crate::policy::PolicySet;
use crate::source::{KvVersionInfo, Sources};

/// Gather what `plan::plan` needs. Errors are kept per item (GitHub's or Vault's message),
/// so one failing repository or source never hides the others.
///
/// Secrets are listed for policies that will not rotate, and for targets a rotating policy
/// has never written (to find a missing environment and count against GitHub's limits
/// before anything is written); a rotation rewrites the targets it knows anyway.
pub async fn observe(
    set: &PolicySet,
    github: &Client,
    sources: &Sources,
    ledger: &LedgerState,
    now: DateTime<Utc>,
    force: &BTreeSet<String>,
    concurrency: usize,
) -> Observed {
    observe_with(
        set,
        github,
        sources,
        ledger,
        now,
        force,
        concurrency,
        None,
        None,
    )
    .await
}

/// Repositories to look at instead of listing their owners: a webhook's, for a pass over
/// just them. Owner (lower-case) -> its repositories, as `GET /repos/{o}/{r}` gave them.
#[derive(Debug, Clone, Default)]
pub struct Focus {
    pub repos: BTreeMap<String, Vec<crate::model::Repo>>,
}

/// The listings a focused pass sees: each owner's focus repositories and nothing else
/// (with App auth, through the owner's installation, looked up once per process).
async fn focus_listings(
    set: &PolicySet,
    orgs: &BTreeSet<String>,
    github: &Client,
    focus: &Focus,
    app_auth: bool,
    installations: &mut BTreeMap<String, Result<Option<crate::model::InstallationRepos>, String>>,
) -> Listings {
    let repos_of = |owner: &str| {
        focus
            .repos
            .get(&owner.to_ascii_lowercase())
            .cloned()
            .unwrap_or_default()
    };
    if app_auth {
        let mut owners: BTreeSet<String> = orgs.iter().map(|o| o.to_ascii_lowercase()).collect();
        owners.extend(
            set.policies
                .iter()
                .flat_map(|p| &p.targets)
                .map(|t| owner_of(t).0.to_ascii_lowercase())
                .filter(|o| !o.is_empty()),
        );
        for owner in owners {
            let repos = repos_of(&owner);
            let hint = repos.first().map(|r| r.name.clone());
            let r = github
                .installation_of(&owner, hint.as_deref())
                .await
                .map(|i| {
                    i.map(|installation| crate::model::InstallationRepos {
                        installation,
                        repos,
                    })
                })
                .map_err(|e| e.to_string());
            installations.insert(owner, r);
        }
    }
    Listings {
        orgs: orgs
            .iter()
            .map(|org| {
                let r = if app_auth {
                    match installations.get(&org.to_ascii_lowercase()) {
                        Some(Ok(Some(i))) => Ok(i.repos.clone()),
                        Some(Ok(None)) => Err(format!("the GitHub App is not installed on {org}")),
                        Some(Err(e)) => Err(e.clone()),
                        None => Err(format!("{org} was not looked at")),
                    }
                } else {
                    Ok(repos_of(org))
                };
                (org.clone(), r)
            })
            .collect(),
    }
}

/// [`observe`], starting in `prefetch` the public-key fetches apply will make for the
/// repositories each listing page names, as the pages arrive (see [`KeyPrefetch`]). Only
/// listings read with a token are read page by page for this; with App auth the
/// installations' repositories are read whole, as before.
#[allow(clippy::too_many_arguments)]
pub async fn observe_with(
    set: &PolicySet,
    github: &Client,
    sources: &Sources,
    ledger: &LedgerState,
    now: DateTime<Utc>,
    force: &BTreeSet<String>,
    concurrency: usize,
    prefetch: Option<&KeyPrefetch>,
    focus: Option<&Focus>,
) -> Observed {
    let concurrency = concurrency.max(1);
    let source_infos: Vec<(String, Result<Option<KvVersionInfo>, String>)> =
        stream::iter(set.policies.iter().filter(|p| p.source.is_stored()))
            .map(|p| async move {
                let v = sources
                    .current_version_info(&p.source)
                    .await
                    .map_err(|e| e.to_string());
                (p.name.clone(), v)
            })
            .buffer_unordered(concurrency)
            .collect()
            .await;
    let source_written: BTreeMap<String, DateTime<Utc>> = source_infos
        .iter()
        .filter_map(|(name, r)| Some((name.clone(), r.as_ref().ok()?.as_ref()?.created_time?)))
        .collect();
    let source_versions: BTreeMap<String, Result<Option<u64>, String>> = source_infos
        .into_iter()
        .map(|(name, r)| (name, r.map(|v| v.map(|v| v.version))))
        .collect();

    let unreadable: BTreeSet<&str> = source_versions
        .iter()
        .filter(|(_, v)| v.is_err())
        .map(|(name, _)| name.as_str())
        .collect();
    let unreadable = &unreadable;
    let orgs = Listings::orgs_needed(&set.policies);
    let app_auth = github.app_auth().is_some();
    let mut installations = BTreeMap::new();
    let listings = if let Some(focus) = focus {
        focus_listings(set, &orgs, github, focus, app_auth, &mut installations).await
    } else if app_auth {
        // Candidates come from each installation; every owner a target names is looked at.
        // owner -> a repository of it, asked about when the owner is no organization
        let mut owners: BTreeMap<String, Option<String>> = orgs
            .iter()
            .map(|o| (o.to_ascii_lowercase(), None))
            .collect();
        for t in set.policies.iter().flat_map(|p| &p.targets) {
            let (owner, repo) = owner_of(t);
            if owner.is_empty() {
                continue; // a Vault target
            }
            let hint = owners.entry(owner.to_ascii_lowercase()).or_default();
            if hint.is_none() {
                *hint = repo;
            }
        }
        installations = stream::iter(owners)
            .map(|(owner, hint)| async move {
                let r = github
                    .installation_repos(&owner, hint.as_deref())
                    .await
                    .map_err(|e| e.to_string());
                (owner, r)
            })
            .buffer_unordered(concurrency)
            .collect()
            .await;
        Listings {
            orgs: orgs
                .iter()
                .map(|org| {
                    let r = match installations.get(&org.to_ascii_lowercase()) {
                        Some(Ok(Some(i))) => Ok(i.repos.clone()),
                        Some(Ok(None)) => Err(format!("the GitHub App is not installed on {org}")),
                        Some(Err(e)) => Err(e.clone()),
                        None => Err(format!("{org} was not looked at")),
                    };
                    (org.clone(), r)
                })
                .collect(),
        }
    } else {
        Listings {
            orgs: stream::iter(orgs)
                .map(|org| async move {
                    let r = match prefetch {
                        // Each page starts its keys as it arrives, while later ones are
                        // still on their way.
                        Some(prefetch) => {
                            let mut repos = Vec::new();
                            github
                                .list_org_repos_pages(&org, |page| {
                                    prefetch_keys(
                                        set, github, ledger, &org, page, unreadable, prefetch,
                                    );
                                    repos.extend_from_slice(page);
                                })
                                .await
                                .map(|()| repos)
                        }
                        None => github.list_org_repos(&org).await,
                    };
                    (org, r.map_err(|e| e.to_string()))
                })
                .buffer_unordered(concurrency)
                .collect()
                .await,
        }
    };

    let mut scopes: BTreeSet<SecretScope> = BTreeSet::new();
    for p in &set.policies {
        let current = match plan::build::current_version(p, ledger, source_versions.get(&p.name)) {
            Ok(v) => v,
            Err(_) => continue,
        };
        let last = plan::last_rotation(p, ledger, source_written.get(&p.name).copied());
        let rotates =
            plan::decide_rotation_since(p, last, current, now, force.contains(&p.name)).is_some();
        for t in plan::resolve(p, &listings) {
            let known = p.secrets.keys().all(|name| {
                ledger
                    .target(&p.name, &t.scope, name)
                    .is_some_and(|s| s.pushed.is_some())
            });
            // A rotation writes every target anyway. Unless the policy takes over secrets
            // rotor did not write, each target is still listed first: its `updated_at`s
            // tell whether someone else wrote a secret since rotor did (a conflict). With
            // `takeover: true` the targets are listed only where a listing tells what a PUT
            // cannot: whether an environment exists, how many secrets an organization
            // holds. Repository targets are then left to GitHub's answer to the PUT (a full
            // repository fails alone with 422), so a rotation across a fleet costs one
            // request per delivered secret, not two.
            let repo_scope = matches!(t.scope, SecretScope::Repo { .. });
            if t.problem.is_none() && !(rotates && p.takeover && (known || repo_scope)) {
                scopes.insert(t.scope);
            }
        }
    }
    let secrets: BTreeMap<String, Result<Vec<crate::model::SecretMeta>, String>> =
        stream::iter(scopes)
            .map(|scope| async move {
                let r = match github.list_secrets(&scope).await {
                    Ok(list) => Ok(list),
                    Err(e) => Err(describe_listing_error(github, &scope, &e).await),
                };
                (scope.key(), r)
            })
            .buffer_unordered(concurrency)
            .collect()
            .await;

    let selected_repos = observe_selected(set, github, &listings, &secrets, concurrency).await;

    Observed {
        listings,
        secrets,
        source_versions,
        app_auth,
        installations,
        selected_repos,
        source_written,
    }
}

/// Starts the key fetches apply will need for the repositories `repos` (a listing page) of
/// `org`: the
/// repository targets they resolve to that the ledger holds no key for. A policy whose
/// source cannot be read is left out (the plan does not push it).
fn prefetch_keys(
    set: &PolicySet,
    github: &Client,
    ledger: &LedgerState,
    org: &str,
    repos: &[crate::model::Repo],
    unreadable: &BTreeSet<&str>,
    prefetch: &KeyPrefetch,
) {
    let names_org = |p: &&crate::policy::Policy| {
        p.targets.iter().any(|t| {
            matches!(t, crate::policy::TargetSpec::OrgRepos { org: o, .. } if o.eq_ignore_ascii_case(org))
        })
    };
    let page = Listings {
        orgs: BTreeMap::from([(org.to_string(), Ok(repos.to_vec()))]),
    };
    for p in set
        .policies
        .iter()
        .filter(names_org)
        .filter(|p| !unreadable.contains(p.name.as_str()))
    {
        for t in plan::resolve(p, &page) {
            let repo_scope = matches!(t.scope, SecretScope::Repo { .. });
            if t.problem.is_none() && repo_scope && ledger.key(&t.scope).is_none() {
                prefetch.start(github, t.scope);
            }
        }
    }
}

/// The owner a target names (`org`, or the owner of `repo`), and the repository if named.
fn owner_of(t: &crate::policy::TargetSpec) -> (String, Option<String>) {
    use crate::policy::TargetSpec;
    match t {
        TargetSpec::Repo { owner, repo, .. } => (owner.clone(), Some(repo.clone())),
        TargetSpec::OrgRepos { org, .. } | TargetSpec::OrgSecret { org, .. } => (org.clone(), None),
        TargetSpec::VaultKv(_) => (String::new(), None),
    }
}

/// A listing failure told in the target's terms. A 404 on an environment's secrets is
/// looked into: is it the environment that is missing, or the repository?
async fn describe_listing_error(
    github: &Client,
    scope: &SecretScope,
    err: &crate::github::GitHubError,
) -> String {
    if let (
        SecretScope::Environment {
            owner,
            repo,
            environment,
        },
        ErrorKind::NotFound,
    ) = (scope, &err.kind)
    {
        match github.list_environments(owner, repo).await {
            Ok(envs) if !envs.iter().any(|e| e.eq_ignore_ascii_case(environment)) => {
                return format!("environment {environment} does not exist in {owner}/{repo}: create it in the repository's settings, or remove the target");
            }
            Err(e) if e.kind == ErrorKind::NotFound => {
                return format!("repository {owner}/{repo} does not exist, or these credentials cannot see it ({e})");
            }
            _ => {}
        }
    }
    explain(scope, err)
}

/// For organization secrets that are `selected` on GitHub and in a policy: the
/// repositories they are shared with now (`GET .../{name}/repositories`).
async fn observe_selected(
    set: &PolicySet,
    github: &Client,
    listings: &Listings,
    secrets: &BTreeMap<String, Result<Vec<crate::model::SecretMeta>, String>>,
    concurrency: usize,
) -> BTreeMap<(String, String), Result<Vec<u64>, String>> {
    let mut wanted: BTreeSet<(String, crate::policy::App, String, String)> = BTreeSet::new();
    for p in &set.policies {
        for t in plan::resolve(p, listings) {
            let (SecretScope::Org { org, app }, Some(access)) = (&t.scope, &t.access) else {
                continue;
            };
            if access.visibility != crate::policy::Visibility::Selected {
                continue;
            }
            let Some(Ok(existing)) = secrets.get(&t.scope.key()) else {
                continue;
            };
            for name in p.secrets.keys() {
                let on_github = existing
                    .iter()
                    .find(|m| m.name.eq_ignore_ascii_case(name))
                    .is_some_and(|m| m.visibility.as_deref() == Some("selected"));
                if on_github {
                    wanted.insert((org.clone(), *app, name.to_ascii_uppercase(), t.scope.key()));
                }
            }
        }
    }
    stream::iter(wanted)
        .map(|(org, app, name, key)| async move {
            let r = github
                .list_selected_repos(&org, app, &name)
                .await
                .map_err(|e| e.to_string());
            ((key, name), r)
        })
        .buffer_unordered(concurrency)
        .collect()
        .await
}
