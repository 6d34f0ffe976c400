//! Vault login without a long-lived token: JWT/OIDC (a JWT from a file, or GitHub Actions'
//! ID token endpoint) against a real OpenBao with JWT auth configured with a key the test
//! makes, and Kubernetes service-account login against a stand-in that records the request.

use std::time::Duration;

use reqwest::Method;
use rotor::policy::{KvRef, SourceSpec};
use rotor::source::{Sources, VaultConfig};
use serde_json::{json, Value};

use crate::util::bao::Bao;
use crate::util::fake::{Answer, Fake};

const ISSUER: &str = "https://token.actions.githubusercontent.com";
const ACL: &str = r#"
path "secret/data/*" { capabilities = ["create", "read", "update"] }
path "secret/metadata/*" { capabilities = ["read"] }
"#;

/// OpenBao with JWT auth at `jwt/`, trusting `key`'s public half, and a role `rotor` bound
/// to audience `rotor`, repository `acme/infra` and ref `refs/heads/main`.
async fn jwt_bao(key: &github_emulator::AppKeyPair) -> Bao {
    let bao = Bao::start();
    let ok = |what: &str, (status, body): (u16, Value)| {
        assert!(status < 300, "{what}: {status} {body}");
    };
    ok(
        "enable jwt",
        bao.api(Method::POST, "sys/auth/jwt", Some(json!({"type": "jwt"})))
            .await,
    );
    ok(
        "config",
        bao.api(
            Method::POST,
            "auth/jwt/config",
            Some(json!({"jwt_validation_pubkeys": [key.public_pem], "bound_issuer": ISSUER})),
        )
        .await,
    );
    ok(
        "policy",
        bao.api(
            Method::PUT,
            "sys/policies/acl/rotor-kv",
            Some(json!({"policy": ACL})),
        )
        .await,
    );
    ok(
        "role",
        bao.api(
            Method::POST,
            "auth/jwt/role/rotor",
            Some(json!({
                "role_type": "jwt",
                "user_claim": "sub",
                "bound_audiences": ["rotor"],
                "bound_claims": {"repository": "acme/infra", "ref": "refs/heads/main"},
                "token_policies": ["rotor-kv"],
                "token_ttl": "60s",
                "token_max_ttl": "60s",
            })),
        )
        .await,
    );
    bao.kv_put("secret", "ci/jwt", json!({"value": "from-vault"}))
        .await;
    bao
}

/// A JWT as GitHub Actions issues it, signed with `key`.
fn id_token(key: &github_emulator::AppKeyPair, aud: &str, repository: &str) -> String {
    use secrecy::ExposeSecret;
    let now = chrono::Utc::now().timestamp();
    let claims = json!({
        "iss": ISSUER, "sub": format!("repo:{repository}:ref:refs/heads/main"), "aud": aud,
        "iat": now, "nbf": now - 5, "exp": now + 300,
        "repository": repository, "ref": "refs/heads/main",
    });
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_rsa_pem(key.private_pem.expose_secret().as_bytes())
            .expect("an RSA key"),
    )
    .expect("a signed JWT")
}

fn config(vars: Vec<(&'static str, String)>) -> VaultConfig {
    VaultConfig::from_lookup(move |name| {
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone())
    })
    .expect("complete JWT settings")
}

