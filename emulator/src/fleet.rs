//! The fleet an emulator starts with: organizations, repositories, environments, tokens and
//! limits, read from YAML or JSON, or generated for tests and benchmarks.

use std::collections::HashSet;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::apps::AppSpec;
use super::errors::FleetError;
use super::workflow_spec::WorkflowSpec;

/// The token a fleet gets when it names none; it sees everything.
pub const DEFAULT_TOKEN: &str = "emulator-token";

/// Everything the emulator holds when it starts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetSpec {
    /// Organizations and their repositories.
    #[serde(default)]
    pub orgs: Vec<OrgSpec>,
    /// Tokens the emulator accepts. Empty: one token, `emulator-token`, that sees everything.
    #[serde(default)]
    pub tokens: Vec<TokenSpec>,
    /// Primary and secondary rate limits (GitHub's numbers unless changed).
    #[serde(default)]
    pub limits: LimitsSpec,
    /// GitHub Apps, their public keys and their installations (see `docs/github-app.md`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub apps: Vec<AppSpec>,
    /// Where webhook deliveries go, signed with `secret` (none: nothing is delivered).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<WebhookSpec>,
}

/// A webhook target: GitHub's App (or organization) webhook settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSpec {
    /// The receiver, e.g. `http://127.0.0.1:9464/webhooks/github`.
    pub url: String,
    /// The secret deliveries are signed with (`X-Hub-Signature-256`).
    pub secret: String,
}

/// One organization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrgSpec {
    /// The organization's login, e.g. `acme`.
    pub name: String,
    /// Numeric id; assigned when absent.
    #[serde(default)]
    pub id: Option<u64>,
    /// Its repositories.
    #[serde(default)]
    pub repos: Vec<RepoSpec>,
}

/// One repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepoSpec {
    /// The repository's name, e.g. `payments-api`.
    pub name: String,
    /// Numeric id; assigned when absent. Unique across the fleet.
    #[serde(default)]
    pub id: Option<u64>,
    /// Topics (stored lower-case, as GitHub does).
    #[serde(default)]
    pub topics: Vec<String>,
    /// Archived repositories are read-only: secret writes are refused with 403.
    #[serde(default)]
    pub archived: bool,
    /// Disabled repositories refuse secret endpoints with 403 `Repository access blocked`.
    #[serde(default)]
    pub disabled: bool,
    /// `public` (default), `private` or `internal`.
    #[serde(default)]
    pub visibility: RepoVisibility,
    /// Deployment environments, e.g. `[staging, production]`.
    #[serde(default)]
    pub environments: Vec<String>,
    /// Branches (refs a dispatch may name); the first is the default branch.
    #[serde(default = "default_branches")]
    pub branches: Vec<String>,
    /// Workflows in `.github/workflows` (see `docs/emulator.md`, "Workflows").
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub workflows: Vec<WorkflowSpec>,
}

fn default_branches() -> Vec<String> {
    vec!["main".to_string()]
}

impl RepoSpec {
    /// A public, unarchived repository with no topics and no environments.
    pub fn new(name: &str) -> Self {
        RepoSpec {
            name: name.to_string(),
            id: None,
            topics: Vec::new(),
            archived: false,
            disabled: false,
            visibility: RepoVisibility::Public,
            environments: Vec::new(),
            branches: default_branches(),
            workflows: Vec::new(),
        }
    }

    pub fn topics(mut self, topics: &[&str]) -> Self {
        self.topics = topics.iter().map(|t| t.to_string()).collect();
        self
    }

    pub fn archived(mut self, archived: bool) -> Self {
        self.archived = archived;
        self
    }

    pub fn disabled(mut self, disabled: bool) -> Self {
        self.disabled = disabled;
        self
    }

    pub fn visibility(mut self, visibility: RepoVisibility) -> Self {
        self.visibility = visibility;
        self
    }

    pub fn environments(mut self, environments: &[&str]) -> Self {
        self.environments = environments.iter().map(|e| e.to_string()).collect();
        self
    }

    /// The branches; the first is the default branch.
    pub fn branches(mut self, branches: &[&str]) -> Self {
        self.branches = branches.iter().map(|b| b.to_string()).collect();
        self
    }

