//! The emulator's answers against GitHub's published REST description
//! (`tests/data/openapi-subset.json`, see the README there): every route the emulator
//! serves that the description has is called, for its success answers and its main error
//! answers, and each answer must conform (status documented, documented headers, body
//! schema). Answers the description does not document are listed in [`UNDOCUMENTED`]
//! with the reason the emulator gives them anyway; nothing is skipped silently.
//!
//! # Adding routes
//!
//! 1. Write an `async fn my_area(api: &Api, ...)` (below, or in a module of `openapi/` as
//!    the Actions routes are) that calls each new route through [`Api::call`] /
//!    [`Api::expect`] (or [`Api::send`] for extra headers): every answer is validated as it
//!    arrives, with the JSON pointer and rule of each mismatch on failure. Call it from
//!    `every_served_route_answers_as_the_description_says`.
//! 2. Answers GitHub gives but the description does not list (most 404s and 422s of the
//!    secrets and Actions endpoints) go into [`UNDOCUMENTED`] with a reason.
//! 3. The same test then probes every operation of the description ([`coverage`]) and
//!    fails for any the emulator routes but no call above validated a success answer of
//!    (a 2xx; a 3xx where the operation documents only that, as the log routes do).
//!
//! Outside this file, `openapi::validate::assert_conforms(&Spec::load(), method, path,
//! status, &headers, &body)` checks a single answer.

mod openapi {
    pub mod actions;
    pub mod client;
    pub mod validate;
}

use std::collections::{BTreeMap, BTreeSet};

use github_emulator::{
    AppKeyPair, AppSpec, Emulator, FleetSpec, InstallationSpec, OrgSpec, RepoSpec, RepoVisibility,
    TokenSpec, DEFAULT_TOKEN,
};
use serde_json::{json, Value};

use openapi::actions::{actions, with_workflows};
use openapi::client::{app_jwt, start, Api, Undocumented, APPS};
use openapi::validate::Spec;

const APP_ID: u64 = 4242;
const TOKEN: Option<&str> = Some(DEFAULT_TOKEN);
/// Manages `acme/web` only.
const LIMITED: &str = "t-web";

const fn u(
    method: &'static str,
    template: &'static str,
    status: u16,
    why: &'static str,
) -> Undocumented {
    Undocumented {
        method,
        template,
        status,
        why,
    }
}

