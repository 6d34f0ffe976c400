//! The JSON shapes of GitHub Actions: `workflow`, `workflow-run`, `job` and
//! `workflow-dispatch-response`, with every field the schemas mark required.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::auth::{ApiVersion, BaseUrl};
use super::runs::{Phase, RunState, JOB_NAME};
use super::state::{rfc3339, OrgState, RepoState};
use super::views::{node_id, repo_json, simple_user_json};
use super::workflow_spec::WorkflowSpec;

/// Where `html_url`s of runs, jobs and workflows point.
pub(crate) const HTML_ROOT: &str = "https://github.com";

fn when(t: Option<DateTime<Utc>>) -> Value {
    t.map(|t| json!(rfc3339(&t))).unwrap_or(Value::Null)
}

fn repo_api(base: &BaseUrl, org: &OrgState, repo: &RepoState) -> String {
    format!("{}/repos/{}/{}", base.api(), org.login, repo.name)
}

pub(crate) fn workflow_path(w: &WorkflowSpec) -> String {
    format!(".github/workflows/{}", w.file)
}

pub(crate) fn workflow_json(
    org: &OrgState,
    repo: &RepoState,
    w: &WorkflowSpec,
    base: &BaseUrl,
) -> Value {
    let id = w.id.unwrap_or_default();
    let full = format!("{}/{}", org.login, repo.name);
    let path = workflow_path(w);
    let created = rfc3339(&repo.created_at);
    json!({
        "id": id,
        "node_id": node_id("Workflow", id),
        "name": w.display_name(),
        "path": path,
        "state": "active",
        "created_at": created,
        "updated_at": created,
        "url": format!("{}/actions/workflows/{id}", repo_api(base, org, repo)),
        "html_url": format!("{HTML_ROOT}/{full}/blob/{}/{path}", repo.default_branch()),
        "badge_url": format!("{HTML_ROOT}/{full}/workflows/{}/badge.svg", w.display_name()),
    })
}

/// The run's URLs: (API url, html url).
pub(crate) fn run_urls(
    org: &OrgState,
    repo: &RepoState,
    run_id: u64,
    base: &BaseUrl,
) -> (String, String) {
    (
        format!("{}/actions/runs/{run_id}", repo_api(base, org, repo)),
        format!(
            "{HTML_ROOT}/{}/{}/actions/runs/{run_id}",
            org.login, repo.name
        ),
    )
}

pub(crate) fn run_json(
    org: &OrgState,
    repo: &RepoState,
    run: &RunState,
    base: &BaseUrl,
    version: ApiVersion,
    now: DateTime<Utc>,
) -> Value {
    let api = repo_api(base, org, repo);
    let (url, html_url) = run_urls(org, repo, run.id, base);
    let wid = run.workflow.id.unwrap_or_default();
    let name = run.workflow.display_name();
    let status = run.status(now);
    let updated = match status {
        Phase::Queued => run.queued_at,
        Phase::InProgress => run.started_at,
        Phase::Completed => run.ends_at.unwrap_or(run.started_at),
    };
    let suite = run.id + 1_000_000_000;
    let repository = repo_json(org, repo, base, version, None);
    json!({
        "id": run.id,
        "name": name,
        "node_id": node_id("WorkflowRun", run.id),
        "check_suite_id": suite,
        "check_suite_node_id": node_id("CheckSuite", suite),
        "head_branch": run.head_branch,
        "head_sha": run.head_sha,
        "path": workflow_path(&run.workflow),
        "display_title": name,
        "run_number": run.run_number,
        "run_attempt": 1,
        "referenced_workflows": [],
        "event": run.event,
        "status": status.as_str(),
        "conclusion": run.conclusion(now),
        "workflow_id": wid,
        "url": url,
        "html_url": html_url,
        "pull_requests": [],
        "created_at": rfc3339(&run.queued_at),
        "updated_at": rfc3339(&updated),
        "run_started_at": rfc3339(&run.queued_at),
        "actor": simple_user_json(run.actor, base),
        "triggering_actor": simple_user_json(run.actor, base),
        "jobs_url": format!("{url}/jobs"),
        "logs_url": format!("{url}/logs"),
        "check_suite_url": format!("{api}/check-suites/{suite}"),
        "artifacts_url": format!("{url}/artifacts"),
        "cancel_url": format!("{url}/cancel"),
        "rerun_url": format!("{url}/rerun"),
        "previous_attempt_url": null,
        "workflow_url": format!("{api}/actions/workflows/{wid}"),
        "head_commit": {
            "id": run.head_sha,
            "tree_id": run.head_sha,
            "message": format!("The head of {}", run.head_branch),
            "timestamp": rfc3339(&repo.created_at),
            "author": {"name": "Emulator", "email": "emulator@example.com"},
            "committer": {"name": "Emulator", "email": "emulator@example.com"},
        },
        "repository": repository,
        "head_repository": repository,
        "head_repository_id": repo.id,
    })
}

pub(crate) fn job_json(
    org: &OrgState,
    repo: &RepoState,
    run: &RunState,
    base: &BaseUrl,
    now: DateTime<Utc>,
) -> Value {
    let api = repo_api(base, org, repo);
    let (run_url, run_html) = run_urls(org, repo, run.id, base);
    let status = run.status(now);
    let started = status != Phase::Queued;
    let steps: Vec<Value> = if started {
        run.steps(now)
            .iter()
            .map(|s| {
                json!({
                    "name": s.name,
                    "status": s.phase.as_str(),
                    "conclusion": s.conclusion,
                    "number": s.number,
                    "started_at": when(s.started_at),
                    "completed_at": when(s.completed_at),
                })
            })
            .collect()
    } else {
        Vec::new()
    };
    let runner = |v: Value| if started { v } else { Value::Null };
    json!({
        "id": run.job_id,
        "run_id": run.id,
        "run_url": run_url,
        "run_attempt": 1,
        "node_id": node_id("CheckRun", run.job_id),
        "head_sha": run.head_sha,
        "url": format!("{api}/actions/jobs/{}", run.job_id),
        "html_url": format!("{run_html}/job/{}", run.job_id),
        "status": status.as_str(),
        "conclusion": run.conclusion(now),
        "created_at": rfc3339(&run.queued_at),
        "started_at": rfc3339(if started { &run.started_at } else { &run.queued_at }),
        "completed_at": when(run.completed_at(now)),
        "name": JOB_NAME,
        "steps": steps,
        "check_run_url": format!("{api}/check-runs/{}", run.job_id),
        "labels": ["ubuntu-latest"],
        "runner_id": runner(json!(1)),
        "runner_name": runner(json!("GitHub Actions 1")),
        "runner_group_id": runner(json!(1)),
        "runner_group_name": runner(json!("GitHub Actions")),
        "workflow_name": run.workflow.display_name(),
        "head_branch": run.head_branch,
    })
}
