//! The GitHub REST client: one method per endpoint rotor uses, with retries and a concurrency bound.

use std::collections::HashSet;
use std::sync::Arc;

use reqwest::{Method, Url};
use serde::{Deserialize, Serialize};

use super::app::{AppAuth, AS_INSTALLATION};
use super::auth::TokenSource;
use super::cache::{CachedPage, ListingStore};
use super::config::{normalize_api_url, ConfigError, GitHubConfig};
use super::error::{ErrorKind, GitHubError};
use super::governor::{GovernorSettings, GovernorStats};
use super::identity::AuthIdentity;
use super::link;
use super::rate_limit::{RateLimitOverview, RateLimitSnapshot};
use super::routes;
use super::transport::{decode, Reply, Settings, Transport};
use crate::model::{App, Visibility};
use crate::model::{
    InstallationRepos, OrgAccess, PublicKey, PutOutcome, Repo, SecretMeta, SecretScope,
};

type Result<T> = std::result::Result<T, GitHubError>;

/// A GitHub REST client. Cheap to clone: clones share one connection pool, one concurrency
/// bound and one rate-limit record.
///
/// Every request carries `Accept: application/vnd.github+json`, `X-GitHub-Api-Version`,
/// `User-Agent` and (with a token) `Authorization: Bearer`, has its own timeout, and is
/// retried per [`RetryPolicy`]. With GitHub App auth the bearer is the installation token
/// of the owner the request is about, or the App's JWT (see [`super::app`]).
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    /// Sends the requests: URL, headers, credentials, governor and retries.
    transport: Transport,
    /// Where the credentials come from (the transport asks it before every attempt).
    auth: Arc<TokenSource>,
    /// Repository listings with their ETags.
    listings: ListingStore,
}

/// What an accepted secret PUT returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutReceipt {
    /// 201 created or 204 updated.
    pub outcome: PutOutcome,
    /// GitHub's `x-github-request-id` for the request, when it sent one.
    pub request_id: Option<String>,
}

impl Client {
    /// Builds the client; fails on an unusable URL, token or user agent.
    pub fn new(config: GitHubConfig) -> std::result::Result<Self, ConfigError> {
        let base = normalize_api_url(&config.api_url)?;
        let base_url = Url::parse(&base).map_err(|e| ConfigError::ApiUrl {
            url: base.clone(),
            reason: e.to_string(),
        })?;
        let auth = match &config.app {
            Some(app) => TokenSource::App(Arc::new(AppAuth::new(app)?)),
            None => {
                let auth = config.auth();
                if let Some(auth) = &auth {
                    auth.header_value()?;
                }
                TokenSource::Static(auth)
            }
        };
        let auth = Arc::new(auth);
        let settings = Settings {
            base,
            base_url,
            timeout: config.timeout,
            user_agent: &config.user_agent,
            api_version: &config.api_version,
            retry: config.retry_policy(),
            governor: config.governor_settings(),
        };
        let transport = Transport::new(settings, auth.clone()).map_err(ConfigError::Http)?;
        Ok(Client {
            inner: Arc::new(Inner {
                transport,
                auth,
                listings: ListingStore::new(config.listing_cache.clone()),
            }),
        })
    }

    /// The API base URL requests go to.
    pub fn api_url(&self) -> &str {
        self.inner.transport.api_url()
    }

    /// The GitHub App credentials requests are made with, if App auth is in use.
    pub fn app_auth(&self) -> Option<&AppAuth> {
        match &*self.inner.auth {
            TokenSource::App(app) => Some(app),
            TokenSource::Static(_) => None,
        }
    }

    /// Who a request to `path` (relative to the API base) is sent as: `token`, or with App
    /// auth the installation of the owner the path names (looked up on first use). The key
    /// a rate governor groups requests by.
    pub async fn auth_identity(&self, path: &str) -> Result<AuthIdentity> {
        self.inner.transport.identity(path).await
    }

    /// The `x-ratelimit-*` values of the most recent response that carried them.
    pub fn last_rate_limit(&self) -> Option<RateLimitSnapshot> {
        self.inner.transport.last_rate_limit()
    }

    /// What the governor keeps this client's requests to.
    pub fn governor_settings(&self) -> GovernorSettings {
        self.inner.transport.governor_settings().clone()
    }

    /// What the governor has made this client's requests wait so far.
    pub fn governor_stats(&self) -> GovernorStats {
        self.inner.transport.governor_stats()
    }

