//! The GitHub emulator over real HTTP: decryption of sealed values, GitHub's refusals and
//! status codes, tokens, pagination, organization secret access, inspection, faults,
//! latency, counters and rate limits.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use github_emulator::Scope as SecretScope;
use github_emulator::{App, Visibility};
use github_emulator::{
    FaultRule, FleetSpec, LimitsSpec, OrgSpec, RepoSpec, RepoVisibility, TokenSpec,
};
use reqwest::Method;
use secrecy::ExposeSecret;
use serde_json::{json, Value};

use crate::util::emu::{next_link, seal, start, Gh};

const REPO_SECRETS: &str = "/repos/acme/svc-0001/actions/secrets";

fn repo_scope(repo: &str, app: App) -> SecretScope {
    SecretScope::Repo {
        owner: "acme".into(),
        repo: repo.into(),
        app,
    }
}

fn small_fleet() -> FleetSpec {
    FleetSpec::generate(&["acme"], 5)
}

#[tokio::test]
async fn a_sealed_value_is_decrypted_and_kept_with_201_then_204() {
    let (emu, server) = start(small_fleet()).await;
    let gh = Gh::new(&server);

    let created = gh
        .put_secret(REPO_SECRETS, "DEPLOY_TOKEN", "first-value")
        .await;
    assert_eq!(created.status(), 201);
    assert_eq!(created.json::<Value>().await.expect("JSON"), json!({}));
    let scope = repo_scope("svc-0001", App::Actions);
    assert_eq!(
        emu.decrypted(&scope, "DEPLOY_TOKEN").as_deref(),
        Some("first-value")
    );

    let updated = gh
        .put_secret(REPO_SECRETS, "DEPLOY_TOKEN", "second-value")
        .await;
    assert_eq!(updated.status(), 204);
    assert!(updated.bytes().await.expect("body").is_empty());
    assert_eq!(
        emu.decrypted(&scope, "DEPLOY_TOKEN").as_deref(),
        Some("second-value")
    );

    let info = emu
        .secret_info(&scope, "deploy_token")
        .expect("secret exists");
    assert_eq!(info.writes, 2);
    assert_eq!(info.key_id, gh.public_key(REPO_SECRETS).await.0);
    assert!(info.updated_at >= info.created_at);

    let meta = gh.get_json(&format!("{REPO_SECRETS}/DEPLOY_TOKEN")).await;
    assert_eq!(meta["name"], "DEPLOY_TOKEN");
    assert!(meta.get("value").is_none() && meta.get("encrypted_value").is_none());
    let created_at = meta["created_at"].as_str().expect("created_at");
    assert!(
        created_at.ends_with('Z') && created_at.len() == 20,
        "second precision: {created_at}"
    );
}

#[tokio::test]
async fn a_stale_key_id_is_refused_with_422() {
    let (emu, server) = start(small_fleet()).await;
    let gh = Gh::new(&server);
    let (key_id, key) = gh.public_key(REPO_SECRETS).await;
    let body = json!({ "encrypted_value": seal(&key, b"v"), "key_id": format!("{key_id}0") });
    let resp = gh.put_json(&format!("{REPO_SECRETS}/TOKEN"), &body).await;
    assert_eq!(resp.status(), 422);
    let err: Value = resp.json().await.expect("JSON");
    assert_eq!(err["status"], "422");
    assert_eq!(err["errors"][0]["field"], "key_id");
    assert!(emu.secrets().is_empty());
}

#[tokio::test]
async fn a_rotated_key_makes_the_old_key_id_stale() {
    let (emu, server) = start(small_fleet()).await;
    let gh = Gh::new(&server);
    let (old_id, old_key) = gh.public_key(REPO_SECRETS).await;
    let new_id = emu
        .rotate_key(&repo_scope("svc-0001", App::Actions))
        .expect("scope exists");
    assert_ne!(new_id, old_id);

    let body = json!({ "encrypted_value": seal(&old_key, b"v"), "key_id": old_id });
    assert_eq!(
        gh.put_json(&format!("{REPO_SECRETS}/TOKEN"), &body)
            .await
            .status(),
        422
    );
    // Sealed to the old key but claiming the new id: it cannot be opened.
    let body = json!({ "encrypted_value": seal(&old_key, b"v"), "key_id": new_id });
    assert_eq!(
        gh.put_json(&format!("{REPO_SECRETS}/TOKEN"), &body)
            .await
            .status(),
        422
    );
    assert_eq!(gh.public_key(REPO_SECRETS).await.0, new_id);
    assert_eq!(
        gh.put_secret(REPO_SECRETS, "TOKEN", "v").await.status(),
        201
    );

    // Over HTTP too.
    let rotated: Value = gh
        .http
        .post(format!("{}/_emulator/keys/rotate", server.url))
        .json(&json!({ "scope": { "kind": "repo", "owner": "acme", "repo": "svc-0001", "app": "actions" } }))
        .send()
        .await
        .expect("answered")
        .json()
        .await
        .expect("JSON");
    assert_ne!(rotated["key_id"].as_str(), Some(new_id.as_str()));
    assert_eq!(
        gh.public_key(REPO_SECRETS).await.0,
        rotated["key_id"].as_str().expect("key_id")
    );
}

#[tokio::test]
async fn garbage_ciphertext_and_bad_base64_are_refused_with_422() {
    let (emu, server) = start(small_fleet()).await;
    let gh = Gh::new(&server);
    let (key_id, _) = gh.public_key(REPO_SECRETS).await;
    let path = format!("{REPO_SECRETS}/TOKEN");
    for value in [
        // valid base64, 64 random-looking bytes: not a sealed box for this key
        "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0NTY3ODk=",
        // too short to be a sealed box at all
        "AAAA",
    ] {
        let resp = gh
            .put_json(
                &path,
                &json!({ "encrypted_value": value, "key_id": key_id }),
            )
            .await;
        assert_eq!(resp.status(), 422, "{value}");
    }
    for value in ["not base64!", "QUJD-_==", "QUJDRA", ""] {
        let resp = gh
            .put_json(
                &path,
                &json!({ "encrypted_value": value, "key_id": key_id }),
            )
            .await;
        assert_eq!(resp.status(), 422, "{value:?}");
        let err: Value = resp.json().await.expect("JSON");
        assert!(err["message"]
            .as_str()
            .expect("message")
            .starts_with("Invalid request."));
    }
    assert!(emu.secrets().is_empty());
}

