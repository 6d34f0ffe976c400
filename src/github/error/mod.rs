//! What can go wrong talking to GitHub, with the request it happened on; never a token or value.

use std::fmt::Write as _;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde::Deserialize;

use super::headers;

mod explain;

pub use explain::{explain, permissions_for};

/// What kind of failure a [`GitHubError`] is; status codes become meanings here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// 401: the token is missing, wrong or expired.
    Unauthorized,
    /// 403 that is not a rate limit. `accepted_permissions` is GitHub's
    /// `x-accepted-github-permissions` header, naming what the endpoint needs.
    Forbidden {
        accepted_permissions: Option<String>,
    },
    /// 404: also what GitHub answers when the token may not see the resource.
    NotFound,
    /// 409, e.g. selecting repositories of a secret whose visibility is not `selected`.
    Conflict,
    /// 422: GitHub refused the request body (a stale `key_id`, a bad name, ...).
    Validation,
    /// 403/429 from a primary or secondary rate limit.
    RateLimited {
        /// The `retry-after` header, when sent.
        retry_after: Option<Duration>,
        /// When the primary window resets (`x-ratelimit-reset`, only when
        /// `x-ratelimit-remaining` is 0), corrected to this machine's clock with the
        /// server's `Date` header when present.
        reset: Option<DateTime<Utc>>,
    },
    /// 5xx.
    Server,
    /// The connection failed or broke (DNS, connect, reset, TLS).
    Transport,
    /// The request did not complete within the configured timeout.
    Timeout,
    /// The response did not have the shape GitHub documents.
    Decode,
    /// rotor was asked for something that cannot be expressed as a request
    /// (an empty path segment, an organization secret without visibility, ...).
    InvalidInput,
    /// A status the endpoint does not document (400, 410 for a retired API version, ...).
    UnexpectedStatus,
}

/// One failed GitHub call: which request, what GitHub said, and what it means.
///
/// Display: `GET /repos/acme/x/actions/secrets/public-key: 404 Not Found (request id ABCD:1234)`.
/// It holds no token and no secret value: only the method, the path, GitHub's message
/// and headers GitHub sends back.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", self.render())]
pub struct GitHubError {
    pub kind: ErrorKind,
    /// The HTTP status, when a response arrived.
    pub status: Option<u16>,
    /// GitHub's `message`, with its `errors` details appended; or the transport failure.
    pub message: String,
    /// GitHub's `documentation_url`, when sent.
    pub documentation_url: Option<String>,
    /// The `x-github-request-id` header, for GitHub support.
    pub request_id: Option<String>,
    pub method: Method,
    /// The path relative to the API base (with its query string, if any).
    pub path: String,
    /// How many times the request was sent (1 when it was not retried).
    pub attempts: u32,
}

impl GitHubError {
    /// An error found before or without any response.
    pub(crate) fn local(kind: ErrorKind, method: Method, path: String, message: String) -> Self {
        GitHubError {
            kind,
            status: None,
            message,
            documentation_url: None,
            request_id: None,
            method,
            path,
            attempts: 0,
        }
    }

    /// A request rotor refuses to send (a bad path, body, header or argument).
    pub(crate) fn invalid_input(
        method: &Method,
        path: impl Into<String>,
        message: impl ToString,
    ) -> Self {
        Self::local(
            ErrorKind::InvalidInput,
            method.clone(),
            path.into(),
            message.to_string(),
        )
    }

