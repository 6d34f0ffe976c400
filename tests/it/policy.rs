//! Policy loading and validation: snapshots of the diagnostics for broken policies, and the
//! model built from valid ones (including the example policy of DESIGN.md, and policies
//! with `verify` and `rollout`), and `rotor validate` run on such folders.
//!
//! Snapshots live beside their inputs: `tests/data/policies/broken/<case>.yaml` is checked
//! against `<case>.expected`. Run `UPDATE_SNAPSHOTS=1 cargo test --test it policy` to rewrite
//! the `.expected` files after an intended change, then review the diff. A case whose first
//! line is `# allowed-sources: PATTERNS` is loaded with that operator allow-list.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rotor::policy::{
    load_dir, load_str, load_str_with, App, Cadence, Canary, Charset, Diagnostic, KvRef, OnFailure,
    Policy, RepoSelector, RepoVisibility, Rollout, Schedule, SourceRules, SourceSpec, TargetSpec,
    Verify, Visibility, WorkflowRef, CODES,
};

const DATA: &str = "tests/data/policies";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn updating() -> bool {
    std::env::var_os("UPDATE_SNAPSHOTS").is_some_and(|v| v == "1")
}

fn render(result: Result<Vec<Policy>, Vec<Diagnostic>>) -> String {
    match result {
        Ok(policies) => {
            let names: Vec<&str> = policies.iter().map(|p| p.name.as_str()).collect();
            format!("(valid: {})\n", names.join(", "))
        }
        Err(diags) => diags.iter().map(|d| format!("{d}\n")).collect(),
    }
}

/// Compare `actual` with the snapshot at `expected` (relative to the crate root), or rewrite
/// it when UPDATE_SNAPSHOTS=1. Returns a description of the mismatch, if any.
fn snapshot(expected: &Path, actual: &str) -> Option<String> {
    let full = root().join(expected);
    if updating() {
        std::fs::write(&full, actual)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", full.display()));
        return None;
    }
    let want = std::fs::read_to_string(&full).unwrap_or_default();
    (want != actual).then(|| format!("--- {}\n{}+++ actual\n{}", expected.display(), want, actual))
}

fn fail_on(mismatches: Vec<String>) {
    assert!(
        mismatches.is_empty(),
        "{} snapshot(s) differ:\n\n{}\nIf the new output is right: UPDATE_SNAPSHOTS=1 cargo test --test it policy",
        mismatches.len(),
        mismatches.join("\n")
    );
}

fn broken_cases() -> Vec<String> {
    let dir = root().join(DATA).join("broken");
    let mut cases: Vec<String> = std::fs::read_dir(&dir)
        .expect("broken cases folder")
        .filter_map(|e| {
            let name = e
                .expect("dir entry")
                .file_name()
                .into_string()
                .expect("utf-8 name");
            name.strip_suffix(".yaml").map(str::to_string)
        })
        .collect();
    cases.sort();
    cases
}

#[test]
fn every_broken_policy_reports_exactly_its_snapshot_diagnostics() {
    let cases = broken_cases();
    assert!(cases.len() >= 20, "only {} broken cases found", cases.len());
    let mut mismatches = Vec::new();
    for case in &cases {
        let rel = PathBuf::from(format!("{DATA}/broken/{case}.yaml"));
        let text = std::fs::read_to_string(root().join(&rel)).expect("case text");
        // A first line `# allowed-sources: ...` sets the operator's allow-list for the case.
        let rules = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# allowed-sources:"))
            .map(|spec| SourceRules::from_spec(spec).expect("a valid allow-list"))
            .unwrap_or_default();
        let result = load_str_with(&rel, &text, &rules);
        if result.is_ok() {
            mismatches.push(format!("{case}: loaded without any diagnostic\n"));
            continue;
        }
        let expected = PathBuf::from(format!("{DATA}/broken/{case}.expected"));
        mismatches.extend(snapshot(&expected, &render(result)));
    }
    fail_on(mismatches);
}

