//! The audit trail: an append-only JSON-lines file with one record per rotation and per
//! push (time, policy, target, source version, key id, result, GitHub's request id). Each
//! record reaches the disk before the push it describes is reported done. Never a value.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The audit file's name under `ROTOR_STATE_DIR` when no other path is given.
pub const AUDIT_FILE: &str = "audit.jsonl";

/// What a record is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditEvent {
    /// A policy's source made (or failed to make) a new version.
    Rotation,
    /// A sealed value was sent to (or refused by) one target.
    Push,
    /// A transactional rotation reached a state (`pending` ... `committed`, `rolled_back`).
    Transaction,
    /// A verification run concluded (or could not start) in one repository.
    Verification,
    /// A dynamic credential's lease was revoked or renewed.
    Lease,
    /// `rotor rollback` re-pushed an earlier version.
    Rollback,
}

/// One line of the audit file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub time: DateTime<Utc>,
    pub event: AuditEvent,
    pub policy: String,
    /// The policy's owner, as the policy states it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Pushes: the target, as `acme/api`, `acme/api env:production` or `org:acme`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Pushes: the GitHub secret name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// The source version made (rotation) or sent (push).
    pub source_version: Option<u64>,
    /// Pushes: the id of the public key the value was sealed with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// Rotation: `rotated`, `recovered` (a version written before a crash, found again) or
    /// `failed`. Push: `created`, `updated` or `failed`.
    pub result: String,
    /// Rotation: why (`initial`, `due`, `max_age`, `forced`, `unconvergeable`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// GitHub's `x-github-request-id` of the push (or of the failed request).
    pub github_request_id: Option<String>,
    /// HTTP status of a failed request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// What went wrong (GitHub's or Vault's message), for failures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The CI run rotor ran in (GitHub Actions: repository, workflow, run id and number).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<RunContext>,
}

/// The GitHub Actions run a record was made in, from the runner's environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunContext {
    pub repository: Option<String>,
    pub workflow: Option<String>,
    pub run_id: Option<String>,
    pub run_number: Option<String>,
    pub run_attempt: Option<String>,
}

impl RunContext {
    /// The run this process is part of (`GITHUB_ACTIONS=true`), read once.
    pub fn current() -> Option<RunContext> {
        static RUN: std::sync::OnceLock<Option<RunContext>> = std::sync::OnceLock::new();
        RUN.get_or_init(|| {
            if std::env::var("GITHUB_ACTIONS").ok().as_deref() != Some("true") {
                return None;
            }
            let get = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
            Some(RunContext {
                repository: get("GITHUB_REPOSITORY"),
                workflow: get("GITHUB_WORKFLOW"),
                run_id: get("GITHUB_RUN_ID"),
                run_number: get("GITHUB_RUN_NUMBER"),
                run_attempt: get("GITHUB_RUN_ATTEMPT"),
            })
        })
        .clone()
    }
}