    /// Adds a workflow.
    pub fn workflow(mut self, workflow: WorkflowSpec) -> Self {
        self.workflows.push(workflow);
        self
    }

    /// The default branch: the first listed (`main` when none is).
    pub fn default_branch(&self) -> &str {
        self.branches.first().map(String::as_str).unwrap_or("main")
    }
}

/// A repository's visibility.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RepoVisibility {
    #[default]
    Public,
    Private,
    Internal,
}

impl RepoVisibility {
    pub fn as_str(self) -> &'static str {
        match self {
            RepoVisibility::Public => "public",
            RepoVisibility::Private => "private",
            RepoVisibility::Internal => "internal",
        }
    }
}

/// A token and what it may see. A token naming neither `orgs` nor `repos` sees everything.
/// Public repositories are readable by every token (as on GitHub), but their secrets are not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSpec {
    /// The bearer token string.
    pub token: String,
    /// Organizations it administers: their org secrets and all their repositories.
    #[serde(default)]
    pub orgs: Vec<String>,
    /// Single repositories it may manage, as `owner/name`.
    #[serde(default)]
    pub repos: Vec<String>,
}

impl TokenSpec {
    /// A token that sees everything.
    pub fn all(token: &str) -> Self {
        TokenSpec {
            token: token.to_string(),
            orgs: Vec::new(),
            repos: Vec::new(),
        }
    }
}

/// Rate limits. Defaults are GitHub's published numbers, except the per-minute point budget,
/// which is off unless set (GitHub: 900).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSpec {
    /// Primary limit per token per hour (GitHub: 5,000 for a user token).
    #[serde(default = "default_requests_per_hour")]
    pub requests_per_hour: u64,
    /// Primary limit per hour for unauthenticated callers (GitHub: 60).
    #[serde(default = "default_anonymous_per_hour")]
    pub anonymous_requests_per_hour: u64,
    /// Secondary limit: concurrent requests per token (GitHub: 100). `null` turns it off.
    #[serde(default = "default_max_concurrent")]
    pub max_concurrent: Option<u64>,
    /// Secondary limit: points per minute per token, GET 1, other methods 5 (GitHub: 900).
    /// Off when absent.
    #[serde(default)]
    pub points_per_minute: Option<u64>,
    /// Divides every window: the hour of the primary limit, the minute of the points budget,
    /// the `retry-after` of a secondary limit. 60 makes a minute of budget pass in a second
    /// (benchmarks); 1 (the default) is GitHub's own time.
    #[serde(default = "default_time_scale")]
    pub time_scale: u32,
    /// Whether workflow dispatches can answer with the run's id (`return_run_details`, API
    /// version 2026-03-10). `false`: every dispatch answers 204 and clients must find their
    /// run by `created`/`event`, as against a GitHub that predates the feature.
    #[serde(default = "default_run_details")]
    pub run_details: bool,
}

fn default_run_details() -> bool {
    true
}

fn default_time_scale() -> u32 {
    1
}

impl LimitsSpec {
    /// No limits at all: a GitHub Enterprise Server with rate limiting off.
    pub fn off() -> Self {
        LimitsSpec {
            requests_per_hour: u64::MAX / 2,
            anonymous_requests_per_hour: u64::MAX / 2,
            max_concurrent: None,
            points_per_minute: None,
            time_scale: 1,
            run_details: true,
        }
    }

    /// GitHub's published limits for a user token (5,000 an hour, 100 concurrent, 900 points
    /// a minute), with every window divided by `time_scale`.
    pub fn github(time_scale: u32) -> Self {
        LimitsSpec {
            points_per_minute: Some(900),
            time_scale: time_scale.max(1),
            ..LimitsSpec::default()
        }
    }
}

fn default_requests_per_hour() -> u64 {
    5_000
}

fn default_anonymous_per_hour() -> u64 {
    60
}

fn default_max_concurrent() -> Option<u64> {
    Some(100)
}

impl Default for LimitsSpec {
    fn default() -> Self {
        LimitsSpec {
            requests_per_hour: default_requests_per_hour(),
            anonymous_requests_per_hour: default_anonymous_per_hour(),
            max_concurrent: default_max_concurrent(),
            points_per_minute: None,
            time_scale: default_time_scale(),
            run_details: default_run_details(),
        }
    }
}

