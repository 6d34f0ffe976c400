//! Steering and inspecting workflows and runs from tests: change a workflow between runs,
//! queue a run in-process (optionally as if queued earlier), see runs (secret names only,
//! never values), count dispatches, end a run that never concludes, and count log
//! downloads refused for carrying `Authorization`.

use std::sync::atomic::Ordering;

use chrono::{DateTime, Utc};

use super::errors::FleetError;
use super::routes_actions::copy_environment_at_start;
use super::runs::{actions_secrets, NewRun, RunView};
use super::server::Emulator;
use super::workflow_spec::WorkflowSpec;

impl Emulator {
    /// Adds a workflow to a repository, or replaces the one with the same file name (which
    /// keeps its id unless `spec` names one). Runs already queued keep the workflow they
    /// were queued with. Returns the workflow's id.
    pub fn set_workflow(
        &self,
        owner: &str,
        repo: &str,
        spec: WorkflowSpec,
    ) -> Result<u64, FleetError> {
        self.shared.state().set_workflow(owner, repo, spec)
    }

    /// A repository's workflows, ids set.
    pub fn workflows(&self, owner: &str, repo: &str) -> Vec<WorkflowSpec> {
        self.shared
            .state_read()
            .repo(owner, repo)
            .map(|r| r.workflows.clone())
            .unwrap_or_default()
    }

    /// Queues a run of `workflow` (id or file name) on the default branch, as a dispatch
    /// would, but as if it had been queued at `queued_at` (its delays count from then). The
    /// secrets it checks are the ones held now. `None` if there is no such repository or
    /// workflow.
    pub fn queue_run(
        &self,
        owner: &str,
        repo: &str,
        workflow: &str,
        queued_at: DateTime<Utc>,
    ) -> Option<u64> {
        let (id, delay) = {
            let st = self.shared.state_read();
            let r = st.repo(owner, repo)?;
            let w = r.workflow(workflow)?.clone();
            let delay = w.environment.as_ref().map(|_| {
                let start = queued_at
                    + chrono::Duration::from_std(w.queue_delay)
                        .unwrap_or(chrono::Duration::MAX / 2);
                (start - Utc::now()).to_std().unwrap_or_default()
            });
            let new = NewRun {
                repo_id: r.id,
                actor: 0,
                head_branch: r.default_branch().to_string(),
                workflow: w,
                inputs: Default::default(),
                queued_at,
                queued_secrets: actions_secrets(&st, owner, repo),
            };
            let id = self
                .shared
                .runs
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .queue(new);
            (id, delay)
        };
        if let Some(delay) = delay {
            copy_environment_at_start(&self.shared, delay);
        }
        Some(id)
    }

    /// A repository's runs, newest first.
    pub fn runs(&self, owner: &str, repo: &str) -> Vec<RunView> {
        let (st, runs, now) = self.shared.actions();
        let Some(r) = st.repo(owner, repo) else {
            return Vec::new();
        };
        runs.runs
            .values()
            .rev()
            .filter(|run| run.repo_id == r.id)
            .map(|run| run.view(now))
            .collect()
    }

    /// One run, by id.
    pub fn run(&self, run_id: u64) -> Option<RunView> {
        let (_st, runs, now) = self.shared.actions();
        runs.runs.get(&run_id).map(|run| run.view(now))
    }

    /// Runs queued for a repository (dispatches and [`Emulator::queue_run`]).
    pub fn dispatch_count(&self, owner: &str, repo: &str) -> u64 {
        let (st, runs, _) = self.shared.actions();
        st.repo(owner, repo)
            .and_then(|r| runs.dispatches.get(&r.id).copied())
            .unwrap_or(0)
    }

    /// Ends a run of the repository that has not completed, now, with `conclusion`
    /// (`success`, `failure`, `cancelled`, ...); a run still queued starts and ends at once.
    /// `false` if there is no such run or it had completed.
    pub fn complete_run(&self, owner: &str, repo: &str, run_id: u64, conclusion: &str) -> bool {
        let st = self.shared.state_read();
        let Some(r) = st.repo(owner, repo) else {
            return false;
        };
        let mut runs = self.shared.runs.lock().unwrap_or_else(|p| p.into_inner());
        if runs.runs.get(&run_id).is_none_or(|run| run.repo_id != r.id) {
            return false;
        }
        runs.complete(&st, run_id, conclusion, Utc::now())
    }

    /// Log downloads the log host refused because they carried an `Authorization` header.
    pub fn authorization_sent_to_log_host(&self) -> u64 {
        self.shared
            .authorization_sent_to_log_host
            .load(Ordering::Relaxed)
    }
}
