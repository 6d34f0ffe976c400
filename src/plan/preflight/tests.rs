//! Pre-flight tests: whole plans in, blocked targets and warnings out.

use std::collections::BTreeMap;

use chrono::{TimeZone, Utc};

use crate::ledger::LedgerState;
use crate::model::{Installation, InstallationRepos, Repo, SecretMeta, SecretScope};
use crate::plan::{plan, Listings, Observed, Plan, PlanOptions};
use crate::policy::*;

fn generated(length: usize) -> SourceSpec {
    SourceSpec::Generate {
        length,
        charset: Charset::Alphanumeric,
        prefix: None,
        store: None,
    }
}

fn policy(name: &str, secret: &str, targets: Vec<TargetSpec>) -> Policy {
    Policy {
        name: name.into(),
        description: None,
        owner: None,
        source: generated(32),
        secrets: BTreeMap::from([(secret.to_string(), "value".to_string())]),
        targets,
        schedule: None,
        verify: None,
        rollout: None,
        takeover: false,
        from_keys: None,
        file: format!("{name}.yaml").into(),
    }
}

fn repo_target(repo: &str) -> TargetSpec {
    TargetSpec::Repo {
        owner: "acme".into(),
        repo: repo.into(),
        environment: None,
        app: App::Actions,
    }
}

fn org_repos(include: &[&str]) -> TargetSpec {
    TargetSpec::OrgRepos {
        org: "acme".into(),
        selector: RepoSelector {
            include: include.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        },
        environment: None,
        app: App::Actions,
    }
}

fn repo(id: u64, name: &str, visibility: &str) -> Repo {
    Repo {
        id,
        name: name.into(),
        full_name: format!("acme/{name}"),
        archived: false,
        disabled: false,
        private: visibility != "public",
        visibility: Some(visibility.into()),
        topics: vec![],
    }
}

fn listing(repos: Vec<Repo>) -> Listings {
    Listings {
        orgs: BTreeMap::from([("acme".to_string(), Ok(repos))]),
    }
}

fn meta(name: &str, visibility: Option<&str>) -> SecretMeta {
    let t = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    SecretMeta {
        name: name.into(),
        created_at: t,
        updated_at: t,
        visibility: visibility.map(String::from),
    }
}

fn run(policies: Vec<Policy>, observed: &Observed) -> Plan {
    let set = PolicySet { policies };
    plan(
        &set,
        observed,
        &LedgerState::default(),
        Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap(),
        &PlanOptions::default(),
    )
}

fn problem<'a>(plan: &'a Plan, policy: &str, target: &str) -> Option<&'a str> {
    plan.policies
        .iter()
        .find(|p| p.policy == policy)
        .and_then(|p| p.targets.iter().find(|t| *t.target == *target))
        .and_then(|t| t.problem.as_deref())
}

#[test]
fn two_selectors_meeting_on_one_repository_stop_that_target_in_both_policies() {
    let observed = Observed {
        listings: listing(vec![repo(1, "api", "private"), repo(2, "web", "private")]),
        ..Default::default()
    };
    let plan = run(
        vec![
            policy("a", "TOKEN", vec![org_repos(&["a*"])]),
            policy("b", "token", vec![org_repos(&["*i", "web"])]),
        ],
        &observed,
    );
    for p in ["a", "b"] {
        let why = problem(&plan, p, "acme/api").expect("blocked");
        assert!(
            why.contains("policies a, b all write TOKEN to acme/api"),
            "{why}"
        );
    }
    assert_eq!(
        problem(&plan, "b", "acme/web"),
        None,
        "web is written by b alone"
    );
}

#[test]
fn a_repository_at_githubs_limit_refuses_a_new_name_but_not_a_known_one() {
    let full: Vec<SecretMeta> = (0..100).map(|i| meta(&format!("S{i}"), None)).collect();
    let mut with_token = full.clone();
    with_token.pop();
    with_token.push(meta("TOKEN", None));
    let mut observed = Observed {
        listings: listing(vec![repo(1, "api", "private"), repo(2, "web", "private")]),
        ..Default::default()
    };
    let scope = |r: &str| SecretScope::Repo {
        owner: "acme".into(),
        repo: r.into(),
        app: App::Actions,
    };
    observed.secrets.insert(scope("api").key(), Ok(full));
    observed.secrets.insert(scope("web").key(), Ok(with_token));
    let plan = run(
        vec![policy("a", "TOKEN", vec![org_repos(&["*"])])],
        &observed,
    );
    let why = problem(&plan, "a", "acme/api").expect("over the limit");
    assert!(why.contains("at most 100 secrets per repository"), "{why}");
    assert!(
        why.contains("holds 100 and this plan would add 1 (TOKEN)"),
        "{why}"
    );
    assert_eq!(
        problem(&plan, "a", "acme/web"),
        None,
        "TOKEN exists there already"
    );
}

