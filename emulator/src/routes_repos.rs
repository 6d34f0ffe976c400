//! Repository routes: organization listings with pagination, one repository, its topics
//! and environments, and `GET /rate_limit`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header::{CONTENT_TYPE, ETAG, IF_NONE_MATCH, LINK};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde_json::{json, Value};

use super::auth::{ApiVersion, ReqCtx};
use super::errors::ApiError;
use super::extract::Params;
use super::fleet::RepoVisibility;
use super::guard::readable_repo;
use super::pagination::{query_param, Page};
use super::server::Shared;
use super::views::{environment_json, full_repo_json, org_json, repo_json, user_json};

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/orgs/{org}", get(get_org))
        .route("/orgs/{org}/repos", get(list_org_repos))
        .route("/user", get(get_user))
        .route("/repos/{owner}/{repo}", get(get_repo))
        .route("/repos/{owner}/{repo}/topics", get(get_topics))
        .route("/repos/{owner}/{repo}/environments", get(list_environments))
        .route(
            "/repos/{owner}/{repo}/environments/{environment_name}",
            get(get_environment),
        )
        .route("/rate_limit", get(rate_limit))
}

/// Adds a `Link` header when there is more than one page.
pub(crate) fn with_link(mut resp: Response, link: Option<String>) -> Response {
    if let Some(v) = link.and_then(|l| axum::http::HeaderValue::from_str(&l).ok()) {
        resp.headers_mut().insert(LINK, v);
    }
    resp
}

fn manages(ctx: &ReqCtx, org: &str, repo: &str) -> Option<bool> {
    ctx.access()
        .is_authenticated()
        .then(|| ctx.access().manages_repo(org, repo))
}

/// A weak `ETag` of a response body, as GitHub sends on `GET`s: `W/"<hex>"`.
pub(crate) fn etag_of(body: &[u8], link: Option<&str>) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    body.hash(&mut h);
    link.hash(&mut h);
    format!("W/\"{:016x}\"", h.finish())
}

/// Answers `304 Not Modified` (empty, with the `ETag`) when `If-None-Match` names the body's
/// current `ETag`, else the body with its `ETag` and `Link`.
fn conditional(headers: &HeaderMap, bytes: Vec<u8>, link: Option<String>) -> Response {
    let etag = etag_of(&bytes, link.as_deref());
    let matches = headers
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut resp = if matches {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let json = [(CONTENT_TYPE, HeaderValue::from_static("application/json"))];
        with_link((json, bytes).into_response(), link)
    };
    if let Ok(v) = HeaderValue::from_str(&etag) {
        resp.headers_mut().insert(ETAG, v);
    }
    resp
}

/// `GET /orgs/{org}/repos`: `type` (all, public, private, internal, forks, sources, member),
/// `sort` (created, updated, pushed, full_name), `direction`, `page`, `per_page`.
/// Conditional on `If-None-Match` (a `304` does not count against the primary limit).
async fn list_org_repos(
    State(sh): State<Arc<Shared>>,
    Extension(ctx): Extension<ReqCtx>,
    headers: HeaderMap,
    params: Params,
) -> Result<Response, ApiError> {
    let q = ctx.base.query.as_deref();
    let kind = query_param(q, "type").unwrap_or("all");
    let sort = query_param(q, "sort").unwrap_or("created");
    let ascending = match query_param(q, "direction") {
        Some("asc") => true,
        Some("desc") => false,
        _ => sort == "full_name",
    };
    let page = Page::from_query(q);
    let st = sh.state_read();
    let org = st.org(params.get("org")?).ok_or_else(ApiError::not_found)?;
    let mut repos: Vec<_> = org
        .repos
        .values()
        .filter(|r| ctx.access().reads_repo(&org.login, &r.name, r.visibility))
        .filter(|r| match kind {
            "public" => r.visibility == RepoVisibility::Public,
            "private" => r.visibility != RepoVisibility::Public,
            "internal" => r.visibility == RepoVisibility::Internal,
            "forks" => false,
            _ => true,
        })
        .collect();
    if sort == "full_name" {
        repos.sort_by_cached_key(|r| r.name.to_ascii_lowercase());
    } else {
        repos.sort_by_key(|r| (r.created_at, r.id));
    }
    if !ascending {
        repos.reverse();
    }
    // The page is the array of each repository's JSON; each is rendered once per the
    // inputs it shows (a page of 100 full repositories is milliseconds of formatting, and a
    // fleet re-lists every page on every run).
    let mut body = b"[".to_vec();
    for (i, r) in page.slice(&repos).iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        let manages = manages(&ctx, &org.login, &r.name);
        let key = RenderKey {
            org: (org.id, org.login.clone()),
            repo: (
                r.id,
                r.name.clone(),
                r.topics.clone(),
                r.archived,
                r.disabled,
            ),
            visibility: r.visibility.as_str(),
            created_at: r.created_at.timestamp_nanos_opt(),
            base: (ctx.base.origin.clone(), ctx.base.api()),
            version: ctx.version.as_str(),
            manages,
        };
        let cached = sh
            .rendered
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            .cloned();
        let json = cached.unwrap_or_else(|| {
            let v = repo_json(org, r, &ctx.base, ctx.version, manages);
            let json: Arc<[u8]> = serde_json::to_vec(&v).unwrap_or_default().into();
            let mut cache = sh.rendered.lock().unwrap_or_else(|p| p.into_inner());
            if cache.len() >= RENDER_CACHE_CAP {
                cache.clear();
            }
            cache.insert(key, Arc::clone(&json));
            json
        });
        body.extend_from_slice(&json);
    }
    body.push(b']');
    let link = page.link_header(&ctx.base, repos.len());
    drop(st);
    Ok(conditional(&headers, body, link))
}