#[test]
fn every_code_is_exercised_by_some_snapshot() {
    if updating() {
        // The snapshot tests are rewriting the files right now; check on the next plain run.
        return;
    }
    let mut seen = BTreeSet::new();
    let mut stack = vec![root().join(DATA)];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("data folder") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "expected") {
                let text = std::fs::read_to_string(&path).expect("snapshot text");
                for (code, _) in CODES {
                    if text.contains(&format!(" {code} ")) {
                        seen.insert(*code);
                    }
                }
            }
        }
    }
    let missing: Vec<&str> = CODES
        .iter()
        .map(|(c, _)| *c)
        .filter(|c| !seen.contains(c))
        .collect();
    assert!(
        missing.is_empty(),
        "codes with no snapshot showing them: {missing:?}"
    );
}

#[test]
fn three_broken_files_report_all_their_errors_at_once_in_order() {
    let dir = PathBuf::from(format!("{DATA}/three-broken"));
    let diags = load_dir(&dir).expect_err("the folder is broken");
    let actual: String = diags.iter().map(|d| format!("{d}\n")).collect();
    fail_on(
        snapshot(Path::new(&format!("{DATA}/three-broken.expected")), &actual)
            .into_iter()
            .collect(),
    );

    let mut sorted = diags.clone();
    Diagnostic::sort(&mut sorted);
    assert_eq!(diags, sorted, "diagnostics are not sorted");
    let files: BTreeSet<String> = diags
        .iter()
        .map(|d| {
            d.file
                .file_name()
                .expect("file name")
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(
        files,
        ["a.yaml", "b.yml", "c.yaml"].map(String::from).into(),
        "every broken file reports, and nothing else (not nested/ nor notes.txt)"
    );
}

#[test]
fn a_missing_folder_is_one_e0000_diagnostic() {
    let dir = PathBuf::from(format!("{DATA}/no-such-folder"));
    let diags = load_dir(&dir).expect_err("missing folder");
    let actual: String = diags.iter().map(|d| format!("{d}\n")).collect();
    fail_on(
        snapshot(
            Path::new(&format!("{DATA}/missing-folder.expected")),
            &actual,
        )
        .into_iter()
        .collect(),
    );
}

#[test]
fn a_folder_without_policy_files_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("README.md"), "no policies here").expect("write");
    let diags = load_dir(dir.path()).expect_err("empty folder");
    assert_eq!(diags.len(), 1);
    assert_eq!(diags[0].code, "E0006");
    assert_eq!((diags[0].line, diags[0].col), (0, 0));
}

#[test]
fn a_file_that_is_not_utf8_is_reported_and_the_others_still_checked() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("a.yaml"), b"name: \xff\xfe\n").expect("write");
    std::fs::write(dir.path().join("b.yaml"), "version: 3\n").expect("write");
    let diags = load_dir(dir.path()).expect_err("broken folder");
    let codes: Vec<(&str, String)> = diags
        .iter()
        .map(|d| {
            (
                d.code,
                d.file
                    .file_name()
                    .expect("name")
                    .to_string_lossy()
                    .into_owned(),
            )
        })
        .collect();
    assert_eq!(codes[0], ("E0001", "a.yaml".to_string()));
    assert!(
        codes.contains(&("E0101", "b.yaml".to_string())),
        "{codes:?}"
    );
}

fn valid_set() -> Vec<Policy> {
    load_dir(&PathBuf::from(format!("{DATA}/valid")))
        .unwrap_or_else(|diags| panic!("valid policies refused:\n{}", render(Err(diags))))
        .policies
}

