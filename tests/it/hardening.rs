//! Regressions from the hardening review (issue 11), each named after what broke: the
//! credential headers on redirects, crafted rate-limit answers, state file permissions,
//! what a policy may read, bad public keys, oversized answers.

use rotor::github::{Client, GitHubConfig};
use rotor::model::{App, SecretScope};
use rotor::policy::{KvRef, SourceSpec};
use rotor::source::{Sources, VaultConfig};
use std::time::Duration;

use github_emulator::{App as EmuApp, FleetSpec, Scope as SecretScopeEmu};
use secrecy::SecretString;
use serde_json::Value;

use crate::util::daemon::value;
use crate::util::emu;
use crate::util::fake::{Answer, Fake};
use crate::util::rotor::Workspace;

fn vault_at(addr: &str) -> Sources {
    Sources::new(Some(VaultConfig {
        addr: addr.to_string(),
        token: SecretString::from("hvs.redirect-canary"),
        namespace: None,
        cacert: None,
        login: None,
        tls: Default::default(),
    }))
    .expect("client")
}

/// A second server that records whatever reaches it.
async fn elsewhere() -> Fake {
    Fake::start(|_| Answer::new(200, r#"{"data":{}}"#)).await
}

#[tokio::test]
async fn the_vault_token_followed_a_redirect_to_another_port() {
    let other = elsewhere().await;
    let target = other.url.clone();
    let vault = Fake::start(move |seen| {
        Answer::new(307, "").header("location", &format!("{target}{}", seen.path))
    })
    .await;
    let sources = vault_at(&vault.url);

    let health = sources
        .health()
        .await
        .expect_err("a redirect elsewhere is refused");
    let kv = SourceSpec::VaultKv(KvRef {
        mount: "secret".into(),
        path: "ci/npm".into(),
        key: None,
    });
    // KV metadata goes through vaultrs, data reads through rotor's own requests: both.
    let version = sources.current_version(&kv).await.expect_err("refused");
    let read = sources.read(&kv, 1).await.expect_err("refused");

    assert!(
        health.to_string().contains("another origin"),
        "the error says why: {health}"
    );
    for e in [&version, &read] {
        assert!(!e.to_string().contains("redirect-canary"), "{e}");
    }
    assert!(vault.seen().len() >= 3, "{:?}", vault.seen());
    for seen in vault.seen() {
        assert_eq!(seen.header("x-vault-token"), Some("hvs.redirect-canary"));
    }
    assert!(
        other.seen().is_empty(),
        "nothing reached the other origin: {:?}",
        other.seen()
    );
}

#[tokio::test]
async fn a_vault_redirect_on_the_same_origin_is_still_followed() {
    let vault = Fake::start(|seen| match seen.path.as_str() {
        "/v1/sys/health" => Answer::new(307, "").header("location", "/v1/sys/health/active"),
        "/v1/sys/health/active" => Answer::new(200, r#"{"initialized":true,"sealed":false}"#),
        _ => Answer::new(
            200,
            r#"{"data":{"id":"x","policies":["root"],"ttl":0,"renewable":false}}"#,
        ),
    })
    .await;
    vault_at(&vault.url)
        .health()
        .await
        .expect("a same-origin redirect is followed");
    let paths: Vec<String> = vault.seen().into_iter().map(|s| s.path).collect();
    assert!(
        paths.contains(&"/v1/sys/health/active".to_string()),
        "{paths:?}"
    );
}

#[tokio::test]
async fn the_github_token_followed_a_redirect_to_another_port() {
    let other = elsewhere().await;
    let target = other.url.clone();
    let github = Fake::start(move |seen| {
        Answer::new(307, r#"{"message":"Temporary Redirect"}"#)
            .header("location", &format!("{target}{}", seen.path))
    })
    .await;
    let client = Client::new(GitHubConfig {
        api_url: github.url.clone(),
        token: Some("ghp_redirectcanary".to_string().into()),
        ..GitHubConfig::default()
    })
    .expect("client");
    let scope = SecretScope::Repo {
        owner: "acme".into(),
        repo: "api".into(),
        app: App::Actions,
    };
    let err = client.public_key(&scope).await.expect_err("refused");
    assert!(!err.to_string().contains("redirectcanary"), "{err}");
    assert!(!github.seen().is_empty());
    assert!(
        other.seen().is_empty(),
        "nothing reached the other origin: {:?}",
        other.seen()
    );
}

/// A policy pushing a generated value to acme/svc-0001, every hour.
fn generated_policy(name: &str) -> String {
    format!(
        "version: 1\nname: {name}\nowner: security@example.com\nsource:\n  generate: {{ length: 32, charset: alphanumeric }}\nsecrets:\n  DEPLOY_TOKEN: value\ntargets:\n  - repo: acme/svc-0001\nschedule:\n  every: 1h\n"
    )
}

#[tokio::test]
async fn a_crafted_rate_limit_reset_made_rotor_plan_exit_101() {
    // 403, remaining 0, a reset in the year 262000 and a Date in 1970: chrono's `+`
    // overflowed and rotor panicked.
    let github = Fake::start(|_| {
        Answer::new(403, r#"{"message":"API rate limit exceeded"}"#)
            .header("x-ratelimit-remaining", "0")
            .header("x-ratelimit-limit", "5000")
            .header("x-ratelimit-reset", "8210266876799")
            .header("date", "Thu, 01 Jan 1970 00:00:00 GMT")
    })
    .await;
    let ws = Workspace::new(&github.url, "ghp_x", None);
    // A glob: the plan must list the organization's repositories.
    ws.write_policy(
        "p.yaml",
        &generated_policy("deploy").replace(
            "- repo: acme/svc-0001",
            "- org: acme\n    repos: [\"svc-*\"]",
        ),
    );
    let run = ws.run(&["plan"]).await;
    assert_ne!(run.code, 101, "rotor panicked:\n{}", run.stderr);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    assert!(
        run.stdout.contains("rate limit") || run.stderr.contains("rate limit"),
        "the failure is reported as GitHub's:\n{}\n{}",
        run.stdout,
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_pass_kept_its_slot_and_the_daemon_never_retried() {
    let (hook, received) = crate::util::daemon::alert_sink().await;
    let (emu, handle) = emu::start(FleetSpec::generate(&["acme"], 1)).await;
    let mut ws = Workspace::new(&handle.url, emu::DEFAULT_TOKEN, None);
    ws.extra_env
        .push(("ROTOR_TEST_PANIC_ONCE".into(), "deploy".into()));
    ws.write_policy("p.yaml", &generated_policy("deploy"));
    // The webhook URL from a file: it stays out of `ps`.
    let hook_file = ws.path().join("alert-webhook");
    std::fs::write(&hook_file, format!("{hook}\n")).unwrap();
    let hook_file = hook_file.display().to_string();
    let mut d = ws.spawn_daemon(&["--retry-backoff", "2s", "--alert-webhook-file", &hook_file]);
    let s = d
        .wait_for("the panicked pass counted", Duration::from_secs(10), |s| {
            value(
                s,
                "rotor_passes_total",
                &[("policy", "deploy"), ("result", "panicked")],
            ) >= 1.0
        })
        .await;
    assert_eq!(
        value(&s, "rotor_pass_in_progress", &[("policy", "deploy")]),
        0.0
    );
    let (code, body) = d.get("/readyz").await.expect("readyz answers");
    let ready: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(code, 503, "{body}");
    assert_eq!(ready["checks"]["passes"]["ok"], false, "{body}");
    assert!(d.is_running(), "the daemon lives on");

    // Retried with backoff: the next pass converges and readiness comes back.
    d.wait_for(
        "a converged pass after the panic",
        Duration::from_secs(15),
        |s| {
            value(
                s,
                "rotor_passes_total",
                &[("policy", "deploy"), ("result", "converged")],
            ) >= 1.0
        },
    )
    .await;
    let scope = SecretScopeEmu::Repo {
        owner: "acme".into(),
        repo: "svc-0001".into(),
        app: EmuApp::Actions,
    };
    assert!(
        emu.decrypted(&scope, "DEPLOY_TOKEN").is_some(),
        "the secret arrived"
    );
    let (code, body) = d.get("/readyz").await.expect("readyz answers");
    assert_eq!(code, 200, "{body}");
    let alerts = received.lock().unwrap().clone();
    assert!(
        alerts
            .iter()
            .any(|a| a["policy"] == "deploy"
                && a["message"].as_str().unwrap_or("").contains("panicked")),
        "the panic was alerted: {alerts:?}"
    );
    d.signal(libc::SIGTERM);
    assert_eq!(d.wait_exit(Duration::from_secs(15)).await.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_readyz_probes_made_eight_upstream_checks_and_echoed_vault_text() {
    // Vault answers every request 500 with a text the probe must not repeat.
    let vault = Fake::start(|_| Answer::new(500, r#"{"errors":["internal-detail-canary"]}"#)).await;
    let (emu, handle) = emu::start(FleetSpec::generate(&["acme"], 1)).await;
    let ws = Workspace::new(
        &handle.url,
        emu::DEFAULT_TOKEN,
        Some((vault.url.clone(), "hvs.t".into())),
    );
    ws.write_policy(
        "kv.yaml",
        "version: 1\nname: kv\nsource:\n  vault_kv: { mount: secret, path: ci/npm }\nsecrets:\n  NPM_TOKEN: token\ntargets:\n  - repo: acme/svc-0001\nschedule:\n  every: 1h\n",
    );
    let mut d = ws.spawn_daemon(&["--retry-backoff", "1h"]);
    d.wait_for("the daemon answers", Duration::from_secs(10), |_| true)
        .await;
    // Let any first pass's requests finish, and the cached answer expire.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let before_github = rate_limit_calls(&emu);
    let before_vault = health_calls(&vault);
    let probes = (0..50).map(|_| d.get("/readyz"));
    let answers = futures::future::join_all(probes).await;
    for a in &answers {
        let (code, body) = a.as_ref().expect("readyz answers");
        assert_eq!(*code, 503, "{body}");
        assert!(!body.contains("internal-detail-canary"), "{body}");
    }
    assert_eq!(
        rate_limit_calls(&emu) - before_github,
        1,
        "GitHub checked once"
    );
    assert_eq!(health_calls(&vault) - before_vault, 1, "Vault checked once");
    d.signal(libc::SIGTERM);
    let _ = d.wait_exit(Duration::from_secs(15)).await;
}

fn rate_limit_calls(emu: &github_emulator::Emulator) -> usize {
    emu.requests()
        .iter()
        .filter(|r| r.path == "/rate_limit")
        .count()
}

fn health_calls(vault: &Fake) -> usize {
    vault
        .seen()
        .iter()
        .filter(|s| s.path.starts_with("/v1/sys/health"))
        .count()
}

fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// `rotor ARGS` under umask 022 (what most shells have).
async fn run_with_umask_022(ws: &Workspace, args: &[&str]) -> crate::util::rotor::Run {
    let mut cmd = ws.command(args);
    // SAFETY: umask(2) is async-signal-safe and touches only the child's own state.
    unsafe {
        cmd.pre_exec(|| {
            libc::umask(0o022);
            Ok(())
        });
    }
    let out = cmd.output().await.expect("run rotor");
    crate::util::rotor::Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[tokio::test]
async fn state_files_were_readable_by_everyone_under_umask_022() {
    let (_emu, handle) = emu::start(FleetSpec::generate(&["acme"], 2)).await;
    let ws = Workspace::new(&handle.url, emu::DEFAULT_TOKEN, None);
    ws.write_policy(
        "p.yaml",
        &generated_policy("deploy").replace(
            "- repo: acme/svc-0001",
            "- org: acme\n    repos: [\"svc-*\"]",
        ),
    );
    run_with_umask_022(&ws, &["apply"]).await.expect_code(0);
    let state = ws.state();
    assert_eq!(mode(&state), 0o700, "the state folder");
    for file in ["ledger.jsonl", "audit.jsonl", "listings.json", "lock"] {
        assert_eq!(mode(&state.join(file)), 0o600, "{file}");
    }

    // A folder and files left loose by an older rotor are tightened on the next run.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o755)).unwrap();
    for file in ["ledger.jsonl", "audit.jsonl"] {
        std::fs::set_permissions(state.join(file), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    run_with_umask_022(&ws, &["apply"]).await.expect_code(0);
    assert_eq!(mode(&state), 0o700);
    for file in ["ledger.jsonl", "audit.jsonl"] {
        assert_eq!(mode(&state.join(file)), 0o600, "{file}");
    }
}

#[tokio::test]
async fn a_symlink_planted_in_the_state_folder_was_followed() {
    let (_emu, handle) = emu::start(FleetSpec::generate(&["acme"], 1)).await;
    let ws = Workspace::new(&handle.url, emu::DEFAULT_TOKEN, None);
    ws.write_policy("p.yaml", &generated_policy("deploy"));
    std::fs::create_dir_all(ws.state()).unwrap();
    let victim = ws.path().join("someone-elses-file");
    std::fs::write(&victim, "precious\n").unwrap();
    std::os::unix::fs::symlink(&victim, ws.state().join("audit.jsonl")).unwrap();
    let run = ws.run(&["apply"]).await;
    assert_ne!(run.code, 0, "refused:\n{}", run.stdout);
    assert!(run.stderr.contains("symbolic link"), "{}", run.stderr);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
}

#[tokio::test]
async fn a_policy_could_make_rotor_push_its_own_vault_token() {
    // `auth/token/lookup-self` answers with the token that asked, in data.id: rotor would
    // have read its own token as the "credential" and pushed it to GitHub.
    let bao = crate::util::bao::Bao::start();
    let (emu, handle) = emu::start(FleetSpec::generate(&["acme"], 1)).await;
    let ws = Workspace::new(
        &handle.url,
        emu::DEFAULT_TOKEN,
        Some((bao.addr.clone(), bao.token.clone())),
    );
    ws.write_policy(
        "steal.yaml",
        "version: 1\nname: steal\nsource:\n  vault_read:\n    path: auth/token/lookup-self\nsecrets:\n  STOLEN: id\ntargets:\n  - repo: acme/svc-0001\n",
    );
    for cmd in ["validate", "apply"] {
        let run = ws.run(&[cmd]).await.expect_code(2);
        assert!(
            run.stderr.contains("steal.yaml:5:11: E0206"),
            "{cmd}: refused at file:line:col with a stable code:\n{}",
            run.stderr
        );
    }
    let scope = SecretScopeEmu::Repo {
        owner: "acme".into(),
        repo: "svc-0001".into(),
        app: EmuApp::Actions,
    };
    assert!(
        emu.decrypted(&scope, "STOLEN").is_none(),
        "nothing was pushed"
    );
    assert!(emu.requests().iter().all(|r| !r.path.contains("STOLEN")));
}

#[tokio::test]
async fn the_operators_allow_list_bounds_what_policies_read_and_write() {
    let ws = Workspace::new("http://127.0.0.1:9", "t", None);
    ws.write_policy(
        "ci.yaml",
        "version: 1\nname: ci\nsource:\n  generate:\n    length: 32\n    charset: alphanumeric\n    store:\n      vault_kv: { mount: secret, path: ci/deploy }\nsecrets:\n  DEPLOY: value\ntargets:\n  - repo: acme/api\n",
    );
    ws.write_policy(
        "prod.yaml",
        "version: 1\nname: prod\nsource:\n  vault_kv: { mount: secret, path: prod/db }\nsecrets:\n  DB: password\ntargets:\n  - repo: acme/api\n",
    );
    // No allow-list: both are fine.
    ws.run(&["validate"]).await.expect_code(0);
    let run = ws
        .run(&[
            "validate",
            "--allowed-sources",
            "secret/ci/*,database/creds/*",
        ])
        .await
        .expect_code(2);
    assert!(
        run.stderr.contains("prod.yaml:4:13: E0207"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("ci.yaml"), "{}", run.stderr);
    // The same from the environment; a policy cannot change it.
    let mut ws = ws;
    ws.extra_env
        .push(("ROTOR_ALLOWED_SOURCES".into(), "secret/**".into()));
    ws.run(&["validate"]).await.expect_code(0);
}

#[tokio::test]
async fn a_bad_public_key_was_cached_and_the_source_rotated_by_every_apply() {
    // GitHub (here a fake) answers with a 3-byte key whose id holds ANSI escapes.
    let github = Fake::start(|seen| {
        if seen.path.ends_with("/public-key") {
            Answer::new(
                200,
                r#"{"key_id":"\u001b[31m568250167242549743","key":"AQID"}"#,
            )
        } else if seen.path.contains("/actions/secrets") && seen.method == "GET" {
            Answer::new(200, r#"{"total_count":0,"secrets":[]}"#)
        } else {
            Answer::new(404, r#"{"message":"Not Found"}"#)
        }
    })
    .await;
    let bao = crate::util::bao::Bao::start();
    let ws = Workspace::new(
        &github.url,
        "ghp_x",
        Some((bao.addr.clone(), bao.token.clone())),
    );
    ws.write_policy(
        "deploy.yaml",
        "version: 1\nname: deploy\nsource:\n  generate:\n    length: 32\n    charset: alphanumeric\n    store:\n      vault_kv: { mount: secret, path: ci/deploy }\nsecrets:\n  DEPLOY: value\ntargets:\n  - repo: acme/api\n",
    );
    for _ in 0..3 {
        let run = ws.run(&["apply"]).await;
        assert_ne!(run.code, 0, "{}", run.stdout);
        assert!(
            format!("{}{}", run.stdout, run.stderr).contains("unusable public key"),
            "{}\n{}",
            run.stdout,
            run.stderr
        );
        assert!(
            !run.stdout.contains('\u{1b}') && !run.stderr.contains('\u{1b}'),
            "{:?}\n{:?}",
            run.stdout,
            run.stderr
        );
    }
    let (status, _) = bao
        .api(reqwest::Method::GET, "secret/metadata/ci/deploy", None)
        .await;
    assert_eq!(status, 404, "the source never rotated");
    let ledger = std::fs::read_to_string(ws.state().join("ledger.jsonl")).unwrap_or_default();
    assert!(
        !ledger.contains("\"type\":\"key\""),
        "no key was cached: {ledger}"
    );
    assert_eq!(
        github
            .seen()
            .iter()
            .filter(|s| s.path.ends_with("/public-key"))
            .count(),
        3,
        "fetched again by each apply"
    );
    assert!(github.seen().iter().all(|s| s.method != "PUT"));
}

#[tokio::test]
async fn a_bad_key_cached_by_an_older_rotor_was_reused_for_good() {
    use rotor::ledger::{Entry, KeyRecord, Ledger};
    let (emu, handle) = emu::start(FleetSpec::generate(&["acme"], 1)).await;
    let ws = Workspace::new(&handle.url, emu::DEFAULT_TOKEN, None);
    ws.write_policy("p.yaml", &generated_policy("deploy"));
    let scope = SecretScope::Repo {
        owner: "acme".into(),
        repo: "svc-0001".into(),
        app: App::Actions,
    };
    {
        let mut ledger = Ledger::open(&ws.state()).expect("ledger");
        ledger
            .append(Entry::Key(KeyRecord {
                scope: scope.clone(),
                key_id: "1".into(),
                key: "AQID".into(),
                at: chrono::Utc::now(),
            }))
            .expect("append");
    }
    ws.run(&["apply"]).await.expect_code(0);
    let emu_scope = SecretScopeEmu::Repo {
        owner: "acme".into(),
        repo: "svc-0001".into(),
        app: EmuApp::Actions,
    };
    assert!(emu.decrypted(&emu_scope, "DEPLOY_TOKEN").is_some());
    let state = Ledger::read_state(&ws.state()).expect("ledger");
    let key = state.key(&scope).expect("a key is recorded");
    assert_ne!(key.key, "AQID", "the bad key was replaced by GitHub's");
}

#[tokio::test]
async fn answers_of_any_size_were_read_whole() {
    // GitHub: a public key answer of 10 MiB and one byte.
    let huge = format!(
        r#"{{"key_id":"1","key":"{}"}}"#,
        "A".repeat(10 * 1024 * 1024)
    );
    let github = Fake::start(move |_| Answer::new(200, &huge)).await;
    let client = Client::new(GitHubConfig {
        api_url: github.url.clone(),
        token: Some("ghp_x".to_string().into()),
        ..GitHubConfig::default()
    })
    .expect("client");
    let scope = SecretScope::Repo {
        owner: "acme".into(),
        repo: "api".into(),
        app: App::Actions,
    };
    let err = client.public_key(&scope).await.expect_err("refused");
    assert!(
        err.to_string().contains("larger than 10485760 bytes"),
        "{err}"
    );

    // Vault: a KV read of more than 1 MiB.
    let big = format!(
        r#"{{"data":{{"data":{{"value":"{}"}},"metadata":{{"version":1}}}}}}"#,
        "x".repeat(1024 * 1024)
    );
    let vault = Fake::start(move |_| Answer::new(200, &big)).await;
    let kv = SourceSpec::VaultKv(KvRef {
        mount: "secret".into(),
        path: "ci/npm".into(),
        key: None,
    });
    let err = vault_at(&vault.url)
        .read(&kv, 1)
        .await
        .expect_err("refused");
    assert!(
        err.to_string().contains("larger than 1048576 bytes"),
        "{err}"
    );
}

#[tokio::test]
async fn an_oversized_policy_file_was_read_whole() {
    let ws = Workspace::new("http://127.0.0.1:9", "t", None);
    let mut text = generated_policy("deploy");
    text.push_str(&format!("# {}\n", "x".repeat(1024 * 1024)));
    ws.write_policy("big.yaml", &text);
    let run = ws.run(&["validate"]).await.expect_code(2);
    assert!(run.stderr.contains("big.yaml"), "{}", run.stderr);
    assert!(
        run.stderr.contains("larger than 1048576 bytes"),
        "{}",
        run.stderr
    );
}

#[tokio::test]
async fn a_plaintext_vault_address_and_skip_verify_went_unremarked() {
    let (_emu, handle) = emu::start(FleetSpec::generate(&["acme"], 1)).await;
    let mut ws = Workspace::new(
        &handle.url,
        emu::DEFAULT_TOKEN,
        Some(("http://vault.invalid:8200".into(), "hvs.t".into())),
    );
    ws.extra_env
        .push(("VAULT_SKIP_VERIFY".into(), "true".into()));
    ws.write_policy("p.yaml", &generated_policy("deploy"));
    let run = ws.run(&["plan"]).await;
    assert!(
        run.stderr.contains("cross the network unencrypted"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("VAULT_SKIP_VERIFY is set"),
        "{}",
        run.stderr
    );
}

#[tokio::test]
async fn a_rebound_host_name_could_read_the_emulator() {
    let emu = github_emulator::Emulator::new(FleetSpec::generate(&["acme"], 1))
        .expose_values(true)
        .allow_host("emulator");
    let handle = emu
        .serve("127.0.0.1:0".parse().expect("loopback"))
        .await
        .expect("serve");
    let http = reqwest::Client::new();
    let port = handle.addr.port();
    let status = |host: String, path: &'static str| {
        let http = http.clone();
        let url = format!("{}{path}", handle.url);
        async move {
            http.get(url)
                .header("host", host)
                .header("user-agent", "test")
                .header("authorization", format!("Bearer {}", emu::DEFAULT_TOKEN))
                .send()
                .await
                .expect("an answer")
                .status()
                .as_u16()
        }
    };
    // A page at evil.example whose name now resolves to 127.0.0.1.
    assert_eq!(
        status(format!("evil.example:{port}"), "/_emulator/secrets").await,
        421
    );
    assert_eq!(
        status(format!("evil.example:{port}"), "/orgs/acme/repos").await,
        421
    );
    assert_eq!(
        status("localhost.evil.example".into(), "/orgs/acme/repos").await,
        421
    );
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("[::1]:{port}"),
        format!("emulator:{port}"),
    ] {
        assert_eq!(
            status(host.clone(), "/orgs/acme/repos").await,
            200,
            "{host}"
        );
    }
}

/// Certificates issued by a real PKI engine: a CA, a server certificate for 127.0.0.1 and
/// a client certificate, written as PEM files into `dir`.
async fn issue_certs(dir: &std::path::Path) {
    use reqwest::Method;
    use serde_json::json;
    let pki = crate::util::bao::Bao::start();
    let ok = |what: &str, (status, body): (u16, Value)| {
        assert!(status < 300, "{what}: {status} {body}");
        body
    };
    ok(
        "mount pki",
        pki.api(
            Method::POST,
            "sys/mounts/pki",
            Some(json!({"type": "pki", "config": {"max_lease_ttl": "48h"}})),
        )
        .await,
    );
    let ca = ok(
        "root",
        pki.api(
            Method::POST,
            "pki/root/generate/internal",
            Some(json!({"common_name": "rotor-test-ca", "ttl": "24h"})),
        )
        .await,
    );
    ok(
        "role",
        pki.api(
            Method::POST,
            "pki/roles/any",
            Some(json!({"allow_any_name": true, "allow_ip_sans": true, "max_ttl": "24h"})),
        )
        .await,
    );
    let server = ok(
        "server cert",
        pki.api(
            Method::POST,
            "pki/issue/any",
            Some(json!({"common_name": "localhost", "ip_sans": "127.0.0.1", "ttl": "2h"})),
        )
        .await,
    );
    let client = ok(
        "client cert",
        pki.api(
            Method::POST,
            "pki/issue/any",
            Some(json!({"common_name": "rotor-client", "ttl": "2h"})),
        )
        .await,
    );
    let text = |v: &Value, k: &str| v["data"][k].as_str().expect(k).to_string();
    std::fs::write(dir.join("ca.pem"), text(&ca, "certificate")).unwrap();
    std::fs::create_dir_all(dir.join("cas")).unwrap();
    std::fs::write(dir.join("cas/ca.pem"), text(&ca, "certificate")).unwrap();
    std::fs::write(dir.join("server.pem"), text(&server, "certificate")).unwrap();
    std::fs::write(dir.join("server.key"), text(&server, "private_key")).unwrap();
    std::fs::write(dir.join("client.pem"), text(&client, "certificate")).unwrap();
    std::fs::write(dir.join("client.key"), text(&client, "private_key")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        dir.join("client.key"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vault_behind_mutual_tls_could_not_be_reached() {
    let certs = tempfile::tempdir().unwrap();
    let dir = certs.path();
    issue_certs(dir).await;
    let port = crate::util::daemon::free_port();
    let vault = crate::util::bao::Bao::start_with_config(&format!(
        "listener \"tcp\" {{\n  address = \"127.0.0.1:{port}\"\n  cluster_address = \"127.0.0.1:0\"\n  tls_cert_file = \"{d}/server.pem\"\n  tls_key_file = \"{d}/server.key\"\n  tls_client_ca_file = \"{d}/ca.pem\"\n  tls_require_and_verify_client_cert = true\n}}\n",
        d = dir.display()
    ));
    let addr = format!("https://127.0.0.1:{port}");
    let config = |vars: &[(&str, String)]| {
        let mut all: Vec<(&str, String)> = vec![
            ("VAULT_ADDR", addr.clone()),
            ("VAULT_TOKEN", vault.token.clone()),
        ];
        all.extend(vars.iter().cloned());
        VaultConfig::from_lookup(move |name| {
            all.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone())
        })
        .expect("complete settings")
    };
    let path = |f: &str| dir.join(f).display().to_string();
    // The CA file and the client certificate: Vault answers, unsealed, the token accepted.
    let mtls = config(&[
        ("VAULT_CACERT", path("ca.pem")),
        ("VAULT_CLIENT_CERT", path("client.pem")),
        ("VAULT_CLIENT_KEY", path("client.key")),
    ]);
    Sources::new(Some(mtls))
        .unwrap()
        .health()
        .await
        .expect("mutual TLS works");
    // A folder of CA files instead of one file.
    let capath = config(&[
        ("VAULT_CAPATH", path("cas")),
        ("VAULT_CLIENT_CERT", path("client.pem")),
        ("VAULT_CLIENT_KEY", path("client.key")),
    ]);
    Sources::new(Some(capath))
        .unwrap()
        .health()
        .await
        .expect("VAULT_CAPATH works");
    // Without the client certificate the TLS handshake is refused.
    let no_client = config(&[("VAULT_CACERT", path("ca.pem"))]);
    Sources::new(Some(no_client))
        .unwrap()
        .health()
        .await
        .expect_err("Vault requires a client certificate");
    // A certificate without its key is a setting error, before any request.
    let half = config(&[
        ("VAULT_CACERT", path("ca.pem")),
        ("VAULT_CLIENT_CERT", path("client.pem")),
    ]);
    let err = Sources::new(Some(half)).expect_err("refused");
    assert!(err.to_string().contains("VAULT_CLIENT_KEY"), "{err}");
}
