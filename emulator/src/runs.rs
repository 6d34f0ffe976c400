//! Workflow runs in memory and their lifecycle on real time: queued at dispatch, in
//! progress after the workflow's `queue_delay`, completed after its `duration` more (or
//! never, for `never_conclude`, until a test completes it). Status is computed from the
//! timestamps whenever a run is read, so nothing runs in the background except one task per
//! run that names an environment, which reads the environment's secrets when the job starts.
//!
//! What a run checks is what the repository held when it was QUEUED: its Actions secrets
//! and the organization's Actions secrets it may use (a repository secret shadows an
//! organization secret of the same name) are copied at dispatch; an environment's secrets
//! are copied when the job starts, and win over both.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};

use super::state::State;
use super::workflow_spec::{SecretRule, WorkflowSpec};

const FIRST_RUN_ID: u64 = 7_000_000_001;
const FIRST_JOB_ID: u64 = 30_000_000_001;

/// The job every run has, and its steps in order.
pub(crate) const JOB_NAME: &str = "verify";
pub(crate) const STEPS: [&str; 4] = ["Set up job", "Check secrets", "Run tests", "Complete job"];

/// Secret values as a run sees them, by upper-case name. Never printed.
pub(crate) type Values = BTreeMap<String, SecretString>;

/// The phase of a run, job or step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Phase {
    Queued,
    InProgress,
    Completed,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Queued => "queued",
            Phase::InProgress => "in_progress",
            Phase::Completed => "completed",
        }
    }
}

/// One step of the job at some moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StepView {
    pub number: usize,
    pub name: &'static str,
    pub phase: Phase,
    pub conclusion: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
}

/// One run. Holds secret values, so it derives nothing that could print them.
pub(crate) struct RunState {
    pub id: u64,
    pub job_id: u64,
    pub repo_id: u64,
    /// The caller's user id (the run's actor).
    pub actor: u64,
    /// The workflow as it was when the run was queued (its id set).
    pub workflow: WorkflowSpec,
    pub run_number: u64,
    pub head_branch: String,
    pub head_sha: String,
    pub event: String,
    pub inputs: BTreeMap<String, String>,
    pub queued_at: DateTime<Utc>,
    /// When the job starts (queued_at + queue_delay, or earlier if completed by a test).
    pub started_at: DateTime<Utc>,
    /// When the run completes; `None`: not known yet (`never_conclude`).
    pub ends_at: Option<DateTime<Utc>>,
    /// A conclusion set by [`crate::Emulator::complete_run`].
    pub forced: Option<String>,
    /// Repository and organization secrets, copied when the run was queued.
    pub queued_secrets: Values,
    /// The environment's secrets, copied when the job started (`None` before that, or when
    /// the workflow names no environment).
    pub env_secrets: Option<Values>,
}

/// A rule broken by what the job saw, in words that never include the value.
pub(crate) fn broken_rule(rule: &SecretRule, seen: &Values) -> Option<String> {
    let name = rule.secret.to_ascii_uppercase();
    let Some(value) = seen.get(&name).map(|v| v.expose_secret()) else {
        return Some(format!("secret {name} is not set"));
    };
    if let Some(want) = &rule.equals {
        return (value != want).then(|| format!("secret {name} does not have the expected value"));
    }
    if let Some(re) = &rule.matches {
        let ok = regex::Regex::new(re).is_ok_and(|re| re.is_match(value));
        return (!ok).then(|| format!("secret {name} does not match /{re}/"));
    }
    value.is_empty().then(|| format!("secret {name} is empty"))
}

fn after(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    t + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX / 2)
}

impl RunState {
    pub fn status(&self, now: DateTime<Utc>) -> Phase {
        if now < self.started_at {
            Phase::Queued
        } else if self.ends_at.is_none_or(|e| now < e) {
            Phase::InProgress
        } else {
            Phase::Completed
        }
    }