fn policy<'a>(set: &'a [Policy], name: &str) -> &'a Policy {
    set.iter()
        .find(|p| p.name == name)
        .unwrap_or_else(|| panic!("no policy {name}"))
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn secrets(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn valid_policies_load_sorted_by_name_from_yaml_and_yml_files() {
    let names: Vec<String> = valid_set().into_iter().map(|p| p.name).collect();
    assert_eq!(
        names,
        [
            "aws-deploy",
            "deploy-creds-canary",
            "npm-token",
            "payments-canary",
            "payments-deploy-token",
            "preview-tokens",
            "signing-key",
            "webhook-secret"
        ]
    );
}

#[test]
fn the_design_example_policy_loads_as_written() {
    let set = valid_set();
    let p = policy(&set, "payments-deploy-token");
    assert_eq!(
        p.description.as_deref(),
        Some("Deploy token used by the payments services")
    );
    assert_eq!(p.owner.as_deref(), Some("security@example.com"));
    assert_eq!(
        p.file,
        PathBuf::from(format!("{DATA}/valid/payments-deploy-token.yaml"))
    );
    assert_eq!(
        p.source,
        SourceSpec::Generate {
            length: 40,
            charset: Charset::Alphanumeric,
            prefix: None,
            store: Some(KvRef {
                mount: "secret".into(),
                path: "ci/payments/deploy-token".into(),
                key: Some("value".into()),
            }),
        }
    );
    assert_eq!(p.secrets, secrets(&[("DEPLOY_TOKEN", "value")]));
    assert_eq!(
        p.targets,
        vec![
            TargetSpec::OrgRepos {
                org: "acme".into(),
                selector: RepoSelector {
                    include: strings(&["payments-*"]),
                    exclude: strings(&["payments-legacy"]),
                    topics: strings(&["pci"]),
                    ..RepoSelector::default()
                },
                environment: None,
                app: App::Actions,
            },
            TargetSpec::Repo {
                owner: "acme".into(),
                repo: "payments-api".into(),
                environment: Some("production".into()),
                app: App::Actions,
            },
            TargetSpec::OrgSecret {
                org: "acme".into(),
                visibility: Visibility::Selected,
                selector: Some(RepoSelector {
                    include: strings(&["payments-*"]),
                    ..RepoSelector::default()
                }),
                app: App::Actions,
            },
        ]
    );
    assert_eq!(
        p.schedule,
        Some(Schedule {
            cadence: Some(Cadence::Cron("0 3 * * MON".into())),
            timezone: "UTC".into(),
            jitter: Some(Duration::from_secs(600)),
            max_age: Some(Duration::from_secs(35 * 86_400)),
        })
    );
}

#[test]
fn vault_kv_org_selection_and_every_schedule_load() {
    let set = valid_set();
    let p = policy(&set, "npm-token");
    assert_eq!(p.description, None);
    assert_eq!(
        p.source,
        SourceSpec::VaultKv(KvRef {
            mount: "secret".into(),
            path: "ci/npm".into(),
            key: Some("token".into())
        })
    );
    assert_eq!(p.secrets, secrets(&[("NPM_TOKEN", "token")]));
    assert_eq!(
        p.targets,
        vec![
            TargetSpec::OrgRepos {
                org: "acme".into(),
                selector: RepoSelector {
                    include: strings(&["web-*", "api-*"]),
                    exclude: strings(&["web-sandbox", "api-old-*"]),
                    topics: strings(&["javascript", "published"]),
                    visibility: vec![RepoVisibility::Private, RepoVisibility::Internal],
                    include_archived: true,
                    include_disabled: true,
                },
                environment: None,
                app: App::Dependabot,
            },
            TargetSpec::OrgSecret {
                org: "acme".into(),
                visibility: Visibility::Private,
                selector: None,
                app: App::Codespaces,
            },
        ]
    );
    assert_eq!(
        p.schedule,
        Some(Schedule {
            cadence: Some(Cadence::Every(Duration::from_secs(30 * 86_400))),
            timezone: "Europe/Berlin".into(),
            jitter: None,
            max_age: Some(Duration::from_secs(45 * 86_400)),
        })
    );
}

#[test]
fn a_list_file_holds_vault_read_custom_generate_and_schedule_variants() {
    let set = valid_set();

    let aws = policy(&set, "aws-deploy");
    assert_eq!(
        aws.source,
        SourceSpec::VaultRead {
            path: "aws/creds/deploy".into(),
            params: Default::default(),
        }
    );
    assert_eq!(
        aws.secrets,
        secrets(&[
            ("AWS_ACCESS_KEY_ID", "access_key"),
            ("AWS_SECRET_ACCESS_KEY", "secret_key")
        ])
    );
    assert_eq!(
        aws.targets,
        vec![
            TargetSpec::Repo {
                owner: "acme".into(),
                repo: "infra".into(),
                environment: Some("production".into()),
                app: App::Actions,
            },
            TargetSpec::OrgRepos {
                org: "acme".into(),
                selector: RepoSelector::default(),
                environment: Some("staging".into()),
                app: App::Actions,
            },
        ]
    );
    assert_eq!(
        aws.schedule,
        Some(Schedule {
            cadence: Some(Cadence::Cron("30 0 */6 * * *".into())),
            timezone: "UTC".into(),
            jitter: Some(Duration::from_secs(90)),
            max_age: None,
        })
    );

    let signing = policy(&set, "signing-key");
    assert_eq!(
        signing.source,
        SourceSpec::Generate {
            length: 64,
            charset: Charset::Custom("ABCDEFGHJKLMNPQRSTUVWXYZ23456789".into()),
            prefix: Some("sk_".into()),
            store: None,
        }
    );
    assert_eq!(
        signing.targets,
        vec![TargetSpec::OrgSecret {
            org: "acme".into(),
            visibility: Visibility::All,
            selector: None,
            app: App::Actions
        }]
    );
    assert_eq!(
        signing.schedule,
        Some(Schedule {
            cadence: None,
            timezone: "UTC".into(),
            jitter: None,
            max_age: Some(Duration::from_secs(43_200))
        })
    );

    let hook = policy(&set, "webhook-secret");
    assert_eq!(
        hook.source,
        SourceSpec::Generate {
            length: 32,
            charset: Charset::Hex,
            prefix: None,
            store: None
        }
    );
    assert_eq!(hook.schedule, None);
    assert_eq!(
        hook.targets,
        vec![TargetSpec::Repo {
            owner: "acme".into(),
            repo: "hooks".into(),
            environment: None,
            app: App::Actions
        }]
    );
}

#[test]
fn load_str_returns_a_files_policies_in_file_order() {
    let text = std::fs::read_to_string(root().join(DATA).join("valid/ci-credentials.yaml"))
        .expect("fixture");
    let policies = load_str(Path::new("ci-credentials.yaml"), &text).expect("valid");
    let names: Vec<&str> = policies.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["aws-deploy", "signing-key", "webhook-secret"]);
}

