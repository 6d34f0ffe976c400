//! `verify` and `rollout`: the forms that load into the model, and each refused form with
//! its code and position.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use crate::policy::load_str;
use crate::policy::model::{Canary, OnFailure, Policy, Rollout, Verify, WorkflowRef};

/// A valid policy (stored source, one repository target) with `extra` appended at the top
/// level. Its lines 1..=7 are fixed, so `extra` starts on line 8.
fn policy_with(source: &str, targets: &str, extra: &str) -> String {
    format!(
        "version: 1\nname: p\nsource:\n  {source}\nsecrets:\n  TOKEN: value\ntargets: {targets}\n{extra}"
    )
}

const STORED: &str = "generate: { length: 32, store: { vault_kv: { mount: secret, path: ci/p } } }";
const REPO: &str = "[{ repo: acme/a }]";

fn load(text: &str) -> Result<Policy, Vec<(&'static str, usize, usize, String)>> {
    match load_str(Path::new("p.yaml"), text) {
        Ok(mut ps) => {
            assert_eq!(ps.len(), 1);
            Ok(ps.remove(0))
        }
        Err(diags) => Err(diags
            .into_iter()
            .map(|d| (d.code, d.line, d.col, d.message))
            .collect()),
    }
}

fn ok(extra: &str) -> Policy {
    let text = policy_with(STORED, REPO, extra);
    load(&text).unwrap_or_else(|d| panic!("refused:\n{text}\n{d:#?}"))
}

/// The one diagnostic `text` gives: its code, line and column (the message is returned).
fn one(text: &str) -> (&'static str, usize, usize, String) {
    let mut d = load(text).expect_err("should be refused");
    assert_eq!(d.len(), 1, "{text}\n{d:#?}");
    d.remove(0)
}

fn err(extra: &str) -> (&'static str, usize, usize, String) {
    one(&policy_with(STORED, REPO, extra))
}

fn verify(p: &Policy) -> &Verify {
    p.verify.as_ref().expect("verify")
}

#[test]
fn without_verify_and_rollout_the_policy_has_neither() {
    let p = ok("");
    assert_eq!((p.verify, p.rollout), (None, None));
}