    /// Classifies a non-success response.
    pub(crate) fn from_response(
        method: Method,
        path: String,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Self {
        let (message, documentation_url) = parse_error_body(body);
        let kind = classify(status, headers, &message, now);
        GitHubError {
            kind,
            status: Some(status.as_u16()),
            message,
            documentation_url,
            request_id: headers::string(headers, "x-github-request-id"),
            method,
            path,
            attempts: 1,
        }
    }

    /// A response that arrived with the expected status but an unexpected body.
    pub(crate) fn decode(
        method: Method,
        path: String,
        status: StatusCode,
        headers: &HeaderMap,
        message: String,
    ) -> Self {
        GitHubError {
            kind: ErrorKind::Decode,
            status: Some(status.as_u16()),
            message,
            documentation_url: None,
            request_id: headers::string(headers, "x-github-request-id"),
            method,
            path,
            attempts: 1,
        }
    }

    /// A failure of the HTTP exchange itself.
    pub(crate) fn from_reqwest(method: Method, path: String, err: reqwest::Error) -> Self {
        let kind = if err.is_timeout() {
            ErrorKind::Timeout
        } else if err.is_builder() {
            ErrorKind::InvalidInput
        } else if err.is_decode() {
            ErrorKind::Decode
        } else if err.is_redirect() {
            // A redirect rotor refused to follow (to another origin, or too many): asking
            // again gets the same answer.
            ErrorKind::UnexpectedStatus
        } else {
            ErrorKind::Transport
        };
        // The URL is dropped: the path is already carried, and the base URL is configuration.
        let err = err.without_url();
        let mut message = err.to_string();
        let mut source = std::error::Error::source(&err);
        while let Some(s) = source {
            let text = s.to_string();
            if !message.contains(&text) {
                let _ = write!(message, ": {text}");
            }
            source = s.source();
        }
        GitHubError {
            kind,
            status: err.status().map(|s| s.as_u16()),
            message,
            documentation_url: None,
            request_id: None,
            method,
            path,
            attempts: 1,
        }
    }

    fn render(&self) -> String {
        let mut out = format!("{} {}: ", self.method, self.path);
        let reason = self
            .status
            .and_then(|s| StatusCode::from_u16(s).ok())
            .and_then(|s| s.canonical_reason());
        match (self.status, &self.kind) {
            (_, ErrorKind::Timeout) => out.push_str("timed out"),
            (_, ErrorKind::Transport) => out.push_str("transport error"),
            (_, ErrorKind::InvalidInput) => out.push_str("invalid request"),
            (Some(code), ErrorKind::Decode) => {
                let _ = write!(
                    out,
                    "{code} {}: response could not be decoded",
                    reason.unwrap_or("")
                );
            }
            (None, ErrorKind::Decode) => out.push_str("response could not be decoded"),
            (Some(code), _) => {
                let _ = write!(out, "{code}");
                if let Some(r) = reason {
                    let _ = write!(out, " {r}");
                }
            }
            (None, _) => out.push_str("failed"),
        }
        if !self.message.is_empty() && Some(self.message.as_str()) != reason {
            let _ = write!(out, ": {}", self.message);
        }
        match &self.kind {
            ErrorKind::Forbidden {
                accepted_permissions: Some(p),
            } if !p.is_empty() => {
                let _ = write!(out, " (accepted permissions: {p})");
            }
            ErrorKind::RateLimited {
                retry_after: Some(d),
                ..
            } => {
                let _ = write!(out, " (retry after {}s)", d.as_secs());
            }
            ErrorKind::RateLimited {
                retry_after: None,
                reset: Some(t),
            } => {
                let _ = write!(
                    out,
                    " (rate limit resets at {})",
                    t.format("%Y-%m-%dT%H:%M:%SZ")
                );
            }
            _ => {}
        }
        if let Some(id) = &self.request_id {
            let _ = write!(out, " (request id {id})");
        }
        if self.attempts > 1 {
            let _ = write!(out, " after {} attempts", self.attempts);
        }
        out
    }
}

/// GitHub's error body: `{"message": ..., "documentation_url": ..., "errors": [...]}`.
#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    documentation_url: Option<String>,
    #[serde(default)]
    errors: Vec<serde_json::Value>,
}