#[test]
fn a_policy_name_used_in_two_files_is_reported_in_the_later_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let body = "version: 1\nname: same\nsource: { generate: { length: 32 } }\nsecrets: { A: value }\ntargets: [{ repo: acme/a }]\n";
    std::fs::write(dir.path().join("one.yaml"), body).expect("write");
    std::fs::write(
        dir.path().join("two.yaml"),
        body.replace("A: value", "B: value"),
    )
    .expect("write");
    let diags = load_dir(dir.path()).expect_err("duplicate names");
    assert_eq!(diags.len(), 1, "{diags:?}");
    assert_eq!(diags[0].code, "E0103");
    assert_eq!(diags[0].file, dir.path().join("two.yaml"));
    assert!(
        diags[0].message.contains("one.yaml:2:7"),
        "{}",
        diags[0].message
    );
}

#[test]
fn many_aliases_are_refused_by_the_parser_budget() {
    let mut text = String::from(
        "version: 1\nname: bomb\nsource: { vault_read: { path: a/b } }\nsecrets:\n  S0: &f field\n",
    );
    for i in 1..1000 {
        text.push_str(&format!("  S{i}: *f\n"));
    }
    let diags = load_str(Path::new("bomb.yaml"), &text).expect_err("too many aliases");
    assert_eq!(diags.len(), 1, "{diags:?}");
    assert_eq!(diags[0].code, "E0001", "{}", diags[0]);
    assert!(diags[0].message.contains("limits"), "{}", diags[0]);
}

#[test]
fn aliases_of_a_large_value_are_refused_by_the_parser_budget() {
    let big = "x".repeat(64 * 1024);
    let mut text = format!("version: 1\nname: big\nsource: {{ vault_read: {{ path: a/b }} }}\nsecrets:\n  S0: &big \"{big}\"\n");
    for i in 1..40 {
        text.push_str(&format!("  S{i}: *big\n"));
    }
    let diags = load_str(Path::new("big.yaml"), &text).expect_err("anchor too large");
    assert_eq!(diags.len(), 1, "{diags:?}");
    assert_eq!(diags[0].code, "E0001", "{}", diags[0]);
    assert!(diags[0].message.contains("limits"), "{}", diags[0]);
}

