//! The examples — `policies/` (which the sandbox rotates) and the YAML policies in
//! docs/policy.md — are valid, and together they show every source, target form and option
//! of the format.

use std::path::{Path, PathBuf};

use rotor::model::policy::{
    Cadence, Canary, Charset, OnFailure, Policy, RepoSelector, SourceSpec, TargetSpec, WorkflowRef,
};
use rotor::model::{App, Visibility};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every fenced YAML block of docs/policy.md that is a whole policy (or a list of them).
pub(crate) fn doc_examples() -> Vec<(usize, String)> {
    let text = std::fs::read_to_string(root().join("docs/policy.md")).expect("docs/policy.md");
    let mut out = Vec::new();
    let mut block: Option<(usize, String)> = None;
    for (i, line) in text.lines().enumerate() {
        match &mut block {
            None if line == "```yaml" => block = Some((i + 2, String::new())),
            Some(_) if line == "```" => {
                let (at, body) = block.take().expect("open block");
                let first = body.lines().next().unwrap_or("");
                if first.starts_with("version: 1") || first.starts_with("- version: 1") {
                    out.push((at, body));
                }
            }
            Some((_, body)) => {
                body.push_str(line);
                body.push('\n');
            }
            None => {}
        }
    }
    out
}

fn all_examples() -> Vec<Policy> {
    let mut all = rotor::policy::load_dir(&root().join("policies"))
        .unwrap_or_else(|d| panic!("policies/ is invalid: {d:?}"))
        .policies;
    let docs = doc_examples();
    assert!(docs.len() >= 5, "docs/policy.md lost its examples");
    for (line, yaml) in docs {
        let file = Path::new("docs/policy.md");
        let loaded = rotor::policy::load_str(file, &yaml).unwrap_or_else(|d| {
            panic!(
                "the example at docs/policy.md:{line} is invalid:\n{}",
                d.iter()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
                    .join("\n")
            )
        });
        all.extend(loaded);
    }
    all
}