#[tokio::test]
async fn a_value_over_48_kb_is_refused_and_48_kb_exactly_is_kept() {
    let (emu, server) = start(small_fleet()).await;
    let gh = Gh::new(&server);
    let limit = 48 * 1024;
    let over = "x".repeat(limit + 1);
    assert_eq!(
        gh.put_secret(REPO_SECRETS, "BIG", &over).await.status(),
        422
    );
    let exact = "y".repeat(limit);
    assert_eq!(
        gh.put_secret(REPO_SECRETS, "BIG", &exact).await.status(),
        201
    );
    assert_eq!(
        emu.decrypted(&repo_scope("svc-0001", App::Actions), "BIG")
            .map(|v| v.len()),
        Some(limit)
    );
}

#[tokio::test]
async fn names_starting_with_github_or_a_digit_or_with_other_characters_are_refused_with_422() {
    let (emu, server) = start(small_fleet()).await;
    let gh = Gh::new(&server);
    for name in [
        "GITHUB_TOKEN",
        "github_x",
        "1TOKEN",
        "MY-TOKEN",
        "MY%20TOKEN",
    ] {
        let resp = gh.put_secret(REPO_SECRETS, name, "v").await;
        assert_eq!(resp.status(), 422, "{name}");
        let err: Value = resp.json().await.expect("JSON");
        assert_eq!(err["errors"][0]["field"], "name", "{name}");
    }
    assert!(emu.secrets().is_empty());
}

#[tokio::test]
async fn a_lower_case_name_is_stored_upper_case_and_updated_case_insensitively() {
    let (emu, server) = start(small_fleet()).await;
    let gh = Gh::new(&server);
    assert_eq!(
        gh.put_secret(REPO_SECRETS, "npm_token", "a").await.status(),
        201
    );
    assert_eq!(
        gh.put_secret(REPO_SECRETS, "Npm_Token", "b").await.status(),
        204
    );
    let list = gh.get_json(REPO_SECRETS).await;
    assert_eq!(list["total_count"], 1);
    assert_eq!(list["secrets"][0]["name"], "NPM_TOKEN");
    assert_eq!(
        gh.get(&format!("{REPO_SECRETS}/npm_token")).await.status(),
        200
    );
    assert_eq!(
        emu.decrypted(&repo_scope("svc-0001", App::Actions), "NPM_TOKEN")
            .as_deref(),
        Some("b")
    );
    assert_eq!(
        gh.delete(&format!("{REPO_SECRETS}/nPm_ToKeN"))
            .await
            .status(),
        204
    );
    assert_eq!(
        gh.delete(&format!("{REPO_SECRETS}/NPM_TOKEN"))
            .await
            .status(),
        404
    );
    assert_eq!(
        gh.get(&format!("{REPO_SECRETS}/NPM_TOKEN")).await.status(),
        404
    );
}

#[tokio::test]
async fn the_101st_repository_secret_is_refused_with_422_but_updates_still_work() {
    let (emu, server) = start(small_fleet()).await;
    let gh = Gh::new(&server);
    let scope = repo_scope("svc-0001", App::Actions);
    for i in 0..100 {
        assert!(emu.insert_secret(&scope, &format!("S{i:03}"), "seed"));
    }
    let resp = gh.put_secret(REPO_SECRETS, "ONE_MORE", "v").await;
    assert_eq!(resp.status(), 422);
    assert_eq!(gh.put_secret(REPO_SECRETS, "S000", "v").await.status(), 204);
    // Each app counts separately.
    assert_eq!(
        gh.put_secret("/repos/acme/svc-0001/dependabot/secrets", "ONE_MORE", "v")
            .await
            .status(),
        201
    );
    let page = gh
        .get_json(&format!("{REPO_SECRETS}?per_page=100&page=1"))
        .await;
    assert_eq!(page["total_count"], 100);
    assert_eq!(page["secrets"].as_array().map(Vec::len), Some(100));
}

#[tokio::test]
async fn callers_without_a_token_a_known_token_or_access_get_401_401_and_404() {
    let mut spec = FleetSpec::generate(&["acme"], 4);
    spec.tokens = vec![
        TokenSpec::all("admin"),
        TokenSpec {
            token: "one-repo".into(),
            orgs: vec![],
            repos: vec!["acme/svc-0001".into()],
        },
    ];
    let (_emu, server) = start(spec).await;

    let anonymous = Gh::with_token(&server, None);
    let resp = anonymous.get(REPO_SECRETS).await;
    assert_eq!(resp.status(), 401);
    let err: Value = resp.json().await.expect("JSON");
    assert_eq!(err["message"], "Requires authentication");
    assert_eq!(err["documentation_url"], "https://docs.github.com/rest");
    assert_eq!(err["status"], "401");

    let bad = Gh::with_token(&server, Some("nope"));
    let resp = bad.get("/repos/acme/svc-0001").await;
    assert_eq!(resp.status(), 401);
    assert_eq!(
        resp.json::<Value>().await.expect("JSON")["message"],
        "Bad credentials"
    );

    let one = Gh::with_token(&server, Some("one-repo"));
    assert_eq!(one.get(REPO_SECRETS).await.status(), 200);
    // svc-0004 is private (every 4th): its existence is hidden.
    assert_eq!(one.get("/repos/acme/svc-0004").await.status(), 404);
    assert_eq!(
        one.get("/repos/acme/svc-0004/actions/secrets")
            .await
            .status(),
        404
    );
    let body = json!({ "encrypted_value": "AAAA", "key_id": "1" });
    assert_eq!(
        one.put_json("/repos/acme/svc-0004/actions/secrets/X", &body)
            .await
            .status(),
        404
    );
    // svc-0002 is public: readable, but its secrets are not the token's.
    assert_eq!(one.get("/repos/acme/svc-0002").await.status(), 200);
    assert_eq!(
        one.get("/repos/acme/svc-0002/actions/secrets")
            .await
            .status(),
        403
    );
    assert_eq!(one.get("/orgs/acme/actions/secrets").await.status(), 403);
    let listed: Vec<Value> = one
        .get("/orgs/acme/repos")
        .await
        .json()
        .await
        .expect("JSON");
    let names: HashSet<&str> = listed.iter().filter_map(|r| r["name"].as_str()).collect();
    assert_eq!(names, HashSet::from(["svc-0001", "svc-0002", "svc-0003"]));

    let admin = Gh::with_token(&server, Some("admin"));
    assert_eq!(admin.get("/repos/acme/svc-0004").await.status(), 200);
    assert_eq!(admin.get("/repos/acme/nope").await.status(), 404);
    assert_eq!(admin.get("/orgs/nope/repos").await.status(), 404);
}

