//! GitHub Actions in the emulator, over real HTTP: workflows, dispatches and their refusals,
//! the run lifecycle on real time, conclusions from the secrets held when a run was queued,
//! jobs and steps, job logs behind a redirect to a log host that refuses `Authorization`,
//! run log archives, and run listings with filters.

use std::time::{Duration, Instant};

use base64::Engine as _;
use crypto_box::aead::OsRng;
use github_emulator::{
    Emulator, FleetSpec, LimitsSpec, OrgSpec, RepoSpec, Scope, ServerHandle, Visibility,
    WorkflowSpec, DEFAULT_TOKEN,
};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{json, Value};

const RUNS: &str = "/repos/acme/api/actions/runs";

async fn start(spec: FleetSpec) -> (Emulator, ServerHandle) {
    let emu = Emulator::new(spec);
    let handle = emu
        .serve("127.0.0.1:0".parse().expect("address"))
        .await
        .expect("binds");
    (emu, handle)
}

fn fleet(repo: RepoSpec) -> FleetSpec {
    FleetSpec {
        orgs: vec![OrgSpec {
            name: "acme".into(),
            id: None,
            repos: vec![repo],
        }],
        ..FleetSpec::default()
    }
}

fn fast(file: &str) -> WorkflowSpec {
    WorkflowSpec::new(file)
        .queue_delay(Duration::from_millis(20))
        .duration(Duration::from_millis(60))
}

struct Gh {
    http: reqwest::Client,
    url: String,
}

impl Gh {
    fn new(server: &ServerHandle) -> Self {
        Gh {
            http: reqwest::Client::builder()
                .user_agent("emulator-tests")
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            url: server.url.clone(),
        }
    }

    fn req(&self, method: Method, path: &str) -> RequestBuilder {
        self.req_version(method, path, "2022-11-28")
    }

