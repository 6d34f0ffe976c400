//! Where secrets live: the GitHub products that hold them, organization visibility, and the
//! scope (repository, environment or organization) one secret belongs to.

use serde::{Deserialize, Serialize};

/// Which GitHub product's secrets a target holds.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum App {
    #[default]
    Actions,
    Dependabot,
    Codespaces,
}

impl App {
    pub fn as_str(self) -> &'static str {
        match self {
            App::Actions => "actions",
            App::Dependabot => "dependabot",
            App::Codespaces => "codespaces",
        }
    }
}

/// Organization secret visibility.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    All,
    Private,
    Selected,
}

impl Visibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::All => "all",
            Visibility::Private => "private",
            Visibility::Selected => "selected",
        }
    }
}

/// Where one secret lives: a repository, an environment of a repository, or an organization.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SecretScope {
    Repo {
        owner: String,
        repo: String,
        app: App,
    },
    Environment {
        owner: String,
        repo: String,
        environment: String,
    },
    Org {
        org: String,
        app: App,
    },
}

impl SecretScope {
    /// A stable, human-readable key: `acme/api`, `acme/api (dependabot)`,
    /// `acme/api env:production`, `org:acme`, `org:acme (codespaces)`.
    pub fn key(&self) -> String {
        let suffix = |app: &App| match app {
            App::Actions => String::new(),
            other => format!(" ({})", other.as_str()),
        };
        match self {
            SecretScope::Repo { owner, repo, app } => format!("{owner}/{repo}{}", suffix(app)),
            SecretScope::Environment {
                owner,
                repo,
                environment,
            } => {
                format!("{owner}/{repo} env:{environment}")
            }
            SecretScope::Org { org, app } => format!("org:{org}{}", suffix(app)),
        }
    }

    /// The URL path prefix of this scope's secrets, e.g. `/repos/acme/api/actions/secrets`.
    pub fn secrets_path(&self) -> String {
        match self {
            SecretScope::Repo { owner, repo, app } => {
                format!("/repos/{owner}/{repo}/{}/secrets", app.as_str())
            }
            SecretScope::Environment {
                owner,
                repo,
                environment,
            } => {
                format!("/repos/{owner}/{repo}/environments/{environment}/secrets")
            }
            SecretScope::Org { org, app } => format!("/orgs/{org}/{}/secrets", app.as_str()),
        }
    }
}