/// Answers the emulator gives that the description does not document. `{app}` stands for
/// `actions`, `dependabot` and `codespaces` alike. Every entry must be hit by the tests
/// (`every_served_route_answers_as_the_description_says` checks), and an entry the
/// description does document fails (so the list cannot go stale).
#[rustfmt::skip]
const UNDOCUMENTED: &[Undocumented] = &[
    // Routes the description (trimmed to what rotor calls) does not have at all.
    u("GET", "/orgs/{org}", 200, "organization lookup: not in the trimmed description"),
    u("GET", "/orgs/{org}", 404, "organization lookup: not in the trimmed description"),
    u("GET", "/user", 200, "the token's user: not in the trimmed description"),
    u("GET", "/user", 401, "the token's user: not in the trimmed description"),
    u("GET", "/repos/{owner}/{repo}/environments/{environment_name}", 200,
      "one environment: not in the trimmed description"),
    u("GET", "/repos/{owner}/{repo}/environments/{environment_name}", 404,
      "one environment: not in the trimmed description"),
    // Statuses GitHub answers that the description leaves out (see secrets-endpoints.md:
    // "Error codes for secret PUT and DELETE are mostly undocumented").
    u("GET", "/orgs/{org}/repos", 304,
      "If-None-Match on a listing: GitHub answers 304 (rotor's listing cache relies on it); \
       the description documents 304 for /user/repos and /installation/repositories only"),
    u("GET", "/orgs/{org}/repos", 404, "unknown organization"),
    u("GET", "/repos/{owner}/{repo}/environments", 404, "unknown repository"),
    u("GET", "/repos/{owner}/{repo}/{app}/secrets", 401, "bad credentials on any route"),
    u("GET", "/repos/{owner}/{repo}/{app}/secrets", 403,
      "a token that does not manage the repository"),
    u("GET", "/repos/{owner}/{repo}/{app}/secrets", 404, "unknown repository"),
    u("GET", "/repos/{owner}/{repo}/{app}/secrets/{secret_name}", 404, "no such secret"),
    u("PUT", "/repos/{owner}/{repo}/{app}/secrets/{secret_name}", 403,
      "archived repository: read-only"),
    u("PUT", "/repos/{owner}/{repo}/{app}/secrets/{secret_name}", 422,
      "key_id is not the scope's current key"),
    u("DELETE", "/repos/{owner}/{repo}/{app}/secrets/{secret_name}", 404, "no such secret"),
    u("GET", "/repos/{owner}/{repo}/environments/{environment_name}/secrets", 404,
      "unknown environment"),
    u("GET", "/repos/{owner}/{repo}/environments/{environment_name}/secrets/{secret_name}",
      404, "no such secret"),
    u("PUT", "/repos/{owner}/{repo}/environments/{environment_name}/secrets/{secret_name}",
      422, "key_id is not the scope's current key"),
    u("DELETE", "/repos/{owner}/{repo}/environments/{environment_name}/secrets/{secret_name}",
      404, "no such secret"),
    u("GET", "/orgs/{org}/{app}/secrets", 404, "unknown organization"),
    u("GET", "/orgs/{org}/{app}/secrets/{secret_name}", 404, "no such secret"),
    // The codespaces variants of the next six are documented; actions and dependabot not.
    u("PUT", "/orgs/{org}/actions/secrets/{secret_name}", 422,
      "key_id is not the scope's current key"),
    u("PUT", "/orgs/{org}/dependabot/secrets/{secret_name}", 422,
      "key_id is not the scope's current key"),
    u("DELETE", "/orgs/{org}/actions/secrets/{secret_name}", 404, "no such secret"),
    u("DELETE", "/orgs/{org}/dependabot/secrets/{secret_name}", 404, "no such secret"),
    u("GET", "/orgs/{org}/actions/secrets/{secret_name}/repositories", 404, "no such secret"),
    u("GET", "/orgs/{org}/dependabot/secrets/{secret_name}/repositories", 404,
      "no such secret"),
    u("PUT", "/orgs/{org}/actions/secrets/{secret_name}/repositories", 409,
      "visibility is not `selected` (documented for codespaces, and for the one-repository \
       routes of every app)"),
    u("PUT", "/orgs/{org}/dependabot/secrets/{secret_name}/repositories", 409,
      "visibility is not `selected` (documented for codespaces, and for the one-repository \
       routes of every app)"),
    u("PUT", "/orgs/{org}/actions/secrets/{secret_name}/repositories/{repository_id}", 422,
      "a repository of another organization"),
    u("PUT", "/orgs/{org}/dependabot/secrets/{secret_name}/repositories/{repository_id}",
      422, "a repository of another organization"),
    u("GET", "/app", 401, "a personal token where a JWT is needed"),
    u("GET", "/orgs/{org}/installation", 404, "the App is not installed there"),
    u("DELETE", "/installation/token", 401, "the token was already revoked"),
    // Actions: the description documents only the success answers of these routes.
    u("GET", "/repos/{owner}/{repo}/actions/workflows", 404, "unknown repository"),
    u("POST", "/repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches", 422,
      "no `ref`, a ref that is no branch, or a workflow without a workflow_dispatch trigger"),
    u("POST", "/repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches", 404,
      "no such workflow"),
    u("GET", "/repos/{owner}/{repo}/actions/workflows/{workflow_id}/runs", 404,
      "no such workflow"),
    u("GET", "/repos/{owner}/{repo}/actions/runs", 404, "unknown repository"),
    u("GET", "/repos/{owner}/{repo}/actions/runs", 422,
      "`created` is not a date or a range in search syntax"),
    u("GET", "/repos/{owner}/{repo}/actions/runs/{run_id}", 404, "no such run"),
    u("GET", "/repos/{owner}/{repo}/actions/runs/{run_id}/jobs", 404, "no such run"),
    u("GET", "/repos/{owner}/{repo}/actions/runs/{run_id}/jobs", 422,
      "`filter` is neither `latest` nor `all`"),
    u("GET", "/repos/{owner}/{repo}/actions/runs/{run_id}/logs", 404,
      "no such run, or its job has not started (no log yet)"),
    u("GET", "/repos/{owner}/{repo}/actions/jobs/{job_id}", 404, "no such job"),
    u("GET", "/repos/{owner}/{repo}/actions/jobs/{job_id}/logs", 404,
      "no such job, or it has not started (no log yet)"),
];

