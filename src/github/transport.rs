//! Sending requests to GitHub: the URL, the headers every request carries, the credential
//! (from an [`Authorizer`]), the governor's ticket and the one retry loop. What a request
//! means is the endpoints' business; where its credential comes from is the authorizer's.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use futures::future::BoxFuture;
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, IF_NONE_MATCH};
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::error::{ErrorKind, GitHubError};
use super::governor::{Governor, GovernorSettings, GovernorStats};
use super::identity::{AuthIdentity, Authorization};
use super::rate_limit::RateLimitSnapshot;
use super::retry::{self, Decision, RetryPolicy};

type Result<T> = std::result::Result<T, GitHubError>;

/// What the transport asks before every attempt: the credential a request goes with.
///
/// Implemented by the token sources (a constant token, or a GitHub App); an App may send
/// requests of its own through the transport it is handed, to find installations and mint
/// their tokens. The transport knows nothing else of them.
pub(crate) trait Authorizer: Send + Sync {
    /// The header and identity for a request to `path` (relative to the API base).
    fn authorize<'a>(
        &'a self,
        transport: &'a Transport,
        method: &'a Method,
        path: &'a str,
    ) -> BoxFuture<'a, Result<Authorization>>;

    /// Who a request to `path` is sent as (an App may look the installation up first).
    fn identity<'a>(
        &'a self,
        transport: &'a Transport,
        path: &'a str,
    ) -> BoxFuture<'a, Result<AuthIdentity>>;

    /// After a 401: forget the credential used for `path`. True when a retry with a fresh
    /// one makes sense (never for a constant token).
    fn invalidate(&self, path: &str) -> bool;

    /// The budget a request draws from when no finer identity is known: the token's, or
    /// with App auth the App's own bucket (installations have buckets of their own).
    fn budget_identity(&self) -> AuthIdentity;
}

/// What a transport is built with.
pub(crate) struct Settings<'a> {
    /// API base, no trailing slash.
    pub base: String,
    /// `base`, parsed.
    pub base_url: Url,
    pub timeout: Duration,
    pub user_agent: &'a str,
    pub api_version: &'a str,
    pub retry: RetryPolicy,
    pub governor: GovernorSettings,
}

/// Sends requests to one API base with one credential source. Cheap to clone: clones share
/// one connection pool, one governor and one rate-limit record.
#[derive(Clone)]
pub(crate) struct Transport {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    /// The same, following no redirect: for endpoints that answer with one (job logs).
    manual: reqwest::Client,
    /// No default headers, no credential: downloads from the hosts GitHub redirects to.
    plain: reqwest::Client,
    /// API base, no trailing slash; paths are appended to it.
    base: String,
    base_url: Url,
    /// `X-GitHub-Api-Version` sent with every request.
    api_version: String,
    auth: Arc<dyn Authorizer>,
    timeout: Duration,
    retry: RetryPolicy,
    /// Concurrency, points, primary budget and pauses, per credential.
    governor: Governor,
    last_rate_limit: Mutex<Option<RateLimitSnapshot>>,
}

/// A successful response, read in full.
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Vec<u8>,
}

impl Transport {
    /// Builds the HTTP client; fails (with the reason) on an unusable version or user agent.
    pub(crate) fn new(
        settings: Settings<'_>,
        auth: Arc<dyn Authorizer>,
    ) -> std::result::Result<Self, String> {
        let mut headers = HeaderMap::new();
        headers.insert(
            ACCEPT,
            HeaderValue::from_static("application/vnd.github+json"),
        );
        headers.insert(
            "x-github-api-version",
            HeaderValue::from_str(settings.api_version)
                .map_err(|_| "the API version is not a valid header value".to_string())?,
        );
        // GitHub redirects a renamed repository's routes to its new name on the same host;
        // a redirect anywhere else is refused, so the bearer token never goes there.
        let http = reqwest::Client::builder()
            .user_agent(settings.user_agent)
            .default_headers(headers.clone())
            .redirect(crate::net::same_origin_redirects("GitHub"))
            .connect_timeout(settings.timeout)
            .timeout(settings.timeout)
            .build()
            .map_err(|e| e.without_url().to_string())?;
        let manual = reqwest::Client::builder()
            .user_agent(settings.user_agent)
            .default_headers(headers)
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(settings.timeout)
            .timeout(settings.timeout)
            .build()
            .map_err(|e| e.without_url().to_string())?;
        let plain = reqwest::Client::builder()
            .user_agent(settings.user_agent)
            .redirect(reqwest::redirect::Policy::limited(3))
            .connect_timeout(settings.timeout)
            .timeout(settings.timeout)
            .build()
            .map_err(|e| e.without_url().to_string())?;
        Ok(Transport {
            inner: Arc::new(Inner {
                http,
                manual,
                plain,
                base: settings.base,
                base_url: settings.base_url,
                api_version: settings.api_version.to_string(),
                auth,
                timeout: settings.timeout,
                retry: settings.retry,
                governor: Governor::new(settings.governor),
                last_rate_limit: Mutex::new(None),
            }),
        })
    }