#[test]
fn verify_and_rollout_load_into_the_policy() {
    let set = valid_set();
    let p = policy(&set, "payments-canary");
    assert_eq!(
        p.verify,
        Some(Verify {
            workflow: WorkflowRef::File("verify-secrets.yml".into()),
            git_ref: Some("main".into()),
            inputs: secrets(&[
                ("attempts", "3"),
                ("reason", "rotation"),
                ("strict", "true"),
                ("version", "1.10"),
            ]),
            timeout: Duration::from_secs(20 * 60),
            repos: strings(&["payments-*", "billing", "!payments-legacy"]),
        })
    );
    assert_eq!(
        p.rollout,
        Some(Rollout {
            canary: Canary::Repos(strings(&["payments-api"])),
            on_failure: OnFailure::Rollback,
        })
    );
    assert!(p.is_transactional());

    let dynamic = policy(&set, "deploy-creds-canary");
    let v = dynamic.verify.as_ref().expect("verify");
    assert_eq!(v.workflow, WorkflowRef::Id(161_335));
    assert_eq!(
        (v.git_ref.as_deref(), v.timeout),
        (None, Duration::from_secs(30))
    );
    assert!(v.inputs.is_empty() && v.repos.is_empty());
    assert_eq!(
        dynamic.rollout,
        Some(Rollout {
            canary: Canary::Percent(5),
            on_failure: OnFailure::Halt,
        })
    );

    // A rollout without verify: canaries first, nothing can fail them.
    let preview = policy(&set, "preview-tokens");
    assert_eq!(preview.verify, None);
    assert_eq!(
        preview.rollout,
        Some(Rollout {
            canary: Canary::Count(2),
            on_failure: OnFailure::Rollback,
        })
    );

    for name in ["payments-deploy-token", "npm-token", "aws-deploy"] {
        let p = policy(&set, name);
        assert!(p.verify.is_none() && p.rollout.is_none(), "{name}");
    }
}

/// `rotor validate --policies DIR` with nothing else in its environment.
fn rotor_validate(dir: &Path) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rotor"))
        .arg("validate")
        .arg("--policies")
        .arg(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .output()
        .expect("run the rotor binary");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn rotor_validate_accepts_the_verify_and_rollout_examples() {
    let dir = tempfile::tempdir().expect("temp dir");
    for f in ["payments-canary.yaml", "vault-read-halt.yml"] {
        std::fs::copy(root().join(DATA).join("valid").join(f), dir.path().join(f))
            .expect("copy fixture");
    }
    let (code, stdout, stderr) = rotor_validate(dir.path());
    assert_eq!(code, 0, "stdout: {stdout}\nstderr: {stderr}");
    assert!(stdout.contains("3 policies valid"), "{stdout}");
}

#[test]
fn rotor_validate_reports_verify_and_rollout_problems_with_positions_and_exits_2() {
    let dir = tempfile::tempdir().expect("temp dir");
    let policy = "version: 1\nname: p\nsource: { generate: { length: 32 } }\nsecrets: { T: value }\ntargets: [{ repo: acme/a }]\n";
    std::fs::write(
        dir.path().join("a.yaml"),
        format!("{policy}verify:\n  workflow: checks/verify.yml\n  timeout: 8h\nrollout:\n  canary: 0%\n  on_failure: halt\n"),
    )
    .expect("write");
    std::fs::write(
        dir.path().join("b.yaml"),
        format!(
            "{}verify: {{ workflow: verify.yml, inputs: {{ a: [1] }} }}\n",
            policy
                .replace("name: p", "name: q")
                .replace("acme/a", "acme/b")
        ),
    )
    .expect("write");
    let (code, stdout, stderr) = rotor_validate(dir.path());
    assert_eq!(code, 2, "stdout: {stdout}\nstderr: {stderr}");
    let a = dir.path().join("a.yaml").display().to_string();
    let b = dir.path().join("b.yaml").display().to_string();
    for want in [
        format!("{a}:7:13: E0601 "),
        format!("{a}:8:12: E0604 "),
        format!("{a}:10:11: E0701 "),
        format!("{b}:6:9: E0702 "),
        format!("{b}:6:46: E0603 "),
    ] {
        assert!(stderr.contains(&want), "no {want:?} in:\n{stderr}");
    }
    assert!(stderr.contains("5 error(s)"), "{stderr}");
}
