//! Every place a secret can live, end to end through the real `rotor` binary, a real
//! OpenBao and the emulator: repository, environment and organization secrets for Actions,
//! Dependabot and Codespaces, with each decrypted value checked in the emulator; selection
//! by visibility, archived and disabled; `selected` organization secrets kept in step with
//! their repositories; a missing environment reported for its target alone.

use github_emulator::Scope as SecretScope;
use github_emulator::{App, Visibility};
use github_emulator::{Emulator, FaultRule, FleetSpec, OrgSpec, RepoSpec, RepoVisibility};
use serde_json::json;

use crate::util::bao::Bao;
use crate::util::emu;
use crate::util::rotor::Workspace;

/// `acme`: api (private, environments production + staging), web (public, production),
/// svc-1..3 (public; svc-3 private), old (archived), off (disabled), intra (internal).
/// `globex`: one repository, `tools`.
fn fleet() -> FleetSpec {
    let repos = vec![
        RepoSpec::new("api")
            .visibility(RepoVisibility::Private)
            .environments(&["production", "staging"]),
        RepoSpec::new("web").environments(&["production"]),
        RepoSpec::new("svc-1"),
        RepoSpec::new("svc-2").topics(&["pci"]),
        RepoSpec::new("svc-3").visibility(RepoVisibility::Private),
        RepoSpec::new("old").archived(true),
        RepoSpec::new("off").disabled(true),
        RepoSpec::new("intra").visibility(RepoVisibility::Internal),
    ];
    FleetSpec {
        orgs: vec![
            OrgSpec {
                name: "acme".into(),
                id: None,
                repos,
            },
            OrgSpec {
                name: "globex".into(),
                id: None,
                repos: vec![RepoSpec::new("tools")],
            },
        ],
        ..Default::default()
    }
}

fn repo(name: &str, app: App) -> SecretScope {
    SecretScope::Repo {
        owner: "acme".into(),
        repo: name.into(),
        app,
    }
}

fn env(name: &str, environment: &str) -> SecretScope {
    SecretScope::Environment {
        owner: "acme".into(),
        repo: name.into(),
        environment: environment.into(),
    }
}

fn org(app: App) -> SecretScope {
    SecretScope::Org {
        org: "acme".into(),
        app,
    }
}

/// A vault_kv policy named `name` pushing field `token` of `secret/ci/{name}` as `secret`.
fn policy(name: &str, secret: &str, targets: &str) -> String {
    format!(
        "version: 1\nname: {name}\nsource:\n  vault_kv: {{ mount: secret, path: ci/{name} }}\nsecrets:\n  {secret}: token\ntargets:\n{targets}"
    )
}

struct Setup {
    bao: Bao,
    emu: Emulator,
    handle: emu::ServerHandle,
    ws: Workspace,
}

async fn setup(spec: FleetSpec) -> Setup {
    let bao = Bao::start();
    let (emu, handle) = emu::start(spec).await;
    let ws = Workspace::new(
        &handle.url,
        emu::DEFAULT_TOKEN,
        Some((bao.addr.clone(), bao.token.clone())),
    );
    Setup {
        bao,
        emu,
        handle,
        ws,
    }
}

impl Setup {
    async fn value(&self, name: &str, value: &str) {
        self.bao
            .kv_put("secret", &format!("ci/{name}"), json!({ "token": value }))
            .await;
    }

