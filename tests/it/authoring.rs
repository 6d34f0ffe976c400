//! Policy authoring in pull requests: the Markdown plan, `--detailed-exitcode`, shell
//! completions and the man page.

use github_emulator::FleetSpec;

use crate::util::emu;
use crate::util::rotor::Workspace;

const POLICY: &str = "version: 1\nname: deploy\nowner: security@example.com\nsource:\n  generate: { length: 32 }\nsecrets:\n  DEPLOY_TOKEN: value\ntargets:\n  - org: acme\nschedule:\n  every: 30d\n";

#[tokio::test]
async fn a_markdown_plan_and_terraforms_detailed_exit_codes() {
    let (emu, handle) = emu::start(FleetSpec::generate(&["acme"], 2)).await;
    let ws = Workspace::new(&handle.url, emu::DEFAULT_TOKEN, None);
    ws.write_policy("deploy.yaml", POLICY);

    let run = ws
        .run(&["plan", "--output", "markdown", "--detailed-exitcode"])
        .await
        .expect_code(2);
    assert!(run.stdout.starts_with("### rotor plan\n"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("| `deploy` | generate (not stored) | no version yet"),
        "{}",
        run.stdout
    );
    assert!(run
        .stdout
        .contains("<details><summary><code>deploy</code> — owner security@example.com</summary>"));
    assert!(
        run.stdout
            .contains("| acme/svc-0002 | `DEPLOY_TOKEN` | create |"),
        "{}",
        run.stdout
    );

    ws.run(&["apply"]).await.expect_code(0);
    let value = emu
        .decrypted(
            &github_emulator::Scope::Repo {
                owner: "acme".into(),
                repo: "svc-0001".into(),
                app: github_emulator::App::Actions,
            },
            "DEPLOY_TOKEN",
        )
        .unwrap();
    let run = ws
        .run(&["plan", "--output", "markdown", "--detailed-exitcode"])
        .await
        .expect_code(0);
    assert!(run.stdout.contains("| unchanged |"), "{}", run.stdout);
    assert!(!run.stdout.contains(&value), "never a value");
    // Without the flag, a plan with changes is still 0.
    ws.write_policy(
        "deploy.yaml",
        &POLICY.replace("every: 30d", "every: 30d\n  max_age: 1s"),
    );
    std::thread::sleep(std::time::Duration::from_millis(1100));
    ws.run(&["plan"]).await.expect_code(0);
    ws.run(&["plan", "--detailed-exitcode"])
        .await
        .expect_code(2);

    // Bad input stays apart from "changes pending".
    ws.write_policy("broken.yaml", "version: 2\n");
    let run = ws
        .run(&["plan", "--detailed-exitcode"])
        .await
        .expect_code(3);
    assert!(
        run.stderr.contains("broken.yaml:1:10: E0101"),
        "{}",
        run.stderr
    );
    ws.run(&["plan"]).await.expect_code(2);
}

#[tokio::test]
async fn shell_completions_and_a_man_page() {
    let ws = Workspace::new("http://127.0.0.1:9", "t", None);
    for (shell, marker) in [
        ("bash", "complete -F _rotor"),
        ("zsh", "#compdef rotor"),
        ("fish", "complete -c rotor"),
    ] {
        let run = ws.run(&["completions", shell]).await.expect_code(0);
        assert!(
            run.stdout.contains(marker),
            "{shell}: {}",
            &run.stdout[..run.stdout.len().min(300)]
        );
        assert!(run.stdout.contains("detailed-exitcode"), "{shell}");
    }
    let run = ws.run(&["man"]).await.expect_code(0);
    assert!(run.stdout.contains(".TH rotor 1"), "{}", &run.stdout[..200]);
    assert!(run.stdout.contains("completions"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_online_reports_what_vault_and_github_would_refuse_at_the_line_that_asks() {
    use github_emulator::TokenSpec;
    let bao = crate::util::bao::Bao::start();
    bao.kv_put("secret", "ci/readable", serde_json::json!({"token": "t"}))
        .await;
    // A token that may read KV but write nothing.
    let token = bao
        .token_with_policy(
            "read-only",
            "path \"secret/data/*\" { capabilities = [\"read\"] }\npath \"secret/metadata/*\" { capabilities = [\"read\"] }\npath \"sys/capabilities-self\" { capabilities = [\"update\"] }\n",
        )
        .await;
    let mut spec = FleetSpec::generate(&["acme"], 2);
    spec.orgs[0].repos[0].environments = vec!["production".into()];
    spec.tokens = vec![TokenSpec {
        token: "one-repo-token".into(),
        orgs: vec![],
        repos: vec!["acme/svc-0001".into()],
    }];
    let (_emu, handle) = emu::start(spec).await;
    let ws = Workspace::new(
        &handle.url,
        "one-repo-token",
        Some((bao.addr.clone(), token)),
    );
    ws.write_policy(
        "a-stored.yaml",
        "version: 1\nname: stored\nsource:\n  generate:\n    length: 32\n    store:\n      vault_kv: { mount: secret, path: ci/stored }\nsecrets:\n  S: value\ntargets:\n  - repo: acme/svc-0001\n",
    );
    ws.write_policy(
        "b-readable.yaml",
        "version: 1\nname: readable\nsource:\n  vault_kv: { mount: secret, path: ci/readable }\nsecrets:\n  R: token\ntargets:\n  - repo: acme/svc-0001\n",
    );
    ws.write_policy(
        "c-targets.yaml",
        "version: 1\nname: targets\nsource:\n  generate: { length: 32 }\nsecrets:\n  T: value\ntargets:\n  - repo: acme/svc-0001\n  - repo: acme/svc-0002\n  - repo: acme/svc-0001\n    environment: staging\n",
    );
    // Offline, all of it is valid.
    ws.run(&["validate"]).await.expect_code(0);
    let run = ws.run(&["validate", "--online"]).await.expect_code(2);
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert!(
        lines.iter().any(|l| l.starts_with("")
            && l.contains("a-stored.yaml:4:3: E0801")
            && l.contains("writing it (secret/data/ci/stored)")),
        "the store the token cannot write, at the source:\n{}",
        run.stderr
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("c-targets.yaml:9:5: E0802") && l.contains("acme/svc-0002")),
        "the repository the credential cannot see, at its target:\n{}",
        run.stderr
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("c-targets.yaml:10:5: E0802") && l.contains("staging")),
        "the missing environment, at its target:\n{}",
        run.stderr
    );
    assert!(!run.stderr.contains("b-readable.yaml"), "{}", run.stderr);
    assert!(
        run.stderr.contains("problem(s) found online"),
        "{}",
        run.stderr
    );

    // Nothing was written anywhere.
    assert_eq!(bao.kv_version("secret", "ci/stored").await, None);
    ws.remove_policy("a-stored.yaml");
    ws.remove_policy("c-targets.yaml");
    let ok = ws.run(&["validate", "--online"]).await.expect_code(0);
    assert!(
        ok.stdout.contains("Vault and GitHub would accept it"),
        "{}",
        ok.stdout
    );
}

fn repo(name: &str) -> github_emulator::Scope {
    github_emulator::Scope::Repo {
        owner: "acme".into(),
        repo: name.into(),
        app: github_emulator::App::Actions,
    }
}

#[tokio::test]
async fn a_secret_rotor_did_not_write_is_a_conflict_left_alone_until_the_policy_takes_it_over() {
    let (emu, handle) = emu::start(FleetSpec::generate(&["acme"], 3)).await;
    // Another tool set DEPLOY_TOKEN in svc-0002 before rotor came.
    assert!(emu.insert_secret(&repo("svc-0002"), "DEPLOY_TOKEN", "theirs-0002"));
    let ws = Workspace::new(&handle.url, emu::DEFAULT_TOKEN, None);
    ws.write_policy("deploy.yaml", POLICY);

    let run = ws.run(&["plan"]).await.expect_code(0);
    assert!(
        run.stdout.contains("! acme/svc-0002  DEPLOY_TOKEN")
            && run
                .stdout
                .contains("conflict  exists, and rotor never wrote it"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("1 in conflict"), "{}", run.stdout);
    ws.run(&["plan", "--detailed-exitcode"])
        .await
        .expect_code(1);
    let md = ws
        .run(&["plan", "--output", "markdown"])
        .await
        .expect_code(0);
    assert!(
        md.stdout
            .contains("| acme/svc-0002 | `DEPLOY_TOKEN` | **conflict** |"),
        "{}",
        md.stdout
    );

    // apply writes the others, leaves svc-0002 alone and says why.
    let run = ws.run(&["apply"]).await.expect_code(1);
    let said = format!("{}{}", run.stdout, run.stderr);
    assert!(said.contains("acme/svc-0002"), "{said}");
    assert!(
        said.contains("conflict: exists, and rotor never wrote it"),
        "{said}"
    );
    assert!(said.contains("takeover: true"), "{said}");
    assert_eq!(
        emu.decrypted(&repo("svc-0002"), "DEPLOY_TOKEN").as_deref(),
        Some("theirs-0002")
    );
    let ours = emu
        .decrypted(&repo("svc-0001"), "DEPLOY_TOKEN")
        .expect("pushed");
    assert_eq!(
        emu.decrypted(&repo("svc-0003"), "DEPLOY_TOKEN").as_deref(),
        Some(ours.as_str())
    );
    // The next apply does not rotate the others again for it, and still leaves it alone.
    ws.run(&["apply"]).await.expect_code(1);
    assert_eq!(
        emu.decrypted(&repo("svc-0001"), "DEPLOY_TOKEN").as_deref(),
        Some(ours.as_str())
    );
    assert_eq!(
        emu.decrypted(&repo("svc-0002"), "DEPLOY_TOKEN").as_deref(),
        Some("theirs-0002")
    );

    // Someone changes svc-0001's secret after rotor wrote it: that is a conflict too.
    assert!(emu.insert_secret(&repo("svc-0001"), "DEPLOY_TOKEN", "theirs-0001"));
    let later = chrono::Utc::now() + chrono::Duration::minutes(5);
    assert!(emu.set_updated_at(&repo("svc-0001"), "DEPLOY_TOKEN", later));
    let run = ws.run(&["plan"]).await.expect_code(0);
    assert!(
        run.stdout.contains("! acme/svc-0001  DEPLOY_TOKEN")
            && run.stdout.contains("changed outside rotor at"),
        "{}",
        run.stdout
    );
    ws.run(&["apply"]).await.expect_code(1);
    assert_eq!(
        emu.decrypted(&repo("svc-0001"), "DEPLOY_TOKEN").as_deref(),
        Some("theirs-0001")
    );
    assert!(!run.stdout.contains(&ours), "never a value");

    // takeover: true adopts both; the value is stored nowhere, so every target gets a new one.
    ws.write_policy("deploy.yaml", &format!("{POLICY}takeover: true\n"));
    let run = ws.run(&["plan"]).await.expect_code(0);
    assert!(
        run.stdout.contains("3 to rotate") && run.stdout.contains("0 in conflict"),
        "{}",
        run.stdout
    );
    ws.run(&["apply"]).await.expect_code(0);
    let values: Vec<String> = ["svc-0001", "svc-0002", "svc-0003"]
        .iter()
        .map(|r| emu.decrypted(&repo(r), "DEPLOY_TOKEN").expect("a value"))
        .collect();
    assert!(
        values.iter().all(|v| *v == values[0]),
        "one value everywhere"
    );
    assert!(values[0] != ours && !values[0].starts_with("theirs"));
    // Taken over, the secrets are rotor's: nothing more to do.
    ws.write_policy("deploy.yaml", POLICY);
    ws.run(&["plan", "--detailed-exitcode"])
        .await
        .expect_code(0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_path_sync_pushes_every_key_names_each_by_template_and_picks_up_a_new_key() {
    use serde_json::json;
    let bao = crate::util::bao::Bao::start();
    let (emu, handle) = emu::start(FleetSpec::generate(&["acme"], 2)).await;
    let ws = Workspace::new(
        &handle.url,
        emu::DEFAULT_TOKEN,
        Some((bao.addr.clone(), bao.token.clone())),
    );
    bao.kv_put(
        "secret",
        "ci/app",
        json!({
            "db_password": "canary-db-7a1f",
            "api-key": "canary-api-93c2",
            "legacy": "canary-legacy-55e0",
            "9lives": "canary-nine-0b77",
        }),
    )
    .await;
    ws.write_policy(
        "app.yaml",
        "version: 1\nname: app\nsource:\n  vault_kv: { mount: secret, path: ci/app }\nsecrets:\n  from_keys: \"*, !legacy\"\n  name: \"{{ name | upper }}_{{ key | upper }}\"\ntargets:\n  - org: acme\n",
    );
    ws.run(&["validate"]).await.expect_code(0);

    let run = ws.run(&["plan"]).await.expect_code(0);
    for name in ["APP_DB_PASSWORD", "APP_9LIVES"] {
        assert!(run.stdout.contains(name), "{name}: {}", run.stdout);
    }
    assert!(!run.stdout.contains("LEGACY"), "excluded: {}", run.stdout);
    // A key whose name GitHub would refuse is reported by key, and the others go on.
    assert!(
        run.stdout
            .contains("key \"api-key\" of secret/ci/app is not synced")
            && run
                .stdout
                .contains("names may contain only A-Z, a-z, 0-9 and _"),
        "{}",
        run.stdout
    );
    for value in ["canary-db-7a1f", "canary-api-93c2", "canary-legacy-55e0"] {
        assert!(!run.stdout.contains(value) && !run.stderr.contains(value));
    }

    ws.run(&["apply"]).await.expect_code(0);
    for r in ["svc-0001", "svc-0002"] {
        let scope = repo(r);
        assert_eq!(
            emu.decrypted(&scope, "APP_DB_PASSWORD").as_deref(),
            Some("canary-db-7a1f")
        );
        assert_eq!(
            emu.decrypted(&scope, "APP_9LIVES").as_deref(),
            Some("canary-nine-0b77")
        );
        assert_eq!(emu.decrypted(&scope, "APP_LEGACY"), None);
        assert_eq!(emu.decrypted(&scope, "APP_API_KEY"), None);
    }

    // A key added to the path later is pushed on the next pass.
    bao.kv_put(
        "secret",
        "ci/app",
        json!({
            "db_password": "canary-db-7a1f",
            "api-key": "canary-api-93c2",
            "legacy": "canary-legacy-55e0",
            "9lives": "canary-nine-0b77",
            "sentry_dsn": "canary-dsn-c4d1",
        }),
    )
    .await;
    let run = ws.run(&["apply"]).await.expect_code(0);
    // Version 2: the two keys it had again, and the new one, in both repositories.
    assert!(run.stdout.contains("6 pushed"), "{}", run.stdout);
    assert_eq!(
        emu.decrypted(&repo("svc-0002"), "APP_SENTRY_DSN")
            .as_deref(),
        Some("canary-dsn-c4d1")
    );
    ws.run(&["plan", "--detailed-exitcode"])
        .await
        .expect_code(0);
}
