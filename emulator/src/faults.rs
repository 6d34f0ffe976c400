//! Injected faults: rules that answer matching requests with a chosen GitHub-shaped error
//! instead of the real handler (or after it), close the connection, or stall — every
//! matching request or a random share of them (seeded), a given number of times or until
//! cleared.

use std::sync::Mutex;
use std::time::Duration;

use axum::http::{HeaderName, Method, StatusCode};
use serde::{Deserialize, Serialize};

use super::errors::ApiError;

/// One fault: requests whose path contains `path_contains` (and whose method is `method`,
/// when given) are answered with `status` and a GitHub error body (or what `kind` says).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRule {
    /// HTTP method to match (any when absent), e.g. `PUT`.
    #[serde(default)]
    pub method: Option<String>,
    /// Substring of the request path (without the query), e.g. `/actions/secrets/`.
    pub path_contains: String,
    /// Status to answer with, e.g. 500, 502, 503, 403, 429 (default 500).
    #[serde(default = "default_status")]
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
    /// What happens to a hit request (default `status`).
    #[serde(default)]
    pub kind: FaultKind,
    /// Share of matching requests hit, in (0, 1], drawn from a seeded generator; every
    /// matching request when absent. `times` counts hits only.
    #[serde(default)]
    pub rate: Option<f64>,
    /// Seed of the draws for `rate`: the same seed hits the same requests of the same run.
    #[serde(default)]
    pub seed: Option<u64>,
    /// For `stall`: how long the request is held before it is handled, in milliseconds.
    #[serde(default)]
    pub stall_ms: Option<u64>,
}

/// What a fault does to the requests it hits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// Answer `status` instead of handling the request (nothing changes).
    #[default]
    Status,
    /// Handle the request (a PUT is stored), then answer `status` anyway: an ambiguous
    /// failure, like a 502 from a proxy after the write landed.
    Applied,
    /// Close the connection without a complete answer (nothing changes).
    Close,
    /// Hold the request for `stall_ms`, then handle it (a client's timeout may fire first).
    Stall,
}

fn default_status() -> u16 {
    500
}

/// What the middleware does with a hit request.
pub(crate) enum Hit {
    Answer(ApiError),
    AnswerAfterHandling(ApiError),
    Close,
    Stall(Duration),
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
            kind: FaultKind::Status,
            rate: None,
            seed: None,
            stall_ms: None,
        }
    }

    /// What a hit request gets.
    pub fn kind(mut self, kind: FaultKind) -> Self {
        self.kind = kind;
        self
    }

    /// Hit only this share of matching requests, drawn with `seed`.
    pub fn rate(mut self, rate: f64, seed: u64) -> Self {
        self.rate = Some(rate);
        self.seed = Some(seed);
        self
    }

    /// For `stall`: hold requests this long.
    pub fn stall(mut self, d: Duration) -> Self {
        self.kind = FaultKind::Stall;
        self.stall_ms = Some(u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        self
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
            && self.rate.is_none_or(|r| r > 0.0 && r <= 1.0)
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

    fn hit(&self) -> Hit {
        match self.kind {
            FaultKind::Status => Hit::Answer(self.answer()),
            FaultKind::Applied => Hit::AnswerAfterHandling(self.answer()),
            FaultKind::Close => Hit::Close,
            FaultKind::Stall => Hit::Stall(Duration::from_millis(self.stall_ms.unwrap_or(0))),
        }
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

/// A rule in force with the state of its random draws.
struct Armed {
    rule: FaultRule,
    rng: u64,
}

/// splitmix64: a small, seedable generator (not for cryptography).
fn next_draw(state: &mut u64) -> f64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// The rules in force, first match wins.
#[derive(Default)]
pub(crate) struct Faults {
    rules: Mutex<Vec<Armed>>,
}

impl Faults {
    pub fn add(&self, rule: FaultRule) {
        let rng = rule.seed.unwrap_or(0);
        self.lock().push(Armed { rule, rng });
    }

    pub fn clear(&self) {
        self.lock().clear();
    }

    pub fn list(&self) -> Vec<FaultRule> {
        self.lock().iter().map(|a| a.rule.clone()).collect()
    }

    /// What to do with this request, if a rule hits it; spends one of its `times`.
    pub fn take(&self, method: &Method, path: &str) -> Option<Hit> {
        let mut rules = self.lock();
        let idx = rules.iter_mut().position(|a| {
            a.rule.matches(method, path)
                && a.rule.rate.is_none_or(|rate| next_draw(&mut a.rng) < rate)
        })?;
        let hit = rules[idx].rule.hit();
        if let Some(times) = rules[idx].rule.times.as_mut() {
            *times = times.saturating_sub(1);
            if *times == 0 {
                rules.remove(idx);
            }
        }
        Some(hit)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Armed>> {
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
        let Some(Hit::Answer(first)) = faults.take(&Method::PUT, "/repos/a/b/actions/secrets/X")
        else {
            panic!("a status fault")
        };
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
    fn a_rate_hits_about_that_share_and_the_same_seed_hits_the_same_requests() {
        let draw = |seed: u64| {
            let faults = Faults::default();
            faults.add(FaultRule::new("/x", 503).rate(0.2, seed));
            (0..5_000)
                .map(|_| faults.take(&Method::GET, "/x").is_some())
                .collect::<Vec<bool>>()
        };
        let a = draw(7);
        let hits = a.iter().filter(|h| **h).count();
        assert!((850..1150).contains(&hits), "{hits} of 5000");
        assert_eq!(a, draw(7));
        assert_ne!(a, draw(8));
        assert!(!FaultRule::new("/", 500).rate(1.5, 1).is_valid());
    }

    #[test]
    fn fault_kinds_read_from_json_with_their_defaults() {
        let rule: FaultRule = serde_json::from_str(
            r#"{"path_contains": "/secrets/", "method": "PUT", "kind": "applied", "status": 502, "rate": 0.2, "seed": 1}"#,
        )
        .expect("rule");
        assert_eq!((rule.kind, rule.rate), (FaultKind::Applied, Some(0.2)));
        let close: FaultRule =
            serde_json::from_str(r#"{"path_contains": "/", "kind": "close"}"#).expect("rule");
        assert_eq!((close.kind, close.status), (FaultKind::Close, 500));
    }

    #[test]
    fn an_impossible_status_is_not_valid() {
        assert!(!FaultRule::new("/", 42).is_valid());
        assert!(FaultRule::new("/", 429).is_valid());
    }
}
