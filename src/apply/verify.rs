//! Verification runs: after a wave of targets holds the new value, the policy's workflow is
//! dispatched in each verified repository and its run followed to its conclusion. Only a run
//! queued after the push proves the new value (GitHub reads repository and organization
//! secrets when a run is queued), so rotor follows the run its own dispatch queued: the run
//! id the dispatch answers with, or, where GitHub answers 204, the oldest
//! `workflow_dispatch` run of the workflow created after the dispatch.
//!
//! A run that does not conclude `success` within the policy's timeout fails the wave. For a
//! failed run the report carries the failing job and step and the last lines of that
//! step's log, with the new and the previous value (and their base64 forms) replaced by
//! `***` before the excerpt is shown, logged or stored.

use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use futures::stream::{self, StreamExt};
use secrecy::SecretString;

use super::{Applier, Verification};
use crate::audit::{AuditEvent, AuditRecord};
use crate::model::github::{Job, WorkflowRun};
pub use crate::model::plan::PollSettings;
use crate::model::policy::Verify;
use crate::policy::Policy;
use crate::redact::{redact, step_excerpt};

/// How many log lines of the failing step the report keeps.
pub const EXCERPT_LINES: usize = 30;

impl Applier<'_> {
    /// Dispatches `policy`'s workflow in each of `repos` (`owner/repo`) at once (bounded by
    /// the concurrency) and waits for every run's conclusion.
    pub(super) async fn verify_wave(
        &self,
        policy: &Policy,
        repos: &[String],
        wave: &str,
        secrets: &[&SecretString],
    ) -> Vec<Verification> {
        let Some(verify) = policy.verify.as_ref() else {
            return Vec::new();
        };
        let mut out: Vec<Verification> = stream::iter(repos)
            .map(|full| async move {
                let v = self.verify_one(verify, full, wave, secrets).await;
                self.audit_verification(policy, &v);
                v
            })
            .buffer_unordered(self.ctx.concurrency.max(1))
            .collect()
            .await;
        out.sort_by(|a, b| a.repo.cmp(&b.repo));
        out
    }

    async fn verify_one(
        &self,
        verify: &Verify,
        full: &str,
        wave: &str,
        secrets: &[&SecretString],
    ) -> Verification {
        let mut v = Verification {
            repo: full.to_string(),
            wave: wave.to_string(),
            conclusion: "not_started".into(),
            ..Default::default()
        };
        let Some((owner, repo)) = full.split_once('/') else {
            v.message = Some("not an owner/repo name".into());
            return v;
        };
        let gh = &self.ctx.github;
        let workflow = verify.workflow.path_segment();
        let git_ref = match &verify.git_ref {
            Some(r) => r.clone(),
            None => match gh.repo_default_branch(owner, repo).await {
                Ok(b) => b,
                Err(e) => {
                    v.message = Some(format!("reading the default branch failed: {e}"));
                    return v;
                }
            },
        };
        // GitHub's `created` filter counts in whole seconds.
        let dispatched_at = Utc::now().trunc_subsecs(0);
        let deadline = tokio::time::Instant::now() + verify.timeout;
        let run_id = match gh
            .dispatch_workflow(owner, repo, &workflow, &git_ref, &verify.inputs, true)
            .await
        {
            Ok(Some(d)) => Some(d.run_id),
            Ok(None) => None,
            Err(e) => {
                v.message = Some(format!("dispatching {workflow} on {git_ref} failed: {e}"));
                return v;
            }
        };
        tracing::info!(repo = %full, workflow = %workflow, run_id, "verification dispatched");
        let poll = self.ctx.verify_poll;
        let mut step = poll.initial;
        let mut run_id = run_id;
        let mut last: Option<WorkflowRun> = None;
        loop {
            if run_id.is_none() {
                match gh
                    .list_workflow_runs(owner, repo, &workflow, "workflow_dispatch", dispatched_at)
                    .await
                {
                    Ok(runs) => run_id = ours(&runs, dispatched_at),
                    Err(e) => {
                        tracing::warn!(repo = %full, error = %e, "listing runs failed; trying again")
                    }
                }
            }
            if let Some(id) = run_id {
                match gh.workflow_run(owner, repo, id).await {
                    Ok(run) => {
                        let done = run.is_completed();
                        v.run_id = Some(run.id);
                        v.url = Some(run.html_url.clone()).filter(|u| !u.is_empty());
                        last = Some(run);
                        if done {
                            break;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(repo = %full, run_id = id, error = %e, "reading the run failed; trying again")
                    }
                }
            }
            let now = tokio::time::Instant::now();
            if now >= deadline || self.stopping() {
                v.conclusion = "none".into();
                let status = last
                    .as_ref()
                    .and_then(|r| r.status.clone())
                    .unwrap_or_else(|| "not found".into());
                v.message = Some(if self.stopping() {
                    format!("rotor stopped before the run concluded (status {status})")
                } else {
                    format!(
                        "the run did not conclude within {} (status {status})",
                        humantime(verify.timeout)
                    )
                });
                return v;
            }
            tokio::time::sleep(step.min(deadline - now)).await;
            step = (step * 2).min(poll.max.max(poll.initial));
        }
        let run = last.expect("a completed run was read");
        v.conclusion = run.conclusion.clone().unwrap_or_else(|| "none".into());
        if v.succeeded() {
            return v;
        }
        self.explain_failure(owner, repo, &run, secrets, &mut v)
            .await;
        v
    }

    /// The failing job and step of `run`, and the redacted tail of that step's log.
    async fn explain_failure(
        &self,
        owner: &str,
        repo: &str,
        run: &WorkflowRun,
        secrets: &[&SecretString],
        v: &mut Verification,
    ) {
        let gh = &self.ctx.github;
        let jobs = match gh.run_jobs(owner, repo, run.id).await {
            Ok(j) => j,
            Err(e) => {
                v.message = Some(format!("reading the run's jobs failed: {e}"));
                return;
            }
        };
        let Some(job) = failing_job(&jobs) else {
            return;
        };
        v.job = Some(job.name.clone());
        let step = job.steps.iter().find(|s| {
            matches!(
                s.conclusion.as_deref(),
                Some("failure" | "timed_out" | "cancelled")
            )
        });
        v.step = step.map(|s| s.name.clone());
        match gh.job_log(owner, repo, job.id).await {
            Ok(log) => {
                let excerpt = step_excerpt(&log, v.step.as_deref().unwrap_or(""), EXCERPT_LINES);
                v.excerpt = Some(redact(&excerpt, secrets));
            }
            Err(e) => v.message = Some(format!("reading the job's log failed: {e}")),
        }
    }

    fn audit_verification(&self, policy: &Policy, v: &Verification) {
        let mut r = AuditRecord::new(AuditEvent::Verification, &policy.name, &v.conclusion);
        r.owner = policy.owner.clone();
        r.target = Some(v.repo.clone());
        r.message = v.message.clone().or_else(|| {
            v.run_id.map(|id| {
                format!(
                    "run {id}{}",
                    v.url
                        .as_deref()
                        .map(|u| format!(" {u}"))
                        .unwrap_or_default()
                )
            })
        });
        let _ = self.audit(r);
    }
}

