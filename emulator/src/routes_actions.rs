//! GitHub Actions routes: workflows, dispatches, runs, jobs and log redirects; and the log
//! host the redirects point at (`/_emulator/logs/...`, no token, links valid a minute),
//! which refuses any request that carries an `Authorization` header.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::auth::{ApiVersion, BaseUrl, ReqCtx};
use super::errors::ApiError;
use super::extract::{Body, Params};
use super::guard::check_actions;
use super::pagination::{query_param, Page};
use super::routes_repos::with_link;
use super::runs::{actions_secrets, LogTarget, NewRun, Phase, RunState, RunStore};
use super::server::Shared;
use super::state::RepoState;
use super::validate::{dispatch_body, json_object};
use super::views_actions::{job_json, run_json, run_urls, workflow_json};

pub(crate) fn routes() -> Router<Arc<Shared>> {
    let r = "/repos/{owner}/{repo}/actions";
    Router::new()
        .route(&format!("{r}/workflows"), get(list_workflows))
        .route(&format!("{r}/workflows/{{workflow_id}}"), get(get_workflow))
        .route(
            &format!("{r}/workflows/{{workflow_id}}/dispatches"),
            post(dispatch),
        )
        .route(
            &format!("{r}/workflows/{{workflow_id}}/runs"),
            get(list_runs),
        )
        .route(&format!("{r}/runs"), get(list_runs))
        .route(&format!("{r}/runs/{{run_id}}"), get(get_run))
        .route(&format!("{r}/runs/{{run_id}}/jobs"), get(list_jobs))
        .route(&format!("{r}/runs/{{run_id}}/logs"), get(run_logs))
        .route(&format!("{r}/jobs/{{job_id}}"), get(get_job))
        .route(&format!("{r}/jobs/{{job_id}}/logs"), get(job_logs))
}

/// The log host: outside the API (no token, no rate limit).
pub(crate) fn log_routes() -> Router<Arc<Shared>> {
    Router::new()
        .route(
            "/_emulator/logs/jobs/{id}",
            get(|s, p, r| download(s, p, r, false)),
        )
        .route(
            "/_emulator/logs/runs/{id}",
            get(|s, p, r| download(s, p, r, true)),
        )
}

fn owner_repo(params: &Params) -> Result<(&str, &str), ApiError> {
    Ok((params.get("owner")?, params.get("repo")?))
}

fn numeric(params: &Params, name: &str) -> Result<u64, ApiError> {
    params
        .get(name)?
        .parse::<u64>()
        .map_err(|_| ApiError::not_found())
}

/// `GET .../actions/workflows`: `{total_count, workflows}`, paginated.
async fn list_workflows(
    State(sh): State<Arc<Shared>>,
    Extension(ctx): Extension<ReqCtx>,
    params: Params,
) -> Result<Response, ApiError> {
    let (owner, repo) = owner_repo(&params)?;
    let page = Page::from_query(ctx.base.query.as_deref());
    let st = sh.state_read();
    let (org, r) = check_actions(&st, ctx.access(), owner, repo, false)?;
    let items: Vec<Value> = page
        .slice(&r.workflows)
        .iter()
        .map(|w| workflow_json(org, r, w, &ctx.base))
        .collect();
    let link = page.link_header(&ctx.base, r.workflows.len());
    Ok(with_link(
        Json(json!({ "total_count": r.workflows.len(), "workflows": items })).into_response(),
        link,
    ))
}

/// `GET .../actions/workflows/{workflow_id}` (an id or a file name).
async fn get_workflow(
    State(sh): State<Arc<Shared>>,
    Extension(ctx): Extension<ReqCtx>,
    params: Params,
) -> Result<Response, ApiError> {
    let (owner, repo) = owner_repo(&params)?;
    let st = sh.state_read();
    let (org, r) = check_actions(&st, ctx.access(), owner, repo, false)?;
    let w = r
        .workflow(params.get("workflow_id")?)
        .ok_or_else(ApiError::not_found)?;
    Ok(Json(workflow_json(org, r, w, &ctx.base)).into_response())
}