    // ---- endpoints -------------------------------------------------------------------

    /// `GET /orgs/{org}/repos?per_page=100&type=all`, every page (following `Link: rel="next"`).
    ///
    /// Conditional: a page seen before is asked for with `If-None-Match`, and a `304` (which
    /// does not count against the primary budget) reuses the cached page. When the listing
    /// was read before, every page is asked for at once, at the URLs GitHub's own `Link`
    /// headers gave last time; if the pages no longer link up that way, the listing is read
    /// again page after page.
    pub async fn list_org_repos(&self, org: &str) -> Result<Vec<Repo>> {
        let path = routes::path(&Method::GET, &["orgs", org, "repos"])?;
        let first = self
            .inner
            .transport
            .url_for(&Method::GET, &format!("{path}?per_page=100&type=all"))?;
        let key = first.to_string();
        if let Some(items) = self.relist_at_once(&key).await? {
            return Ok(items);
        }
        let mut pages: Vec<CachedPage> = Vec::new();
        let mut items = Vec::new();
        let mut url = first;
        // Page 1's `Link` header, which may name the last page.
        let mut first_links = String::new();
        loop {
            let cached = self.inner.listings.lock().page(&key, url.as_str()).cloned();
            let etag = cached.as_ref().map(|c| c.etag.clone());
            let reply = self
                .inner
                .transport
                .send_with(Method::GET, url.clone(), None, etag.as_deref())
                .await?;
            if pages.is_empty() {
                let links: Vec<&str> = reply
                    .headers
                    .get_all("link")
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .collect();
                first_links = links.join(", ");
            }
            let page = match (reply.status.as_u16(), cached) {
                (304, Some(c)) => c,
                _ => {
                    let path = self.inner.transport.display_path(&url);
                    let repos: Vec<Repo> =
                        decode(Method::GET, &path, &reply, |b| serde_json::from_slice(b))?;
                    CachedPage {
                        url: url.to_string(),
                        etag: reply
                            .headers
                            .get("etag")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_string(),
                        next: self.next_page(&url, &reply, &[])?.map(|u| u.to_string()),
                        items: repos,
                    }
                }
            };
            items.extend(page.items.iter().cloned());
            let next = page.next.clone();
            pages.push(page);
            let Some(next) = next else { break };
            let next = self.url_for_absolute(&next, &url)?;
            // The first page names the last by number: ask for all the others at once.
            if pages.len() == 1 {
                if let Some(urls) = numbered_pages(&next, &first_links) {
                    let wanted = {
                        let cache = self.inner.listings.lock();
                        urls.into_iter()
                            .map(|u| {
                                let cached = cache.page(&key, u.as_str()).cloned();
                                (u, cached)
                            })
                            .collect()
                    };
                    if let Some(rest) = self.pages_at_once(wanted, PAGES_AT_ONCE).await? {
                        items.extend(rest.iter().flat_map(|p| p.items.iter().cloned()));
                        pages.extend(rest);
                        break;
                    }
                }
            }
            if pages.iter().any(|p| p.url == next.as_str()) {
                let path = self.inner.transport.display_path(&url);
                let msg = "pagination link loops back to a page already read".to_string();
                return Err(GitHubError::local(
                    ErrorKind::Decode,
                    Method::GET,
                    path,
                    msg,
                ));
            }
            url = next;
        }
        if pages.iter().all(|p| !p.etag.is_empty()) {
            self.inner.listings.store(key, pages);
        }
        Ok(items)
    }

    /// One page of a listing, conditional on its cached `ETag`.
    async fn listing_page(&self, url: Url, cached: Option<CachedPage>) -> Result<CachedPage> {
        let etag = cached.as_ref().map(|c| c.etag.clone());
        let reply = self
            .inner
            .transport
            .send_with(Method::GET, url.clone(), None, etag.as_deref())
            .await?;
        if let (304, Some(c)) = (reply.status.as_u16(), cached) {
            return Ok(c);
        }
        let path = self.inner.transport.display_path(&url);
        let items: Vec<Repo> = decode(Method::GET, &path, &reply, |b| serde_json::from_slice(b))?;
        let etag = reply.headers.get("etag").and_then(|v| v.to_str().ok());
        Ok(CachedPage {
            url: url.to_string(),
            etag: etag.unwrap_or_default().to_string(),
            next: self.next_page(&url, &reply, &[])?.map(|u| u.to_string()),
            items,
        })
    }

