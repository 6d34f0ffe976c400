//! Fleet scale through the real `rotor` binary and the emulator: GitHub's pauses and budgets
//! are waited out rather than failed, injected faults converge without pushing two versions,
//! a key rotated mid-run recovers, and a steady rotation costs one request per secret.

use std::sync::Arc;
use std::time::Duration;

use github_emulator::App;
use github_emulator::Scope as SecretScope;
use github_emulator::{Emulator, FaultKind, FaultRule, FleetSpec, LimitsSpec, OrgSpec, RepoSpec};

use crate::util::bao::Bao;
use crate::util::emu;
use crate::util::rotor::Workspace;

const PUT: &str = "PUT /repos/{owner}/{repo}/actions/secrets/{secret_name}";
const KEY: &str = "GET /repos/{owner}/{repo}/actions/secrets/public-key";
const LIST: &str = "GET /orgs/{org}/repos";
const SECRETS: &str = "GET /repos/{owner}/{repo}/actions/secrets";

/// A policy whose value lives only in this run (no Vault needed).
const EPHEMERAL: &str = r#"
version: 1
name: token
source:
  generate: { length: 32, charset: alphanumeric }
secrets:
  TOKEN: value
targets:
  - org: acme
    repos: ["svc-*"]
"#;

/// The same, stored in Vault: a target that fails is retried with the same version.
const STORED: &str = r#"
version: 1
name: token
source:
  generate:
    length: 32
    charset: alphanumeric
    store:
      vault_kv: { mount: secret, path: ci/token }
secrets:
  TOKEN: value
targets:
  - org: acme
    repos: ["svc-*"]
"#;

fn svc(i: usize) -> String {
    format!("svc-{i:04}")
}

fn scope(i: usize) -> SecretScope {
    SecretScope::Repo {
        owner: "acme".into(),
        repo: svc(i),
        app: App::Actions,
    }
}

/// `acme` with `n` plain repositories (none archived).
fn fleet(n: usize) -> FleetSpec {
    FleetSpec {
        orgs: vec![OrgSpec {
            name: "acme".into(),
            id: None,
            repos: (1..=n).map(|i| RepoSpec::new(&svc(i))).collect(),
        }],
        ..FleetSpec::default()
    }
}

/// Every repository holds one and the same value for TOKEN; returns it.
fn one_value_everywhere(emu: &Emulator, n: usize) -> String {
    let first = emu
        .decrypted(&scope(1), "TOKEN")
        .expect("svc-0001 holds a value");
    for i in 1..=n {
        let got = emu.decrypted(&scope(i), "TOKEN");
        assert_eq!(
            got.as_deref(),
            Some(first.as_str()),
            "{} holds another value",
            svc(i)
        );
    }
    first
}