fn kv() -> SourceSpec {
    SourceSpec::VaultKv(KvRef {
        mount: "secret".into(),
        path: "ci/jwt".into(),
        key: None,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jwt_from_a_file_logs_in_and_logs_in_again_with_a_fresh_one() {
    use secrecy::ExposeSecret;
    let key = github_emulator::AppKeyPair::generate();
    let bao = jwt_bao(&key).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("id-token");
    std::fs::write(&file, id_token(&key, "rotor", "acme/infra")).unwrap();
    let sources = Sources::new(Some(config(vec![
        ("VAULT_ADDR", bao.addr.clone()),
        ("VAULT_JWT_ROLE", "rotor".into()),
        ("VAULT_JWT_FILE", file.display().to_string()),
    ])))
    .unwrap();
    let value = sources
        .read(&kv(), 1)
        .await
        .expect("read after a JWT login");
    assert_eq!(value.fields["value"].expose_secret(), "from-vault");
    let vault = sources.vault().unwrap();
    assert_eq!(vault.logins(), 1);
    // The file is read again at each login (a projected token is replaced in place).
    std::fs::write(&file, id_token(&key, "rotor", "acme/infra")).unwrap();
    let (status, body) = bao
        .api(Method::PUT, "sys/leases/revoke-prefix/auth/jwt", None)
        .await;
    assert!(status < 300, "{status} {body}");
    sources.read(&kv(), 1).await.expect("logged in again");
    assert_eq!(vault.logins(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_audience_or_bound_claim_is_refused_with_openbaos_message() {
    let key = github_emulator::AppKeyPair::generate();
    let bao = jwt_bao(&key).await;
    let dir = tempfile::tempdir().unwrap();
    for (what, token, expect) in [
        (
            "audience",
            id_token(&key, "someone-else", "acme/infra"),
            "audience",
        ),
        ("bound claim", id_token(&key, "rotor", "evil/fork"), "claim"),
    ] {
        let file = dir.path().join(what.replace(' ', "-"));
        std::fs::write(&file, &token).unwrap();
        let sources = Sources::new(Some(config(vec![
            ("VAULT_ADDR", bao.addr.clone()),
            ("VAULT_JWT_ROLE", "rotor".into()),
            ("VAULT_JWT_FILE", file.display().to_string()),
        ])))
        .unwrap();
        let err = sources.vault().unwrap().login().await.expect_err("refused");
        let text = err.to_string();
        assert!(text.contains(expect), "{what}: {text}");
        assert!(!text.contains(&token), "the JWT is not quoted");
        // Nothing rotates without a login: a read is refused too.
        assert!(sources.read(&kv(), 1).await.is_err());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_github_actions_each_login_asks_the_runtime_for_a_fresh_id_token() {
    use secrecy::ExposeSecret;
    let key = std::sync::Arc::new(github_emulator::AppKeyPair::generate());
    let bao = jwt_bao(&key).await;
    let signer = std::sync::Arc::clone(&key);
    // A stand-in for the runner's ID token endpoint: checks the request token, mints for
    // the asked audience.
    let runtime = Fake::start(move |seen| {
        if seen.header("authorization") != Some("Bearer runtime-request-token") {
            return Answer::new(401, r#"{"message":"bad request token"}"#);
        }
        let aud = seen
            .path
            .split("audience=")
            .nth(1)
            .unwrap_or("")
            .split('&')
            .next()
            .unwrap_or("")
            .to_string();
        Answer::new(
            200,
            &json!({ "value": id_token(&signer, &aud, "acme/infra") }).to_string(),
        )
    })
    .await;
    let sources = Sources::new(Some(config(vec![
        ("VAULT_ADDR", bao.addr.clone()),
        ("VAULT_AUTH", "jwt".into()),
        ("VAULT_JWT_ROLE", "rotor".into()),
        ("VAULT_JWT_AUDIENCE", "rotor".into()),
        (
            "ACTIONS_ID_TOKEN_REQUEST_URL",
            format!("{}/_apis/token?api-version=2.0", runtime.url),
        ),
        (
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
            "runtime-request-token".into(),
        ),
    ])))
    .unwrap();
    let value = sources.read(&kv(), 1).await.expect("read");
    assert_eq!(value.fields["value"].expose_secret(), "from-vault");
    sources
        .vault()
        .unwrap()
        .login()
        .await
        .expect("a second login");
    let asked = runtime.seen();
    assert_eq!(asked.len(), 2, "one ID token per login: {asked:?}");
    assert!(asked.iter().all(|s| s.path.contains("audience=rotor")));
}

#[tokio::test]
async fn kubernetes_login_sends_the_role_and_the_service_account_token() {
    let vault = Fake::start(|seen| match seen.path.as_str() {
        "/v1/auth/k8s-prod/login" => Answer::new(
            200,
            r#"{"auth":{"client_token":"hvs.k8s-issued","lease_duration":300,"renewable":true}}"#,
        ),
        "/v1/sys/health" => Answer::new(200, r#"{"initialized":true,"sealed":false}"#),
        _ => Answer::new(200, r#"{"data":{"ttl":300,"renewable":true}}"#),
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "eyJ.service-account.token\n").unwrap();
    let sources = Sources::new(Some(config(vec![
        ("VAULT_ADDR", vault.url.clone()),
        ("VAULT_AUTH", "kubernetes".into()),
        ("VAULT_K8S_ROLE", "rotor".into()),
        ("VAULT_K8S_MOUNT", "k8s-prod".into()),
        ("VAULT_K8S_TOKEN_PATH", token.display().to_string()),
    ])))
    .unwrap();
    let ttl = sources.vault().unwrap().login().await.expect("login");
    assert_eq!(ttl, Duration::from_secs(300));
    sources.health().await.expect("the issued token is used");
    let seen = vault.seen();
    let login = seen
        .iter()
        .find(|s| s.path == "/v1/auth/k8s-prod/login")
        .expect("a login request");
    assert_eq!(login.method, "POST");
    let body: Value = serde_json::from_str(&login.body).expect("a JSON body");
    assert_eq!(
        body,
        json!({"role": "rotor", "jwt": "eyJ.service-account.token"})
    );
    assert!(
        login.header("x-vault-token").is_none(),
        "a login carries no token"
    );
    let after: Vec<_> = seen
        .iter()
        .filter(|s| s.path != "/v1/auth/k8s-prod/login")
        .collect();
    assert!(after
        .iter()
        .any(|s| s.header("x-vault-token") == Some("hvs.k8s-issued")));
}

#[tokio::test]
async fn in_actions_mode_failures_are_annotations_the_summary_is_a_table_and_audit_records_name_the_run(
) {
    use crate::util::emu;
    use crate::util::rotor::Workspace;
    use github_emulator::{FaultRule, FleetSpec, TokenSpec};
    let mut spec = FleetSpec::generate(&["acme"], 2);
    // A token shaped like the workflow's own GITHUB_TOKEN (ghs_...).
    spec.tokens = vec![TokenSpec::all("ghs_workflowtokenlookalike")];
    let (emu, handle) = emu::start(spec).await;
    emu.add_fault(
        FaultRule::new("/repos/acme/svc-0002/actions/secrets/DEPLOY_TOKEN", 403)
            .method("PUT")
            .message("Resource not accessible by integration"),
    );
    let mut ws = Workspace::new(&handle.url, "ghs_workflowtokenlookalike", None);
    let summary = ws.path().join("summary.md");
    for (k, v) in [
        ("GITHUB_ACTIONS", "true".to_string()),
        ("GITHUB_STEP_SUMMARY", summary.display().to_string()),
        ("GITHUB_REPOSITORY", "acme/infra".into()),
        ("GITHUB_RUN_ID", "987654321".into()),
        ("GITHUB_RUN_NUMBER", "42".into()),
        ("GITHUB_WORKFLOW", "rotate secrets".into()),
    ] {
        ws.extra_env.push((k.into(), v));
    }
    ws.write_policy(
        "p.yaml",
        "version: 1\nname: deploy\nsource:\n  generate: { length: 32 }\nsecrets:\n  DEPLOY_TOKEN: value\ntargets:\n  - org: acme\n",
    );
    let run = ws.run(&["apply", "--output", "json"]).await.expect_code(1);
    let json: Value = serde_json::from_str(&run.stdout).expect("stdout stays JSON");
    assert_eq!(json["report"]["summary"]["failed"], 1);
    assert!(
        run.stderr.lines().any(
            |l| l.starts_with("::error title=rotor%3A deploy acme/svc-0002::")
                && l.contains("Resource not accessible by integration")
        ),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("::warning title=rotor%3A credentials::")
            && run
                .stderr
                .contains("cannot write repository, environment or organization secrets"),
        "the workflow token is explained: {}",
        run.stderr
    );
    let md = std::fs::read_to_string(&summary).expect("a job summary");
    assert!(
        md.contains("| policy | version | rotated | pushed | failed |"),
        "{md}"
    );
    assert!(md.contains("| deploy | 1 |"), "{md}");
    let value = emu
        .decrypted(
            &github_emulator::Scope::Repo {
                owner: "acme".into(),
                repo: "svc-0001".into(),
                app: github_emulator::App::Actions,
            },
            "DEPLOY_TOKEN",
        )
        .expect("pushed");
    assert!(!md.contains(&value) && !run.stderr.contains(&value) && !run.stdout.contains(&value));
    let audit = std::fs::read_to_string(ws.state().join("audit.jsonl")).unwrap();
    assert!(
        audit.lines().all(|l| l.contains(r#""run":{"repository":"acme/infra","workflow":"rotate secrets","run_id":"987654321","run_number":"42""#)),
        "{audit}"
    );
}