#[tokio::test]
async fn requests_without_user_agent_are_403_and_unknown_api_versions_are_400() {
    let (_emu, server) = start(small_fleet()).await;
    let bare = reqwest::Client::new();
    let resp = bare
        .get(format!("{}/repos/acme/svc-0001", server.url))
        .bearer_auth("emulator-token")
        .send()
        .await
        .expect("answered");
    assert_eq!(resp.status(), 403);
    assert!(resp.json::<Value>().await.expect("JSON")["message"]
        .as_str()
        .expect("message")
        .contains("User-Agent"));

    let gh = Gh::new(&server);
    let resp = gh
        .req_version(Method::GET, "/repos/acme/svc-0001", "2021-01-01")
        .send()
        .await
        .expect("answered");
    assert_eq!(resp.status(), 400);
    let msg = resp.json::<Value>().await.expect("JSON")["message"]
        .as_str()
        .map(String::from);
    assert!(msg
        .expect("message")
        .contains("Unsupported 'X-GitHub-Api-Version' header"));
    let resp = gh
        .req_version(Method::GET, "/repos/acme/svc-0001", "2026-03-10")
        .send()
        .await
        .expect("answered");
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["x-github-api-version-selected"],
        "2026-03-10"
    );
    let repo: Value = resp.json().await.expect("JSON");
    assert!(
        repo.get("has_downloads").is_none(),
        "2026-03-10 drops has_downloads"
    );
}

#[tokio::test]
async fn malformed_json_is_400_and_missing_fields_are_422() {
    let (_emu, server) = start(small_fleet()).await;
    let gh = Gh::new(&server);
    let path = format!("{REPO_SECRETS}/TOKEN");
    let resp = gh
        .req(Method::PUT, &path)
        .header("content-type", "application/json")
        .body("{\"encrypted_value\": ")
        .send()
        .await
        .expect("answered");
    assert_eq!(resp.status(), 400);
    assert_eq!(
        resp.json::<Value>().await.expect("JSON")["message"],
        "Problems parsing JSON"
    );

    let (key_id, key) = gh.public_key(REPO_SECRETS).await;
    let resp = gh.put_json(&path, &json!({ "key_id": key_id })).await;
    assert_eq!(resp.status(), 422);
    assert!(resp.json::<Value>().await.expect("JSON")["message"]
        .as_str()
        .expect("message")
        .contains("\"encrypted_value\" wasn't supplied"));
    let resp = gh
        .put_json(&path, &json!({ "encrypted_value": seal(&key, b"v") }))
        .await;
    assert_eq!(resp.status(), 422);
    let resp = gh
        .put_json(
            &path,
            &json!({ "encrypted_value": seal(&key, b"v"), "key_id": 7 }),
        )
        .await;
    assert_eq!(resp.status(), 422);

    // Organization Actions secrets also need visibility.
    let (org_key_id, org_key) = gh.public_key("/orgs/acme/actions/secrets").await;
    let resp = gh
        .put_json(
            "/orgs/acme/actions/secrets/TOKEN",
            &json!({ "encrypted_value": seal(&org_key, b"v"), "key_id": org_key_id }),
        )
        .await;
    assert_eq!(resp.status(), 422);
    assert!(resp.json::<Value>().await.expect("JSON")["message"]
        .as_str()
        .expect("message")
        .contains("\"visibility\" wasn't supplied"));
}

#[tokio::test]
async fn org_repos_paginate_with_link_headers_over_250_repos() {
    let (emu, server) = start(FleetSpec::generate(&["acme"], 250)).await;
    let gh = Gh::new(&server);
    let first = gh.get("/orgs/acme/repos?per_page=100").await;
    let link = first.headers()["link"].to_str().expect("text").to_string();
    assert!(
        link.contains("rel=\"next\"") && link.contains("rel=\"last\""),
        "{link}"
    );
    assert!(
        link.contains(&format!(
            "<{}/orgs/acme/repos?per_page=100&page=3>; rel=\"last\"",
            server.url
        )),
        "{link}"
    );

    let mut seen = Vec::new();
    let mut url = Some(format!("{}/orgs/acme/repos?per_page=100", server.url));
    let mut pages = 0;
    while let Some(u) = url {
        let resp = gh.get(&u).await;
        assert_eq!(resp.status(), 200);
        url = next_link(&resp);
        let page: Vec<Value> = resp.json().await.expect("JSON");
        seen.extend(page.iter().map(|r| r["id"].as_u64().expect("id")));
        pages += 1;
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 250);
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 250);
    assert!(seen.contains(&emu.repo_id("acme", "svc-0250").expect("id")));

    // Default page size is 30, newest first; the last page links back but not forward.
    let default: Vec<Value> = gh.get("/orgs/acme/repos").await.json().await.expect("JSON");
    assert_eq!(default.len(), 30);
    assert_eq!(default[0]["name"], "svc-0250");
    let last = gh.get("/orgs/acme/repos?per_page=100&page=3").await;
    let link = last.headers()["link"].to_str().expect("text").to_string();
    assert!(
        link.contains("rel=\"prev\"")
            && link.contains("rel=\"first\"")
            && !link.contains("rel=\"next\"")
    );
    let by_name: Vec<Value> = gh
        .get("/orgs/acme/repos?sort=full_name&per_page=2")
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(by_name[0]["name"], "svc-0001");

    let private: Vec<Value> = gh
        .get("/orgs/acme/repos?type=private&per_page=100")
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(private.len(), 62);
    assert!(private
        .iter()
        .all(|r| r["private"] == true && r["visibility"] == "private"));
}

