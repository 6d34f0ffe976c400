//! GitHub App authentication end to end: rotor signs a JWT with the App's key, finds the
//! installation of each organization, mints a token per installation and refreshes it
//! before it expires; the emulator checks every JWT and token the way GitHub does.
//! Keys are RSA key pairs generated for each test.

use std::time::{Duration, Instant};

use github_emulator::App;
use github_emulator::Scope as SecretScope;
use github_emulator::{AppKeyPair, AppSpec, FleetSpec, InstallationSpec, OrgSpec, RepoSpec};
use reqwest::Method;
use rotor::github::{AppConfig, AppKey, Client, ErrorKind, GitHubConfig};
use secrecy::ExposeSecret;
use serde_json::{json, Value};

use crate::util::bao::Bao;
use crate::util::emu::{self, Gh};
use crate::util::rotor::Workspace;

const APP_ID: u64 = 424_242;
const MINT: &str = "POST /app/installations/{installation_id}/access_tokens";

fn app(key: &AppKeyPair, installations: Vec<InstallationSpec>) -> AppSpec {
    AppSpec {
        id: APP_ID,
        client_id: Some("Iv23liEMULATOR".into()),
        slug: Some("rotor-test".into()),
        public_key: key.public_pem.clone(),
        token_lifetime_secs: 3600,
        installations,
    }
}

/// A workspace that reaches GitHub as the App only (no token at all).
fn app_workspace(url: &str, key: &AppKeyPair, bao: Option<&Bao>, issuer: &str) -> Workspace {
    let mut ws = Workspace::new(url, "", bao.map(|b| (b.addr.clone(), b.token.clone())));
    let pem = ws.path().join("app.pem");
    std::fs::write(&pem, key.private_pem.expose_secret()).expect("write the key");
    ws.extra_env.push(("GITHUB_APP_ID".into(), issuer.into()));
    ws.extra_env.push((
        "GITHUB_APP_PRIVATE_KEY_FILE".into(),
        pem.to_string_lossy().into_owned(),
    ));
    ws
}

fn svc(i: usize) -> String {
    format!("svc-{i:04}")
}

fn repo(owner: &str, name: &str) -> SecretScope {
    SecretScope::Repo {
        owner: owner.into(),
        repo: name.into(),
        app: App::Actions,
    }
}

const THREE_ORGS: &str = r#"
version: 1
name: partner-token
source:
  generate:
    length: 40
    store:
      vault_kv: { mount: secret, path: partner/token }
secrets:
  PARTNER_TOKEN: value
