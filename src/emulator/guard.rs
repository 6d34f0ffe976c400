//! Whether a caller may reach a repository, environment or organization, answered the way
//! GitHub answers: 404 where existence is hidden, 403 where it is not.

use crate::github::SecretScope;

use super::auth::Access;
use super::errors::ApiError;
use super::state::{OrgState, RepoState, State};

const NOT_ACCESSIBLE: &str = "Resource not accessible by personal access token";

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
    scope: &SecretScope,
    write: bool,
) -> Result<(), ApiError> {
    match scope {
        SecretScope::Repo { owner, repo, .. } | SecretScope::Environment { owner, repo, .. } => {
            let (org, r) = readable_repo(st, access, owner, repo)?;
            if !access.manages_repo(&org.login, &r.name) {
                return Err(ApiError::forbidden(NOT_ACCESSIBLE));
            }
            if r.disabled {
                return Err(ApiError::forbidden("Repository access blocked"));
            }
            if let SecretScope::Environment { environment, .. } = scope {
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
        SecretScope::Org { org, .. } => {
            let o = st.org(org).ok_or_else(ApiError::not_found)?;
            if access.manages_org(&o.login) {
                Ok(())
            } else {
                Err(ApiError::forbidden(NOT_ACCESSIBLE))
            }
        }
    }
}
