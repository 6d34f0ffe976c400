//! Files only rotor's user may read: the state folder (ledger, audit log, listing cache,
//! lock) holds repository inventories, key ids and GitHub's error text.
//!
//! Folders are created 0700 and files 0600 whatever the umask, and an existing file or
//! state folder with a looser mode is tightened when rotor opens it. Files are opened with
//! `O_NOFOLLOW`: a symlink planted in the state folder (pointing at a file another user
//! wants rotor to append to or truncate) is refused, not followed. Temporary files get
//! names nobody can guess in advance and are created exclusively. Imports nothing of rotor.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

#[cfg(unix)]
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};

/// Mode of the folders rotor creates.
pub const DIR_MODE: u32 = 0o700;
/// Mode of the files rotor creates.
pub const FILE_MODE: u32 = 0o600;

/// Creates `dir` (and missing parents) as 0700; an existing `dir` is tightened to 0700
/// when it is looser and belongs to this user.
pub fn create_dir(dir: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    builder.mode(DIR_MODE);
    builder.create(dir)?;
    #[cfg(unix)]
    tighten(dir, DIR_MODE)?;
    Ok(())
}

/// Sets `path`'s mode to `mode` when it grants more (to group or others) and this user owns
/// it; a file of another owner is left as it is (rotor could not change it anyway).
#[cfg(unix)]
fn tighten(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path)?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if meta.uid() == me && meta.mode() & 0o077 != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

fn options() -> OpenOptions {
    let mut o = OpenOptions::new();
    #[cfg(unix)]
    o.mode(FILE_MODE).custom_flags(libc::O_NOFOLLOW);
    o
}

/// Tightens an opened file to 0600 when it is looser (one created by an older rotor, or
/// under another umask).
fn tighten_file(file: &File) -> io::Result<()> {
    #[cfg(unix)]
    {
        let mode = file.metadata()?.permissions().mode();
        if mode & 0o077 != 0 {
            file.set_permissions(std::fs::Permissions::from_mode(FILE_MODE))?;
        }
    }
    #[cfg(not(unix))]
    let _ = file;
    Ok(())
}

/// Opens `path` to append (and read), creating it 0600; refuses a symlink.
pub fn open_append(path: &Path) -> io::Result<File> {
    let file = options()
        .create(true)
        .append(true)
        .read(true)
        .open(path)
        .map_err(|e| explain_symlink(path, e))?;
    tighten_file(&file)?;
    Ok(file)
}

/// Opens `path` to write without truncating (the lock file), creating it 0600; refuses a
/// symlink.
pub fn open_write(path: &Path) -> io::Result<File> {
    let file = options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| explain_symlink(path, e))?;
    tighten_file(&file)?;
    Ok(file)
}

/// Opens an existing `path` to read; refuses a symlink. `NotFound` when it is absent.
pub fn open_read(path: &Path) -> io::Result<File> {
    options()
        .read(true)
        .open(path)
        .map_err(|e| explain_symlink(path, e))
}

/// Reads `path` whole, refusing past `limit` bytes (a policy file, a cache): the error says
/// how large it may be. Follows symlinks (policy folders are often links into a checkout).
pub fn read_capped(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    let file = File::open(path)?;
    let mut out = Vec::new();
    file.take(limit + 1).read_to_end(&mut out)?;
    if out.len() as u64 > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("larger than {limit} bytes; rotor reads no more of it"),
        ));
    }
    Ok(out)
}

/// Writes `bytes` to a new temporary file beside `path` (created exclusively, 0600, under
/// a random name), flushes it to disk and renames it over `path`.
pub fn replace(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(d) => d.to_path_buf(),
        None => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .permissions(std::fs::Permissions::from_mode(FILE_MODE))
        .tempfile_in(&dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    if let Ok(d) = File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

fn explain_symlink(path: &Path, e: io::Error) -> io::Error {
    #[cfg(unix)]
    if e.raw_os_error() == Some(libc::ELOOP) {
        return io::Error::new(
            e.kind(),
            format!(
                "{} is a symbolic link; rotor does not follow links in its state folder",
                path.display()
            ),
        );
    }
    let _ = path;
    e
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::symlink_metadata(path)
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    }

    #[test]
    fn files_and_folders_are_private_whatever_was_there() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("state");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        create_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        let file = dir.join("ledger.jsonl");
        std::fs::write(&file, b"").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        open_append(&file).unwrap();
        assert_eq!(mode(&file), 0o600);
        replace(&dir.join("listings.json"), b"{}").unwrap();
        assert_eq!(mode(&dir.join("listings.json")), 0o600);
    }

    #[test]
    fn a_symlink_in_the_state_folder_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let victim = tmp.path().join("victim");
        std::fs::write(&victim, b"keep").unwrap();
        let link = tmp.path().join("audit.jsonl");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        let err = open_append(&link).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert!(open_write(&link).is_err());
        assert!(open_read(&link).is_err());
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
    }

    #[test]
    fn a_planted_temporary_file_is_not_written_through() {
        // The compaction temp file had a fixed name (`ledger.jsonl.tmp`): a link planted
        // there was followed and its target truncated.
        let tmp = tempfile::tempdir().unwrap();
        let victim = tmp.path().join("victim");
        std::fs::write(&victim, b"keep").unwrap();
        std::os::unix::fs::symlink(&victim, tmp.path().join("ledger.jsonl.tmp")).unwrap();
        let target = tmp.path().join("ledger.jsonl");
        replace(&target, b"one\n").unwrap();
        replace(&target, b"two\n").unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"two\n");
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
        let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
        assert_eq!(left.len(), 3, "no temporary file is left behind");
    }

    #[test]
    fn reading_stops_at_the_cap() {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("big.yaml");
        std::fs::write(&f, vec![b'a'; 11]).unwrap();
        assert!(read_capped(&f, 10).is_err());
        assert_eq!(read_capped(&f, 11).unwrap().len(), 11);
    }
}
