//! Time arithmetic that cannot panic. Times and durations that come from outside (Vault's
//! lease terms, the ledger's timestamps, GitHub's headers) can be anything; chrono's `+`
//! and `Duration::seconds` panic out of range, these saturate at the ends of chrono's range.

use chrono::{DateTime, TimeDelta, Utc};

/// `secs` seconds as a `TimeDelta`, saturating at chrono's largest.
pub fn seconds(secs: u64) -> TimeDelta {
    i64::try_from(secs)
        .ok()
        .and_then(TimeDelta::try_seconds)
        .unwrap_or(TimeDelta::MAX)
}

/// `t + d`, saturating at the last (or first) date chrono can hold.
pub fn add(t: DateTime<Utc>, d: TimeDelta) -> DateTime<Utc> {
    t.checked_add_signed(d).unwrap_or(if d < TimeDelta::zero() {
        DateTime::<Utc>::MIN_UTC
    } else {
        DateTime::<Utc>::MAX_UTC
    })
}

/// `t + secs` seconds, saturating.
pub fn add_secs(t: DateTime<Utc>, secs: u64) -> DateTime<Utc> {
    add(t, seconds(secs))
}

/// `t - secs` seconds, saturating.
pub fn sub_secs(t: DateTime<Utc>, secs: u64) -> DateTime<Utc> {
    t.checked_sub_signed(seconds(secs))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_range_terms_saturate_instead_of_panicking() {
        let now = Utc::now();
        assert_eq!(add_secs(now, u64::MAX), DateTime::<Utc>::MAX_UTC);
        assert_eq!(
            add_secs(DateTime::<Utc>::MAX_UTC, 1),
            DateTime::<Utc>::MAX_UTC
        );
        assert_eq!(
            sub_secs(DateTime::<Utc>::MIN_UTC, 1),
            DateTime::<Utc>::MIN_UTC
        );
        assert_eq!(add_secs(now, 60), now + TimeDelta::seconds(60));
        assert_eq!(add(now, TimeDelta::MIN), DateTime::<Utc>::MIN_UTC);
    }
}
