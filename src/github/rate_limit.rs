//! Rate-limit snapshots, from `x-ratelimit-*` headers or from `GET /rate_limit`.

use chrono::{DateTime, Utc};
use reqwest::header::HeaderMap;
use serde::{Deserialize, Serialize};

use super::headers;

/// A primary rate-limit window as GitHub last reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RateLimitSnapshot {
    /// Requests allowed per window.
    pub limit: u64,
    /// Requests left in the current window.
    pub remaining: u64,
    /// Requests made in the current window, when reported.
    pub used: Option<u64>,
    /// When the window resets (UTC, the server's clock).
    pub reset: DateTime<Utc>,
    /// The resource the numbers count against (`core`, `search`, ...), when reported.
    pub resource: Option<String>,
}

impl RateLimitSnapshot {
    /// Reads `x-ratelimit-limit`, `-remaining`, `-reset` (all required) and `-used`, `-resource`.
    pub fn from_headers(h: &HeaderMap) -> Option<Self> {
        Some(RateLimitSnapshot {
            limit: headers::u64(h, "x-ratelimit-limit")?,
            remaining: headers::u64(h, "x-ratelimit-remaining")?,
            used: headers::u64(h, "x-ratelimit-used"),
            reset: DateTime::from_timestamp(
                i64::try_from(headers::u64(h, "x-ratelimit-reset")?).ok()?,
                0,
            )?,
            resource: headers::string(h, "x-ratelimit-resource"),
        })
    }
}

/// `GET /rate_limit` (only the part rotor reads).
#[derive(Deserialize)]
pub(crate) struct RateLimitOverview {
    pub resources: Resources,
}

#[derive(Deserialize)]
pub(crate) struct Resources {
    pub core: Window,
}

#[derive(Deserialize)]
pub(crate) struct Window {
    pub limit: u64,
    pub remaining: u64,
    pub reset: i64,
    #[serde(default)]
    pub used: Option<u64>,
}

impl Window {
    pub fn into_snapshot(self, resource: &str) -> Option<RateLimitSnapshot> {
        Some(RateLimitSnapshot {
            limit: self.limit,
            remaining: self.remaining,
            used: self.used,
            reset: DateTime::from_timestamp(self.reset, 0)?,
            resource: Some(resource.to_string()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn a_snapshot_needs_limit_remaining_and_reset() {
        let mut h = HeaderMap::new();
        h.insert("x-ratelimit-limit", HeaderValue::from_static("5000"));
        h.insert("x-ratelimit-remaining", HeaderValue::from_static("4987"));
        assert_eq!(RateLimitSnapshot::from_headers(&h), None);
        h.insert("x-ratelimit-reset", HeaderValue::from_static("1800000000"));
        h.insert("x-ratelimit-used", HeaderValue::from_static("13"));
        h.insert("x-ratelimit-resource", HeaderValue::from_static("core"));
        let s = RateLimitSnapshot::from_headers(&h).unwrap();
        assert_eq!((s.limit, s.remaining, s.used), (5000, 4987, Some(13)));
        assert_eq!(s.reset.timestamp(), 1_800_000_000);
        assert_eq!(s.resource.as_deref(), Some("core"));
    }
}
