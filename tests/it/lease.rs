//! Dynamic credentials' leases end to end, against OpenBao's PKI engine (certificates with
//! `generate_lease: true`): the previous credential's lease is revoked only after the new one
//! is verified, a halted transaction revokes nothing, a credential lost with a killed run is
//! revoked, a plain rotation revokes what it replaced, and `rotor plan` warns of a lease
//! shorter than the cadence; against the database engine on a real PostgreSQL, a renewable
//! lease is renewed at half its term (by `rotor apply` and by the daemon on its own). What
//! OpenBao and PostgreSQL hold is read from them, not from rotor.

use serde_json::Value;

use super::transaction::{fleet, holds, json_of, quick, workspace, REPOS, WORKFLOW};
use crate::util::bao::Bao;
use crate::util::pg::Pg;

const LEASES: &str = "pki/issue/ci/";

fn policy(rollout: &str) -> String {
    format!(
        r#"
version: 1
name: tls
source:
  vault_read:
    path: pki/issue/ci
    params: {{ common_name: api.rotor.test }}
secrets:
  API_TOKEN: private_key       # the certificate's key: a new one with every issue
targets:
  - org: acme
    repos: ["svc-*"]
schedule:
  every: 30d
{rollout}
"#
    )
}

fn transactional() -> String {
    policy(&format!(
        "verify:\n  workflow: {WORKFLOW}\nrollout:\n  canary: 1\n  on_failure: halt"
    ))
}

/// The audit log's records, in order.
fn audit(ws: &crate::util::rotor::Workspace) -> Vec<Value> {
    std::fs::read_to_string(ws.state().join("audit.jsonl"))
        .expect("an audit log")
        .lines()
        .map(|l| serde_json::from_str(l).expect("an audit record"))
        .collect()
}