impl FleetSpec {
    /// Reads a fleet from YAML (or JSON, which is YAML too).
    pub fn from_yaml_str(text: &str) -> Result<Self, FleetError> {
        serde_saphyr::from_str::<FleetSpec>(text).map_err(|e| FleetError::Invalid(e.to_string()))
    }

    /// Reads a fleet from JSON.
    pub fn from_json_str(text: &str) -> Result<Self, FleetError> {
        serde_json::from_str::<FleetSpec>(text).map_err(|e| FleetError::Invalid(e.to_string()))
    }

    /// Reads a fleet file: `.json` as JSON, anything else as YAML.
    pub fn load(path: &Path) -> Result<Self, FleetError> {
        let text = std::fs::read_to_string(path).map_err(|source| FleetError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let parsed = if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"))
        {
            serde_json::from_str::<FleetSpec>(&text).map_err(|e| e.to_string())
        } else {
            serde_saphyr::from_str::<FleetSpec>(&text).map_err(|e| e.to_string())
        };
        parsed.map_err(|message| FleetError::Parse {
            path: path.to_path_buf(),
            message,
        })
    }

    /// A generated fleet: each org gets `repos_per_org` repositories named `svc-0001`,
    /// `svc-0002`, ... Repository number `i` (from 1):
    /// - carries topic `pci` when `i % 3 == 0`, and `team-a` (odd `i`) or `team-b` (even `i`);
    /// - is archived when `i % 10 == 0`;
    /// - is private when `i % 4 == 0`, public otherwise;
    /// - has environment `production`, and also `staging` when `i` is even.
    ///
    /// Ids are assigned in order and are the same for the same arguments.
    pub fn generate(orgs: &[&str], repos_per_org: usize) -> Self {
        let orgs = orgs
            .iter()
            .map(|org| OrgSpec {
                name: org.to_string(),
                id: None,
                repos: (1..=repos_per_org).map(generated_repo).collect(),
            })
            .collect();
        FleetSpec {
            orgs,
            tokens: Vec::new(),
            limits: LimitsSpec::default(),
            apps: Vec::new(),
            webhook: None,
        }
    }

    /// The tokens in force: the listed ones, or `emulator-token` seeing everything.
    pub fn effective_tokens(&self) -> Vec<TokenSpec> {
        if self.tokens.is_empty() {
            vec![TokenSpec::all(DEFAULT_TOKEN)]
        } else {
            self.tokens.clone()
        }
    }

    /// Checks names, ids and tokens; reports the first problem found.
    pub fn validate(&self) -> Result<(), FleetError> {
        let mut orgs = HashSet::new();
        let mut repo_ids = HashSet::new();
        let mut org_ids = HashSet::new();
        for org in &self.orgs {
            check_org_name(&org.name)?;
            if !orgs.insert(org.name.to_ascii_lowercase()) {
                return Err(FleetError::Invalid(format!(
                    "organization {} is listed twice",
                    org.name
                )));
            }
            if let Some(id) = org.id {
                if !org_ids.insert(id) {
                    return Err(FleetError::Invalid(format!(
                        "organization id {id} is used twice"
                    )));
                }
            }
            let mut names = HashSet::new();
            for repo in &org.repos {
                check_repo(repo)?;
                if !names.insert(repo.name.to_ascii_lowercase()) {
                    return Err(FleetError::Invalid(format!(
                        "repository {}/{} is listed twice",
                        org.name, repo.name
                    )));
                }
                if let Some(id) = repo.id {
                    if !repo_ids.insert(id) {
                        return Err(FleetError::Invalid(format!(
                            "repository id {id} is used twice"
                        )));
                    }
                }
            }
        }
        let mut tokens = HashSet::new();
        for token in &self.tokens {
            if token.token.is_empty()
                || token
                    .token
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control())
            {
                return Err(FleetError::Invalid(
                    "a token is empty or contains whitespace".into(),
                ));
            }
            if !tokens.insert(token.token.as_str()) {
                return Err(FleetError::Invalid("a token is listed twice".into()));
            }
            for repo in &token.repos {
                if repo.split('/').count() != 2 || repo.starts_with('/') || repo.ends_with('/') {
                    return Err(FleetError::Invalid(format!(
                        "token repository {repo:?} is not of the form owner/name"
                    )));
                }
            }
        }
        Ok(())
    }
}