#[tokio::test]
async fn repository_listing_carries_topics_archived_and_visibility() {
    let (_emu, server) = start(FleetSpec::generate(&["acme"], 10)).await;
    let gh = Gh::new(&server);
    let repo = gh.get_json("/repos/acme/svc-0003").await;
    assert_eq!(repo["full_name"], "acme/svc-0003");
    assert_eq!(repo["topics"], json!(["pci", "team-a"]));
    assert_eq!(repo["archived"], false);
    assert_eq!(repo["owner"]["login"], "acme");
    assert_eq!(repo["permissions"]["admin"], true);
    assert_eq!(gh.get_json("/repos/acme/svc-0010").await["archived"], true);
    assert_eq!(
        gh.get_json("/repos/acme/svc-0006/topics").await,
        json!({ "names": ["pci", "team-b"] })
    );
    let envs = gh.get_json("/repos/acme/svc-0002/environments").await;
    assert_eq!(envs["total_count"], 2);
    let names: HashSet<&str> = envs["environments"]
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|e| e["name"].as_str())
        .collect();
    assert_eq!(names, HashSet::from(["production", "staging"]));
}

#[tokio::test]
async fn archived_repositories_refuse_secret_writes_with_403() {
    let (_emu, server) = start(FleetSpec::generate(&["acme"], 10)).await;
    let gh = Gh::new(&server);
    let path = "/repos/acme/svc-0010/actions/secrets";
    assert_eq!(gh.get(path).await.status(), 200);
    let resp = gh.put_secret(path, "TOKEN", "v").await;
    assert_eq!(resp.status(), 403);
    assert_eq!(
        resp.json::<Value>().await.expect("JSON")["message"],
        "Repository was archived so is read-only."
    );
}

#[tokio::test]
async fn environment_secrets_use_their_own_key_and_a_missing_environment_is_404() {
    let (emu, server) = start(small_fleet()).await;
    let gh = Gh::new(&server);
    let env_path = "/repos/acme/svc-0002/environments/staging/secrets";
    let repo_key = gh.public_key("/repos/acme/svc-0002/actions/secrets").await;
    let env_key = gh.public_key(env_path).await;
    assert_ne!(repo_key, env_key);
    assert_eq!(
        gh.put_secret(env_path, "DB_PASSWORD", "env-value")
            .await
            .status(),
        201
    );
    let scope = SecretScope::Environment {
        owner: "acme".into(),
        repo: "svc-0002".into(),
        environment: "staging".into(),
    };
    assert_eq!(
        emu.decrypted(&scope, "DB_PASSWORD").as_deref(),
        Some("env-value")
    );
    assert_eq!(gh.get_json(env_path).await["total_count"], 1);
    // The repository scope holds nothing.
    assert_eq!(
        gh.get_json("/repos/acme/svc-0002/actions/secrets").await["total_count"],
        0
    );

    // svc-0001 has no staging environment.
    assert_eq!(
        gh.get("/repos/acme/svc-0001/environments/staging/secrets")
            .await
            .status(),
        404
    );
    assert_eq!(
        gh.get("/repos/acme/svc-0001/environments/staging/secrets/public-key")
            .await
            .status(),
        404
    );
    let body = json!({ "encrypted_value": seal(&env_key.1, b"v"), "key_id": env_key.0 });
    assert_eq!(
        gh.put_json("/repos/acme/svc-0001/environments/staging/secrets/X", &body)
            .await
            .status(),
        404
    );
    // A value sealed to the staging key does not open in production.
    let prod = "/repos/acme/svc-0002/environments/production/secrets";
    let prod_id = gh.public_key(prod).await.0;
    let body = json!({ "encrypted_value": seal(&env_key.1, b"v"), "key_id": prod_id });
    assert_eq!(gh.put_json(&format!("{prod}/X"), &body).await.status(), 422);
}

#[tokio::test]
async fn dependabot_and_codespaces_secrets_have_their_own_keys_and_stores() {
    let (emu, server) = start(small_fleet()).await;
    let gh = Gh::new(&server);
    let mut ids = HashSet::new();
    for app in [App::Actions, App::Dependabot, App::Codespaces] {
        let path = format!("/repos/acme/svc-0001/{}/secrets", app.as_str());
        ids.insert(gh.public_key(&path).await.0);
        assert_eq!(
            gh.put_secret(&path, "SHARED_NAME", app.as_str())
                .await
                .status(),
            201
        );
        assert_eq!(
            emu.decrypted(&repo_scope("svc-0001", app), "SHARED_NAME")
                .as_deref(),
            Some(app.as_str())
        );
    }
    assert_eq!(ids.len(), 3);
    assert_eq!(emu.secrets().len(), 3);
}

