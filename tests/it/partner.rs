//! Partner provisioning end to end: the emulator sends signed webhooks to `rotor run`,
//! which provisions a new repository within seconds with a targeted pass; forged
//! deliveries change nothing; the control API rotates and reports while the daemon runs.

use std::time::{Duration, Instant};

use github_emulator::{App, FleetSpec, RepoSpec, Scope};
use serde_json::{json, Value};

use crate::util::bao::Bao;
use crate::util::daemon::{value, Daemon};
use crate::util::emu;
use crate::util::rotor::Workspace;

const SECRET: &str = "It's a Secret to Everybody";

fn repo(owner: &str, name: &str) -> Scope {
    Scope::Repo {
        owner: owner.into(),
        repo: name.into(),
        app: App::Actions,
    }
}

/// A generated value stored in Vault at `secret/{path}`, pushed as PARTNER_TOKEN to the
/// repositories of `acme` matching `glob`.
fn partner_policy(name: &str, path: &str, glob: &str) -> String {
    format!(
        "version: 1\nname: {name}\nsource:\n  generate:\n    length: 40\n    store:\n      vault_kv: {{ mount: secret, path: {path} }}\nsecrets:\n  PARTNER_TOKEN: value\ntargets:\n  - org: acme\n    repos: [\"{glob}\"]\nschedule:\n  every: 30d\n"
    )
}

/// A workspace whose daemon receives webhooks (secret in a file) and serves the API.
fn webhook_ws(url: &str, bao: &Bao) -> Workspace {
    let mut ws = Workspace::new(
        url,
        emu::DEFAULT_TOKEN,
        Some((bao.addr.clone(), bao.token.clone())),
    );
    let secret = ws.path().join("webhook-secret");
    std::fs::write(&secret, format!("{SECRET}\n")).unwrap();
    let token = ws.path().join("api-token");
    std::fs::write(&token, "api-canary-token\n").unwrap();
    ws.extra_env.push((
        "GITHUB_WEBHOOK_SECRET_FILE".into(),
        secret.display().to_string(),
    ));
    ws.extra_env
        .push(("ROTOR_API_TOKEN_FILE".into(), token.display().to_string()));
    ws
}

async fn converged(d: &mut Daemon, policy: &str) {
    d.wait_for("the first pass to converge", Duration::from_secs(20), |s| {
        value(
            s,
            "rotor_passes_total",
            &[("policy", policy), ("result", "converged")],
        ) >= 1.0
    })
    .await;
}

/// Polls until `check` holds (every 20 ms), returning how long it took; panics after `limit`.
async fn within(what: &str, limit: Duration, check: impl Fn() -> bool) -> Duration {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    start.elapsed()
}