/// The ref a dispatch names, as a branch of the repository: `main` or `refs/heads/main`.
fn branch_of<'a>(r: &'a RepoState, git_ref: &str) -> Option<&'a str> {
    let name = git_ref.strip_prefix("refs/heads/").unwrap_or(git_ref);
    r.branches
        .iter()
        .find(|b| b.as_str() == name)
        .map(String::as_str)
}

/// `POST .../actions/workflows/{workflow_id}/dispatches`: queues a run that sees the
/// repository's secrets as they are now. 204, or 200 `{workflow_run_id, run_url,
/// html_url}` with `return_run_details: true` or API version 2026-03-10.
async fn dispatch(
    State(sh): State<Arc<Shared>>,
    Extension(ctx): Extension<ReqCtx>,
    params: Params,
    Body(bytes): Body,
) -> Result<Response, ApiError> {
    let (owner, repo) = owner_repo(&params)?;
    let (run_id, urls, delay) = {
        let st = sh.state_read();
        let (org, r) = check_actions(&st, ctx.access(), owner, repo, true)?;
        let w = r
            .workflow(params.get("workflow_id")?)
            .ok_or_else(ApiError::not_found)?;
        let body = dispatch_body(&json_object(&bytes)?)?;
        if !w.dispatch {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Workflow does not have 'workflow_dispatch' trigger",
            ));
        }
        let branch = branch_of(r, &body.git_ref).ok_or_else(|| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("No ref found for: {}", body.git_ref),
            )
        })?;
        let new = NewRun {
            repo_id: r.id,
            actor: ctx.caller.user_id,
            workflow: w.clone(),
            head_branch: branch.to_string(),
            inputs: body.inputs,
            queued_at: Utc::now(),
            queued_secrets: actions_secrets(&st, owner, repo),
        };
        let delay = w.environment.as_ref().map(|_| w.queue_delay);
        let mut runs = sh.runs.lock().unwrap_or_else(|p| p.into_inner());
        let run_id = runs.queue(new);
        let details =
            sh.run_details && (body.return_run_details || ctx.version == ApiVersion::V2026_03_10);
        let urls = details.then(|| run_urls(org, r, run_id, &ctx.base));
        (run_id, urls, delay)
    };
    if let Some(delay) = delay {
        copy_environment_at_start(&sh, delay);
    }
    Ok(match urls {
        Some((run_url, html_url)) => Json(json!({
            "workflow_run_id": run_id,
            "run_url": run_url,
            "html_url": html_url,
        }))
        .into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    })
}

/// Copies the environment secrets of runs whose job starts after `delay`, at that moment
/// (when there is a runtime; reads do it too, late).
pub(crate) fn copy_environment_at_start(sh: &Arc<Shared>, delay: std::time::Duration) {
    if let Ok(rt) = tokio::runtime::Handle::try_current() {
        let sh = Arc::clone(sh);
        rt.spawn(async move {
            tokio::time::sleep(delay).await;
            drop(sh.actions());
        });
    }
}

/// Percent-decodes a query value (`%3E%3D2026-05-01T00%3A00%3A00Z`).
fn decode(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn param(query: Option<&str>, name: &str) -> Option<String> {
    query_param(query, name)
        .map(decode)
        .filter(|v| !v.is_empty())
}

/// A date (`2026-05-01`, the whole day) or a time (RFC 3339, or without offset: UTC), as
/// the first and last second it covers.
fn point(text: &str) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    if let Ok(d) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        let start = d.and_hms_opt(0, 0, 0)?.and_utc();
        return Some((start, start + chrono::Duration::seconds(86_399)));
    }
    let t = DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .or_else(|_| {
            chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S").map(|t| t.and_utc())
        })
        .ok()?;
    let t = DateTime::from_timestamp(t.timestamp(), 0)?;
    Some((t, t))
}

