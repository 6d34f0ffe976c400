//! Injected faults: rules that answer matching requests with a chosen GitHub-shaped error
//! instead of the real handler, a given number of times or until cleared.

use std::sync::Mutex;

use axum::http::{HeaderName, Method, StatusCode};
use serde::{Deserialize, Serialize};

use super::errors::ApiError;

/// One fault: requests whose path contains `path_contains` (and whose method is `method`,
/// when given) are answered with `status` and a GitHub error body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRule {
    /// HTTP method to match (any when absent), e.g. `PUT`.
    #[serde(default)]
    pub method: Option<String>,
    /// Substring of the request path (without the query), e.g. `/actions/secrets/`.
    pub path_contains: String,
    /// Status to answer with, e.g. 500, 502, 403, 429.
    pub status: u16,
    /// Error message; the status's reason phrase when absent.
    #[serde(default)]
    pub message: Option<String>,
    /// How many requests to answer; forever when absent.
    #[serde(default)]
    pub times: Option<u32>,
    /// Seconds to put in a `retry-after` header, e.g. to mimic a secondary rate limit.
    #[serde(default)]
    pub retry_after: Option<u64>,
}

impl FaultRule {
    /// A rule matching any method on paths containing `path_contains`, forever.
    pub fn new(path_contains: &str, status: u16) -> Self {
        FaultRule {
            method: None,
            path_contains: path_contains.to_string(),
            status,
            message: None,
            times: None,
            retry_after: None,
        }
    }

    pub fn method(mut self, method: &str) -> Self {
        self.method = Some(method.to_string());
        self
    }

    pub fn times(mut self, times: u32) -> Self {
        self.times = Some(times);
        self
    }

    pub fn message(mut self, message: &str) -> Self {
        self.message = Some(message.to_string());
        self
    }

    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// Whether this rule can be answered at all (a real HTTP status).
    pub fn is_valid(&self) -> bool {
        StatusCode::from_u16(self.status).is_ok()
            && self
                .method
                .as_deref()
                .is_none_or(|m| Method::from_bytes(m.as_bytes()).is_ok())
    }

    fn matches(&self, method: &Method, path: &str) -> bool {
        self.method
            .as_deref()
            .is_none_or(|m| m.eq_ignore_ascii_case(method.as_str()))
            && path.contains(&self.path_contains)
    }

    fn answer(&self) -> ApiError {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let message = self
            .message
            .clone()
            .unwrap_or_else(|| status.canonical_reason().unwrap_or("Error").to_string());
        let mut err = ApiError::new(status, message);
        if let Some(secs) = self.retry_after {
            err = err.with_header(HeaderName::from_static("retry-after"), secs);
        }
        err
    }
}

/// The rules in force, first match wins.
#[derive(Default)]
pub(crate) struct Faults {
    rules: Mutex<Vec<FaultRule>>,
}

impl Faults {
    pub fn add(&self, rule: FaultRule) {
        self.lock().push(rule);
    }

    pub fn clear(&self) {
        self.lock().clear();
    }

    pub fn list(&self) -> Vec<FaultRule> {
        self.lock().clone()
    }

    /// The error to answer with, if a rule matches; spends one of its `times`.
    pub fn take(&self, method: &Method, path: &str) -> Option<ApiError> {
        let mut rules = self.lock();
        let idx = rules.iter().position(|r| r.matches(method, path))?;
        let answer = rules[idx].answer();
        if let Some(times) = rules[idx].times.as_mut() {
            *times = times.saturating_sub(1);
            if *times == 0 {
                rules.remove(idx);
            }
        }
        Some(answer)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<FaultRule>> {
        self.rules.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rule_with_times_expires_and_method_is_matched() {
        let faults = Faults::default();
        faults.add(
            FaultRule::new("/actions/secrets", 502)
                .method("put")
                .times(2),
        );
        assert!(faults
            .take(&Method::GET, "/repos/a/b/actions/secrets/X")
            .is_none());
        let first = faults
            .take(&Method::PUT, "/repos/a/b/actions/secrets/X")
            .expect("fault");
        assert_eq!(first.status.as_u16(), 502);
        assert_eq!(first.message, "Bad Gateway");
        assert!(faults
            .take(&Method::PUT, "/repos/a/b/actions/secrets/X")
            .is_some());
        assert!(faults
            .take(&Method::PUT, "/repos/a/b/actions/secrets/X")
            .is_none());
        assert!(faults.list().is_empty());
    }

    #[test]
    fn an_impossible_status_is_not_valid() {
        assert!(!FaultRule::new("/", 42).is_valid());
        assert!(FaultRule::new("/", 429).is_valid());
    }
}
