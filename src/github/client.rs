//! The GitHub REST client: one method per endpoint rotor uses, with retries and a concurrency bound.

use std::sync::Arc;

use reqwest::{Method, Url};
use serde::{Deserialize, Serialize};

use super::app::{AppAuth, AS_INSTALLATION};
use super::auth::TokenSource;
use super::cache::ListingStore;
use super::config::{normalize_api_url, ConfigError, GitHubConfig};
use super::error::{ErrorKind, GitHubError};
use super::governor::{GovernorSettings, GovernorStats};
use super::identity::AuthIdentity;
use super::listing;
use super::rate_limit::{RateLimitOverview, RateLimitSnapshot};
use super::routes;
use super::transport::{Reply, Settings, Transport};
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
        let mut items = Vec::new();
        self.list_org_repos_pages(org, |page| items.extend_from_slice(page))
            .await?;
        Ok(items)
    }

    /// [`Client::list_org_repos`], handing each page's repositories to `on_page` as they
    /// arrive, in order, instead of collecting them.
    ///
    /// A page read on its own is handed over once it has arrived; pages asked for at once
    /// (a relisting, or pages 2..N of a first listing) when all of them have and they
    /// chain up. No page is handed over twice; on an error, the pages handed over so far
    /// were only part of the listing.
    pub async fn list_org_repos_pages(
        &self,
        org: &str,
        mut on_page: impl FnMut(&[Repo]),
    ) -> Result<()> {
        let path = routes::path(&Method::GET, &["orgs", org, "repos"])?;
        let transport = &self.inner.transport;
        let first = transport.url_for(&Method::GET, &format!("{path}?per_page=100&type=all"))?;
        listing::repos(transport, &self.inner.listings, first, &mut on_page).await
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
        listing::paginate(
            &self.inner.transport,
            format!("{path}?per_page=100"),
            |body| {
                serde_json::from_slice::<Page>(body)
                    .map(|p| p.environments.into_iter().map(|e| e.name).collect())
            },
        )
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
        listing::paginate(
            &self.inner.transport,
            format!("{path}?per_page=100"),
            |body| serde_json::from_slice::<Page>(body).map(|p| p.secrets),
        )
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
        let pages = listing::paginate(
            &self.inner.transport,
            "/installation/repositories?per_page=100".to_string(),
            |body| serde_json::from_slice::<Page>(body).map(|p| p.repositories),
        );
        let repos = AS_INSTALLATION.scope(installation.id, pages).await?;
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
