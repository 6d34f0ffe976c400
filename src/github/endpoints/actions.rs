//! GitHub Actions, for verification: dispatching a workflow, following its run, reading
//! its jobs and a job's log.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::Method;
use serde::{Deserialize, Serialize};

use crate::github::client::Client;
use crate::github::error::GitHubError;
use crate::github::transport::decode;
use crate::github::{listing, routes};
use crate::model::{DispatchedRun, Job, WorkflowRun};

type Result<T> = std::result::Result<T, GitHubError>;

/// The API version from which a dispatch always answers 200 with the run, and
/// `return_run_details` is no longer part of the request.
pub const ALWAYS_RETURNS_RUN: &str = "2026-03-10";

/// The most of a job's log rotor reads (its tail, when longer).
pub const MAX_LOG_BYTES: usize = 5 * 1024 * 1024;

impl Client {
    /// `POST /repos/{owner}/{repo}/actions/workflows/{workflow}/dispatches`: queues a run of
    /// `workflow` (file name or id) on `git_ref`. `Some(run)` when GitHub says which run it
    /// queued (200: asked with `return_run_details`, or always from API version
    /// 2026-03-10), `None` on 204.
    pub async fn dispatch_workflow(
        &self,
        owner: &str,
        repo: &str,
        workflow: &str,
        git_ref: &str,
        inputs: &BTreeMap<String, String>,
        return_run_details: bool,
    ) -> Result<Option<DispatchedRun>> {
        #[derive(Serialize)]
        struct Body<'a> {
            #[serde(rename = "ref")]
            git_ref: &'a str,
            #[serde(skip_serializing_if = "BTreeMap::is_empty")]
            inputs: &'a BTreeMap<String, String>,
            #[serde(skip_serializing_if = "Option::is_none")]
            return_run_details: Option<bool>,
        }
        let path = routes::path(
            &Method::POST,
            &[
                "repos",
                owner,
                repo,
                "actions",
                "workflows",
                workflow,
                "dispatches",
            ],
        )?;
        let transport = self.transport();
        let always = transport.api_version() >= ALWAYS_RETURNS_RUN;
        let body = Body {
            git_ref,
            inputs,
            return_run_details: (!always).then_some(return_run_details),
        };
        let reply = transport.send_json(Method::POST, &path, &body).await?;
        if reply.status.as_u16() == 204 || reply.body.is_empty() {
            return Ok(None);
        }
        decode(Method::POST, &path, &reply, |b| {
            serde_json::from_slice::<DispatchedRun>(b)
        })
        .map(Some)
    }

    /// `GET /repos/{owner}/{repo}` `default_branch`: where a dispatch without `ref` runs.
    pub async fn repo_default_branch(&self, owner: &str, repo: &str) -> Result<String> {
        #[derive(Deserialize)]
        struct Branch {
            default_branch: String,
        }
        let path = routes::path(&Method::GET, &["repos", owner, repo])?;
        let b: Branch = self.transport().get_json(&path).await?;
        Ok(b.default_branch)
    }

    /// `GET /repos/{owner}/{repo}/actions/workflows/{workflow}/runs?event=…&created=>=…`,
    /// every page (at most 10): the runs of `event` created at or after `since`. How the
    /// run a dispatch queued is found where the dispatch did not say.
    pub async fn list_workflow_runs(
        &self,
        owner: &str,
        repo: &str,
        workflow: &str,
        event: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<WorkflowRun>> {
        #[derive(Deserialize)]
        struct Page {
            workflow_runs: Vec<WorkflowRun>,
        }
        let path = routes::path(
            &Method::GET,
            &[
                "repos",
                owner,
                repo,
                "actions",
                "workflows",
                workflow,
                "runs",
            ],
        )?;
        // `created=>=2026-12-04T10:00:00Z`, with `>=` percent-encoded.
        let since = since.to_rfc3339_opts(SecondsFormat::Secs, true);
        let event = crate::github::routes::encode_segment(event);
        let query = format!("event={event}&created=%3E%3D{since}&per_page=100");
        let mut runs = listing::paginate(self.transport(), format!("{path}?{query}"), |body| {
            serde_json::from_slice::<Page>(body).map(|p| p.workflow_runs)
        })
        .await?;
        runs.truncate(1000);
        Ok(runs)
    }

    /// `GET /repos/{owner}/{repo}/actions/runs/{run_id}`.
    pub async fn workflow_run(&self, owner: &str, repo: &str, run_id: u64) -> Result<WorkflowRun> {
        let id = run_id.to_string();
        let path = routes::path(
            &Method::GET,
            &["repos", owner, repo, "actions", "runs", &id],
        )?;
        self.transport().get_json(&path).await
    }

    /// `GET /repos/{owner}/{repo}/actions/runs/{run_id}/jobs?filter=latest`, every page.
    pub async fn run_jobs(&self, owner: &str, repo: &str, run_id: u64) -> Result<Vec<Job>> {
        #[derive(Deserialize)]
        struct Page {
            jobs: Vec<Job>,
        }
        let id = run_id.to_string();
        let path = routes::path(
            &Method::GET,
            &["repos", owner, repo, "actions", "runs", &id, "jobs"],
        )?;
        listing::paginate(
            self.transport(),
            format!("{path}?filter=latest&per_page=100"),
            |body| serde_json::from_slice::<Page>(body).map(|p| p.jobs),
        )
        .await
    }

    /// `GET /repos/{owner}/{repo}/actions/jobs/{job_id}/logs`: GitHub answers 302 to a plain
    /// text file on another host, valid for a minute. The redirect is not followed with the
    /// credential: the file is fetched with none. At most the last 5 MiB are kept.
    pub async fn job_log(&self, owner: &str, repo: &str, job_id: u64) -> Result<String> {
        let id = job_id.to_string();
        let path = routes::path(
            &Method::GET,
            &["repos", owner, repo, "actions", "jobs", &id, "logs"],
        )?;
        let transport = self.transport();
        let location = transport.redirect_location(&path).await?;
        let body = transport.download(location, MAX_LOG_BYTES).await?;
        Ok(String::from_utf8_lossy(&body).into_owned())
    }
}
