//! The next-time function: from a policy's schedule and its last rotation, when it is due.
//!
//! Cron slots are computed in the policy's time zone on local wall-clock time (croner over
//! `chrono_tz`), so `0 3 * * *` in `Europe/Berlin` stays at 03:00 local on both sides of a
//! daylight-saving change; a slot that falls in a spring-forward gap moves to the first
//! valid local time after it. Jitter is derived from the policy name and the last rotation,
//! so `plan`, `apply` and the daemon agree on the same due time without shared state.

use chrono::{DateTime, Utc};

use crate::policy::cron::parse_cron;
use crate::policy::{Cadence, Schedule};

/// When a policy last rotated at `last` is next due, or `None` when its schedule never
/// makes it due (no cadence and no `max_age`).
///
/// The result is the earliest of the next cadence slot strictly after `last` (plus jitter)
/// and `last + max_age`. Times past the last date chrono can hold are never due (checked
/// arithmetic: `last` comes from the ledger, a file).
pub fn next_due(policy: &str, schedule: &Schedule, last: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let tz: chrono_tz::Tz = schedule.timezone.parse().unwrap_or(chrono_tz::UTC);
    let slot = match &schedule.cadence {
        Some(Cadence::Every(d)) => chrono::Duration::from_std(*d)
            .ok()
            .and_then(|d| last.checked_add_signed(d)),
        Some(Cadence::Cron(expr)) => {
            let cron = parse_cron(expr).ok()?;
            cron.find_next_occurrence(&last.with_timezone(&tz), false)
                .ok()
                .map(|t| t.with_timezone(&Utc))
        }
        None => None,
    };
    let slot = slot.and_then(|t| t.checked_add_signed(jitter(policy, last, schedule.jitter)));
    let aged = schedule
        .max_age
        .and_then(|d| chrono::Duration::from_std(d).ok())
        .and_then(|d| last.checked_add_signed(d));
    match (slot, aged) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// A delay in `[0, max)` fixed by the policy name and its last rotation.
fn jitter(policy: &str, last: DateTime<Utc>, max: Option<std::time::Duration>) -> chrono::Duration {
    let Some(max) = max.filter(|m| !m.is_zero()) else {
        return chrono::Duration::zero();
    };
    // FNV-1a: stable across builds, unlike std's hasher.
    let mut h: u64 = 0xcbf29ce484222325;
    for b in policy.bytes().chain(last.timestamp_millis().to_le_bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    let ms = (max.as_millis() as u64).max(1);
    chrono::Duration::milliseconds((h % ms) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use std::time::Duration;

    fn sched(cadence: Option<Cadence>, tz: &str) -> Schedule {
        Schedule {
            cadence,
            timezone: tz.into(),
            jitter: None,
            max_age: None,
        }
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn a_last_rotation_near_the_maximum_date_panicked() {
        let mut s = sched(Some(Cadence::Every(Duration::from_secs(30 * 86400))), "UTC");
        s.max_age = Some(Duration::from_secs(86400));
        s.jitter = Some(Duration::from_secs(3600));
        let last = DateTime::<Utc>::MAX_UTC - chrono::Duration::seconds(5);
        assert_eq!(next_due("p", &s, last), None);
    }

    #[test]
    fn every_adds_the_interval_to_the_last_rotation() {
        let s = sched(Some(Cadence::Every(Duration::from_secs(30 * 86400))), "UTC");
        assert_eq!(
            next_due("p", &s, utc("2026-01-01T00:00:00Z")),
            Some(utc("2026-01-31T00:00:00Z"))
        );
    }

    #[test]
    fn five_field_cron_runs_at_the_next_slot_in_utc() {
        let s = sched(Some(Cadence::Cron("0 3 * * MON".into())), "UTC");
        // 2026-11-25 is a Wednesday; the next Monday is 2026-11-30.
        assert_eq!(
            next_due("p", &s, utc("2026-11-25T10:00:00Z")),
            Some(utc("2026-11-30T03:00:00Z"))
        );
    }

    #[test]
    fn six_field_cron_with_seconds_is_accepted() {
        let s = sched(Some(Cadence::Cron("*/10 * * * * *".into())), "UTC");
        assert_eq!(
            next_due("p", &s, utc("2026-11-25T10:00:01Z")),
            Some(utc("2026-11-25T10:00:10Z"))
        );
    }

    #[test]
    fn a_daily_cron_keeps_local_wall_time_across_the_autumn_dst_change() {
        // Europe/Berlin leaves summer time on 2026-10-25 at 03:00 CEST -> 02:00 CET.
        let s = sched(Some(Cadence::Cron("30 4 * * *".into())), "Europe/Berlin");
        let before = next_due("p", &s, utc("2026-10-24T02:30:00Z")).unwrap(); // 04:30 CEST
        assert_eq!(before, utc("2026-10-25T03:30:00Z")); // 04:30 CET = 03:30 UTC
        let tz: chrono_tz::Tz = "Europe/Berlin".parse().unwrap();
        assert_eq!(
            before.with_timezone(&tz).format("%H:%M").to_string(),
            "04:30"
        );
    }

    #[test]
    fn a_daily_cron_keeps_local_wall_time_across_the_spring_dst_change() {
        // America/New_York enters daylight time on 2026-03-08 at 02:00 EST -> 03:00 EDT.
        let s = sched(Some(Cadence::Cron("0 9 * * *".into())), "America/New_York");
        let t = next_due("p", &s, utc("2026-03-07T14:00:00Z")).unwrap(); // 09:00 EST on the 7th
        assert_eq!(t, utc("2026-03-08T13:00:00Z")); // 09:00 EDT
    }

    #[test]
    fn a_slot_in_the_spring_forward_gap_moves_to_the_first_valid_time() {
        let s = sched(Some(Cadence::Cron("30 2 * * *".into())), "America/New_York");
        let t = next_due("p", &s, utc("2026-03-07T12:00:00Z")).unwrap();
        // 2026-03-07 02:30 EST already passed; 2026-03-08 02:30 does not exist.
        let tz: chrono_tz::Tz = "America/New_York".parse().unwrap();
        let local = t.with_timezone(&tz);
        assert_eq!(
            local.date_naive(),
            chrono::NaiveDate::from_ymd_opt(2026, 3, 8).unwrap()
        );
        assert!(local.format("%H").to_string() == "03", "{local}");
    }

    #[test]
    fn max_age_wins_when_it_comes_before_the_cadence() {
        let mut s = sched(Some(Cadence::Every(Duration::from_secs(90 * 86400))), "UTC");
        s.max_age = Some(Duration::from_secs(35 * 86400));
        assert_eq!(
            next_due("p", &s, utc("2026-01-01T00:00:00Z")),
            Some(utc("2026-02-05T00:00:00Z"))
        );
    }

    #[test]
    fn no_cadence_and_no_max_age_is_never_due() {
        assert_eq!(next_due("p", &sched(None, "UTC"), Utc::now()), None);
    }

    #[test]
    fn jitter_is_bounded_and_stable_for_one_policy_and_rotation() {
        let mut s = sched(Some(Cadence::Every(Duration::from_secs(3600))), "UTC");
        s.jitter = Some(Duration::from_secs(600));
        let last = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let a = next_due("alpha", &s, last).unwrap();
        assert_eq!(a, next_due("alpha", &s, last).unwrap());
        let base = last + chrono::Duration::hours(1);
        for name in ["alpha", "beta", "gamma", "delta"] {
            let t = next_due(name, &s, last).unwrap();
            assert!(
                t >= base && t < base + chrono::Duration::minutes(10),
                "{name}: {t}"
            );
        }
    }

    #[test]
    fn a_weekly_cron_stays_at_local_wall_time_through_a_year_of_dst_changes() {
        // Following the chain the daemon follows (each due time becomes the next "last"),
        // every slot is Monday 03:00 in Berlin, in summer time and in winter time.
        let s = sched(Some(Cadence::Cron("0 3 * * MON".into())), "Europe/Berlin");
        let tz: chrono_tz::Tz = "Europe/Berlin".parse().unwrap();
        let mut last = utc("2026-01-01T00:00:00Z");
        let mut offsets = std::collections::BTreeSet::new();
        for _ in 0..60 {
            let next = next_due("p", &s, last).unwrap();
            assert!(next > last);
            let local = next.with_timezone(&tz);
            assert_eq!(local.format("%a %H:%M").to_string(), "Mon 03:00", "{next}");
            offsets.insert(local.format("%z").to_string());
            last = next;
        }
        assert_eq!(
            offsets.len(),
            2,
            "both +0100 and +0200 were crossed: {offsets:?}"
        );
    }

    #[test]
    fn a_cron_slot_in_the_repeated_autumn_hour_fires_once_and_time_never_runs_backwards() {
        // Europe/Berlin, 2026-10-25: 02:00-03:00 local happens twice (CEST, then CET). As
        // classic cron does, the repeated slots fire once (in their first occurrence).
        let s = sched(Some(Cadence::Cron("*/30 * * * *".into())), "Europe/Berlin");
        let mut last = utc("2026-10-24T23:10:00Z"); // 01:10 CEST
        let mut slots = Vec::new();
        while last < utc("2026-10-25T03:00:00Z") {
            let next = next_due("p", &s, last).unwrap();
            assert!(next > last, "{next} is not after {last}");
            slots.push(next);
            last = next;
        }
        let expected: Vec<_> = [
            "2026-10-24T23:30:00Z", // 01:30 CEST
            "2026-10-25T00:00:00Z", // 02:00 CEST
            "2026-10-25T00:30:00Z", // 02:30 CEST
            "2026-10-25T02:00:00Z", // 03:00 CET (02:00 and 02:30 CET were already run)
            "2026-10-25T02:30:00Z",
            "2026-10-25T03:00:00Z",
        ]
        .into_iter()
        .map(utc)
        .collect();
        assert_eq!(slots, expected);
    }

    #[test]
    fn every_counts_elapsed_time_so_a_day_across_the_spring_change_is_24_hours() {
        // `every` is a duration, not a wall-clock rule: 24h after 09:00 EST is 10:00 EDT.
        let s = sched(
            Some(Cadence::Every(Duration::from_secs(86400))),
            "America/New_York",
        );
        let next = next_due("p", &s, utc("2026-03-07T14:00:00Z")).unwrap();
        assert_eq!(next, utc("2026-03-08T14:00:00Z"));
    }
}