    /// The secrets the job sees: the queued copy, with the environment's over it.
    pub fn seen(&self) -> Values {
        let mut seen = self.queued_secrets.clone();
        if let Some(env) = &self.env_secrets {
            seen.extend(env.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        seen
    }

    /// What "Check secrets" reports broken (empty: every rule holds).
    pub fn broken(&self) -> Vec<String> {
        let seen = self.seen();
        self.workflow
            .require
            .iter()
            .filter_map(|r| broken_rule(r, &seen))
            .collect()
    }

    /// The run's conclusion once completed.
    pub fn conclusion(&self, now: DateTime<Utc>) -> Option<String> {
        if self.status(now) != Phase::Completed {
            return None;
        }
        if let Some(c) = &self.forced {
            return Some(c.clone());
        }
        let failed = self.workflow.fail || !self.broken().is_empty();
        Some(if failed { "failure" } else { "success" }.to_string())
    }

    pub fn completed_at(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.ends_at.filter(|e| *e <= now)
    }

    /// The steps' start times and the last one's end: a quarter of `duration` each, "Run
    /// tests" lasting until the end for `never_conclude`; nothing past the run's end.
    fn bounds(&self) -> [Option<DateTime<Utc>>; 5] {
        let s = self.started_at;
        let q = self.workflow.duration / 4;
        let mut b = [
            Some(s),
            Some(after(s, q)),
            Some(after(s, q * 2)),
            if self.workflow.never_conclude {
                None
            } else {
                Some(after(s, q * 3))
            },
            self.ends_at,
        ];
        for x in b.iter_mut() {
            *x = match (*x, self.ends_at) {
                (Some(t), Some(e)) => Some(t.min(e)),
                (None, e) => e,
                (t, None) => t,
            };
        }
        b
    }

    pub fn steps(&self, now: DateTime<Utc>) -> Vec<StepView> {
        let b = self.bounds();
        let broken = !self.broken().is_empty();
        STEPS
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let (start, end) = (b[i], b[i + 1]);
                let phase = match (start, end) {
                    (Some(s), _) if now < s => Phase::Queued,
                    (None, _) => Phase::Queued,
                    (_, Some(e)) if e <= now => Phase::Completed,
                    _ => Phase::InProgress,
                };
                let conclusion = (phase == Phase::Completed).then(|| {
                    match i {
                        1 if broken => "failure",
                        2 if broken => "skipped",
                        2 => match &self.forced {
                            Some(c) => c.as_str(),
                            None if self.workflow.fail => "failure",
                            None => "success",
                        },
                        _ => "success",
                    }
                    .to_string()
                });
                StepView {
                    number: i + 1,
                    name,
                    phase,
                    conclusion,
                    started_at: start.filter(|s| *s <= now),
                    completed_at: end.filter(|e| *e <= now),
                }
            })
            .collect()
    }
}

/// A run as tests see it: no secret values, only names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunView {
    pub id: u64,
    pub job_id: u64,
    pub workflow_id: u64,
    /// The workflow's file name, e.g. `verify-secrets.yml`.
    pub workflow_file: String,
    pub run_number: u64,
    pub head_branch: String,
    pub event: String,
    /// `queued`, `in_progress` or `completed`.
    pub status: String,
    /// `success`, `failure`, ... once completed.
    pub conclusion: Option<String>,
    pub created_at: DateTime<Utc>,
    /// The names of the repository and organization secrets copied when it was queued.
    pub queued_secret_names: Vec<String>,
    /// The names of the environment secrets copied when the job started.
    pub environment_secret_names: Vec<String>,
    pub inputs: BTreeMap<String, String>,
}

impl RunState {
    pub fn view(&self, now: DateTime<Utc>) -> RunView {
        RunView {
            id: self.id,
            job_id: self.job_id,
            workflow_id: self.workflow.id.unwrap_or_default(),
            workflow_file: self.workflow.file.clone(),
            run_number: self.run_number,
            head_branch: self.head_branch.clone(),
            event: self.event.clone(),
            status: self.status(now).as_str().to_string(),
            conclusion: self.conclusion(now),
            created_at: self.queued_at,
            queued_secret_names: self.queued_secrets.keys().cloned().collect(),
            environment_secret_names: self
                .env_secrets
                .as_ref()
                .map(|e| e.keys().cloned().collect())
                .unwrap_or_default(),
            inputs: self.inputs.clone(),
        }
    }
}

/// What a log link opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LogTarget {
    Job(u64),
    Run(u64),
}

/// Every run, behind its own lock (taken after the state lock, never before it).
#[derive(Default)]
pub(crate) struct RunStore {
    pub runs: BTreeMap<u64, RunState>,
    pub by_job: HashMap<u64, u64>,
    next_run_id: u64,
    next_job_id: u64,
    /// (repository id, workflow id) -> the last run number.
    run_numbers: HashMap<(u64, u64), u64>,
    /// Accepted dispatches by repository id.
    pub dispatches: HashMap<u64, u64>,
    /// Log download links: token -> what it opens and until when.
    pub links: HashMap<String, (LogTarget, DateTime<Utc>)>,
}