struct Fleet {
    emu: Emulator,
    api: Api,
    key: AppKeyPair,
    _handle: github_emulator::ServerHandle,
}

async fn fleet() -> Fleet {
    let key = AppKeyPair::generate();
    let spec = FleetSpec {
        orgs: vec![
            OrgSpec {
                name: "acme".into(),
                id: None,
                repos: vec![
                    with_workflows(
                        RepoSpec::new("api")
                            .topics(&["pci"])
                            .environments(&["production"]),
                    ),
                    RepoSpec::new("web").visibility(RepoVisibility::Private),
                    RepoSpec::new("old").archived(true),
                ],
            },
            OrgSpec {
                name: "globex".into(),
                id: None,
                repos: vec![RepoSpec::new("svc")],
            },
        ],
        tokens: vec![
            TokenSpec::all(DEFAULT_TOKEN),
            TokenSpec {
                token: LIMITED.into(),
                orgs: vec![],
                repos: vec!["acme/web".into()],
            },
        ],
        apps: vec![AppSpec {
            id: APP_ID,
            client_id: Some("Iv23liOPENAPI".into()),
            slug: Some("openapi-check".into()),
            public_key: key.public_pem.clone(),
            token_lifetime_secs: 3600,
            installations: vec![
                InstallationSpec::all("acme").id(9001),
                InstallationSpec {
                    suspended: true,
                    ..InstallationSpec::all("globex").id(9002)
                },
            ],
        }],
        ..Default::default()
    };
    let (emu, handle) = start(spec).await;
    let api = Api::new(&handle, Spec::load(), UNDOCUMENTED);
    Fleet {
        emu,
        api,
        key,
        _handle: handle,
    }
}

async fn repositories(api: &Api) {
    let listing = api
        .send(TOKEN, "GET", "/orgs/acme/repos?per_page=1", None, &[])
        .await;
    assert_eq!(listing.status, 200);
    assert!(
        listing.headers.contains_key("link"),
        "page 1 of 3 has a Link"
    );
    let etag = listing.headers.get("etag").expect("an ETag").clone();
    let again = api
        .send(
            TOKEN,
            "GET",
            "/orgs/acme/repos?per_page=1",
            None,
            &[("if-none-match", &etag)],
        )
        .await;
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty(), "a 304 has no body");
    api.expect(TOKEN, "GET", "/orgs/acme/repos", None, 200)
        .await;
    api.expect(None, "GET", "/orgs/acme/repos", None, 200).await;
    api.expect(TOKEN, "GET", "/orgs/nope/repos", None, 404)
        .await;

    api.expect(TOKEN, "GET", "/repos/acme/api", None, 200).await;
    api.expect(TOKEN, "GET", "/repos/acme/old", None, 200).await;
    api.expect(None, "GET", "/repos/acme/web", None, 404).await;
    api.expect(TOKEN, "GET", "/repos/acme/nope", None, 404)
        .await;
    api.expect(TOKEN, "GET", "/repos/acme/api/topics", None, 200)
        .await;
    api.expect(TOKEN, "GET", "/repos/acme/nope/topics", None, 404)
        .await;
    api.expect(TOKEN, "GET", "/repos/acme/api/environments", None, 200)
        .await;
    api.expect(TOKEN, "GET", "/repos/acme/nope/environments", None, 404)
        .await;
    let env = "/repos/acme/api/environments/production";
    api.expect(TOKEN, "GET", env, None, 200).await;
    api.expect(TOKEN, "GET", "/repos/acme/api/environments/qa", None, 404)
        .await;
    api.expect(TOKEN, "GET", "/orgs/acme", None, 200).await;
    api.expect(TOKEN, "GET", "/orgs/nope", None, 404).await;
    api.expect(TOKEN, "GET", "/user", None, 200).await;
    api.expect(None, "GET", "/user", None, 401).await;

    let limits = api.send(TOKEN, "GET", "/rate_limit", None, &[]).await;
    assert_eq!(limits.status, 200);
    api.expect(None, "GET", "/rate_limit", None, 200).await;
}