    /// The REST API version requests ask for (`2022-11-28`, `2026-03-10`, ...).
    pub(crate) fn api_version(&self) -> &str {
        &self.inner.api_version
    }

    /// The API base URL requests go to.
    pub(crate) fn api_url(&self) -> &str {
        &self.inner.base
    }

    /// Whether `url` is on the API's origin (the only one the credential may go to).
    pub(crate) fn on_api_origin(&self, url: &Url) -> bool {
        url.origin() == self.inner.base_url.origin()
    }

    /// Who a request to `path` (relative to the API base) is sent as.
    pub(crate) async fn identity(&self, path: &str) -> Result<AuthIdentity> {
        self.inner.auth.identity(self, path).await
    }

    /// The `x-ratelimit-*` values of the most recent response that carried them.
    pub(crate) fn last_rate_limit(&self) -> Option<RateLimitSnapshot> {
        self.inner
            .last_rate_limit
            .lock()
            .map(|g| g.clone())
            .unwrap_or(None)
    }

    /// What the governor keeps these requests to.
    pub(crate) fn governor_settings(&self) -> &GovernorSettings {
        self.inner.governor.settings()
    }

    /// What the governor has made these requests wait so far.
    pub(crate) fn governor_identities(&self) -> Vec<crate::github::governor::IdentityStatus> {
        self.inner.governor.identities()
    }

    pub(crate) fn governor_stats(&self) -> GovernorStats {
        self.inner.governor.stats(&self.budget_identity())
    }

    /// The budget a request draws from. GitHub counts its limits per token (per
    /// installation with App auth): each distinct credential gets its own governor bucket.
    /// With a single token that is one identity per client; with App auth, each
    /// installation's requests are governed under `installation:{id}` (see `send_once`) and
    /// this names the App's own bucket.
    fn budget_identity(&self) -> String {
        self.inner.auth.budget_identity().to_string()
    }

