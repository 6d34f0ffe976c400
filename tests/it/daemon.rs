//! `rotor run` end to end: the real binary as a child process, a real OpenBao, the
//! emulator; progress is watched through `/metrics` (parsed as Prometheus text), the
//! emulator, the ledger and the audit log.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use github_emulator::App;
use github_emulator::Scope as SecretScope;
use github_emulator::{FaultRule, FleetSpec, OrgSpec, RepoSpec};
use rotor::audit::{AuditEvent, AuditLog, AuditRecord};
use rotor::ledger::Ledger;
use serde_json::{json, Value};

use crate::util::bao::Bao;
use crate::util::daemon::{metric, rotations, value};
use crate::util::emu;
use crate::util::rotor::Workspace;

const PUT_REPO_SECRET: &str = "PUT /repos/{owner}/{repo}/actions/secrets/{secret_name}";

fn repo(name: &str) -> SecretScope {
    SecretScope::Repo {
        owner: "acme".into(),
        repo: name.into(),
        app: App::Actions,
    }
}

fn svc(i: usize) -> String {
    format!("svc-{i:04}")
}

/// A generated value stored in Vault KV at `secret/{path}`, pushed as DEPLOY_TOKEN.
fn stored_policy(name: &str, path: &str, schedule: &str, targets: &str) -> String {
    format!(
        "version: 1\nname: {name}\nowner: security@example.com\nsource:\n  generate:\n    length: 40\n    charset: alphanumeric\n    store:\n      vault_kv: {{ mount: secret, path: {path} }}\nsecrets:\n  DEPLOY_TOKEN: value\ntargets:\n{targets}\nschedule:\n  {schedule}\n"
    )
}

/// A generated value kept nowhere, pushed as `secret`.
fn unstored_policy(name: &str, secret: &str, schedule: &str, targets: &str) -> String {
    format!(
        "version: 1\nname: {name}\nsource:\n  generate: {{ length: 32, charset: alphanumeric }}\nsecrets:\n  {secret}: value\ntargets:\n{targets}\nschedule:\n  {schedule}\n"
    )
}

fn repos(names: &[usize]) -> String {
    names
        .iter()
        .map(|i| format!("  - repo: acme/{}\n", svc(*i)))
        .collect()
}

fn vault_ws(handle: &emu::ServerHandle, bao: &Bao) -> Workspace {
    Workspace::new(
        &handle.url,
        emu::DEFAULT_TOKEN,
        Some((bao.addr.clone(), bao.token.clone())),
    )
}

fn audit(ws: &Workspace) -> Vec<AuditRecord> {
    AuditLog::read(&ws.state().join("audit.jsonl")).expect("the audit log exists")
}

fn audit_rotations<'a>(records: &'a [AuditRecord], policy: &str) -> Vec<&'a AuditRecord> {
    records
        .iter()
        .filter(|r| r.event == AuditEvent::Rotation && r.policy == policy && r.result == "rotated")
        .collect()
}

async fn vault_value(bao: &Bao, path: &str) -> (u64, String) {
    let (version, data) = bao.kv_get("secret", path).await;
    (
        version,
        data["value"].as_str().expect("a string value").to_string(),
    )
}

