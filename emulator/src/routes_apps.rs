//! GitHub App routes: the App itself and its installations (JWT only), minting
//! installation tokens, and what an installation token can reach.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Extension, Json, Router};
use serde_json::{json, Map, Value};

use super::apps::{AppEntry, Grant, InstallationEntry, RepositorySelection};
use super::auth::{Access, BaseUrl, ReqCtx};
use super::errors::ApiError;
use super::extract::{Body, Params};
use super::pagination::Page;
use super::routes_repos::with_link;
use super::server::Shared;
use super::state::{rfc3339, State as World};
use super::validate::json_object;
use super::views::{account_json, owner_json, repo_json};

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/app", get(get_app))
        .route("/app/installations", get(list_installations))
        .route(
            "/app/installations/{installation_id}",
            get(get_installation),
        )
        .route(
            "/app/installations/{installation_id}/access_tokens",
            post(create_token),
        )
        .route("/orgs/{org}/installation", get(org_installation))
        .route("/repos/{owner}/{repo}/installation", get(repo_installation))
        .route("/installation/repositories", get(installation_repos))
        .route("/installation/token", delete(revoke_token))
}

/// The App a JWT stands for; any other credential is refused as GitHub does.
fn jwt_app<'a>(sh: &'a Shared, ctx: &ReqCtx) -> Result<&'a AppEntry, ApiError> {
    match ctx.access() {
        Access::App { app_id } => sh.apps.app(*app_id).ok_or_else(ApiError::not_found),
        _ => Err(ApiError::unauthorized(
            "A JSON web token could not be decoded",
        )),
    }
}

/// The account that owns the App: the organization of its first installation (GitHub
/// requires an owner; `integration.owner` is not nullable), or a user named after the App.
fn app_owner(st: &World, app: &AppEntry, base: &BaseUrl) -> Value {
    match app.installations().first().and_then(|i| st.org(&i.org)) {
        Some(org) => owner_json(org, base),
        None => account_json(&format!("{}-owner", app.slug), app.id, "User", base),
    }
}

fn app_json(st: &World, app: &AppEntry, base: &BaseUrl) -> Value {
    json!({
        "id": app.id,
        "slug": app.slug,
        "client_id": app.client_id,
        "node_id": base64_id("Integration", app.id),
        "owner": app_owner(st, app, base),
        "name": app.slug,
        "description": "",
        "external_url": format!("{}/apps/{}", base.origin, app.slug),
        "html_url": format!("{}/apps/{}", base.origin, app.slug),
        "created_at": "2020-01-01T00:00:00Z",
        "updated_at": "2020-01-01T00:00:00Z",
        "permissions": app.installations().first().map(|i| json!(i.permissions)).unwrap_or_else(|| json!({})),
        "events": [],
        "installations_count": app.installations().len(),
    })
}

fn base64_id(kind: &str, id: u64) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(format!("0{}:{kind}{id}", kind.len()))
}

fn installation_json(st: &World, app: &AppEntry, i: &InstallationEntry, base: &BaseUrl) -> Value {
    let api = base.api();
    let account = st
        .org(&i.org)
        .map(|o| owner_json(o, base))
        .unwrap_or(Value::Null);
    let target_id = st.org(&i.org).map(|o| o.id).unwrap_or_default();
    let created = rfc3339(&i.created_at);
    json!({
        "id": i.id,
        "account": account,
        "repository_selection": i.selection.as_str(),
        "access_tokens_url": format!("{api}/app/installations/{}/access_tokens", i.id),
        "repositories_url": format!("{api}/installation/repositories"),
        "html_url": format!("{}/organizations/{}/settings/installations/{}", base.origin, i.org, i.id),
        "app_id": app.id,
        "client_id": app.client_id,
        "app_slug": app.slug,
        "target_id": target_id,
        "target_type": "Organization",
        "permissions": i.permissions,
        "events": [],
        "created_at": created,
        "updated_at": created,
        "single_file_name": null,
        "has_multiple_single_files": false,
        "single_file_paths": [],
        "suspended_by": null,
        "suspended_at": if i.suspended { json!(created) } else { Value::Null },
    })
}

/// `GET /app`: the App the JWT was signed for.
async fn get_app(
    State(sh): State<Arc<Shared>>,
    Extension(ctx): Extension<ReqCtx>,
) -> Result<Response, ApiError> {
    let app = jwt_app(&sh, &ctx)?;
    let st = sh.state_read();
    Ok(Json(app_json(&st, app, &ctx.base)).into_response())
}

/// `GET /app/installations`: every installation of the App (one page holds them all).
async fn list_installations(
    State(sh): State<Arc<Shared>>,
    Extension(ctx): Extension<ReqCtx>,
) -> Result<Response, ApiError> {
    let app = jwt_app(&sh, &ctx)?;
    let st = sh.state();
    let items: Vec<Value> = app
        .installations()
        .into_iter()
        .map(|i| installation_json(&st, app, &i, &ctx.base))
        .collect();
    Ok(Json(items).into_response())
}

