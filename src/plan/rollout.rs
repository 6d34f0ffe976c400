//! The waves of a transactional rotation (pure): which targets are canaries, which come
//! after, and which repositories run the verification workflow after each wave.
//!
//! Count and percentage take targets in name order (`SecretScope::key`), so the same fleet
//! always gets the same canaries and a resumed run picks the ones it picked before.
//! Repository globs pick the repository and environment targets whose repository matches;
//! an organization secret is never a canary by glob (it reaches every repository at once).

use std::collections::BTreeSet;

use crate::model::plan::Listings;
pub use crate::model::plan::Waves;
use crate::model::policy::{Canary, Policy, RepoSelector};
use crate::model::SecretScope;
use crate::policy::glob::NameMatcher;

/// Splits `scopes` (a policy's targets) into waves. Without `rollout` every target is in
/// one wave (`rest`), verified as a whole. `listings` names the repositories of each
/// organization, for organization secrets verified in the repositories that use them.
pub fn waves(policy: &Policy, scopes: &[SecretScope], listings: &Listings) -> Waves {
    let mut sorted: Vec<&SecretScope> = scopes.iter().collect();
    sorted.sort_by_key(|s| s.key());
    sorted.dedup_by_key(|s| s.key());
    let n = sorted.len();
    let is_canary: Vec<bool> = match policy.rollout.as_ref().map(|r| &r.canary) {
        None => vec![false; n],
        Some(Canary::Count(c)) => (0..n).map(|i| i < (*c).min(n)).collect(),
        Some(Canary::Percent(p)) => {
            let take = (n * usize::from(*p)).div_ceil(100).min(n);
            (0..n).map(|i| i < take).collect()
        }
        Some(Canary::Repos(globs)) => {
            let m = matcher(globs);
            sorted
                .iter()
                .map(|s| repo_of(s).is_some_and(|(_, r)| m.matches(r)))
                .collect()
        }
    };
    let verify = policy.verify.as_ref().map(|v| matcher(&v.repos));
    let verified = |wave: &[&SecretScope]| -> Vec<String> {
        let Some(m) = &verify else {
            return Vec::new();
        };
        let mut out = BTreeSet::new();
        for s in wave {
            match s {
                SecretScope::Repo { owner, repo, .. }
                | SecretScope::Environment { owner, repo, .. } => {
                    if m.matches(repo) {
                        out.insert(format!("{owner}/{repo}"));
                    }
                }
                SecretScope::Org { org, .. } => {
                    // The repositories that use the secret: `verify.repos` is required for
                    // organization targets, so an empty selector selects none here.
                    if policy.verify.as_ref().is_some_and(|v| v.repos.is_empty()) {
                        continue;
                    }
                    if let Some(Ok(repos)) = listings.orgs.get(org) {
                        for r in repos.iter().filter(|r| !r.archived && m.matches(&r.name)) {
                            out.insert(format!("{org}/{}", r.name));
                        }
                    }
                }
            }
        }
        out.into_iter().collect()
    };
    let mut canary = Vec::new();
    let mut rest = Vec::new();
    for (s, c) in sorted.iter().zip(&is_canary) {
        if *c {
            canary.push(*s);
        } else {
            rest.push(*s);
        }
    }
    let verify_canary = verified(&canary);
    let verify_rest = verified(&rest);
    Waves {
        canary: canary.iter().map(|s| s.key()).collect(),
        rest: rest.iter().map(|s| s.key()).collect(),
        verify_canary,
        verify_rest,
        on_failure: policy
            .rollout
            .as_ref()
            .map(|r| r.on_failure)
            .unwrap_or_default(),
    }
}

fn repo_of(s: &SecretScope) -> Option<(&str, &str)> {
    match s {
        SecretScope::Repo { owner, repo, .. } | SecretScope::Environment { owner, repo, .. } => {
            Some((owner, repo))
        }
        SecretScope::Org { .. } => None,
    }
}