    /// Every cached page of a listing at once; `None` when there is no usable cache or the
    /// pages no longer chain up as they did (then the caller reads page after page).
    async fn relist_at_once(&self, key: &str) -> Result<Option<Vec<Repo>>> {
        let cached = self.inner.listings.lock().listings.get(key).cloned();
        let Some(cached) = cached.filter(|c| c.len() > 1 && c.iter().all(|p| !p.etag.is_empty()))
        else {
            return Ok(None);
        };
        let mut wanted = Vec::with_capacity(cached.len());
        for page in cached {
            match Url::parse(&page.url) {
                Ok(u) if self.inner.transport.on_api_origin(&u) => wanted.push((u, Some(page))),
                _ => return Ok(None),
            }
        }
        // Conditional requests: a 304 carries no body, so every page may be in flight.
        let at_once = wanted.len();
        let Some(pages) = self.pages_at_once(wanted, at_once).await? else {
            return Ok(None);
        };
        let items = pages.iter().flat_map(|p| p.items.iter().cloned()).collect();
        self.inner.listings.store(key.to_string(), pages);
        Ok(Some(items))
    }

    /// Pages of a listing asked for all at once (each conditional on its cached copy);
    /// `None` unless they chain up as GitHub's `Link` headers say, each `next` naming the
    /// page after it and the last naming none.
    async fn pages_at_once(
        &self,
        wanted: Vec<(Url, Option<CachedPage>)>,
        at_once: usize,
    ) -> Result<Option<Vec<CachedPage>>> {
        use futures::stream::{StreamExt as _, TryStreamExt as _};
        let pages: Vec<CachedPage> = futures::stream::iter(wanted)
            .map(|(url, cached)| self.listing_page(url, cached))
            .buffered(at_once.max(1))
            .try_collect()
            .await?;
        let chained = pages
            .windows(2)
            .all(|w| w[0].next.as_deref() == Some(w[1].url.as_str()))
            && pages.last().is_some_and(|p| p.next.is_none());
        Ok(chained.then_some(pages))
    }

    /// `GET /repos/{owner}/{repo}` (a renamed repository's 301 is followed).
    pub async fn get_repo(&self, owner: &str, repo: &str) -> Result<Repo> {
        let path = routes::path(&Method::GET, &["repos", owner, repo])?;
        self.inner.transport.get_json(&path).await
    }

    /// `GET /repos/{owner}/{repo}/environments?per_page=100`: the environments' names.
    pub async fn list_environments(&self, owner: &str, repo: &str) -> Result<Vec<String>> {
        #[derive(Deserialize)]
        struct Page {
            environments: Vec<Named>,
        }
        #[derive(Deserialize)]
        struct Named {
            name: String,
        }
        let path = routes::path(&Method::GET, &["repos", owner, repo, "environments"])?;
        self.paginate(format!("{path}?per_page=100"), |body| {
            serde_json::from_slice::<Page>(body)
                .map(|p| p.environments.into_iter().map(|e| e.name).collect())
        })
        .await
    }

    /// `GET {scope}/secrets/public-key`: the key values for this scope must be sealed with.
    pub async fn public_key(&self, scope: &SecretScope) -> Result<PublicKey> {
        let path = routes::secrets(&Method::GET, scope)?;
        self.inner
            .transport
            .get_json(&format!("{path}/public-key"))
            .await
    }

    /// `GET {scope}/secrets?per_page=100`, every page: names and timestamps, never values.
    pub async fn list_secrets(&self, scope: &SecretScope) -> Result<Vec<SecretMeta>> {
        #[derive(Deserialize)]
        struct Page {
            secrets: Vec<SecretMeta>,
        }
        let path = routes::secrets(&Method::GET, scope)?;
        self.paginate(format!("{path}?per_page=100"), |body| {
            serde_json::from_slice::<Page>(body).map(|p| p.secrets)
        })
        .await
    }