targets:
  - org: acme
  - org: globex
  - org: initech
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_auth_across_three_orgs_refreshes_expiring_tokens_mid_run_without_a_failed_push() {
    let bao = Bao::start();
    let key = AppKeyPair::generate();
    let mut spec = FleetSpec::generate(&["acme", "globex", "initech"], 30);
    spec.apps = vec![app(
        &key,
        vec![
            InstallationSpec::all("acme"),
            InstallationSpec::all("globex"),
            InstallationSpec::all("initech").selected(&["svc-0001", "svc-0002", "svc-0003"]),
        ],
    )];
    let (emu, handle) = emu::start(spec).await;
    // Tokens live 2 s; every response takes 120 ms: the run outlives the first tokens.
    emu.set_token_lifetime(Duration::from_secs(2));
    emu.set_latency(Duration::from_millis(120));
    let ws = app_workspace(&handle.url, &key, Some(&bao), &APP_ID.to_string());
    ws.write_policy("partner.yaml", THREE_ORGS);

    let started = Instant::now();
    let run = ws
        .run(&["apply", "--concurrency", "4"])
        .await
        .expect_code(0);
    let took = started.elapsed();
    assert!(
        took > Duration::from_secs(3),
        "the run must outlive a token: {took:?}"
    );

    let (_, data) = bao.kv_get("secret", "partner/token").await;
    let value = data["value"].as_str().expect("value").to_string();
    let mut reached = 0;
    for org in ["acme", "globex"] {
        for i in 1..=30 {
            let got = emu.decrypted(&repo(org, &svc(i)), "PARTNER_TOKEN");
            if i % 10 == 0 {
                assert_eq!(got, None, "{org}/{} is archived", svc(i));
            } else {
                assert_eq!(got.as_deref(), Some(value.as_str()), "{org}/{}", svc(i));
                reached += 1;
            }
        }
    }
    // initech's installation reaches three repositories: the candidates are those only.
    for i in 1..=30 {
        let got = emu.decrypted(&repo("initech", &svc(i)), "PARTNER_TOKEN");
        assert_eq!(got.is_some(), i <= 3, "initech/{}", svc(i));
        reached += usize::from(got.is_some());
    }
    assert_eq!(reached, 27 + 27 + 3);
    assert!(
        run.stdout.contains(&format!("{reached} pushed")),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("0 failed"), "{}", run.stdout);

    // Each installation had its own tokens, and the busy ones were refreshed mid-run,
    // before expiry: GitHub never had to refuse one.
    let minted = emu.tokens_issued();
    for org in ["acme", "globex", "initech"] {
        let id = emu.installation_id(APP_ID, org).expect("installed");
        assert!(
            minted.get(&id).copied().unwrap_or(0) >= 1,
            "{org}: {minted:?}"
        );
    }
    for org in ["acme", "globex"] {
        let id = emu.installation_id(APP_ID, org).expect("installed");
        assert!(minted[&id] >= 2, "{org}'s token was refreshed: {minted:?}");
    }
    let counters = emu.counters();
    assert_eq!(
        counters.by_status.get(&401),
        None,
        "no request was refused: {counters:?}"
    );
    assert_eq!(
        counters.route(MINT) as usize,
        minted.values().sum::<u64>() as usize
    );
    assert_eq!(
        counters.route("GET /orgs/{org}/installation"),
        3,
        "each installation looked up once"
    );

    // A second apply converges with fresh tokens and pushes nothing.
    emu.set_latency(Duration::ZERO);
    let again = ws.run(&["apply"]).await.expect_code(0);
    assert!(
        again.stdout.contains("0 rotated, 0 pushed"),
        "{}",
        again.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_permission_an_unreached_repository_and_a_missing_installation_fail_alone() {
    let key = AppKeyPair::generate();
    let mut spec = FleetSpec::generate(&["acme", "globex", "initech", "umbrella"], 4);
    spec.apps = vec![app(
        &key,
        vec![
            InstallationSpec::all("acme"),
            InstallationSpec::all("globex").permissions(&[("secrets", "write")]),
            InstallationSpec::all("initech").selected(&["svc-0001"]),
        ],
    )];
    let (emu, handle) = emu::start(spec).await;
    let ws = app_workspace(&handle.url, &key, None, "Iv23liEMULATOR");
    ws.write_policy(
        "p.yaml",
        "version: 1\nname: p\nsource:\n  generate: { length: 32 }\nsecrets:\n  TOKEN: value\ntargets:\n  - org: acme\n  - org: globex\n    repos: [svc-0001, svc-0002]\n    environment: production\n  - repo: initech/svc-0002\n  - repo: umbrella/svc-0001\n",
    );

    let plan = ws.run(&["plan"]).await.expect_code(0);
    assert!(
        plan.stdout
            .contains("grant the GitHub App environments: write"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout.contains("does not reach initech/svc-0002"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout.contains("not installed on umbrella"),
        "{}",
        plan.stdout
    );

    let run = ws.run(&["apply", "--output", "json"]).await.expect_code(1);
    let out: Value = serde_json::from_str(&run.stdout).expect("JSON");
    let failures = out["report"]["policies"][0]["failures"]
        .as_array()
        .expect("failures")
        .clone();
    let mut failed: Vec<&str> = failures
        .iter()
        .map(|f| f["target"].as_str().expect("target"))
        .collect();
    failed.sort();
    assert_eq!(
        failed,
        vec![
            "globex/svc-0001 env:production",
            "globex/svc-0002 env:production",
            "initech/svc-0002",
            "umbrella/svc-0001"
        ]
    );
    for f in &failures {
        if f["target"].as_str().unwrap().starts_with("globex") {
            assert!(
                f["message"]
                    .as_str()
                    .unwrap()
                    .contains("environments: write"),
                "{f}"
            );
        }
    }
    // Everything else got the one value.
    let value = emu
        .decrypted(&repo("acme", "svc-0001"), "TOKEN")
        .expect("acme reached");
    for i in 2..=4 {
        assert_eq!(
            emu.decrypted(&repo("acme", &svc(i)), "TOKEN").as_deref(),
            Some(value.as_str())
        );
    }
    let env = SecretScope::Environment {
        owner: "globex".into(),
        repo: "svc-0001".into(),
        environment: "production".into(),
    };
    assert_eq!(emu.decrypted(&env, "TOKEN"), None);
    assert_eq!(emu.decrypted(&repo("initech", "svc-0002"), "TOKEN"), None);
}

fn app_client(url: &str, key: &AppKeyPair) -> Client {
    Client::new(GitHubConfig {
        api_url: url.to_string(),
        app: Some(AppConfig {
            issuer: APP_ID.to_string(),
            key: AppKey::Pem(key.private_pem.clone()),
        }),
        ..GitHubConfig::default()
    })
    .expect("client builds")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn githubs_403_names_the_missing_permission_and_rotor_says_what_to_grant() {
    let key = AppKeyPair::generate();
    let mut spec = FleetSpec::generate(&["acme"], 2);
    spec.apps = vec![app(
        &key,
        vec![InstallationSpec::all("acme").permissions(&[("secrets", "read")])],
    )];
    let (emu, handle) = emu::start(spec).await;
    let client = app_client(&handle.url, &key);
    // The product's own scope type: this test drives rotor's client, not the emulator.
    let env = rotor::model::SecretScope::Environment {
        owner: "acme".into(),
        repo: "svc-0001".into(),
        environment: "production".into(),
    };
    let err = client
        .list_secrets(&env)
        .await
        .expect_err("no environments permission");
    assert_eq!(
        err.kind,
        ErrorKind::Forbidden {
            accepted_permissions: Some("secrets=read,environments=read".into())
        }
    );
    let told = rotor::github::error::explain(&env, &err);
    assert!(
        told.contains(
            "grant the GitHub App (or fine-grained token) secrets: read, environments: read"
        ),
        "{told}"
    );
    // Reading repository secrets needs only `secrets: read`, which it has; writing needs more.
    let scope = rotor::model::SecretScope::Repo {
        owner: "acme".into(),
        repo: "svc-0001".into(),
        app: rotor::model::App::Actions,
    };
    client
        .list_secrets(&scope)
        .await
        .expect("secrets: read is enough to list");
    let k = client
        .public_key(&scope)
        .await
        .expect("and to read the key");
    let sealed = rotor::seal::seal(&k.key, &secrecy::SecretString::from("v")).expect("seals");
    let err = client
        .put_secret(&scope, "TOKEN", &sealed, &k.key_id, None)
        .await
        .expect_err("secrets: write is missing");
    assert!(
        rotor::github::error::explain(&scope, &err).contains("secrets: write"),
        "{err}"
    );
    assert_eq!(
        client
            .auth_identity("/repos/acme/svc-0001/actions/secrets")
            .await
            .expect("known")
            .to_string(),
        format!(
            "installation:{}",
            emu.installation_id(APP_ID, "acme").expect("id")
        )
    );
}

fn jwt(key: &AppKeyPair, iat: i64, exp: i64, iss: Value) -> String {
    let enc = jsonwebtoken::EncodingKey::from_rsa_pem(key.private_pem.expose_secret().as_bytes())
        .expect("PKCS#8 PEM");
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
        &json!({"iat": iat, "exp": exp, "iss": iss}),
        &enc,
    )
    .expect("signs")
}

async fn status_of(gh: &Gh, method: Method, path: &str) -> (u16, Value) {
    let resp = gh.req(method, path).send().await.expect("answered");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_emulator_checks_jwts_and_installation_tokens_as_github_does() {
    let key = AppKeyPair::generate();
    let mut spec = FleetSpec {
        orgs: vec![OrgSpec {
            name: "acme".into(),
            id: None,
            repos: vec![RepoSpec::new("api"), RepoSpec::new("web")],
        }],
        ..Default::default()
    };
    spec.apps = vec![app(
        &key,
        vec![InstallationSpec::all("acme").selected(&["api"]).id(9001)],
    )];
    let (emu, handle) = emu::start(spec).await;
    let now = chrono::Utc::now().timestamp();
    let as_jwt = |t: String| Gh::with_token(&handle, Some(&t));

    let good = as_jwt(jwt(&key, now - 60, now + 540, json!(APP_ID)));
    let (status, body) = status_of(&good, Method::GET, "/app").await;
    assert_eq!((status, body["slug"].as_str()), (200, Some("rotor-test")));
    let by_client_id = as_jwt(jwt(&key, now - 60, now + 540, json!("Iv23liEMULATOR")));
    assert_eq!(
        status_of(&by_client_id, Method::GET, "/orgs/acme/installation")
            .await
            .0,
        200
    );

    let too_far = as_jwt(jwt(&key, now - 60, now + 660, json!(APP_ID)));
    let (status, body) = status_of(&too_far, Method::GET, "/app").await;
    assert_eq!(status, 401);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("too far in the future"),
        "{body}"
    );
    let expired = as_jwt(jwt(&key, now - 700, now - 10, json!(APP_ID)));
    assert_eq!(status_of(&expired, Method::GET, "/app").await.0, 401);
    let forged = as_jwt(jwt(
        &AppKeyPair::generate(),
        now - 60,
        now + 300,
        json!(APP_ID),
    ));
    assert_eq!(status_of(&forged, Method::GET, "/app").await.0, 401);

    // A JWT reaches only App endpoints; the installation is found by org or by repository.
    let (status, inst) = status_of(&good, Method::GET, "/repos/acme/api/installation").await;
    assert_eq!((status, inst["id"].as_u64()), (200, Some(9001)));
    assert_eq!(inst["repository_selection"], "selected");
    assert_eq!(
        status_of(&good, Method::GET, "/repos/acme/web/installation")
            .await
            .0,
        404
    );
    assert_eq!(
        status_of(&good, Method::GET, "/repos/acme/api/actions/secrets")
            .await
            .0,
        403
    );
    let pat = Gh::new(&handle);
    assert_eq!(status_of(&pat, Method::GET, "/app").await.0, 401);
    assert_eq!(
        status_of(&pat, Method::GET, "/installation/repositories")
            .await
            .0,
        403
    );

    // Tokens: 201 with expires_at; they see the installation's repositories only, and
    // stop working when they expire.
    emu.set_token_lifetime(Duration::from_millis(1500));
    let resp = good
        .req(Method::POST, "/app/installations/9001/access_tokens")
        .send()
        .await
        .expect("answered");
    assert_eq!(resp.status(), 201);
    let minted: Value = resp.json().await.expect("JSON");
    let token = minted["token"].as_str().expect("token").to_string();
    let expires =
        chrono::DateTime::parse_from_rfc3339(minted["expires_at"].as_str().expect("expires_at"))
            .expect("a time");
    assert!(expires.timestamp() <= now + 3, "{minted}");
    let inst_token = Gh::with_token(&handle, Some(&token));
    let (status, listing) = status_of(&inst_token, Method::GET, "/installation/repositories").await;
    assert_eq!(status, 200);
    assert_eq!(listing["total_count"], 1);
    assert_eq!(listing["repositories"][0]["name"], "api");
    assert_eq!(
        status_of(&inst_token, Method::GET, "/repos/acme/api/actions/secrets")
            .await
            .0,
        200
    );
    assert_eq!(
        status_of(&inst_token, Method::GET, "/repos/acme/web/actions/secrets")
            .await
            .0,
        403
    );
    assert_eq!(status_of(&inst_token, Method::GET, "/app").await.0, 401);
    let (status, _) = status_of(&good, Method::POST, "/app/installations/1/access_tokens").await;
    assert_eq!(status, 404, "not this App's installation");
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let (status, body) = status_of(&inst_token, Method::GET, "/installation/repositories").await;
    assert_eq!(
        (status, body["message"].as_str()),
        (401, Some("Bad credentials"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_the_app_does_not_have_is_a_clear_error_and_rotates_nothing() {
    let key = AppKeyPair::generate();
    let mut spec = FleetSpec::generate(&["acme"], 3);
    spec.apps = vec![app(&key, vec![InstallationSpec::all("acme")])];
    let (emu, handle) = emu::start(spec).await;
    let ws = app_workspace(
        &handle.url,
        &AppKeyPair::generate(),
        None,
        &APP_ID.to_string(),
    );
    ws.write_policy(
        "p.yaml",
        "version: 1\nname: p\nsource:\n  generate: { length: 32 }\nsecrets:\n  TOKEN: value\ntargets:\n  - org: acme\n",
    );
    let run = ws.run(&["apply"]).await.expect_code(1);
    assert!(
        run.stdout.contains("A JSON web token could not be decoded"),
        "{}\n{}",
        run.stdout,
        run.stderr
    );
    assert!(run.stdout.contains("0 rotated, 0 pushed"), "{}", run.stdout);
    assert!(emu.secrets().is_empty());
    assert!(emu.tokens_issued().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn installation_tokens_carried_every_permission_the_app_was_granted() {
    let key = AppKeyPair::generate();
    let mut spec = FleetSpec::generate(&["acme"], 2);
    // The App holds far more than rotor needs.
    spec.apps = vec![app(
        &key,
        vec![InstallationSpec::all("acme").permissions(&[
            ("secrets", "write"),
            ("contents", "write"),
            ("administration", "write"),
            ("pull_requests", "write"),
            ("actions", "read"),
        ])],
    )];
    let (emu, handle) = emu::start(spec).await;
    let ws = app_workspace(&handle.url, &key, None, "Iv23liEMULATOR");
    ws.write_policy(
        "p.yaml",
        "version: 1\nname: p\nsource:\n  generate: { length: 32 }\nsecrets:\n  TOKEN: value\ntargets:\n  - org: acme\n    repos: [\"svc-*\"]\n",
    );
    ws.run(&["apply"]).await.expect_code(0);
    assert!(emu.decrypted(&repo("acme", &svc(1)), "TOKEN").is_some());
    let tokens = emu.token_permissions();
    assert!(!tokens.is_empty(), "a token was minted");
    for (_, permissions) in tokens {
        let names: Vec<&str> = permissions.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            ["actions", "metadata", "secrets"],
            "only what rotor uses, at most at the installation's level: {permissions:?}"
        );
        assert_eq!(permissions["actions"], "read");
        assert_eq!(permissions["secrets"], "write");
    }
}
