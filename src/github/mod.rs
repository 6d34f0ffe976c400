//! The GitHub client: the only module that knows GitHub's HTTP and JSON.

// A `GitHubError` carries its request and GitHub's answer (about 160 bytes). It is built
// once per failed network call, so boxing it would only make matching on it clumsier.
#![allow(clippy::result_large_err)]

pub mod app;
pub mod auth;
pub mod cache;
pub mod client;
pub mod config;
mod endpoints;
pub mod error;
pub mod governor;
pub mod headers;
pub mod identity;
pub mod limits;
pub mod link;
mod listing;
pub mod rate_limit;
pub mod retry;
pub mod routes;
pub(crate) mod transport;

#[cfg(test)]
mod tests;

pub use app::{AppConfig, AppKey};
pub use auth::{Auth, TokenSource};
pub use client::Client;
pub use config::{ConfigError, GitHubConfig, Limits};
pub use endpoints::{PutReceipt, RunnerToken, ALWAYS_RETURNS_RUN, MAX_LOG_BYTES};
pub use error::{ErrorKind, GitHubError};
pub use governor::{Governor, GovernorSettings, GovernorStats};
pub use identity::AuthIdentity;
pub use rate_limit::RateLimitSnapshot;
pub use retry::{Decision, RetryPolicy};
