//! The embedded ledger store: an append-only JSON-lines journal under `ROTOR_STATE_DIR`.
//!
//! Every record is appended with one `write` call, so a process killed at any moment leaves
//! at most one torn last line, which the next open drops (the previous state stays
//! readable). The journal is compacted by writing a new file and renaming it over the old
//! one, so a crash during compaction also leaves the old state intact. An exclusive lock on
//! `lock` keeps two rotor processes from writing one ledger at once.

use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::record::{Entry, LedgerState};
use crate::private_fs;

/// The longest journal line rotor reads. A record is a few hundred bytes; a longer line is
/// not one rotor wrote.
pub const MAX_LINE: u64 = 1024 * 1024;

const JOURNAL: &str = "ledger.jsonl";

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("ledger {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("ledger {path}:{line}: unreadable record ({message}); the journal is damaged in the middle, not at its end, so rotor will not guess")]
    Corrupt {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("ledger {path} is locked by another rotor process")]
    Locked { path: PathBuf },
}

/// An open ledger: the folded state plus the journal it appends to.
pub struct Ledger {
    dir: PathBuf,
    file: File,
    _lock: File,
    /// Shared with snapshots (see `snapshot`); an append copies it only while one is held.
    state: Arc<LedgerState>,
    lines: usize,
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> LedgerError + '_ {
    move |source| LedgerError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl Ledger {
    /// Open (creating if needed) the ledger in `dir`, replaying its journal.
    pub fn open(dir: &Path) -> Result<Ledger, LedgerError> {
        private_fs::create_dir(dir).map_err(io_err(dir))?;
        let lock_path = dir.join("lock");
        let lock = private_fs::open_write(&lock_path).map_err(io_err(&lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(LedgerError::Locked {
                    path: dir.to_path_buf(),
                })
            }
            Err(fs::TryLockError::Error(e)) => return Err(io_err(&lock_path)(e)),
        }
        let path = dir.join(JOURNAL);
        let (state, lines, valid_len) = replay(&path)?;
        let file = private_fs::open_append(&path).map_err(io_err(&path))?;
        if let Some(len) = valid_len {
            // Drop a torn last line left by a crash mid-write.
            file.set_len(len).map_err(io_err(&path))?;
        }
        let mut ledger = Ledger {
            dir: dir.to_path_buf(),
            file,
            _lock: lock,
            state: Arc::new(state),
            lines,
        };
        let records = ledger.state.targets.len() + ledger.state.keys.len();
        if ledger.lines > 1000 && ledger.lines > 4 * records.max(1) {
            ledger.compact()?;
        }
        Ok(ledger)
    }

    /// Read the state of a ledger without taking the lock (for `rotor status` while a
    /// daemon runs).
    pub fn read_state(dir: &Path) -> Result<LedgerState, LedgerError> {
        Ok(replay(&dir.join(JOURNAL))?.0)
    }

    pub fn state(&self) -> &LedgerState {
        &self.state
    }

    /// The state as it is now, to read without holding the ledger (e.g. across the network
    /// reads of planning). Costs no copy; an append made while it is held copies the state
    /// once, so keep it only as long as needed.
    pub fn snapshot(&self) -> Arc<LedgerState> {
        Arc::clone(&self.state)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Append one entry. It reaches the operating system before this returns (it survives
    /// the process being killed); `sync` makes it survive a power loss too.
    pub fn append(&mut self, entry: Entry) -> Result<(), LedgerError> {
        let mut line = serde_json::to_vec(&entry).expect("ledger entries serialize");
        line.push(b'\n');
        let path = self.dir.join(JOURNAL);
        self.file.write_all(&line).map_err(io_err(&path))?;
        Arc::make_mut(&mut self.state).apply(&entry);
        self.lines += 1;
        Ok(())
    }

    /// Flush the journal to stable storage.
    pub fn sync(&mut self) -> Result<(), LedgerError> {
        let path = self.dir.join(JOURNAL);
        self.file.sync_data().map_err(io_err(&path))
    }

    /// Compacts when the journal has grown well past the state it holds (the rule `open`
    /// applies), for a process that keeps the ledger open for months. Returns whether it did.
    pub fn compact_if_large(&mut self) -> Result<bool, LedgerError> {
        if self.lines > 1000 && self.lines > 4 * self.state.targets.len().max(1) {
            self.compact()?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Rewrite the journal as the shortest list of entries that gives the same state.
    pub fn compact(&mut self) -> Result<(), LedgerError> {
        let path = self.dir.join(JOURNAL);
        let entries = self.state.to_entries();
        let mut buf = Vec::new();
        for e in &entries {
            serde_json::to_writer(&mut buf, e).expect("ledger entries serialize");
            buf.push(b'\n');
        }
        // A new file under a random name, renamed over the journal: a crash leaves the old
        // journal whole, and nothing planted at a guessable name is written through.
        private_fs::replace(&path, &buf).map_err(io_err(&path))?;
        self.file = private_fs::open_append(&path).map_err(io_err(&path))?;
        self.lines = entries.len();
        Ok(())
    }
}

/// Replay a journal: the state, the number of records, and — when the last line is torn —
/// the length to cut the file to.
fn replay(path: &Path) -> Result<(LedgerState, usize, Option<u64>), LedgerError> {
    let mut state = LedgerState::default();
    let file = match private_fs::open_read(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((state, 0, None)),
        Err(e) => return Err(io_err(path)(e)),
    };
    let mut reader = BufReader::new(file);
    let mut offset: u64 = 0;
    let mut lines = 0;
    let mut buf = Vec::new();
    let mut n = 0;
    loop {
        buf.clear();
        let read = (&mut reader)
            .take(MAX_LINE + 1)
            .read_until(b'\n', &mut buf)
            .map_err(io_err(path))?;
        if read == 0 {
            return Ok((state, lines, None));
        }
        n += 1;
        if read as u64 > MAX_LINE {
            return Err(LedgerError::Corrupt {
                path: path.to_path_buf(),
                line: n,
                message: format!("the line is longer than {MAX_LINE} bytes"),
            });
        }
        let complete = buf.last() == Some(&b'\n');
        match serde_json::from_slice::<Entry>(&buf) {
            Ok(entry) if complete => {
                state.apply(&entry);
                lines += 1;
                offset += read as u64;
            }
            Ok(_) => return Ok((state, lines, Some(offset))),
            Err(e) => {
                // A bad record is acceptable only as the last line of the file, torn by a
                // crash mid-write (so without its newline). A complete line that does not
                // parse was not written by rotor: refused, with its number.
                let mut rest = Vec::new();
                (&mut reader)
                    .take(MAX_LINE)
                    .read_to_end(&mut rest)
                    .map_err(io_err(path))?;
                if !complete && rest.is_empty() {
                    return Ok((state, lines, Some(offset)));
                }
                return Err(LedgerError::Corrupt {
                    path: path.to_path_buf(),
                    line: n,
                    message: e.to_string(),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::record::{PushRecord, RotationRecord};
    use crate::model::SecretScope;
    use crate::policy::App;

    fn push(version: u64, repo: &str) -> Entry {
        Entry::Push(PushRecord {
            policy: "p".into(),
            scope: SecretScope::Repo {
                owner: "acme".into(),
                repo: repo.into(),
                app: App::Actions,
            },
            secret: "TOKEN".into(),
            version,
            key_id: "k1".into(),
            at: chrono::Utc::now(),
            outcome: "created".into(),
        })
    }

    fn rotation(version: u64) -> Entry {
        Entry::Rotation(RotationRecord {
            policy: "p".into(),
            version,
            at: chrono::Utc::now(),
            reason: "due".into(),
            total_rotations: None,
            expires_at: None,
        })
    }

    #[test]
    fn a_snapshot_keeps_the_state_it_was_taken_at_and_later_appends_go_on() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::open(dir.path()).unwrap();
        l.append(rotation(1)).unwrap();
        let snap = l.snapshot();
        assert!(
            Arc::ptr_eq(&snap, &l.snapshot()),
            "taking a snapshot copies nothing"
        );
        l.append(push(1, "a")).unwrap();
        assert_eq!(snap.targets.len(), 0);
        assert_eq!(l.state().targets.len(), 1);
        drop(snap);
        l.append(rotation(2)).unwrap();
        assert_eq!(l.state().policies["p"].version, Some(2));
    }

    #[test]
    fn entries_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut l = Ledger::open(dir.path()).unwrap();
            l.append(rotation(1)).unwrap();
            l.append(push(1, "a")).unwrap();
        }
        let l = Ledger::open(dir.path()).unwrap();
        assert_eq!(l.state().policies["p"].version, Some(1));
        assert_eq!(l.state().targets.len(), 1);
    }

    #[test]
    fn a_torn_last_line_is_dropped_and_the_previous_state_stays_readable() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut l = Ledger::open(dir.path()).unwrap();
            l.append(rotation(1)).unwrap();
            l.append(push(1, "a")).unwrap();
        }
        let path = dir.path().join(JOURNAL);
        let mut text = fs::read(&path).unwrap();
        let good = text.len();
        text.extend_from_slice(br#"{"type":"push","policy":"p","sco"#);
        fs::write(&path, &text).unwrap();
        let mut l = Ledger::open(dir.path()).unwrap();
        assert_eq!(l.state().targets.len(), 1);
        assert_eq!(fs::metadata(&path).unwrap().len() as usize, good);
        l.append(push(1, "b")).unwrap();
        drop(l);
        assert_eq!(Ledger::read_state(dir.path()).unwrap().targets.len(), 2);
    }

    #[test]
    fn damage_in_the_middle_is_an_error_not_a_silent_loss() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(JOURNAL);
        let good = serde_json::to_string(&rotation(1)).unwrap();
        fs::write(&path, format!("{good}\nnot json\n{good}\n")).unwrap();
        let err = Ledger::open(dir.path())
            .err()
            .expect("corrupt journal refused");
        assert!(err.to_string().contains(":2:"), "{err}");
    }

    #[test]
    fn a_complete_unparseable_last_line_was_silently_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(JOURNAL);
        let good = serde_json::to_string(&rotation(1)).unwrap();
        fs::write(&path, format!("{good}\n{good}\nnot json\n")).unwrap();
        let err = Ledger::open(dir.path())
            .err()
            .expect("a complete bad line is refused");
        assert!(err.to_string().contains(":3:"), "{err}");
        assert!(
            fs::read_to_string(&path).unwrap().ends_with("not json\n"),
            "nothing cut"
        );
    }

    #[test]
    fn a_line_longer_than_the_cap_is_refused_without_reading_it_all() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(JOURNAL);
        let good = serde_json::to_string(&rotation(1)).unwrap();
        let long = "x".repeat(MAX_LINE as usize + 10);
        fs::write(&path, format!("{good}\n{long}\n")).unwrap();
        let err = Ledger::open(dir.path()).err().expect("refused");
        assert!(err.to_string().contains(":2:"), "{err}");
        assert!(err.to_string().contains("longer than"), "{err}");
    }

    #[test]
    fn compaction_keeps_the_state() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::open(dir.path()).unwrap();
        for v in 1..=50 {
            l.append(rotation(v)).unwrap();
            l.append(push(v, "a")).unwrap();
            l.append(push(v, "b")).unwrap();
        }
        let before = l.state().clone();
        l.compact().unwrap();
        assert_eq!(l.state(), &before);
        drop(l);
        let after = Ledger::read_state(dir.path()).unwrap();
        assert_eq!(after, before);
        assert_eq!(after.policies["p"].rotations, 50);
        let lines = fs::read_to_string(dir.path().join(JOURNAL))
            .unwrap()
            .lines()
            .count();
        assert_eq!(lines, 3);
    }

    #[test]
    fn the_last_key_of_a_scope_is_kept_across_reopening_and_compaction() {
        let dir = tempfile::tempdir().unwrap();
        let scope = SecretScope::Repo {
            owner: "acme".into(),
            repo: "a".into(),
            app: App::Actions,
        };
        let key = |id: &str| {
            Entry::Key(crate::ledger::record::KeyRecord {
                scope: scope.clone(),
                key_id: id.into(),
                key: "hBT5WZEj8ZoOv6TYJsfWq7MxTEQopZO5/IT3ZCVQPzs=".into(),
                at: chrono::Utc::now(),
            })
        };
        {
            let mut l = Ledger::open(dir.path()).unwrap();
            l.append(key("k1")).unwrap();
            l.append(key("k2")).unwrap();
            l.compact().unwrap();
        }
        let l = Ledger::open(dir.path()).unwrap();
        assert_eq!(l.state().key(&scope).map(|k| k.key_id.as_str()), Some("k2"));
        assert_eq!(l.state().keys.len(), 1);
    }

    #[test]
    fn a_long_open_ledger_compacts_once_its_journal_outgrows_its_state() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::open(dir.path()).unwrap();
        for v in 1..=400 {
            l.append(rotation(v)).unwrap();
            l.append(push(v, "a")).unwrap();
        }
        assert!(!l.compact_if_large().unwrap(), "800 lines are not worth it");
        for v in 401..=600 {
            l.append(rotation(v)).unwrap();
            l.append(push(v, "a")).unwrap();
        }
        let before = l.state().clone();
        assert!(l.compact_if_large().unwrap());
        assert_eq!(l.state(), &before);
        drop(l);
        assert_eq!(Ledger::read_state(dir.path()).unwrap(), before);
        let lines = fs::read_to_string(dir.path().join(JOURNAL))
            .unwrap()
            .lines()
            .count();
        assert_eq!(lines, 2);
    }

    #[test]
    fn a_second_writer_is_refused_while_the_first_holds_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let _first = Ledger::open(dir.path()).unwrap();
        let err = Ledger::open(dir.path()).err().expect("second open refused");
        assert!(matches!(err, LedgerError::Locked { .. }));
    }
}