#[tokio::test]
async fn org_secret_selected_repositories_can_be_set_replaced_added_removed_and_409_when_not_selected(
) {
    let (emu, server) = start(small_fleet()).await;
    let gh = Gh::new(&server);
    let base = "/orgs/acme/actions/secrets";
    let id = |n: &str| emu.repo_id("acme", n).expect("repo id");
    let (r1, r2, r3) = (id("svc-0001"), id("svc-0002"), id("svc-0003"));

    let resp = gh
        .put_secret_with(
            base,
            "ORG_TOKEN",
            "org-value",
            json!({ "visibility": "selected", "selected_repository_ids": [r1, r2] }),
        )
        .await;
    assert_eq!(resp.status(), 201);
    let scope = SecretScope::Org {
        org: "acme".into(),
        app: App::Actions,
    };
    assert_eq!(
        emu.decrypted(&scope, "ORG_TOKEN").as_deref(),
        Some("org-value")
    );
    let info = emu.secret_info(&scope, "ORG_TOKEN").expect("exists");
    assert_eq!(info.visibility, Some(Visibility::Selected));
    assert_eq!(info.selected_repository_ids, vec![r1, r2]);
    let meta = gh.get_json(&format!("{base}/ORG_TOKEN")).await;
    assert_eq!(meta["visibility"], "selected");
    assert!(meta["selected_repositories_url"]
        .as_str()
        .expect("url")
        .ends_with("/orgs/acme/actions/secrets/ORG_TOKEN/repositories"));

    let listed = gh.get_json(&format!("{base}/ORG_TOKEN/repositories")).await;
    assert_eq!(listed["total_count"], 2);

    let repos = format!("{base}/ORG_TOKEN/repositories");
    assert_eq!(
        gh.put_json(&repos, &json!({ "selected_repository_ids": [r3] }))
            .await
            .status(),
        204
    );
    assert_eq!(
        emu.secret_info(&scope, "ORG_TOKEN")
            .expect("exists")
            .selected_repository_ids,
        vec![r3]
    );
    assert_eq!(
        gh.req(Method::PUT, &format!("{repos}/{r1}"))
            .send()
            .await
            .expect("answered")
            .status(),
        204
    );
    assert_eq!(gh.delete(&format!("{repos}/{r3}")).await.status(), 204);
    assert_eq!(
        emu.secret_info(&scope, "ORG_TOKEN")
            .expect("exists")
            .selected_repository_ids,
        vec![r1]
    );
    // Ids outside the organization are refused; a non-numeric id names nothing.
    assert_eq!(
        gh.req(Method::PUT, &format!("{repos}/999"))
            .send()
            .await
            .expect("answered")
            .status(),
        422
    );
    assert_eq!(
        gh.put_json(&repos, &json!({ "selected_repository_ids": [r1, 999] }))
            .await
            .status(),
        422
    );
    assert_eq!(
        gh.req(Method::PUT, &format!("{repos}/abc"))
            .send()
            .await
            .expect("answered")
            .status(),
        404
    );
    assert_eq!(gh.put_json(&repos, &json!({})).await.status(), 422);

    // The repository sees the organization secret it was given.
    let shared = gh
        .get_json("/repos/acme/svc-0001/actions/organization-secrets")
        .await;
    assert_eq!(shared["secrets"][0]["name"], "ORG_TOKEN");
    assert_eq!(
        gh.get_json("/repos/acme/svc-0002/actions/organization-secrets")
            .await["total_count"],
        0
    );

    // Visibility all: the list cannot be changed.
    assert_eq!(
        gh.put_secret_with(base, "ORG_TOKEN", "v2", json!({ "visibility": "all" }))
            .await
            .status(),
        204
    );
    assert_eq!(
        gh.put_json(&repos, &json!({ "selected_repository_ids": [r1] }))
            .await
            .status(),
        409
    );
    assert_eq!(
        gh.req(Method::PUT, &format!("{repos}/{r1}"))
            .send()
            .await
            .expect("answered")
            .status(),
        409
    );
    assert_eq!(gh.delete(&format!("{repos}/{r1}")).await.status(), 409);
    let resp = gh
        .put_secret_with(
            base,
            "ORG_TOKEN",
            "v3",
            json!({ "visibility": "private", "selected_repository_ids": [r1] }),
        )
        .await;
    assert_eq!(resp.status(), 422);
    assert_eq!(
        gh.get(&format!("{base}/NOPE/repositories")).await.status(),
        404
    );
}

#[tokio::test]
async fn dependabot_org_secrets_can_change_access_without_a_new_value() {
    let (emu, server) = start(small_fleet()).await;
    let gh = Gh::new(&server);
    let base = "/orgs/acme/dependabot/secrets";
    // Creating needs a value.
    assert_eq!(
        gh.put_json(&format!("{base}/DEP"), &json!({ "visibility": "all" }))
            .await
            .status(),
        422
    );
    assert_eq!(
        gh.put_secret_with(base, "DEP", "dep-value", json!({ "visibility": "all" }))
            .await
            .status(),
        201
    );
    let r2 = emu.repo_id("acme", "svc-0002").expect("id");
    let resp = gh
        .put_json(
            &format!("{base}/DEP"),
            &json!({ "visibility": "selected", "selected_repository_ids": [r2.to_string()] }),
        )
        .await;
    assert_eq!(resp.status(), 204);
    let scope = SecretScope::Org {
        org: "acme".into(),
        app: App::Dependabot,
    };
    let info = emu.secret_info(&scope, "DEP").expect("exists");
    assert_eq!(
        (info.visibility, info.selected_repository_ids),
        (Some(Visibility::Selected), vec![r2])
    );
    assert_eq!(emu.decrypted(&scope, "DEP").as_deref(), Some("dep-value"));
}