/// Inclusive lower and upper bounds; `None`: open.
pub(crate) type Bounds = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// `created` in search syntax: `>=X`, `>X`, `<=X`, `<X`, `A..B` (either side `*`), `X`.
/// Inclusive bounds at second precision.
pub(crate) fn created_range(text: &str) -> Option<Bounds> {
    let sec = chrono::Duration::seconds(1);
    let text = text.trim();
    if let Some(x) = text.strip_prefix(">=") {
        return Some((Some(point(x)?.0), None));
    }
    if let Some(x) = text.strip_prefix("<=") {
        return Some((None, Some(point(x)?.1)));
    }
    if let Some(x) = text.strip_prefix('>') {
        return Some((Some(point(x)?.1 + sec), None));
    }
    if let Some(x) = text.strip_prefix('<') {
        return Some((None, Some(point(x)?.0 - sec)));
    }
    if let Some((a, b)) = text.split_once("..") {
        let lo = if a == "*" { None } else { Some(point(a)?.0) };
        let hi = if b == "*" { None } else { Some(point(b)?.1) };
        return Some((lo, hi));
    }
    let (lo, hi) = point(text)?;
    Some((Some(lo), Some(hi)))
}

const CONCLUSIONS: [&str; 9] = [
    "action_required",
    "cancelled",
    "failure",
    "neutral",
    "skipped",
    "stale",
    "success",
    "timed_out",
    "startup_failure",
];

/// The runs of a repository the query keeps, newest first.
fn filtered<'a>(
    runs: &'a RunStore,
    r: &RepoState,
    workflow: Option<u64>,
    query: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Vec<&'a RunState>, ApiError> {
    let event = param(query, "event");
    let status = param(query, "status");
    let branch = param(query, "branch");
    let sha = param(query, "head_sha");
    let created = match param(query, "created") {
        None => None,
        Some(c) => Some(created_range(&c).ok_or_else(|| {
            ApiError::invalid_request(format!(
                "'created' must be a date or a date range in search syntax, not {c:?}."
            ))
        })?),
    };
    let mut out: Vec<&RunState> = runs
        .runs
        .values()
        .rev()
        .filter(|run| run.repo_id == r.id)
        .filter(|run| workflow.is_none_or(|w| run.workflow.id == Some(w)))
        .filter(|run| event.as_ref().is_none_or(|e| *e == run.event))
        .filter(|run| branch.as_ref().is_none_or(|b| *b == run.head_branch))
        .filter(|run| sha.as_ref().is_none_or(|s| *s == run.head_sha))
        .filter(|run| match status.as_deref() {
            None => true,
            Some(s) if CONCLUSIONS.contains(&s) => run.conclusion(now).as_deref() == Some(s),
            Some(s) => run.status(now).as_str() == s,
        })
        .collect();
    if let Some((lo, hi)) = created {
        out.retain(|run| {
            let t = DateTime::from_timestamp(run.queued_at.timestamp(), 0).unwrap_or(run.queued_at);
            lo.is_none_or(|lo| t >= lo) && hi.is_none_or(|hi| t <= hi)
        });
    }
    Ok(out)
}

/// `GET .../actions/runs` and `GET .../actions/workflows/{workflow_id}/runs`, with
/// `event`, `status`, `created`, `branch`, `head_sha`, `per_page`, `page`.
async fn list_runs(
    State(sh): State<Arc<Shared>>,
    Extension(ctx): Extension<ReqCtx>,
    params: Params,
) -> Result<Response, ApiError> {
    let (owner, repo) = owner_repo(&params)?;
    let query = ctx.base.query.as_deref();
    let page = Page::from_query(query);
    let (st, runs, now) = sh.actions();
    let (org, r) = check_actions(&st, ctx.access(), owner, repo, false)?;
    let workflow = match params.opt("workflow_id") {
        None => None,
        Some(w) => Some(
            r.workflow(w)
                .and_then(|w| w.id)
                .ok_or_else(ApiError::not_found)?,
        ),
    };
    let all = filtered(&runs, r, workflow, query, now)?;
    let items: Vec<Value> = page
        .slice(&all)
        .iter()
        .map(|run| run_json(org, r, run, &ctx.base, ctx.version, now))
        .collect();
    let link = page.link_header(&ctx.base, all.len());
    Ok(with_link(
        Json(json!({ "total_count": all.len(), "workflow_runs": items })).into_response(),
        link,
    ))
}

/// The run `{run_id}` of the repository: 404 when it is another repository's.
fn run_of<'a>(runs: &'a RunStore, r: &RepoState, run_id: u64) -> Result<&'a RunState, ApiError> {
    runs.runs
        .get(&run_id)
        .filter(|run| run.repo_id == r.id)
        .ok_or_else(ApiError::not_found)
}

