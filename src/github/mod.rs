//! The GitHub client: the only module that knows GitHub's HTTP and JSON.

// A `GitHubError` carries its request and GitHub's answer (about 160 bytes). It is built
// once per failed network call, so boxing it would only make matching on it clumsier.
#![allow(clippy::result_large_err)]

pub mod auth;
pub mod client;
pub mod config;
pub mod error;
pub mod headers;
pub mod link;
pub mod rate_limit;
pub mod retry;
pub mod routes;
pub mod types;

#[cfg(test)]
mod tests;

pub use auth::Auth;
pub use client::{Client, PutReceipt};
pub use config::{ConfigError, GitHubConfig};
pub use error::{ErrorKind, GitHubError};
pub use rate_limit::RateLimitSnapshot;
pub use retry::{Decision, RetryPolicy};
pub use types::*;