    fn holds(&self, scope: &SecretScope, secret: &str) -> Option<String> {
        self.emu.decrypted(scope, secret)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repository_actions_secrets_hold_the_vault_value_in_every_selected_repository() {
    let s = setup(fleet()).await;
    s.value("actions", "actions-v1").await;
    s.ws.write_policy(
        "p.yaml",
        &policy(
            "actions",
            "CI_TOKEN",
            "  - org: acme\n    repos: [\"svc-*\"]\n  - repo: acme/api\n",
        ),
    );
    s.ws.run(&["apply"]).await.expect_code(0);
    for r in ["svc-1", "svc-2", "svc-3", "api"] {
        assert_eq!(
            s.holds(&repo(r, App::Actions), "CI_TOKEN").as_deref(),
            Some("actions-v1"),
            "{r}"
        );
    }
    assert_eq!(s.holds(&repo("web", App::Actions), "CI_TOKEN"), None);
    assert_eq!(
        s.holds(&repo("svc-1", App::Dependabot), "CI_TOKEN"),
        None,
        "Actions only"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn environment_secrets_land_in_the_environment_and_not_in_the_repository() {
    let s = setup(fleet()).await;
    s.value("deploy", "env-v1").await;
    s.ws.write_policy(
        "p.yaml",
        &policy(
            "deploy",
            "DEPLOY_KEY",
            "  - repo: acme/api\n    environment: staging\n  - org: acme\n    repos: [api, web]\n    environment: production\n",
        ),
    );
    let plan = s.ws.run(&["plan"]).await.expect_code(0);
    assert!(
        plan.stdout.contains("acme/api env:staging"),
        "{}",
        plan.stdout
    );
    s.ws.run(&["apply"]).await.expect_code(0);
    for scope in [
        env("api", "staging"),
        env("api", "production"),
        env("web", "production"),
    ] {
        assert_eq!(
            s.holds(&scope, "DEPLOY_KEY").as_deref(),
            Some("env-v1"),
            "{scope:?}"
        );
    }
    assert_eq!(s.holds(&repo("api", App::Actions), "DEPLOY_KEY"), None);
    // Environment keys are their own: the value was sealed to each environment's key.
    let info = s
        .emu
        .secret_info(&env("api", "staging"), "DEPLOY_KEY")
        .expect("stored");
    let key = s.emu.public_key(&env("api", "staging")).expect("key");
    assert_eq!(info.key_id, key.key_id);
    assert_ne!(
        s.emu
            .public_key(&repo("api", App::Actions))
            .expect("repo key")
            .key_id,
        key.key_id
    );

    s.value("deploy", "env-v2").await;
    s.ws.run(&["apply"]).await.expect_code(0);
    assert_eq!(
        s.holds(&env("web", "production"), "DEPLOY_KEY").as_deref(),
        Some("env-v2")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_environment_is_reported_at_plan_time_for_its_target_while_the_rest_succeed() {
    let s = setup(fleet()).await;
    s.value("deploy", "env-v1").await;
    // svc-1 has no environments at all; web has production but no staging.
    s.ws.write_policy(
        "p.yaml",
        &policy(
            "deploy",
            "DEPLOY_KEY",
            "  - org: acme\n    repos: [api, web]\n    environment: staging\n  - repo: acme/svc-1\n    environment: production\n  - repo: acme/api\n",
        ),
    );
    let plan = s.ws.run(&["plan"]).await.expect_code(0);
    assert!(
        plan.stdout
            .contains("environment staging does not exist in acme/web"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout
            .contains("environment production does not exist in acme/svc-1"),
        "{}",
        plan.stdout
    );
    let before = s.emu.counters();
    let run =
        s.ws.run(&["apply", "--output", "json"])
            .await
            .expect_code(1);
    let out: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON");
    let mut failed: Vec<String> = out["report"]["policies"][0]["failures"]
        .as_array()
        .expect("failures")
        .iter()
        .map(|f| f["target"].as_str().expect("target").to_string())
        .collect();
    failed.sort();
    assert_eq!(
        failed,
        vec!["acme/svc-1 env:production", "acme/web env:staging"]
    );
    assert_eq!(
        s.holds(&env("api", "staging"), "DEPLOY_KEY").as_deref(),
        Some("env-v1")
    );
    assert_eq!(
        s.holds(&repo("api", App::Actions), "DEPLOY_KEY").as_deref(),
        Some("env-v1")
    );
    // Nothing was sent to the missing environments' key or secret endpoints by apply.
    let after = s.emu.counters();
    let env_puts =
        "PUT /repos/{owner}/{repo}/environments/{environment_name}/secrets/{secret_name}";
    assert_eq!(
        after.route(env_puts) - before.route(env_puts),
        1,
        "only api's staging"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn organization_actions_secrets_carry_all_private_and_selected_visibility() {
    let s = setup(fleet()).await;
    s.value("org-all", "all-v1").await;
    s.value("org-private", "private-v1").await;
    s.value("org-selected", "selected-v1").await;
    s.ws.write_policy(
        "all.yaml",
        &policy(
            "org-all",
            "ORG_ALL",
            "  - org: acme\n    scope: organization\n    visibility: all\n",
        ),
    );
    s.ws.write_policy(
        "private.yaml",
        &policy(
            "org-private",
            "ORG_PRIVATE",
            "  - org: acme\n    scope: organization\n    visibility: private\n",
        ),
    );
    s.ws.write_policy(
        "selected.yaml",
        &policy(
            "org-selected",
            "ORG_SELECTED",
            "  - org: acme\n    scope: organization\n    visibility: selected\n    repos: [\"svc-*\", \"!svc-3\"]\n",
        ),
    );
    s.ws.run(&["apply"]).await.expect_code(0);
    let scope = org(App::Actions);
    for (name, value, visibility) in [
        ("ORG_ALL", "all-v1", Visibility::All),
        ("ORG_PRIVATE", "private-v1", Visibility::Private),
        ("ORG_SELECTED", "selected-v1", Visibility::Selected),
    ] {
        assert_eq!(s.holds(&scope, name).as_deref(), Some(value), "{name}");
        let info = s.emu.secret_info(&scope, name).expect("stored");
        assert_eq!(info.visibility, Some(visibility), "{name}");
    }
    let ids = |names: &[&str]| -> Vec<u64> {
        let mut v: Vec<u64> = names
            .iter()
            .map(|n| s.emu.repo_id("acme", n).expect("id"))
            .collect();
        v.sort_unstable();
        v
    };
    let selected = s.emu.secret_info(&scope, "ORG_SELECTED").expect("stored");
    assert_eq!(selected.selected_repository_ids, ids(&["svc-1", "svc-2"]));
    // A repository sees the organization secrets its visibility allows.
    let gh = emu::Gh::new(&s.handle);
    let seen = |r: &str| {
        let gh = gh.clone();
        let r = r.to_string();
        async move {
            let v = gh
                .get_json(&format!("/repos/acme/{r}/actions/organization-secrets"))
                .await;
            let mut names: Vec<String> = v["secrets"]
                .as_array()
                .expect("secrets")
                .iter()
                .map(|m| m["name"].as_str().expect("name").to_string())
                .collect();
            names.sort();
            names
        }
    };
    assert_eq!(seen("svc-1").await, vec!["ORG_ALL", "ORG_SELECTED"]);
    assert_eq!(seen("svc-3").await, vec!["ORG_ALL", "ORG_PRIVATE"]);
    // The org listing shows visibility, which the next plan reads: nothing to do.
    let plan = s.ws.run(&["plan", "--output", "json"]).await.expect_code(0);
    let plan: serde_json::Value = serde_json::from_str(&plan.stdout).expect("JSON");
    assert_eq!(plan["summary"]["unchanged"], 3, "{plan}");
    assert_eq!(plan["summary"]["access"], 0, "{plan}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_selected_org_secret_follows_repositories_added_to_and_removed_from_its_selection() {
    let s = setup(fleet()).await;
    s.value("shared", "shared-v1").await;
    let write = |extra_exclude: &str| {
        policy(
            "shared",
            "SHARED",
            &format!(
                "  - org: acme\n    scope: organization\n    visibility: selected\n    repos: [\"svc-*\"{extra_exclude}]\n    app: dependabot\n"
            ),
        )
    };
    s.ws.write_policy("p.yaml", &write(""));
    s.ws.run(&["apply"]).await.expect_code(0);
    let scope = org(App::Dependabot);
    let current = || {
        let mut ids = s
            .emu
            .secret_info(&scope, "SHARED")
            .expect("stored")
            .selected_repository_ids;
        ids.sort_unstable();
        ids
    };
    let id = |n: &str| s.emu.repo_id("acme", n).expect("id");
    assert_eq!(current(), vec![id("svc-1"), id("svc-2"), id("svc-3")]);
    let writes = s.emu.secret_info(&scope, "SHARED").expect("stored").writes;

    // A new repository matches: the list grows without the value being written again.
    let new_id = s.emu.add_repo("acme", RepoSpec::new("svc-4"));
    let plan = s.ws.run(&["plan"]).await.expect_code(0);
    assert!(plan.stdout.contains("access"), "{}", plan.stdout);
    assert!(
        plan.stdout.contains("1 added, 0 removed (4 in all)"),
        "{}",
        plan.stdout
    );
    let run = s.ws.run(&["apply"]).await.expect_code(0);
    assert!(run.stdout.contains("0 pushed"), "{}", run.stdout);
    assert!(
        run.stdout.contains("Access: 1 organization secret"),
        "{}",
        run.stdout
    );
    assert_eq!(
        current(),
        vec![id("svc-1"), id("svc-2"), id("svc-3"), new_id]
    );
    assert_eq!(
        s.emu.secret_info(&scope, "SHARED").expect("stored").writes,
        writes,
        "no new value"
    );

    // A repository leaves the matching set: the list shrinks.
    s.ws.write_policy("p.yaml", &write(", \"!svc-2\""));
    s.ws.run(&["apply"]).await.expect_code(0);
    assert_eq!(current(), vec![id("svc-1"), id("svc-3"), new_id]);

    // A repository that vanishes is gone from GitHub's list, and rotor agrees.
    assert!(s.emu.remove_repo("acme", "svc-3"));
    let plan = s.ws.run(&["plan", "--output", "json"]).await.expect_code(0);
    let plan: serde_json::Value = serde_json::from_str(&plan.stdout).expect("JSON");
    assert_eq!(plan["summary"]["access"], 0, "{plan}");
    assert_eq!(current(), vec![id("svc-1"), new_id]);

    // Value and list stay one: still the Vault value.
    assert_eq!(s.holds(&scope, "SHARED").as_deref(), Some("shared-v1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_selected_org_secret_whose_visibility_changed_on_github_gets_409_and_is_written_again() {
    let s = setup(fleet()).await;
    s.value("shared", "shared-v1").await;
    s.ws.write_policy(
        "p.yaml",
        &policy(
            "shared",
            "SHARED",
            "  - org: acme\n    scope: organization\n    visibility: selected\n    repos: [\"svc-*\"]\n",
        ),
    );
    s.ws.run(&["apply"]).await.expect_code(0);
    let scope = org(App::Actions);

    // The list changes while GitHub answers 409 (its visibility is not `selected` any more).
    s.emu.add_repo("acme", RepoSpec::new("svc-9"));
    s.emu.add_fault(
        FaultRule::new("/orgs/acme/actions/secrets/SHARED/repositories", 409)
            .method("PUT")
            .message("Visibility of the secret is not set to selected.")
            .times(1),
    );
    let run = s.ws.run(&["apply"]).await.expect_code(1);
    assert!(
        run.stdout
            .contains("visibility is no longer `selected` on GitHub"),
        "{}",
        run.stdout
    );

    // Someone really sets it to `all`: the next plan sees it and writes the secret in full.
    let gh = emu::Gh::new(&s.handle);
    let resp = gh
        .put_secret_with(
            "/orgs/acme/actions/secrets",
            "SHARED",
            "outside",
            json!({"visibility": "all"}),
        )
        .await;
    assert_eq!(resp.status(), 204);
    let plan = s.ws.run(&["plan"]).await.expect_code(0);
    assert!(
        plan.stdout
            .contains("visibility is all on GitHub, the policy says selected"),
        "{}",
        plan.stdout
    );
    s.ws.run(&["apply"]).await.expect_code(0);
    let info = s.emu.secret_info(&scope, "SHARED").expect("stored");
    assert_eq!(info.visibility, Some(Visibility::Selected));
    assert_eq!(
        info.selected_repository_ids.len(),
        4,
        "svc-1, svc-2, svc-3 and svc-9"
    );
    assert_eq!(s.holds(&scope, "SHARED").as_deref(), Some("shared-v1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dependabot_secrets_reach_repositories_and_the_organization_with_their_own_keys() {
    let s = setup(fleet()).await;
    s.value("registry", "dependabot-v1").await;
    s.ws.write_policy(
        "p.yaml",
        &policy(
            "registry",
            "REGISTRY_TOKEN",
            "  - org: acme\n    repos: [\"svc-*\"]\n    app: dependabot\n  - org: acme\n    scope: organization\n    visibility: private\n    app: dependabot\n",
        ),
    );
    s.ws.run(&["apply"]).await.expect_code(0);
    for r in ["svc-1", "svc-2", "svc-3"] {
        let scope = repo(r, App::Dependabot);
        assert_eq!(
            s.holds(&scope, "REGISTRY_TOKEN").as_deref(),
            Some("dependabot-v1"),
            "{r}"
        );
        assert_eq!(
            s.emu
                .secret_info(&scope, "REGISTRY_TOKEN")
                .expect("stored")
                .key_id,
            s.emu.public_key(&scope).expect("key").key_id,
            "sealed to the Dependabot key"
        );
        assert_eq!(s.holds(&repo(r, App::Actions), "REGISTRY_TOKEN"), None);
    }
    let o = org(App::Dependabot);
    assert_eq!(
        s.holds(&o, "REGISTRY_TOKEN").as_deref(),
        Some("dependabot-v1")
    );
    assert_eq!(
        s.emu
            .secret_info(&o, "REGISTRY_TOKEN")
            .expect("stored")
            .visibility,
        Some(Visibility::Private)
    );
    assert_eq!(s.holds(&org(App::Actions), "REGISTRY_TOKEN"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codespaces_secrets_reach_repositories_and_the_organization_with_their_own_keys() {
    let s = setup(fleet()).await;
    s.value("devbox", "codespaces-v1").await;
    s.ws.write_policy(
        "p.yaml",
        &policy(
            "devbox",
            "DEVBOX_TOKEN",
            "  - repo: acme/api\n    app: codespaces\n  - org: acme\n    scope: organization\n    visibility: selected\n    repos: [api, web]\n    app: codespaces\n",
        ),
    );
    s.ws.run(&["apply"]).await.expect_code(0);
    let r = repo("api", App::Codespaces);
    assert_eq!(
        s.holds(&r, "DEVBOX_TOKEN").as_deref(),
        Some("codespaces-v1")
    );
    assert_eq!(
        s.emu
            .secret_info(&r, "DEVBOX_TOKEN")
            .expect("stored")
            .key_id,
        s.emu.public_key(&r).expect("key").key_id
    );
    let o = org(App::Codespaces);
    assert_eq!(
        s.holds(&o, "DEVBOX_TOKEN").as_deref(),
        Some("codespaces-v1")
    );
    let info = s.emu.secret_info(&o, "DEVBOX_TOKEN").expect("stored");
    assert_eq!(info.visibility, Some(Visibility::Selected));
    let mut want = vec![
        s.emu.repo_id("acme", "api").unwrap(),
        s.emu.repo_id("acme", "web").unwrap(),
    ];
    want.sort_unstable();
    assert_eq!(info.selected_repository_ids, want);
    assert_eq!(s.holds(&repo("api", App::Actions), "DEVBOX_TOKEN"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selection_honours_repository_visibility_topics_and_skips_archived_and_disabled() {
    let s = setup(fleet()).await;
    s.value("sel", "sel-v1").await;
    s.ws.write_policy(
        "p.yaml",
        &policy(
            "sel",
            "SEL_TOKEN",
            "  - org: acme\n    repo_visibility: [private, internal]\n  - org: globex\n  - org: acme\n    topics: [pci]\n    app: dependabot\n",
        ),
    );
    s.ws.run(&["apply"]).await.expect_code(0);
    let actions: Vec<&str> = [
        "api", "web", "svc-1", "svc-2", "svc-3", "old", "off", "intra",
    ]
    .into_iter()
    .filter(|r| s.holds(&repo(r, App::Actions), "SEL_TOKEN").is_some())
    .collect();
    assert_eq!(
        actions,
        vec!["api", "svc-3", "intra"],
        "private and internal, not archived or disabled"
    );
    let tools = SecretScope::Repo {
        owner: "globex".into(),
        repo: "tools".into(),
        app: App::Actions,
    };
    assert_eq!(s.holds(&tools, "SEL_TOKEN").as_deref(), Some("sel-v1"));
    assert_eq!(
        s.holds(&repo("svc-2", App::Dependabot), "SEL_TOKEN")
            .as_deref(),
        Some("sel-v1")
    );
    assert_eq!(s.holds(&repo("svc-1", App::Dependabot), "SEL_TOKEN"), None);

    // Asking for archived repositories reaches them, and GitHub refuses the write (403).
    s.ws.write_policy(
        "p.yaml",
        &policy(
            "sel",
            "SEL_TOKEN",
            "  - org: acme\n    repos: [old]\n    include_archived: true\n",
        ),
    );
    let run = s.ws.run(&["apply"]).await.expect_code(1);
    assert!(
        run.stdout.contains("archived so is read-only"),
        "{}",
        run.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repository_secret_shadowing_an_org_secret_is_a_warning_in_text_and_json() {
    let s = setup(fleet()).await;
    s.value("shadow", "v1").await;
    s.ws.write_policy(
        "p.yaml",
        &policy(
            "shadow",
            "NPM_TOKEN",
            "  - org: acme\n    scope: organization\n    visibility: all\n",
        ),
    );
    s.ws.run(&["apply"]).await.expect_code(0);
    s.value("repo-npm", "v2").await;
    s.ws.write_policy(
        "q.yaml",
        &policy("repo-npm", "NPM_TOKEN", "  - repo: acme/web\n"),
    );
    let plan = s.ws.run(&["plan"]).await.expect_code(0);
    assert!(
        plan.stdout
            .contains("warning: policy repo-npm target acme/web secret NPM_TOKEN"),
        "{}",
        plan.stdout
    );
    let json = s.ws.run(&["plan", "--output", "json"]).await.expect_code(0);
    let json: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON");
    assert_eq!(json["summary"]["warnings"], 1, "{json}");
    assert!(json["warnings"][0]["message"]
        .as_str()
        .unwrap()
        .contains("shadows"));
    // A warning blocks nothing.
    s.ws.run(&["apply"]).await.expect_code(0);
    assert_eq!(
        s.holds(&repo("web", App::Actions), "NPM_TOKEN").as_deref(),
        Some("v2")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vault_value_over_48_kb_is_refused_before_sealing_and_nothing_is_sent() {
    let s = setup(fleet()).await;
    s.value("big", &"x".repeat(48 * 1024 + 1)).await;
    s.ws.write_policy("p.yaml", &policy("big", "BIG", "  - repo: acme/api\n"));
    let puts = "PUT /repos/{owner}/{repo}/actions/secrets/{secret_name}";
    let run = s.ws.run(&["apply"]).await.expect_code(1);
    assert!(
        run.stdout
            .contains("is 49153 bytes; GitHub accepts at most 49152"),
        "{}",
        run.stdout
    );
    assert_eq!(s.emu.counters().route(puts), 0);
    s.value("big", &"x".repeat(48 * 1024)).await;
    s.ws.run(&["apply"]).await.expect_code(0);
    assert_eq!(
        s.holds(&repo("api", App::Actions), "BIG").map(|v| v.len()),
        Some(49152)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repository_at_githubs_100_secret_limit_is_stopped_at_plan_time_alone() {
    let s = setup(fleet()).await;
    s.value("more", "v1").await;
    for i in 0..100 {
        assert!(s
            .emu
            .insert_secret(&repo("web", App::Actions), &format!("OLD_{i}"), "x"));
    }
    s.ws.write_policy(
        "p.yaml",
        &policy(
            "more",
            "ONE_MORE",
            "  - repo: acme/web\n  - repo: acme/api\n",
        ),
    );
    let plan = s.ws.run(&["plan"]).await.expect_code(0);
    assert!(
        plan.stdout.contains(
            "GitHub allows at most 100 secrets per repository; acme/web holds 100 and this plan would add 1 (ONE_MORE)"
        ),
        "{}",
        plan.stdout
    );
    s.ws.run(&["apply"]).await.expect_code(1);
    assert_eq!(
        s.holds(&repo("api", App::Actions), "ONE_MORE").as_deref(),
        Some("v1")
    );
    assert_eq!(s.holds(&repo("web", App::Actions), "ONE_MORE"), None);
}
