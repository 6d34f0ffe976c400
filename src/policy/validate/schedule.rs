//! The `schedule` section: cron or every, time zone, jitter and max_age.

use std::str::FromStr;

use serde_saphyr::Spanned;

use super::common::{pos, Sink};
use crate::policy::cron::parse_cron;
use crate::policy::duration::parse_duration;
use crate::policy::model::{Cadence, Schedule};
use crate::policy::raw::RawSchedule;

pub(super) fn check_schedule(s: &mut Sink, sch: Spanned<RawSchedule>) -> Option<Schedule> {
    let at = pos(&sch);
    let start = s.count();
    let RawSchedule {
        cron,
        every,
        timezone,
        jitter,
        max_age,
    } = sch.value;
    if let (Some(_), Some(e)) = (&cron, &every) {
        s.err(
            pos(e),
            "E0502",
            "both cron and every are set: keep one of them",
        );
    }
    if cron.is_none() && every.is_none() && max_age.is_none() {
        s.err(
            at,
            "E0505",
            "schedule sets none of cron, every, max_age: the policy would never rotate on its own",
        );
    }
    let duration = |d: &Option<Spanned<String>>, s: &mut Sink| {
        d.as_ref().and_then(|d| match parse_duration(&d.value) {
            Ok(v) => Some(v),
            Err(m) => {
                s.err(pos(d), "E0503", m);
                None
            }
        })
    };
    let every_d = duration(&every, s);
    let jitter_d = duration(&jitter, s);
    let max_age_d = duration(&max_age, s);
    let cadence = match (&cron, every_d) {
        (Some(c), _) => match parse_cron(&c.value) {
            Ok(_) => Some(Cadence::Cron(c.value.clone())),
            Err(m) => {
                s.err(pos(c), "E0501", m);
                None
            }
        },
        (None, Some(d)) => Some(Cadence::Every(d)),
        (None, None) => None,
    };
    let tz = match &timezone {
        None => "UTC".to_string(),
        Some(tz) => {
            if chrono_tz::Tz::from_str(&tz.value).is_err() {
                let hint = chrono_tz::TZ_VARIANTS
                    .iter()
                    .find(|z| z.name().eq_ignore_ascii_case(&tz.value))
                    .map(|z| format!(": did you mean {}?", z.name()))
                    .unwrap_or_else(|| {
                        ": use an IANA name such as UTC or Europe/Berlin".to_string()
                    });
                s.err(
                    pos(tz),
                    "E0504",
                    format!("unknown time zone \"{}\"{hint}", tz.value),
                );
            }
            tz.value.clone()
        }
    };
    if s.count() > start {
        return None;
    }
    Some(Schedule {
        cadence,
        timezone: tz,
        jitter: jitter_d,
        max_age: max_age_d,
    })
}
