//! The Actions routes the description has: workflows, dispatches (204, and 200 with the
//! run's details), runs and their listings, jobs, and the 302s of the log routes; each run
//! and job is validated while queued, in progress and completed (their nullable fields
//! differ), for a success and a failure.

use std::time::{Duration, Instant};

use github_emulator::{Emulator, RepoSpec, WorkflowSpec, DEFAULT_TOKEN};
use serde_json::{json, Value};

use super::client::Api;

const TOKEN: Option<&str> = Some(DEFAULT_TOKEN);
const ACTIONS: &str = "/repos/acme/api/actions";
const VERIFY_ID: u64 = 77;

/// The workflows of `acme/api`: `verify.yml` (id 77) concludes `success`, `tests.yml`
/// concludes `failure`, `hold.yml` stays in progress until the test ends it, and
/// `push-only.yml` has no `workflow_dispatch` trigger.
pub fn with_workflows(repo: RepoSpec) -> RepoSpec {
    let fast = |file: &str| {
        WorkflowSpec::new(file)
            .queue_delay(Duration::from_millis(20))
            .duration(Duration::from_millis(60))
    };
    repo.workflow(fast("verify.yml").id(VERIFY_ID))
        .workflow(fast("tests.yml").fail(true))
        .workflow(
            WorkflowSpec::new("hold.yml")
                .queue_delay(Duration::from_millis(1000))
                .never_conclude(true),
        )
        .workflow(fast("push-only.yml").dispatch(false))
}

fn dispatches(workflow: &str) -> String {
    format!("{ACTIONS}/workflows/{workflow}/dispatches")
}

/// Dispatches `workflow` on `main` asking for the run's details (200) and returns the id.
async fn run(api: &Api, workflow: &str) -> u64 {
    let body = json!({"ref": "main", "return_run_details": true});
    let details = api
        .expect(TOKEN, "POST", &dispatches(workflow), Some(&body), 200)
        .await;
    details["workflow_run_id"].as_u64().expect("a run id")
}

