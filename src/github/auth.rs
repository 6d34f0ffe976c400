//! How requests authenticate: one constant token, or a GitHub App whose installation
//! tokens are chosen per request by the owner the request is about.

use std::sync::Arc;

use reqwest::header::HeaderValue;
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};

use super::app::AppAuth;
use super::client::Client;
use super::error::GitHubError;
use super::identity::{AuthIdentity, Authorization};

/// The credential sent with every request.
///
/// Today a bearer token (a PAT, `GITHUB_TOKEN`, or an installation token obtained
/// elsewhere). GitHub App auth will add a variant holding the app's key and installation,
/// whose header value is minted and refreshed before expiry; callers of the client do not
/// change when it does.
pub enum Auth {
    Token(SecretString),
}

/// The token cannot be sent as an HTTP header (it holds control characters or non-ASCII).
#[derive(Debug, thiserror::Error)]
#[error("the GitHub token is not a valid HTTP header value (it must be printable ASCII)")]
pub struct InvalidToken;

impl Auth {
    /// The `Authorization` header value, marked sensitive so HTTP internals never print it.
    pub fn header_value(&self) -> Result<HeaderValue, InvalidToken> {
        match self {
            Auth::Token(token) => {
                let bearer =
                    zeroize::Zeroizing::new(format!("Bearer {}", token.expose_secret().trim()));
                let mut v = HeaderValue::from_str(&bearer).map_err(|_| InvalidToken)?;
                v.set_sensitive(true);
                Ok(v)
            }
        }
    }
}

/// Where each request's `Authorization` header comes from.
///
/// A token (or nothing) is the same for every request. A GitHub App maps each request to
/// the installation of the owner it is about (`/repos/{owner}/...`, `/orgs/{org}/...`), or
/// to the App's own JWT for App endpoints; see [`super::app`].
#[derive(Debug)]
pub enum TokenSource {
    Static(Option<Auth>),
    App(Arc<AppAuth>),
}

impl TokenSource {
    /// The header and identity for a request to `path` (relative to the API base).
    pub async fn authorize(
        &self,
        client: &Client,
        method: &Method,
        path: &str,
    ) -> Result<Authorization, GitHubError> {
        match self {
            TokenSource::Static(None) => Ok(Authorization {
                header: None,
                identity: AuthIdentity::Anonymous,
                valid_until: None,
            }),
            TokenSource::Static(Some(auth)) => {
                let header = auth
                    .header_value()
                    .map_err(|e| GitHubError::invalid_input(method, path, e))?;
                Ok(Authorization {
                    header: Some(header),
                    identity: AuthIdentity::Token,
                    valid_until: None,
                })
            }
            TokenSource::App(app) => app.authorize(client, method, path).await,
        }
    }

    /// Who a request to `path` is sent as (an App may look the installation up first).
    pub async fn identity(&self, client: &Client, path: &str) -> Result<AuthIdentity, GitHubError> {
        match self {
            TokenSource::Static(None) => Ok(AuthIdentity::Anonymous),
            TokenSource::Static(Some(_)) => Ok(AuthIdentity::Token),
            TokenSource::App(app) => app.identity(client, path).await,
        }
    }

    /// After a 401: forget the installation token used for `path`. True when a retry with
    /// a fresh token makes sense (never for a constant token).
    pub fn invalidate(&self, path: &str) -> bool {
        match self {
            TokenSource::Static(_) => false,
            TokenSource::App(app) => app.invalidate(path),
        }
    }
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::Token(_) => f.write_str("Auth::Token(<redacted>)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_is_bearer_and_sensitive_and_debug_hides_the_token() {
        let auth = Auth::Token(SecretString::from("ghp_abc123"));
        let v = auth.header_value().unwrap();
        assert_eq!(v.to_str().unwrap(), "Bearer ghp_abc123");
        assert!(v.is_sensitive());
        assert!(!format!("{auth:?} {v:?}").contains("ghp_abc123"));
    }

    #[test]
    fn a_token_with_a_newline_is_refused_without_echoing_it() {
        let err = Auth::Token(SecretString::from("ghp_x\nInjected: 1"))
            .header_value()
            .unwrap_err();
        assert!(!err.to_string().contains("ghp_x"));
    }
}