    /// `PUT {scope}/secrets/{name}`: creates (201) or updates (204) a secret.
    ///
    /// `encrypted_value` is the base64 sealed box made with the scope's public key, whose id
    /// is `key_id`. Organization scopes need `access` (their visibility, and the repository
    /// ids for `selected`); other scopes must pass `None`.
    ///
    /// Idempotent: sending the same body twice leaves the secret in the same state, which
    /// is why a timeout or 5xx is retried (the retry may report `Updated` where the lost
    /// first attempt had created the secret).
    pub async fn put_secret(
        &self,
        scope: &SecretScope,
        name: &str,
        encrypted_value: &str,
        key_id: &str,
        access: Option<&OrgAccess>,
    ) -> Result<PutOutcome> {
        self.put_secret_with_meta(scope, name, encrypted_value, key_id, access)
            .await
            .map(|r| r.outcome)
    }

    /// As [`Client::put_secret`], also returning GitHub's `x-github-request-id` (for audit
    /// records).
    pub async fn put_secret_with_meta(
        &self,
        scope: &SecretScope,
        name: &str,
        encrypted_value: &str,
        key_id: &str,
        access: Option<&OrgAccess>,
    ) -> Result<PutReceipt> {
        #[derive(Serialize)]
        struct Body<'a> {
            encrypted_value: &'a str,
            key_id: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            visibility: Option<&'static str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            selected_repository_ids: Option<&'a [u64]>,
        }
        let method = Method::PUT;
        let path = routes::secret(&method, scope, name)?;
        let (visibility, selected_repository_ids) = match (scope, access) {
            (SecretScope::Org { .. }, Some(a)) => (
                Some(a.visibility.as_str()),
                (a.visibility == Visibility::Selected)
                    .then_some(a.selected_repository_ids.as_slice()),
            ),
            (SecretScope::Org { .. }, None) => {
                let msg = "an organization secret needs its visibility";
                return Err(GitHubError::invalid_input(&method, path, msg));
            }
            (_, Some(_)) => {
                let msg = "visibility applies only to organization secrets";
                return Err(GitHubError::invalid_input(&method, path, msg));
            }
            (_, None) => (None, None),
        };
        let body = Body {
            encrypted_value,
            key_id,
            visibility,
            selected_repository_ids,
        };
        let reply = self
            .inner
            .transport
            .send_json(method.clone(), &path, &body)
            .await?;
        let outcome = match reply.status.as_u16() {
            201 => PutOutcome::Created,
            204 => PutOutcome::Updated,
            _ => return Err(unexpected_success(method, path, &reply)),
        };
        let request_id = reply
            .headers
            .get("x-github-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        Ok(PutReceipt {
            outcome,
            request_id,
        })
    }

    /// `PUT /orgs/{org}/{app}/secrets/{name}/repositories`: replaces the set of repositories
    /// that may use a `selected` organization secret (409 if its visibility is not `selected`).
    pub async fn set_selected_repos(
        &self,
        org: &str,
        app: App,
        name: &str,
        ids: &[u64],
    ) -> Result<()> {
        #[derive(Serialize)]
        struct Body<'a> {
            selected_repository_ids: &'a [u64],
        }
        let path = routes::selected_repos(&Method::PUT, org, app, name)?;
        self.inner
            .transport
            .send_json(
                Method::PUT,
                &path,
                &Body {
                    selected_repository_ids: ids,
                },
            )
            .await?;
        Ok(())
    }

    /// `GET /orgs/{org}/{app}/secrets/{name}/repositories`, every page: the ids of the
    /// repositories a `selected` organization secret is shared with.
    pub async fn list_selected_repos(&self, org: &str, app: App, name: &str) -> Result<Vec<u64>> {
        #[derive(Deserialize)]
        struct Page {
            total_count: usize,
            repositories: Vec<Id>,
        }
        #[derive(Deserialize)]
        struct Id {
            id: u64,
        }
        let path = routes::selected_repos(&Method::GET, org, app, name)?;
        // GitHub declares no `Link` header here: pages are asked for by number.
        let mut ids = Vec::new();
        for page in 1.. {
            let p: Page = self
                .inner
                .transport
                .get_json(&format!("{path}?per_page=100&page={page}"))
                .await?;
            let got = p.repositories.len();
            ids.extend(p.repositories.into_iter().map(|r| r.id));
            if got == 0 || ids.len() >= p.total_count {
                break;
            }
        }
        ids.sort_unstable();
        ids.dedup();
        Ok(ids)
    }

    /// The repositories the App's installation on `owner` can reach
    /// (`GET /installation/repositories` with that installation's token, every page).
    /// `Ok(None)` when the App is not installed there; an error without App auth.
    /// `repo_hint`: a repository of `owner`, to find the installation by when `owner` is no
    /// organization (`GET /repos/{owner}/{repo}/installation`).
    pub async fn installation_repos(
        &self,
        owner: &str,
        repo_hint: Option<&str>,
    ) -> Result<Option<InstallationRepos>> {
        let Some(app) = self.app_auth() else {
            return Err(GitHubError::local(
                ErrorKind::InvalidInput,
                Method::GET,
                "/installation/repositories".into(),
                "listing an installation's repositories needs GitHub App auth".into(),
            ));
        };
        let Some(installation) = app
            .installation_for(&self.inner.transport, owner, repo_hint)
            .await?
        else {
            return Ok(None);
        };
        #[derive(Deserialize)]
        struct Page {
            repositories: Vec<Repo>,
        }
        let listing = self.paginate(
            "/installation/repositories?per_page=100".to_string(),
            |body| serde_json::from_slice::<Page>(body).map(|p| p.repositories),
        );
        let repos = AS_INSTALLATION.scope(installation.id, listing).await?;
        let repos = repos
            .into_iter()
            .filter(|r| r.owner().eq_ignore_ascii_case(owner))
            .collect();
        Ok(Some(InstallationRepos {
            installation,
            repos,
        }))
    }

    /// `GET /rate_limit`: the `core` window (this call does not count against it).
    pub async fn rate_limit(&self) -> Result<RateLimitSnapshot> {
        let path = "/rate_limit";
        let overview: RateLimitOverview = self.inner.transport.get_json(path).await?;
        overview
            .resources
            .core
            .into_snapshot("core")
            .ok_or_else(|| {
                let msg = "the core reset time is out of range".to_string();
                GitHubError::local(ErrorKind::Decode, Method::GET, path.to_string(), msg)
            })
    }

    // ---- plumbing --------------------------------------------------------------------

    /// Fetches `first` and every page after it, following `Link: rel="next"` exactly as
    /// given. Refuses links to another origin (the token would go with them) and loops.
    pub(super) async fn paginate<T>(
        &self,
        first: String,
        extract: impl Fn(&[u8]) -> serde_json::Result<Vec<T>>,
    ) -> Result<Vec<T>> {
        let mut url = self.inner.transport.url_for(&Method::GET, &first)?;
        let mut visited = HashSet::new();
        let mut items = Vec::new();
        loop {
            visited.insert(url.to_string());
            let reply = self
                .inner
                .transport
                .send(Method::GET, url.clone(), None)
                .await?;
            let path = self.inner.transport.display_path(&url);
            items.extend(decode(Method::GET, &path, &reply, &extract)?);
            let visited_now: Vec<&str> = visited.iter().map(String::as_str).collect();
            match self.next_page(&url, &reply, &visited_now)? {
                Some(next) => url = next,
                None => return Ok(items),
            }
        }
    }

    /// The `Link: rel="next"` of a page, checked: same origin as the API, not visited yet.
    fn next_page(&self, url: &Url, reply: &Reply, visited: &[&str]) -> Result<Option<Url>> {
        let path = self.inner.transport.display_path(url);
        let links: Vec<&str> = reply
            .headers
            .get_all("link")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        let Some(next) = link::next(&links.join(", ")) else {
            return Ok(None);
        };
        let bad_link = |why: &str| {
            let msg = format!("pagination link {why}");
            GitHubError::decode(Method::GET, path.clone(), reply.status, &reply.headers, msg)
        };
        let next = url
            .join(&next)
            .map_err(|e| bad_link(&format!("is not a URL: {e}")))?;
        if !self.inner.transport.on_api_origin(&next) {
            return Err(bad_link(&format!(
                "leads off the API origin to {}",
                next.origin().ascii_serialization()
            )));
        }
        if visited.contains(&next.as_str()) {
            return Err(bad_link("loops back to a page already read"));
        }
        Ok(Some(next))
    }

    /// A cached absolute link, checked again against the API origin.
    fn url_for_absolute(&self, link: &str, from: &Url) -> Result<Url> {
        let url = Url::parse(link)
            .ok()
            .filter(|u| self.inner.transport.on_api_origin(u));
        url.ok_or_else(|| {
            let msg = "a cached pagination link is not on the API origin".to_string();
            GitHubError::local(
                ErrorKind::Decode,
                Method::GET,
                self.inner.transport.display_path(from),
                msg,
            )
        })
    }
}