fn installation_by_id(app: &AppEntry, params: &Params) -> Result<InstallationEntry, ApiError> {
    let id: u64 = params
        .get("installation_id")?
        .parse()
        .map_err(|_| ApiError::not_found())?;
    app.installations()
        .into_iter()
        .find(|i| i.id == id)
        .ok_or_else(ApiError::not_found)
}

/// `GET /app/installations/{installation_id}`.
async fn get_installation(
    State(sh): State<Arc<Shared>>,
    Extension(ctx): Extension<ReqCtx>,
    params: Params,
) -> Result<Response, ApiError> {
    let app = jwt_app(&sh, &ctx)?;
    let i = installation_by_id(app, &params)?;
    let st = sh.state();
    Ok(Json(installation_json(&st, app, &i, &ctx.base)).into_response())
}

/// `GET /orgs/{org}/installation`: the App's installation on that organization, or 404.
async fn org_installation(
    State(sh): State<Arc<Shared>>,
    Extension(ctx): Extension<ReqCtx>,
    params: Params,
) -> Result<Response, ApiError> {
    let app = jwt_app(&sh, &ctx)?;
    let org = params.get("org")?;
    let i = app
        .installations()
        .into_iter()
        .find(|i| i.org.eq_ignore_ascii_case(org))
        .ok_or_else(ApiError::not_found)?;
    let st = sh.state();
    Ok(Json(installation_json(&st, app, &i, &ctx.base)).into_response())
}

/// `GET /repos/{owner}/{repo}/installation`: the installation that reaches the
/// repository, or 404 (also when the repository is not among its selected ones).
async fn repo_installation(
    State(sh): State<Arc<Shared>>,
    Extension(ctx): Extension<ReqCtx>,
    params: Params,
) -> Result<Response, ApiError> {
    let app = jwt_app(&sh, &ctx)?;
    let (owner, repo) = (params.get("owner")?, params.get("repo")?);
    let st = sh.state();
    let r = st.repo(owner, repo).ok_or_else(ApiError::not_found)?;
    let i = app
        .installations()
        .into_iter()
        .find(|i| i.grant().reaches_repo(owner, &r.name))
        .ok_or_else(ApiError::not_found)?;
    Ok(Json(installation_json(&st, app, &i, &ctx.base)).into_response())
}

/// `POST /app/installations/{installation_id}/access_tokens`: 201 with `token` and
/// `expires_at`. The optional body narrows the token to `repositories` (names) or
/// `repository_ids`, and to `permissions` the installation has; asking for more is 422.
async fn create_token(
    State(sh): State<Arc<Shared>>,
    Extension(ctx): Extension<ReqCtx>,
    params: Params,
    Body(bytes): Body,
) -> Result<Response, ApiError> {
    let app = jwt_app(&sh, &ctx)?;
    let inst = installation_by_id(app, &params)?;
    if inst.suspended {
        return Err(ApiError::forbidden("This installation has been suspended"));
    }
    let body = if bytes.iter().all(u8::is_ascii_whitespace) {
        Map::new()
    } else {
        json_object(&bytes)?
    };
    let mut grant = inst.grant();
    let narrowed = narrow(&sh, &inst, &mut grant, &body)?;
    let permissions = grant.permissions.clone();
    let (token, expires_at) = sh.apps.issue(app, grant.clone());
    let mut out = json!({
        "token": token,
        "expires_at": rfc3339(&expires_at),
        "permissions": permissions,
        "repository_selection": if grant.repos.is_some() { "selected" } else { "all" },
    });
    if narrowed {
        let st = sh.state();
        let repos: Vec<Value> = reachable(&st, &grant)
            .into_iter()
            .map(|(o, r)| repo_json(o, r, &ctx.base, ctx.version, Some(true)))
            .collect();
        out["repositories"] = json!(repos);
    }
    Ok((StatusCode::CREATED, Json(out)).into_response())
}

