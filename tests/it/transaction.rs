//! Transactional rotation end to end: the real `rotor` binary, a real OpenBao and the
//! emulator's workflow runs. Canaries first, verification runs, rollback by write-back,
//! halt, timeouts, redacted log excerpts, kill -9 in every state, `rotor rollback`.

use base64::Engine as _;
use github_emulator::{App, FleetSpec, Scope, WorkflowSpec};
use serde_json::Value;
use std::time::Duration;

use crate::util::bao::Bao;
use crate::util::emu;
use crate::util::rotor::{Run, Workspace};

pub(crate) const REPOS: usize = 4;
pub(crate) const WORKFLOW: &str = "verify-secrets.yml";

pub(crate) fn repo(i: usize) -> Scope {
    Scope::Repo {
        owner: "acme".into(),
        repo: format!("svc-{i:04}"),
        app: App::Actions,
    }
}

fn policy(name: &str, rollout: &str, verify_extra: &str) -> String {
    format!(
        r#"
version: 1
name: {name}
source:
  generate:
    length: 32
    charset: alphanumeric
    store:
      vault_kv: {{ mount: secret, path: ci/{name} }}
secrets:
  API_TOKEN: value
targets:
  - org: acme
    repos: ["svc-*"]
verify:
  workflow: {WORKFLOW}
  inputs: {{ reason: rotation }}
{verify_extra}
{rollout}
"#
    )
}

const CANARY_ROLLBACK: &str = "rollout:\n  canary: 1\n  on_failure: rollback";
const CANARY_HALT: &str = "rollout:\n  canary: 1\n  on_failure: halt";

/// A workflow that needs API_TOKEN, finishing quickly.
pub(crate) fn quick() -> WorkflowSpec {
    WorkflowSpec::new(WORKFLOW)
        .queue_delay(Duration::from_millis(20))
        .duration(Duration::from_millis(60))
        .require_set("API_TOKEN")
}

pub(crate) async fn fleet() -> (github_emulator::Emulator, github_emulator::ServerHandle) {
    let (emu, handle) = emu::start(FleetSpec::generate(&["acme"], REPOS)).await;
    for i in 1..=REPOS {
        emu.set_workflow("acme", &format!("svc-{i:04}"), quick())
            .expect("a workflow");
    }
    (emu, handle)
}

pub(crate) fn workspace(handle: &github_emulator::ServerHandle, bao: &Bao) -> Workspace {
    let mut ws = Workspace::new(
        &handle.url,
        emu::DEFAULT_TOKEN,
        Some((bao.addr.clone(), bao.token.clone())),
    );
    ws.extra_env
        .push(("ROTOR_VERIFY_POLL".into(), "50ms".into()));
    ws
}

pub(crate) fn json_of(run: &Run) -> Value {
    serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}\n{}", run.stdout, run.stderr))
}

fn txn(report: &Value) -> &Value {
    &report["report"]["policies"][0]["transaction"]
}

async fn vault_value(bao: &Bao, path: &str) -> (u64, String) {
    let (v, data) = bao.kv_get("secret", path).await;
    (v, data["value"].as_str().unwrap().to_string())
}

fn writes(emu: &github_emulator::Emulator, i: usize) -> u64 {
    emu.secret_info(&repo(i), "API_TOKEN")
        .map_or(0, |s| s.writes)
}

pub(crate) fn holds(emu: &github_emulator::Emulator, i: usize) -> Option<String> {
    emu.decrypted(&repo(i), "API_TOKEN")
}

