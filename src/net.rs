//! What rotor's HTTP clients share about where they may go: redirects that stay on the
//! origin they started from, whether a host is this machine, and response bodies read up
//! to a cap. Imports nothing of rotor.

use reqwest::Url;

/// Largest number of redirects a client follows.
pub const MAX_REDIRECTS: usize = 3;

/// Whether `a` and `b` have the same scheme, host and port (the port a scheme implies
/// counts as given).
pub fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}

/// The origin of `url` (`https://host:port`), for messages: never its path or query.
pub fn origin(url: &Url) -> String {
    match (url.host_str(), url.port()) {
        (Some(host), Some(port)) => format!("{}://{host}:{port}", url.scheme()),
        (Some(host), None) => format!("{}://{host}", url.scheme()),
        _ => url.scheme().to_string(),
    }
}

/// A redirect policy that follows at most `MAX_REDIRECTS` redirects, each to the origin the
/// request started from, and refuses any other: a credential header (`X-Vault-Token`,
/// GitHub's bearer token) is never sent to a host the operator did not name.
/// `what` names the service in the error ("Vault", "GitHub").
pub fn same_origin_redirects(what: &'static str) -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(move |attempt| {
        let first = attempt.previous().first().cloned();
        let Some(first) = first else {
            return attempt.follow();
        };
        if attempt.previous().len() > MAX_REDIRECTS {
            let n = attempt.previous().len();
            return attempt.error(format!(
                "{what} redirected more than {MAX_REDIRECTS} times ({n})"
            ));
        }
        if same_origin(&first, attempt.url()) {
            attempt.follow()
        } else {
            let to = origin(attempt.url());
            let from = origin(&first);
            attempt.error(format!(
                "{what} at {from} redirected to another origin ({to}); rotor does not follow it, \
                 so that its credential is never sent there"
            ))
        }
    })
}

/// Whether `host` names this machine: `localhost` (and names under it), or a loopback
/// address.
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.eq_ignore_ascii_case("localhost") || host.to_ascii_lowercase().ends_with(".localhost") {
        return true;
    }
    host.parse::<std::net::IpAddr>()
        .map(|ip| ip.is_loopback())
        .unwrap_or(false)
}

/// Whether `url` sends what it carries in the clear to another machine (`http://` to a host
/// that is not loopback).
pub fn is_plaintext_remote(url: &Url) -> bool {
    url.scheme() == "http" && !url.host_str().is_some_and(is_loopback_host)
}

/// A response body grew past the cap for its service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLarge {
    pub limit: usize,
}

impl std::fmt::Display for TooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the answer is larger than {} bytes", self.limit)
    }
}

/// Reads a response body into `out` (which the caller may wipe), refusing past `limit`
/// bytes: a declared `Content-Length` over it is refused before reading, and a body that
/// grows past it while streaming stops there.
pub async fn read_capped(
    mut response: reqwest::Response,
    limit: usize,
    out: &mut Vec<u8>,
) -> Result<(), ReadError> {
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return Err(ReadError::TooLarge(TooLarge { limit }));
    }
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| ReadError::Http(e.without_url()))?
    {
        if out.len() + chunk.len() > limit {
            return Err(ReadError::TooLarge(TooLarge { limit }));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(())
}

/// Why `read_capped` stopped.
#[derive(Debug)]
pub enum ReadError {
    TooLarge(TooLarge),
    Http(reqwest::Error),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::TooLarge(t) => t.fmt(f),
            ReadError::Http(e) => write!(f, "reading the answer failed: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn origins_compare_scheme_host_and_port() {
        assert!(same_origin(
            &url("https://vault:8200/v1/a"),
            &url("https://vault:8200/v1/b?x=1")
        ));
        assert!(same_origin(
            &url("https://api.github.com/a"),
            &url("https://api.github.com:443/b")
        ));
        assert!(!same_origin(
            &url("http://127.0.0.1:8200/"),
            &url("http://127.0.0.1:8201/")
        ));
        assert!(!same_origin(&url("https://vault/"), &url("http://vault/")));
        assert!(!same_origin(&url("https://vault/"), &url("https://evil/")));
    }

    #[test]
    fn loopback_names_and_addresses() {
        for host in [
            "localhost",
            "LOCALHOST",
            "a.localhost",
            "127.0.0.1",
            "127.8.9.1",
            "::1",
            "[::1]",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in [
            "vault.internal",
            "10.0.0.1",
            "localhost.evil.com",
            "::2",
            "",
        ] {
            assert!(!is_loopback_host(host), "{host}");
        }
        assert!(is_plaintext_remote(&url("http://vault.internal:8200")));
        assert!(!is_plaintext_remote(&url("http://127.0.0.1:8200")));
        assert!(!is_plaintext_remote(&url("https://vault.internal:8200")));
    }
}
