//! How requests authenticate; the seam where GitHub App installation tokens will plug in.

use reqwest::header::HeaderValue;
use secrecy::{ExposeSecret, SecretString};

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
                let mut v =
                    HeaderValue::from_str(&format!("Bearer {}", token.expose_secret().trim()))
                        .map_err(|_| InvalidToken)?;
                v.set_sensitive(true);
                Ok(v)
            }
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
