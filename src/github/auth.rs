//! How requests authenticate: one constant token, or a GitHub App whose installation
//! tokens are chosen per request by the owner the request is about.

use std::sync::Arc;

use futures::future::BoxFuture;
use reqwest::header::HeaderValue;
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};

use super::app::AppAuth;
use super::error::GitHubError;
use super::identity::{AuthIdentity, Authorization};
use super::transport::{Authorizer, Transport};

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

impl Authorizer for TokenSource {
    fn authorize<'a>(
        &'a self,
        transport: &'a Transport,
        method: &'a Method,
        path: &'a str,
    ) -> BoxFuture<'a, Result<Authorization, GitHubError>> {
        match self {
            TokenSource::Static(None) => Box::pin(std::future::ready(Ok(Authorization {
                header: None,
                identity: AuthIdentity::Anonymous,
                valid_until: None,
            }))),
            TokenSource::Static(Some(auth)) => {
                let authorization = auth
                    .header_value()
                    .map_err(|e| GitHubError::invalid_input(method, path, e))
                    .map(|header| Authorization {
                        header: Some(header),
                        identity: AuthIdentity::Token,
                        valid_until: None,
                    });
                Box::pin(std::future::ready(authorization))
            }
            TokenSource::App(app) => app.authorize(transport, method, path),
        }
    }

    fn identity<'a>(
        &'a self,
        transport: &'a Transport,
        path: &'a str,
    ) -> BoxFuture<'a, Result<AuthIdentity, GitHubError>> {
        match self {
            TokenSource::Static(None) => Box::pin(std::future::ready(Ok(AuthIdentity::Anonymous))),
            TokenSource::Static(Some(_)) => Box::pin(std::future::ready(Ok(AuthIdentity::Token))),
            TokenSource::App(app) => app.identity(transport, path),
        }
    }

    fn invalidate(&self, path: &str) -> bool {
        match self {
            TokenSource::Static(_) => false,
            TokenSource::App(app) => app.invalidate(path),
        }
    }

    fn budget_identity(&self) -> AuthIdentity {
        match self {
            TokenSource::Static(Some(_)) => AuthIdentity::Token,
            TokenSource::Static(None) => AuthIdentity::Anonymous,
            TokenSource::App(app) => app.budget_identity(),
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