/// The secret lifecycle on one scope: list, key, create, update, get, list, delete, and
/// the errors of a missing secret and a stale key.
async fn secret_lifecycle(api: &Api, secrets: &str, extra: Value) {
    api.expect(TOKEN, "GET", secrets, None, 200).await;
    let name = format!("{secrets}/OPENAPI_ONE");
    let body = api
        .sealed_body(DEFAULT_TOKEN, secrets, "v1", extra.clone())
        .await;
    api.expect(TOKEN, "PUT", &name, Some(&body), 201).await;
    api.expect(TOKEN, "PUT", &name, Some(&body), 204).await;
    let other = api
        .sealed_body(DEFAULT_TOKEN, secrets, "v2", extra.clone())
        .await;
    api.expect(
        TOKEN,
        "PUT",
        &format!("{secrets}/OPENAPI_TWO"),
        Some(&other),
        201,
    )
    .await;
    let meta = api.expect(TOKEN, "GET", &name, None, 200).await;
    assert_eq!(meta["name"], "OPENAPI_ONE");
    let page = api
        .send(TOKEN, "GET", &format!("{secrets}?per_page=1"), None, &[])
        .await;
    assert_eq!(page.status, 200);
    assert_eq!(page.json()["total_count"], 2);
    let mut stale = body.clone();
    stale["key_id"] = json!("not-the-key");
    api.expect(TOKEN, "PUT", &name, Some(&stale), 422).await;
    api.expect(TOKEN, "DELETE", &name, None, 204).await;
    api.expect(TOKEN, "GET", &name, None, 404).await;
    api.expect(TOKEN, "DELETE", &name, None, 404).await;
}

async fn repository_secrets(api: &Api) {
    for app in APPS {
        let secrets = format!("/repos/acme/api/{app}/secrets");
        secret_lifecycle(api, &secrets, Value::Null).await;
        api.expect(Some("bad-token"), "GET", &secrets, None, 401)
            .await;
        api.expect(Some(LIMITED), "GET", &secrets, None, 403).await;
        api.expect(
            TOKEN,
            "GET",
            &format!("/repos/acme/nope/{app}/secrets"),
            None,
            404,
        )
        .await;
        let archived = &format!("/repos/acme/old/{app}/secrets");
        let body = api
            .sealed_body(DEFAULT_TOKEN, archived, "v", Value::Null)
            .await;
        api.expect(TOKEN, "PUT", &format!("{archived}/X"), Some(&body), 403)
            .await;
    }
    let env = "/repos/acme/api/environments/production/secrets";
    secret_lifecycle(api, env, Value::Null).await;
    let qa = "/repos/acme/api/environments/qa/secrets";
    api.expect(TOKEN, "GET", qa, None, 404).await;
}

async fn organization_secrets(api: &Api, emu: &Emulator) {
    let api_id = emu.repo_id("acme", "api").expect("acme/api");
    let web_id = emu.repo_id("acme", "web").expect("acme/web");
    let foreign = emu.repo_id("globex", "svc").expect("globex/svc");
    for app in APPS {
        let secrets = format!("/orgs/acme/{app}/secrets");
        secret_lifecycle(api, &secrets, json!({"visibility": "all"})).await;
        api.expect(
            TOKEN,
            "GET",
            &format!("/orgs/nope/{app}/secrets"),
            None,
            404,
        )
        .await;

        let name = format!("{secrets}/OPENAPI_SELECTED");
        let extra = json!({"visibility": "selected", "selected_repository_ids": [api_id]});
        let body = api.sealed_body(DEFAULT_TOKEN, &secrets, "v", extra).await;
        api.expect(TOKEN, "PUT", &name, Some(&body), 201).await;
        let meta = api.expect(TOKEN, "GET", &name, None, 200).await;
        assert_eq!(meta["visibility"], "selected");
        let repos = format!("{name}/repositories");
        let listed = api.expect(TOKEN, "GET", &repos, None, 200).await;
        assert_eq!(listed["total_count"], 1);
        let set = json!({"selected_repository_ids": [api_id, web_id]});
        api.expect(TOKEN, "PUT", &repos, Some(&set), 204).await;
        api.expect(TOKEN, "DELETE", &format!("{repos}/{web_id}"), None, 204)
            .await;
        api.expect(TOKEN, "PUT", &format!("{repos}/{web_id}"), None, 204)
            .await;
        api.expect(TOKEN, "PUT", &format!("{repos}/{foreign}"), None, 422)
            .await;
        let missing = format!("{secrets}/OPENAPI_NONE/repositories");
        api.expect(TOKEN, "GET", &missing, None, 404).await;

        // Visibility `all`: the repository list does not apply (409).
        let everyone = format!("{secrets}/OPENAPI_TWO/repositories");
        api.expect(TOKEN, "PUT", &everyone, Some(&set), 409).await;
        api.expect(TOKEN, "PUT", &format!("{everyone}/{api_id}"), None, 409)
            .await;
        api.expect(TOKEN, "DELETE", &format!("{everyone}/{api_id}"), None, 409)
            .await;
    }
    let usable = api
        .expect(
            TOKEN,
            "GET",
            "/repos/acme/api/actions/organization-secrets",
            None,
            200,
        )
        .await;
    assert!(usable["total_count"].as_u64() >= Some(2), "{usable}");
}

