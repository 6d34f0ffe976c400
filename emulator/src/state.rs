//! The emulator's world in memory: organizations, repositories, environments, their keys and
//! their secrets. Names are looked up case-insensitively, as on GitHub.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};
use secrecy::SecretString;

use crate::scope::Scope;
use crate::scope::{App, Visibility};

use super::errors::FleetError;
use super::fleet::{check_org_name, check_repo, FleetSpec, RepoSpec, RepoVisibility};
use super::keys::ScopeKey;
use super::workflow_spec::WorkflowSpec;

/// "You can store up to 1,000 organization secrets, 100 repository secrets, and 100
/// environment secrets." The emulator applies the same numbers to Dependabot and Codespaces.
pub(crate) const REPO_SECRET_LIMIT: usize = 100;
pub(crate) const ENV_SECRET_LIMIT: usize = 100;
pub(crate) const ORG_SECRET_LIMIT: usize = 1_000;

const FIRST_REPO_ID: u64 = 100_000_001;
const FIRST_ORG_ID: u64 = 9_000_001;
const FIRST_ENV_ID: u64 = 500_000_001;
const FIRST_WORKFLOW_ID: u64 = 160_000_001;

/// The three apps, in the order `ScopeData` arrays use.
pub(crate) const APPS: [App; 3] = [App::Actions, App::Dependabot, App::Codespaces];

pub(crate) fn app_index(app: App) -> usize {
    match app {
        App::Actions => 0,
        App::Dependabot => 1,
        App::Codespaces => 2,
    }
}

/// Now, to the second, as GitHub's timestamps are.
pub(crate) fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(Utc::now().timestamp(), 0).expect("the current time is representable")
}

/// RFC 3339 with second precision and `Z`, as GitHub writes times.
pub(crate) fn rfc3339(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A scope's key (made on first use) and its secrets, keyed by upper-case name.
#[derive(Default)]
pub(crate) struct ScopeData {
    pub key: Option<ScopeKey>,
    pub secrets: BTreeMap<String, SecretEntry>,
}

impl ScopeData {
    /// The current key, made now if this scope never had one.
    pub fn key(&mut self) -> &ScopeKey {
        self.key.get_or_insert_with(|| ScopeKey::generate(None))
    }

    /// Replaces the key pair; values sealed to the old key no longer open.
    pub fn rotate(&mut self) -> String {
        let next = ScopeKey::generate(self.key.as_ref().map(|k| k.key_id.as_str()));
        let id = next.key_id.clone();
        self.key = Some(next);
        id
    }
}

/// One stored secret. Holds the decrypted value, so it derives nothing that could print it.
pub(crate) struct SecretEntry {
    pub name: String,
    pub value: SecretString,
    pub key_id: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub writes: u64,
    /// Accepted PUTs that stored a value different from the one held before (creation
    /// included): a value pushed again, unchanged, does not count.
    pub value_changes: u64,
    /// Organization secrets only.
    pub access: Option<OrgAccessState>,
}

/// Who may use an organization secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OrgAccessState {
    pub visibility: Visibility,
    pub selected: BTreeSet<u64>,
}

impl OrgAccessState {
    /// May a repository use the secret: visibility `all`; `private` for private and
    /// internal repositories; `selected` when listed.
    pub fn admits(&self, repo: &RepoState) -> bool {
        match self.visibility {
            Visibility::All => true,
            Visibility::Private => repo.visibility != RepoVisibility::Public,
            Visibility::Selected => self.selected.contains(&repo.id),
        }
    }
}

pub(crate) struct EnvState {
    pub id: u64,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub data: ScopeData,
}

pub(crate) struct RepoState {
    pub id: u64,
    pub name: String,
    pub topics: Vec<String>,
    pub archived: bool,
    pub disabled: bool,
    pub visibility: RepoVisibility,
    pub created_at: DateTime<Utc>,
    pub environments: BTreeMap<String, EnvState>,
    pub apps: [ScopeData; 3],
    /// Refs a dispatch may name; the first is the default branch.
    pub branches: Vec<String>,
    /// Its workflows, each with its id set.
    pub workflows: Vec<WorkflowSpec>,
}

