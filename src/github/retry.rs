//! The one retry policy for GitHub calls: what to retry, how long to wait, when to stop.
//!
//! Following GitHub's published guidance, in this order:
//! 1. a 403/429 with `retry-after` waits exactly that long;
//! 2. a 403/429 with `x-ratelimit-remaining: 0` waits until `x-ratelimit-reset` (+1 s,
//!    the header has whole-second resolution), on this machine's clock corrected by the
//!    server's `Date`;
//! 3. any other rate-limit 403/429 (a secondary limit) waits at least 60 s, doubling with
//!    each attempt, plus up to 25 % jitter so parallel callers do not return together;
//! 4. 500/502/503/504, broken connections and timeouts back off exponentially with full
//!    jitter: a uniform wait in `[0, min(cap, base * 2^(attempt-1)))`, base 500 ms, cap 30 s;
//! 5. nothing else is retried: 401, 403, 404, 409, 422 and other statuses mean the same
//!    thing the next time.
//!
//! Retries are bounded by `max_retries`, and no single wait may exceed `max_wait`
//! (default 15 min): a rate limit that demands longer is returned at once as
//! [`ErrorKind::RateLimited`], carrying its reset time, for the caller to reschedule.
//!
//! Retrying is safe for every call the client makes: all are GETs, or PUTs of a whole
//! resource. **A secret PUT is idempotent** (the same sealed value under the same key id
//! leaves the secret in the same state), so resending it after an ambiguous failure (a
//! timeout or a 502 where the first request may have landed) cannot do harm; at worst the
//! second answer is 204 "updated" where the first would have been 201 "created".

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::error::{ErrorKind, GitHubError};

/// When and how often to retry; see the module documentation for the rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (so at most `max_retries + 1` requests).
    pub max_retries: u32,
    /// First backoff ceiling for server and transport failures.
    pub base: Duration,
    /// Largest backoff ceiling for server and transport failures.
    pub cap: Duration,
    /// Least wait after a secondary rate limit that gives no `retry-after`.
    pub secondary_min: Duration,
    /// Longest single wait; a rate limit needing longer is returned as an error.
    pub max_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 5,
            base: Duration::from_millis(500),
            cap: Duration::from_secs(30),
            secondary_min: Duration::from_secs(60),
            max_wait: Duration::from_secs(15 * 60),
        }
    }
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Sleep this long, then send the request again.
    Retry(Duration),
    /// Return the error to the caller.
    GiveUp,
}

impl RetryPolicy {
    /// Decides after attempt number `attempt` (1 for the first request) failed with `error`.
    ///
    /// Pure: `now` is this machine's clock and `jitter` a number in `[0, 1)`, both supplied
    /// by the caller (see [`jitter`]), so every decision can be tested exactly.
    pub fn decide(
        &self,
        attempt: u32,
        error: &GitHubError,
        now: DateTime<Utc>,
        jitter: f64,
    ) -> Decision {
        if attempt > self.max_retries {
            return Decision::GiveUp;
        }
        let jitter = jitter.clamp(0.0, 1.0);
        let wait = match (&error.kind, error.status) {
            (
                ErrorKind::RateLimited {
                    retry_after: Some(after),
                    ..
                },
                _,
            ) => *after,
            (
                ErrorKind::RateLimited {
                    reset: Some(reset), ..
                },
                _,
            ) => (*reset - now).to_std().unwrap_or(Duration::ZERO) + Duration::from_secs(1),
            (ErrorKind::RateLimited { .. }, _) => {
                let d = exponential(self.secondary_min, attempt);
                d + d.mul_f64(jitter / 4.0)
            }
            (ErrorKind::Server, Some(500 | 502 | 503 | 504))
            | (ErrorKind::Transport, _)
            | (ErrorKind::Timeout, _) => self.backoff(attempt, jitter),
            _ => return Decision::GiveUp,
        };
        if wait > self.max_wait {
            Decision::GiveUp
        } else {
            Decision::Retry(wait)
        }
    }

    /// Full-jitter exponential backoff: `jitter * min(cap, base * 2^(attempt-1))`.
    pub fn backoff(&self, attempt: u32, jitter: f64) -> Duration {
        exponential(self.base, attempt)
            .min(self.cap)
            .mul_f64(jitter.clamp(0.0, 1.0))
    }
}

/// `base * 2^(attempt-1)`, saturating.
fn exponential(base: Duration, attempt: u32) -> Duration {
    let factor = 1u32
        .checked_shl(attempt.saturating_sub(1))
        .unwrap_or(u32::MAX);
    base.saturating_mul(factor)
}

