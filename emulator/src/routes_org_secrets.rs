//! Organization secret routes: the shared secret handlers under `/orgs/{org}/{app}/secrets`,
//! and the selected-repositories list with its 409 when visibility is not `selected`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Extension, Json, Router};
use serde_json::{json, Value};

use crate::scope::Scope;
use crate::scope::Visibility;

use super::auth::ReqCtx;
use super::errors::ApiError;
use super::extract::{Body, Target};
use super::guard::check_scope;
use super::pagination::Page;
use super::routes_secrets::{
    check_org_repos, delete_secret, get_secret, list_secrets, public_key, put_secret,
};
use super::server::Shared;
use super::state::{SecretEntry, APPS};
use super::validate::{json_object, set_repositories_body};
use super::views::repo_json;

pub(crate) fn routes() -> Router<Arc<Shared>> {
    let mut router = Router::new();
    for app in APPS {
        let base = format!("/orgs/{{org}}/{}/secrets", app.as_str());
        router = router
            .route(&base, get(list_secrets).layer(Extension(app)))
            .route(
                &format!("{base}/public-key"),
                get(public_key).layer(Extension(app)),
            )
            .route(
                &format!("{base}/{{secret_name}}"),
                get(get_secret)
                    .put(put_secret)
                    .delete(delete_secret)
                    .layer(Extension(app)),
            )
            .route(
                &format!("{base}/{{secret_name}}/repositories"),
                get(list_selected).put(set_selected).layer(Extension(app)),
            )
            .route(
                &format!("{base}/{{secret_name}}/repositories/{{repository_id}}"),
                put(add_selected)
                    .delete(remove_selected)
                    .layer(Extension(app)),
            );
    }
    router
}

fn not_selected() -> ApiError {
    ApiError::conflict("Visibility of the secret is not set to selected.")
}

/// Runs `f` on one organization secret after the token and scope checks.
fn with_org_secret<T>(
    sh: &Shared,
    ctx: &ReqCtx,
    target: &Target,
    write: bool,
    f: impl FnOnce(&mut super::state::State, &str, &Scope, String) -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    ctx.require_auth()?;
    let name = target.secret_name()?.to_ascii_uppercase();
    let mut st = sh.state();
    check_scope(&st, ctx.access(), &target.scope, write)?;
    let Scope::Org { org, .. } = &target.scope else {
        return Err(ApiError::not_found());
    };
    let exists = st
        .scope_data(&target.scope)
        .is_some_and(|d| d.secrets.contains_key(&name));
    if !exists {
        return Err(ApiError::not_found());
    }
    f(&mut st, org, &target.scope, name)
}

fn entry<'a>(
    st: &'a mut super::state::State,
    scope: &Scope,
    name: &str,
) -> Result<&'a mut SecretEntry, ApiError> {
    st.scope_data_mut(scope)
        .and_then(|d| d.secrets.get_mut(name))
        .ok_or_else(ApiError::not_found)
}

/// `GET .../secrets/{name}/repositories`: `{total_count, repositories}`, paginated.
async fn list_selected(
    State(sh): State<Arc<Shared>>,
    Extension(ctx): Extension<ReqCtx>,
    target: Target,
) -> Result<Response, ApiError> {
    let page = Page::from_query(ctx.base.query.as_deref());
    with_org_secret(&sh, &ctx, &target, false, |st, _org, scope, name| {
        let ids: Vec<u64> = entry(st, scope, &name)?
            .access
            .as_ref()
            .map(|a| a.selected.iter().copied().collect())
            .unwrap_or_default();
        let repos: Vec<Value> = ids
            .iter()
            .filter_map(|id| st.repo_by_id(*id))
            .map(|(o, r)| repo_json(o, r, &ctx.base, ctx.version, Some(true)))
            .collect();
        let items: Vec<Value> = page.slice(&repos).to_vec();
        Ok(Json(json!({ "total_count": repos.len(), "repositories": items })).into_response())
    })
}

/// `PUT .../secrets/{name}/repositories` with `selected_repository_ids`: replaces the set.
async fn set_selected(
    State(sh): State<Arc<Shared>>,
    Extension(ctx): Extension<ReqCtx>,
    target: Target,
    Body(bytes): Body,
) -> Result<Response, ApiError> {
    with_org_secret(&sh, &ctx, &target, true, |st, org, scope, name| {
        let app = match scope {
            Scope::Org { app, .. } => *app,
            _ => return Err(ApiError::not_found()),
        };
        let ids = set_repositories_body(&json_object(&bytes)?, app, ctx.version)?;
        let access = entry(st, scope, &name)?.access.clone();
        if access.as_ref().map(|a| a.visibility) != Some(Visibility::Selected) {
            return Err(not_selected());
        }
        check_org_repos(st, org, &ids)?;
        if let Some(a) = entry(st, scope, &name)?.access.as_mut() {
            a.selected = ids.into_iter().collect();
        }
        Ok(StatusCode::NO_CONTENT.into_response())
    })
}

/// `PUT .../secrets/{name}/repositories/{repository_id}`: adds one repository.
async fn add_selected(
    State(sh): State<Arc<Shared>>,
    Extension(ctx): Extension<ReqCtx>,
    target: Target,
) -> Result<Response, ApiError> {
    let id = target.repository_id()?;
    with_org_secret(&sh, &ctx, &target, true, |st, org, scope, name| {
        let access = entry(st, scope, &name)?.access.clone();
        if access.as_ref().map(|a| a.visibility) != Some(Visibility::Selected) {
            return Err(not_selected());
        }
        check_org_repos(st, org, &[id])?;
        if let Some(a) = entry(st, scope, &name)?.access.as_mut() {
            a.selected.insert(id);
        }
        Ok(StatusCode::NO_CONTENT.into_response())
    })
}

/// `DELETE .../secrets/{name}/repositories/{repository_id}`: removes one repository.
async fn remove_selected(
    State(sh): State<Arc<Shared>>,
    Extension(ctx): Extension<ReqCtx>,
    target: Target,
) -> Result<Response, ApiError> {
    let id = target.repository_id()?;
    with_org_secret(&sh, &ctx, &target, true, |st, _org, scope, name| {
        let e = entry(st, scope, &name)?;
        match e.access.as_mut() {
            Some(a) if a.visibility == Visibility::Selected => {
                a.selected.remove(&id);
                Ok(StatusCode::NO_CONTENT.into_response())
            }
            _ => Err(not_selected()),
        }
    })
}