impl RepoState {
    pub fn default_branch(&self) -> &str {
        self.branches.first().map(String::as_str).unwrap_or("main")
    }

    /// A workflow by numeric id or by file name.
    pub fn workflow(&self, id_or_file: &str) -> Option<&WorkflowSpec> {
        let id = id_or_file.parse::<u64>().ok();
        self.workflows
            .iter()
            .find(|w| w.file == id_or_file || (id.is_some() && w.id == id))
    }
}

pub(crate) struct OrgState {
    pub id: u64,
    pub login: String,
    pub repos: BTreeMap<String, RepoState>,
    pub apps: [ScopeData; 3],
}

/// Everything, behind the emulator's one state lock.
pub(crate) struct State {
    pub orgs: BTreeMap<String, OrgState>,
    /// Repository id -> (org key, repo key), both lower-case.
    pub by_id: HashMap<u64, (String, String)>,
    next_repo_id: u64,
    next_org_id: u64,
    next_env_id: u64,
    next_workflow_id: u64,
}

fn lower(s: &str) -> String {
    s.to_ascii_lowercase()
}

fn env_key(s: &str) -> String {
    s.to_lowercase()
}

impl State {
    /// Builds the world from a validated fleet. Repositories listed in the fleet get
    /// creation times a minute apart from 2020-01-01, in order, so listings are stable.
    pub fn build(spec: &FleetSpec) -> Result<Self, FleetError> {
        spec.validate()?;
        let taken_repo: HashSet<u64> = spec
            .orgs
            .iter()
            .flat_map(|o| o.repos.iter().filter_map(|r| r.id))
            .collect();
        let taken_org: HashSet<u64> = spec.orgs.iter().filter_map(|o| o.id).collect();
        let mut state = State {
            orgs: BTreeMap::new(),
            by_id: HashMap::new(),
            next_repo_id: FIRST_REPO_ID,
            next_org_id: FIRST_ORG_ID,
            next_env_id: FIRST_ENV_ID,
            next_workflow_id: FIRST_WORKFLOW_ID,
        };
        let epoch =
            DateTime::from_timestamp(1_577_836_800, 0).expect("2020-01-01 is representable");
        let mut n: i64 = 0;
        for org in &spec.orgs {
            let org_id = match org.id {
                Some(id) => id,
                None => state.fresh_org_id(&taken_org),
            };
            state.insert_org(&org.name, org_id);
            for repo in &org.repos {
                let id = match repo.id {
                    Some(id) => id,
                    None => state.fresh_repo_id(&taken_repo),
                };
                n += 1;
                state.insert_repo(&org.name, repo, id, epoch + chrono::Duration::minutes(n));
            }
        }
        Ok(state)
    }

    fn fresh_org_id(&mut self, taken: &HashSet<u64>) -> u64 {
        while taken.contains(&self.next_org_id)
            || self.orgs.values().any(|o| o.id == self.next_org_id)
        {
            self.next_org_id += 1;
        }
        let id = self.next_org_id;
        self.next_org_id += 1;
        id
    }

    fn fresh_repo_id(&mut self, taken: &HashSet<u64>) -> u64 {
        while taken.contains(&self.next_repo_id) || self.by_id.contains_key(&self.next_repo_id) {
            self.next_repo_id += 1;
        }
        let id = self.next_repo_id;
        self.next_repo_id += 1;
        id
    }

    fn insert_org(&mut self, login: &str, id: u64) {
        self.orgs.entry(lower(login)).or_insert_with(|| OrgState {
            id,
            login: login.to_string(),
            repos: BTreeMap::new(),
            apps: Default::default(),
        });
    }