async fn apps(api: &Api, key: &AppKeyPair) {
    let jwt = app_jwt(key, APP_ID);
    let jwt = Some(jwt.as_str());
    api.expect(jwt, "GET", "/app", None, 200).await;
    api.expect(TOKEN, "GET", "/app", None, 401).await;
    let all = api
        .expect(jwt, "GET", "/app/installations", None, 200)
        .await;
    assert_eq!(all.as_array().map(Vec::len), Some(2));
    api.expect(jwt, "GET", "/app/installations/9001", None, 200)
        .await;
    api.expect(jwt, "GET", "/app/installations/1", None, 404)
        .await;
    api.expect(jwt, "GET", "/orgs/acme/installation", None, 200)
        .await;
    api.expect(jwt, "GET", "/orgs/nope/installation", None, 404)
        .await;
    api.expect(jwt, "GET", "/repos/acme/api/installation", None, 200)
        .await;
    api.expect(jwt, "GET", "/repos/acme/nope/installation", None, 404)
        .await;

    let mint = "/app/installations/9001/access_tokens";
    let narrowed = json!({"repositories": ["api"], "permissions": {"secrets": "write"}});
    let one = api.expect(jwt, "POST", mint, Some(&narrowed), 201).await;
    assert_eq!(one["repositories"][0]["name"], "api", "{one}");
    let minted = api.expect(jwt, "POST", mint, None, 201).await;
    let bogus = json!({"repository_ids": [987_654_321]});
    api.expect(jwt, "POST", mint, Some(&bogus), 422).await;
    api.expect(
        jwt,
        "POST",
        "/app/installations/9002/access_tokens",
        None,
        403,
    )
    .await;
    api.expect(jwt, "POST", "/app/installations/1/access_tokens", None, 404)
        .await;
    api.expect(TOKEN, "POST", mint, None, 401).await;

    let token = minted["token"].as_str().expect("a token").to_string();
    let inst = Some(token.as_str());
    let reach = api
        .expect(inst, "GET", "/installation/repositories", None, 200)
        .await;
    assert_eq!(reach["total_count"], 3);
    api.expect(
        inst,
        "GET",
        "/installation/repositories?per_page=1",
        None,
        200,
    )
    .await;
    api.expect(inst, "GET", "/repos/acme/api/actions/secrets", None, 200)
        .await;
    api.expect(TOKEN, "GET", "/installation/repositories", None, 403)
        .await;
    api.expect(
        Some("bad-token"),
        "GET",
        "/installation/repositories",
        None,
        401,
    )
    .await;
    api.expect(inst, "DELETE", "/installation/token", None, 204)
        .await;
    api.expect(inst, "DELETE", "/installation/token", None, 401)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_served_route_answers_as_the_description_says() {
    let f = fleet().await;
    repositories(&f.api).await;
    repository_secrets(&f.api).await;
    organization_secrets(&f.api, &f.emu).await;
    apps(&f.api, &f.key).await;
    actions(&f.api, &f.emu).await;
    openapi::actions::runner_tokens(&f.api).await;
    let routed = coverage(&f.api, &f.emu).await;
    let stale: Vec<String> = f
        .api
        .documented_known()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(
        stale.is_empty(),
        "listed as undocumented but the description documents them (remove them): {stale:#?}"
    );
    let unused: Vec<String> = f
        .api
        .unused_known()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(
        unused.is_empty(),
        "listed as undocumented but never answered (remove or test them): {unused:#?}"
    );
    let (validated, listed) = f.api.judged();
    let pairs = f.api.documented();
    let operations: BTreeSet<(&String, &String)> = pairs.iter().map(|(m, t, _)| (m, t)).collect();
    println!(
        "{validated} answers validated against the description: {} operations, {} \
         operation-status pairs; {routed} operations of the description routed; {listed} \
         answers listed as undocumented",
        operations.len(),
        pairs.len()
    );
}

/// Which operations of the description the emulator routes: each is probed once (on an
/// organization and repository that do not exist, so nothing changes) and the emulator's
/// counters say whether a route matched (a method the path does not take counts as
/// `unmatched`). Every routed operation must have had a success answer validated above:
/// a 2xx, or a documented 3xx where the operation documents no 2xx (the log redirects).
/// Returns how many operations the emulator routes.
async fn coverage(api: &Api, emu: &Emulator) -> usize {
    let validated = api.documented();
    let succeeded = |method: &str, template: &str| {
        let op = api.spec.operation(method, template).expect("an operation");
        let documents_2xx = op.op["responses"]
            .as_object()
            .is_some_and(|r| r.keys().any(|k| k.starts_with('2')));
        validated.iter().any(|(m, t, status)| {
            m == method
                && t == template
                && ((200..300).contains(status) || (!documents_2xx && (300..400).contains(status)))
        })
    };
    let mut served = Vec::new();
    let mut missing = Vec::new();
    for (method, template) in api.spec.operations() {
        let path = concrete(&template);
        emu.reset_counters();
        let body = (method != "GET" && method != "DELETE").then(|| json!({}));
        api.raw(TOKEN, &method, &path, body.as_ref(), &[]).await;
        let route = format!("{method} {template}");
        if emu.counters().route(&route) > 0 {
            if !succeeded(&method, &template) {
                missing.push(route.clone());
            }
            served.push(route);
        }
    }
    assert!(
        missing.is_empty(),
        "routes the emulator serves with no validated success answer (add them to this test): \
         {missing:#?}"
    );
    // The probe itself must see routes, or this check would pass on anything.
    assert!(
        served.len() >= 40,
        "only {} routes found: {served:#?}",
        served.len()
    );
    served.len()
}

/// A path for a template with every parameter filled by a name nothing has.
fn concrete(template: &str) -> String {
    template
        .split('/')
        .map(|seg| match seg {
            s if s.starts_with('{') => match s {
                "{installation_id}" | "{repository_id}" | "{run_id}" | "{job_id}" => "1",
                _ => "openapi-probe",
            },
            s => s,
        })
        .collect::<Vec<_>>()
        .join("/")
}

// The validator itself: it must fail what does not conform, at the right pointer.

fn errors(spec: &Spec, method: &str, path: &str, status: u16, body: &Value) -> Vec<String> {
    let bytes = serde_json::to_vec(body).expect("JSON");
    match spec.check(method, path, status, &BTreeMap::new(), &bytes) {
        Ok(()) => Vec::new(),
        Err(errs) => errs.iter().map(ToString::to_string).collect(),
    }
}

const KEY: &str = "/repos/o/r/actions/secrets/public-key";

#[test]
fn a_conforming_body_passes() {
    let spec = Spec::load();
    let ok = json!({"key_id": "123", "key": "abc="});
    assert_eq!(errors(&spec, "GET", KEY, 200, &ok), Vec::<String>::new());
}

#[test]
fn a_missing_required_field_fails_at_its_pointer() {
    let spec = Spec::load();
    let errs = errors(&spec, "GET", KEY, 200, &json!({"key_id": "123"}));
    assert_eq!(errs, vec!["/key: required: the property is missing"]);
    let list =
        json!({"total_count": 1, "secrets": [{"name": "A", "updated_at": "2024-01-01T00:00:00Z"}]});
    let errs = errors(&spec, "GET", "/repos/o/r/actions/secrets", 200, &list);
    assert_eq!(
        errs,
        vec!["/secrets/0/created_at: required: the property is missing"]
    );
}

#[test]
fn a_wrong_type_fails_at_its_pointer() {
    let spec = Spec::load();
    let errs = errors(
        &spec,
        "GET",
        KEY,
        200,
        &json!({"key_id": 123, "key": "abc="}),
    );
    assert_eq!(errs, vec!["/key_id: type: expected string, got integer"]);
    let errs = errors(&spec, "GET", "/repos/o/r/actions/secrets", 200, &json!([]));
    assert_eq!(errs, vec!["(root): type: expected object, got array"]);
}

#[test]
fn a_null_fails_where_the_schema_is_not_nullable_and_passes_where_it_is() {
    let spec = Spec::load();
    let errs = errors(
        &spec,
        "GET",
        KEY,
        200,
        &json!({"key_id": null, "key": "abc="}),
    );
    assert_eq!(
        errs,
        vec!["/key_id: nullable: null where the schema is not nullable"]
    );
    let mut e = Vec::new();
    spec.validate(
        &json!({"type": "string", "nullable": true}),
        &Value::Null,
        "",
        &mut e,
    );
    assert!(e.is_empty(), "{e:?}");
}

#[test]
fn undocumented_statuses_and_bodies_on_empty_answers_fail() {
    let spec = Spec::load();
    let errs = errors(&spec, "GET", KEY, 404, &json!({"message": "Not Found"}));
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0].starts_with("status: 404 is not a documented response"),
        "{errs:?}"
    );
    let del = "/repos/o/r/actions/secrets/X";
    let no_body = BTreeMap::new();
    assert!(spec.check("DELETE", del, 204, &no_body, b"").is_ok());
    let errs = errors(&spec, "DELETE", del, 204, &json!({}));
    assert!(errs[0].contains("documents no body"), "{errs:?}");
    assert!(spec.check("GET", "/nowhere", 200, &no_body, b"{}").is_err());
}

