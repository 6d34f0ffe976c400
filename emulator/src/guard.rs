//! Whether a caller may reach a repository, environment or organization, answered the way
//! GitHub answers: 404 where existence is hidden, 403 where it is not.

use axum::http::HeaderName;

use crate::scope::App;
use crate::scope::Scope;

use super::auth::Access;
use super::errors::ApiError;
use super::state::{OrgState, RepoState, State};

const NOT_ACCESSIBLE: &str = "Resource not accessible by personal access token";
const NOT_ACCESSIBLE_INTEGRATION: &str = "Resource not accessible by integration";

pub(crate) fn not_accessible(access: &Access) -> ApiError {
    ApiError::forbidden(if access.is_integration() {
        NOT_ACCESSIBLE_INTEGRATION
    } else {
        NOT_ACCESSIBLE
    })
}

/// The App permissions a secret endpoint needs (all of them), at `read` or `write`.
/// `None`: installation tokens cannot use it at all (organization Codespaces secrets).
///
/// Repository Actions: `secrets`; environments: `secrets` and `environments`; organization
/// Actions: `organization_secrets`; Dependabot (repository and, per GitHub's older
/// description, organization): `dependabot_secrets`; repository Codespaces:
/// `codespaces_secrets`, at `write` even to read.
pub(crate) fn required_permissions(
    scope: &Scope,
    write: bool,
) -> Option<Vec<(&'static str, &'static str)>> {
    let level = if write { "write" } else { "read" };
    Some(match scope {
        Scope::Repo {
            app: App::Actions, ..
        } => vec![("secrets", level)],
        Scope::Environment { .. } => vec![("secrets", level), ("environments", level)],
        Scope::Org {
            app: App::Actions, ..
        } => vec![("organization_secrets", level)],
        Scope::Repo {
            app: App::Dependabot,
            ..
        }
        | Scope::Org {
            app: App::Dependabot,
            ..
        } => vec![("dependabot_secrets", level)],
        Scope::Repo {
            app: App::Codespaces,
            ..
        } => vec![("codespaces_secrets", "write")],
        Scope::Org {
            app: App::Codespaces,
            ..
        } => return None,
    })
}

/// An installation token must carry every permission the endpoint needs: 403 with
/// `X-Accepted-GitHub-Permissions` naming them otherwise. Other callers pass.
pub(crate) fn check_permissions(
    access: &Access,
    scope: &Scope,
    write: bool,
) -> Result<(), ApiError> {
    let grant = match access {
        Access::Installation(g) => g,
        Access::App { .. } => return Err(not_accessible(access)),
        _ => return Ok(()),
    };
    let Some(needed) = required_permissions(scope, write) else {
        return Err(not_accessible(access));
    };
    if needed.iter().all(|(p, l)| grant.has(p, l)) {
        return Ok(());
    }
    let accepted: Vec<String> = needed.iter().map(|(p, l)| format!("{p}={l}")).collect();
    Err(not_accessible(access).with_header(
        HeaderName::from_static("x-accepted-github-permissions"),
        accepted.join(","),
    ))
}

/// A repository whose metadata the caller may read: public ones, or ones it manages.
/// Others are 404, as GitHub hides private repositories.
pub(crate) fn readable_repo<'a>(
    st: &'a State,
    access: &Access,
    owner: &str,
    repo: &str,
) -> Result<(&'a OrgState, &'a RepoState), ApiError> {
    let org = st.org(owner).ok_or_else(ApiError::not_found)?;
    let r = st.repo(owner, repo).ok_or_else(ApiError::not_found)?;
    if access.reads_repo(&org.login, &r.name, r.visibility) {
        Ok((org, r))
    } else {
        Err(ApiError::not_found())
    }
}

/// May the caller read (or, `write`, dispatch to) this repository's Actions: reading needs
/// only to see the repository; dispatching a token that manages it; installations need
/// `actions` at `read`/`write`. Disabled repositories: 403; archived ones refuse dispatches.
pub(crate) fn check_actions<'a>(
    st: &'a State,
    access: &Access,
    owner: &str,
    repo: &str,
    write: bool,
) -> Result<(&'a OrgState, &'a RepoState), ApiError> {
    let (org, r) = readable_repo(st, access, owner, repo)?;
    if matches!(access, Access::App { .. }) {
        return Err(not_accessible(access));
    }
    if write && !access.is_authenticated() {
        return Err(ApiError::unauthorized("Requires authentication"));
    }
    if write && !access.manages_repo(&org.login, &r.name) {
        return Err(not_accessible(access));
    }
    if let Access::Installation(g) = access {
        let level = if write { "write" } else { "read" };
        if !g.has("actions", level) {
            return Err(not_accessible(access).with_header(
                HeaderName::from_static("x-accepted-github-permissions"),
                format!("actions={level}"),
            ));
        }
    }
    if r.disabled {
        return Err(ApiError::forbidden("Repository access blocked"));
    }
    if write && r.archived {
        return Err(ApiError::forbidden(
            "Repository was archived so is read-only.",
        ));
    }
    Ok((org, r))
}

/// May the caller use this secret scope? `write` for PUT and DELETE.
///
/// - repository or environment it cannot see: 404; public repository it does not manage: 403;
/// - disabled repository: 403 `Repository access blocked`;
/// - archived repository, on writes: 403 `Repository was archived so is read-only.`;
/// - missing environment: 404;
/// - organization: 404 if it does not exist, 403 if the token does not administer it.
pub(crate) fn check_scope(
    st: &State,
    access: &Access,
    scope: &Scope,
    write: bool,
) -> Result<(), ApiError> {
    match scope {
        Scope::Repo { owner, repo, .. } | Scope::Environment { owner, repo, .. } => {
            let (org, r) = readable_repo(st, access, owner, repo)?;
            if !access.manages_repo(&org.login, &r.name) {
                return Err(not_accessible(access));
            }
            check_permissions(access, scope, write)?;
            if r.disabled {
                return Err(ApiError::forbidden("Repository access blocked"));
            }
            if let Scope::Environment { environment, .. } = scope {
                if !r.environments.contains_key(&environment.to_lowercase()) {
                    return Err(ApiError::not_found());
                }
            }
            if write && r.archived {
                return Err(ApiError::forbidden(
                    "Repository was archived so is read-only.",
                ));
            }
            Ok(())
        }
        Scope::Org { org, .. } => {
            let o = st.org(org).ok_or_else(ApiError::not_found)?;
            if access.manages_org(&o.login) {
                check_permissions(access, scope, write)
            } else {
                Err(not_accessible(access))
            }
        }
    }
}
