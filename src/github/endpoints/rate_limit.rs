//! The rate-limit endpoint.

use reqwest::Method;

use crate::github::client::Client;
use crate::github::error::{ErrorKind, GitHubError};
use crate::github::rate_limit::{RateLimitOverview, RateLimitSnapshot};

type Result<T> = std::result::Result<T, GitHubError>;

impl Client {
    /// `GET /rate_limit`: the `core` window (this call does not count against it).
    pub async fn rate_limit(&self) -> Result<RateLimitSnapshot> {
        let path = "/rate_limit";
        let overview: RateLimitOverview = self.transport().get_json(path).await?;
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