/// Everything [`repo_json`] shows of a repository in a listing: equal keys render equal JSON.
#[derive(Clone, PartialEq, Eq, Hash)]
pub(crate) struct RenderKey {
    org: (u64, String),
    repo: (u64, String, Vec<String>, bool, bool),
    visibility: &'static str,
    created_at: Option<i64>,
    base: (String, String),
    version: &'static str,
    manages: Option<bool>,
}

/// Rendered listing entries kept at most (the cache starts over past it).
const RENDER_CACHE_CAP: usize = 50_000;

/// `GET /orgs/{org}`: the organization (organizations are public on GitHub).
async fn get_org(
    State(sh): State<Arc<Shared>>,
    Extension(ctx): Extension<ReqCtx>,
    params: Params,
) -> Result<Response, ApiError> {
    let st = sh.state();
    let org = st.org(params.get("org")?).ok_or_else(ApiError::not_found)?;
    let public = org
        .repos
        .values()
        .filter(|r| r.visibility == RepoVisibility::Public)
        .count();
    Ok(Json(org_json(org, &ctx.base, public)).into_response())
}

/// `GET /user`: the token's user, `emulator-user-N` (N: the token's place in the fleet).
async fn get_user(Extension(ctx): Extension<ReqCtx>) -> Result<Response, ApiError> {
    ctx.require_auth()?;
    Ok(Json(user_json(ctx.caller.user_id, &ctx.base)).into_response())
}

async fn get_repo(
    State(sh): State<Arc<Shared>>,
    Extension(ctx): Extension<ReqCtx>,
    params: Params,
) -> Result<Response, ApiError> {
    let st = sh.state();
    let (org, repo) = readable_repo(&st, ctx.access(), params.get("owner")?, params.get("repo")?)?;
    let m = manages(&ctx, &org.login, &repo.name);
    Ok(Json(full_repo_json(org, repo, &ctx.base, ctx.version, m)).into_response())
}

async fn get_topics(
    State(sh): State<Arc<Shared>>,
    Extension(ctx): Extension<ReqCtx>,
    params: Params,
) -> Result<Response, ApiError> {
    let st = sh.state();
    let (_, repo) = readable_repo(&st, ctx.access(), params.get("owner")?, params.get("repo")?)?;
    Ok(Json(json!({ "names": repo.topics })).into_response())
}

/// `GET /repos/{owner}/{repo}/environments`: `{total_count, environments}`, paginated
/// (the published description declares no `Link` header here).
async fn list_environments(
    State(sh): State<Arc<Shared>>,
    Extension(ctx): Extension<ReqCtx>,
    params: Params,
) -> Result<Response, ApiError> {
    let page = Page::from_query(ctx.base.query.as_deref());
    let st = sh.state();
    let (org, repo) = readable_repo(&st, ctx.access(), params.get("owner")?, params.get("repo")?)?;
    let envs: Vec<_> = repo.environments.values().collect();
    let items: Vec<Value> = page
        .slice(&envs)
        .iter()
        .map(|e| environment_json(org, repo, e, &ctx.base))
        .collect();
    Ok(Json(json!({ "total_count": envs.len(), "environments": items })).into_response())
}

async fn get_environment(
    State(sh): State<Arc<Shared>>,
    Extension(ctx): Extension<ReqCtx>,
    params: Params,
) -> Result<Response, ApiError> {
    let st = sh.state();
    let (org, repo) = readable_repo(&st, ctx.access(), params.get("owner")?, params.get("repo")?)?;
    let env = repo
        .environments
        .get(&params.get("environment_name")?.to_lowercase())
        .ok_or_else(ApiError::not_found)?;
    Ok(Json(environment_json(org, repo, env, &ctx.base)).into_response())
}

/// `GET /rate_limit`: the caller's core standing (this request is not charged) and fixed
/// figures for the other resources. API version 2026-03-10 drops the top-level `rate`.
async fn rate_limit(State(sh): State<Arc<Shared>>, Extension(ctx): Extension<ReqCtx>) -> Response {
    let core = sh.limiter.status(&ctx.caller);
    let reset_min = chrono::Utc::now().timestamp() + 60;
    let fixed = |limit: u64, reset: i64| json!({"limit": limit, "used": 0, "remaining": limit, "reset": reset});
    let core_json = json!({"limit": core.limit, "used": core.used, "remaining": core.remaining, "reset": core.reset});
    let authed = ctx.access().is_authenticated();
    let mut body = json!({
        "resources": {
            "core": core_json,
            "search": fixed(if authed { 30 } else { 10 }, reset_min),
            "graphql": fixed(if authed { 5000 } else { 0 }, core.reset),
            "integration_manifest": fixed(5000, core.reset),
            "code_search": fixed(if authed { 10 } else { 0 }, reset_min),
            "source_import": fixed(100, reset_min),
            "actions_runner_registration": fixed(10000, core.reset),
            "scim": fixed(15000, core.reset),
            "dependency_snapshots": fixed(100, reset_min),
            "dependency_sbom": fixed(100, core.reset),
            "code_scanning_autofix": fixed(10, reset_min)
        }
    });
    if ctx.version == ApiVersion::V2022_11_28 {
        body["rate"] = core_json;
    }
    Json(body).into_response()
}