#[test]
fn literal_segments_win_over_parameters_when_matching_paths() {
    let spec = Spec::load();
    let op = spec.operation("GET", KEY).expect("an operation");
    assert_eq!(
        op.template,
        "/repos/{owner}/{repo}/actions/secrets/public-key"
    );
    let op = spec
        .operation("GET", "/repos/o/r/actions/secrets/MY_SECRET?x=1")
        .expect("op");
    assert_eq!(
        op.template,
        "/repos/{owner}/{repo}/actions/secrets/{secret_name}"
    );
    assert!(spec.operation("PATCH", KEY).is_none());
}

#[test]
fn formats_enums_bounds_combinators_and_closed_objects_are_enforced() {
    let spec = Spec::load();
    let check = |schema: Value, value: Value| {
        let mut e = Vec::new();
        spec.validate(&schema, &value, "/x", &mut e);
        e.iter().map(ToString::to_string).collect::<Vec<_>>()
    };
    let dt = json!({"type": "string", "format": "date-time"});
    assert!(check(dt.clone(), json!("2024-05-01T10:00:00Z")).is_empty());
    assert_eq!(check(dt, json!("2024-05-01 10:00")).len(), 1);
    let uri = json!({"type": "string", "format": "uri"});
    assert!(check(uri.clone(), json!("http://127.0.0.1:1/x")).is_empty());
    assert_eq!(
        check(uri, json!("/no/scheme")),
        vec!["/x: format: uri: \"/no/scheme\" has no scheme"]
    );
    let e = json!({"type": "string", "enum": ["all", "selected"]});
    assert_eq!(check(e, json!("some")).len(), 1);
    let n = json!({"type": "integer", "minimum": 1, "maximum": 3});
    assert!(check(n.clone(), json!(2)).is_empty());
    assert_eq!(check(n.clone(), json!(0)), vec!["/x: minimum: 0 < 1"]);
    assert_eq!(check(n, json!(4)), vec!["/x: maximum: 4 > 3"]);
    assert_eq!(
        check(json!({"type": "string", "maxLength": 2}), json!("abc")).len(),
        1
    );
    let one = json!({"oneOf": [{"type": "string"}, {"type": "integer"}]});
    assert!(check(one.clone(), json!(1)).is_empty());
    assert_eq!(check(one, json!(true)).len(), 1);
    let any = json!({"anyOf": [{"type": "integer"}, {"type": "number"}]});
    assert!(check(any, json!(1)).is_empty(), "anyOf allows both");
    let all = json!({"allOf": [{"required": ["a"]}, {"required": ["b"]}]});
    assert_eq!(
        check(all, json!({"a": 1})),
        vec!["/x/b: required: the property is missing"]
    );
    let closed = json!({"type": "object", "properties": {"a": {}}, "additionalProperties": false});
    assert_eq!(check(closed, json!({"a": 1, "b/c": 2})).len(), 1);
    let map = json!({"type": "object", "additionalProperties": {"type": "string"}});
    assert_eq!(
        check(map, json!({"k": 1})),
        vec!["/x/k: type: expected string, got integer"]
    );
}