/// Applies a token request's `repositories`, `repository_ids` and `permissions`.
fn narrow(
    sh: &Shared,
    inst: &InstallationEntry,
    grant: &mut Grant,
    body: &Map<String, Value>,
) -> Result<bool, ApiError> {
    let mut narrowed = false;
    let mut wanted: HashSet<String> = HashSet::new();
    let st = sh.state();
    if let Some(v) = body.get("repositories") {
        let names = v.as_array().ok_or_else(|| {
            ApiError::invalid_request("For 'properties/repositories', it is not an array.")
        })?;
        for n in names {
            let n = n
                .as_str()
                .ok_or_else(|| ApiError::invalid_request("For 'items', it is not a string."))?;
            wanted.insert(n.to_ascii_lowercase());
        }
        narrowed = true;
    }
    if let Some(v) = body.get("repository_ids") {
        let ids = v.as_array().ok_or_else(|| {
            ApiError::invalid_request("For 'properties/repository_ids', it is not an array.")
        })?;
        for id in ids {
            let id = id
                .as_u64()
                .ok_or_else(|| ApiError::invalid_request("For 'items', it is not an integer."))?;
            match st.repo_by_id(id) {
                Some((o, r)) if o.login.eq_ignore_ascii_case(&inst.org) => {
                    wanted.insert(r.name.to_ascii_lowercase());
                }
                _ => {
                    return Err(ApiError::validation(
                        "Installation",
                        "repository_ids",
                        "invalid",
                        "There is at least one repository that does not exist or is not accessible to the parent installation.",
                    ))
                }
            }
        }
        narrowed = true;
    }
    if narrowed {
        if wanted.len() > 500 {
            return Err(ApiError::validation(
                "Installation",
                "repositories",
                "invalid",
                "Up to 500 repositories can be listed.",
            ));
        }
        for name in &wanted {
            let exists = st.repo(&inst.org, name).is_some();
            if !exists || !grant.reaches_repo(&inst.org, name) {
                return Err(ApiError::validation(
                    "Installation",
                    "repositories",
                    "invalid",
                    "There is at least one repository that does not exist or is not accessible to the parent installation.",
                ));
            }
        }
        grant.repos = Some(wanted);
    }
    if let Some(v) = body.get("permissions") {
        let asked = v.as_object().ok_or_else(|| {
            ApiError::invalid_request("For 'properties/permissions', it is not an object.")
        })?;
        let mut perms = BTreeMap::new();
        for (name, lvl) in asked {
            let lvl = lvl.as_str().unwrap_or("");
            if !grant.has(name, lvl) {
                return Err(ApiError::validation(
                    "Installation",
                    "permissions",
                    "invalid",
                    "The permissions requested are not granted to this installation.",
                ));
            }
            perms.insert(name.clone(), lvl.to_string());
        }
        perms
            .entry("metadata".into())
            .or_insert_with(|| "read".into());
        grant.permissions = perms;
    }
    Ok(narrowed)
}

/// Every existing repository a grant reaches, in creation order.
fn reachable<'a>(
    st: &'a World,
    grant: &Grant,
) -> Vec<(&'a super::state::OrgState, &'a super::state::RepoState)> {
    let Some(org) = st.org(&grant.org) else {
        return Vec::new();
    };
    let mut repos: Vec<_> = org
        .repos
        .values()
        .filter(|r| grant.reaches_repo(&org.login, &r.name))
        .map(|r| (org, r))
        .collect();
    repos.sort_by_key(|(_, r)| (r.created_at, r.id));
    repos
}

/// `GET /installation/repositories`: what the installation token reaches, paginated.
async fn installation_repos(
    State(sh): State<Arc<Shared>>,
    Extension(ctx): Extension<ReqCtx>,
) -> Result<Response, ApiError> {
    let Access::Installation(grant) = ctx.access() else {
        return Err(ApiError::forbidden(
            "You must authenticate with an installation access token in order to list repositories for an installation.",
        ));
    };
    let page = Page::from_query(ctx.base.query.as_deref());
    let st = sh.state();
    let repos = reachable(&st, grant);
    let items: Vec<Value> = page
        .slice(&repos)
        .iter()
        .map(|(o, r)| repo_json(o, r, &ctx.base, ctx.version, Some(true)))
        .collect();
    let link = page.link_header(&ctx.base, repos.len());
    let selection = if grant.repos.is_some() {
        RepositorySelection::Selected
    } else {
        RepositorySelection::All
    };
    Ok(with_link(
        Json(json!({
            "total_count": repos.len(),
            "repositories": items,
            "repository_selection": selection.as_str(),
        }))
        .into_response(),
        link,
    ))
}

/// `DELETE /installation/token`: the token revokes itself.
async fn revoke_token(
    State(sh): State<Arc<Shared>>,
    Extension(ctx): Extension<ReqCtx>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if !matches!(ctx.access(), Access::Installation(_)) {
        return Err(ApiError::unauthorized("Bad credentials"));
    }
    if let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .map(|(_, t)| t.trim().to_string())
    {
        sh.apps.revoke(&token);
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

impl super::server::Emulator {
    /// Installation tokens of every App live this long from now on (GitHub: one hour), so
    /// a test can make them expire in the middle of a run.
    pub fn set_token_lifetime(&self, lifetime: std::time::Duration) {
        self.shared.apps.set_token_lifetime(lifetime);
    }

    /// Installation tokens handed out so far, per installation id.
    pub fn tokens_issued(&self) -> BTreeMap<u64, u64> {
        self.shared.apps.minted()
    }

    /// The permissions of every live installation token, per installation id (what each
    /// token request was narrowed to).
    pub fn token_permissions(&self) -> Vec<(u64, BTreeMap<String, String>)> {
        self.shared.apps.issued_permissions()
    }

    /// The id of `app_id`'s installation on `org`.
    pub fn installation_id(&self, app_id: u64, org: &str) -> Option<u64> {
        self.shared
            .apps
            .app(app_id)?
            .installations()
            .into_iter()
            .find(|i| i.org.eq_ignore_ascii_case(org))
            .map(|i| i.id)
    }
}
