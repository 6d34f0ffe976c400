//! End-to-end rotation through the real `rotor` binary, a real OpenBao and the emulator:
//! every selected repository decrypts to Vault's current value, and nothing else moves.

use github_emulator::App;
use github_emulator::Scope as SecretScope;
use github_emulator::{FaultRule, FleetSpec};
use serde_json::json;

use crate::util::bao::Bao;
use crate::util::emu;
use crate::util::rotor::Workspace;

const PUT_REPO_SECRET: &str = "PUT /repos/{owner}/{repo}/actions/secrets/{secret_name}";

fn repo(owner: &str, name: &str) -> SecretScope {
    SecretScope::Repo {
        owner: owner.into(),
        repo: name.into(),
        app: App::Actions,
    }
}

fn svc(i: usize) -> String {
    format!("svc-{i:04}")
}

const STORED_POLICY: &str = r#"
version: 1
name: deploy-token
owner: security@example.com
source:
  generate:
    length: 40
    charset: alphanumeric
    store:
      vault_kv: { mount: secret, path: ci/deploy-token }
secrets:
  DEPLOY_TOKEN: value
targets:
  - org: acme
    repos: ["svc-*", "!svc-0007"]
  - org: globex
    topics: [pci]
schedule:
  every: 30d
"#;

/// Which generated repositories the stored policy selects (see `FleetSpec::generate`).
fn selected(org: &str, i: usize) -> bool {
    let archived = i.is_multiple_of(10);
    match org {
        "acme" => !archived && i != 7,
        _ => !archived && i.is_multiple_of(3),
    }
}

async fn vault_value(bao: &Bao, path: &str, field: &str) -> (u64, String) {
    let (version, data) = bao.kv_get("secret", path).await;
    (
        version,
        data[field].as_str().expect("string field").to_string(),
    )
}