fn workspace(handle: &emu::ServerHandle, env: &[(&str, &str)]) -> Workspace {
    let mut ws = Workspace::new(&handle.url, emu::DEFAULT_TOKEN, None);
    for (k, v) in env {
        ws.extra_env.push((k.to_string(), v.to_string()));
    }
    ws
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_is_honoured_and_the_emulator_records_when_the_retry_came() {
    let (emu, handle) = emu::start(fleet(5)).await;
    let path = "/repos/acme/svc-0003/actions/secrets/TOKEN";
    emu.add_fault(
        FaultRule::new(path, 429)
            .method("PUT")
            .message("You have exceeded a secondary rate limit. Please wait a few minutes before you try again.")
            .retry_after(1)
            .times(1),
    );
    let ws = workspace(&handle, &[]);
    ws.write_policy("token.yaml", EPHEMERAL);
    ws.run(&["apply"]).await.expect_code(0);
    one_value_everywhere(&emu, 5);

    let puts: Vec<_> = emu
        .requests()
        .into_iter()
        .filter(|r| r.method == "PUT" && r.path == path)
        .collect();
    assert_eq!(puts.len(), 2, "{puts:?}");
    assert_eq!((puts[0].status, puts[1].status), (429, 201));
    let gap = puts[1].at - puts[0].at;
    assert!(
        gap >= Duration::from_secs(1) && gap < Duration::from_secs(3),
        "the retry came {gap:?} after the 429 with retry-after: 1"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_percent_faults_over_a_thousand_repositories_converge_without_two_versions() {
    const N: usize = 1_000;
    let bao = Bao::start();
    let (emu, handle) = emu::start(fleet(N)).await;
    let secrets = "/actions/secrets";
    // Five kinds of trouble, about 4.5 % each: about 20 % of secret requests are hit.
    emu.add_fault(FaultRule::new(secrets, 500).rate(0.045, 11));
    emu.add_fault(
        FaultRule::new(secrets, 502)
            .method("PUT")
            .kind(FaultKind::Applied)
            .rate(0.045, 12),
    );
    emu.add_fault(FaultRule::new(secrets, 503).rate(0.045, 13));
    emu.add_fault(
        FaultRule::new(secrets, 500)
            .kind(FaultKind::Close)
            .rate(0.045, 14),
    );
    emu.add_fault(
        FaultRule::new(secrets, 500)
            .stall(Duration::from_millis(1_500))
            .rate(0.045, 15),
    );
    let mut ws = workspace(
        &handle,
        &[
            ("ROTOR_GITHUB_LIMITS", "off"),
            ("ROTOR_GITHUB_TIMEOUT", "1s"),
        ],
    );
    ws.vault = Some((bao.addr.clone(), bao.token.clone()));
    ws.write_policy("token.yaml", STORED);

    // Retries absorb nearly every fault; a target whose retries all failed converges on
    // the next apply, with the same version.
    let mut runs = 0;
    loop {
        runs += 1;
        let run = ws.run(&["apply"]).await;
        if run.code == 0 {
            break;
        }
        assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
        assert!(
            runs < 3,
            "not converged after {runs} applies:\n{}",
            run.stdout
        );
    }

    let (version, data) = bao.kv_get("secret", "ci/token").await;
    assert_eq!(version, 1, "faults never cause another rotation");
    let value = one_value_everywhere(&emu, N);
    assert_eq!(data["value"].as_str(), Some(value.as_str()));
    for i in 1..=N {
        let info = emu.secret_info(&scope(i), "TOKEN").expect("secret exists");
        assert_eq!(
            info.value_changes,
            1,
            "{} got more than one version",
            svc(i)
        );
    }

    let c = emu.counters();
    let secret_requests = c.route(PUT) + c.route(KEY);
    let faulted: u64 = [500, 502, 503, 0]
        .iter()
        .map(|s| c.route_status(PUT, *s) + c.route_status(KEY, *s))
        .sum();
    let share = faulted as f64 / secret_requests as f64;
    assert!(
        (0.12..0.25).contains(&share),
        "{faulted} of {secret_requests} answered with a fault"
    );
    assert!(
        c.route_status(PUT, 0) > 0 && c.route_status(PUT, 502) > 0,
        "{c:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_rotated_on_the_emulator_in_the_middle_of_a_run_recovers() {
    const N: usize = 200;
    let (emu, handle) = emu::start(fleet(N)).await;
    emu.set_latency(Duration::from_millis(10));
    let ws = Arc::new(workspace(
        &handle,
        &[("ROTOR_CONCURRENCY", "10"), ("ROTOR_GITHUB_LIMITS", "off")],
    ));
    ws.write_policy("token.yaml", EPHEMERAL);
    let run = {
        let ws = Arc::clone(&ws);
        tokio::spawn(async move { ws.run(&["apply"]).await })
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while emu.counters().route(PUT) < 20 {
        assert!(
            std::time::Instant::now() < deadline,
            "apply never started pushing"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    for i in 1..=N {
        emu.rotate_key(&scope(i)).expect("the scope exists");
    }
    run.await.expect("the run finishes").expect_code(0);

    one_value_everywhere(&emu, N);
    let c = emu.counters();
    assert!(
        c.route_status(PUT, 422) > 0,
        "some PUTs used the old key: {c:?}"
    );
    // Values pushed before the rotation stay sealed to the old key (GitHub keeps them);
    // every later one uses the new key.
    let current = (1..=N)
        .filter(|i| {
            let key = emu.public_key(&scope(*i)).expect("key").key_id;
            emu.secret_info(&scope(*i), "TOKEN").expect("secret").key_id == key
        })
        .count();
    assert!(
        current > N / 2,
        "only {current} of {N} pushed with the new key"
    );
    // The ledger learned the new keys of the targets refused with 422. The targets pushed
    // before the rotation hold a key in the ledger that rotor could not know was replaced:
    // the next rotation learns each of those from one 422, and nothing else is fetched.
    let stale = (N - current) as u64;
    emu.reset_counters();
    ws.run(&["rotate", "token"]).await.expect_code(0);
    one_value_everywhere(&emu, N);
    let c = emu.counters();
    assert_eq!((c.route(KEY), c.route_status(PUT, 422)), (stale, stale));
    emu.reset_counters();
    ws.run(&["rotate", "token"]).await.expect_code(0);
    let c = emu.counters();
    assert_eq!(
        (c.route(KEY), c.route(PUT)),
        (0, N as u64),
        "every key is current now"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_primary_budget_spent_mid_run_waits_for_the_reset_instead_of_failing() {
    const N: usize = 30;
    let mut spec = fleet(N);
    // 25 requests an "hour" that lasts 2 s: the run needs 91 requests (the listing, then per
    // repository its secrets, its key and the PUT), four windows.
    spec.limits = LimitsSpec {
        requests_per_hour: 25,
        time_scale: 1_800,
        ..LimitsSpec::default()
    };
    let (emu, handle) = emu::start(spec).await;
    let ws = workspace(&handle, &[("ROTOR_TIME_SCALE", "1800")]);
    ws.write_policy("token.yaml", EPHEMERAL);
    let run = ws.run(&["apply"]).await.expect_code(0);
    assert!(
        run.stdout.contains(&format!("{N} pushed")),
        "{}",
        run.stdout
    );
    one_value_everywhere(&emu, N);

    let log = emu.requests();
    assert_eq!(
        log.len(),
        1 + 3 * N,
        "no request was refused and sent again"
    );
    let span = log.last().expect("requests").at - log[0].at;
    assert!(
        span >= Duration::from_secs(2),
        "91 requests at 25 a window took only {span:?}"
    );
    assert_eq!(
        emu.counters().primary_limited,
        0,
        "rotor waited instead of being refused"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_steady_rotation_costs_one_request_per_secret_and_a_free_304_per_listing_page() {
    // Small enough for GitHub's default budget: 120 reads and 120 writes are 722 points.
    const N: usize = 120;
    let (emu, handle) = emu::start(fleet(N)).await;
    let ws = workspace(&handle, &[]);
    // takeover: rotor need not look at whose the secrets are before it writes them.
    ws.write_policy("token.yaml", &format!("{EPHEMERAL}takeover: true\n"));
    ws.run(&["apply"]).await.expect_code(0);
    let c = emu.counters();
    assert_eq!(
        (c.route(KEY), c.route(PUT), c.route(LIST)),
        (N as u64, N as u64, 2)
    );

    emu.reset_counters();
    ws.run(&["rotate", "token"]).await.expect_code(0);
    one_value_everywhere(&emu, N);
    let c = emu.counters();
    assert_eq!(c.route(KEY), 0, "public keys come from the ledger");
    assert_eq!(c.route(PUT), N as u64);
    assert_eq!(
        c.route_status(LIST, 304),
        2,
        "both listing pages unchanged: {c:?}"
    );
    assert_eq!(c.total, N as u64 + 2);
    // 304s are free of the primary budget: exactly one charged request per secret.
    let charged = c.total - c.by_status.get(&304).copied().unwrap_or(0);
    assert_eq!(charged, N as u64);

    // Without takeover each repository's secrets are listed first (whose are they?): one
    // more request per target.
    ws.write_policy("token.yaml", EPHEMERAL);
    emu.reset_counters();
    ws.run(&["rotate", "token"]).await.expect_code(0);
    one_value_everywhere(&emu, N);
    let c = emu.counters();
    assert_eq!(
        (c.route(PUT), c.route(SECRETS), c.route(KEY)),
        (N as u64, N as u64, 0)
    );
    assert_eq!(c.total, 2 * N as u64 + 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_listing_asks_for_every_page_after_the_first_at_once() {
    use github_emulator::DEFAULT_TOKEN;
    use rotor::github::{Client, GitHubConfig};
    // Six pages of 100; each answer takes 300 ms, so pages read one after another would
    // arrive at least 300 ms apart.
    const N: usize = 550;
    let latency = Duration::from_millis(300);
    let emu = Emulator::new(fleet(N)).with_latency(latency);
    let handle = emu
        .serve("127.0.0.1:0".parse().expect("loopback"))
        .await
        .expect("serve");
    let client = Client::new(GitHubConfig {
        api_url: handle.url.clone(),
        token: Some(DEFAULT_TOKEN.to_string().into()),
        ..GitHubConfig::default()
    })
    .expect("client");

    let repos = client.list_org_repos("acme").await.expect("listing");
    let mut names: Vec<String> = repos.iter().map(|r| r.name.clone()).collect();
    names.sort();
    assert_eq!(
        names,
        (1..=N).map(svc).collect::<Vec<_>>(),
        "every repository, once"
    );
    let mut log: Vec<_> = emu
        .requests()
        .into_iter()
        .filter(|r| r.path == "/orgs/acme/repos")
        .collect();
    log.sort_by_key(|r| r.at);
    assert_eq!(log.len(), 6, "one request per page");
    let after_first = &log[1..];
    assert!(
        after_first[0].at >= log[0].at + latency,
        "page 1 is read first: its Link header names the last page"
    );
    let spread = after_first[after_first.len() - 1].at - after_first[0].at;
    assert!(
        spread < latency,
        "pages 2 to 6 were asked for together, not one after another (spread {spread:?})"
    );

    // Read again: every page at once from the cached links, each a free 304.
    emu.reset_counters();
    let again = client.list_org_repos("acme").await.expect("listing again");
    assert_eq!(again.len(), N);
    assert_eq!(emu.counters().route_status(LIST, 304), 6);
    handle.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_limits_off_requests_in_flight_follow_concurrency_past_100_and_with_limits_on_stop_at_100(
) {
    const N: usize = 300;
    // A GitHub Enterprise Server with rate limiting off; latency keeps every request in
    // flight long enough to be counted side by side.
    let mut spec = fleet(N);
    spec.limits = LimitsSpec::off();
    let (emu, handle) = emu::start(spec).await;
    emu.set_latency(Duration::from_millis(200));
    let ws = workspace(&handle, &[]);
    ws.write_policy("token.yaml", EPHEMERAL);
    ws.run(&["apply", "--github-limits", "off", "--concurrency", "250"])
        .await
        .expect_code(0);
    one_value_everywhere(&emu, N);
    let off = emu.counters().peak_concurrent;
    assert!(
        off > 150 && off <= 250,
        "limits off, --concurrency 250: {off} requests were in flight at the peak"
    );

    emu.reset_counters();
    ws.run(&[
        "rotate",
        "token",
        "--points-per-minute",
        "0",
        "--concurrency",
        "250",
    ])
    .await
    .expect_code(0);
    one_value_everywhere(&emu, N);
    let on = emu.counters().peak_concurrent;
    assert!(
        on <= 100,
        "limits on: the governor keeps to GitHub's 100 in flight whatever --concurrency says ({on})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_apply_fetches_keys_while_later_listing_pages_are_still_arriving() {
    // Three pages of 100; each answer takes 300 ms.
    const N: usize = 250;
    let latency = Duration::from_millis(300);
    let (emu, handle) = emu::start(fleet(N)).await;
    emu.set_latency(latency);
    let ws = workspace(&handle, &[("ROTOR_GITHUB_LIMITS", "off")]);
    ws.write_policy("token.yaml", EPHEMERAL);

    // `rotor plan` fetches nothing ahead.
    ws.run(&["plan"]).await.expect_code(0);
    assert_eq!(emu.counters().route(KEY), 0, "plan reads no public key");
    // Forget the listing plan cached, so apply's listing is a first one again.
    std::fs::remove_file(ws.state().join("listings.json")).expect("plan cached the listing");
    emu.reset_counters();

    ws.run(&["apply"]).await.expect_code(0);
    one_value_everywhere(&emu, N);
    let c = emu.counters();
    assert_eq!(
        (c.route(KEY), c.route(PUT), c.route(LIST)),
        (N as u64, N as u64, 3),
        "one key per repository, fetched once, however early"
    );
    let log = emu.requests();
    let last_page = log
        .iter()
        .filter(|r| r.path == "/orgs/acme/repos")
        .map(|r| r.at)
        .max()
        .expect("listed");
    let first_key = log
        .iter()
        .filter(|r| r.path.ends_with("/public-key"))
        .map(|r| r.at)
        .min()
        .expect("keys fetched");
    assert!(
        first_key < last_page + latency,
        "the first key was asked for {:?} after the last page was, before that page's answer",
        first_key.saturating_sub(last_page)
    );
}
