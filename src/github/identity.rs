//! Who a request is sent as, and the `Authorization` header it carries.

use std::time::Instant;

use reqwest::header::HeaderValue;

/// Who a request is sent as; the key a rate governor groups requests by.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AuthIdentity {
    /// No credentials.
    Anonymous,
    /// A personal, OAuth or Actions token (one budget).
    Token,
    /// The GitHub App itself (JWT).
    App,
    /// One installation of the App (its own token and its own rate budget).
    Installation(u64),
}

impl std::fmt::Display for AuthIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuthIdentity::Anonymous => f.write_str("anonymous"),
            AuthIdentity::Token => f.write_str("token"),
            AuthIdentity::App => f.write_str("app"),
            AuthIdentity::Installation(id) => write!(f, "installation:{id}"),
        }
    }
}

/// The `Authorization` header and identity a request is sent with.
pub struct Authorization {
    pub header: Option<HeaderValue>,
    pub identity: AuthIdentity,
    /// After this instant the header must not be sent any more (installation tokens).
    pub valid_until: Option<Instant>,
}

impl Authorization {
    /// Whether the header may still be sent now.
    pub fn is_fresh(&self) -> bool {
        self.valid_until.is_none_or(|t| Instant::now() < t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_read_as_rate_governor_keys() {
        assert_eq!(AuthIdentity::Installation(9).to_string(), "installation:9");
        assert_eq!(AuthIdentity::Token.to_string(), "token");
        assert_eq!(AuthIdentity::App.to_string(), "app");
    }
}
