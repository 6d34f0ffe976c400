//! Durations as policies write them: a positive whole number and one unit, `90s`, `15m`, `12h`, `30d`.

use std::time::Duration;

/// Parse `90s`, `15m`, `12h` or `30d` into a `Duration`. Zero, signs, spaces, fractions,
/// other units and values too large for a `Duration` are refused; the error says why.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    const HINT: &str = "write a whole number and one unit of s, m, h or d, e.g. 90s, 15m, 12h, 30d";
    let Some(unit) = text.chars().last() else {
        return Err(format!("duration is empty: {HINT}"));
    };
    let secs_per_unit: u64 = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => return Err(format!("bad duration \"{text}\": {HINT}")),
    };
    let digits = &text[..text.len() - unit.len_utf8()];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("bad duration \"{text}\": {HINT}"));
    }
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("duration \"{text}\" is too large"))?;
    if n == 0 {
        return Err(format!("duration \"{text}\" is zero: it must be positive"));
    }
    let secs = n
        .checked_mul(secs_per_unit)
        .filter(|s| *s <= 100 * 365 * 86_400)
        .ok_or_else(|| format!("duration \"{text}\" is too large: at most 100 years"))?;
    Ok(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_unit_is_understood() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("12h"), Ok(Duration::from_secs(43_200)));
        assert_eq!(parse_duration("30d"), Ok(Duration::from_secs(2_592_000)));
    }

    #[test]
    fn malformed_zero_and_huge_durations_are_refused() {
        for bad in [
            "",
            "s",
            "0s",
            "10",
            "1w",
            "1.5h",
            "-5m",
            "+5m",
            " 5m",
            "5 m",
            "5M",
            "99999999999999999999d",
            "40000d",
            "5é",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
