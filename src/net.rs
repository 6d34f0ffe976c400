//! What rotor's HTTP clients share about where they may go: redirects that stay on the
//! origin they started from, whether a host is this machine, and response bodies read up
//! to a cap. Imports nothing of rotor.

use reqwest::Url;
use zeroize::Zeroizing;

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

/// The largest answer rotor reads from GitHub. Its largest JSON answers (a page of 100
/// repositories) are well under a megabyte.
pub const GITHUB_MAX_BODY: usize = 10 * 1024 * 1024;
/// The largest answer rotor reads from Vault: a secret, a certificate chain, a lease.
pub const VAULT_MAX_BODY: usize = 1024 * 1024;

/// Reads a response body, refusing past `limit` bytes: a declared `Content-Length` over it
/// is refused before reading, and a body that grows past it while streaming stops there.
/// The buffer is wiped when dropped, and so is every smaller one it outgrew.
pub async fn read_capped(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Zeroizing<Vec<u8>>, ReadError> {
    let declared = response.content_length();
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ReadError::TooLarge(TooLarge { limit }));
    }
    let mut out = Zeroizing::new(Vec::with_capacity(declared.unwrap_or(0) as usize));
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| ReadError::Http(e.without_url()))?
    {
        let needed = out.len() + chunk.len();
        if needed > limit {
            return Err(ReadError::TooLarge(TooLarge { limit }));
        }
        if out.capacity() < needed {
            // Grow by hand: a Vec growing in place would free its old buffer unwiped.
            let mut bigger = Zeroizing::new(Vec::with_capacity(
                needed.max(out.capacity().saturating_mul(2)).min(limit),
            ));
            bigger.extend_from_slice(&out);
            out = bigger;
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
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