    fn req_version(&self, method: Method, path: &str, version: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.url))
            .header("accept", "application/vnd.github+json")
            .header("x-github-api-version", version)
            .bearer_auth(DEFAULT_TOKEN)
    }

    async fn get(&self, path: &str) -> Value {
        let resp = self.req(Method::GET, path).send().await.expect("sent");
        assert_eq!(resp.status(), 200, "GET {path}");
        resp.json().await.expect("JSON")
    }

    async fn dispatch(&self, workflow: &str, body: Value) -> Response {
        self.req(
            Method::POST,
            &format!("/repos/acme/api/actions/workflows/{workflow}/dispatches"),
        )
        .json(&body)
        .send()
        .await
        .expect("sent")
    }

    /// Dispatches on `main` and returns the run id.
    async fn run(&self, workflow: &str) -> u64 {
        let resp = self
            .dispatch(workflow, json!({"ref": "main", "return_run_details": true}))
            .await;
        assert_eq!(resp.status(), 200);
        let body: Value = resp.json().await.expect("JSON");
        body["workflow_run_id"].as_u64().expect("run id")
    }

    /// Seals `value` to the scope's key and PUTs it, as a client does.
    async fn put_secret(&self, secrets: &str, name: &str, value: &str) {
        self.put_secret_with(secrets, name, value, json!({})).await;
    }

    /// Like [`Gh::put_secret`], with more body fields (`visibility`, ...).
    async fn put_secret_with(&self, secrets: &str, name: &str, value: &str, extra: Value) {
        let key = self.get(&format!("{secrets}/public-key")).await;
        let b64 = base64::engine::general_purpose::STANDARD;
        let pk = b64
            .decode(key["key"].as_str().expect("key"))
            .expect("base64");
        let pk = crypto_box::PublicKey::from_slice(&pk).expect("32 bytes");
        let sealed = b64.encode(pk.seal(&mut OsRng, value.as_bytes()).expect("seal"));
        let mut body = json!({"encrypted_value": sealed, "key_id": key["key_id"]});
        if let (Some(b), Value::Object(more)) = (body.as_object_mut(), extra) {
            b.extend(more);
        }
        let resp = self
            .req(Method::PUT, &format!("{secrets}/{name}"))
            .json(&body)
            .send()
            .await
            .expect("sent");
        assert!(resp.status().is_success(), "PUT {name}: {}", resp.status());
    }

    /// Polls the run until its status is `status` (2 s at most).
    async fn wait_for(&self, run_id: u64, status: &str) -> Value {
        let until = Instant::now() + Duration::from_secs(2);
        loop {
            let run = self.get(&format!("{RUNS}/{run_id}")).await;
            if run["status"] == status {
                return run;
            }
            assert!(
                Instant::now() < until,
                "run {run_id} never got {status}: {run}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

async fn error_of(resp: Response) -> (StatusCode, String) {
    let status = resp.status();
    let body: Value = resp.json().await.expect("JSON error");
    assert!(body["documentation_url"].is_string(), "{body}");
    (
        status,
        body["message"].as_str().unwrap_or_default().to_string(),
    )
}

#[tokio::test]
async fn dispatches_answer_204_or_200_and_refuse_bad_requests() {
    let repo = RepoSpec::new("api")
        .branches(&["main", "release"])
        .workflow(fast("verify.yml").id(77))
        .workflow(fast("push-only.yml").dispatch(false));
    let (emu, server) = start(fleet(repo)).await;
    let gh = Gh::new(&server);

    let plain = gh.dispatch("verify.yml", json!({"ref": "main"})).await;
    assert_eq!(plain.status(), 204);
    assert!(plain.bytes().await.expect("body").is_empty());

    let detailed = gh
        .dispatch(
            "77",
            json!({"ref": "refs/heads/release", "return_run_details": true}),
        )
        .await;
    assert_eq!(detailed.status(), 200);
    let body: Value = detailed.json().await.expect("JSON");
    let id = body["workflow_run_id"].as_u64().expect("id");
    assert_eq!(body["run_url"], format!("{}{RUNS}/{id}", server.url));
    assert_eq!(
        body["html_url"],
        format!("https://github.com/acme/api/actions/runs/{id}")
    );

    let newer = gh
        .req_version(
            Method::POST,
            "/repos/acme/api/actions/workflows/verify.yml/dispatches",
            "2026-03-10",
        )
        .json(&json!({"ref": "main"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(
        newer.status(),
        200,
        "2026-03-10 always answers with the run"
    );

    let (status, msg) = error_of(gh.dispatch("verify.yml", json!({"inputs": {}})).await).await;
    assert_eq!((status.as_u16(), msg.contains("\"ref\"")), (422, true));
    let many: serde_json::Map<String, Value> =
        (0..26).map(|i| (format!("k{i}"), json!("v"))).collect();
    let (status, _) = error_of(
        gh.dispatch("verify.yml", json!({"ref": "main", "inputs": many}))
            .await,
    )
    .await;
    assert_eq!(status, 422);
    let (status, msg) = error_of(gh.dispatch("push-only.yml", json!({"ref": "main"})).await).await;
    assert_eq!(status, 422);
    assert_eq!(msg, "Workflow does not have 'workflow_dispatch' trigger");
    let (status, msg) = error_of(gh.dispatch("verify.yml", json!({"ref": "nope"})).await).await;
    assert_eq!(
        (status.as_u16(), msg.as_str()),
        (422, "No ref found for: nope")
    );
    let (status, _) = error_of(gh.dispatch("missing.yml", json!({"ref": "main"})).await).await;
    assert_eq!(status, 404);
    let other = gh
        .req(
            Method::POST,
            "/repos/acme/nope/actions/workflows/verify.yml/dispatches",
        )
        .json(&json!({"ref": "main"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(other.status(), 404);

    assert_eq!(emu.dispatch_count("acme", "api"), 3);
    let runs = emu.runs("acme", "api");
    assert_eq!(runs.len(), 3);
    assert_eq!(runs[1].head_branch, "release");
    assert_eq!(runs[1].workflow_id, 77);
}

#[tokio::test]
async fn workflows_are_listed_and_found_by_id_or_file_name() {
    let yaml = "orgs:\n  - name: acme\n    repos:\n      - name: api\n        environments: [prod]\n        workflows:\n          - verify-secrets.yml\n          - {file: x.yml, require: [{secret: API_TOKEN, matches: '^tok_'}], fail: false, never_conclude: false, echo: [API_TOKEN], queue_delay: 50ms, duration: 200ms, dispatch: true, environment: prod}\n";
    let (emu, server) = start(FleetSpec::from_yaml_str(yaml).expect("fleet")).await;
    let gh = Gh::new(&server);
    let list = gh.get("/repos/acme/api/actions/workflows").await;
    assert_eq!(list["total_count"], 2);
    let x = &list["workflows"][1];
    for field in [
        "id",
        "node_id",
        "name",
        "path",
        "state",
        "created_at",
        "updated_at",
        "url",
        "html_url",
        "badge_url",
    ] {
        assert!(!x[field].is_null(), "workflow lacks {field}: {x}");
    }
    assert_eq!(x["path"], ".github/workflows/x.yml");
    assert_eq!(
        (x["state"].as_str(), x["name"].as_str()),
        (Some("active"), Some("x"))
    );
    let id = x["id"].as_u64().expect("id");
    assert_eq!(
        gh.get(&format!("/repos/acme/api/actions/workflows/{id}"))
            .await,
        *x
    );
    assert_eq!(gh.get("/repos/acme/api/actions/workflows/x.yml").await, *x);
    let spec = &emu.workflows("acme", "api")[1];
    assert_eq!(spec.queue_delay, Duration::from_millis(50));
    assert_eq!(spec.environment.as_deref(), Some("prod"));
}

#[tokio::test]
async fn a_run_is_queued_then_in_progress_then_completed() {
    let wf = WorkflowSpec::new("verify.yml")
        .queue_delay(Duration::from_millis(300))
        .duration(Duration::from_millis(300));
    let (_emu, server) = start(fleet(RepoSpec::new("api").workflow(wf))).await;
    let gh = Gh::new(&server);
    let id = gh.run("verify.yml").await;
    let queued = gh.get(&format!("{RUNS}/{id}")).await;
    assert_eq!(queued["status"], "queued");
    assert!(queued["conclusion"].is_null());
    for field in [
        "id",
        "node_id",
        "head_branch",
        "run_number",
        "display_title",
        "event",
        "head_sha",
        "path",
        "workflow_id",
        "url",
        "html_url",
        "created_at",
        "updated_at",
        "head_commit",
        "head_repository",
        "repository",
        "jobs_url",
        "logs_url",
        "check_suite_url",
        "cancel_url",
        "rerun_url",
        "artifacts_url",
        "workflow_url",
        "pull_requests",
        "name",
        "run_attempt",
        "run_started_at",
    ] {
        assert!(!queued[field].is_null(), "workflow-run lacks {field}");
    }
    assert_eq!(queued["event"], "workflow_dispatch");
    assert_eq!(queued["run_attempt"], 1);
    assert_eq!(queued["head_branch"], "main");
    let sha = queued["head_sha"].as_str().expect("sha");
    assert!(sha.len() == 40 && sha.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(
        queued["jobs_url"],
        format!("{}{RUNS}/{id}/jobs", server.url)
    );
    let running = gh.wait_for(id, "in_progress").await;
    assert!(running["conclusion"].is_null());
    let done = gh.wait_for(id, "completed").await;
    assert_eq!(done["conclusion"], "success");
}

#[tokio::test]
async fn the_conclusion_follows_what_the_repository_held_when_the_run_was_queued() {
    let wf = fast("verify.yml").require_matches("API_TOKEN", "^tok_");
    let (emu, server) = start(fleet(RepoSpec::new("api").workflow(wf))).await;
    let gh = Gh::new(&server);
    let secrets = "/repos/acme/api/actions/secrets";

    let none = gh.run("verify.yml").await;
    assert_eq!(
        gh.wait_for(none, "completed").await["conclusion"],
        "failure"
    );
    gh.put_secret(secrets, "API_TOKEN", "wrong").await;
    let wrong = gh.run("verify.yml").await;
    assert_eq!(
        gh.wait_for(wrong, "completed").await["conclusion"],
        "failure"
    );
    gh.put_secret(secrets, "API_TOKEN", "tok_right").await;
    let right = gh.run("verify.yml").await;
    assert_eq!(
        gh.wait_for(right, "completed").await["conclusion"],
        "success"
    );

    // A run queued before a push checks the old value, however late it starts.
    emu.set_workflow(
        "acme",
        "api",
        fast("verify.yml")
            .queue_delay(Duration::from_millis(300))
            .require_matches("API_TOKEN", "^tok_"),
    )
    .expect("workflow");
    let before = gh.run("verify.yml").await;
    gh.put_secret(secrets, "API_TOKEN", "not-a-token").await;
    assert_eq!(
        gh.get(&format!("{RUNS}/{before}")).await["status"],
        "queued"
    );
    assert_eq!(
        gh.wait_for(before, "completed").await["conclusion"],
        "success"
    );
    let after = gh.run("verify.yml").await;
    assert_eq!(
        gh.wait_for(after, "completed").await["conclusion"],
        "failure"
    );
    let view = emu.run(before).expect("run");
    assert_eq!(view.queued_secret_names, vec!["API_TOKEN"]);
    assert!(!format!("{view:?}").contains("tok_right"));
}

#[tokio::test]
async fn organization_secrets_count_as_visible_and_repository_secrets_shadow_them() {
    let wf = fast("verify.yml").require_equals("SHARED", "repo-value");
    let repo = RepoSpec::new("api").workflow(wf.clone());
    let (emu, server) = start(fleet(repo)).await;
    let gh = Gh::new(&server);
    let org = Scope::Org {
        org: "acme".into(),
        app: github_emulator::App::Actions,
    };
    assert!(emu.insert_secret(&org, "SHARED", "org-value"));
    let from_org = gh.run("verify.yml").await;
    assert_eq!(
        gh.wait_for(from_org, "completed").await["conclusion"],
        "failure"
    );
    assert_eq!(
        emu.run(from_org).expect("run").queued_secret_names,
        vec!["SHARED"]
    );
    gh.put_secret("/repos/acme/api/actions/secrets", "SHARED", "repo-value")
        .await;
    let shadowed = gh.run("verify.yml").await;
    assert_eq!(
        gh.wait_for(shadowed, "completed").await["conclusion"],
        "success"
    );

    // An organization secret for selected repositories, this one not among them: unseen.
    gh.put_secret_with(
        "/orgs/acme/actions/secrets",
        "ONLY_SOME",
        "x",
        json!({"visibility": "selected", "selected_repository_ids": []}),
    )
    .await;
    let info = emu.secret_info(&org, "ONLY_SOME").expect("info");
    assert_eq!(info.visibility, Some(Visibility::Selected));
    let unseen = gh.run("verify.yml").await;
    gh.wait_for(unseen, "completed").await;
    assert_eq!(
        emu.run(unseen).expect("run").queued_secret_names,
        vec!["SHARED"]
    );
}

#[tokio::test]
async fn environment_secrets_are_read_when_the_job_starts_and_win() {
    let wf = WorkflowSpec::new("deploy.yml")
        .queue_delay(Duration::from_millis(300))
        .duration(Duration::from_millis(40))
        .environment("prod")
        .require_equals("DB_PASSWORD", "env-new");
    let repo = RepoSpec::new("api").environments(&["prod"]).workflow(wf);
    let (emu, server) = start(fleet(repo)).await;
    let gh = Gh::new(&server);
    gh.put_secret("/repos/acme/api/actions/secrets", "DB_PASSWORD", "repo")
        .await;
    let env = "/repos/acme/api/environments/prod/secrets";
    gh.put_secret(env, "DB_PASSWORD", "env-old").await;
    let id = gh.run("deploy.yml").await;
    gh.put_secret(env, "DB_PASSWORD", "env-new").await;
    assert_eq!(gh.wait_for(id, "completed").await["conclusion"], "success");
    let view = emu.run(id).expect("run");
    assert_eq!(view.environment_secret_names, vec!["DB_PASSWORD"]);
}

#[tokio::test]
async fn a_run_that_never_concludes_ends_when_the_test_completes_it() {
    let wf = fast("hang.yml").never_conclude(true);
    let (emu, server) = start(fleet(RepoSpec::new("api").workflow(wf))).await;
    let gh = Gh::new(&server);
    let id = gh.run("hang.yml").await;
    gh.wait_for(id, "in_progress").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        gh.get(&format!("{RUNS}/{id}")).await["status"],
        "in_progress"
    );
    assert!(emu.complete_run("acme", "api", id, "cancelled"));
    assert!(!emu.complete_run("acme", "api", id, "success"));
    let done = gh.get(&format!("{RUNS}/{id}")).await;
    assert_eq!(
        (done["status"].as_str(), done["conclusion"].as_str()),
        (Some("completed"), Some("cancelled"))
    );
    assert!(!emu.complete_run("acme", "other", id, "success"));
}

#[tokio::test]
async fn jobs_show_their_steps_and_which_one_failed() {
    let checks = fast("checks.yml").require_set("MISSING");
    let tests = fast("tests.yml").fail(true);
    let repo = RepoSpec::new("api").workflow(checks).workflow(tests);
    let (_emu, server) = start(fleet(repo)).await;
    let gh = Gh::new(&server);

    let id = gh.run("checks.yml").await;
    gh.wait_for(id, "completed").await;
    let jobs = gh.get(&format!("{RUNS}/{id}/jobs?filter=latest")).await;
    assert_eq!(jobs["total_count"], 1);
    let job = &jobs["jobs"][0];
    for field in [
        "id",
        "node_id",
        "run_id",
        "run_url",
        "head_sha",
        "workflow_name",
        "head_branch",
        "name",
        "url",
        "html_url",
        "status",
        "conclusion",
        "started_at",
        "completed_at",
        "check_run_url",
        "labels",
        "runner_id",
        "runner_name",
        "runner_group_id",
        "runner_group_name",
        "created_at",
        "run_attempt",
    ] {
        assert!(!job[field].is_null(), "job lacks {field}: {job}");
    }
    assert_eq!(
        (job["name"].as_str(), job["conclusion"].as_str()),
        (Some("verify"), Some("failure"))
    );
    let steps: Vec<(String, String)> = job["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| {
            assert!(s["number"].is_u64() && s["status"] == "completed");
            (
                s["name"].as_str().unwrap_or_default().into(),
                s["conclusion"].as_str().unwrap_or_default().into(),
            )
        })
        .collect();
    let want = [
        ("Set up job", "success"),
        ("Check secrets", "failure"),
        ("Run tests", "skipped"),
        ("Complete job", "success"),
    ];
    assert_eq!(steps, want.map(|(a, b)| (a.to_string(), b.to_string())));
    let job_id = job["id"].as_u64().expect("job id");
    assert_eq!(
        gh.get(&format!("/repos/acme/api/actions/jobs/{job_id}"))
            .await,
        *job
    );
    let bad = gh
        .req(Method::GET, &format!("{RUNS}/{id}/jobs?filter=some"))
        .send()
        .await
        .expect("sent");
    assert_eq!(bad.status(), 422);

    let id = gh.run("tests.yml").await;
    gh.wait_for(id, "completed").await;
    let jobs = gh.get(&format!("{RUNS}/{id}/jobs")).await;
    assert_eq!(jobs["jobs"][0]["steps"][2]["conclusion"], "failure");
    assert_eq!(jobs["jobs"][0]["steps"][1]["conclusion"], "success");
}

#[tokio::test]
async fn job_logs_redirect_to_a_log_host_that_refuses_authorization() {
    let wf = WorkflowSpec::new("verify.yml")
        .queue_delay(Duration::from_millis(300))
        .duration(Duration::from_millis(40))
        .require_matches("API_TOKEN", "^tok_")
        .echo("API_TOKEN");
    let (emu, server) = start(fleet(RepoSpec::new("api").workflow(wf))).await;
    let gh = Gh::new(&server);
    gh.put_secret(
        "/repos/acme/api/actions/secrets",
        "API_TOKEN",
        "s3cr3t-value",
    )
    .await;
    let id = gh.run("verify.yml").await;
    let job_id = emu.run(id).expect("run").job_id;
    let logs = format!("/repos/acme/api/actions/jobs/{job_id}/logs");
    let early = gh.req(Method::GET, &logs).send().await.expect("sent");
    assert_eq!(early.status(), 404, "no log before the job starts");
    gh.wait_for(id, "completed").await;

    let redirect = gh.req(Method::GET, &logs).send().await.expect("sent");
    assert_eq!(redirect.status(), 302);
    let location = redirect.headers()["location"]
        .to_str()
        .expect("text")
        .to_string();
    assert!(location.starts_with(&format!(
        "{}/_emulator/logs/jobs/{job_id}?token=",
        server.url
    )));

    let text = gh.http.get(&location).send().await.expect("sent");
    assert_eq!(text.status(), 200);
    let text = text.text().await.expect("text");
    let b64 = base64::engine::general_purpose::STANDARD.encode("s3cr3t-value");
    assert!(
        text.contains("s3cr3t-value") && text.contains(&b64),
        "{text}"
    );
    assert!(text.contains("##[group]Check secrets") && text.contains("##[endgroup]"));
    assert!(text.contains("##[error]Process completed with exit code 1."));
    let first = text.lines().next().expect("a line");
    assert_eq!(
        first.find(' '),
        Some(28),
        "a GitHub timestamp leads: {first}"
    );
    assert!(first[..28].ends_with('Z'));

    let leaked = gh
        .http
        .get(&location)
        .bearer_auth(DEFAULT_TOKEN)
        .send()
        .await
        .expect("sent");
    assert_eq!(leaked.status(), 400);
    assert_eq!(emu.authorization_sent_to_log_host(), 1);
    let forged = gh
        .http
        .get(format!(
            "{}/_emulator/logs/jobs/{job_id}?token=nope",
            server.url
        ))
        .send()
        .await
        .expect("sent");
    assert_eq!(forged.status(), 403);
}

#[tokio::test]
async fn run_logs_are_a_zip_archive() {
    let (_emu, server) = start(fleet(RepoSpec::new("api").workflow(fast("verify.yml")))).await;
    let gh = Gh::new(&server);
    let id = gh.run("verify.yml").await;
    gh.wait_for(id, "completed").await;
    let redirect = gh
        .req(Method::GET, &format!("{RUNS}/{id}/logs"))
        .send()
        .await
        .expect("sent");
    assert_eq!(redirect.status(), 302);
    let location = redirect.headers()["location"]
        .to_str()
        .expect("text")
        .to_string();
    let zip = gh.http.get(&location).send().await.expect("sent");
    assert_eq!(zip.headers()["content-type"], "application/zip");
    let bytes = zip.bytes().await.expect("bytes");
    assert!(bytes.starts_with(b"PK\x03\x04"));
    assert!(String::from_utf8_lossy(&bytes).contains("verify/2_Check secrets.txt"));
}

#[tokio::test]
async fn runs_are_listed_newest_first_with_filters_and_pages() {
    let repo = RepoSpec::new("api")
        .workflow(fast("a.yml"))
        .workflow(fast("b.yml").never_conclude(true));
    let (emu, server) = start(fleet(repo)).await;
    let gh = Gh::new(&server);
    let before = chrono::Utc::now() - chrono::Duration::seconds(1);
    let a1 = gh.run("a.yml").await;
    let a2 = gh.run("a.yml").await;
    let b1 = gh.run("b.yml").await;
    gh.wait_for(a2, "completed").await;
    gh.wait_for(a1, "completed").await;

    let all = gh.get(RUNS).await;
    assert_eq!(all["total_count"], 3);
    let ids: Vec<u64> = all["workflow_runs"]
        .as_array()
        .expect("runs")
        .iter()
        .map(|r| r["id"].as_u64().expect("id"))
        .collect();
    assert_eq!(ids, vec![b1, a2, a1]);
    assert_eq!(all["workflow_runs"][1]["run_number"], 2);

    let since = before.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let q = |query: &[(&str, &str)]| {
        let gh = &gh;
        let query: Vec<(String, String)> = query
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        async move {
            let resp = gh
                .req(Method::GET, RUNS)
                .query(&query)
                .send()
                .await
                .expect("sent");
            assert_eq!(resp.status(), 200);
            resp.json::<Value>().await.expect("JSON")["total_count"]
                .as_u64()
                .expect("count")
        }
    };
    assert_eq!(q(&[("created", &format!(">={since}"))]).await, 3);
    assert_eq!(q(&[("created", "<2020-01-01")]).await, 0);
    assert_eq!(q(&[("created", &format!("{since}..*"))]).await, 3);
    assert_eq!(q(&[("event", "workflow_dispatch")]).await, 3);
    assert_eq!(q(&[("event", "push")]).await, 0);
    assert_eq!(q(&[("status", "success")]).await, 2);
    assert_eq!(q(&[("status", "in_progress")]).await, 1);
    assert_eq!(q(&[("branch", "main")]).await, 3);
    assert_eq!(q(&[("branch", "dev")]).await, 0);
    let bad = gh
        .req(Method::GET, &format!("{RUNS}?created=soon"))
        .send()
        .await
        .expect("sent");
    assert_eq!(bad.status(), 422);

    let page = gh
        .req(Method::GET, &format!("{RUNS}?per_page=2"))
        .send()
        .await
        .expect("sent");
    let link = page.headers()["link"].to_str().expect("link").to_string();
    assert!(
        link.contains("page=2") && link.contains("rel=\"next\""),
        "{link}"
    );
    let body: Value = page.json().await.expect("JSON");
    assert_eq!(
        (
            body["total_count"].as_u64(),
            body["workflow_runs"].as_array().map(Vec::len)
        ),
        (Some(3), Some(2))
    );

    let of_b = gh.get("/repos/acme/api/actions/workflows/b.yml/runs").await;
    assert_eq!(of_b["total_count"], 1);
    assert_eq!(of_b["workflow_runs"][0]["id"], b1);
    assert!(emu.complete_run("acme", "api", b1, "success"));
}

#[tokio::test]
async fn workflows_change_between_runs_and_queued_runs_can_be_backdated() {
    let (emu, server) = start(fleet(
        RepoSpec::new("api").workflow(fast("v.yml").fail(true)),
    ))
    .await;
    let gh = Gh::new(&server);
    let failing = gh.run("v.yml").await;
    let id = emu.set_workflow("acme", "api", fast("v.yml")).expect("set");
    assert_eq!(emu.workflows("acme", "api")[0].id, Some(id), "the id stays");
    let passing = gh.run("v.yml").await;
    assert_eq!(
        gh.wait_for(failing, "completed").await["conclusion"],
        "failure"
    );
    assert_eq!(
        gh.wait_for(passing, "completed").await["conclusion"],
        "success"
    );
    assert!(emu
        .set_workflow("acme", "api", WorkflowSpec::new("bad.txt"))
        .is_err());

    let earlier = chrono::Utc::now() - chrono::Duration::hours(1);
    let old = emu
        .queue_run("acme", "api", "v.yml", earlier)
        .expect("queued");
    let view = emu.run(old).expect("run");
    assert_eq!(
        (view.status.as_str(), view.conclusion.as_deref()),
        ("completed", Some("success"))
    );
    let listed = gh.get(&format!("{RUNS}/{old}")).await;
    assert_eq!(
        listed["created_at"],
        earlier.format("%Y-%m-%dT%H:%M:%SZ").to_string()
    );
    assert_eq!(emu.dispatch_count("acme", "api"), 3);
}

#[tokio::test]
async fn without_run_details_every_dispatch_answers_204() {
    let mut spec = fleet(RepoSpec::new("api").workflow(fast("v.yml")));
    spec.limits = LimitsSpec {
        run_details: false,
        ..LimitsSpec::default()
    };
    let (_emu, server) = start(spec).await;
    let gh = Gh::new(&server);
    let resp = gh
        .dispatch("v.yml", json!({"ref": "main", "return_run_details": true}))
        .await;
    assert_eq!(resp.status(), 204);
}