#[test]
fn a_generated_value_beyond_48_kb_is_stopped_before_anything_runs() {
    let mut p = policy("big", "TOKEN", vec![repo_target("api")]);
    p.source = SourceSpec::Generate {
        length: 4096,
        charset: Charset::Custom("😀😁".into()),
        prefix: Some("x".repeat(40_000)),
        store: None,
    };
    let plan = run(vec![p], &Observed::default());
    let why = plan.policies[0].problem.as_deref().expect("too big");
    assert!(why.contains("GitHub accepts at most 49152"), "{why}");
}

#[test]
fn a_repository_secret_named_like_an_org_secret_it_can_use_is_a_warning() {
    let observed = Observed {
        listings: listing(vec![repo(1, "api", "public"), repo(2, "web", "private")]),
        ..Default::default()
    };
    let org_private = TargetSpec::OrgSecret {
        org: "acme".into(),
        visibility: Visibility::Private,
        selector: None,
        app: App::Actions,
    };
    let plan = run(
        vec![
            policy("org", "TOKEN", vec![org_private]),
            policy(
                "repos",
                "TOKEN",
                vec![repo_target("api"), repo_target("web")],
            ),
        ],
        &observed,
    );
    assert_eq!(plan.warnings.len(), 1, "{:?}", plan.warnings);
    let w = &plan.warnings[0];
    assert_eq!(
        (w.policy.as_str(), w.target.as_str()),
        ("repos", "acme/web")
    );
    assert!(
        w.message.contains("shadows the organization secret TOKEN"),
        "{}",
        w.message
    );
    assert!(plan
        .to_text()
        .contains("warning: policy repos target acme/web secret TOKEN"));
    let json: serde_json::Value = serde_json::from_str(&plan.to_json()).expect("JSON");
    assert_eq!(json["summary"]["warnings"], 1);
    assert_eq!(json["warnings"][0]["target"], "acme/web");
}

#[test]
fn an_org_secret_already_on_github_is_shadowed_too() {
    let mut observed = Observed {
        listings: listing(vec![repo(1, "api", "public")]),
        ..Default::default()
    };
    let org = SecretScope::Org {
        org: "acme".into(),
        app: App::Actions,
    };
    observed
        .secrets
        .insert(org.key(), Ok(vec![meta("NPM_TOKEN", Some("all"))]));
    let org_target = TargetSpec::OrgSecret {
        org: "acme".into(),
        visibility: Visibility::All,
        selector: None,
        app: App::Actions,
    };
    let plan = run(
        vec![
            policy("org", "OTHER", vec![org_target]),
            policy("repos", "NPM_TOKEN", vec![repo_target("api")]),
        ],
        &observed,
    );
    assert_eq!(plan.warnings.len(), 1, "{:?}", plan.warnings);
    assert!(plan.warnings[0]
        .message
        .contains("already on GitHub in org:acme"));
}

fn installed(selection: &str, repos: Vec<Repo>, permissions: &[(&str, &str)]) -> InstallationRepos {
    InstallationRepos {
        installation: Installation {
            id: 77,
            account: None,
            repository_selection: selection.into(),
            permissions: permissions
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            suspended_at: None,
        },
        repos,
    }
}

#[test]
fn with_app_auth_an_installation_must_reach_the_repository_and_hold_the_permissions() {
    let mut observed = Observed {
        app_auth: true,
        ..Default::default()
    };
    observed.installations.insert(
        "acme".into(),
        Ok(Some(installed(
            "selected",
            vec![repo(1, "api", "private")],
            &[("secrets", "write"), ("environments", "read")],
        ))),
    );
    observed.installations.insert("globex".into(), Ok(None));
    let env = TargetSpec::Repo {
        owner: "acme".into(),
        repo: "api".into(),
        environment: Some("production".into()),
        app: App::Actions,
    };
    let globex = TargetSpec::Repo {
        owner: "globex".into(),
        repo: "api".into(),
        environment: None,
        app: App::Actions,
    };
    let codespaces = TargetSpec::OrgSecret {
        org: "acme".into(),
        visibility: Visibility::All,
        selector: None,
        app: App::Codespaces,
    };
    let plan = run(
        vec![policy(
            "p",
            "TOKEN",
            vec![
                repo_target("api"),
                repo_target("web"),
                env,
                globex,
                codespaces,
            ],
        )],
        &observed,
    );
    assert_eq!(problem(&plan, "p", "acme/api"), None);
    let web = problem(&plan, "p", "acme/web").expect("not reached");
    assert!(
        web.contains("installation 77 on acme does not reach acme/web"),
        "{web}"
    );
    let env = problem(&plan, "p", "acme/api env:production").expect("missing permission");
    assert!(
        env.contains("grant the GitHub App environments: write"),
        "{env}"
    );
    let globex = problem(&plan, "p", "globex/api").expect("not installed");
    assert!(globex.contains("not installed on globex"), "{globex}");
    let cs = problem(&plan, "p", "org:acme (codespaces)").expect("not for Apps");
    assert!(cs.contains("organization Codespaces secrets"), "{cs}");
}