    fn insert_repo(&mut self, org: &str, spec: &RepoSpec, id: u64, created_at: DateTime<Utc>) {
        let mut environments = BTreeMap::new();
        for env in &spec.environments {
            let env_id = self.next_env_id;
            self.next_env_id += 1;
            environments.insert(
                env_key(env),
                EnvState {
                    id: env_id,
                    name: env.clone(),
                    created_at,
                    data: ScopeData::default(),
                },
            );
        }
        let mut topics: Vec<String> = spec.topics.iter().map(|t| t.to_ascii_lowercase()).collect();
        topics.dedup();
        let mut workflows = Vec::new();
        for w in &spec.workflows {
            let mut w = w.clone();
            if w.id.is_none() {
                w.id = Some(self.fresh_workflow_id(&spec.workflows));
            }
            workflows.push(w);
        }
        let repo = RepoState {
            id,
            name: spec.name.clone(),
            topics,
            archived: spec.archived,
            disabled: spec.disabled,
            visibility: spec.visibility,
            created_at,
            environments,
            apps: Default::default(),
            branches: spec.branches.clone(),
            workflows,
        };
        self.by_id.insert(id, (lower(org), lower(&spec.name)));
        if let Some(o) = self.orgs.get_mut(&lower(org)) {
            o.repos.insert(lower(&spec.name), repo);
        }
    }

    /// A workflow id no workflow of `taken` uses.
    fn fresh_workflow_id(&mut self, taken: &[WorkflowSpec]) -> u64 {
        while taken.iter().any(|w| w.id == Some(self.next_workflow_id)) {
            self.next_workflow_id += 1;
        }
        let id = self.next_workflow_id;
        self.next_workflow_id += 1;
        id
    }

    /// Adds or replaces (by file name) a workflow of a repository; a replaced workflow keeps
    /// its id unless `spec` names one. Returns the workflow's id.
    pub fn set_workflow(
        &mut self,
        owner: &str,
        repo: &str,
        mut spec: WorkflowSpec,
    ) -> Result<u64, FleetError> {
        let r = self.repo(owner, repo).ok_or_else(|| {
            FleetError::Invalid(format!("repository {owner}/{repo} does not exist"))
        })?;
        let envs: Vec<String> = r.environments.values().map(|e| e.name.clone()).collect();
        spec.validate(&r.name, &envs)?;
        let others: Vec<WorkflowSpec> = r
            .workflows
            .iter()
            .filter(|w| w.file != spec.file)
            .cloned()
            .collect();
        let old_id = r
            .workflows
            .iter()
            .find(|w| w.file == spec.file)
            .and_then(|w| w.id);
        if let Some(id) = spec.id {
            if others.iter().any(|w| w.id == Some(id)) {
                return Err(FleetError::Invalid(format!(
                    "workflow id {id} is used twice in {owner}/{repo}"
                )));
            }
        }
        let id = match spec.id.or(old_id) {
            Some(id) => id,
            None => self.fresh_workflow_id(&others),
        };
        spec.id = Some(id);
        let r = self.repo_mut(owner, repo).ok_or_else(|| {
            FleetError::Invalid(format!("repository {owner}/{repo} does not exist"))
        })?;
        match r.workflows.iter_mut().find(|w| w.file == spec.file) {
            Some(w) => *w = spec,
            None => r.workflows.push(spec),
        }
        Ok(id)
    }

    /// Adds a repository now (creating its organization if needed); returns its id.
    pub fn add_repo(&mut self, org: &str, spec: &RepoSpec) -> Result<u64, FleetError> {
        check_org_name(org)?;
        check_repo(spec)?;
        if self.repo(org, &spec.name).is_some() {
            return Err(FleetError::Invalid(format!(
                "repository {org}/{} already exists",
                spec.name
            )));
        }
        let id = match spec.id {
            Some(id) if self.by_id.contains_key(&id) => {
                return Err(FleetError::Invalid(format!(
                    "repository id {id} is already used"
                )))
            }
            Some(id) => id,
            None => self.fresh_repo_id(&HashSet::new()),
        };
        if !self.orgs.contains_key(&lower(org)) {
            let org_id = self.fresh_org_id(&HashSet::new());
            self.insert_org(org, org_id);
        }
        self.insert_repo(org, spec, id, now());
        Ok(id)
    }

