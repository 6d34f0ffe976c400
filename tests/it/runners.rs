//! Self-hosted runner registration tokens into Vault: minted by GitHub (the emulator),
//! written to KV v2 with check-and-set and their expiry, refreshed on a cadence shorter
//! than their hour, and never shown anywhere.

use std::time::Duration;

use github_emulator::{FleetSpec, TokenSpec};
use reqwest::Method;

use crate::util::bao::Bao;
use crate::util::daemon::value;
use crate::util::emu;
use crate::util::rotor::Workspace;

fn runner_policy(every: &str) -> String {
    format!(
        "version: 1\nname: runners-acme\nowner: platform@example.com\nsource:\n  github_runner_token: {{ org: acme }}\ntargets:\n  - vault_kv: {{ mount: secret, path: ci/runners/acme, key: token }}\nschedule:\n  every: {every}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runner_token_is_minted_into_vault_with_its_expiry_and_never_shown() {
    let bao = Bao::start();
    let mut spec = FleetSpec::generate(&["acme"], 1);
    spec.tokens = vec![
        TokenSpec::all(emu::DEFAULT_TOKEN),
        TokenSpec {
            token: "repo-only-token".into(),
            orgs: vec![],
            repos: vec!["acme/svc-0001".into()],
        },
    ];
    let (emu, handle) = emu::start(spec).await;
    let mut ws = Workspace::new(
        &handle.url,
        emu::DEFAULT_TOKEN,
        Some((bao.addr.clone(), bao.token.clone())),
    );
    ws.extra_env.push(("RUST_LOG".into(), "trace".into()));
    ws.write_policy("runners.yaml", &runner_policy("50m"));

    let plan = ws.run(&["plan"]).await.expect_code(0);
    assert!(
        plan.stdout.contains("github runner token for org acme"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout
            .contains("> vault kv secret/ci/runners/acme (key token)"),
        "{}",
        plan.stdout
    );
    let apply = ws.run(&["apply"]).await.expect_code(0);
    let minted = emu.runner_tokens();
    assert_eq!(minted.len(), 1);
    let token = minted[0].token.clone();
    let (version, data) = bao.kv_get("secret", "ci/runners/acme").await;
    assert_eq!(version, 1);
    assert_eq!(data["token"], token.as_str(), "the token GitHub made");
    let expires =
        chrono::DateTime::parse_from_rfc3339(data["expires_at"].as_str().unwrap()).unwrap();
    assert_eq!(expires.timestamp(), minted[0].expires_at.timestamp());
    // Not due again: nothing minted, nothing written.
    let again = ws.run(&["apply"]).await.expect_code(0);
    assert_eq!(emu.runner_tokens().len(), 1);
    assert_eq!(bao.kv_version("secret", "ci/runners/acme").await, Some(1));
    let plan = ws.run(&["plan"]).await.expect_code(0);
    assert!(
        plan.stdout.contains("current value expires: "),
        "{}",
        plan.stdout
    );
    let status = ws.run(&["status", "--output", "json"]).await.expect_code(0);

    // Never in any output or state file, even at TRACE.
    let ledger = std::fs::read_to_string(ws.state().join("ledger.jsonl")).unwrap();
    let audit = std::fs::read_to_string(ws.state().join("audit.jsonl")).unwrap();
    for (what, text) in [
        ("apply stdout", &apply.stdout),
        ("apply stderr", &apply.stderr),
        ("second apply", &again.stderr),
        ("plan", &plan.stdout),
        ("status", &status.stdout),
        ("ledger", &ledger),
        ("audit", &audit),
    ] {
        assert!(!text.contains(&token), "the token is in the {what}");
    }
    assert!(
        ledger.contains("\"expires_at\""),
        "the ledger keeps the expiry: {ledger}"
    );

    // A credential without admin rights on the organization: GitHub's 403, nothing written.
    ws.token = "repo-only-token".into();
    let refused = ws.run(&["rotate", "runners-acme"]).await.expect_code(1);
    assert!(
        refused.stdout.contains("Resource not accessible")
            || refused.stderr.contains("Resource not accessible"),
        "{}\n{}",
        refused.stdout,
        refused.stderr
    );
    assert_eq!(bao.kv_version("secret", "ci/runners/acme").await, Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_refreshes_the_token_before_it_expires() {
    let bao = Bao::start();
    let (emu, handle) = emu::start(FleetSpec::generate(&["acme"], 1)).await;
    let ws = Workspace::new(
        &handle.url,
        emu::DEFAULT_TOKEN,
        Some((bao.addr.clone(), bao.token.clone())),
    );
    ws.write_policy("runners.yaml", &runner_policy("2s"));
    let mut d = ws.spawn_daemon(&[]);
    d.wait_for("three tokens", Duration::from_secs(15), |s| {
        value(
            s,
            "rotor_rotations_total",
            &[("policy", "runners-acme"), ("result", "success")],
        ) >= 3.0
    })
    .await;
    let minted = emu.runner_tokens();
    assert!(minted.len() >= 3);
    let (version, data) = bao.kv_get("secret", "ci/runners/acme").await;
    assert!(version >= 3, "a new KV version each time: {version}");
    assert!(
        minted.iter().any(|t| data["token"] == t.token.as_str()),
        "Vault holds one of the tokens GitHub made"
    );
    let (status, body) = bao
        .api(Method::GET, "secret/metadata/ci/runners/acme", None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(!d.logs().contains(&minted[0].token));
    d.signal(libc::SIGTERM);
    let _ = d.wait_exit(Duration::from_secs(15)).await;
}