#[tokio::test]
async fn a_fault_rule_is_answered_then_expires() {
    let (emu, server) = start(small_fleet()).await;
    let gh = Gh::new(&server);
    emu.add_fault(
        FaultRule::new("/actions/secrets/TOKEN", 502)
            .method("PUT")
            .times(2)
            .retry_after(3),
    );
    for _ in 0..2 {
        let resp = gh.put_secret(REPO_SECRETS, "TOKEN", "v").await;
        assert_eq!(resp.status(), 502);
        assert_eq!(resp.headers()["retry-after"], "3");
        let err: Value = resp.json().await.expect("JSON");
        assert_eq!(
            (err["message"].as_str(), err["status"].as_str()),
            (Some("Bad Gateway"), Some("502"))
        );
    }
    assert_eq!(
        gh.put_secret(REPO_SECRETS, "TOKEN", "v").await.status(),
        201
    );

    // Over HTTP: added, answered, cleared.
    let http = &gh.http;
    let added = http
        .post(format!("{}/_emulator/faults", server.url))
        .json(&json!({ "path_contains": "/orgs/acme/repos", "status": 500, "message": "boom" }))
        .send()
        .await
        .expect("answered");
    assert_eq!(added.status(), 201);
    let resp = gh.get("/orgs/acme/repos").await;
    assert_eq!(resp.status(), 500);
    assert_eq!(resp.json::<Value>().await.expect("JSON")["message"], "boom");
    assert_eq!(emu.faults().len(), 1);
    http.delete(format!("{}/_emulator/faults", server.url))
        .send()
        .await
        .expect("answered");
    assert_eq!(gh.get("/orgs/acme/repos").await.status(), 200);
}

#[tokio::test]
async fn latency_is_added_to_every_api_response_but_not_to_inspection() {
    let (emu, server) = start(small_fleet()).await;
    let gh = Gh::new(&server);
    gh.get("/repos/acme/svc-0001").await;
    let emu = emu.with_latency(Duration::from_millis(150));
    let t = Instant::now();
    assert_eq!(gh.get("/repos/acme/svc-0001").await.status(), 200);
    assert!(
        t.elapsed() >= Duration::from_millis(150),
        "{:?}",
        t.elapsed()
    );
    let t = Instant::now();
    assert_eq!(gh.get("/nothing/here").await.status(), 404);
    assert!(t.elapsed() >= Duration::from_millis(150));
    let t = Instant::now();
    gh.http
        .get(format!("{}/_emulator/counters", server.url))
        .send()
        .await
        .expect("answered");
    assert!(t.elapsed() < Duration::from_millis(150));
    emu.set_latency(Duration::ZERO);
}

#[tokio::test]
async fn concurrent_requests_are_counted_at_their_peak() {
    let (emu, server) = start(small_fleet()).await;
    let emu = emu.with_latency(Duration::from_millis(200));
    let gh = Gh::new(&server);
    let calls = (0..5).map(|_| {
        let gh = gh.clone();
        async move { gh.get("/repos/acme/svc-0001").await.status() }
    });
    let statuses = futures::future::join_all(calls).await;
    assert!(statuses.iter().all(|s| *s == 200));
    assert_eq!(emu.counters().peak_concurrent, 5);
}

#[tokio::test]
async fn more_concurrent_requests_than_allowed_hit_the_secondary_limit() {
    let mut spec = small_fleet();
    spec.limits.max_concurrent = Some(2);
    let (emu, server) = start(spec).await;
    let _emu = emu.with_latency(Duration::from_millis(300));
    let gh = Gh::new(&server);
    let calls = (0..4).map(|_| {
        let gh = gh.clone();
        async move {
            let resp = gh.get("/repos/acme/svc-0001").await;
            (
                resp.status().as_u16(),
                resp.headers().get("retry-after").is_some(),
            )
        }
    });
    let results = futures::future::join_all(calls).await;
    assert_eq!(
        results.iter().filter(|(s, _)| *s == 200).count(),
        2,
        "{results:?}"
    );
    assert!(
        results
            .iter()
            .filter(|(s, _)| *s == 403)
            .all(|(_, retry)| *retry),
        "{results:?}"
    );
}

#[tokio::test]
async fn counters_count_requests_by_route_template_and_status() {
    let (emu, server) = start(small_fleet()).await;
    let gh = Gh::new(&server);
    gh.put_secret(REPO_SECRETS, "A", "1").await;
    gh.put_secret(REPO_SECRETS, "A", "2").await;
    gh.put_secret("/repos/acme/svc-0002/actions/secrets", "B", "3")
        .await;
    gh.get("/nope").await;
    let c = emu.counters();
    let put = "PUT /repos/{owner}/{repo}/actions/secrets/{secret_name}";
    assert_eq!(c.route(put), 3);
    assert_eq!(c.route_status(put, 201), 2);
    assert_eq!(c.route_status(put, 204), 1);
    assert_eq!(
        c.route("GET /repos/{owner}/{repo}/actions/secrets/public-key"),
        3
    );
    assert_eq!(c.route("unmatched"), 1);
    assert_eq!(c.total, 7);
    assert_eq!(c.by_status.get(&404), Some(&1));

    let over_http: Value = gh
        .http
        .get(format!("{}/_emulator/counters", server.url))
        .send()
        .await
        .expect("answered")
        .json()
        .await
        .expect("JSON");
    assert_eq!(over_http["by_route"][put], 3);
    assert_eq!(emu.counters().total, 7, "inspection is not counted");
    emu.reset_counters();
    assert_eq!(emu.counters().total, 0);
}

#[tokio::test]
async fn every_response_carries_rate_limit_headers_and_a_request_id() {
    let mut spec = small_fleet();
    spec.limits = LimitsSpec {
        requests_per_hour: 3,
        ..LimitsSpec::default()
    };
    let (_emu, server) = start(spec).await;
    let gh = Gh::new(&server);
    let resp = gh.get("/repos/acme/svc-0001").await;
    let h = resp.headers();
    assert_eq!(h["x-ratelimit-limit"], "3");
    assert_eq!(h["x-ratelimit-remaining"], "2");
    assert_eq!(h["x-ratelimit-used"], "1");
    assert_eq!(h["x-ratelimit-resource"], "core");
    assert!(
        h["x-ratelimit-reset"]
            .to_str()
            .expect("text")
            .parse::<i64>()
            .expect("epoch")
            > 1_700_000_000
    );
    assert!(!h["x-github-request-id"].is_empty());
    let missing = gh.get("/repos/acme/nope").await;
    assert_eq!(missing.headers()["x-ratelimit-remaining"], "1");

    // /rate_limit is not charged.
    let rl = gh.get_json("/rate_limit").await;
    assert_eq!(rl["resources"]["core"]["remaining"], 1);
    assert_eq!(rl["rate"]["used"], 2);
    gh.get("/repos/acme/svc-0001").await;
    let refused = gh.get("/repos/acme/svc-0001").await;
    assert_eq!(refused.status(), 403);
    assert_eq!(refused.headers()["x-ratelimit-remaining"], "0");
    let msg = refused.json::<Value>().await.expect("JSON")["message"]
        .as_str()
        .map(String::from);
    assert!(msg.expect("message").starts_with("API rate limit exceeded"));
    let v2026 = gh
        .req_version(Method::GET, "/rate_limit", "2026-03-10")
        .send()
        .await
        .expect("answered")
        .json::<Value>()
        .await
        .expect("JSON");
    assert!(v2026.get("rate").is_none() && v2026["resources"]["core"]["remaining"] == 0);
}