    /// Removes a repository with its secrets and its place in organization secrets'
    /// selected lists; returns its id if it existed.
    pub fn remove_repo(&mut self, org: &str, name: &str) -> Option<u64> {
        let o = self.orgs.get_mut(&lower(org))?;
        let repo = o.repos.remove(&lower(name))?;
        for data in o.apps.iter_mut() {
            for secret in data.secrets.values_mut() {
                if let Some(access) = secret.access.as_mut() {
                    access.selected.remove(&repo.id);
                }
            }
        }
        self.by_id.remove(&repo.id);
        Some(repo.id)
    }

    /// Organization -> its repository names, all lower-case.
    pub fn repo_names(&self) -> HashMap<String, HashSet<String>> {
        self.orgs
            .iter()
            .map(|(k, o)| (k.clone(), o.repos.keys().cloned().collect()))
            .collect()
    }

    pub fn org(&self, org: &str) -> Option<&OrgState> {
        self.orgs.get(&lower(org))
    }

    pub fn repo(&self, owner: &str, name: &str) -> Option<&RepoState> {
        self.orgs.get(&lower(owner))?.repos.get(&lower(name))
    }

    pub fn repo_mut(&mut self, owner: &str, name: &str) -> Option<&mut RepoState> {
        self.orgs
            .get_mut(&lower(owner))?
            .repos
            .get_mut(&lower(name))
    }

    pub fn repo_by_id(&self, id: u64) -> Option<(&OrgState, &RepoState)> {
        let (org, repo) = self.by_id.get(&id)?;
        let o = self.orgs.get(org)?;
        Some((o, o.repos.get(repo)?))
    }

    /// The data of a scope, if the scope exists.
    pub fn scope_data(&self, scope: &Scope) -> Option<&ScopeData> {
        match scope {
            Scope::Repo { owner, repo, app } => {
                Some(&self.repo(owner, repo)?.apps[app_index(*app)])
            }
            Scope::Environment {
                owner,
                repo,
                environment,
            } => Some(
                &self
                    .repo(owner, repo)?
                    .environments
                    .get(&env_key(environment))?
                    .data,
            ),
            Scope::Org { org, app } => Some(&self.org(org)?.apps[app_index(*app)]),
        }
    }

    pub fn scope_data_mut(&mut self, scope: &Scope) -> Option<&mut ScopeData> {
        match scope {
            Scope::Repo { owner, repo, app } => {
                Some(&mut self.repo_mut(owner, repo)?.apps[app_index(*app)])
            }
            Scope::Environment {
                owner,
                repo,
                environment,
            } => Some(
                &mut self
                    .repo_mut(owner, repo)?
                    .environments
                    .get_mut(&env_key(environment))?
                    .data,
            ),
            Scope::Org { org, app } => {
                Some(&mut self.orgs.get_mut(&lower(org))?.apps[app_index(*app)])
            }
        }
    }

    /// Every scope that exists and holds at least one secret, with its data.
    pub fn scopes_with_secrets(&self) -> Vec<(Scope, &ScopeData)> {
        let mut out = Vec::new();
        for org in self.orgs.values() {
            for (i, data) in org.apps.iter().enumerate() {
                if !data.secrets.is_empty() {
                    out.push((
                        Scope::Org {
                            org: org.login.clone(),
                            app: APPS[i],
                        },
                        data,
                    ));
                }
            }
            for repo in org.repos.values() {
                for (i, data) in repo.apps.iter().enumerate() {
                    if !data.secrets.is_empty() {
                        out.push((
                            Scope::Repo {
                                owner: org.login.clone(),
                                repo: repo.name.clone(),
                                app: APPS[i],
                            },
                            data,
                        ));
                    }
                }
                for env in repo.environments.values() {
                    if !env.data.secrets.is_empty() {
                        out.push((
                            Scope::Environment {
                                owner: org.login.clone(),
                                repo: repo.name.clone(),
                                environment: env.name.clone(),
                            },
                            &env.data,
                        ));
                    }
                }
            }
        }
        out
    }
}

/// The number of secrets a scope may hold.
pub(crate) fn secret_limit(scope: &Scope) -> usize {
    match scope {
        Scope::Repo { .. } => REPO_SECRET_LIMIT,
        Scope::Environment { .. } => ENV_SECRET_LIMIT,
        Scope::Org { .. } => ORG_SECRET_LIMIT,
    }
}