/// Extracts `message` plus the `errors` details, and `documentation_url`.
///
/// The `value` field some validation errors carry is deliberately ignored, as is any
/// body that is not GitHub's JSON shape: neither is echoed into an error.
fn parse_error_body(body: &[u8]) -> (String, Option<String>) {
    let Ok(parsed) = serde_json::from_slice::<ErrorBody>(body) else {
        return (String::new(), None);
    };
    let mut message = parsed.message.unwrap_or_default();
    let details: Vec<String> = parsed.errors.iter().filter_map(describe_detail).collect();
    if !details.is_empty() {
        if !message.is_empty() {
            message.push(' ');
        }
        let _ = write!(message, "[{}]", details.join("; "));
    }
    (message, parsed.documentation_url)
}

fn describe_detail(item: &serde_json::Value) -> Option<String> {
    match item {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Object(map) => {
            if let Some(m) = map.get("message").and_then(|m| m.as_str()) {
                return Some(m.to_string());
            }
            let part = |k: &str| map.get(k).and_then(|v| v.as_str()).map(str::to_string);
            let subject: Vec<String> = [part("resource"), part("field")]
                .into_iter()
                .flatten()
                .collect();
            match (subject.is_empty(), part("code")) {
                (false, Some(code)) => Some(format!("{} {code}", subject.join("."))),
                (false, None) => Some(subject.join(".")),
                (true, Some(code)) => Some(code),
                (true, None) => None,
            }
        }
        _ => None,
    }
}

