//! The emulator's own names for what GitHub's secrets API addresses: the product holding a
//! secret (`App`), an organization secret's `Visibility`, the `Scope` one secret lives in,
//! and a scope's `PublicKey`. Deliberately not shared with any client: the emulator agrees
//! with a client only through the wire format.

use serde::{Deserialize, Serialize};

/// Which GitHub product's secrets: `/actions/`, `/dependabot/` or `/codespaces/` in a path.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum App {
    #[default]
    Actions,
    Dependabot,
    Codespaces,
}

impl App {
    /// The path segment GitHub uses for this product.
    pub fn as_str(self) -> &'static str {
        match self {
            App::Actions => "actions",
            App::Dependabot => "dependabot",
            App::Codespaces => "codespaces",
        }
    }
}

/// An organization secret's `visibility`, as GitHub spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
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

/// Where one secret lives: a repository's secrets of one product, an environment's, or an
/// organization's. Serialized with a `kind` tag (`repo`, `environment`, `org`) for the
/// inspection routes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Scope {
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

impl Scope {
    /// A readable key: `acme/api`, `acme/api (dependabot)`, `acme/api env:production`,
    /// `org:acme`, `org:acme (codespaces)`.
    pub fn key(&self) -> String {
        let suffix = |app: &App| match app {
            App::Actions => String::new(),
            other => format!(" ({})", other.as_str()),
        };
        match self {
            Scope::Repo { owner, repo, app } => format!("{owner}/{repo}{}", suffix(app)),
            Scope::Environment {
                owner,
                repo,
                environment,
            } => {
                format!("{owner}/{repo} env:{environment}")
            }
            Scope::Org { org, app } => format!("org:{org}{}", suffix(app)),
        }
    }

    /// The URL path of this scope's secrets, e.g. `/repos/acme/api/actions/secrets`.
    pub fn secrets_path(&self) -> String {
        match self {
            Scope::Repo { owner, repo, app } => {
                format!("/repos/{owner}/{repo}/{}/secrets", app.as_str())
            }
            Scope::Environment {
                owner,
                repo,
                environment,
            } => {
                format!("/repos/{owner}/{repo}/environments/{environment}/secrets")
            }
            Scope::Org { org, app } => format!("/orgs/{org}/{}/secrets", app.as_str()),
        }
    }
}

/// A scope's public key as GitHub serves it: `key` is base64 of 32 bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicKey {
    pub key_id: String,
    pub key: String,
}
