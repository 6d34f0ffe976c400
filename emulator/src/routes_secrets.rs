//! Secret routes shared by every scope (repository and environment here, organization
//! routes reuse the handlers): list, public key, get, create-or-update with full checks of
//! the sealed value, and delete.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use secrecy::SecretString;
use serde_json::{json, Value};
use zeroize::Zeroizing;

use crate::scope::Scope;
use crate::scope::{App, Visibility};

use super::auth::ReqCtx;
use super::errors::ApiError;
use super::extract::{Body, Target};
use super::guard::check_scope;
use super::pagination::Page;
use super::routes_repos::with_link;
use super::server::Shared;
use super::state::{now, secret_limit, OrgAccessState, SecretEntry, State as World, APPS};
use super::validate::{json_object, put_body, secret_name, MAX_SECRET_BYTES};
use super::views::{public_key_json, secret_json};

pub(crate) fn routes() -> Router<Arc<Shared>> {
    let mut router = Router::new();
    for app in APPS {
        let a = app.as_str();
        router = router
            .route(
                &format!("/repos/{{owner}}/{{repo}}/{a}/secrets"),
                get(list_secrets).layer(Extension(app)),
            )
            .route(
                &format!("/repos/{{owner}}/{{repo}}/{a}/secrets/public-key"),
                get(public_key).layer(Extension(app)),
            )
            .route(
                &format!("/repos/{{owner}}/{{repo}}/{a}/secrets/{{secret_name}}"),
                get(get_secret)
                    .put(put_secret)
                    .delete(delete_secret)
                    .layer(Extension(app)),
            );
    }
    let env = "/repos/{owner}/{repo}/environments/{environment_name}/secrets";
    router
        .route(env, get(list_secrets))
        .route(&format!("{env}/public-key"), get(public_key))
        .route(
            &format!("{env}/{{secret_name}}"),
            get(get_secret).put(put_secret).delete(delete_secret),
        )
        .route(
            "/repos/{owner}/{repo}/actions/organization-secrets",
            get(repo_org_secrets).layer(Extension(App::Actions)),
        )
}

fn scope_data<'a>(st: &'a World, scope: &Scope) -> Result<&'a super::state::ScopeData, ApiError> {
    st.scope_data(scope).ok_or_else(ApiError::not_found)
}

/// `GET .../secrets`: `{total_count, secrets}` in name order, paginated with `Link`.
pub(crate) async fn list_secrets(
    State(sh): State<Arc<Shared>>,
    Extension(ctx): Extension<ReqCtx>,
    target: Target,
) -> Result<Response, ApiError> {
    ctx.require_auth()?;
    let page = Page::from_query(ctx.base.query.as_deref());
    let st = sh.state();
    check_scope(&st, ctx.access(), &target.scope, false)?;
    let data = scope_data(&st, &target.scope)?;
    let all: Vec<&SecretEntry> = data.secrets.values().collect();
    let items: Vec<Value> = page
        .slice(&all)
        .iter()
        .map(|e| secret_json(&target.scope, e, &ctx.base))
        .collect();
    let link = page.link_header(&ctx.base, all.len());
    Ok(with_link(
        Json(json!({ "total_count": all.len(), "secrets": items })).into_response(),
        link,
    ))
}

/// `GET .../secrets/public-key`: the scope's current key, made on first use.
pub(crate) async fn public_key(
    State(sh): State<Arc<Shared>>,
    Extension(ctx): Extension<ReqCtx>,
    target: Target,
) -> Result<Response, ApiError> {
    ctx.require_auth()?;
    let mut st = sh.state();
    check_scope(&st, ctx.access(), &target.scope, false)?;
    let data = st
        .scope_data_mut(&target.scope)
        .ok_or_else(ApiError::not_found)?;
    let key = data.key();
    Ok(Json(public_key_json(&key.key_id, &key.public_b64)).into_response())
}

/// `GET .../secrets/{secret_name}`: metadata only, found case-insensitively.
pub(crate) async fn get_secret(
    State(sh): State<Arc<Shared>>,
    Extension(ctx): Extension<ReqCtx>,
    target: Target,
) -> Result<Response, ApiError> {
    ctx.require_auth()?;
    let name = target.secret_name()?.to_ascii_uppercase();
    let st = sh.state();
    check_scope(&st, ctx.access(), &target.scope, false)?;
    let entry = scope_data(&st, &target.scope)?
        .secrets
        .get(&name)
        .ok_or_else(ApiError::not_found)?;
    Ok(Json(secret_json(&target.scope, entry, &ctx.base)).into_response())
}

