//! The GitHub REST client: one method per endpoint rotor uses, with retries and a concurrency bound.

use std::sync::Arc;

use reqwest::Url;

use super::app::AppAuth;
use super::auth::TokenSource;
use super::cache::ListingStore;
use super::config::{normalize_api_url, ConfigError, GitHubConfig};
use super::error::GitHubError;
use super::governor::{GovernorSettings, GovernorStats};
use super::identity::AuthIdentity;
use super::rate_limit::RateLimitSnapshot;
use super::transport::{Settings, Transport};

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
    /// Each identity's budget as the governor sees it now (with App auth: one per
    /// installation), for status pages.
    pub fn identities(&self) -> Vec<crate::github::governor::IdentityStatus> {
        self.inner.transport.governor_identities()
    }

    pub fn governor_stats(&self) -> GovernorStats {
        self.inner.transport.governor_stats()
    }

    /// What the endpoints send their requests with.
    pub(crate) fn transport(&self) -> &Transport {
        &self.inner.transport
    }

    /// Repository listings with their ETags.
    pub(crate) fn listings(&self) -> &ListingStore {
        &self.inner.listings
    }
}
