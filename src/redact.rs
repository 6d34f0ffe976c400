//! Redaction of workflow logs (pure): before a log excerpt is shown, logged or stored,
//! every occurrence of a secret value, and of its base64 forms, becomes `***`.
//!
//! GitHub masks secrets in its own logs, but not a value a step transformed (base64 is the
//! common case), and rotor cannot tell which masking GitHub applied; so rotor redacts on
//! its own, with the new and the previous value of the policy, whatever the log says.

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

/// What a redacted value becomes.
pub const MASK: &str = "***";

/// `text` with every occurrence of each of `secrets` — as is, and in standard and URL-safe
/// base64 with and without padding — replaced by `***`. Longer needles go first, so a
/// value that contains another is masked whole. Empty values are skipped.
pub fn redact(text: &str, secrets: &[&SecretString]) -> String {
    // Plaintext copies: wiped when dropped.
    let mut needles: Vec<Zeroizing<String>> = Vec::new();
    for s in secrets {
        let v = s.expose_secret();
        if v.is_empty() {
            continue;
        }
        needles.push(Zeroizing::new(v.to_string()));
        for engine in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
            needles.push(Zeroizing::new(engine.encode(v.as_bytes())));
        }
    }
    needles.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    needles.dedup();
    let mut out = text.to_string();
    for n in needles.iter() {
        if out.contains(n.as_str()) {
            out = out.replace(n.as_str(), MASK);
        }
    }
    out
}

/// The last `n` lines of `text`.
pub fn tail_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The last `n` lines of the step `step` in a job log as GitHub writes it (each line
/// starting with a timestamp, each step opening with `##[group]<step>` or
/// `##[group]Run <step>`), timestamps stripped; the last `n` lines of the whole log when
/// the step cannot be found.
pub fn step_excerpt(log: &str, step: &str, n: usize) -> String {
    let lines: Vec<&str> = log.lines().map(strip_timestamp).collect();
    let opens = |l: &str| {
        l.strip_prefix("##[group]")
            .map(|g| g == step || g.strip_prefix("Run ") == Some(step))
            .unwrap_or(false)
    };
    let section = match lines.iter().position(|l| !step.is_empty() && opens(l)) {
        Some(start) => {
            let end = lines[start + 1..]
                .iter()
                .position(|l| l.starts_with("##[group]"))
                .map(|i| start + 1 + i)
                .unwrap_or(lines.len());
            &lines[start..end]
        }
        None => &lines[..],
    };
    section[section.len().saturating_sub(n)..].join("\n")
}

/// A log line without GitHub's leading `2026-12-04T10:00:00.0000000Z ` timestamp.
fn strip_timestamp(line: &str) -> &str {
    let line = line.strip_prefix('\u{feff}').unwrap_or(line);
    match line.split_once(' ') {
        Some((ts, rest))
            if ts.len() >= 20
                && ts.ends_with('Z')
                && ts.as_bytes()[4] == b'-'
                && ts.as_bytes()[10] == b'T' =>
        {
            rest
        }
        _ => line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> SecretString {
        SecretString::from(v.to_string())
    }

    #[test]
    fn every_occurrence_and_every_base64_form_is_masked() {
        let v = s("tok_s3cr3t?>");
        let b = STANDARD.encode("tok_s3cr3t?>");
        let u = URL_SAFE_NO_PAD.encode("tok_s3cr3t?>");
        let text = format!("a tok_s3cr3t?> b tok_s3cr3t?>\nb64 {b} url {u}");
        let out = redact(&text, &[&v]);
        assert_eq!(out, "a *** b ***\nb64 *** url ***");
        assert!(!out.contains("tok_s3cr3t"));
    }

    #[test]
    fn a_value_inside_another_is_masked_whole_and_empty_values_are_ignored() {
        let long = s("abcdef-123456");
        let short = s("abcdef");
        let empty = s("");
        let out = redact("x abcdef-123456 y abcdef z", &[&short, &long, &empty]);
        assert_eq!(out, "x *** y *** z");
    }

    #[test]
    fn multibyte_text_survives() {
        let v = s("pässwörd");
        assert_eq!(redact("→ pässwörd ←", &[&v]), "→ *** ←");
    }

    #[test]
    fn the_failing_steps_lines_are_cut_out_without_timestamps() {
        let log = "2026-12-04T10:00:00.0000000Z ##[group]Set up job\n\
                   2026-12-04T10:00:00.1000000Z runner 2.3\n\
                   2026-12-04T10:00:01.0000000Z ##[group]Run Check secrets\n\
                   2026-12-04T10:00:01.1000000Z API_TOKEN does not match\n\
                   2026-12-04T10:00:01.2000000Z ##[error]Process completed with exit code 1.\n\
                   2026-12-04T10:00:02.0000000Z ##[group]Complete job\n\
                   2026-12-04T10:00:02.1000000Z cleaning up";
        assert_eq!(
            step_excerpt(log, "Check secrets", 30),
            "##[group]Run Check secrets\nAPI_TOKEN does not match\n##[error]Process completed with exit code 1."
        );
        assert_eq!(
            step_excerpt(log, "Check secrets", 1),
            "##[error]Process completed with exit code 1."
        );
        assert_eq!(
            step_excerpt(log, "nope", 2),
            "##[group]Complete job\ncleaning up"
        );
        assert_eq!(tail_lines("a\nb\nc", 2), "b\nc");
    }
}