#[tokio::test]
async fn inspection_shows_decrypted_values_and_steers_the_fleet() {
    let (emu, server) = start(small_fleet()).await;
    let gh = Gh::new(&server);
    gh.put_secret(REPO_SECRETS, "VISIBLE", "plain-for-tests")
        .await;
    let http = &gh.http;
    // Values are not served over HTTP unless asked for (tests only, on loopback).
    let off = http
        .get(format!("{}/_emulator/secrets", server.url))
        .send()
        .await
        .expect("answered");
    assert_eq!(off.status(), 404, "value inspection is off by default");
    let emu = emu.expose_values(true);
    let all: Value = http
        .get(format!("{}/_emulator/secrets", server.url))
        .send()
        .await
        .expect("answered")
        .json()
        .await
        .expect("JSON");
    assert_eq!(all[0]["value"], "plain-for-tests");
    assert_eq!(
        all[0]["scope"],
        json!({ "kind": "repo", "owner": "acme", "repo": "svc-0001", "app": "actions" })
    );
    assert_eq!(all[0]["writes"], 1);
    let records = emu.secrets();
    assert_eq!(records[0].value.expose_secret(), "plain-for-tests");

    // Drift: updated_at moves forward, the value stays.
    let scope = repo_scope("svc-0001", App::Actions);
    let before = emu
        .secret_info(&scope, "VISIBLE")
        .expect("exists")
        .updated_at;
    let resp = http
        .post(format!("{}/_emulator/touch", server.url))
        .json(&json!({ "scope": scope, "name": "visible" }))
        .send()
        .await
        .expect("answered");
    assert_eq!(resp.status(), 204);
    let after = emu
        .secret_info(&scope, "VISIBLE")
        .expect("exists")
        .updated_at;
    assert!(after > before);
    let meta = gh.get_json(&format!("{REPO_SECRETS}/VISIBLE")).await;
    assert_eq!(
        meta["updated_at"],
        after.format("%Y-%m-%dT%H:%M:%SZ").to_string()
    );

    // Repositories come and go.
    let added: Value = http
        .post(format!("{}/_emulator/repos", server.url))
        .json(&json!({ "org": "acme", "name": "new-svc", "topics": ["pci"], "environments": ["production"] }))
        .send()
        .await
        .expect("answered")
        .json()
        .await
        .expect("JSON");
    assert_eq!(added["id"].as_u64(), emu.repo_id("acme", "new-svc"));
    assert_eq!(
        gh.get_json("/repos/acme/new-svc/topics").await["names"],
        json!(["pci"])
    );
    let newest: Vec<Value> = gh
        .get("/orgs/acme/repos?per_page=1")
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(newest[0]["name"], "new-svc");
    let id = emu.add_repo(
        "globex",
        RepoSpec::new("api").visibility(RepoVisibility::Internal),
    );
    assert_eq!(
        gh.get_json("/repos/globex/api").await["id"].as_u64(),
        Some(id)
    );
    let removed = http
        .delete(format!("{}/_emulator/repos/acme/new-svc", server.url))
        .send()
        .await
        .expect("answered");
    assert_eq!(removed.status(), 204);
    assert_eq!(gh.get("/repos/acme/new-svc").await.status(), 404);
    assert!(emu.remove_repo("globex", "api"));
    assert!(!emu.remove_repo("globex", "api"));
}

#[tokio::test]
async fn removing_a_repository_drops_it_from_org_secret_selections() {
    let (emu, server) = start(small_fleet()).await;
    let gh = Gh::new(&server);
    let r1 = emu.repo_id("acme", "svc-0001").expect("id");
    let r2 = emu.repo_id("acme", "svc-0002").expect("id");
    let body = json!({ "visibility": "selected", "selected_repository_ids": [r1, r2] });
    assert_eq!(
        gh.put_secret_with("/orgs/acme/codespaces/secrets", "CS", "v", body)
            .await
            .status(),
        201
    );
    emu.remove_repo("acme", "svc-0001");
    let scope = SecretScope::Org {
        org: "acme".into(),
        app: App::Codespaces,
    };
    assert_eq!(
        emu.secret_info(&scope, "CS")
            .expect("exists")
            .selected_repository_ids,
        vec![r2]
    );
}

#[tokio::test]
async fn the_api_is_also_served_under_api_v3_with_links_that_keep_the_prefix() {
    let (emu, server) = start(FleetSpec::generate(&["acme"], 40)).await;
    let gh = Gh::new(&server);
    let resp = gh.get("/api/v3/orgs/acme/repos").await;
    assert_eq!(resp.status(), 200);
    let next = next_link(&resp).expect("two pages");
    assert!(
        next.starts_with(&format!("{}/api/v3/orgs/acme/repos?", server.url)),
        "{next}"
    );
    let repos: Vec<Value> = resp.json().await.expect("JSON");
    assert!(repos[0]["url"]
        .as_str()
        .expect("url")
        .starts_with(&format!("{}/api/v3/repos/acme/", server.url)));
    assert_eq!(
        gh.put_secret("/api/v3/repos/acme/svc-0001/actions/secrets", "V3", "v")
            .await
            .status(),
        201
    );
    assert_eq!(
        emu.counters()
            .route("PUT /repos/{owner}/{repo}/actions/secrets/{secret_name}"),
        1
    );
}

