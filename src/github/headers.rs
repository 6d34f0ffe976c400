//! Reading the response headers GitHub's client cares about: rate limits, retry-after, Date.

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::header::HeaderMap;

/// The longest wait any header can ask for. GitHub's primary window resets within an hour
/// and its `retry-after` is seconds to minutes; a header asking for more is clamped to this,
/// so that a crafted answer can neither overflow a clock nor park rotor for years.
pub const MAX_WAIT: Duration = Duration::from_secs(3600);

/// A header as trimmed text, if present and valid UTF-8.
pub fn string(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)?
        .to_str()
        .ok()
        .map(|s| s.trim().to_string())
}

/// A header as an unsigned integer.
pub fn u64(headers: &HeaderMap, name: &str) -> Option<u64> {
    string(headers, name)?.parse().ok()
}

/// The server's `Date` header.
pub fn date(headers: &HeaderMap) -> Option<DateTime<Utc>> {
    http_date(&string(headers, "date")?)
}

/// Parses an IMF-fixdate such as `Sun, 06 Nov 1994 08:49:37 GMT`.
pub fn http_date(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc2822(text)
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

/// `retry-after`: delay-seconds, or an HTTP-date measured against the server's `Date`
/// (else this machine's clock). A date in the past means "now".
pub fn retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let text = string(headers, "retry-after")?;
    if let Ok(secs) = text.parse::<u64>() {
        return Some(Duration::from_secs(secs).min(MAX_WAIT));
    }
    let at = http_date(&text)?;
    let reference = date(headers).unwrap_or(now);
    Some(
        at.signed_duration_since(reference)
            .to_std()
            .unwrap_or(Duration::ZERO)
            .min(MAX_WAIT),
    )
}

/// `x-ratelimit-reset` (UTC epoch seconds on the server's clock) moved onto this machine's
/// clock: `now + (reset - server Date)` when the server sent `Date`, else the epoch as is;
/// never more than `MAX_WAIT` after `now` (any value, however crafted, stays in range).
pub fn reset_local(headers: &HeaderMap, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let reset =
        DateTime::from_timestamp(i64::try_from(u64(headers, "x-ratelimit-reset")?).ok()?, 0)?;
    let until = match date(headers) {
        Some(server_now) => reset.signed_duration_since(server_now),
        None => reset.signed_duration_since(now),
    };
    let cap = chrono::TimeDelta::from_std(MAX_WAIT).unwrap_or(chrono::TimeDelta::zero());
    let until = until.clamp(chrono::TimeDelta::zero(), cap);
    Some(now.checked_add_signed(until).unwrap_or(now))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn a_reset_far_in_the_future_against_a_1970_date_panicked() {
        // Found by the hardening review: `now + (reset - Date)` overflowed chrono and
        // panicked (rotor plan exited 101). Clamped to MAX_WAIT now.
        let mut h = HeaderMap::new();
        h.insert(
            "x-ratelimit-reset",
            HeaderValue::from_static("8210266876799"),
        );
        h.insert(
            "date",
            HeaderValue::from_static("Thu, 01 Jan 1970 00:00:00 GMT"),
        );
        h.insert(
            "retry-after",
            HeaderValue::from_static("Fri, 31 Dec 9999 23:59:59 GMT"),
        );
        let now = DateTime::<Utc>::MAX_UTC - chrono::TimeDelta::seconds(10);
        assert_eq!(
            reset_local(&h, now),
            Some(DateTime::<Utc>::MAX_UTC - chrono::TimeDelta::seconds(10))
        );
        let now = at(1_700_000_000);
        assert_eq!(
            reset_local(&h, now),
            Some(now + chrono::TimeDelta::seconds(3600))
        );
        assert_eq!(retry_after(&h, now), Some(MAX_WAIT));
        h.insert(
            "retry-after",
            HeaderValue::from_static("18446744073709551615"),
        );
        assert_eq!(retry_after(&h, now), Some(MAX_WAIT));
    }

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, 0).unwrap()
    }

    #[test]
    fn http_dates_parse_as_utc() {
        assert_eq!(
            http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(at(784_111_777))
        );
        assert_eq!(http_date("yesterday"), None);
    }

    #[test]
    fn reset_is_corrected_by_the_servers_clock() {
        let mut h = HeaderMap::new();
        h.insert("x-ratelimit-reset", HeaderValue::from_static("784111837")); // server Date + 60 s
                                                                              // No Date: the epoch on our clock, never more than MAX_WAIT away.
        assert_eq!(reset_local(&h, at(784_111_800)), Some(at(784_111_837)));
        assert_eq!(reset_local(&h, at(1_000)), Some(at(1_000 + 3600)));
        assert_eq!(reset_local(&h, at(784_111_900)), Some(at(784_111_900)));
        h.insert(
            "date",
            HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT"),
        );
        // Our clock says 1000: the reset is 60 s from now on our clock, whatever the skew.
        assert_eq!(reset_local(&h, at(1_000)), Some(at(1_060)));
    }

    #[test]
    fn retry_after_reads_seconds_or_a_date() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("17"));
        assert_eq!(retry_after(&h, at(0)), Some(Duration::from_secs(17)));
        h.insert(
            "retry-after",
            HeaderValue::from_static("Sun, 06 Nov 1994 08:50:07 GMT"),
        );
        h.insert(
            "date",
            HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT"),
        );
        assert_eq!(retry_after(&h, at(0)), Some(Duration::from_secs(30)));
        h.insert("retry-after", HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h, at(0)), None);
    }
}