    pub(crate) async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        let url = self.url_for(&Method::GET, path)?;
        let reply = self.send(Method::GET, url, None).await?;
        decode(Method::GET, path, &reply, |b| serde_json::from_slice(b))
    }

    pub(crate) async fn send_json<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: &B,
    ) -> Result<Reply> {
        let url = self.url_for(&method, path)?;
        let bytes =
            serde_json::to_vec(body).map_err(|e| GitHubError::invalid_input(&method, path, e))?;
        self.send(method, url, Some(bytes)).await
    }

    pub(crate) fn url_for(&self, method: &Method, path_and_query: &str) -> Result<Url> {
        Url::parse(&format!("{}{}", self.inner.base, path_and_query))
            .map_err(|e| GitHubError::invalid_input(method, path_and_query, e))
    }

    /// The URL's path and query relative to the API base, as errors and logs show it.
    pub(crate) fn display_path(&self, url: &Url) -> String {
        let base_path = self.inner.base_url.path().trim_end_matches('/');
        let path = url.path();
        let path = path
            .strip_prefix(base_path)
            .filter(|p| p.starts_with('/'))
            .unwrap_or(path);
        match url.query() {
            Some(q) => format!("{path}?{q}"),
            None => path.to_string(),
        }
    }

    /// Sends a request, retrying per the policy; holds a concurrency permit only while a
    /// request is in flight, never while waiting to retry.
    pub(crate) async fn send(
        &self,
        method: Method,
        url: Url,
        body: Option<Vec<u8>>,
    ) -> Result<Reply> {
        self.send_with(method, url, body, None).await
    }

    /// [`Transport::send`], conditional on `etag` when given (a `304` is then a success).
    pub(crate) async fn send_with(
        &self,
        method: Method,
        url: Url,
        body: Option<Vec<u8>>,
        etag: Option<&str>,
    ) -> Result<Reply> {
        self.send_opts(method, url, body, etag, false).await
    }

    /// `GET path`, which GitHub answers with a redirect: where it points (not followed, so
    /// the credential never goes there).
    pub(crate) async fn redirect_location(&self, path: &str) -> Result<Url> {
        let url = self.url_for(&Method::GET, path)?;
        let reply = self
            .send_opts(Method::GET, url.clone(), None, None, true)
            .await?;
        let location = reply
            .headers
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|l| url.join(l).ok());
        location.ok_or_else(|| {
            GitHubError::decode(
                Method::GET,
                path.to_string(),
                reply.status,
                &reply.headers,
                "expected a redirect with a Location header".to_string(),
            )
        })
    }

    /// Downloads `url` (a host GitHub redirected to) with no credential and no GitHub
    /// header; keeps at most the last `cap` bytes of the body.
    pub(crate) async fn download(&self, url: Url, cap: usize) -> Result<Vec<u8>> {
        let shown = format!("{}{}", url.host_str().unwrap_or(""), url.path());
        let transport =
            |e: reqwest::Error| GitHubError::from_reqwest(Method::GET, shown.clone(), e);
        let response = self
            .inner
            .plain
            .get(url.clone())
            .timeout(self.inner.timeout)
            .send()
            .await
            .map_err(transport)?;
        let status = response.status();
        let headers = response.headers().clone();
        if !status.is_success() {
            let body = read_body(response, &Method::GET, &shown, status, &headers).await?;
            return Err(GitHubError::from_response(
                Method::GET,
                shown.clone(),
                status,
                &headers,
                &body,
                Utc::now(),
            ));
        }
        // Streamed, keeping at most the last `cap` bytes (logs can be large).
        let mut response = response;
        let mut body: Vec<u8> = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(transport)? {
            body.extend_from_slice(&chunk);
            if body.len() > cap.saturating_mul(2).max(64 * 1024) {
                body.drain(..body.len() - cap);
            }
        }
        if body.len() > cap {
            body.drain(..body.len() - cap);
        }
        Ok(body)
    }

    async fn send_opts(
        &self,
        method: Method,
        url: Url,
        body: Option<Vec<u8>>,
        etag: Option<&str>,
        manual: bool,
    ) -> Result<Reply> {
        let path = self.display_path(&url);
        let mut attempt = 0u32;
        let mut reauthorized = false;
        loop {
            attempt += 1;
            let sent = self
                .send_once(&method, &url, &path, body.clone(), etag, manual)
                .await;
            let mut err = match sent {
                Ok(reply) => return Ok(reply),
                Err(err) => err,
            };
            err.attempts = attempt;
            // An installation token GitHub no longer takes: mint a new one, once.
            if err.kind == ErrorKind::Unauthorized
                && !reauthorized
                && self.inner.auth.invalidate(&path)
            {
                reauthorized = true;
                tracing::info!(method = %method, path = %path, "installation token refused; minting a new one");
                continue;
            }
            match self
                .inner
                .retry
                .decide(attempt, &err, Utc::now(), retry::jitter())
            {
                Decision::Retry(wait) => {
                    if matches!(err.kind, ErrorKind::RateLimited { .. }) {
                        // GitHub asked this credential to wait: every request of it waits.
                        let identity = match self.identity(&path).await {
                            Ok(identity) => identity.to_string(),
                            Err(_) => self.budget_identity(),
                        };
                        self.inner.governor.pause(&identity, wait);
                    }
                    tracing::warn!(
                        method = %method, path = %path, attempt, wait_ms = wait.as_millis() as u64,
                        status = err.status, kind = ?err.kind, request_id = err.request_id.as_deref(),
                        "GitHub request failed; retrying"
                    );
                    tokio::time::sleep(wait).await;
                }
                Decision::GiveUp => {
                    if attempt > 1 {
                        tracing::warn!(
                            method = %method, path = %path, attempts = attempt, status = err.status,
                            kind = ?err.kind, "GitHub request failed; retries exhausted"
                        );
                    }
                    return Err(err);
                }
            }
        }
    }

    async fn send_once(
        &self,
        method: &Method,
        url: &Url,
        path: &str,
        body: Option<Vec<u8>>,
        etag: Option<&str>,
        manual: bool,
    ) -> Result<Reply> {
        // Credentials first, then the governor's ticket: minting a token sends requests of
        // its own, which must never wait for tickets held by requests waiting for that token.
        // The ticket draws from the budget of the credential the request is sent with.
        let (authorization, ticket) = loop {
            let authorization = self.inner.auth.authorize(self, method, path).await?;
            let ticket = self
                .inner
                .governor
                .admit(&authorization.identity.to_string(), method)
                .await;
            if authorization.is_fresh() {
                break (authorization, ticket);
            }
        };
        let http = if manual {
            &self.inner.manual
        } else {
            &self.inner.http
        };
        let mut request = http
            .request(method.clone(), url.clone())
            .timeout(self.inner.timeout);
        if let Some(value) = authorization.header {
            request = request.header(AUTHORIZATION, value);
        }
        if let Some(body) = body {
            request = request.header(CONTENT_TYPE, "application/json").body(body);
        }
        if let Some(etag) = etag.filter(|e| !e.is_empty()) {
            request = request.header(IF_NONE_MATCH, etag);
        }
        let transport =
            |e: reqwest::Error| GitHubError::from_reqwest(method.clone(), path.to_string(), e);
        let response = request.send().await.map_err(transport)?;
        let status = response.status();
        let headers = response.headers().clone();
        // The ticket learns the headers whatever becomes of the body.
        ticket.finish(Some(&headers));
        let body = read_body(response, method, path, status, &headers).await?;
        if let Some(snapshot) = RateLimitSnapshot::from_headers(&headers) {
            if let Ok(mut last) = self.inner.last_rate_limit.lock() {
                *last = Some(snapshot);
            }
        }
        tracing::debug!(
            method = %method, path = %path, status = status.as_u16(),
            request_id = headers.get("x-github-request-id").and_then(|v| v.to_str().ok()),
            "GitHub request"
        );
        if status.is_success()
            || (status == StatusCode::NOT_MODIFIED && etag.is_some())
            || (manual && status.is_redirection())
        {
            Ok(Reply {
                status,
                headers,
                body,
            })
        } else {
            Err(GitHubError::from_response(
                method.clone(),
                path.to_string(),
                status,
                &headers,
                &body,
                Utc::now(),
            ))
        }
    }
}

