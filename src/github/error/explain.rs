//! A GitHub failure told in the terms of the target it happened on: the App permission to
//! grant for a 403, what a 404 means for an environment or repository.

use super::{ErrorKind, GitHubError};

/// The App permissions rotor needs, at `write`, to manage the secrets of `scope`
/// (GitHub's `app-permissions` names). `None`: GitHub lets no installation token manage
/// them (organization Codespaces secrets).
///
/// Repository Actions: `secrets`; environments: `secrets` and `environments`; organization
/// Actions: `organization_secrets`; Dependabot: `dependabot_secrets` (for organizations too,
/// per GitHub's older description); repository Codespaces: `codespaces_secrets`.
pub fn permissions_for(scope: &crate::model::SecretScope) -> Option<Vec<&'static str>> {
    use crate::model::App;
    use crate::model::SecretScope;
    Some(match scope {
        SecretScope::Repo {
            app: App::Actions, ..
        } => vec!["secrets"],
        SecretScope::Environment { .. } => vec!["secrets", "environments"],
        SecretScope::Org {
            app: App::Actions, ..
        } => vec!["organization_secrets"],
        SecretScope::Repo {
            app: App::Dependabot,
            ..
        }
        | SecretScope::Org {
            app: App::Dependabot,
            ..
        } => vec!["dependabot_secrets"],
        SecretScope::Repo {
            app: App::Codespaces,
            ..
        } => vec!["codespaces_secrets"],
        SecretScope::Org {
            app: App::Codespaces,
            ..
        } => return None,
    })
}

/// A failure told in the terms of the target it happened on, with what to do about it:
/// the permission to grant for GitHub's 403 with `X-Accepted-GitHub-Permissions`, what a
/// 404 means for an environment or repository.
pub fn explain(scope: &crate::model::SecretScope, err: &GitHubError) -> String {
    use crate::model::SecretScope;
    let base = err.to_string();
    match (&err.kind, scope) {
        (
            ErrorKind::Forbidden {
                accepted_permissions: Some(p),
            },
            _,
        ) if !p.is_empty() => {
            let wanted = p
                .split(';')
                .next()
                .unwrap_or(p)
                .split(',')
                .map(|kv| kv.trim().replacen('=', ": ", 1))
                .collect::<Vec<_>>()
                .join(", ");
            format!("{base}: grant the GitHub App (or fine-grained token) {wanted}")
        }
        (
            ErrorKind::Forbidden { .. },
            SecretScope::Org {
                app: crate::model::App::Codespaces,
                ..
            },
        ) if err.message.contains("integration") => {
            format!("{base}: GitHub does not let a GitHub App manage organization Codespaces secrets; use a token with admin:org for this target")
        }
        (
            ErrorKind::NotFound,
            SecretScope::Environment {
                owner,
                repo,
                environment,
            },
        ) if err.status.is_some() => {
            format!("{base}: environment {environment} does not exist in {owner}/{repo}, or these credentials cannot see the repository")
        }
        (ErrorKind::NotFound, SecretScope::Repo { owner, repo, .. }) if err.status.is_some() => {
            format!("{base}: repository {owner}/{repo} does not exist, or these credentials cannot see it")
        }
        _ => base,
    }
}