/// Polls the run (each answer validated) until its status is `status` (3 s at most).
async fn wait_for(api: &Api, run_id: u64, status: &str) -> Value {
    let until = Instant::now() + Duration::from_secs(3);
    loop {
        let run = api
            .expect(TOKEN, "GET", &format!("{ACTIONS}/runs/{run_id}"), None, 200)
            .await;
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

/// The run, its jobs, its job and both log routes, all validated, in the run's state now.
async fn run_and_job(api: &Api, emu: &Emulator, run_id: u64, logs: bool) {
    let run = format!("{ACTIONS}/runs/{run_id}");
    api.expect(TOKEN, "GET", &run, None, 200).await;
    let jobs = api
        .expect(TOKEN, "GET", &format!("{run}/jobs"), None, 200)
        .await;
    assert_eq!(jobs["total_count"], 1, "{jobs}");
    api.expect(TOKEN, "GET", &format!("{run}/jobs?filter=all"), None, 200)
        .await;
    let job_id = emu.run(run_id).expect("the run").job_id;
    let job = format!("{ACTIONS}/jobs/{job_id}");
    api.expect(TOKEN, "GET", &job, None, 200).await;
    let status = if logs { 302 } else { 404 };
    let a = api.call(TOKEN, "GET", &format!("{job}/logs"), None).await;
    assert_eq!(a.status, status, "{job}/logs");
    let a = api.call(TOKEN, "GET", &format!("{run}/logs"), None).await;
    assert_eq!(a.status, status, "{run}/logs");
    if logs {
        assert!(
            a.headers["location"].contains("/_emulator/logs/runs/"),
            "{:?}",
            a.headers
        );
    }
}

/// Runner registration and remove tokens, for an organization and a repository.
pub async fn runner_tokens(api: &Api) {
    for path in [
        "/orgs/acme/actions/runners/registration-token",
        "/orgs/acme/actions/runners/remove-token",
        "/repos/acme/api/actions/runners/registration-token",
        "/repos/acme/api/actions/runners/remove-token",
    ] {
        let t = api.expect(TOKEN, "POST", path, None, 201).await;
        assert!(t["token"].as_str().is_some_and(|s| s.len() >= 20), "{t}");
        assert!(t["expires_at"].is_string(), "{t}");
    }
}

pub async fn actions(api: &Api, emu: &Emulator) {
    let list = api
        .expect(TOKEN, "GET", &format!("{ACTIONS}/workflows"), None, 200)
        .await;
    assert_eq!(list["total_count"], 4, "{list}");
    let page = api
        .call(
            TOKEN,
            "GET",
            &format!("{ACTIONS}/workflows?per_page=1"),
            None,
        )
        .await;
    assert_eq!(page.status, 200);
    assert!(page.headers.contains_key("link"), "page 1 of 4 has a Link");
    api.expect(
        TOKEN,
        "GET",
        "/repos/acme/nope/actions/workflows",
        None,
        404,
    )
    .await;

    // Dispatches: 204 without details, 200 with them, and the refusals.
    let plain = json!({"ref": "main"});
    let a = api
        .call(TOKEN, "POST", &dispatches("verify.yml"), Some(&plain))
        .await;
    assert_eq!(a.status, 204);
    let ok = run(api, &VERIFY_ID.to_string()).await;
    let failed = run(api, "tests.yml").await;
    let held = run(api, "hold.yml").await;
    let no_ref = json!({"inputs": {}});
    api.expect(TOKEN, "POST", &dispatches("verify.yml"), Some(&no_ref), 422)
        .await;
    let bad_ref = json!({"ref": "nope"});
    api.expect(
        TOKEN,
        "POST",
        &dispatches("verify.yml"),
        Some(&bad_ref),
        422,
    )
    .await;
    api.expect(
        TOKEN,
        "POST",
        &dispatches("push-only.yml"),
        Some(&plain),
        422,
    )
    .await;
    api.expect(TOKEN, "POST", &dispatches("missing.yml"), Some(&plain), 404)
        .await;

    // A run while queued (no logs yet), in progress, and completed.
    assert_eq!(
        wait_for(api, held, "queued").await["conclusion"],
        Value::Null
    );
    run_and_job(api, emu, held, false).await;
    wait_for(api, held, "in_progress").await;
    run_and_job(api, emu, held, true).await;
    assert!(emu.complete_run("acme", "api", held, "cancelled"));
    assert_eq!(
        wait_for(api, held, "completed").await["conclusion"],
        "cancelled"
    );
    run_and_job(api, emu, held, true).await;
    for (id, conclusion) in [(ok, "success"), (failed, "failure")] {
        assert_eq!(
            wait_for(api, id, "completed").await["conclusion"],
            conclusion
        );
        run_and_job(api, emu, id, true).await;
    }

    // Listings, filters and pages.
    let runs = format!("{ACTIONS}/runs");
    let all = api.expect(TOKEN, "GET", &runs, None, 200).await;
    assert_eq!(all["total_count"], 4, "{all}");
    let page = api
        .call(TOKEN, "GET", &format!("{runs}?per_page=1&page=2"), None)
        .await;
    assert_eq!(
        (
            page.status,
            page.json()["workflow_runs"].as_array().map(Vec::len)
        ),
        (200, Some(1))
    );
    assert!(page.headers.contains_key("link"));
    let done = api
        .expect(TOKEN, "GET", &format!("{runs}?status=failure"), None, 200)
        .await;
    assert_eq!(done["total_count"], 1, "{done}");
    let by_workflow = format!("{ACTIONS}/workflows/{VERIFY_ID}/runs");
    let mine = api.expect(TOKEN, "GET", &by_workflow, None, 200).await;
    assert_eq!(mine["total_count"], 2, "{mine}");
    let by_file = format!("{ACTIONS}/workflows/verify.yml/runs?event=workflow_dispatch");
    api.expect(TOKEN, "GET", &by_file, None, 200).await;
    let missing = format!("{ACTIONS}/workflows/missing.yml/runs");
    api.expect(TOKEN, "GET", &missing, None, 404).await;
    api.expect(
        TOKEN,
        "GET",
        &format!("{runs}?created=yesterday"),
        None,
        422,
    )
    .await;
    api.expect(TOKEN, "GET", "/repos/acme/nope/actions/runs", None, 404)
        .await;

    // Runs and jobs that are not there, and a bad filter.
    api.expect(TOKEN, "GET", &format!("{runs}/987654321"), None, 404)
        .await;
    let jobs = format!("{runs}/987654321/jobs");
    api.expect(TOKEN, "GET", &jobs, None, 404).await;
    let filter = format!("{runs}/{ok}/jobs?filter=some");
    api.expect(TOKEN, "GET", &filter, None, 422).await;
    let job = format!("{ACTIONS}/jobs/987654321");
    api.expect(TOKEN, "GET", &job, None, 404).await;
    api.expect(TOKEN, "GET", &format!("{job}/logs"), None, 404)
        .await;
    api.expect(TOKEN, "GET", &format!("{runs}/987654321/logs"), None, 404)
        .await;
}