/// Globs with `!` exclusions, as target selectors write them.
fn matcher(globs: &[String]) -> NameMatcher {
    let (exclude, include): (Vec<String>, Vec<String>) =
        globs.iter().cloned().partition(|g| g.starts_with('!'));
    let selector = RepoSelector {
        include,
        exclude: exclude.into_iter().map(|g| g[1..].to_string()).collect(),
        ..RepoSelector::default()
    };
    // Validation refused bad globs; a glob that still fails to build selects nothing.
    NameMatcher::new(&selector).unwrap_or_else(|_| {
        NameMatcher::new(&RepoSelector {
            include: vec!["\u{0}never".into()],
            ..RepoSelector::default()
        })
        .expect("a literal glob builds")
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::PathBuf;
    use std::time::Duration;

    use super::*;
    use crate::model::policy::OnFailure;
    use crate::model::policy::{Rollout, SourceSpec, Verify, WorkflowRef};
    use crate::model::{App, Repo, Visibility};

    fn policy(canary: Option<Canary>, verify_repos: Option<&[&str]>) -> Policy {
        Policy {
            name: "p".into(),
            description: None,
            owner: None,
            source: SourceSpec::VaultRead {
                path: "x".into(),
                params: Default::default(),
            },
            secrets: BTreeMap::new(),
            targets: Vec::new(),
            schedule: None,
            verify: verify_repos.map(|r| Verify {
                workflow: WorkflowRef::File("verify.yml".into()),
                git_ref: None,
                inputs: BTreeMap::new(),
                timeout: Duration::from_secs(60),
                repos: r.iter().map(|s| s.to_string()).collect(),
            }),
            rollout: canary.map(|canary| Rollout {
                canary,
                on_failure: OnFailure::Halt,
            }),
            takeover: false,
            from_keys: None,
            file: PathBuf::from("p.yaml"),
        }
    }

    fn repo(name: &str) -> SecretScope {
        SecretScope::Repo {
            owner: "acme".into(),
            repo: name.into(),
            app: App::Actions,
        }
    }

    fn fleet() -> Vec<SecretScope> {
        // Out of name order on purpose.
        ["web", "api", "worker", "db", "cron"]
            .iter()
            .map(|n| repo(n))
            .collect()
    }

    #[test]
    fn a_count_takes_the_first_targets_in_name_order() {
        let w = waves(
            &policy(Some(Canary::Count(2)), Some(&[])),
            &fleet(),
            &Listings::default(),
        );
        assert_eq!(w.canary, ["acme/api", "acme/cron"]);
        assert_eq!(w.rest, ["acme/db", "acme/web", "acme/worker"]);
        assert_eq!(w.verify_canary, ["acme/api", "acme/cron"]);
        assert_eq!(w.verify_rest, ["acme/db", "acme/web", "acme/worker"]);
        assert_eq!(w.on_failure, OnFailure::Halt);
    }

    #[test]
    fn a_percentage_rounds_up_and_a_count_larger_than_the_fleet_takes_it_all() {
        let w = waves(
            &policy(Some(Canary::Percent(30)), None),
            &fleet(),
            &Listings::default(),
        );
        assert_eq!(w.canary, ["acme/api", "acme/cron"], "30% of 5 is 1.5 -> 2");
        assert!(w.verify_canary.is_empty(), "no verify block, no runs");
        let w = waves(
            &policy(Some(Canary::Count(9)), None),
            &fleet(),
            &Listings::default(),
        );
        assert_eq!(w.canary.len(), 5);
        assert!(w.rest.is_empty());
    }

    #[test]
    fn globs_pick_canaries_by_repository_and_verify_repos_filter_the_runs() {
        let p = policy(
            Some(Canary::Repos(vec!["w*".into(), "!worker".into()])),
            Some(&["*", "!db"]),
        );
        let w = waves(&p, &fleet(), &Listings::default());
        assert_eq!(w.canary, ["acme/web"]);
        assert_eq!(w.verify_rest, ["acme/api", "acme/cron", "acme/worker"]);
    }

    #[test]
    fn without_rollout_everything_is_one_wave_and_an_org_secret_is_verified_in_its_repos() {
        let org = SecretScope::Org {
            org: "acme".into(),
            app: App::Actions,
        };
        let mut listings = Listings::default();
        let mk = |id, name: &str, archived| Repo {
            id,
            name: name.into(),
            full_name: format!("acme/{name}"),
            archived,
            disabled: false,
            private: true,
            visibility: Some(Visibility::Private.as_str().into()),
            ..serde_json::from_value(serde_json::json!({"id": 0, "name": "", "full_name": ""}))
                .unwrap()
        };
        listings.orgs.insert(
            "acme".into(),
            Ok(vec![
                mk(1, "pay-api", false),
                mk(2, "pay-old", true),
                mk(3, "docs", false),
            ]),
        );
        let w = waves(
            &policy(None, Some(&["pay-*"])),
            std::slice::from_ref(&org),
            &listings,
        );
        assert!(w.canary.is_empty());
        assert_eq!(w.rest, ["org:acme"]);
        assert_eq!(
            w.verify_rest,
            ["acme/pay-api"],
            "archived repositories run nothing"
        );
        assert_eq!(w.on_failure, OnFailure::Rollback);
        let w = waves(&policy(None, Some(&[])), &[org], &listings);
        assert!(
            w.verify_rest.is_empty(),
            "an organization secret needs verify.repos"
        );
    }
}