/// A uniform number in `[0, 1)` for jitter (not for cryptography).
///
/// Each `RandomState` is seeded with fresh per-process randomness and a per-thread counter,
/// which is all jitter needs, without another dependency.
pub fn jitter() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    hasher.write_u32(nanos);
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
    use reqwest::{Method, StatusCode};

    const NOW: i64 = 1_800_000_000;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(NOW, 0).unwrap()
    }

    fn response(status: u16, headers: &[(&str, String)], body: &str) -> GitHubError {
        let mut h = HeaderMap::new();
        for (k, v) in headers {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        GitHubError::from_response(
            Method::PUT,
            "/repos/acme/api/actions/secrets/TOKEN".into(),
            StatusCode::from_u16(status).unwrap(),
            &h,
            body.as_bytes(),
            now(),
        )
    }

    fn local(kind: ErrorKind) -> GitHubError {
        GitHubError::local(kind, Method::GET, "/x".into(), "connection reset".into())
    }

    #[derive(Debug)]
    enum Expect {
        Exactly(Duration),
        GiveUp,
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn decisions_follow_githubs_rules() {
        let policy = RetryPolicy::default();
        let secondary = r#"{"message":"You have exceeded a secondary rate limit. Please wait a few minutes before you try again."}"#;
        let rows: Vec<(&str, u32, GitHubError, f64, Expect)> = vec![
            (
                "retry-after on 429 is honoured",
                1,
                response(429, &[("retry-after", "7".into())], ""),
                0.5,
                Expect::Exactly(secs(7)),
            ),
            (
                "retry-after on 403 is honoured",
                3,
                response(403, &[("retry-after", "120".into())], secondary),
                0.9,
                Expect::Exactly(secs(120)),
            ),
            (
                "retry-after wins over a reset",
                1,
                response(
                    403,
                    &[
                        ("retry-after", "5".into()),
                        ("x-ratelimit-remaining", "0".into()),
                        ("x-ratelimit-reset", (NOW + 600).to_string()),
                    ],
                    "",
                ),
                0.5,
                Expect::Exactly(secs(5)),
            ),
            (
                "primary limit waits until reset plus one second",
                1,
                response(
                    403,
                    &[
                        ("x-ratelimit-remaining", "0".into()),
                        ("x-ratelimit-reset", (NOW + 42).to_string()),
                    ],
                    r#"{"message":"API rate limit exceeded"}"#,
                ),
                0.5,
                Expect::Exactly(secs(43)),
            ),
            (
                "a reset already past waits one second",
                1,
                response(
                    429,
                    &[
                        ("x-ratelimit-remaining", "0".into()),
                        ("x-ratelimit-reset", (NOW - 5).to_string()),
                    ],
                    "",
                ),
                0.5,
                Expect::Exactly(secs(1)),
            ),
            (
                "server clock ahead by an hour does not inflate the wait",
                1,
                response(
                    403,
                    &[
                        ("x-ratelimit-remaining", "0".into()),
                        ("x-ratelimit-reset", (NOW + 3600 + 10).to_string()),
                        ("date", "Fri, 15 Jan 2027 09:00:00 GMT".into()),
                    ],
                    "",
                ),
                0.5,
                Expect::Exactly(reset_wait_with_skew()),
            ),
            (
                "secondary limit waits at least a minute",
                1,
                response(403, &[], secondary),
                0.0,
                Expect::Exactly(secs(60)),
            ),
            (
                "secondary limit doubles with attempts",
                3,
                response(403, &[], secondary),
                0.0,
                Expect::Exactly(secs(240)),
            ),
            (
                "secondary limit jitter adds at most a quarter",
                2,
                response(429, &[], ""),
                0.5,
                Expect::Exactly(secs(135)),
            ),
            (
                "secondary wait beyond max_wait gives up",
                5,
                response(403, &[], secondary),
                0.0,
                Expect::GiveUp,
            ),
            (
                "reset beyond max_wait gives up",
                1,
                response(
                    403,
                    &[
                        ("x-ratelimit-remaining", "0".into()),
                        ("x-ratelimit-reset", (NOW + 3000).to_string()),
                    ],
                    "",
                ),
                0.5,
                Expect::GiveUp,
            ),
            (
                "503 backs off with full jitter",
                1,
                response(503, &[], ""),
                0.5,
                Expect::Exactly(Duration::from_millis(250)),
            ),
            (
                "502 on the fourth attempt",
                4,
                response(502, &[], ""),
                0.5,
                Expect::Exactly(Duration::from_secs(2)),
            ),
            (
                "500 on the fifth attempt",
                5,
                response(500, &[], ""),
                0.25,
                Expect::Exactly(secs(2)),
            ),
            (
                "timeouts back off",
                2,
                local(ErrorKind::Timeout),
                1.0,
                Expect::Exactly(secs(1)),
            ),
            (
                "transport failures back off",
                1,
                local(ErrorKind::Transport),
                0.0,
                Expect::Exactly(Duration::ZERO),
            ),
            (
                "501 is not transient",
                1,
                response(501, &[], ""),
                0.5,
                Expect::GiveUp,
            ),
            (
                "404 is not retried",
                1,
                response(404, &[], r#"{"message":"Not Found"}"#),
                0.5,
                Expect::GiveUp,
            ),
            (
                "422 is not retried",
                1,
                response(422, &[], r#"{"message":"Bad key"}"#),
                0.5,
                Expect::GiveUp,
            ),
            (
                "401 is not retried",
                1,
                response(401, &[], ""),
                0.5,
                Expect::GiveUp,
            ),
            (
                "a permission 403 is not retried",
                1,
                response(
                    403,
                    &[("x-accepted-github-permissions", "secrets=write".into())],
                    r#"{"message":"Resource not accessible by integration"}"#,
                ),
                0.5,
                Expect::GiveUp,
            ),
            (
                "409 is not retried",
                1,
                response(409, &[], ""),
                0.5,
                Expect::GiveUp,
            ),
            (
                "decode errors are not retried",
                1,
                local(ErrorKind::Decode),
                0.5,
                Expect::GiveUp,
            ),
            (
                "attempts are exhausted after max_retries",
                6,
                response(503, &[], ""),
                0.5,
                Expect::GiveUp,
            ),
            (
                "rate limits also stop after max_retries",
                6,
                response(429, &[("retry-after", "1".into())], ""),
                0.5,
                Expect::GiveUp,
            ),
            (
                "the last allowed retry still happens",
                5,
                response(429, &[("retry-after", "1".into())], ""),
                0.5,
                Expect::Exactly(secs(1)),
            ),
        ];
        for (name, attempt, error, jitter, expect) in rows {
            let got = policy.decide(attempt, &error, now(), jitter);
            match expect {
                Expect::Exactly(d) => assert_eq!(got, Decision::Retry(d), "{name}"),
                Expect::GiveUp => assert_eq!(got, Decision::GiveUp, "{name}"),
            }
        }
    }

    /// Server Date 2027-01-15T09:00:00Z; reset 10 s after `NOW + 3600` on the server's
    /// clock. What matters is `reset - Date`, plus the one-second margin.
    fn reset_wait_with_skew() -> Duration {
        let server_now = DateTime::parse_from_rfc2822("Fri, 15 Jan 2027 09:00:00 GMT")
            .unwrap()
            .timestamp();
        secs((NOW + 3610 - server_now + 1) as u64)
    }

    #[test]
    fn server_backoff_stays_within_bounds_for_any_jitter() {
        let policy = RetryPolicy::default();
        for attempt in 1..=5u32 {
            let ceiling =
                Duration::from_millis(500 * (1 << (attempt - 1))).min(Duration::from_secs(30));
            let mut seen = Vec::new();
            for _ in 0..200 {
                match policy.decide(attempt, &response(503, &[], ""), now(), jitter()) {
                    Decision::Retry(d) => {
                        assert!(
                            d < ceiling,
                            "attempt {attempt}: {d:?} not below {ceiling:?}"
                        );
                        seen.push(d);
                    }
                    Decision::GiveUp => panic!("attempt {attempt} should be retried"),
                }
            }
            seen.sort();
            seen.dedup();
            assert!(
                seen.len() > 100,
                "jitter should spread waits, got {} distinct",
                seen.len()
            );
        }
    }

    #[test]
    fn backoff_ceiling_is_capped_at_30_seconds() {
        let policy = RetryPolicy {
            max_retries: 40,
            ..RetryPolicy::default()
        };
        assert_eq!(policy.backoff(7, 0.5), secs(15));
        assert_eq!(policy.backoff(40, 0.5), secs(15));
        assert_eq!(
            policy.decide(40, &response(504, &[], ""), now(), 0.5),
            Decision::Retry(secs(15))
        );
    }

    #[test]
    fn jitter_is_uniformish_in_unit_interval() {
        let samples: Vec<f64> = (0..2000).map(|_| jitter()).collect();
        assert!(samples.iter().all(|j| (0.0..1.0).contains(j)));
        let low = samples.iter().filter(|j| **j < 0.5).count();
        assert!((800..1200).contains(&low), "{low} of 2000 below 0.5");
    }

    #[test]
    fn max_retries_and_max_wait_are_configurable() {
        let policy = RetryPolicy {
            max_retries: 1,
            max_wait: secs(10),
            ..RetryPolicy::default()
        };
        let limited = response(429, &[("retry-after", "11".into())], "");
        assert_eq!(policy.decide(1, &limited, now(), 0.5), Decision::GiveUp);
        let short = response(429, &[("retry-after", "10".into())], "");
        assert_eq!(
            policy.decide(1, &short, now(), 0.5),
            Decision::Retry(secs(10))
        );
        assert_eq!(policy.decide(2, &short, now(), 0.5), Decision::GiveUp);
    }
}