/// The Actions secrets a run of this repository would see now: the organization's that it
/// may use, shadowed by its own.
pub(crate) fn actions_secrets(st: &State, owner: &str, repo: &str) -> Values {
    let mut out = Values::new();
    let (Some(org), Some(r)) = (st.org(owner), st.repo(owner, repo)) else {
        return out;
    };
    for (name, e) in &org.apps[0].secrets {
        if e.access.as_ref().is_some_and(|a| a.admits(r)) {
            out.insert(name.clone(), e.value.clone());
        }
    }
    for (name, e) in &r.apps[0].secrets {
        out.insert(name.clone(), e.value.clone());
    }
    out
}

/// The secrets of one environment of the repository now (none if it does not exist).
pub(crate) fn environment_secrets(st: &State, owner: &str, repo: &str, env: &str) -> Values {
    st.repo(owner, repo)
        .and_then(|r| r.environments.get(&env.to_lowercase()))
        .map(|e| {
            e.data
                .secrets
                .iter()
                .map(|(k, v)| (k.clone(), v.value.clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// A stable 40-hex commit id for a branch of a repository.
pub(crate) fn head_sha(repo_id: u64, branch: &str) -> String {
    use blake2::digest::consts::U20;
    use blake2::{Blake2b, Digest as _};
    let mut h = Blake2b::<U20>::new();
    h.update(repo_id.to_be_bytes());
    h.update(branch.as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// What a new run is made of.
pub(crate) struct NewRun {
    pub repo_id: u64,
    pub actor: u64,
    pub workflow: WorkflowSpec,
    pub head_branch: String,
    pub inputs: BTreeMap<String, String>,
    pub queued_at: DateTime<Utc>,
    pub queued_secrets: Values,
}

impl RunStore {
    /// Queues a run; returns its id.
    pub fn queue(&mut self, new: NewRun) -> u64 {
        if self.next_run_id == 0 {
            self.next_run_id = FIRST_RUN_ID;
            self.next_job_id = FIRST_JOB_ID;
        }
        let id = self.next_run_id;
        let job_id = self.next_job_id;
        self.next_run_id += 1;
        self.next_job_id += 1;
        let wid = new.workflow.id.unwrap_or_default();
        let n = self.run_numbers.entry((new.repo_id, wid)).or_insert(0);
        *n += 1;
        let started_at = after(new.queued_at, new.workflow.queue_delay);
        let ends_at =
            (!new.workflow.never_conclude).then(|| after(started_at, new.workflow.duration));
        let run = RunState {
            id,
            job_id,
            repo_id: new.repo_id,
            actor: new.actor,
            run_number: *n,
            head_sha: head_sha(new.repo_id, &new.head_branch),
            head_branch: new.head_branch,
            event: "workflow_dispatch".to_string(),
            inputs: new.inputs,
            queued_at: new.queued_at,
            started_at,
            ends_at,
            forced: None,
            queued_secrets: new.queued_secrets,
            env_secrets: None,
            workflow: new.workflow,
        };
        *self.dispatches.entry(new.repo_id).or_insert(0) += 1;
        self.by_job.insert(job_id, id);
        self.runs.insert(id, run);
        id
    }

    /// Copies the environment secrets of every started run that names an environment and
    /// has none yet. `st` is the state the store's lock was taken under.
    pub fn advance(&mut self, st: &State, now: DateTime<Utc>) {
        for run in self.runs.values_mut() {
            if run.env_secrets.is_some() || now < run.started_at {
                continue;
            }
            let Some(env) = run.workflow.environment.clone() else {
                continue;
            };
            let Some((org, repo)) = st.repo_by_id(run.repo_id) else {
                continue;
            };
            run.env_secrets = Some(environment_secrets(st, &org.login, &repo.name, &env));
        }
    }

    /// Ends a run that has not completed with `conclusion`; `false` if it had.
    pub fn complete(
        &mut self,
        st: &State,
        run_id: u64,
        conclusion: &str,
        now: DateTime<Utc>,
    ) -> bool {
        self.advance(st, now);
        let Some(run) = self.runs.get_mut(&run_id) else {
            return false;
        };
        if run.status(now) == Phase::Completed {
            return false;
        }
        if now < run.started_at {
            run.started_at = now;
        }
        run.ends_at = Some(now);
        run.forced = Some(conclusion.to_string());
        self.advance(st, now);
        true
    }

    /// A fresh log link to `target`, valid for a minute.
    pub fn link(&mut self, target: LogTarget, now: DateTime<Utc>) -> String {
        use crypto_box::aead::rand_core::RngCore as _;
        let mut bytes = [0u8; 16];
        crypto_box::aead::OsRng.fill_bytes(&mut bytes);
        let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        self.links.retain(|_, (_, until)| *until > now);
        self.links
            .insert(token.clone(), (target, now + chrono::Duration::seconds(60)));
        token
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(spec: WorkflowSpec, secrets: &[(&str, &str)]) -> (RunStore, u64, DateTime<Utc>) {
        let mut store = RunStore::default();
        let t0 = Utc::now();
        let id = store.queue(NewRun {
            repo_id: 1,
            actor: 1,
            workflow: spec.id(5),
            head_branch: "main".into(),
            inputs: BTreeMap::new(),
            queued_at: t0,
            queued_secrets: secrets
                .iter()
                .map(|(k, v)| (k.to_string(), SecretString::from(v.to_string())))
                .collect(),
        });
        (store, id, t0)
    }

    fn ms(t: DateTime<Utc>, n: i64) -> DateTime<Utc> {
        t + chrono::Duration::milliseconds(n)
    }

    #[test]
    fn status_follows_the_clock_and_the_conclusion_the_rules() {
        let spec = WorkflowSpec::new("v.yml")
            .queue_delay(Duration::from_millis(100))
            .duration(Duration::from_millis(400))
            .require_matches("API_TOKEN", "^tok_");
        let (store, id, t0) = run(spec.clone(), &[("API_TOKEN", "tok_1")]);
        let r = &store.runs[&id];
        assert_eq!(r.status(ms(t0, 50)), Phase::Queued);
        assert_eq!(r.status(ms(t0, 150)), Phase::InProgress);
        assert_eq!(r.conclusion(ms(t0, 150)), None);
        assert_eq!(r.status(ms(t0, 500)), Phase::Completed);
        assert_eq!(r.conclusion(ms(t0, 500)).as_deref(), Some("success"));
        let steps = r.steps(ms(t0, 260));
        assert_eq!(steps[1].phase, Phase::InProgress);
        assert_eq!(steps[0].conclusion.as_deref(), Some("success"));
        assert_eq!(steps[2].phase, Phase::Queued);

        let (store, id, t0) = run(spec, &[("API_TOKEN", "nope")]);
        let r = &store.runs[&id];
        assert_eq!(r.conclusion(ms(t0, 500)).as_deref(), Some("failure"));
        let steps = r.steps(ms(t0, 500));
        assert_eq!(steps[1].conclusion.as_deref(), Some("failure"));
        assert_eq!(steps[2].conclusion.as_deref(), Some("skipped"));
        assert_eq!(r.broken(), vec!["secret API_TOKEN does not match /^tok_/"]);
    }

    #[test]
    fn rules_check_presence_equality_and_patterns() {
        let seen: Values = [("A".to_string(), SecretString::from("x".to_string()))].into();
        let rule = |equals: Option<&str>, matches: Option<&str>, secret: &str| SecretRule {
            secret: secret.into(),
            equals: equals.map(String::from),
            matches: matches.map(String::from),
        };
        assert_eq!(broken_rule(&rule(None, None, "a"), &seen), None);
        assert!(broken_rule(&rule(None, None, "B"), &seen).is_some());
        assert_eq!(broken_rule(&rule(Some("x"), None, "A"), &seen), None);
        assert!(broken_rule(&rule(Some("y"), None, "A"), &seen).is_some());
        assert!(broken_rule(&rule(None, Some("^y"), "A"), &seen).is_some());
        let empty: Values = [("A".to_string(), SecretString::from(String::new()))].into();
        assert!(broken_rule(&rule(None, None, "A"), &empty).is_some());
    }

    #[test]
    fn a_run_that_never_concludes_ends_when_completed() {
        let spec = WorkflowSpec::new("v.yml")
            .queue_delay(Duration::ZERO)
            .never_conclude(true);
        let (mut store, id, t0) = run(spec, &[]);
        assert_eq!(store.runs[&id].status(ms(t0, 3_600_000)), Phase::InProgress);
        let st = State::build(&crate::FleetSpec::default()).expect("empty fleet");
        let now = Utc::now();
        assert!(store.complete(&st, id, "cancelled", now));
        assert!(!store.complete(&st, id, "success", now));
        let r = &store.runs[&id];
        assert_eq!(r.conclusion(now).as_deref(), Some("cancelled"));
        assert!(r.steps(now).iter().all(|s| s.phase == Phase::Completed));
        assert_eq!(head_sha(1, "main").len(), 40);
    }
}