async fn sigterm_and_expect_0(d: &mut crate::util::daemon::Daemon) {
    d.signal(libc::SIGTERM);
    let status = d.wait_exit(Duration::from_secs(15)).await;
    assert_eq!(
        status.code(),
        Some(0),
        "rotor run exited {status}; its log:\n{}",
        d.logs()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policies_every_2s_rotate_several_times_one_at_a_time_and_every_target_holds_the_latest_value(
) {
    let bao = Bao::start();
    let (emu, handle) = emu::start(FleetSpec::generate(&["acme"], 6)).await;
    let ws = vault_ws(&handle, &bao);
    ws.write_policy(
        "stored.yaml",
        &stored_policy("stored", "ci/stored", "every: 2s", &repos(&[1, 2, 3])),
    );
    ws.write_policy(
        "webhook.yaml",
        &unstored_policy("webhook", "WEBHOOK_SECRET", "every: 2s", &repos(&[4, 5, 6])),
    );

    let mut d = ws.spawn_daemon(&[]);
    let s = d
        .wait_for(
            "three rotations of each policy",
            Duration::from_secs(12),
            |s| rotations(s, "stored") >= 3.0 && rotations(s, "webhook") >= 3.0,
        )
        .await;
    for p in ["stored", "webhook"] {
        assert_eq!(
            value(
                &s,
                "rotor_rotations_total",
                &[("policy", p), ("result", "failure")]
            ),
            0.0
        );
        assert_eq!(
            value(
                &s,
                "rotor_pushes_total",
                &[("policy", p), ("result", "failed")]
            ),
            0.0
        );
    }
    sigterm_and_expect_0(&mut d).await;

    // Exactly one Vault version per rotation, and every target holds the last one.
    let records = audit(&ws);
    let stored = audit_rotations(&records, "stored");
    let (version, current) = vault_value(&bao, "ci/stored").await;
    assert!(stored.len() >= 3);
    assert_eq!(
        version as usize,
        stored.len(),
        "one Vault version per rotation"
    );
    for i in [1, 2, 3] {
        assert_eq!(
            emu.decrypted(&repo(&svc(i)), "DEPLOY_TOKEN").as_deref(),
            Some(current.as_str())
        );
    }
    let webhook: BTreeSet<Option<String>> = [4, 5, 6]
        .iter()
        .map(|i| emu.decrypted(&repo(&svc(*i)), "WEBHOOK_SECRET"))
        .collect();
    assert_eq!(webhook.len(), 1, "one value per rotation for every target");
    assert!(webhook
        .iter()
        .all(|v| v.as_ref().is_some_and(|v| v.len() == 32)));

    // On cadence, never two at once: rotations of one policy come about 2 s apart.
    for pair in stored.windows(2) {
        let gap = (pair[1].time - pair[0].time).num_milliseconds();
        assert!(
            (1900..=4500).contains(&gap),
            "rotations {gap} ms apart:\n{}",
            d.logs()
        );
    }
    let state = Ledger::read_state(&ws.state()).expect("ledger");
    assert_eq!(state.policies["stored"].version, Some(version));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_as_prometheus_text_with_rotations_pushes_due_times_unconverged_targets_and_rate_limit(
) {
    let (emu, handle) = emu::start(FleetSpec::generate(&["acme"], 3)).await;
    emu.add_fault(
        FaultRule::new("/repos/acme/svc-0003/actions/secrets/WEBHOOK_SECRET", 422)
            .method("PUT")
            .message("Invalid request."),
    );
    let ws = Workspace::new(&handle.url, emu::DEFAULT_TOKEN, None);
    ws.write_policy(
        "webhook.yaml",
        &unstored_policy("webhook", "WEBHOOK_SECRET", "every: 1h", &repos(&[1, 2, 3])),
    );
    let mut d = ws.spawn_daemon(&["--retry-backoff", "1h"]);
    let s = d
        .wait_for(
            "one pass with a failed target",
            Duration::from_secs(10),
            |s| {
                value(
                    s,
                    "rotor_passes_total",
                    &[("policy", "webhook"), ("result", "unconverged")],
                ) >= 1.0
            },
        )
        .await;

    let p = [("policy", "webhook")];
    let counter = |name: &str, result: &str| {
        s.samples
            .iter()
            .find(|x| {
                x.metric == name
                    && x.labels.get("policy") == Some("webhook")
                    && x.labels.get("result") == Some(result)
            })
            .map(|x| match x.value {
                prometheus_parse::Value::Counter(v) => v,
                ref other => panic!("{name} is not a counter: {other:?}"),
            })
    };
    assert_eq!(counter("rotor_rotations_total", "success"), Some(1.0));
    assert_eq!(counter("rotor_rotations_total", "failure"), Some(0.0));
    assert_eq!(counter("rotor_pushes_total", "created"), Some(2.0));
    assert_eq!(counter("rotor_pushes_total", "failed"), Some(1.0));
    assert_eq!(metric(&s, "rotor_unconverged_targets", &p), Some(1.0));
    assert_eq!(
        metric(&s, "rotor_last_success_timestamp_seconds", &p),
        None,
        "never fully converged"
    );
    let due = metric(&s, "rotor_next_due_timestamp_seconds", &p).expect("a next due time");
    let in_an_hour = (chrono::Utc::now() + chrono::Duration::hours(1)).timestamp() as f64;
    assert!(
        (due - in_an_hour).abs() < 60.0,
        "next due {due}, expected about {in_an_hour}"
    );
    let remaining = metric(&s, "rotor_github_rate_limit_remaining", &[]).expect("rate limit");
    assert!(remaining > 0.0 && remaining < 5000.0, "{remaining}");
    assert_eq!(metric(&s, "rotor_policies", &[]), Some(1.0));

    let (code, body) = d.get("/healthz").await.expect("healthz answers");
    assert_eq!(code, 200, "{body}");
    let (code, body) = d.get("/readyz").await.expect("readyz answers");
    assert_eq!(code, 200, "{body}");
    let ready: Value = serde_json::from_str(&body).expect("readyz is JSON");
    assert_eq!(ready["ready"], true);
    assert_eq!(ready["checks"]["github"]["ok"], true, "{ready}");

    // A second scrape over plain HTTP carries Prometheus' content type.
    let r = reqwest::get(format!("{}/metrics", d.url))
        .await
        .expect("metrics");
    assert_eq!(
        r.headers()["content-type"].to_str().unwrap(),
        "text/plain; version=0.0.4; charset=utf-8"
    );
    sigterm_and_expect_0(&mut d).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_overdue_after_a_stop_longer_than_its_cadence_rotates_once_at_start() {
    let (_emu, handle) = emu::start(FleetSpec::generate(&["acme"], 2)).await;
    let ws = Workspace::new(&handle.url, emu::DEFAULT_TOKEN, None);
    ws.write_policy(
        "webhook.yaml",
        &unstored_policy("webhook", "WEBHOOK_SECRET", "every: 2s", &repos(&[1])),
    );

    let mut first = ws.spawn_daemon(&[]);
    first
        .wait_for("the initial rotation", Duration::from_secs(8), |s| {
            rotations(s, "webhook") >= 1.0
        })
        .await;
    sigterm_and_expect_0(&mut first).await;
    let before = audit_rotations(&audit(&ws), "webhook").len();

    // Down for more than two cadence slots.
    tokio::time::sleep(Duration::from_millis(5000)).await;
    let started = Instant::now();
    let mut second = ws.spawn_daemon(&[]);
    second
        .wait_for("the catch-up rotation", Duration::from_millis(1800), |s| {
            rotations(s, "webhook") >= 1.0
        })
        .await;
    assert!(started.elapsed() < Duration::from_millis(1800));
    // One catch-up rotation for the missed slots, not one per slot.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let s = second.scrape().await.expect("metrics");
    assert_eq!(rotations(&s, "webhook"), 1.0, "{}", second.logs());
    sigterm_and_expect_0(&mut second).await;

    let records = audit(&ws);
    let all = audit_rotations(&records, "webhook");
    assert!(all.len() > before);
    assert_eq!(
        all[before].reason.as_deref(),
        Some("due"),
        "{:?}",
        all[before]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_with_a_broken_policy_keeps_the_old_set_and_a_valid_one_replaces_it() {
    let (emu, handle) = emu::start(FleetSpec::generate(&["acme"], 2)).await;
    let ws = Workspace::new(&handle.url, emu::DEFAULT_TOKEN, None);
    ws.write_policy(
        "a.yaml",
        &unstored_policy("a", "A_SECRET", "every: 1h", &repos(&[1])),
    );
    let mut d = ws.spawn_daemon(&["--log-format", "json"]);
    d.wait_for("policy a converged", Duration::from_secs(8), |s| {
        value(
            s,
            "rotor_passes_total",
            &[("policy", "a"), ("result", "converged")],
        ) >= 1.0
    })
    .await;

    ws.write_policy(
        "b.yaml",
        "version: 1\nname: b\nsource:\n  generate: { length: 4 }\n",
    );
    d.signal(libc::SIGHUP);
    let s = d
        .wait_for("the rejected reload", Duration::from_secs(5), |s| {
            value(s, "rotor_reloads_total", &[("result", "failure")]) == 1.0
        })
        .await;
    assert_eq!(
        metric(&s, "rotor_policies", &[]),
        Some(1.0),
        "the old set stays"
    );
    assert!(metric(
        &s,
        "rotor_rotations_total",
        &[("policy", "a"), ("result", "success")]
    )
    .is_some());
    let logs = d.logs();
    let lines: Vec<Value> = logs
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert!(
        !lines.is_empty() && lines.len() == logs.lines().count(),
        "--log-format json logs JSON lines:\n{logs}"
    );
    let diagnostics: Vec<&str> = lines
        .iter()
        .filter(|l| l["fields"]["message"] == "invalid policy")
        .filter_map(|l| l["fields"]["diagnostic"].as_str())
        .collect();
    assert!(
        diagnostics
            .iter()
            .any(|d| d.contains("b.yaml:") && d.contains("E0")),
        "{logs}"
    );
    assert!(lines.iter().any(|l| l["level"] == "ERROR"
        && l["fields"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("reload rejected"))));
    assert!(d.is_running());

    ws.write_policy(
        "b.yaml",
        &unstored_policy("b", "B_SECRET", "every: 1h", &repos(&[2])),
    );
    d.signal(libc::SIGHUP);
    d.wait_for(
        "the accepted reload and b's first pass",
        Duration::from_secs(8),
        |s| {
            value(s, "rotor_reloads_total", &[("result", "success")]) == 1.0
                && metric(s, "rotor_policies", &[]) == Some(2.0)
                && rotations(s, "b") >= 1.0
        },
    )
    .await;
    assert!(emu.decrypted(&repo("svc-0002"), "B_SECRET").is_some());
    let s = d.scrape().await.expect("metrics");
    assert_eq!(
        rotations(&s, "a"),
        1.0,
        "an unchanged policy keeps its schedule across a reload"
    );
    sigterm_and_expect_0(&mut d).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_run_exits_0_with_ledger_audit_and_github_agreeing_and_a_restart_finishes_the_job(
) {
    let bao = Bao::start();
    let (emu, handle) = emu::start(FleetSpec::generate(&["acme"], 120)).await;
    emu.set_latency(Duration::from_millis(25));
    let ws = vault_ws(&handle, &bao);
    ws.write_policy(
        "deploy.yaml",
        &stored_policy("deploy", "ci/deploy", "every: 1h", "  - org: acme\n"),
    );
    let targets = 108; // 120 minus every tenth (archived)

    let mut d = ws.spawn_daemon(&["--concurrency", "4", "--shutdown-timeout", "10s"]);
    let deadline = Instant::now() + Duration::from_secs(12);
    while emu.counters().route_status(PUT_REPO_SECRET, 201) < 10 {
        assert!(
            Instant::now() < deadline,
            "no pushes started:\n{}",
            d.logs()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    sigterm_and_expect_0(&mut d).await;
    assert!(d.logs().contains("SIGTERM"), "{}", d.logs());

    let puts = emu.counters().route_status(PUT_REPO_SECRET, 201) as usize;
    assert!(
        puts < targets,
        "the shutdown stopped the run midway ({puts} pushes)"
    );
    let in_github: BTreeSet<String> = emu
        .secrets()
        .into_iter()
        .filter(|s| s.info.name == "DEPLOY_TOKEN")
        .map(|s| s.info.scope.key())
        .collect();
    let state = Ledger::read_state(&ws.state()).expect("ledger");
    let in_ledger: BTreeSet<String> = state
        .targets_of("deploy")
        .filter(|t| t.pushed.as_ref().is_some_and(|p| p.version == 1))
        .map(|t| t.scope.key())
        .collect();
    let records = audit(&ws);
    let in_audit: BTreeSet<String> = records
        .iter()
        .filter(|r| r.event == AuditEvent::Push && r.result == "created")
        .map(|r| r.target.clone().expect("a push names its target"))
        .collect();
    assert_eq!(in_ledger.len(), puts, "one ledger entry per accepted push");
    assert_eq!(
        in_ledger, in_github,
        "the ledger records exactly the pushes GitHub accepted"
    );
    assert_eq!(
        in_audit, in_github,
        "the audit log records exactly the pushes GitHub accepted"
    );
    assert!(records
        .iter()
        .filter(|r| r.event == AuditEvent::Push)
        .all(|r| r.github_request_id.is_some()));
    assert_eq!(audit_rotations(&records, "deploy").len(), 1);
    assert_eq!(state.policies["deploy"].version, Some(1));

    // The next start converges every target to the same version.
    let mut again = ws.spawn_daemon(&["--concurrency", "8"]);
    again
        .wait_for("full convergence", Duration::from_secs(15), |s| {
            value(
                s,
                "rotor_passes_total",
                &[("policy", "deploy"), ("result", "converged")],
            ) >= 1.0
        })
        .await;
    sigterm_and_expect_0(&mut again).await;
    let (version, current) = vault_value(&bao, "ci/deploy").await;
    assert_eq!(version, 1, "no new rotation");
    let holding = emu
        .secrets()
        .into_iter()
        .filter(|s| {
            s.info.name == "DEPLOY_TOKEN"
                && secrecy::ExposeSecret::expose_secret(&s.value) == current
        })
        .count();
    assert_eq!(holding, targets);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_a_300_repository_rotation_then_a_restart_converges_every_target_with_exactly_one_new_vault_version(
) {
    let bao = Bao::start();
    let fleet = FleetSpec {
        orgs: vec![OrgSpec {
            name: "acme".into(),
            id: None,
            repos: (1..=300).map(|i| RepoSpec::new(&svc(i))).collect(),
        }],
        ..Default::default()
    };
    let (emu, handle) = emu::start(fleet).await;
    emu.set_latency(Duration::from_millis(20));
    let mut ws = vault_ws(&handle, &bao);
    // 300 writes are 1,500 points: under GitHub's 900 a minute the governor would stretch
    // the run past a minute. This emulator enforces no points budget, so neither does rotor.
    ws.extra_env
        .push(("ROTOR_GITHUB_LIMITS".into(), "off".into()));
    ws.write_policy(
        "deploy.yaml",
        &stored_policy("deploy", "ci/deploy", "every: 30d", "  - org: acme\n"),
    );

    let mut d = ws.spawn_daemon(&["--concurrency", "8"]);
    let deadline = Instant::now() + Duration::from_secs(12);
    while emu.counters().route_status(PUT_REPO_SECRET, 201) < 30 {
        assert!(
            Instant::now() < deadline,
            "no pushes started:\n{}",
            d.logs()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    d.kill9().await;
    let pushed_before = emu.counters().route_status(PUT_REPO_SECRET, 201);
    assert!(
        pushed_before < 300,
        "the kill landed mid-run ({pushed_before} pushes)"
    );
    assert_eq!(bao.kv_version("secret", "ci/deploy").await, Some(1));

    let mut again = ws.spawn_daemon(&["--concurrency", "8"]);
    let s = again
        .wait_for(
            "full convergence after the crash",
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
    assert_eq!(
        rotations(&s, "deploy"),
        0.0,
        "the restart converges, it does not rotate"
    );
    sigterm_and_expect_0(&mut again).await;

    let (version, current) = vault_value(&bao, "ci/deploy").await;
    assert_eq!(version, 1, "exactly one Vault version for the one rotation");
    for i in 1..=300 {
        assert_eq!(
            emu.decrypted(&repo(&svc(i)), "DEPLOY_TOKEN").as_deref(),
            Some(current.as_str()),
            "{} was left behind",
            svc(i)
        );
    }
    let state = Ledger::read_state(&ws.state()).expect("ledger");
    assert_eq!(state.policies["deploy"].rotations, 1);
    assert_eq!(
        state
            .targets_of("deploy")
            .filter(|t| t.pushed.as_ref().is_some_and(|p| p.version == 1))
            .count(),
        300
    );
    // Every ledger entry stands for a push GitHub accepted (no entry without a push).
    let accepted = emu.counters().route_status(PUT_REPO_SECRET, 201)
        + emu.counters().route_status(PUT_REPO_SECRET, 204);
    assert!(accepted >= 300);
    assert_eq!(audit_rotations(&audit(&ws), "deploy").len(), 1);
}

/// A crash after the new KV version is written but before the ledger records the rotation
/// leaves the source ahead of the ledger. The next run must take that version as the
/// rotation, not make another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_written_just_before_a_crash_is_converged_to_and_not_rotated_again() {
    let bao = Bao::start();
    let (emu, handle) = emu::start(FleetSpec::generate(&["acme"], 3)).await;
    let ws = vault_ws(&handle, &bao);
    ws.write_policy(
        "deploy.yaml",
        &stored_policy("deploy", "ci/deploy", "every: 3s", &repos(&[1, 2])),
    );
    ws.run(&["apply"]).await.expect_code(0);
    assert_eq!(bao.kv_version("secret", "ci/deploy").await, Some(1));

    // The policy becomes due; its rotation writes version 2, and "crashes" before the
    // ledger hears of it.
    tokio::time::sleep(Duration::from_millis(3200)).await;
    let written = "written-just-before-the-crash-0123456789";
    bao.kv_put("secret", "ci/deploy", json!({ "value": written }))
        .await;

    let run = ws.run(&["apply"]).await.expect_code(0);
    assert!(run.stdout.contains("0 rotated, 2 pushed"), "{}", run.stdout);
    assert_eq!(
        bao.kv_version("secret", "ci/deploy").await,
        Some(2),
        "no second version for one rotation"
    );
    for i in [1, 2] {
        assert_eq!(
            emu.decrypted(&repo(&svc(i)), "DEPLOY_TOKEN").as_deref(),
            Some(written)
        );
    }
    let state = Ledger::read_state(&ws.state()).expect("ledger");
    assert_eq!(
        state.policies["deploy"].version,
        Some(2),
        "the ledger learns the version"
    );
    assert!(audit(&ws)
        .iter()
        .any(|r| r.event == AuditEvent::Rotation && r.result == "recovered"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approle_token_that_expires_during_the_run_is_renewed_then_replaced_and_rotations_go_on()
{
    let bao = Bao::start();
    let hcl = r#"
path "secret/data/*" { capabilities = ["create", "read", "update"] }
path "secret/metadata/*" { capabilities = ["read"] }
"#;
    let (role_id, secret_id) = bao.approle("rotor", hcl, "3s", "6s").await;
    let (emu, handle) = emu::start(FleetSpec::generate(&["acme"], 2)).await;
    let mut ws = Workspace::new(&handle.url, emu::DEFAULT_TOKEN, None);
    let secret_file = ws.path().join("secret-id");
    std::fs::write(&secret_file, format!("{secret_id}\n")).expect("write the secret id file");
    ws.extra_env.push(("VAULT_ADDR".into(), bao.addr.clone()));
    ws.extra_env.push(("VAULT_ROLE_ID".into(), role_id));
    ws.extra_env.push((
        "VAULT_SECRET_ID_FILE".into(),
        secret_file.display().to_string(),
    ));
    ws.write_policy(
        "deploy.yaml",
        &stored_policy("deploy", "ci/deploy", "every: 2s", &repos(&[1, 2])),
    );

    let mut d = ws.spawn_daemon(&[]);
    // Tokens live 3 s and at most 6 s: over 10 s rotor renews them and logs in again.
    let s = d
        .wait_for(
            "rotations across token expiries",
            Duration::from_secs(14),
            |s| rotations(s, "deploy") >= 5.0 && value(s, "rotor_vault_logins_total", &[]) >= 2.0,
        )
        .await;
    assert_eq!(
        value(
            &s,
            "rotor_rotations_total",
            &[("policy", "deploy"), ("result", "failure")]
        ),
        0.0,
        "{}",
        d.logs()
    );
    assert_eq!(
        value(
            &s,
            "rotor_passes_total",
            &[("policy", "deploy"), ("result", "unconverged")]
        ),
        0.0,
        "{}",
        d.logs()
    );
    sigterm_and_expect_0(&mut d).await;

    let (version, current) = vault_value(&bao, "ci/deploy").await;
    assert_eq!(
        version as usize,
        audit_rotations(&audit(&ws), "deploy").len()
    );
    assert_eq!(
        emu.decrypted(&repo("svc-0001"), "DEPLOY_TOKEN").as_deref(),
        Some(current.as_str())
    );
    assert!(
        !d.logs().contains(&secret_id_marker(&ws)),
        "the secret id is never logged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vault_token_with_a_3s_ttl_is_renewed_before_it_expires_and_rotations_go_on() {
    let bao = Bao::start();
    let hcl = r#"
path "secret/data/*" { capabilities = ["create", "read", "update"] }
path "secret/metadata/*" { capabilities = ["read"] }
"#;
    let (status, body) = bao
        .api(
            reqwest::Method::PUT,
            "sys/policies/acl/rotor",
            Some(json!({ "policy": hcl })),
        )
        .await;
    assert!(status == 204 || status == 200, "{body}");
    // With the default policy (lookup-self, renew-self) and no maximum beyond the system's.
    let (status, body) = bao
        .api(
            reqwest::Method::POST,
            "auth/token/create",
            Some(json!({ "policies": ["rotor"], "ttl": "3s", "renewable": true })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let token = body["auth"]["client_token"]
        .as_str()
        .expect("a token")
        .to_string();
    let (emu, handle) = emu::start(FleetSpec::generate(&["acme"], 2)).await;
    let ws = Workspace::new(
        &handle.url,
        emu::DEFAULT_TOKEN,
        Some((bao.addr.clone(), token)),
    );
    ws.write_policy(
        "deploy.yaml",
        &stored_policy("deploy", "ci/deploy", "every: 2s", &repos(&[1])),
    );

    let mut d = ws.spawn_daemon(&[]);
    // Without renewal the token would be gone after 3 s, before the third rotation.
    let s = d
        .wait_for(
            "rotations past the token's first TTL",
            Duration::from_secs(12),
            |s| rotations(s, "deploy") >= 4.0,
        )
        .await;
    assert_eq!(
        value(
            &s,
            "rotor_rotations_total",
            &[("policy", "deploy"), ("result", "failure")]
        ),
        0.0,
        "{}",
        d.logs()
    );
    let ttl =
        metric(&s, "rotor_vault_token_ttl_seconds", &[]).expect("the token's TTL is reported");
    assert!(ttl > 0.0 && ttl <= 3.0, "{ttl}");
    assert_eq!(
        metric(&s, "rotor_vault_logins_total", &[]),
        Some(0.0),
        "a plain token never logs in"
    );

    // The daemon holds the ledger: a one-shot run is refused meanwhile.
    let apply = ws.run(&["apply"]).await.expect_code(1);
    assert!(
        apply.stderr.contains("locked by another rotor process"),
        "{}",
        apply.stderr
    );
    sigterm_and_expect_0(&mut d).await;
    assert_eq!(
        bao.kv_version("secret", "ci/deploy")
            .await
            .map(|v| v as usize),
        Some(audit_rotations(&audit(&ws), "deploy").len())
    );
    assert!(emu.decrypted(&repo("svc-0001"), "DEPLOY_TOKEN").is_some());
}

fn secret_id_marker(ws: &Workspace) -> String {
    std::fs::read_to_string(ws.path().join("secret-id"))
        .expect("secret id file")
        .trim()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openbao_stopped_and_restarted_under_a_running_daemon_is_reported_and_recovered_from() {
    let mut bao = Bao::start();
    let (emu, handle) = emu::start(FleetSpec::generate(&["acme"], 2)).await;
    let ws = vault_ws(&handle, &bao);
    ws.write_policy(
        "deploy.yaml",
        &stored_policy("deploy", "ci/deploy", "every: 2s", &repos(&[1, 2])),
    );
    let mut d = ws.spawn_daemon(&["--vault-poll-interval", "1s", "--retry-backoff", "1s"]);
    d.wait_for("a first rotation", Duration::from_secs(8), |s| {
        rotations(s, "deploy") >= 1.0 && metric(s, "rotor_vault_up", &[]) == Some(1.0)
    })
    .await;

    bao.stop();
    let s = d
        .wait_for("the outage to be reported", Duration::from_secs(8), |s| {
            metric(s, "rotor_vault_up", &[]) == Some(0.0)
                && value(
                    s,
                    "rotor_rotations_total",
                    &[("policy", "deploy"), ("result", "failure")],
                ) >= 1.0
        })
        .await;
    let before = rotations(&s, "deploy");
    assert!(d.is_running(), "a Vault outage never stops the daemon");
    let (code, _) = d.get("/healthz").await.expect("healthz answers");
    assert_eq!(code, 200);
    let (code, body) = d.get("/readyz").await.expect("readyz answers");
    assert_eq!(code, 503, "{body}");
    let ready: Value = serde_json::from_str(&body).expect("readyz is JSON");
    assert_eq!(ready["checks"]["vault"]["ok"], false, "{ready}");
    assert!(d.logs().contains("Vault is unavailable"), "{}", d.logs());

    // A fresh dev server (empty, same address and root token) comes back.
    bao.restart();
    let s = d
        .wait_for("rotations to resume", Duration::from_secs(12), |s| {
            metric(s, "rotor_vault_up", &[]) == Some(1.0) && rotations(s, "deploy") > before
        })
        .await;
    assert!(rotations(&s, "deploy") > before);
    d.wait_for("the targets to converge", Duration::from_secs(8), |s| {
        metric(s, "rotor_unconverged_targets", &[("policy", "deploy")]) == Some(0.0)
            && metric(s, "rotor_pass_in_progress", &[("policy", "deploy")]) == Some(0.0)
    })
    .await;
    sigterm_and_expect_0(&mut d).await;
    let (_, current) = vault_value(&bao, "ci/deploy").await;
    assert_eq!(
        emu.decrypted(&repo("svc-0001"), "DEPLOY_TOKEN").as_deref(),
        Some(current.as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_pass_and_targets_left_unconverged_are_posted_to_the_alert_webhook() {
    // The operator's webhook: records every JSON body it receives.
    let (hook, received) = crate::util::daemon::alert_sink().await;
    let (emu, handle) = emu::start(FleetSpec::generate(&["acme"], 2)).await;
    emu.add_fault(
        FaultRule::new("/repos/acme/svc-0002/actions/secrets/WEBHOOK_SECRET", 403)
            .method("PUT")
            .message("Resource not accessible by integration"),
    );
    // No Vault: the stored policy cannot rotate at all.
    let ws = Workspace::new(&handle.url, emu::DEFAULT_TOKEN, None);
    ws.write_policy(
        "webhook.yaml",
        &unstored_policy("webhook", "WEBHOOK_SECRET", "every: 1h", &repos(&[1, 2])),
    );
    ws.write_policy(
        "deploy.yaml",
        &stored_policy("deploy", "ci/deploy", "every: 1h", &repos(&[1])),
    );
    let mut d = ws.spawn_daemon(&[
        "--alert-webhook",
        &hook,
        "--alert-after",
        "1s",
        "--retry-backoff",
        "1h",
    ]);
    let s = d
        .wait_for("two alerts delivered", Duration::from_secs(10), |s| {
            value(
                s,
                "rotor_alerts_total",
                &[("kind", "rotation_failed"), ("result", "sent")],
            ) >= 1.0
                && value(
                    s,
                    "rotor_alerts_total",
                    &[("kind", "unconverged"), ("result", "sent")],
                ) >= 1.0
        })
        .await;
    assert_eq!(
        value(
            &s,
            "rotor_rotations_total",
            &[("policy", "deploy"), ("result", "failure")]
        ),
        1.0
    );
    sigterm_and_expect_0(&mut d).await;

    let got = received.lock().unwrap().clone();
    let failed = got
        .iter()
        .find(|a| a["kind"] == "rotation_failed")
        .expect("a rotation_failed alert");
    assert_eq!(failed["policy"], "deploy");
    assert_eq!(failed["owner"], "security@example.com");
    assert!(
        failed["message"]
            .as_str()
            .unwrap()
            .contains("Vault is not configured"),
        "{failed}"
    );
    assert!(failed["text"]
        .as_str()
        .unwrap()
        .starts_with("rotor: policy deploy rotation_failed"));
    let unconverged = got
        .iter()
        .find(|a| a["kind"] == "unconverged")
        .expect("an unconverged alert");
    assert_eq!(unconverged["policy"], "webhook");
    assert_eq!(unconverged["unconverged_targets"], 1);
    assert!(unconverged["since"].is_string());
    assert_eq!(got.len(), 2, "one alert per streak: {got:?}");
}