/// Turns a non-success status (plus headers and message) into its meaning.
fn classify(
    status: StatusCode,
    headers: &HeaderMap,
    message: &str,
    now: DateTime<Utc>,
) -> ErrorKind {
    match status.as_u16() {
        401 => ErrorKind::Unauthorized,
        403 | 429 => {
            let retry_after = headers::retry_after(headers, now);
            let exhausted = headers::u64(headers, "x-ratelimit-remaining") == Some(0);
            let reset = if exhausted {
                headers::reset_local(headers, now)
            } else {
                None
            };
            let lower = message.to_ascii_lowercase();
            let says_limited = lower.contains("rate limit") || lower.contains("abuse detection");
            if status.as_u16() == 429 || retry_after.is_some() || exhausted || says_limited {
                ErrorKind::RateLimited { retry_after, reset }
            } else {
                ErrorKind::Forbidden {
                    accepted_permissions: headers::string(headers, "x-accepted-github-permissions"),
                }
            }
        }
        404 => ErrorKind::NotFound,
        409 => ErrorKind::Conflict,
        422 => ErrorKind::Validation,
        500..=599 => ErrorKind::Server,
        _ => ErrorKind::UnexpectedStatus,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderName, HeaderValue};

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    fn error(status: u16, h: &[(&str, &str)], body: &str) -> GitHubError {
        GitHubError::from_response(
            Method::GET,
            "/repos/acme/x/actions/secrets/public-key".into(),
            StatusCode::from_u16(status).unwrap(),
            &headers(h),
            body.as_bytes(),
            now(),
        )
    }

    #[test]
    fn display_names_method_path_status_and_request_id() {
        let e = error(
            404,
            &[("x-github-request-id", "ABCD:1234")],
            r#"{"message":"Not Found","documentation_url":"https://docs.github.com/rest","status":"404"}"#,
        );
        assert_eq!(e.kind, ErrorKind::NotFound);
        assert_eq!(
            e.to_string(),
            "GET /repos/acme/x/actions/secrets/public-key: 404 Not Found (request id ABCD:1234)"
        );
        assert_eq!(
            e.documentation_url.as_deref(),
            Some("https://docs.github.com/rest")
        );
    }

    #[test]
    fn validation_details_are_appended_but_echoed_values_are_not() {
        let body = r#"{"message":"Validation Failed","errors":[
            {"resource":"Secret","field":"key_id","code":"invalid","value":"SEALED-VALUE-ECHO"},
            {"message":"encrypted_value is too large"},
            "plain detail"]}"#;
        let e = error(422, &[], body);
        assert_eq!(e.kind, ErrorKind::Validation);
        assert_eq!(
            e.message,
            "Validation Failed [Secret.key_id invalid; encrypted_value is too large; plain detail]"
        );
        assert!(!e.to_string().contains("SEALED-VALUE-ECHO"));
    }

    #[test]
    fn forbidden_carries_the_accepted_permissions_header() {
        let e = error(
            403,
            &[("x-accepted-github-permissions", "secrets=write")],
            r#"{"message":"Resource not accessible by integration"}"#,
        );
        assert_eq!(
            e.kind,
            ErrorKind::Forbidden {
                accepted_permissions: Some("secrets=write".into())
            }
        );
        assert!(e.to_string().ends_with(
            "403 Forbidden: Resource not accessible by integration (accepted permissions: secrets=write)"
        ));
    }

    #[test]
    fn rate_limit_403s_are_told_apart_from_permission_403s() {
        let primary = error(
            403,
            &[
                ("x-ratelimit-remaining", "0"),
                ("x-ratelimit-reset", "1800000100"),
            ],
            r#"{"message":"API rate limit exceeded for user ID 1."}"#,
        );
        assert_eq!(
            primary.kind,
            ErrorKind::RateLimited {
                retry_after: None,
                reset: DateTime::from_timestamp(1_800_000_100, 0)
            }
        );
        let secondary = error(
            403,
            &[],
            r#"{"message":"You have exceeded a secondary rate limit."}"#,
        );
        assert_eq!(
            secondary.kind,
            ErrorKind::RateLimited {
                retry_after: None,
                reset: None
            }
        );
        let with_retry_after = error(429, &[("retry-after", "30")], "");
        assert_eq!(
            with_retry_after.kind,
            ErrorKind::RateLimited {
                retry_after: Some(Duration::from_secs(30)),
                reset: None
            }
        );
        assert!(with_retry_after
            .to_string()
            .contains("429 Too Many Requests (retry after 30s)"));
    }

    #[test]
    fn a_reset_is_ignored_while_requests_remain() {
        // A secondary limit with quota left must not wait for the (distant) primary reset.
        let e = error(
            403,
            &[
                ("x-ratelimit-remaining", "4000"),
                ("x-ratelimit-reset", "1800003000"),
            ],
            r#"{"message":"You have exceeded a secondary rate limit"}"#,
        );
        assert_eq!(
            e.kind,
            ErrorKind::RateLimited {
                retry_after: None,
                reset: None
            }
        );
    }

    #[test]
    fn statuses_map_to_kinds() {
        assert_eq!(error(401, &[], "").kind, ErrorKind::Unauthorized);
        assert_eq!(error(409, &[], "").kind, ErrorKind::Conflict);
        assert_eq!(
            error(502, &[], "<html>bad gateway</html>").kind,
            ErrorKind::Server
        );
        assert_eq!(error(410, &[], "").kind, ErrorKind::UnexpectedStatus);
        assert_eq!(error(400, &[], "").kind, ErrorKind::UnexpectedStatus);
    }

    #[test]
    fn a_non_json_body_is_not_echoed() {
        let e = error(502, &[], "<html>upstream said something</html>");
        assert_eq!(e.message, "");
        assert_eq!(
            e.to_string(),
            "GET /repos/acme/x/actions/secrets/public-key: 502 Bad Gateway"
        );
    }

    #[test]
    fn display_never_contains_the_token() {
        // The client never hands the token to an error; this proves the shapes that carry
        // headers back do not pick up an Authorization header either.
        let token = "ghp_ThisTokenMustNeverAppear0000000000";
        let e = error(
            401,
            &[
                ("authorization", &format!("Bearer {token}")),
                ("x-github-request-id", "R1"),
            ],
            r#"{"message":"Bad credentials","documentation_url":"https://docs.github.com/rest"}"#,
        );
        let shown = format!("{e} {e:?}");
        assert!(!shown.contains(token), "{shown}");
        assert!(e
            .to_string()
            .contains("401 Unauthorized: Bad credentials (request id R1)"));
    }
}