fn job_of<'a>(runs: &'a RunStore, r: &RepoState, job_id: u64) -> Result<&'a RunState, ApiError> {
    let run_id = runs.by_job.get(&job_id).ok_or_else(ApiError::not_found)?;
    run_of(runs, r, *run_id)
}

async fn get_run(
    State(sh): State<Arc<Shared>>,
    Extension(ctx): Extension<ReqCtx>,
    params: Params,
) -> Result<Response, ApiError> {
    let (owner, repo) = owner_repo(&params)?;
    let run_id = numeric(&params, "run_id")?;
    let (st, runs, now) = sh.actions();
    let (org, r) = check_actions(&st, ctx.access(), owner, repo, false)?;
    let run = run_of(&runs, r, run_id)?;
    Ok(Json(run_json(org, r, run, &ctx.base, ctx.version, now)).into_response())
}

/// `GET .../actions/runs/{run_id}/jobs`: `{total_count, jobs}` (one job), `filter`
/// `latest` (default) or `all`.
async fn list_jobs(
    State(sh): State<Arc<Shared>>,
    Extension(ctx): Extension<ReqCtx>,
    params: Params,
) -> Result<Response, ApiError> {
    let (owner, repo) = owner_repo(&params)?;
    let run_id = numeric(&params, "run_id")?;
    let query = ctx.base.query.as_deref();
    if let Some(f) = param(query, "filter") {
        if f != "latest" && f != "all" {
            return Err(ApiError::invalid_request(format!(
                "For 'filter', {f:?} is not one of latest, all."
            )));
        }
    }
    let page = Page::from_query(query);
    let (st, runs, now) = sh.actions();
    let (org, r) = check_actions(&st, ctx.access(), owner, repo, false)?;
    let run = run_of(&runs, r, run_id)?;
    let all = [run];
    let items: Vec<Value> = page
        .slice(&all)
        .iter()
        .map(|run| job_json(org, r, run, &ctx.base, now))
        .collect();
    let link = page.link_header(&ctx.base, all.len());
    Ok(with_link(
        Json(json!({ "total_count": all.len(), "jobs": items })).into_response(),
        link,
    ))
}

async fn get_job(
    State(sh): State<Arc<Shared>>,
    Extension(ctx): Extension<ReqCtx>,
    params: Params,
) -> Result<Response, ApiError> {
    let (owner, repo) = owner_repo(&params)?;
    let job_id = numeric(&params, "job_id")?;
    let (st, runs, now) = sh.actions();
    let (org, r) = check_actions(&st, ctx.access(), owner, repo, false)?;
    let run = job_of(&runs, r, job_id)?;
    Ok(Json(job_json(org, r, run, &ctx.base, now)).into_response())
}

/// A 302 to the log host with a fresh one-minute link.
fn redirect(
    base: &BaseUrl,
    runs: &mut RunStore,
    target: LogTarget,
    now: DateTime<Utc>,
) -> Response {
    let token = runs.link(target, now);
    let path = match target {
        LogTarget::Job(id) => format!("jobs/{id}"),
        LogTarget::Run(id) => format!("runs/{id}"),
    };
    let location = format!("{}/_emulator/logs/{path}?token={token}", base.origin);
    (StatusCode::FOUND, [(header::LOCATION, location)]).into_response()
}

/// `GET .../actions/jobs/{job_id}/logs`: 302 to the plain-text log once the job has
/// started, 404 before.
async fn job_logs(
    State(sh): State<Arc<Shared>>,
    Extension(ctx): Extension<ReqCtx>,
    params: Params,
) -> Result<Response, ApiError> {
    let (owner, repo) = owner_repo(&params)?;
    let job_id = numeric(&params, "job_id")?;
    let (st, mut runs, now) = sh.actions();
    let (_, r) = check_actions(&st, ctx.access(), owner, repo, false)?;
    if job_of(&runs, r, job_id)?.status(now) == Phase::Queued {
        return Err(ApiError::not_found());
    }
    Ok(redirect(&ctx.base, &mut runs, LogTarget::Job(job_id), now))
}