/// The run a dispatch queued, where GitHub did not say: the oldest `workflow_dispatch` run
/// created at or after the dispatch.
fn ours(runs: &[WorkflowRun], since: DateTime<Utc>) -> Option<u64> {
    runs.iter()
        .filter(|r| r.event == "workflow_dispatch" && r.created_at >= since)
        .min_by_key(|r| (r.created_at, r.id))
        .map(|r| r.id)
}

/// The job that failed: the first whose conclusion is not success, neutral or skipped.
fn failing_job(jobs: &[Job]) -> Option<&Job> {
    jobs.iter().find(|j| {
        !matches!(
            j.conclusion.as_deref(),
            Some("success" | "neutral" | "skipped") | None
        )
    })
}

fn humantime(d: Duration) -> String {
    let s = d.as_secs();
    if s.is_multiple_of(3600) && s > 0 {
        format!("{}h", s / 3600)
    } else if s.is_multiple_of(60) && s > 0 {
        format!("{}m", s / 60)
    } else if s > 0 {
        format!("{s}s")
    } else {
        format!("{}ms", d.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(id: u64, event: &str, created: &str) -> WorkflowRun {
        WorkflowRun {
            id,
            workflow_id: 1,
            event: event.into(),
            status: Some("queued".into()),
            conclusion: None,
            html_url: String::new(),
            created_at: created.parse().unwrap(),
            run_attempt: Some(1),
        }
    }

    #[test]
    fn without_a_run_id_the_oldest_dispatch_run_after_the_dispatch_is_ours() {
        let since: DateTime<Utc> = "2026-12-04T10:00:00Z".parse().unwrap();
        let runs = [
            run(1, "workflow_dispatch", "2026-12-04T09:59:59Z"),
            run(2, "push", "2026-12-04T10:00:00Z"),
            run(4, "workflow_dispatch", "2026-12-04T10:00:03Z"),
            run(3, "workflow_dispatch", "2026-12-04T10:00:01Z"),
        ];
        assert_eq!(ours(&runs, since), Some(3));
        assert_eq!(ours(&runs[..2], since), None);
    }

    #[test]
    fn polls_double_up_to_the_maximum() {
        let p = PollSettings {
            initial: Duration::from_secs(5),
            max: Duration::from_secs(30),
        };
        // 5 + 10 + 20 + 30 + 30 = 95 s
        assert_eq!(p.polls_for(Duration::from_secs(95)), 5);
        assert_eq!(p.polls_for(Duration::from_secs(1)), 1);
    }
}