#[test]
fn every_example_is_valid_and_together_they_cover_every_source_scope_and_option() {
    let all = all_examples();
    let any = |what: &str, f: &dyn Fn(&Policy) -> bool| {
        assert!(all.iter().any(f), "no example shows {what}");
    };
    let targets = || all.iter().flat_map(|p| &p.targets);
    let any_target = |what: &str, f: &dyn Fn(&TargetSpec) -> bool| {
        assert!(targets().any(f), "no example target shows {what}");
    };
    let selectors = || {
        targets().filter_map(|t| match t {
            TargetSpec::OrgRepos { selector, .. } => Some(selector),
            TargetSpec::OrgSecret { selector, .. } => selector.as_ref(),
            _ => None,
        })
    };
    let any_selector = |what: &str, f: &dyn Fn(&RepoSelector) -> bool| {
        assert!(selectors().any(f), "no example selector shows {what}");
    };

    // Sources and their options.
    any("generate without store", &|p| {
        matches!(p.source, SourceSpec::Generate { store: None, .. })
    });
    any("generate with store", &|p| {
        matches!(p.source, SourceSpec::Generate { store: Some(_), .. })
    });
    any("generate with a prefix", &|p| {
        matches!(
            &p.source,
            SourceSpec::Generate {
                prefix: Some(_),
                ..
            }
        )
    });
    for (name, want) in [
        ("alphanumeric", Charset::Alphanumeric),
        ("hex", Charset::Hex),
        ("base64url", Charset::Base64Url),
        ("printable", Charset::Printable),
    ] {
        any(
            name,
            &|p| matches!(&p.source, SourceSpec::Generate { charset, .. } if *charset == want),
        );
    }
    any("charset custom", &|p| {
        matches!(
            &p.source,
            SourceSpec::Generate {
                charset: Charset::Custom(_),
                ..
            }
        )
    });
    any("vault_kv with names mapped to fields", &|p| {
        matches!(p.source, SourceSpec::VaultKv(_)) && p.from_keys.is_none()
    });
    any("vault_kv synced whole (from_keys)", &|p| {
        p.from_keys.is_some()
    });
    any(
        "vault_read with params",
        &|p| matches!(&p.source, SourceSpec::VaultRead { params, .. } if !params.is_empty()),
    );
    any("github_runner_token for an org", &|p| {
        matches!(&p.source, SourceSpec::GithubRunnerToken { repo: None, .. })
    });
    any("github_runner_token for a repository", &|p| {
        matches!(
            &p.source,
            SourceSpec::GithubRunnerToken { repo: Some(_), .. }
        )
    });

    // Targets, scopes and products.
    any_target("a repository", &|t| {
        matches!(
            t,
            TargetSpec::Repo {
                environment: None,
                ..
            }
        )
    });
    any_target("an environment of a repository", &|t| {
        matches!(
            t,
            TargetSpec::Repo {
                environment: Some(_),
                ..
            }
        )
    });
    any_target("an org's repositories", &|t| {
        matches!(
            t,
            TargetSpec::OrgRepos {
                environment: None,
                ..
            }
        )
    });
    any_target("an environment in an org's repositories", &|t| {
        matches!(
            t,
            TargetSpec::OrgRepos {
                environment: Some(_),
                ..
            }
        )
    });
    any_target("a vault_kv target", &|t| {
        matches!(t, TargetSpec::VaultKv(_))
    });
    for v in [Visibility::All, Visibility::Private, Visibility::Selected] {
        any_target(
            &format!("an organization secret {v:?}"),
            &|t| matches!(t, TargetSpec::OrgSecret { visibility, .. } if *visibility == v),
        );
    }
    for app in [App::Actions, App::Dependabot, App::Codespaces] {
        any_target(
            &format!("{app:?} repository secrets"),
            &|t| matches!(t, TargetSpec::Repo { app: a, .. } | TargetSpec::OrgRepos { app: a, .. } if *a == app),
        );
        any_target(
            &format!("{app:?} organization secrets"),
            &|t| matches!(t, TargetSpec::OrgSecret { app: a, .. } if *a == app),
        );
    }
    any_selector("name globs", &|s| !s.include.is_empty());
    any_selector("an exclude", &|s| !s.exclude.is_empty());
    any_selector("topics", &|s| !s.topics.is_empty());
    any_selector("repo_visibility", &|s| !s.visibility.is_empty());
    any_selector("include_archived", &|s| s.include_archived);
    any_selector("include_disabled", &|s| s.include_disabled);

    // Schedule.
    let schedules = || all.iter().filter_map(|p| p.schedule.as_ref());
    assert!(schedules().any(|s| matches!(s.cadence, Some(Cadence::Cron(_)))));
    assert!(schedules().any(|s| matches!(s.cadence, Some(Cadence::Every(_)))));
    assert!(schedules().any(|s| s.timezone != "UTC"), "a timezone");
    assert!(schedules().any(|s| s.jitter.is_some()), "jitter");
    assert!(schedules().any(|s| s.max_age.is_some()), "max_age");

    // Verification and rollout.
    let verifies = || all.iter().filter_map(|p| p.verify.as_ref());
    assert!(verifies().any(|v| matches!(v.workflow, WorkflowRef::File(_))));
    assert!(verifies().any(|v| matches!(v.workflow, WorkflowRef::Id(_))));
    assert!(verifies().any(|v| v.git_ref.is_some()), "verify.ref");
    assert!(verifies().any(|v| !v.inputs.is_empty()), "verify.inputs");
    assert!(verifies().any(|v| !v.repos.is_empty()), "verify.repos");
    assert!(
        verifies().any(|v| v.timeout != std::time::Duration::from_secs(900)),
        "verify.timeout"
    );
    let rollouts = || all.iter().filter_map(|p| p.rollout.as_ref());
    assert!(rollouts().any(|r| matches!(r.canary, Canary::Count(_))));
    assert!(rollouts().any(|r| matches!(r.canary, Canary::Percent(_))));
    assert!(rollouts().any(|r| matches!(r.canary, Canary::Repos(_))));
    assert!(rollouts().any(|r| r.on_failure == OnFailure::Rollback));
    assert!(rollouts().any(|r| r.on_failure == OnFailure::Halt));

    // The rest.
    any("takeover: true", &|p| p.takeover);
    any("an owner", &|p| p.owner.is_some());
    any("a description", &|p| p.description.is_some());
}
