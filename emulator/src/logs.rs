//! A run's logs as GitHub writes them: one plain-text log per job, each line stamped
//! `2026-12-04T10:00:00.0000000Z`, each step in a `##[group]`, a failing step ending in
//! `##[error]Process completed with exit code 1.`; and the run's archive, a zip holding the
//! job's log and one file per step. Secrets a workflow `echo`es are printed as they are and
//! in base64, so a client's redaction can be proved.

use base64::Engine as _;
use chrono::{DateTime, Utc};
use secrecy::ExposeSecret as _;

use super::runs::{Phase, RunState, JOB_NAME};

fn stamp(t: DateTime<Utc>) -> String {
    format!("{}0Z", t.format("%Y-%m-%dT%H:%M:%S%.6f"))
}

/// The lines of each step that has started by `now`, by step.
fn step_lines(run: &RunState, now: DateTime<Utc>) -> Vec<(usize, &'static str, Vec<String>)> {
    let broken = run.broken();
    let seen = run.seen();
    let mut out = Vec::new();
    for step in run.steps(now) {
        let Some(start) = step.started_at else {
            continue;
        };
        if step.conclusion.as_deref() == Some("skipped") {
            continue;
        }
        let t = stamp(start);
        let mut text: Vec<String> = vec![format!("##[group]{}", step.name)];
        match step.number {
            1 => {
                text.push("Current runner version: '2.321.0'".into());
                text.push("Runner name: 'GitHub Actions 1'".into());
                text.push(format!("Job is about to start running: {JOB_NAME}"));
                if let Some(env) = &run.workflow.environment {
                    text.push(format!("Environment: {env}"));
                }
            }
            2 => {
                for name in &run.workflow.echo {
                    let key = name.to_ascii_uppercase();
                    let value = seen
                        .get(&key)
                        .map(|v| v.expose_secret().to_string())
                        .unwrap_or_default();
                    let b64 = base64::engine::general_purpose::STANDARD.encode(value.as_bytes());
                    text.push(format!("{key}={value}"));
                    text.push(format!("{key} (base64)={b64}"));
                }
                text.push(format!(
                    "Checking {} required secret(s)",
                    run.workflow.require.len()
                ));
                for why in &broken {
                    text.push(format!("##[error]{why}"));
                }
            }
            3 => text.push(format!("Running the tests of {}", run.workflow.file)),
            _ => text.push("Cleaning up orphan processes".into()),
        }
        if step.phase == Phase::Completed {
            text.push("##[endgroup]".into());
            if step.conclusion.as_deref() == Some("failure") {
                text.push("##[error]Process completed with exit code 1.".into());
            }
        }
        let lines = text.into_iter().map(|l| format!("{t} {l}")).collect();
        out.push((step.number, step.name, lines));
    }
    out
}

/// The job's log so far; `None` before the job has started.
pub(crate) fn job_log(run: &RunState, now: DateTime<Utc>) -> Option<String> {
    if run.status(now) == Phase::Queued {
        return None;
    }
    let mut text = String::new();
    for (_, _, lines) in step_lines(run, now) {
        for l in lines {
            text.push_str(&l);
            text.push('\n');
        }
    }
    Some(text)
}

/// The run's log archive: `0_verify.txt` (the whole job) and `verify/<n>_<step>.txt`.
pub(crate) fn run_archive(run: &RunState, now: DateTime<Utc>) -> Option<Vec<u8>> {
    let whole = job_log(run, now)?;
    let mut files = vec![(format!("0_{JOB_NAME}.txt"), whole.into_bytes())];
    for (n, name, lines) in step_lines(run, now) {
        let mut text = lines.join("\n");
        text.push('\n');
        files.push((format!("{JOB_NAME}/{n}_{name}.txt"), text.into_bytes()));
    }
    Some(stored_zip(&files))
}

/// CRC-32 (IEEE), as zip wants it.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

/// A zip archive whose entries are stored uncompressed (method 0).
pub(crate) fn stored_zip(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    let u16le = |v: &mut Vec<u8>, n: u16| v.extend_from_slice(&n.to_le_bytes());
    let u32le = |v: &mut Vec<u8>, n: u32| v.extend_from_slice(&n.to_le_bytes());
    for (name, data) in files {
        let offset = out.len() as u32;
        let crc = crc32(data);
        let size = data.len() as u32;
        let name = name.as_bytes();
        // Local file header.
        u32le(&mut out, 0x0403_4b50);
        u16le(&mut out, 20); // version needed
        u16le(&mut out, 0x0800); // flags: UTF-8 names
        u16le(&mut out, 0); // stored
        u16le(&mut out, 0); // time
        u16le(&mut out, 0x21); // date: 1980-01-01
        u32le(&mut out, crc);
        u32le(&mut out, size);
        u32le(&mut out, size);
        u16le(&mut out, name.len() as u16);
        u16le(&mut out, 0);
        out.extend_from_slice(name);
        out.extend_from_slice(data);
        // Central directory entry.
        u32le(&mut central, 0x0201_4b50);
        u16le(&mut central, 20); // version made by
        u16le(&mut central, 20);
        u16le(&mut central, 0x0800);
        u16le(&mut central, 0);
        u16le(&mut central, 0);
        u16le(&mut central, 0x21);
        u32le(&mut central, crc);
        u32le(&mut central, size);
        u32le(&mut central, size);
        u16le(&mut central, name.len() as u16);
        u16le(&mut central, 0); // extra
        u16le(&mut central, 0); // comment
        u16le(&mut central, 0); // disk
        u16le(&mut central, 0); // internal attributes
        u32le(&mut central, 0); // external attributes
        u32le(&mut central, offset);
        central.extend_from_slice(name);
    }
    let cd_offset = out.len() as u32;
    let cd_size = central.len() as u32;
    out.extend_from_slice(&central);
    // End of central directory.
    u32le(&mut out, 0x0605_4b50);
    u16le(&mut out, 0);
    u16le(&mut out, 0);
    u16le(&mut out, files.len() as u16);
    u16le(&mut out, files.len() as u16);
    u32le(&mut out, cd_size);
    u32le(&mut out, cd_offset);
    u16le(&mut out, 0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_is_the_ieee_one() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn a_stored_zip_has_its_headers_and_entries() {
        let zip = stored_zip(&[("a/1_x.txt".into(), b"hello\n".to_vec())]);
        assert!(zip.starts_with(b"PK\x03\x04"));
        let eocd = &zip[zip.len() - 22..];
        assert!(eocd.starts_with(b"PK\x05\x06"));
        assert_eq!(u16::from_le_bytes([eocd[10], eocd[11]]), 1);
        let hay = String::from_utf8_lossy(&zip);
        assert!(hay.contains("a/1_x.txt") && hay.contains("hello"));
    }

    #[test]
    fn stamps_have_seven_fraction_digits() {
        let t = DateTime::from_timestamp(1_796_378_400, 0).expect("time");
        assert_eq!(stamp(t), "2026-12-04T10:00:00.0000000Z");
    }
}
