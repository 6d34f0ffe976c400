//! Cron expressions as policies write them, parsed the same way for validation and scheduling.

use chrono::{TimeZone, Utc};
use croner::Cron;

/// Parse a policy cron expression: 5 fields (minute hour day-of-month month day-of-week),
/// 6 fields with seconds first, or one of `@yearly`, `@monthly`, `@weekly`, `@daily`,
/// `@hourly`. Names (`MON`, `JAN`) are accepted. An expression that can never fire (such as
/// 31 April) is refused. The error says what is wrong.
pub fn parse_cron(expr: &str) -> Result<Cron, String> {
    let trimmed = expr.trim();
    let fields = trimmed.split_whitespace().count();
    let nickname = trimmed.starts_with('@');
    if !nickname && fields != 5 && fields != 6 {
        return Err(format!(
            "cron \"{expr}\" has {fields} fields: write 5 (minute hour day month weekday) or 6 (seconds first)"
        ));
    }
    let cron = Cron::new(trimmed)
        .with_seconds_optional()
        .parse()
        .map_err(|e| {
            let detail = e.to_string();
            format!(
                "bad cron \"{expr}\": {}",
                detail.trim_end_matches('.').to_lowercase()
            )
        })?;
    // A pattern that parses may still never match (e.g. `0 0 31 4 *`).
    let start = Utc
        .with_ymd_and_hms(2000, 1, 1, 0, 0, 0)
        .single()
        .expect("a valid fixed date");
    cron.find_next_occurrence(&start, true)
        .map_err(|_| format!("cron \"{expr}\" never fires: no date matches it"))?;
    Ok(cron)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_six_field_and_nickname_forms_parse() {
        for ok in [
            "0 3 * * MON",
            "*/15 * * * *",
            "30 0 3 * * *",
            "@daily",
            "0 0 29 2 *",
        ] {
            assert!(
                parse_cron(ok).is_ok(),
                "{ok:?} was refused: {:?}",
                parse_cron(ok).err()
            );
        }
    }

    #[test]
    fn wrong_field_counts_bad_values_and_impossible_dates_are_refused() {
        for bad in [
            "",
            "* * * *",
            "0 0 0 * * * *",
            "61 * * * *",
            "0 3 * * FUNDAY",
            "0 0 31 4 *",
            "@sometimes",
        ] {
            assert!(parse_cron(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