fn assert_fleet_holds(emu: &github_emulator::Emulator, value: &str) -> usize {
    let mut count = 0;
    for org in ["acme", "globex"] {
        for i in 1..=100 {
            let got = emu.decrypted(&repo(org, &svc(i)), "DEPLOY_TOKEN");
            if selected(org, i) {
                assert_eq!(
                    got.as_deref(),
                    Some(value),
                    "{org}/{} holds the wrong value",
                    svc(i)
                );
                count += 1;
            } else {
                assert_eq!(
                    got,
                    None,
                    "{org}/{} is not selected but got a value",
                    svc(i)
                );
            }
        }
    }
    count
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vault_stored_secret_reaches_every_selected_repository_in_two_orgs_and_converges() {
    let bao = Bao::start();
    let (emu, handle) = emu::start(FleetSpec::generate(&["acme", "globex"], 100)).await;
    let ws = Workspace::new(
        &handle.url,
        emu::DEFAULT_TOKEN,
        Some((bao.addr.clone(), bao.token.clone())),
    );
    ws.write_policy("deploy-token.yaml", STORED_POLICY);

    let plan = ws.run(&["plan"]).await.expect_code(0);
    assert!(
        plan.stdout.contains("rotate: no version yet"),
        "{}",
        plan.stdout
    );

    let first = ws.run(&["apply"]).await.expect_code(0);
    let (v1, value1) = vault_value(&bao, "ci/deploy-token", "value").await;
    assert_eq!(v1, 1, "one rotation writes one Vault version");
    assert_eq!(value1.len(), 40);
    let targets = assert_fleet_holds(&emu, &value1);
    assert_eq!(
        targets,
        89 + 30,
        "acme: 90 unarchived minus svc-0007; globex: 30 pci repos"
    );
    assert!(
        first.stdout.contains(&format!("{targets} pushed")),
        "{}",
        first.stdout
    );
    let puts = emu.counters().route(PUT_REPO_SECRET);
    assert_eq!(puts as usize, targets);

    // A second apply right after the first pushes nothing and rotates nothing.
    let second = ws.run(&["apply"]).await.expect_code(0);
    assert!(
        second.stdout.contains("0 rotated, 0 pushed"),
        "{}",
        second.stdout
    );
    assert_eq!(emu.counters().route(PUT_REPO_SECRET), puts);
    assert_eq!(vault_value(&bao, "ci/deploy-token", "value").await.0, 1);

    // `rotate` makes exactly one new version, and every target converges to it.
    ws.run(&["rotate", "deploy-token"]).await.expect_code(0);
    let (v2, value2) = vault_value(&bao, "ci/deploy-token", "value").await;
    assert_eq!(v2, 2);
    assert_ne!(value1, value2);
    assert_fleet_holds(&emu, &value2);
    assert_eq!(emu.counters().route(PUT_REPO_SECRET) as usize, 2 * targets);

    let status = ws.run(&["status"]).await.expect_code(0);
    assert!(
        status.stdout.contains("policy deploy-token  version 2"),
        "{}",
        status.stdout
    );
}

const VAULT_KV_POLICY: &str = r#"
version: 1
name: npm-token
source:
  vault_kv: { mount: secret, path: ci/npm }
secrets:
  NPM_TOKEN: token
targets:
  - repo: acme/svc-0001
  - repo: acme/svc-0002
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_written_to_vault_by_hand_is_pushed_on_the_next_apply_and_only_then() {
    let bao = Bao::start();
    let (emu, handle) = emu::start(FleetSpec::generate(&["acme"], 3)).await;
    let ws = Workspace::new(
        &handle.url,
        emu::DEFAULT_TOKEN,
        Some((bao.addr.clone(), bao.token.clone())),
    );
    ws.write_policy("npm.yaml", VAULT_KV_POLICY);

    // Nothing in Vault yet: a clear problem, no push.
    let empty = ws.run(&["apply"]).await.expect_code(1);
    assert!(
        empty.stdout.contains("holds no version"),
        "{}",
        empty.stdout
    );

    bao.kv_put("secret", "ci/npm", json!({"token": "npm-one"}))
        .await;
    ws.run(&["apply"]).await.expect_code(0);
    for r in ["svc-0001", "svc-0002"] {
        assert_eq!(
            emu.decrypted(&repo("acme", r), "NPM_TOKEN").as_deref(),
            Some("npm-one")
        );
    }
    let puts = emu.counters().route(PUT_REPO_SECRET);
    ws.run(&["apply"]).await.expect_code(0);
    assert_eq!(
        emu.counters().route(PUT_REPO_SECRET),
        puts,
        "no new version, no push"
    );

    bao.kv_put("secret", "ci/npm", json!({"token": "npm-two"}))
        .await;
    let plan = ws.run(&["plan", "--output", "json"]).await.expect_code(0);
    let plan: serde_json::Value = serde_json::from_str(&plan.stdout).expect("plan JSON");
    assert_eq!(plan["summary"]["sync"], 2, "{plan}");
    ws.run(&["apply"]).await.expect_code(0);
    for r in ["svc-0001", "svc-0002"] {
        assert_eq!(
            emu.decrypted(&repo("acme", r), "NPM_TOKEN").as_deref(),
            Some("npm-two")
        );
    }
    assert_eq!(emu.counters().route(PUT_REPO_SECRET), puts + 2);
    assert_eq!(
        bao.kv_get("secret", "ci/npm").await.0,
        2,
        "rotor never writes a vault_kv source"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repository_answering_404_or_422_fails_alone_while_the_rest_succeed() {
    let bao = Bao::start();
    let (emu, handle) = emu::start(FleetSpec::generate(&["acme", "globex"], 20)).await;
    let ws = Workspace::new(
        &handle.url,
        emu::DEFAULT_TOKEN,
        Some((bao.addr.clone(), bao.token.clone())),
    );
    ws.write_policy("deploy-token.yaml", STORED_POLICY);
    emu.add_fault(
        FaultRule::new("/repos/acme/svc-0003/actions/secrets/public-key", 404).message("Not Found"),
    );
    emu.add_fault(
        FaultRule::new("/repos/acme/svc-0005/actions/secrets/DEPLOY_TOKEN", 422)
            .method("PUT")
            .message("Invalid request.\n\nBad key_id"),
    );

    let run = ws.run(&["apply", "--output", "json"]).await.expect_code(1);
    let out: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON report");
    let failures = out["report"]["policies"][0]["failures"]
        .as_array()
        .expect("failures")
        .clone();
    let mut failed: Vec<(String, u64)> = failures
        .iter()
        .map(|f| {
            (
                f["target"].as_str().unwrap().to_string(),
                f["status"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    failed.sort();
    assert_eq!(
        failed,
        vec![
            ("acme/svc-0003".to_string(), 404),
            ("acme/svc-0005".to_string(), 422)
        ]
    );
    assert!(
        failures
            .iter()
            .any(|f| f["message"].as_str().unwrap().contains("Bad key_id")),
        "{failures:?}"
    );

    let (v1, value) = vault_value(&bao, "ci/deploy-token", "value").await;
    for i in [1, 2, 4, 6, 8, 9] {
        assert_eq!(
            emu.decrypted(&repo("acme", &svc(i)), "DEPLOY_TOKEN")
                .as_deref(),
            Some(value.as_str())
        );
    }
    assert_eq!(
        emu.decrypted(&repo("acme", "svc-0003"), "DEPLOY_TOKEN"),
        None
    );

    // The next apply retries the failed targets with the same version: no new rotation.
    emu.clear_faults();
    let text = ws.run(&["apply"]).await.expect_code(0);
    assert!(
        text.stdout.contains("0 rotated, 2 pushed"),
        "{}",
        text.stdout
    );
    assert_eq!(vault_value(&bao, "ci/deploy-token", "value").await.0, v1);
    for i in [3, 5] {
        assert_eq!(
            emu.decrypted(&repo("acme", &svc(i)), "DEPLOY_TOKEN")
                .as_deref(),
            Some(value.as_str())
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_github_token_is_a_clear_error_and_writes_no_vault_version() {
    let bao = Bao::start();
    let (_emu, handle) = emu::start(FleetSpec::generate(&["acme", "globex"], 5)).await;
    let ws = Workspace::new(
        &handle.url,
        "not-a-real-token",
        Some((bao.addr.clone(), bao.token.clone())),
    );
    ws.write_policy("deploy-token.yaml", STORED_POLICY);
    let run = ws.run(&["apply"]).await.expect_code(1);
    assert!(
        run.stdout.contains("Bad credentials"),
        "{}\n{}",
        run.stdout,
        run.stderr
    );
    let status = bao
        .api(
            reqwest::Method::GET,
            "/v1/secret/metadata/ci/deploy-token",
            None,
        )
        .await;
    assert_eq!(
        status.0, 404,
        "no Vault version may be written: {:?}",
        status.1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_policy_folder_exits_2_with_every_diagnostic() {
    let (emu, handle) = emu::start(FleetSpec::generate(&["acme"], 1)).await;
    let ws = Workspace::new(&handle.url, emu::DEFAULT_TOKEN, None);
    ws.write_policy("a.yaml", "version: 1\nname: Bad_Name\n");
    ws.write_policy("b.yaml", "version: 2\n");
    for cmd in ["validate", "plan", "apply"] {
        let run = ws.run(&[cmd]).await.expect_code(2);
        assert!(
            run.stderr.contains("a.yaml:2:7: E0102"),
            "{cmd}: {}",
            run.stderr
        );
        assert!(
            run.stderr.contains("b.yaml:1:10: E0101"),
            "{cmd}: {}",
            run.stderr
        );
    }
    assert_eq!(emu.counters().total, 0, "bad input reaches nothing");
}

/// Every value rotor handled — generated, stored, read from Vault — must appear in none of
/// stdout, stderr (at TRACE), the plan, the JSON report, the status output or the ledger.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_value_appears_in_any_output_or_file_under_trace_logging() {
    let bao = Bao::start();
    let (emu, handle) = emu::start(FleetSpec::generate(&["acme", "globex"], 12)).await;
    let mut ws = Workspace::new(
        &handle.url,
        emu::DEFAULT_TOKEN,
        Some((bao.addr.clone(), bao.token.clone())),
    );
    ws.extra_env.push(("RUST_LOG".into(), "trace".into()));
    ws.write_policy("deploy-token.yaml", STORED_POLICY);
    ws.write_policy(
        "webhook.yaml",
        "version: 1\nname: webhook\nsource:\n  generate: { length: 48, charset: printable }\nsecrets:\n  WEBHOOK_SECRET: value\ntargets:\n  - repo: acme/svc-0011\n",
    );
    ws.write_policy("npm.yaml", VAULT_KV_POLICY);
    let canary = "CANARY-vault-kv-9f3b1c7e2d";
    bao.kv_put("secret", "ci/npm", json!({"token": canary}))
        .await;

    let mut haystack = String::new();
    let mut values: Vec<String> = vec![canary.to_string()];
    for args in [
        &["plan"][..],
        &["plan", "--output", "json"],
        &["apply", "--output", "json"],
        &["rotate", "deploy-token"],
        &["apply"],
        &["status"],
        &["status", "--output", "json"],
    ] {
        let run = ws.run(args).await;
        assert_eq!(run.code, 0, "{args:?}: {}\n{}", run.stdout, run.stderr);
        haystack.push_str(&run.stdout);
        haystack.push_str(&run.stderr);
        // The emulator keeps only the latest value of each secret: collect after every run.
        values.extend(
            emu.secrets()
                .into_iter()
                .map(|s| secrecy::ExposeSecret::expose_secret(&s.value).to_string()),
        );
    }
    assert!(haystack.contains("TRACE"), "logging ran at TRACE");
    for entry in std::fs::read_dir(ws.state()).expect("state dir") {
        let path = entry.expect("entry").path();
        if path.is_file() {
            haystack.push_str(&String::from_utf8_lossy(
                &std::fs::read(&path).expect("read state file"),
            ));
        }
    }

    values.push(vault_value(&bao, "ci/deploy-token", "value").await.1);
    values.sort();
    values.dedup();
    assert!(
        values.len() >= 4,
        "two deploy-token versions, the webhook value and the canary: {}",
        values.len()
    );
    for v in &values {
        assert!(v.len() >= 16);
        assert!(
            !haystack.contains(v.as_str()),
            "a secret value leaked into rotor's output or state"
        );
    }
}