async fn post_delivery(d: &Daemon, headers: &[(&str, String)], body: Vec<u8>) -> (u16, String) {
    let mut r = reqwest::Client::new().post(format!("{}/webhooks/github", d.url));
    for (k, v) in headers {
        r = r.header(*k, v);
    }
    let resp = r.body(body).send().await.expect("the daemon answers");
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_repository_in_a_1000_repository_org_holds_its_secret_within_5s_in_fewer_than_20_requests(
) {
    let bao = Bao::start();
    let mut spec = FleetSpec::generate(&["acme"], 1000);
    spec.orgs[0].repos.push(RepoSpec::new("partner-api"));
    let (emu, handle) = emu::start(spec).await;
    let ws = webhook_ws(&handle.url, &bao);
    ws.write_policy(
        "partner.yaml",
        &partner_policy("partner", "partner/token", "partner-*"),
    );
    let mut d = ws.spawn_daemon(&[]);
    converged(&mut d, "partner").await;
    emu.set_webhook(&format!("{}/webhooks/github", d.url), SECRET);
    let before = emu.requests().len();

    let start = Instant::now();
    emu.create_repo("acme", RepoSpec::new("partner-new"))
        .expect("created");
    let took = within(
        "the new repository holds its secret",
        Duration::from_secs(5),
        || {
            emu.decrypted(&repo("acme", "partner-new"), "PARTNER_TOKEN")
                .is_some()
        },
    )
    .await;
    let (_, data) = bao.kv_get("secret", "partner/token").await;
    assert_eq!(
        emu.decrypted(&repo("acme", "partner-new"), "PARTNER_TOKEN")
            .as_deref(),
        data["value"].as_str(),
        "the current version, not a new rotation"
    );
    // Let the pass finish its bookkeeping, then count what it asked GitHub.
    d.wait_for("the targeted pass counted", Duration::from_secs(5), |s| {
        value(s, "rotor_targeted_passes_total", &[("result", "converged")]) >= 1.0
    })
    .await;
    let made: Vec<String> = emu.requests()[before..]
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(made.len() < 20, "{} requests: {made:#?}", made.len());
    assert!(
        !made.iter().any(|r| r.contains("/orgs/acme/repos")),
        "the organization was not listed: {made:#?}"
    );
    let (_, versions) = bao.kv_get("secret", "partner/token").await;
    assert_eq!(versions, data, "no rotation");
    let delivery = &emu.deliveries()[0];
    assert_eq!(delivery.event, "repository");
    assert_eq!(delivery.status, Some(202), "{delivery:?}");
    eprintln!(
        "provisioned in {took:?} ({:?} since the repository was created), {} requests",
        start.elapsed(),
        made.len()
    );
    d.signal(libc::SIGTERM);
    let _ = d.wait_exit(Duration::from_secs(15)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_deliveries_are_refused_and_a_redelivery_is_acted_on_once() {
    let bao = Bao::start();
    let (emu, handle) = emu::start(FleetSpec::generate(&["acme"], 2)).await;
    let ws = webhook_ws(&handle.url, &bao);
    ws.write_policy(
        "partner.yaml",
        &partner_policy("partner", "partner/forged", "*"),
    );
    let mut d = ws.spawn_daemon(&[]);
    converged(&mut d, "partner").await;
    // A repository appears without GitHub telling anyone; only deliveries can announce it.
    emu.try_add_repo("acme", RepoSpec::new("fresh"))
        .expect("added");
    let body = serde_json::to_vec(&json!({
        "action": "created",
        "repository": {"id": emu.repo_id("acme", "fresh"), "name": "fresh", "full_name": "acme/fresh", "owner": {"login": "acme"}},
        "sender": {"login": "someone"}
    }))
    .unwrap();
    let good = github_emulator::webhook_signature(SECRET.as_bytes(), &body);
    let base = |id: &str| {
        vec![
            ("x-github-event", "repository".to_string()),
            ("x-github-delivery", id.to_string()),
            ("x-github-hook-id", "1".to_string()),
            ("content-type", "application/json".to_string()),
        ]
    };
    let with = |id: &str, extra: &[(&'static str, String)]| {
        let mut h = base(id);
        h.extend(extra.iter().cloned());
        h
    };
    let wrong = github_emulator::webhook_signature(b"not the secret", &body);
    let mut tampered = body.clone();
    tampered.extend_from_slice(b" ");
    type Case<'a> = (&'a str, Vec<(&'a str, String)>, Vec<u8>, u16);
    let cases: Vec<Case> = vec![
        (
            "wrong secret",
            with("d1", &[("x-hub-signature-256", wrong)]),
            body.clone(),
            403,
        ),
        ("no signature", with("d2", &[]), body.clone(), 401),
        (
            "SHA-1 only",
            with(
                "d3",
                &[(
                    "x-hub-signature",
                    "sha1=0123456789abcdef0123456789abcdef01234567".into(),
                )],
            ),
            body.clone(),
            401,
        ),
        (
            "tampered body",
            with("d4", &[("x-hub-signature-256", good.clone())]),
            tampered,
            403,
        ),
    ];
    for (what, headers, body, want) in cases {
        let (status, text) = post_delivery(&d, &headers, body).await;
        assert_eq!(status, want, "{what}: {text}");
        assert!(!text.contains(SECRET), "{what}");
    }
    let big = vec![b' '; 25 * 1024 * 1024 + 1];
    let big_sig = github_emulator::webhook_signature(SECRET.as_bytes(), &big);
    let (status, _) =
        post_delivery(&d, &with("d5", &[("x-hub-signature-256", big_sig)]), big).await;
    assert_eq!(status, 403, "oversize");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        emu.decrypted(&repo("acme", "fresh"), "PARTNER_TOKEN")
            .is_none(),
        "nothing was provisioned by a forged delivery"
    );
    let s = d.scrape().await.unwrap();
    assert_eq!(
        value(
            &s,
            "rotor_webhook_deliveries_total",
            &[("event", "repository"), ("result", "bad_signature")]
        ),
        2.0
    );
    assert_eq!(
        value(
            &s,
            "rotor_webhook_deliveries_total",
            &[("event", "repository"), ("result", "unsigned")]
        ),
        2.0
    );
    assert_eq!(
        value(
            &s,
            "rotor_webhook_deliveries_total",
            &[("event", "repository"), ("result", "too_large")]
        ),
        1.0
    );
    let logs = d.logs();
    for id in ["d1", "d2", "d3", "d4", "d5"] {
        assert!(
            logs.contains(&format!("delivery={id}")),
            "{id} is logged: {logs}"
        );
    }
    assert!(!logs.contains(SECRET));

    // The genuine delivery provisions; its redelivery is answered and not acted on.
    let (status, _) = post_delivery(
        &d,
        &with("d6", &[("x-hub-signature-256", good.clone())]),
        body.clone(),
    )
    .await;
    assert_eq!(status, 202);
    within(
        "the genuine delivery provisions",
        Duration::from_secs(5),
        || {
            emu.decrypted(&repo("acme", "fresh"), "PARTNER_TOKEN")
                .is_some()
        },
    )
    .await;
    let (status, _) = post_delivery(&d, &with("d6", &[("x-hub-signature-256", good)]), body).await;
    assert_eq!(status, 200, "a redelivery is answered 2xx");
    let s = d.scrape().await.unwrap();
    assert_eq!(
        value(
            &s,
            "rotor_webhook_deliveries_total",
            &[("event", "repository"), ("result", "duplicate")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &s,
            "rotor_webhook_deliveries_total",
            &[("event", "repository"), ("result", "accepted")]
        ),
        1.0
    );
    // Unknown events are answered and ignored.
    let star = br#"{"action":"created"}"#.to_vec();
    let sig = github_emulator::webhook_signature(SECRET.as_bytes(), &star);
    let mut h = with("d7", &[("x-hub-signature-256", sig)]);
    h[0].1 = "star".into();
    assert_eq!(post_delivery(&d, &h, star).await.0, 200);
    d.signal(libc::SIGTERM);
    let _ = d.wait_exit(Duration::from_secs(15)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_secret_the_webhook_route_is_off() {
    let (_emu, handle) = emu::start(FleetSpec::generate(&["acme"], 1)).await;
    let ws = Workspace::new(&handle.url, emu::DEFAULT_TOKEN, None);
    ws.write_policy(
        "p.yaml",
        "version: 1\nname: p\nsource:\n  generate: { length: 32 }\nsecrets:\n  T: value\ntargets:\n  - repo: acme/svc-0001\n",
    );
    let mut d = ws.spawn_daemon(&[]);
    d.wait_for("the daemon answers", Duration::from_secs(10), |_| true)
        .await;
    let (status, _) = post_delivery(&d, &[("x-github-event", "ping".into())], b"{}".to_vec()).await;
    assert_eq!(status, 404);
    let (status, _) = d.get("/v1/status").await.unwrap();
    assert_eq!(status, 404, "the API is off without a token file");
    d.signal(libc::SIGTERM);
    let _ = d.wait_exit(Duration::from_secs(15)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_control_api_rotates_while_the_daemon_runs_and_refuses_a_bad_token() {
    let bao = Bao::start();
    let (emu, handle) = emu::start(FleetSpec::generate(&["acme"], 2)).await;
    let ws = webhook_ws(&handle.url, &bao);
    ws.write_policy(
        "partner.yaml",
        &partner_policy("partner", "partner/api", "svc-*"),
    );
    let mut d = ws.spawn_daemon(&[]);
    converged(&mut d, "partner").await;
    let (v1, _) = bao.kv_get("secret", "partner/api").await;
    let http = reqwest::Client::new();
    for token in ["", "wrong-token", "api-canary-tokenX"] {
        let r = http
            .post(format!("{}/v1/policies/partner/rotate", d.url))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 401, "{token:?}");
        assert_eq!(r.headers()["www-authenticate"], "Bearer");
    }
    let r = http
        .post(format!("{}/v1/policies/partner/rotate", d.url))
        .bearer_auth("api-canary-token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["converged"], true, "{body}");
    assert_eq!(body["report"]["version"], v1 + 1, "{body}");
    let (v2, data) = bao.kv_get("secret", "partner/api").await;
    assert_eq!(v2, v1 + 1);
    assert_eq!(
        emu.decrypted(&repo("acme", "svc-0002"), "PARTNER_TOKEN")
            .as_deref(),
        data["value"].as_str()
    );
    let r = http
        .post(format!("{}/v1/policies/nope/apply", d.url))
        .bearer_auth("api-canary-token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    let status: Value = http
        .get(format!("{}/v1/status", d.url))
        .bearer_auth("api-canary-token")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["policies"][0]["policy"], "partner", "{status}");
    assert_eq!(status["policies"][0]["version"], v2, "{status}");
    assert!(
        status["github"].as_array().is_some_and(|a| !a.is_empty()),
        "{status}"
    );
    let plan: Value = http
        .get(format!("{}/v1/plan", d.url))
        .bearer_auth("api-canary-token")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(plan["policies"][0]["policy"], "partner", "{plan}");
    assert!(!plan.to_string().contains(data["value"].as_str().unwrap()));

    // The CLI uses the API when the daemon holds the ledger.
    let mut cli = ws.command(&["rotate", "partner"]);
    cli.env("ROTOR_API_URL", &d.url);
    let out = cli.output().await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let (v3, _) = bao.kv_get("secret", "partner/api").await;
    assert_eq!(v3, v2 + 1, "{stdout}");
    assert!(stdout.contains("through the daemon"), "{stdout}");
    assert!(!d.logs().contains("api-canary-token"));
    d.signal(libc::SIGTERM);
    let _ = d.wait_exit(Duration::from_secs(15)).await;
}

const APP_ID: u64 = 515_151;

fn app_spec(
    key: &github_emulator::AppKeyPair,
    installations: Vec<github_emulator::InstallationSpec>,
) -> github_emulator::AppSpec {
    github_emulator::AppSpec {
        id: APP_ID,
        client_id: Some("Iv23liPARTNER".into()),
        slug: Some("partner-app".into()),
        public_key: key.public_pem.clone(),
        token_lifetime_secs: 3600,
        installations,
    }
}

/// As `webhook_ws`, reaching GitHub as the App only.
fn app_ws(url: &str, key: &github_emulator::AppKeyPair, bao: &Bao) -> Workspace {
    use secrecy::ExposeSecret;
    let mut ws = webhook_ws(url, bao);
    ws.token = String::new();
    let pem = ws.path().join("app.pem");
    std::fs::write(&pem, key.private_pem.expose_secret()).unwrap();
    ws.extra_env
        .push(("GITHUB_APP_ID".into(), APP_ID.to_string()));
    ws.extra_env.push((
        "GITHUB_APP_PRIVATE_KEY_FILE".into(),
        pem.display().to_string(),
    ));
    ws
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repository_added_to_an_app_installation_is_provisioned() {
    let bao = Bao::start();
    let key = github_emulator::AppKeyPair::generate();
    let mut spec = FleetSpec::generate(&["globex"], 3);
    spec.apps = vec![app_spec(
        &key,
        vec![github_emulator::InstallationSpec::all("globex").selected(&["svc-0001"])],
    )];
    let (emu, handle) = emu::start(spec).await;
    let ws = app_ws(&handle.url, &key, &bao);
    ws.write_policy(
        "vendor.yaml",
        &partner_policy("vendor", "vendor/token", "svc-*").replace("org: acme", "org: globex"),
    );
    let mut d = ws.spawn_daemon(&[]);
    converged(&mut d, "vendor").await;
    assert!(emu
        .decrypted(&repo("globex", "svc-0001"), "PARTNER_TOKEN")
        .is_some());
    assert!(emu
        .decrypted(&repo("globex", "svc-0002"), "PARTNER_TOKEN")
        .is_none());
    emu.set_webhook(&format!("{}/webhooks/github", d.url), SECRET);

    let installation = emu.installation_id(APP_ID, "globex").unwrap();
    assert!(emu.add_installation_repo(installation, "svc-0002"));
    within(
        "the added repository holds the secret",
        Duration::from_secs(5),
        || {
            emu.decrypted(&repo("globex", "svc-0002"), "PARTNER_TOKEN")
                .is_some()
        },
    )
    .await;
    let delivery = emu.deliveries().pop().unwrap();
    assert_eq!(delivery.event, "installation_repositories");
    assert_eq!(delivery.action.as_deref(), Some("added"));
    assert!(
        emu.decrypted(&repo("globex", "svc-0003"), "PARTNER_TOKEN")
            .is_none(),
        "only the added one"
    );
    d.signal(libc::SIGTERM);
    let _ = d.wait_exit(Duration::from_secs(15)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_archived_repository_leaves_a_selected_organization_secret() {
    let bao = Bao::start();
    let (emu, handle) = emu::start(FleetSpec::generate(&["acme"], 3)).await;
    let ws = webhook_ws(&handle.url, &bao);
    ws.write_policy(
        "shared.yaml",
        "version: 1\nname: shared\nsource:\n  generate:\n    length: 40\n    store:\n      vault_kv: { mount: secret, path: partner/shared }\nsecrets:\n  SHARED_TOKEN: value\ntargets:\n  - org: acme\n    scope: organization\n    visibility: selected\n    repos: [\"svc-*\"]\nschedule:\n  every: 30d\n",
    );
    let mut d = ws.spawn_daemon(&[]);
    converged(&mut d, "shared").await;
    let org = Scope::Org {
        org: "acme".into(),
        app: App::Actions,
    };
    let selected = || {
        emu.secret_info(&org, "SHARED_TOKEN")
            .map(|i| i.selected_repository_ids)
            .unwrap_or_default()
    };
    let svc2 = emu.repo_id("acme", "svc-0002").unwrap();
    assert!(selected().contains(&svc2), "{:?}", selected());
    emu.set_webhook(&format!("{}/webhooks/github", d.url), SECRET);

    assert!(emu.set_archived("acme", "svc-0002", true));
    within(
        "the archived repository leaves the list",
        Duration::from_secs(5),
        || !selected().contains(&svc2),
    )
    .await;
    assert_eq!(selected().len(), 2, "the others stay: {:?}", selected());
    // Unarchived, it comes back.
    assert!(emu.set_archived("acme", "svc-0002", false));
    within(
        "the unarchived repository is selected again",
        Duration::from_secs(5),
        || selected().contains(&svc2),
    )
    .await;
    d.signal(libc::SIGTERM);
    let _ = d.wait_exit(Duration::from_secs(15)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_throttled_installation_does_not_slow_the_others() {
    let bao = Bao::start();
    let key = github_emulator::AppKeyPair::generate();
    let mut spec = FleetSpec::generate(&["acme", "globex"], 5);
    spec.apps = vec![app_spec(
        &key,
        vec![
            github_emulator::InstallationSpec::all("acme"),
            github_emulator::InstallationSpec::all("globex"),
        ],
    )];
    let (emu, handle) = emu::start(spec).await;
    // globex's installation is told to wait 4 s (a secondary rate limit) on each of its
    // first five writes (they go out at once).
    emu.add_fault(
        github_emulator::FaultRule::new("/repos/globex/", 429)
            .method("PUT")
            .retry_after(4)
            .times(5),
    );
    let ws = app_ws(&handle.url, &key, &bao);
    ws.write_policy(
        "both.yaml",
        "version: 1\nname: both\nsource:\n  generate:\n    length: 40\n    store:\n      vault_kv: { mount: secret, path: partner/both }\nsecrets:\n  PARTNER_TOKEN: value\ntargets:\n  - org: acme\n  - org: globex\n",
    );
    let started = emu.requests().len();
    ws.run(&["apply"]).await.expect_code(0);
    let puts = |org: &str| -> Vec<Duration> {
        emu.requests()[started..]
            .iter()
            .filter(|r| {
                r.method == "PUT" && r.path.starts_with(&format!("/repos/{org}/")) && r.status < 300
            })
            .map(|r| r.at)
            .collect()
    };
    let (acme, globex) = (puts("acme"), puts("globex"));
    assert_eq!((acme.len(), globex.len()), (5, 5));
    let acme_done = acme.iter().max().unwrap();
    let globex_first = globex.iter().min().unwrap();
    assert!(
        *globex_first >= *acme_done,
        "acme finished ({acme_done:?}) before globex's pause ended ({globex_first:?})"
    );
    assert!(
        globex_first.saturating_sub(*acme_done) >= Duration::from_secs(2),
        "acme did not wait for globex's 4 s: acme done at {acme_done:?}, globex resumed at {globex_first:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_one_installation_waits_out_a_rate_limit_another_is_served_at_once() {
    use rotor::github::{AppConfig, AppKey, Client, GitHubConfig};
    use rotor::model::{App as RApp, SecretScope};
    let key = github_emulator::AppKeyPair::generate();
    let mut spec = FleetSpec::generate(&["acme", "globex"], 10);
    spec.apps = vec![app_spec(
        &key,
        vec![
            github_emulator::InstallationSpec::all("acme"),
            github_emulator::InstallationSpec::all("globex"),
        ],
    )];
    let (emu, handle) = emu::start(spec).await;
    emu.add_fault(
        github_emulator::FaultRule::new("/repos/globex/svc-0001/actions/secrets", 429)
            .retry_after(4)
            .times(1),
    );
    let client = std::sync::Arc::new(
        Client::new(GitHubConfig {
            api_url: handle.url.clone(),
            app: Some(AppConfig {
                issuer: APP_ID.to_string(),
                key: AppKey::Pem(key.private_pem.clone()),
            }),
            ..GitHubConfig::default()
        })
        .expect("client"),
    );
    let scope = |org: &str, i: usize| SecretScope::Repo {
        owner: org.into(),
        repo: format!("svc-{i:04}"),
        app: RApp::Actions,
    };
    // Both installations' tokens first, so that only the wait is measured.
    client.list_secrets(&scope("acme", 2)).await.unwrap();
    client.list_secrets(&scope("globex", 2)).await.unwrap();
    let throttled = {
        let client = std::sync::Arc::clone(&client);
        let s = scope("globex", 1);
        tokio::spawn(async move {
            let t = Instant::now();
            client.list_secrets(&s).await.map(|_| t.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let t = Instant::now();
    for i in 1..=10 {
        client.list_secrets(&scope("acme", i)).await.unwrap();
    }
    let acme = t.elapsed();
    let globex = throttled.await.unwrap().expect("served after its wait");
    assert!(globex >= Duration::from_secs(4), "globex waited {globex:?}");
    assert!(
        acme < Duration::from_secs(2),
        "acme's ten requests took {acme:?} while globex waited"
    );
    let ids: Vec<String> = client
        .identities()
        .into_iter()
        .map(|i| i.identity)
        .collect();
    assert!(
        ids.iter()
            .filter(|i| i.starts_with("installation:"))
            .count()
            >= 2,
        "{ids:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_emulator_delivers_signed_events_from_its_control_routes_and_redelivers() {
    use crate::util::fake::{Answer, Fake};
    let hook = Fake::start(|_| Answer::new(204, "")).await;
    let mut spec = FleetSpec::generate(&["acme"], 1);
    spec.webhook = Some(github_emulator::WebhookSpec {
        url: format!("{}/hook", hook.url),
        secret: SECRET.into(),
    });
    let (emu, handle) = emu::start(spec).await;
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{}/_emulator/repos", handle.url))
        .json(&json!({"org": "acme", "name": "via-route", "topics": ["pci"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let r = http
        .post(format!(
            "{}/_emulator/repos/acme/via-route/archive",
            handle.url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    let r = http
        .delete(format!("{}/_emulator/repos/acme/via-route", handle.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    within("three deliveries answered", Duration::from_secs(5), || {
        emu.deliveries()
            .iter()
            .filter(|d| d.status == Some(204))
            .count()
            == 3
    })
    .await;
    let actions: Vec<_> = emu
        .deliveries()
        .iter()
        .map(|d| format!("{}.{}", d.event, d.action.clone().unwrap_or_default()))
        .collect();
    assert_eq!(
        actions,
        [
            "repository.created",
            "repository.archived",
            "repository.deleted"
        ]
    );
    let seen = hook.seen();
    assert_eq!(seen.len(), 3);
    for s in &seen {
        assert_eq!(s.method, "POST");
        assert_eq!(s.header("x-github-event"), Some("repository"));
        assert!(s.header("x-github-delivery").is_some_and(|g| g.len() == 36));
        assert!(s.header("x-github-hook-id").is_some());
        assert!(s
            .header("user-agent")
            .is_some_and(|u| u.starts_with("GitHub-Hookshot/")));
        assert!(s
            .header("x-hub-signature-256")
            .is_some_and(|h| h.starts_with("sha256=")));
    }
    // Redelivery: the same GUID again.
    let guid = emu.deliveries()[0].guid.clone();
    let r = http
        .post(format!(
            "{}/_emulator/deliveries/{guid}/redeliver",
            handle.url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    within("the redelivery arrives", Duration::from_secs(5), || {
        hook.seen().len() == 4
    })
    .await;
    assert_eq!(
        hook.seen()[3].header("x-github-delivery"),
        Some(guid.as_str())
    );
    let listed: Value = http
        .get(format!("{}/_emulator/deliveries", handle.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed.as_array().map(Vec::len), Some(4));
    assert_eq!(listed[3]["redelivery"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_installation_of_the_app_is_provisioned_from_its_created_event() {
    let bao = Bao::start();
    let key = github_emulator::AppKeyPair::generate();
    let mut spec = FleetSpec::generate(&["acme", "globex"], 3);
    spec.apps = vec![app_spec(
        &key,
        vec![github_emulator::InstallationSpec::all("acme")],
    )];
    let (emu, handle) = emu::start(spec).await;
    let ws = app_ws(&handle.url, &key, &bao);
    ws.write_policy(
        "vendor.yaml",
        "version: 1\nname: vendor\nsource:\n  generate:\n    length: 40\n    store:\n      vault_kv: { mount: secret, path: vendor/new }\nsecrets:\n  PARTNER_TOKEN: value\ntargets:\n  - org: acme\n  - org: globex\nschedule:\n  every: 30d\n",
    );
    // A long backoff: only the webhook can bring globex in during the test.
    let mut d = ws.spawn_daemon(&["--retry-backoff", "1h"]);
    d.wait_for("the first pass", Duration::from_secs(20), |s| {
        value(
            s,
            "rotor_passes_total",
            &[("policy", "vendor"), ("result", "unconverged")],
        ) >= 1.0
    })
    .await;
    assert!(emu
        .decrypted(&repo("acme", "svc-0001"), "PARTNER_TOKEN")
        .is_some());
    assert!(emu
        .decrypted(&repo("globex", "svc-0001"), "PARTNER_TOKEN")
        .is_none());
    emu.set_webhook(&format!("{}/webhooks/github", d.url), SECRET);

    let id = emu.install_app(APP_ID, "globex", None).expect("installed");
    within(
        "globex's repositories hold the secret",
        Duration::from_secs(5),
        || {
            (1..=3).all(|i| {
                emu.decrypted(&repo("globex", &format!("svc-{i:04}")), "PARTNER_TOKEN")
                    .is_some()
            })
        },
    )
    .await;
    let delivery = emu.deliveries().pop().unwrap();
    assert_eq!(
        (delivery.event.as_str(), delivery.action.as_deref()),
        ("installation", Some("created"))
    );
    // Suspended, it is forgotten; nothing is written.
    assert!(emu.suspend_installation(id, true));
    d.wait_for("the suspension handled", Duration::from_secs(5), |s| {
        value(
            s,
            "rotor_webhook_deliveries_total",
            &[("event", "installation"), ("result", "accepted")],
        ) >= 2.0
    })
    .await;
    d.signal(libc::SIGTERM);
    let _ = d.wait_exit(Duration::from_secs(15)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repository_removed_from_the_installation_leaves_a_selected_organization_secret() {
    let bao = Bao::start();
    let key = github_emulator::AppKeyPair::generate();
    let mut spec = FleetSpec::generate(&["globex"], 3);
    spec.apps = vec![app_spec(
        &key,
        vec![github_emulator::InstallationSpec::all("globex").selected(&["svc-0001", "svc-0002"])],
    )];
    let (emu, handle) = emu::start(spec).await;
    let ws = app_ws(&handle.url, &key, &bao);
    ws.write_policy(
        "shared.yaml",
        "version: 1\nname: shared\nsource:\n  generate:\n    length: 40\n    store:\n      vault_kv: { mount: secret, path: vendor/shared }\nsecrets:\n  SHARED_TOKEN: value\ntargets:\n  - org: globex\n    scope: organization\n    visibility: selected\n    repos: [\"svc-*\"]\nschedule:\n  every: 30d\n",
    );
    let mut d = ws.spawn_daemon(&[]);
    converged(&mut d, "shared").await;
    let org = Scope::Org {
        org: "globex".into(),
        app: App::Actions,
    };
    let selected = || {
        emu.secret_info(&org, "SHARED_TOKEN")
            .map(|i| i.selected_repository_ids)
            .unwrap_or_default()
    };
    let svc2 = emu.repo_id("globex", "svc-0002").unwrap();
    assert!(selected().contains(&svc2), "{:?}", selected());
    emu.set_webhook(&format!("{}/webhooks/github", d.url), SECRET);
    let installation = emu.installation_id(APP_ID, "globex").unwrap();
    assert!(emu.remove_installation_repo(installation, "svc-0002"));
    within(
        "the removed repository leaves the list",
        Duration::from_secs(5),
        || !selected().contains(&svc2),
    )
    .await;
    assert_eq!(selected().len(), 1, "{:?}", selected());
    d.signal(libc::SIGTERM);
    let _ = d.wait_exit(Duration::from_secs(15)).await;
}
