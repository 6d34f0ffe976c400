//! GitHub's published limits on secrets, checked before rotor asks GitHub to break them.
//!
//! "You can store up to 1,000 organization secrets, 100 repository secrets, and 100
//! environment secrets" and "Secrets are limited to 48 KB in size". The same numbers apply
//! to Dependabot and Codespaces secrets.

use crate::model::SecretScope;

/// Secrets one repository may hold (per app).
pub const REPO_SECRETS: usize = 100;
/// Secrets one environment may hold.
pub const ENV_SECRETS: usize = 100;
/// Secrets one organization may hold (per app).
pub const ORG_SECRETS: usize = 1_000;
/// Largest plaintext value GitHub accepts: 48 KB, read as 48 × 1024 bytes.
pub const MAX_VALUE_BYTES: usize = 48 * 1024;

/// How many secrets `scope` may hold.
pub fn secret_limit(scope: &SecretScope) -> usize {
    match scope {
        SecretScope::Repo { .. } => REPO_SECRETS,
        SecretScope::Environment { .. } => ENV_SECRETS,
        SecretScope::Org { .. } => ORG_SECRETS,
    }
}

/// What the scope is, for messages: `repository`, `environment`, `organization`.
pub fn holder(scope: &SecretScope) -> &'static str {
    match scope {
        SecretScope::Repo { .. } => "repository",
        SecretScope::Environment { .. } => "environment",
        SecretScope::Org { .. } => "organization",
    }
}