fn revoked(report: &Value) -> Vec<String> {
    let mut ids: Vec<String> = report["report"]["policies"][0]["leases"]["revoked"]
        .as_array()
        .map(|a| a.iter().map(|v| v.as_str().unwrap().to_string()).collect())
        .unwrap_or_default();
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_previous_credentials_lease_is_revoked_only_after_the_new_one_is_verified() {
    let bao = Bao::start();
    bao.pki_with_leases().await;
    let (emu, handle) = fleet().await;
    let ws = workspace(&handle, &bao);
    ws.write_policy("tls.yaml", &transactional());

    let first = ws.run(&["apply", "--output", "json"]).await.expect_code(0);
    let first = json_of(&first);
    assert_eq!(
        first["report"]["policies"][0]["transaction"]["state"],
        "committed"
    );
    let a = bao.live_leases(LEASES).await;
    assert_eq!(a.len(), 1, "one certificate issued: {a:?}");
    assert!(
        revoked(&first).is_empty(),
        "nothing to revoke the first time"
    );

    // The lease lasts 1 h (a second less, as OpenBao counts), the policy rotates every 30
    // days: the plan says so.
    let plan = ws.run(&["plan"]).await.expect_code(0);
    assert!(
        plan.stdout
            .contains("warning: policy tls: the credential's lease lasts")
            && plan.stdout.contains("and cannot be renewed"),
        "{}",
        plan.stdout
    );

    // A failed canary with `halt`: both credentials are in use (the canary holds the new
    // one, the rest the previous one), so neither lease is revoked.
    emu.set_workflow("acme", "svc-0001", quick().fail(true))
        .unwrap();
    let halted = ws
        .run(&["rotate", "tls", "--output", "json"])
        .await
        .expect_code(1);
    let halted = json_of(&halted);
    assert_eq!(
        halted["report"]["policies"][0]["transaction"]["state"],
        "halted"
    );
    assert!(revoked(&halted).is_empty());
    let ab = bao.live_leases(LEASES).await;
    assert_eq!(ab.len(), 2, "the previous lease and the halted one: {ab:?}");
    assert!(ab.contains(&a[0]));
    assert_ne!(
        holds(&emu, 1),
        holds(&emu, 2),
        "the canary alone got the new key"
    );

    // Verified: the new credential reaches every target, then every older lease goes.
    emu.set_workflow("acme", "svc-0001", quick()).unwrap();
    let good = ws
        .run(&["rotate", "tls", "--output", "json"])
        .await
        .expect_code(0);
    let good = json_of(&good);
    let txn = &good["report"]["policies"][0]["transaction"];
    assert_eq!(txn["state"], "committed", "{good:#}");
    let version = txn["version"].as_u64().unwrap();
    let c = bao.live_leases(LEASES).await;
    assert_eq!(c.len(), 1, "only the new credential's lease is left: {c:?}");
    assert!(!ab.contains(&c[0]));
    assert_eq!(revoked(&good), ab, "the report names what was revoked");
    let key = holds(&emu, 1).expect("a key");
    for i in 2..=REPOS {
        assert_eq!(holds(&emu, i).as_ref(), Some(&key), "svc-{i}");
    }

    // The order in the audit log: verified, then the revocations, then committed.
    let log = audit(&ws);
    let at = |event: &str, result: &str| -> Vec<usize> {
        log.iter()
            .enumerate()
            .filter(|(_, r)| {
                r["event"] == event
                    && r["result"] == result
                    && r["source_version"].as_u64() == Some(version)
            })
            .map(|(i, _)| i)
            .collect()
    };
    let verified = at("transaction", "verified");
    let revocations = at("lease", "revoked");
    let committed = at("transaction", "committed");
    assert_eq!((verified.len(), committed.len()), (1, 1), "{log:#?}");
    assert_eq!(revocations.len(), 2, "{log:#?}");
    assert!(revocations
        .iter()
        .all(|r| verified[0] < *r && *r < committed[0]));

    // Converged: nothing issued, nothing revoked.
    ws.run(&["apply"]).await.expect_code(0);
    assert_eq!(bao.live_leases(LEASES).await, c);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_credential_lost_with_a_killed_run_is_revoked_and_a_plain_rotation_revokes_what_it_replaced(
) {
    let bao = Bao::start();
    bao.pki_with_leases().await;
    let (emu, handle) = fleet().await;
    let mut ws = workspace(&handle, &bao);
    ws.write_policy("tls.yaml", &transactional());
    ws.run(&["apply"]).await.expect_code(0);
    let a = bao.live_leases(LEASES).await;
    assert_eq!(a.len(), 1);

    // Killed right after the new credential was issued and recorded: no target got it.
    ws.extra_env
        .push(("ROTOR_CRASH_AT".into(), "txn:pending".into()));
    let crashed = ws.run(&["rotate", "tls"]).await;
    assert!(
        crashed.stderr.contains("ROTOR_CRASH_AT: aborting"),
        "{}",
        crashed.stderr
    );
    ws.extra_env.pop();
    let lost = bao.live_leases(LEASES).await;
    assert_eq!(lost.len(), 2, "{lost:?}");
    let lost: Vec<String> = lost.into_iter().filter(|l| !a.contains(l)).collect();

    // The next run cannot push a value it never kept: it revokes that credential, issues
    // another, and once that one is verified revokes the first.
    let resumed = ws.run(&["apply", "--output", "json"]).await.expect_code(0);
    let resumed = json_of(&resumed);
    let mut expected = vec![lost[0].clone(), a[0].clone()];
    expected.sort();
    assert_eq!(revoked(&resumed), expected, "{resumed:#}");
    let now = bao.live_leases(LEASES).await;
    assert_eq!(now.len(), 1);
    assert!(!expected.contains(&now[0]));

    // Without verify or rollout: every target gets the new credential, then the one it
    // replaced is revoked.
    ws.write_policy("tls.yaml", &policy(""));
    let plain = ws
        .run(&["rotate", "tls", "--output", "json"])
        .await
        .expect_code(0);
    let plain = json_of(&plain);
    assert_eq!(revoked(&plain), now);
    let after = bao.live_leases(LEASES).await;
    assert_eq!(after.len(), 1);
    assert_ne!(after, now);
    let key = holds(&emu, 1).expect("a key");
    for i in 2..=REPOS {
        assert_eq!(holds(&emu, i).as_ref(), Some(&key), "svc-{i}");
    }
}

const DB_LEASES: &str = "database/creds/ci/";

fn database_policy() -> String {
    r#"
version: 1
name: db
source:
  vault_read: { path: database/creds/ci }
secrets:
  DB_USER: username
  API_TOKEN: password
targets:
  - org: acme
    repos: ["svc-*"]
schedule:
  every: 30d
"#
    .to_string()
}

/// The login roles the database engine made (`v-...`), with their expiry, sorted.
fn db_roles(pg: &Pg) -> Vec<String> {
    let out = pg.sql(
        "SELECT rolname || '|' || coalesce(rolvaliduntil::text, '') FROM pg_roles WHERE rolname LIKE 'v-%' ORDER BY 1",
    );
    out.lines().map(str::to_string).collect()
}

fn renewed(report: &Value) -> Vec<String> {
    report["report"]["policies"][0]["leases"]["renewed"]
        .as_array()
        .map(|a| a.iter().map(|v| v.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewable_database_lease_is_renewed_at_half_its_term_and_revoked_when_replaced() {
    let pg = Pg::start();
    let bao = Bao::start();
    bao.database_on(&pg, "8s", "1h").await;
    let (emu, handle) = fleet().await;
    let mut ws = workspace(&handle, &bao);
    ws.write_policy("db.yaml", &database_policy());
    // Everything rotor logs, down to TRACE: no credential may be in it.
    ws.extra_env.push(("RUST_LOG".into(), "trace".into()));

    let issued = ws.run(&["apply"]).await.expect_code(0);
    let leases = bao.live_leases(DB_LEASES).await;
    assert_eq!(leases.len(), 1, "{leases:?}");
    let lease = leases[0].clone();
    let (_, renewable) = bao.lease_ttl(&lease).await.expect("a live lease");
    assert!(renewable, "database credentials are renewable");
    let roles = db_roles(&pg);
    assert_eq!(roles.len(), 1, "one login role in PostgreSQL: {roles:?}");
    let user = emu
        .decrypted(&super::transaction::repo(1), "DB_USER")
        .expect("the username pushed");
    assert!(
        roles[0].starts_with(&format!("{user}|")),
        "{roles:?} {user}"
    );

    let plan = ws.run(&["plan"]).await.expect_code(0);
    assert!(
        plan.stdout.contains("rotor renews it at half its term"),
        "{}",
        plan.stdout
    );
    // Not yet half-way: nothing to renew.
    let early = json_of(&ws.run(&["apply", "--output", "json"]).await.expect_code(0));
    assert!(renewed(&early).is_empty(), "{early:#}");

    // Past half its term: renewed for its full TTL again, in OpenBao and in PostgreSQL.
    tokio::time::sleep(std::time::Duration::from_millis(4500)).await;
    let (left, _) = bao.lease_ttl(&lease).await.expect("still live");
    assert!(left <= 4, "{left}");
    let later = json_of(&ws.run(&["apply", "--output", "json"]).await.expect_code(0));
    assert_eq!(renewed(&later), vec![lease.clone()], "{later:#}");
    let (ttl, _) = bao.lease_ttl(&lease).await.expect("still live");
    assert!(ttl >= 6, "renewed to its TTL again: {ttl}");
    let after = db_roles(&pg);
    assert_eq!(after.len(), 1);
    assert!(
        after[0] > roles[0],
        "VALID UNTIL moved later: {roles:?} -> {after:?}"
    );

    // Replaced: the new login reaches every target, then the old lease and role go.
    let old_password = emu
        .decrypted(&super::transaction::repo(1), "API_TOKEN")
        .expect("the password pushed");
    let rotation = ws
        .run(&["rotate", "db", "--output", "json"])
        .await
        .expect_code(0);
    let new_password = emu
        .decrypted(&super::transaction::repo(1), "API_TOKEN")
        .expect("the password pushed");
    assert_ne!(old_password, new_password);
    for run in [&issued, &rotation] {
        assert!(run.stderr.contains("TRACE"), "the log was at TRACE");
        for p in [&old_password, &new_password] {
            assert!(!run.stdout.contains(p.as_str()) && !run.stderr.contains(p.as_str()));
        }
    }
    for f in std::fs::read_dir(ws.state()).unwrap().flatten() {
        let text =
            String::from_utf8_lossy(&std::fs::read(f.path()).unwrap_or_default()).to_string();
        assert!(
            !text.contains(&old_password) && !text.contains(&new_password),
            "{}",
            f.path().display()
        );
    }
    let rotated = json_of(&rotation);
    assert_eq!(revoked(&rotated), vec![lease.clone()]);
    assert!(bao.lease_ttl(&lease).await.is_none(), "revoked in OpenBao");
    let now = db_roles(&pg);
    assert_eq!(now.len(), 1, "the old login role was dropped: {now:?}");
    assert!(!now[0].starts_with(&format!("{user}|")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_keeps_a_renewable_lease_alive_past_its_ttl() {
    let pg = Pg::start();
    let bao = Bao::start();
    bao.database_on(&pg, "4s", "1h").await;
    let (_emu, handle) = fleet().await;
    let ws = workspace(&handle, &bao);
    ws.write_policy("db.yaml", &database_policy());
    let daemon = ws.spawn_daemon(&[]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let lease = loop {
        let live = bao.live_leases(DB_LEASES).await;
        if let Some(l) = live.first() {
            break l.clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no credential issued; daemon log:\n{}",
            daemon.logs()
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    // Three times its TTL later, it is still alive: the daemon renewed it, on its own.
    tokio::time::sleep(std::time::Duration::from_secs(12)).await;
    let ttl = bao.lease_ttl(&lease).await;
    assert!(
        ttl.is_some_and(|(t, _)| t > 0),
        "{ttl:?}; daemon log:\n{}",
        daemon.logs()
    );
    let renewals = audit(&ws)
        .iter()
        .filter(|r| r["event"] == "lease" && r["result"] == "renewed")
        .count();
    assert!(
        renewals >= 3,
        "{renewals} renewals; daemon log:\n{}",
        daemon.logs()
    );
    assert_eq!(
        bao.live_leases(DB_LEASES).await,
        vec![lease],
        "no new credential"
    );
}