/// Real answers of the emulator, broken one rule at a time deep inside their `$ref`
/// chains, must fail at the right pointer: the validator reaches the nested schemas.
#[tokio::test]
async fn real_answers_broken_deep_inside_fail() {
    let f = fleet().await;
    let body = json!({"ref": "main", "return_run_details": true});
    let path = "/repos/acme/api/actions/workflows/verify.yml/dispatches";
    let id = f.api.expect(TOKEN, "POST", path, Some(&body), 200).await["workflow_run_id"].clone();
    let run_path = format!("/repos/acme/api/actions/runs/{id}");
    let run = f.api.expect(TOKEN, "GET", &run_path, None, 200).await;
    let job_id = f.emu.run(id.as_u64().expect("id")).expect("run").job_id;
    let job_path = format!("/repos/acme/api/actions/jobs/{job_id}");
    let job = f.api.expect(TOKEN, "GET", &job_path, None, 200).await;
    let spec = &f.api.spec;
    assert!(errors(spec, "GET", &run_path, 200, &run).is_empty());

    let mut broken = run.clone();
    broken["repository"]["owner"]
        .as_object_mut()
        .expect("an owner")
        .remove("login");
    let errs = errors(spec, "GET", &run_path, 200, &broken);
    assert_eq!(
        errs,
        vec!["/repository/owner/login: required: the property is missing"]
    );
    let mut broken = run.clone();
    broken["actor"] = Value::Null;
    let errs = errors(spec, "GET", &run_path, 200, &broken);
    assert_eq!(
        errs,
        vec!["/actor: nullable: null where the schema is not nullable"]
    );
    let mut broken = run.clone();
    broken["head_commit"]["author"] = json!({"name": 1});
    let errs = errors(spec, "GET", &run_path, 200, &broken);
    assert_eq!(
        errs,
        vec![
            "/head_commit/author/email: required: the property is missing",
            "/head_commit/author/name: type: expected string, got integer",
        ]
    );

    let mut broken = job.clone();
    broken["status"] = json!("finished");
    let errs = errors(spec, "GET", &job_path, 200, &broken);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(errs[0].starts_with("/status: enum:"), "{errs:?}");
    let list = json!({"total_count": 1, "jobs": [broken]});
    let errs = errors(spec, "GET", &format!("{run_path}/jobs"), 200, &list);
    assert!(errs[0].starts_with("/jobs/0/status: enum:"), "{errs:?}");

    // A redirect without its Location header does not conform.
    let logs = format!("{job_path}/logs");
    assert!(spec
        .check("GET", &logs, 302, &BTreeMap::new(), b"")
        .is_err());
}

/// The staleness check of [`UNDOCUMENTED`]: an entry the description documents is found,
/// per app when the template has `{app}`.
#[test]
fn entries_the_description_documents_are_found() {
    const LIST: &[Undocumented] = &[
        u("GET", "/repos/{owner}/{repo}/topics", 404, "documented"),
        u(
            "PUT",
            "/orgs/{org}/{app}/secrets/{secret_name}",
            422,
            "codespaces documents it",
        ),
        u(
            "GET",
            "/orgs/{org}",
            200,
            "no such route in the description",
        ),
    ];
    let known = openapi::client::expand(LIST);
    assert_eq!(known.len(), 5);
    let spec = Spec::load();
    let stale: Vec<String> = openapi::client::documented_entries(&spec, &known)
        .iter()
        .map(|k| format!("{} {} {}", k.method, k.template, k.status))
        .collect();
    assert_eq!(
        stale,
        vec![
            "GET /repos/{owner}/{repo}/topics 404",
            "PUT /orgs/{org}/codespaces/secrets/{secret_name} 422",
        ]
    );
}