pub(crate) fn runs(emu: &github_emulator::Emulator, i: usize) -> usize {
    emu.runs("acme", &format!("svc-{i:04}")).len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_canary_is_verified_then_the_fleet_and_the_rotation_commits() {
    let bao = Bao::start();
    let (emu, handle) = fleet().await;
    let ws = workspace(&handle, &bao);
    ws.write_policy("p.yaml", &policy("api", CANARY_ROLLBACK, ""));

    let plan = ws.run(&["plan"]).await.expect_code(0);
    assert!(
        plan.stdout
            .contains("wave canary: 1 target(s): acme/svc-0001"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout
            .contains(&format!("then {WORKFLOW} in 3 repositories")),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout.contains("4 verification run(s)"),
        "{}",
        plan.stdout
    );

    let run = ws.run(&["apply", "--output", "json"]).await.expect_code(0);
    let report = json_of(&run);
    assert_eq!(txn(&report)["state"], "committed", "{report:#}");
    let verifications = txn(&report)["verifications"].as_array().unwrap();
    assert_eq!(verifications.len(), REPOS);
    assert!(verifications.iter().all(|v| v["conclusion"] == "success"));
    assert_eq!(verifications[0]["wave"], "canary");
    let (version, value) = vault_value(&bao, "ci/api").await;
    assert_eq!(version, 1, "one new version");
    for i in 1..=REPOS {
        assert_eq!(holds(&emu, i).as_deref(), Some(value.as_str()), "svc-{i}");
        assert_eq!(runs(&emu, i), 1, "one verification run in svc-{i}");
        let r = &emu.runs("acme", &format!("svc-{i:04}"))[0];
        assert_eq!(r.event, "workflow_dispatch");
        assert_eq!(r.inputs.get("reason").map(String::as_str), Some("rotation"));
    }
    // The canary's run was dispatched after its push, and the rest written only after it.
    let log = emu.requests();
    let at = |method: &str, path: &str| {
        log.iter()
            .position(|r| r.method == method && r.path == path)
            .unwrap_or_else(|| panic!("no {method} {path}"))
    };
    let canary_put = at("PUT", "/repos/acme/svc-0001/actions/secrets/API_TOKEN");
    let canary_dispatch = at(
        "POST",
        &format!("/repos/acme/svc-0001/actions/workflows/{WORKFLOW}/dispatches"),
    );
    let fleet_put = at("PUT", "/repos/acme/svc-0002/actions/secrets/API_TOKEN");
    assert!(canary_put < canary_dispatch && canary_dispatch < fleet_put);
    // Converged: nothing more to do, no run dispatched.
    let again = ws.run(&["apply"]).await.expect_code(0);
    assert!(
        again.stdout.contains("0 rotated, 0 pushed"),
        "{}",
        again.stdout
    );
    assert_eq!(runs(&emu, 1), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_canary_rolls_back_and_the_rest_of_the_fleet_is_never_written() {
    let bao = Bao::start();
    let (emu, handle) = fleet().await;
    let mut ws = workspace(&handle, &bao);
    ws.write_policy("p.yaml", &policy("api", CANARY_ROLLBACK, ""));
    ws.run(&["apply"]).await.expect_code(0);
    let (_, v1) = vault_value(&bao, "ci/api").await;
    // Everything rotor logs, down to TRACE (HTTP bodies of every crate included).
    ws.extra_env.push(("RUST_LOG".into(), "trace".into()));

    // The canary's workflow now accepts only the current value, and prints the value it
    // sees (and its base64) in its log.
    emu.set_workflow(
        "acme",
        "svc-0001",
        quick().require_equals("API_TOKEN", &v1).echo("API_TOKEN"),
    )
    .unwrap();
    let before: Vec<u64> = (1..=REPOS).map(|i| writes(&emu, i)).collect();
    let run = ws
        .run(&["rotate", "api", "--output", "json"])
        .await
        .expect_code(1);
    let report = json_of(&run);
    let t = txn(&report);
    assert_eq!(t["state"], "rolled_back", "{report:#}");
    assert_eq!(t["version"], 2);
    assert_eq!(t["previous"], 1);
    assert_eq!(t["restored_as"], 3);
    let failed = &t["verifications"][0];
    assert_eq!(failed["repo"], "acme/svc-0001");
    assert_eq!(failed["conclusion"], "failure");
    assert_eq!(failed["step"], "Check secrets");
    assert!(failed["url"]
        .as_str()
        .unwrap()
        .contains("/acme/svc-0001/actions/runs/"));
    assert!(failed["run_id"].as_u64().is_some());
    let excerpt = failed["excerpt"].as_str().expect("a log excerpt");
    assert!(excerpt.contains("***"), "{excerpt}");

    // Vault's current version holds the value the targets hold: the old one.
    let (v_now, value_now) = vault_value(&bao, "ci/api").await;
    assert_eq!((v_now, value_now.as_str()), (3, v1.as_str()));
    let (_, v2) = {
        let (_, data) = bao.kv_get_version("secret", "ci/api", 2).await;
        (2, data["value"].as_str().unwrap().to_string())
    };
    assert_ne!(v2, v1);
    for needle in [
        v2.clone(),
        v1.clone(),
        base64::engine::general_purpose::STANDARD.encode(&v2),
        base64::engine::general_purpose::STANDARD.encode(&v1),
    ] {
        assert!(!run.stdout.contains(&needle), "a value in the report");
        assert!(!run.stderr.contains(&needle), "a value in the log");
        for f in std::fs::read_dir(ws.state()).unwrap().flatten() {
            let text =
                String::from_utf8_lossy(&std::fs::read(f.path()).unwrap_or_default()).to_string();
            assert!(!text.contains(&needle), "a value in {}", f.path().display());
        }
    }
    assert!(
        run.stderr.contains("TRACE"),
        "the log was at TRACE: {}",
        &run.stderr[..run.stderr.len().min(500)]
    );
    for i in 1..=REPOS {
        assert_eq!(holds(&emu, i).as_deref(), Some(v1.as_str()), "svc-{i}");
    }
    assert_eq!(
        writes(&emu, 1),
        before[0] + 2,
        "the canary: new value, then the old one"
    );
    for i in 2..=REPOS {
        assert_eq!(writes(&emu, i), before[i - 1], "svc-{i} was never written");
        assert_eq!(runs(&emu, i), 1, "no fleet run in svc-{i}");
    }

    // The next apply has nothing to do, and never pushes the failed version.
    let next = ws.run(&["apply"]).await.expect_code(0);
    assert!(
        next.stdout.contains("0 rotated, 0 pushed"),
        "{}",
        next.stdout
    );
    let audit = std::fs::read_to_string(ws.state().join("audit.jsonl")).unwrap();
    assert!(audit.contains(r#""event":"verification""#), "{audit}");
    assert!(audit.contains(r#""result":"rolled_back""#), "{audit}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn halt_leaves_the_canary_on_the_new_value_and_writes_nothing_else() {
    let bao = Bao::start();
    let (emu, handle) = fleet().await;
    let ws = workspace(&handle, &bao);
    ws.write_policy("p.yaml", &policy("api", CANARY_HALT, ""));
    ws.run(&["apply"]).await.expect_code(0);
    let (_, v1) = vault_value(&bao, "ci/api").await;
    emu.set_workflow("acme", "svc-0001", quick().fail(true))
        .unwrap();
    let run = ws
        .run(&["rotate", "api", "--output", "json"])
        .await
        .expect_code(1);
    assert_eq!(txn(&json_of(&run))["state"], "halted");
    let (v, v2) = vault_value(&bao, "ci/api").await;
    assert_eq!(v, 2, "nothing written back");
    assert_eq!(holds(&emu, 1).as_deref(), Some(v2.as_str()));
    for i in 2..=REPOS {
        assert_eq!(holds(&emu, i).as_deref(), Some(v1.as_str()), "svc-{i}");
    }
    let report = json_of(&run);
    let failed = &txn(&report)["verifications"][0];
    assert_eq!(failed["step"], "Run tests");
    // Every later run refuses to push the failed version, and says what to do.
    let next = ws.run(&["apply"]).await.expect_code(1);
    assert!(
        next.stdout.contains("version 2 failed verification"),
        "{}",
        next.stdout
    );
    for i in 2..=REPOS {
        assert_eq!(holds(&emu, i).as_deref(), Some(v1.as_str()), "svc-{i}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_never_concludes_fails_the_transaction_at_its_timeout() {
    let bao = Bao::start();
    let (emu, handle) = fleet().await;
    emu.set_workflow("acme", "svc-0001", quick().never_conclude(true))
        .unwrap();
    let ws = workspace(&handle, &bao);
    ws.write_policy("p.yaml", &policy("api", CANARY_ROLLBACK, "  timeout: 30s"));
    let started = std::time::Instant::now();
    let run = ws.run(&["apply", "--output", "json"]).await.expect_code(1);
    assert!(started.elapsed() >= Duration::from_secs(30));
    let t = txn(&json_of(&run)).clone();
    let v = &t["verifications"][0];
    assert_eq!(v["conclusion"], "none", "{t:#}");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("did not conclude within 30s"),
        "{t:#}"
    );
    // The first version has nothing to roll back to: halted, the rest never written.
    assert_eq!(t["state"], "halted", "{t:#}");
    for i in 2..=REPOS {
        assert_eq!(holds(&emu, i), None, "svc-{i}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_queued_before_the_push_does_not_count() {
    let bao = Bao::start();
    let (emu, handle) = fleet().await;
    // Queued before anything was pushed: it sees no API_TOKEN and fails.
    let early = emu
        .queue_run("acme", "svc-0001", WORKFLOW, chrono::Utc::now())
        .unwrap();
    let ws = workspace(&handle, &bao);
    ws.write_policy("p.yaml", &policy("api", CANARY_ROLLBACK, ""));
    let run = ws.run(&["apply", "--output", "json"]).await.expect_code(0);
    let report = json_of(&run);
    assert_eq!(txn(&report)["state"], "committed");
    let canary = &txn(&report)["verifications"][0];
    assert_ne!(canary["run_id"].as_u64(), Some(early));
    assert_eq!(
        emu.run(early).and_then(|r| r.conclusion).as_deref(),
        Some("failure"),
        "the early run failed, and rotor did not take it for its own"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_in_every_state_a_transaction_resumes_with_exactly_one_new_version() {
    let bao = Bao::start();
    let (emu, handle) = fleet().await;
    for state in [
        "pending",
        "canary_pushed",
        "canary_verified",
        "fleet_pushed",
        "verified",
        "committed",
    ] {
        let name = format!("kill-{}", state.replace('_', "-"));
        let mut ws = workspace(&handle, &bao);
        // One fleet serves every state in turn: each policy takes over the secrets the
        // previous one (another ledger) wrote.
        let takeover = format!("{CANARY_ROLLBACK}\ntakeover: true");
        ws.write_policy("p.yaml", &policy(&name, &takeover, ""));
        ws.run(&["apply"]).await.expect_code(0);
        ws.extra_env
            .push(("ROTOR_CRASH_AT".into(), format!("txn:{state}")));
        let crashed = ws.run(&["rotate", &name]).await;
        assert_ne!(crashed.code, 0, "{state}: {}", crashed.stderr);
        assert!(
            crashed.stderr.contains("ROTOR_CRASH_AT: aborting"),
            "{state}: {}",
            crashed.stderr
        );
        ws.extra_env.pop();
        let resumed = ws.run(&["apply", "--output", "json"]).await;
        let path = format!("ci/{name}");
        let (version, value) = vault_value(&bao, &path).await;
        assert_eq!(version, 2, "{state}: exactly one new version");
        if state != "committed" {
            assert_eq!(resumed.code, 0, "{state}: {}", resumed.stderr);
            assert_eq!(
                txn(&json_of(&resumed))["state"],
                "committed",
                "{state}: {}",
                resumed.stdout
            );
        }
        for i in 1..=REPOS {
            assert_eq!(
                holds(&emu, i).as_deref(),
                Some(value.as_str()),
                "{state}: svc-{i}"
            );
        }
        let again = ws.run(&["apply"]).await.expect_code(0);
        assert!(
            again.stdout.contains("0 rotated, 0 pushed"),
            "{state}: {}",
            again.stdout
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_after_a_failure_the_rollback_resumes_and_writes_back_once() {
    let bao = Bao::start();
    let (emu, handle) = fleet().await;
    let mut ws = workspace(&handle, &bao);
    ws.write_policy("p.yaml", &policy("api", CANARY_ROLLBACK, ""));
    ws.run(&["apply"]).await.expect_code(0);
    let (_, v1) = vault_value(&bao, "ci/api").await;
    emu.set_workflow("acme", "svc-0001", quick().fail(true))
        .unwrap();
    ws.extra_env
        .push(("ROTOR_CRASH_AT".into(), "txn:failed".into()));
    let crashed = ws.run(&["rotate", "api"]).await;
    assert!(
        crashed.stderr.contains("ROTOR_CRASH_AT"),
        "{}",
        crashed.stderr
    );
    ws.extra_env.pop();
    let resumed = ws.run(&["apply", "--output", "json"]).await.expect_code(1);
    assert_eq!(txn(&json_of(&resumed))["state"], "rolled_back");
    let (version, value) = vault_value(&bao, "ci/api").await;
    assert_eq!(
        (version, value.as_str()),
        (3, v1.as_str()),
        "one write-back"
    );
    for i in 1..=REPOS {
        assert_eq!(holds(&emu, i).as_deref(), Some(v1.as_str()), "svc-{i}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotor_rollback_pushes_an_older_version_again_and_refuses_values_stored_nowhere() {
    let bao = Bao::start();
    let (emu, handle) = fleet().await;
    let ws = workspace(&handle, &bao);
    ws.write_policy("p.yaml", &policy("api", CANARY_ROLLBACK, ""));
    ws.run(&["apply"]).await.expect_code(0);
    let (_, v1) = vault_value(&bao, "ci/api").await;
    ws.run(&["rotate", "api"]).await.expect_code(0);
    ws.run(&["rotate", "api"]).await.expect_code(0);
    assert_eq!(vault_value(&bao, "ci/api").await.0, 3);

    let run = ws
        .run(&["rollback", "api", "--to", "1", "--output", "json"])
        .await
        .expect_code(0);
    assert!(
        run.stderr
            .contains("written back at the source as version 4"),
        "{}",
        run.stderr
    );
    let report = json_of(&run);
    assert_eq!(
        txn(&report)["state"],
        "committed",
        "verified like any new version"
    );
    let (version, value) = vault_value(&bao, "ci/api").await;
    assert_eq!((version, value.as_str()), (4, v1.as_str()));
    for i in 1..=REPOS {
        assert_eq!(holds(&emu, i).as_deref(), Some(v1.as_str()), "svc-{i}");
    }
    let audit = std::fs::read_to_string(ws.state().join("audit.jsonl")).unwrap();
    assert!(audit.contains(r#""event":"rollback""#), "{audit}");

    let refused = ws
        .run(&["rollback", "api", "--to", "9"])
        .await
        .expect_code(2);
    assert!(refused.stderr.contains("--to 9"), "{}", refused.stderr);

    ws.write_policy(
        "q.yaml",
        r#"
version: 1
name: unstored
source:
  generate: { length: 16, charset: hex }
secrets:
  OTHER: value
targets:
  - repo: acme/svc-0001
"#,
    );
    let refused = ws.run(&["rollback", "unstored"]).await.expect_code(2);
    assert!(
        refused.stderr.contains("stored nowhere"),
        "{}",
        refused.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_counts_runs_alerts_a_failed_transaction_and_knows_the_last_state_after_a_restart(
) {
    use crate::util::daemon::{alert_sink, value};
    let bao = Bao::start();
    let (emu, handle) = fleet().await;
    let ws = workspace(&handle, &bao);
    // A rotation that halts, by the CLI: the ledger knows the transaction ended `halted`.
    ws.write_policy(
        "p.yaml",
        &policy("api", CANARY_HALT, "").replace("verify:", "schedule:\n  every: 1h\nverify:"),
    );
    ws.run(&["apply"]).await.expect_code(0);
    emu.set_workflow("acme", "svc-0001", quick().fail(true))
        .unwrap();
    ws.run(&["rotate", "api"]).await.expect_code(1);

    // A daemon started afterwards shows that state before any pass of its own says more
    // (its first pass finds the failed version and refuses it: no transaction).
    let (hook, received) = alert_sink().await;
    let mut d = ws.spawn_daemon(&["--alert-webhook", &hook, "--retry-backoff", "1h"]);
    let state = |s: &prometheus_parse::Scrape, state: &str| {
        value(
            s,
            "rotor_transaction_state",
            &[("policy", "api"), ("state", state)],
        )
    };
    let s = d
        .wait_for("the first pass", Duration::from_secs(20), |s| {
            value(
                s,
                "rotor_passes_total",
                &[("policy", "api"), ("result", "unconverged")],
            ) >= 1.0
        })
        .await;
    assert_eq!(state(&s, "halted"), 1.0, "the ledger's last state");
    sigterm(&mut d).await;

    // Rotating every 2 s under the daemon: the canary still fails (an alert, counted), then
    // passes (the fleet's runs counted, committed).
    ws.write_policy(
        "p.yaml",
        &policy("api", CANARY_HALT, "").replace("verify:", "schedule:\n  every: 2s\nverify:"),
    );
    let mut d = ws.spawn_daemon(&["--alert-webhook", &hook, "--retry-backoff", "1s"]);
    let s = d
        .wait_for("a failed transaction", Duration::from_secs(30), |s| {
            value(
                s,
                "rotor_alerts_total",
                &[("kind", "transaction_failed"), ("result", "sent")],
            ) >= 1.0
        })
        .await;
    assert!(
        value(
            &s,
            "rotor_transactions_failed_total",
            &[("policy", "api"), ("outcome", "halted")]
        ) >= 1.0
    );
    assert!(
        value(
            &s,
            "rotor_verification_runs_total",
            &[("policy", "api"), ("result", "failure")]
        ) >= 1.0
    );
    emu.set_workflow("acme", "svc-0001", quick()).unwrap();
    let s = d
        .wait_for("a committed transaction", Duration::from_secs(30), |s| {
            state(s, "committed") == 1.0
        })
        .await;
    assert_eq!(state(&s, "halted"), 0.0, "one state per policy");
    assert!(
        value(
            &s,
            "rotor_verification_runs_total",
            &[("policy", "api"), ("result", "success")]
        ) >= REPOS as f64
    );
    sigterm(&mut d).await;
    let alerts = received.lock().unwrap().clone();
    let failed = alerts
        .iter()
        .find(|a| a["kind"] == "transaction_failed")
        .expect("a transaction_failed alert");
    assert_eq!(failed["policy"], "api");
    assert!(
        failed["message"]
            .as_str()
            .unwrap()
            .contains("verification failed in acme/svc-0001"),
        "{failed}"
    );
}

async fn sigterm(d: &mut crate::util::daemon::Daemon) {
    d.signal(libc::SIGTERM);
    let status = d.wait_exit(Duration::from_secs(30)).await;
    assert!(status.success(), "{status}; log:\n{}", d.logs());
}