/// A reply's body parsed by `parse`; a body of another shape is a `Decode` error.
pub(crate) fn decode<T>(
    method: Method,
    path: &str,
    reply: &Reply,
    parse: impl Fn(&[u8]) -> serde_json::Result<T>,
) -> Result<T> {
    parse(&reply.body).map_err(|e| {
        GitHubError::decode(
            method,
            path.to_string(),
            reply.status,
            &reply.headers,
            e.to_string(),
        )
    })
}

/// Reads a GitHub answer's body, refusing one over `net::GITHUB_MAX_BODY`.
async fn read_body(
    response: reqwest::Response,
    method: &Method,
    path: &str,
    status: StatusCode,
    headers: &reqwest::header::HeaderMap,
) -> Result<Vec<u8>> {
    match crate::net::read_capped(response, crate::net::GITHUB_MAX_BODY).await {
        Ok(body) => Ok(body.to_vec()),
        Err(crate::net::ReadError::Http(e)) => Err(GitHubError::from_reqwest(
            method.clone(),
            path.to_string(),
            e,
        )),
        Err(crate::net::ReadError::TooLarge(t)) => Err(GitHubError::decode(
            method.clone(),
            path.to_string(),
            status,
            headers,
            format!("GitHub's answer was refused: {t}"),
        )),
    }
}
