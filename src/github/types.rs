//! Typed views of GitHub's JSON and the scopes secrets live in.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::policy::{App, Visibility};

/// A repository as the listing endpoints return it (fields rotor uses).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Repo {
    pub id: u64,
    pub name: String,
    pub full_name: String,
    #[serde(default)]
    pub archived: bool,
    #[serde(default)]
    pub disabled: bool,
    #[serde(default)]
    pub private: bool,
    #[serde(default)]
    pub visibility: Option<String>,
    #[serde(default)]
    pub topics: Vec<String>,
}

impl Repo {
    pub fn owner(&self) -> &str {
        self.full_name.split('/').next().unwrap_or("")
    }
}

/// Where one secret lives: a repository, an environment of a repository, or an organization.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SecretScope {
    Repo { owner: String, repo: String, app: App },
    Environment { owner: String, repo: String, environment: String },
    Org { org: String, app: App },
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
            SecretScope::Environment { owner, repo, environment } => {
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
            SecretScope::Environment { owner, repo, environment } => {
                format!("/repos/{owner}/{repo}/environments/{environment}/secrets")
            }
            SecretScope::Org { org, app } => format!("/orgs/{org}/{}/secrets", app.as_str()),
        }
    }
}

/// A scope's public key: `key` is base64 of 32 bytes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PublicKey {
    pub key_id: String,
    pub key: String,
}

/// Metadata of an existing secret (GitHub never returns values).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SecretMeta {
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(default)]
    pub visibility: Option<String>,
}

/// What a PUT did: 201 created, 204 updated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PutOutcome {
    Created,
    Updated,
}

/// The access part of an organization secret PUT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgAccess {
    pub visibility: Visibility,
    /// Sent only with `visibility: selected`.
    pub selected_repository_ids: Vec<u64>,
}