#[test]
fn a_full_verify_block_loads_into_the_model() {
    let p = ok("verify:\n  workflow: verify-secrets.yml\n  ref: refs/heads/main\n  inputs: { reason: rotation, count: 3, dry_run: false, ratio: 1.50, hex: 0x1F, quoted: \"007\" }\n  timeout: 20m\n  repos: [\"a\", \"!b-*\"]\n");
    let inputs: BTreeMap<String, String> = [
        ("reason", "rotation"),
        ("count", "3"),
        ("dry_run", "false"),
        ("ratio", "1.50"),
        ("hex", "0x1F"),
        ("quoted", "007"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(
        verify(&p),
        &Verify {
            workflow: WorkflowRef::File("verify-secrets.yml".into()),
            git_ref: Some("refs/heads/main".into()),
            inputs,
            timeout: Duration::from_secs(20 * 60),
            repos: vec!["a".into(), "!b-*".into()],
        }
    );
    assert!(p.is_transactional());
}

#[test]
fn verify_defaults_are_the_default_branch_no_inputs_and_15_minutes() {
    let p = ok("verify: { workflow: check.yaml }\n");
    assert_eq!(
        verify(&p),
        &Verify {
            workflow: WorkflowRef::File("check.yaml".into()),
            git_ref: None,
            inputs: BTreeMap::new(),
            timeout: Duration::from_secs(900),
            repos: Vec::new(),
        }
    );
}

#[test]
fn a_workflow_id_is_a_number_or_a_string_of_digits() {
    assert_eq!(
        verify(&ok("verify: { workflow: 161335 }\n")).workflow,
        WorkflowRef::Id(161_335)
    );
    assert_eq!(
        verify(&ok("verify: { workflow: \"42\" }\n")).workflow,
        WorkflowRef::Id(42)
    );
}

#[test]
fn bad_workflows_are_e0601_at_the_value() {
    for (w, needle) in [
        ("0", "not a positive number"),
        ("-3", "not a positive number"),
        ("\"0\"", "not a positive number"),
        ("\"\"", "empty"),
        (".github/workflows/v.yml", "holds /"),
        ("verify.json", "ending in .yml or .yaml"),
        (".yml", "ending in .yml or .yaml"),
        ("true", "a boolean"),
        ("[a.yml]", "a list"),
        ("1.5", "a fractional number"),
    ] {
        let (code, line, col, m) = err(&format!("verify: {{ workflow: {w} }}\n"));
        assert_eq!((code, line, col), ("E0601", 8, 21), "{w}: {m}");
        assert!(m.contains(needle), "{w}: {m}");
    }
}

#[test]
fn a_verify_without_workflow_is_e0005_and_unknown_keys_e0003() {
    let (code, line, col, m) = err("verify:\n  ref: main\n");
    assert_eq!((code, line, col), ("E0005", 9, 3), "{m}");
    assert!(m.contains("workflow"), "{m}");
    let (code, _, _, m) = err("verify: { workflow: v.yml, branch: main }\n");
    assert_eq!(code, "E0003", "{m}");
    let (code, _, _, m) = err("rollout: { canary: 1, on_error: halt }\n");
    assert_eq!(code, "E0003", "{m}");
}

#[test]
fn bad_refs_are_e0602() {
    for r in [
        "\"\"",
        "\"a b\"",
        "-main",
        "/main",
        "a..b",
        "\"a\\tb\"",
        "main/",
    ] {
        let (code, line, col, m) = err(&format!("verify: {{ workflow: v.yml, ref: {r} }}\n"));
        assert_eq!((code, line, col), ("E0602", 8, 33), "{r}: {m}");
    }
}

#[test]
fn bad_inputs_are_e0603_at_the_key_or_value() {
    let base = "verify:\n  workflow: v.yml\n  inputs:\n";
    let (code, line, col, m) = err(&format!("{base}    9lives: x\n"));
    assert_eq!((code, line, col), ("E0603", 11, 5), "{m}");
    let (code, line, col, m) = err(&format!("{base}    a: {{ b: c }}\n"));
    assert_eq!((code, line, col), ("E0603", 11, 8), "{m}");
    assert!(m.contains("a mapping") && m.contains("nested"), "{m}");
    let (code, line, col, m) = err(&format!("{base}    a: [1, 2]\n"));
    assert_eq!((code, line, col), ("E0603", 11, 8), "{m}");
    let (code, line, col, m) = err(&format!("{base}    a: ~\n"));
    assert_eq!((code, line, col), ("E0603", 11, 8), "{m}");
    let (code, line, col, m) = err("verify: { workflow: v.yml, inputs: [a, b] }\n");
    assert_eq!((code, line, col), ("E0603", 8, 36), "{m}");
}

#[test]
fn inputs_take_at_most_25_entries() {
    let entries = |n: usize| {
        (0..n)
            .map(|i| format!("i{i}: v"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let p = ok(&format!(
        "verify: {{ workflow: v.yml, inputs: {{ {} }} }}\n",
        entries(25)
    ));
    assert_eq!(verify(&p).inputs.len(), 25);
    let (code, line, col, m) = err(&format!(
        "verify: {{ workflow: v.yml, inputs: {{ {} }} }}\n",
        entries(26)
    ));
    assert_eq!((code, line, col), ("E0603", 8, 36), "{m}");
    assert!(m.contains("26") && m.contains("25"), "{m}");
}

#[test]
fn timeouts_are_durations_from_30s_to_6h() {
    for (t, secs) in [("30s", 30), ("6h", 21_600), ("360m", 21_600), ("1h", 3600)] {
        let p = ok(&format!("verify: {{ workflow: v.yml, timeout: {t} }}\n"));
        assert_eq!(verify(&p).timeout, Duration::from_secs(secs), "{t}");
    }
    for (t, code) in [
        ("29s", "E0604"),
        ("7h", "E0604"),
        ("1d", "E0604"),
        ("0s", "E0503"),
        ("15", "E0503"),
        ("fast", "E0503"),
    ] {
        let (c, line, col, m) = err(&format!("verify: {{ workflow: v.yml, timeout: {t} }}\n"));
        assert_eq!((c, line, col), (code, 8, 37), "{t}: {m}");
    }
    let (_, _, _, m) = err("verify: { workflow: v.yml, timeout: 7h }\n");
    assert!(m.contains("at most 6h"), "{m}");
}

#[test]
fn verify_repos_are_globs_and_never_an_empty_list() {
    let (code, line, col, m) = err("verify: { workflow: v.yml, repos: [] }\n");
    assert_eq!((code, line, col), ("E0605", 8, 35), "{m}");
    let (code, line, col, m) = err("verify: { workflow: v.yml, repos: [ok, \"a/b\"] }\n");
    assert_eq!((code, line, col), ("E0404", 8, 40), "{m}");
}

const ORG_SECRET: &str = "[{ org: acme, scope: organization, visibility: all }]";

#[test]
fn an_organization_secret_needs_verify_repos() {
    let text = policy_with(STORED, ORG_SECRET, "verify:\n  workflow: v.yml\n");
    let (code, line, col, m) = one(&text);
    assert_eq!((code, line, col), ("E0605", 9, 3), "{m}");
    assert!(m.contains("acme"), "{m}");
    // Beside repository targets too.
    let mixed = "[{ repo: acme/a }, { org: acme, scope: organization, visibility: private }]";
    let (code, ..) = one(&policy_with(STORED, mixed, "verify: { workflow: v.yml }\n"));
    assert_eq!(code, "E0605");
    let p = load(&policy_with(
        STORED,
        ORG_SECRET,
        "verify: { workflow: v.yml, repos: [\"payments-*\"] }\n",
    ))
    .expect("valid");
    assert_eq!(verify(&p).repos, vec!["payments-*".to_string()]);
    // A Dependabot organization secret is not read by workflow runs: no repos needed.
    let dependabot =
        "[{ repo: acme/a }, { org: acme, scope: organization, visibility: all, app: dependabot }]";
    load(&policy_with(
        STORED,
        dependabot,
        "verify: { workflow: v.yml }\n",
    ))
    .expect("valid");
}

#[test]
fn verify_needs_some_actions_target() {
    for targets in [
        "[{ repo: acme/a, app: dependabot }]",
        "[{ repo: acme/a, app: codespaces }, { org: acme, app: dependabot }]",
        "[{ org: acme, scope: organization, visibility: all, app: codespaces }]",
    ] {
        let text = policy_with(STORED, targets, "verify: { workflow: v.yml }\n");
        let (code, line, col, m) = one(&text);
        assert_eq!((code, line, col), ("E0606", 8, 9), "{targets}: {m}");
    }
    let mixed = "[{ repo: acme/a, app: dependabot }, { repo: acme/b }]";
    load(&policy_with(STORED, mixed, "verify: { workflow: v.yml }\n")).expect("valid");
}

#[test]
fn a_broken_target_does_not_also_fail_the_checks_against_targets() {
    let targets = "[{ repo: acme/a, app: dependabot }, { repo: bad }]";
    let d = load(&policy_with(
        STORED,
        targets,
        "verify: { workflow: v.yml }\n",
    ))
    .expect_err("refused");
    let codes: Vec<&str> = d.iter().map(|d| d.0).collect();
    assert_eq!(codes, ["E0403"]);
}

fn rollout(p: &Policy) -> &Rollout {
    p.rollout.as_ref().expect("rollout")
}

#[test]
fn canaries_are_counts_percentages_or_globs() {
    for (c, want) in [
        ("3", Canary::Count(3)),
        ("\"2\"", Canary::Count(2)),
        ("5%", Canary::Percent(5)),
        ("\"100%\"", Canary::Percent(100)),
        ("1%", Canary::Percent(1)),
        (
            "[payments-api, \"web-*\", \"!web-old\"]",
            Canary::Repos(vec![
                "payments-api".into(),
                "web-*".into(),
                "!web-old".into(),
            ]),
        ),
    ] {
        let p = ok(&format!("rollout: {{ canary: {c} }}\n"));
        assert_eq!(
            rollout(&p),
            &Rollout {
                canary: want,
                on_failure: OnFailure::Rollback
            },
            "{c}"
        );
        assert!(p.verify.is_none() && p.is_transactional());
    }
}

#[test]
fn bad_canaries_are_e0701_naming_the_forms() {
    for c in [
        "0", "-1", "\"0%\"", "150%", "\"%\"", "\"5.5%\"", "abc", "[]", "2.5", "true", "{ a: 1 }",
    ] {
        let (code, line, col, m) = err(&format!("rollout: {{ canary: {c} }}\n"));
        assert_eq!((code, line, col), ("E0701", 8, 20), "{c}: {m}");
        assert!(
            m.contains("count") && m.contains("percentage") && m.contains("globs"),
            "{c}: {m}"
        );
    }
    let (code, line, col, m) = err("rollout: { canary: [ok, [x]] }\n");
    assert_eq!((code, line, col), ("E0701", 8, 25), "{m}");
    let (code, line, col, m) = err("rollout: { canary: [ok, \"a/b\"] }\n");
    assert_eq!((code, line, col), ("E0404", 8, 25), "{m}");
}

#[test]
fn rollout_needs_a_canary_and_on_failure_is_rollback_or_halt() {
    let (code, line, col, m) = err("rollout:\n  on_failure: halt\n");
    assert_eq!((code, line, col), ("E0005", 9, 3), "{m}");
    let p = ok("rollout: { canary: 1, on_failure: halt }\n");
    assert_eq!(rollout(&p).on_failure, OnFailure::Halt);
    let p = ok("rollout: { canary: 1, on_failure: rollback }\n");
    assert_eq!(rollout(&p).on_failure, OnFailure::Rollback);
    let (code, line, col, m) = err("rollout: { canary: 1, on_failure: retry }\n");
    assert_eq!((code, line, col), ("E0007", 8, 35), "{m}");
}

const UNSTORED: &str = "generate: { length: 32 }";
const DYNAMIC: &str = "vault_read: { path: aws/creds/deploy }";

#[test]
fn a_rollback_of_a_value_stored_nowhere_is_e0702_where_the_rollback_comes_from() {
    for source in [UNSTORED, DYNAMIC] {
        // The default, with no rollout: at verify.
        let (code, line, col, m) = one(&policy_with(source, REPO, "verify: { workflow: v.yml }\n"));
        assert_eq!((code, line, col), ("E0702", 8, 9), "{m}");
        assert!(m.contains("on_failure: halt"), "{m}");
        // The default, with a rollout: at rollout.
        let (code, line, col, m) = one(&policy_with(
            source,
            REPO,
            "verify: { workflow: v.yml }\nrollout: { canary: 1 }\n",
        ));
        assert_eq!((code, line, col), ("E0702", 9, 10), "{m}");
        // Written: at on_failure.
        let (code, line, col, m) = one(&policy_with(
            source,
            REPO,
            "verify: { workflow: v.yml }\nrollout: { canary: 1, on_failure: rollback }\n",
        ));
        assert_eq!((code, line, col), ("E0702", 9, 35), "{m}");
        // halt is fine; so is a rollout that nothing verifies.
        let halt = "verify: { workflow: v.yml }\nrollout: { canary: 1, on_failure: halt }\n";
        load(&policy_with(source, REPO, halt)).expect("halt is allowed");
        load(&policy_with(source, REPO, "rollout: { canary: 1 }\n")).expect("no verify");
    }
    let (.., m) = one(&policy_with(
        UNSTORED,
        REPO,
        "verify: { workflow: v.yml }\n",
    ));
    assert!(m.contains("add store"), "{m}");
    let (.., m) = one(&policy_with(DYNAMIC, REPO, "verify: { workflow: v.yml }\n"));
    assert!(m.contains("lease") && !m.contains("add store"), "{m}");
    // vault_kv keeps every version: rollback is fine.
    let kv = "vault_kv: { mount: secret, path: ci/p, key: value }";
    load(&policy_with(kv, REPO, "verify: { workflow: v.yml }\n")).expect("kv rolls back");
}

#[test]
fn every_problem_of_verify_and_rollout_is_reported_at_once() {
    let d = load(&policy_with(
        UNSTORED,
        REPO,
        "verify: { workflow: a/b.yml, ref: -x, timeout: 1s, repos: [] }\nrollout: { canary: 0, on_failure: never }\n",
    ))
    .expect_err("refused");
    let codes: Vec<&str> = d.iter().map(|d| d.0).collect();
    assert_eq!(
        codes,
        ["E0601", "E0602", "E0604", "E0605", "E0701", "E0007"],
        "{d:#?}"
    );
}

#[test]
fn block_style_inputs_and_aliases_keep_their_written_text() {
    let p = ok("verify:\n  workflow: v.yml\n  inputs:\n    version: 1.10   # a comment\n    big: &n 1e3\n    again: *n\n    flag: true\n");
    let inputs = &verify(&p).inputs;
    assert_eq!(inputs["version"], "1.10");
    assert_eq!(inputs["big"], "1e3");
    assert_eq!(inputs["again"], "1e3");
    assert_eq!(inputs["flag"], "true");
}