fn generated_repo(i: usize) -> RepoSpec {
    let mut topics = Vec::new();
    if i.is_multiple_of(3) {
        topics.push("pci".to_string());
    }
    topics.push(if i % 2 == 1 { "team-a" } else { "team-b" }.to_string());
    let mut environments = vec!["production".to_string()];
    if i.is_multiple_of(2) {
        environments.push("staging".to_string());
    }
    RepoSpec {
        name: format!("svc-{i:04}"),
        id: None,
        topics,
        archived: i.is_multiple_of(10),
        disabled: false,
        visibility: if i.is_multiple_of(4) {
            RepoVisibility::Private
        } else {
            RepoVisibility::Public
        },
        environments,
        branches: default_branches(),
        workflows: Vec::new(),
    }
}

/// GitHub logins: letters, digits and single hyphens, at most 39 characters.
pub(crate) fn check_org_name(name: &str) -> Result<(), FleetError> {
    let ok = !name.is_empty()
        && name.len() <= 39
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(FleetError::Invalid(format!(
            "{name:?} is not a valid organization login"
        )))
    }
}

/// Repository names: letters, digits, `.`, `-`, `_`, at most 100 characters; topics:
/// lower-case letters, digits and hyphens, at most 50; environments: 1..=255 printable characters.
pub(crate) fn check_repo(repo: &RepoSpec) -> Result<(), FleetError> {
    let name = &repo.name;
    let ok = !name.is_empty()
        && name.len() <= 100
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if !ok {
        return Err(FleetError::Invalid(format!(
            "{name:?} is not a valid repository name"
        )));
    }
    for topic in &repo.topics {
        let t = topic.to_ascii_lowercase();
        let ok = !t.is_empty()
            && t.len() <= 50
            && t.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !t.starts_with('-');
        if !ok {
            return Err(FleetError::Invalid(format!(
                "{topic:?} (in {name}) is not a valid topic"
            )));
        }
    }
    check_branches_and_workflows(repo)?;
    let mut envs = HashSet::new();
    for env in &repo.environments {
        if env.is_empty() || env.len() > 255 || env.chars().any(|c| c.is_control()) {
            return Err(FleetError::Invalid(format!(
                "{env:?} (in {name}) is not a valid environment name"
            )));
        }
        if !envs.insert(env.to_lowercase()) {
            return Err(FleetError::Invalid(format!(
                "environment {env} is listed twice in {name}"
            )));
        }
    }
    Ok(())
}