impl AuditRecord {
    /// A record with the common fields set and the rest empty.
    pub fn new(event: AuditEvent, policy: &str, result: &str) -> AuditRecord {
        AuditRecord {
            time: Utc::now(),
            event,
            policy: policy.to_string(),
            owner: None,
            target: None,
            secret: None,
            source_version: None,
            key_id: None,
            result: result.to_string(),
            reason: None,
            github_request_id: None,
            status: None,
            message: None,
            run: RunContext::current(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("audit log {path}: {source}")]
pub struct AuditError {
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

/// An open audit file. Records are appended with one `write` and synced to disk before
/// `write` returns, so a crash loses at most the record being written (a torn last line,
/// dropped by the next `open`).
pub struct AuditLog {
    path: PathBuf,
    file: Mutex<File>,
}

impl AuditLog {
    /// Opens (creating it and its folder if needed) the audit file at `path`.
    pub fn open(path: &Path) -> Result<AuditLog, AuditError> {
        let err = |source| AuditError {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            crate::private_fs::create_dir(dir).map_err(err)?;
        }
        let mut file = crate::private_fs::open_append(path).map_err(err)?;
        let keep = complete_len(&mut file).map_err(err)?;
        if keep < file.metadata().map_err(err)?.len() {
            file.set_len(keep).map_err(err)?;
        }
        Ok(AuditLog {
            path: path.to_path_buf(),
            file: Mutex::new(file),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one record and syncs it to disk.
    pub fn write(&self, record: &AuditRecord) -> Result<(), AuditError> {
        let mut line = serde_json::to_vec(record).expect("audit records serialize");
        line.push(b'\n');
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        file.write_all(&line)
            .and_then(|()| file.sync_data())
            .map_err(|source| AuditError {
                path: self.path.clone(),
                source,
            })
    }

    /// Opens the file again by its path (after logrotate renamed it, on SIGHUP), creating
    /// it if it is gone. On failure the old file stays in use.
    pub fn reopen(&self) -> Result<(), AuditError> {
        let fresh = AuditLog::open(&self.path)?;
        let file = fresh.file.into_inner().unwrap_or_else(|p| p.into_inner());
        *self.file.lock().unwrap_or_else(|p| p.into_inner()) = file;
        Ok(())
    }

    /// Syncs the file to disk (every `write` already does; this is for shutdown).
    pub fn sync(&self) -> Result<(), AuditError> {
        let file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        file.sync_all().map_err(|source| AuditError {
            path: self.path.clone(),
            source,
        })
    }

    /// Every complete record of an audit file (for tools and tests). A line that does not
    /// parse is skipped.
    pub fn read(path: &Path) -> Result<Vec<AuditRecord>, AuditError> {
        let file = File::open(path).map_err(|source| AuditError {
            path: path.to_path_buf(),
            source,
        })?;
        let mut out = Vec::new();
        for line in BufReader::new(file).lines() {
            let line = line.map_err(|source| AuditError {
                path: path.to_path_buf(),
                source,
            })?;
            if let Ok(r) = serde_json::from_str(&line) {
                out.push(r);
            }
        }
        Ok(out)
    }
}

/// The length of the file up to and including its last newline.
fn complete_len(file: &mut File) -> io::Result<u64> {
    const CHUNK: u64 = 64 * 1024;
    let len = file.metadata()?.len();
    let mut end = len;
    let mut buf = Vec::new();
    while end > 0 {
        let start = end.saturating_sub(CHUNK);
        buf.resize((end - start) as usize, 0);
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut buf)?;
        if let Some(i) = buf.iter().rposition(|b| *b == b'\n') {
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(n: u64) -> AuditRecord {
        let mut r = AuditRecord::new(AuditEvent::Push, "p", "created");
        r.target = Some(format!("acme/svc-{n}"));
        r.secret = Some("TOKEN".into());
        r.source_version = Some(n);
        r.key_id = Some("k1".into());
        r.github_request_id = Some("C0DE:1".into());
        r
    }

    #[test]
    fn records_are_appended_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state").join(AUDIT_FILE);
        {
            let log = AuditLog::open(&path).unwrap();
            log.write(&push(1)).unwrap();
            log.write(&AuditRecord::new(AuditEvent::Rotation, "p", "rotated"))
                .unwrap();
        }
        let log = AuditLog::open(&path).unwrap();
        log.write(&push(2)).unwrap();
        let records = AuditLog::read(&path).unwrap();
        assert_eq!(records.len(), 3);
        assert_eq!(records[0], push(1).clone_with_time(records[0].time));
        assert_eq!(records[1].event, AuditEvent::Rotation);
        let line = std::fs::read_to_string(&path).unwrap();
        assert!(
            line.lines()
                .next()
                .unwrap()
                .contains(r#""github_request_id":"C0DE:1""#),
            "{line}"
        );
    }

    #[test]
    fn a_torn_last_line_is_dropped_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(AUDIT_FILE);
        {
            let log = AuditLog::open(&path).unwrap();
            log.write(&push(1)).unwrap();
        }
        let good = std::fs::metadata(&path).unwrap().len();
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(br#"{"time":"2026-"#).unwrap();
        drop(f);
        let log = AuditLog::open(&path).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), good);
        log.write(&push(2)).unwrap();
        assert_eq!(AuditLog::read(&path).unwrap().len(), 2);
    }

    #[test]
    fn reopening_follows_a_rotated_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(AUDIT_FILE);
        let log = AuditLog::open(&path).unwrap();
        log.write(&push(1)).unwrap();
        std::fs::rename(&path, dir.path().join("audit.jsonl.1")).unwrap();
        log.reopen().unwrap();
        log.write(&push(2)).unwrap();
        assert_eq!(AuditLog::read(&path).unwrap().len(), 1);
        assert_eq!(
            AuditLog::read(&dir.path().join("audit.jsonl.1"))
                .unwrap()
                .len(),
            1
        );
    }

    impl AuditRecord {
        fn clone_with_time(mut self, time: DateTime<Utc>) -> Self {
            self.time = time;
            self
        }
    }
}