/// `GET .../actions/runs/{run_id}/logs`: 302 to the zip archive once the job has started.
async fn run_logs(
    State(sh): State<Arc<Shared>>,
    Extension(ctx): Extension<ReqCtx>,
    params: Params,
) -> Result<Response, ApiError> {
    let (owner, repo) = owner_repo(&params)?;
    let run_id = numeric(&params, "run_id")?;
    let (st, mut runs, now) = sh.actions();
    let (_, r) = check_actions(&st, ctx.access(), owner, repo, false)?;
    if run_of(&runs, r, run_id)?.status(now) == Phase::Queued {
        return Err(ApiError::not_found());
    }
    Ok(redirect(&ctx.base, &mut runs, LogTarget::Run(run_id), now))
}

/// The log host: 400 (and counted) with an `Authorization` header, 403 for a missing,
/// wrong or expired link, else the job's text or the run's zip.
async fn download(
    State(sh): State<Arc<Shared>>,
    params: Params,
    req: Request,
    archive: bool,
) -> Response {
    if req.headers().contains_key(header::AUTHORIZATION) {
        sh.authorization_sent_to_log_host
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        return ApiError::new(
            StatusCode::BAD_REQUEST,
            "The log host takes no Authorization header: the link is its own credential.",
        )
        .into_response();
    }
    let denied = || {
        ApiError::forbidden("The log link is not valid or has expired (links last 1 minute).")
            .into_response()
    };
    let Ok(id) = params.get("id").map(|i| i.parse::<u64>()) else {
        return ApiError::not_found().into_response();
    };
    let Ok(id) = id else {
        return ApiError::not_found().into_response();
    };
    let token = param(req.uri().query(), "token").unwrap_or_default();
    let (_st, runs, now) = sh.actions();
    let target = if archive {
        LogTarget::Run(id)
    } else {
        LogTarget::Job(id)
    };
    match runs.links.get(&token) {
        Some((t, until)) if *t == target && *until > now => {}
        _ => return denied(),
    }
    let run_id = if archive {
        Some(id)
    } else {
        runs.by_job.get(&id).copied()
    };
    let Some(run) = run_id.and_then(|r| runs.runs.get(&r)) else {
        return ApiError::not_found().into_response();
    };
    if archive {
        match super::logs::run_archive(run, now) {
            Some(zip) => ([(header::CONTENT_TYPE, "application/zip")], zip).into_response(),
            None => ApiError::not_found().into_response(),
        }
    } else {
        match super::logs::job_log(run, now) {
            Some(text) => {
                ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response()
            }
            None => ApiError::not_found().into_response(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("time")
            .with_timezone(&Utc)
    }

    #[test]
    fn created_takes_search_syntax() {
        let (lo, hi) = created_range(">=2026-05-01T10:00:00Z").expect("valid");
        assert_eq!((lo, hi), (Some(at("2026-05-01T10:00:00Z")), None));
        let (lo, _) = created_range(">2026-05-01T10:00:00Z").expect("valid");
        assert_eq!(lo, Some(at("2026-05-01T10:00:01Z")));
        let (_, hi) = created_range("<=2026-05-01").expect("valid");
        assert_eq!(hi, Some(at("2026-05-01T23:59:59Z")));
        let (_, hi) = created_range("<2026-05-01").expect("valid");
        assert_eq!(hi, Some(at("2026-04-30T23:59:59Z")));
        let (lo, hi) = created_range("2026-05-01..2026-05-02").expect("valid");
        assert_eq!(lo, Some(at("2026-05-01T00:00:00Z")));
        assert_eq!(hi, Some(at("2026-05-02T23:59:59Z")));
        assert_eq!(
            created_range("2026-05-01T00:00:00+02:00..*").expect("valid"),
            (Some(at("2026-04-30T22:00:00Z")), None)
        );
        assert!(created_range(">=yesterday").is_none());
    }

    #[test]
    fn query_values_are_percent_decoded() {
        assert_eq!(
            decode("%3E%3D2026-05-01T00%3A00%3A00Z"),
            ">=2026-05-01T00:00:00Z"
        );
        assert_eq!(decode("a%2"), "a%2");
        assert_eq!(decode("%zz"), "%zz");
    }
}