/// `DELETE .../secrets/{secret_name}`: 204, or 404 when there is no such secret.
pub(crate) async fn delete_secret(
    State(sh): State<Arc<Shared>>,
    Extension(ctx): Extension<ReqCtx>,
    target: Target,
) -> Result<Response, ApiError> {
    ctx.require_auth()?;
    let name = target.secret_name()?.to_ascii_uppercase();
    let mut st = sh.state();
    check_scope(&st, ctx.access(), &target.scope, true)?;
    let data = st
        .scope_data_mut(&target.scope)
        .ok_or_else(ApiError::not_found)?;
    match data.secrets.remove(&name) {
        Some(_) => Ok(StatusCode::NO_CONTENT.into_response()),
        None => Err(ApiError::not_found()),
    }
}

fn stale_key() -> ApiError {
    ApiError::validation(
        "Secret",
        "key_id",
        "invalid",
        "The key_id does not name the current public key of this scope; fetch the public key again.",
    )
}

/// `PUT .../secrets/{secret_name}`: 201 with `{}` when created, 204 when updated.
///
/// Checked in this order: token (401), scope (404/403), name (422), JSON (400), schema
/// (422), `selected_repository_ids` only with `selected` (422), `key_id` is the scope's
/// current key (422), the value opens with that key (422), at most 48 KB decrypted (422),
/// selected repositories belong to the organization (422), the scope's secret count (422).
/// Decryption happens outside the state lock.
pub(crate) async fn put_secret(
    State(sh): State<Arc<Shared>>,
    Extension(ctx): Extension<ReqCtx>,
    target: Target,
    Body(bytes): Body,
) -> Result<Response, ApiError> {
    ctx.require_auth()?;
    let scope = &target.scope;
    let (key_id, opener) = {
        let mut st = sh.state();
        check_scope(&st, ctx.access(), scope, true)?;
        let key = st
            .scope_data_mut(scope)
            .ok_or_else(ApiError::not_found)?
            .key();
        (key.key_id.clone(), key.opener())
    };
    let name = secret_name(target.secret_name()?)?;
    let body = put_body(&json_object(&bytes)?, scope, ctx.version)?;
    if let (Some(visibility), Some(ids)) = (body.visibility, body.selected_repository_ids.as_ref())
    {
        if visibility != Visibility::Selected && !ids.is_empty() {
            return Err(ApiError::validation(
                "Secret",
                "selected_repository_ids",
                "invalid",
                "You can only provide a list of repository ids when the visibility is set to selected.",
            ));
        }
    }
    let value = match body.sealed.as_deref() {
        None => None,
        Some(sealed) => {
            if body.key_id.as_deref() != Some(key_id.as_str()) {
                return Err(stale_key());
            }
            let plain = Zeroizing::new(opener.open(sealed).ok_or_else(|| {
                ApiError::validation(
                    "Secret",
                    "encrypted_value",
                    "invalid",
                    "The encrypted_value could not be decrypted with the public key named by key_id.",
                )
            })?);
            if plain.len() > MAX_SECRET_BYTES {
                return Err(ApiError::validation(
                    "Secret",
                    "encrypted_value",
                    "invalid",
                    "The secret value is larger than the 48 KB limit.",
                ));
            }
            Some(SecretString::from(
                String::from_utf8_lossy(&plain).into_owned(),
            ))
        }
    };

    let mut st = sh.state();
    check_scope(&st, ctx.access(), scope, true)?;
    if let (Scope::Org { org, .. }, Some(ids)) = (scope, body.selected_repository_ids.as_ref()) {
        check_org_repos(&st, org, ids)?;
    }
    let limit = secret_limit(scope);
    let data = st.scope_data_mut(scope).ok_or_else(ApiError::not_found)?;
    if value.is_some() && data.key.as_ref().map(|k| k.key_id.as_str()) != Some(key_id.as_str()) {
        // The key was rotated while the value was being opened.
        return Err(stale_key());
    }
    let t = now();
    let is_org = matches!(scope, Scope::Org { .. });
    if let Some(entry) = data.secrets.get_mut(&name) {
        if let Some(value) = value {
            use secrecy::ExposeSecret as _;
            if entry.value.expose_secret() != value.expose_secret() {
                entry.value_changes += 1;
            }
            entry.value = value;
            entry.key_id = key_id;
        }
        entry.updated_at = t;
        entry.writes += 1;
        if is_org {
            entry.access = Some(next_access(entry.access.take(), &body));
        }
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let Some(value) = value else {
        return Err(ApiError::invalid_request(
            "\"encrypted_value\" wasn't supplied.",
        ));
    };
    if data.secrets.len() >= limit {
        let holder = match scope {
            Scope::Repo { .. } => "A repository",
            Scope::Environment { .. } => "An environment",
            Scope::Org { .. } => "An organization",
        };
        return Err(ApiError::validation(
            "Secret",
            "name",
            "custom",
            format!("Secrets limit reached. {holder} can have at most {limit} secrets."),
        ));
    }
    data.secrets.insert(
        name.clone(),
        SecretEntry {
            name,
            value,
            key_id,
            created_at: t,
            updated_at: t,
            writes: 1,
            value_changes: 1,
            access: is_org.then(|| next_access(None, &body)),
        },
    );
    Ok((StatusCode::CREATED, Json(json!({}))).into_response())
}

/// The access an organization secret has after a PUT: the new visibility; with `selected`,
/// the ids sent, else the ones it had if it was already `selected`.
fn next_access(prev: Option<OrgAccessState>, body: &super::validate::PutBody) -> OrgAccessState {
    let visibility = body.visibility.unwrap_or(Visibility::All);
    let selected = if visibility != Visibility::Selected {
        BTreeSet::new()
    } else if let Some(ids) = body.selected_repository_ids.as_ref() {
        ids.iter().copied().collect()
    } else {
        prev.filter(|p| p.visibility == Visibility::Selected)
            .map(|p| p.selected)
            .unwrap_or_default()
    };
    OrgAccessState {
        visibility,
        selected,
    }
}

/// Every id must be a repository of `org`: 422 otherwise.
pub(crate) fn check_org_repos(st: &World, org: &str, ids: &[u64]) -> Result<(), ApiError> {
    let org = org.to_ascii_lowercase();
    for id in ids {
        if st.by_id.get(id).is_none_or(|(o, _)| *o != org) {
            return Err(ApiError::validation(
                "Secret",
                "selected_repository_ids",
                "invalid",
                format!("Repository {id} is not a repository of this organization."),
            ));
        }
    }
    Ok(())
}

/// `GET /repos/{owner}/{repo}/actions/organization-secrets`: the organization's Actions
/// secrets this repository may use (visibility `all`; `private` for private and internal
/// repositories; `selected` when listed).
async fn repo_org_secrets(
    State(sh): State<Arc<Shared>>,
    Extension(ctx): Extension<ReqCtx>,
    target: Target,
) -> Result<Response, ApiError> {
    ctx.require_auth()?;
    let page = Page::from_query(ctx.base.query.as_deref());
    let st = sh.state();
    check_scope(&st, ctx.access(), &target.scope, false)?;
    let Scope::Repo { owner, repo, .. } = &target.scope else {
        return Err(ApiError::not_found());
    };
    let (org, r) = match (st.org(owner), st.repo(owner, repo)) {
        (Some(o), Some(r)) => (o, r),
        _ => return Err(ApiError::not_found()),
    };
    let usable: Vec<&SecretEntry> = org.apps[0]
        .secrets
        .values()
        .filter(|e| e.access.as_ref().is_some_and(|a| a.admits(r)))
        .collect();
    let plain = Scope::Repo {
        owner: owner.clone(),
        repo: repo.clone(),
        app: App::Actions,
    };
    let items: Vec<Value> = page
        .slice(&usable)
        .iter()
        .map(|e| secret_json(&plain, e, &ctx.base))
        .collect();
    let link = page.link_header(&ctx.base, usable.len());
    Ok(with_link(
        Json(json!({ "total_count": usable.len(), "secrets": items })).into_response(),
        link,
    ))
}