/// Branch names: not empty, no spaces or control characters, not starting with `-`;
/// workflows: valid, with distinct file names and ids.
fn check_branches_and_workflows(repo: &RepoSpec) -> Result<(), FleetError> {
    let name = &repo.name;
    if repo.branches.is_empty() {
        return Err(FleetError::Invalid(format!("{name} has no branches")));
    }
    let mut branches = HashSet::new();
    for b in &repo.branches {
        if b.is_empty()
            || b.starts_with('-')
            || b.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(FleetError::Invalid(format!(
                "{b:?} (in {name}) is not a valid branch name"
            )));
        }
        if !branches.insert(b.as_str()) {
            return Err(FleetError::Invalid(format!(
                "branch {b} is listed twice in {name}"
            )));
        }
    }
    let mut files = HashSet::new();
    let mut ids = HashSet::new();
    for w in &repo.workflows {
        w.validate(name, &repo.environments)?;
        if !files.insert(w.file.as_str()) {
            return Err(FleetError::Invalid(format!(
                "workflow {} is listed twice in {name}",
                w.file
            )));
        }
        if let Some(id) = w.id {
            if !ids.insert(id) {
                return Err(FleetError::Invalid(format!(
                    "workflow id {id} is used twice in {name}"
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_fleet_follows_its_documented_pattern() {
        let spec = FleetSpec::generate(&["acme", "globex"], 30);
        assert_eq!(spec.orgs.len(), 2);
        let repos = &spec.orgs[0].repos;
        assert_eq!(repos.len(), 30);
        assert_eq!(repos[0].name, "svc-0001");
        assert_eq!(repos[29].name, "svc-0030");
        let pci: Vec<_> = repos
            .iter()
            .filter(|r| r.topics.contains(&"pci".into()))
            .collect();
        assert_eq!(pci.len(), 10);
        assert!(pci
            .iter()
            .all(|r| r.name["svc-".len()..].parse::<usize>().expect("number") % 3 == 0));
        assert_eq!(repos.iter().filter(|r| r.archived).count(), 3);
        assert!(repos[9].archived && !repos[8].archived);
        assert_eq!(repos[3].visibility, RepoVisibility::Private);
        assert_eq!(repos[1].environments, vec!["production", "staging"]);
        assert!(spec.validate().is_ok());
        assert_eq!(FleetSpec::generate(&["acme", "globex"], 30), spec);
    }

    #[test]
    fn a_fleet_without_tokens_gets_the_default_token() {
        let spec = FleetSpec::generate(&["acme"], 1);
        assert_eq!(spec.effective_tokens(), vec![TokenSpec::all(DEFAULT_TOKEN)]);
    }

    #[test]
    fn fleet_yaml_is_read_with_defaults_and_unknown_fields_are_refused() {
        let yaml = "orgs:\n  - name: acme\n    repos:\n      - name: api\n        topics: [pci]\n        visibility: private\n        environments: [production]\ntokens:\n  - token: t1\n    repos: [acme/api]\n";
        let spec = FleetSpec::from_yaml_str(yaml).expect("valid fleet");
        assert_eq!(spec.orgs[0].repos[0].visibility, RepoVisibility::Private);
        assert_eq!(spec.limits, LimitsSpec::default());
        assert_eq!(spec.tokens[0].repos, vec!["acme/api"]);
        assert!(FleetSpec::from_yaml_str("orgs: []\ncolour: blue\n").is_err());
        assert_eq!(spec.orgs[0].repos[0].branches, vec!["main"]);
        assert!(spec.limits.run_details);
    }

    #[test]
    fn repositories_read_branches_and_workflows() {
        let yaml = "orgs:\n  - name: acme\n    repos:\n      - name: api\n        branches: [develop, main]\n        workflows: [verify.yml, {file: ci.yml, fail: true}]\nlimits:\n  run_details: false\n";
        let spec = FleetSpec::from_yaml_str(yaml).expect("valid fleet");
        let repo = &spec.orgs[0].repos[0];
        assert_eq!(repo.default_branch(), "develop");
        assert_eq!(repo.workflows.len(), 2);
        assert!(repo.workflows[1].fail && !repo.workflows[0].fail);
        assert!(!spec.limits.run_details);
        assert!(spec.validate().is_ok());
        let twice = "orgs:\n  - name: acme\n    repos:\n      - name: api\n        workflows: [v.yml, v.yml]\n";
        let spec = FleetSpec::from_yaml_str(twice).expect("parses");
        assert!(spec.validate().is_err());
        let bad_re = "orgs:\n  - name: acme\n    repos:\n      - name: api\n        workflows: [{file: v.yml, require: [{secret: A, matches: '(['}]}]\n";
        let spec = FleetSpec::from_yaml_str(bad_re).expect("parses");
        assert!(spec.validate().is_err());
    }

    #[test]
    fn duplicate_repositories_and_bad_names_are_refused() {
        let mut spec = FleetSpec::generate(&["acme"], 2);
        spec.orgs[0].repos[1].name = "SVC-0001".into();
        assert!(spec.validate().is_err());
        let mut spec = FleetSpec::generate(&["acme"], 1);
        spec.orgs[0].repos[0].name = "has space".into();
        assert!(spec.validate().is_err());
        let spec = FleetSpec {
            orgs: vec![OrgSpec {
                name: "-bad".into(),
                id: None,
                repos: vec![],
            }],
            ..Default::default()
        };
        assert!(spec.validate().is_err());
    }
}