#[tokio::test]
async fn a_generated_fleet_of_10000_repositories_starts_in_well_under_a_second() {
    let spec = FleetSpec::generate(&["acme", "globex"], 5_000);
    let t = Instant::now();
    let (emu, server) = start(spec).await;
    assert!(
        t.elapsed() < Duration::from_millis(700),
        "{:?}",
        t.elapsed()
    );
    assert!(emu.repo_id("globex", "svc-5000").is_some());
    let gh = Gh::new(&server);
    assert_eq!(
        gh.put_secret("/repos/globex/svc-4999/actions/secrets", "LAZY", "v")
            .await
            .status(),
        201
    );
}

#[tokio::test]
async fn a_fleet_file_with_explicit_ids_and_tokens_is_served_as_written() {
    let yaml = r#"
orgs:
  - name: initech
    id: 42
    repos:
      - name: tps-reports
        id: 7
        topics: [PCI, legacy]
        visibility: internal
        environments: [Production]
tokens:
  - token: initech-admin
    orgs: [initech]
"#;
    let spec = FleetSpec::from_yaml_str(yaml).expect("valid fleet");
    let (emu, server) = start(spec).await;
    assert_eq!(emu.repo_id("initech", "TPS-Reports"), Some(7));
    let gh = Gh::with_token(&server, Some("initech-admin"));
    let repo = gh.get_json("/repos/initech/tps-reports").await;
    assert_eq!(
        (repo["id"].as_u64(), repo["owner"]["id"].as_u64()),
        (Some(7), Some(42))
    );
    assert_eq!(repo["topics"], json!(["pci", "legacy"]));
    assert_eq!(repo["visibility"], "internal");
    // Environment names are matched case-insensitively.
    let path = "/repos/initech/tps-reports/environments/production/secrets";
    assert_eq!(gh.put_secret(path, "K", "v").await.status(), 201);
    // The default token does not exist when tokens are listed.
    assert_eq!(
        Gh::new(&server)
            .get("/repos/initech/tps-reports")
            .await
            .status(),
        401
    );
    assert!(github_emulator::Emulator::try_new(FleetSpec {
        orgs: vec![OrgSpec {
            name: "a".into(),
            id: None,
            repos: vec![RepoSpec::new("x"), RepoSpec::new("X")]
        }],
        ..FleetSpec::default()
    })
    .is_err());
}

#[tokio::test]
async fn unknown_paths_and_methods_are_404_with_github_bodies() {
    let (_emu, server) = start(small_fleet()).await;
    let gh = Gh::new(&server);
    let resp = gh.get("/repos/acme/svc-0001/nothing").await;
    assert_eq!(resp.status(), 404);
    assert_eq!(
        resp.json::<Value>().await.expect("JSON")["message"],
        "Not Found"
    );
    let resp = gh
        .req(Method::POST, REPO_SECRETS)
        .send()
        .await
        .expect("answered");
    assert_eq!(resp.status(), 404);
    let anon = Gh::with_token(&server, None);
    assert_eq!(anon.get("/nothing").await.status(), 404);
    assert_eq!(
        Gh::with_token(&server, Some("bad"))
            .get("/nothing")
            .await
            .status(),
        401
    );
}

#[tokio::test]
async fn organization_and_user_endpoints_answer_as_client_libraries_expect() {
    let (_emu, server) = start(FleetSpec::generate(&["acme"], 8)).await;
    let gh = Gh::new(&server);
    let org = gh.get_json("/orgs/acme").await;
    assert_eq!(
        (org["login"].as_str(), org["type"].as_str()),
        (Some("acme"), Some("Organization"))
    );
    assert_eq!(org["public_repos"], 6);
    assert_eq!(gh.get("/orgs/nope").await.status(), 404);
    assert_eq!(gh.get_json("/user").await["login"], "emulator-user-1");
    assert_eq!(
        Gh::with_token(&server, None).get("/user").await.status(),
        401
    );
    let resp = gh.get("/orgs/acme").await;
    assert_eq!(
        resp.headers()["content-type"],
        "application/json; charset=utf-8"
    );
}

#[tokio::test]
async fn environments_hold_100_secrets_and_organizations_1000() {
    let (emu, server) = start(small_fleet()).await;
    let gh = Gh::new(&server);
    let env = SecretScope::Environment {
        owner: "acme".into(),
        repo: "svc-0001".into(),
        environment: "production".into(),
    };
    let org = SecretScope::Org {
        org: "acme".into(),
        app: App::Dependabot,
    };
    for i in 0..100 {
        assert!(emu.insert_secret(&env, &format!("E{i:03}"), "seed"));
    }
    for i in 0..1000 {
        assert!(emu.insert_secret(&org, &format!("O{i:04}"), "seed"));
    }
    let env_path = "/repos/acme/svc-0001/environments/production/secrets";
    assert_eq!(gh.put_secret(env_path, "ONE_MORE", "v").await.status(), 422);
    let org_path = "/orgs/acme/dependabot/secrets";
    let resp = gh
        .put_secret_with(org_path, "ONE_MORE", "v", json!({ "visibility": "all" }))
        .await;
    assert_eq!(resp.status(), 422);
    // Organization Actions secrets are counted apart from Dependabot's.
    let resp = gh
        .put_secret_with(
            "/orgs/acme/actions/secrets",
            "ONE_MORE",
            "v",
            json!({ "visibility": "private" }),
        )
        .await;
    assert_eq!(resp.status(), 201);
    let listing = gh
        .get("/orgs/acme/dependabot/secrets?per_page=100&page=10")
        .await;
    assert!(next_link(&listing).is_none());
    let page: Value = listing.json().await.expect("JSON");
    assert_eq!(
        (
            page["total_count"].as_u64(),
            page["secrets"][99]["name"].as_str()
        ),
        (Some(1000), Some("O0999"))
    );
}