fn unexpected_success(method: Method, path: String, reply: &Reply) -> GitHubError {
    let mut err = GitHubError::decode(
        method,
        path,
        reply.status,
        &reply.headers,
        "GitHub documents only 201 (created) and 204 (updated) here".to_string(),
    );
    err.kind = ErrorKind::UnexpectedStatus;
    err
}

/// Listings with more pages than this are read page after page.
const MAX_PAGES_AT_ONCE: usize = 1_000;

/// Pages of one listing read for the first time in flight at once. Each connection that carried a page keeps a
/// read buffer the size of one (hundreds of KB) while it idles in the pool: ten at a
/// time reads 100 pages in ten round trips and keeps a few MB, not tens.
const PAGES_AT_ONCE: usize = 10;

/// The URLs of pages 2 to N when the first page's `Link` header gives `next` as page 2 and
/// `last` as page N of the same URL (GitHub's page-numbered listings); `None` otherwise
/// (cursor pagination, an odd link), and then the listing is read page after page.
fn numbered_pages(next: &Url, links: &str) -> Option<Vec<Url>> {
    let last = link::parse(links).into_iter().find(|l| l.has_rel("last"))?;
    let last = next.join(&last.target).ok()?;
    let page_of = |u: &Url| {
        u.query_pairs()
            .find(|(k, _)| k == "page")
            .and_then(|(_, v)| v.parse::<usize>().ok())
    };
    if page_of(next)? != 2 {
        return None;
    }
    let n = page_of(&last)?;
    if !(2..=MAX_PAGES_AT_ONCE).contains(&n) {
        return None;
    }
    let with_page = |p: usize| {
        let pairs: Vec<(String, String)> = next
            .query_pairs()
            .map(|(k, v)| {
                let v = if k == "page" {
                    p.to_string()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        let mut u = next.clone();
        u.query_pairs_mut().clear().extend_pairs(pairs);
        u
    };
    // Only when the links read back exactly as built (same parameters, same encoding).
    if with_page(2) != *next || with_page(n) != last {
        return None;
    }
    Some((2..=n).map(with_page).collect())
}

#[cfg(test)]
mod numbered_pages_tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).expect("url")
    }

    #[test]
    fn pages_two_to_last_are_named_from_githubs_links() {
        let next = url("https://api.github.com/organizations/7/repos?per_page=100&type=all&page=2");
        let links = "<https://api.github.com/organizations/7/repos?per_page=100&type=all&page=2>; rel=\"next\", \
                     <https://api.github.com/organizations/7/repos?per_page=100&type=all&page=4>; rel=\"last\"";
        let pages: Vec<String> = numbered_pages(&next, links)
            .expect("numbered")
            .iter()
            .map(Url::to_string)
            .collect();
        assert_eq!(
            pages,
            [2, 3, 4].map(|p| format!(
                "https://api.github.com/organizations/7/repos?per_page=100&type=all&page={p}"
            ))
        );
    }

    #[test]
    fn anything_but_plain_page_numbers_is_read_page_after_page() {
        let next = url("https://api.github.com/orgs/acme/repos?per_page=100&page=2");
        // No `last` (cursor pagination gives none).
        assert_eq!(
            numbered_pages(
                &next,
                "<https://api.github.com/orgs/acme/repos?per_page=100&page=2>; rel=\"next\""
            ),
            None
        );
        // `last` with other parameters than `next`.
        let odd = "<https://api.github.com/orgs/acme/repos?per_page=50&page=9>; rel=\"last\"";
        assert_eq!(numbered_pages(&next, odd), None);
        // `next` that is not page 2.
        let cursor = url("https://api.github.com/orgs/acme/repos?per_page=100&after=Y3Vyc29y");
        let last = "<https://api.github.com/orgs/acme/repos?per_page=100&page=3>; rel=\"last\"";
        assert_eq!(numbered_pages(&cursor, last), None);
        // More pages than are asked for at once.
        let huge = "<https://api.github.com/orgs/acme/repos?per_page=100&page=5000>; rel=\"last\"";
        assert_eq!(numbered_pages(&next, huge), None);
        // `last` on another host.
        let elsewhere = "<https://evil.example/orgs/acme/repos?per_page=100&page=3>; rel=\"last\"";
        assert_eq!(numbered_pages(&next, elsewhere), None);
    }
}
