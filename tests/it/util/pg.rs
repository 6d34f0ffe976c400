//! A real PostgreSQL server per test (Debian's `postgresql` packages): a fresh cluster in a
//! temporary folder (`initdb`), on a free loopback port, trust authentication, stopped on
//! drop. PostgreSQL refuses to run as root; when the tests run as root, the cluster is
//! owned by and run as the `postgres` user the Debian package creates.
//!
//! The test side talks to it with `psql` (never through rotor).

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const READY_TIMEOUT: Duration = Duration::from_secs(30);
const INSTALL: &str = "apt-get install -y postgresql (scripts/test does)";

/// A running PostgreSQL server.
pub struct Pg {
    pub port: u16,
    /// The superuser (trusted on loopback; any password is accepted).
    pub user: String,
    bin: PathBuf,
    child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Pg {
    /// Initialises a cluster and starts it; panics with its log if it does not accept
    /// connections within 30 s, or with the install command if PostgreSQL is missing.
    pub fn start() -> Pg {
        let bin = find_bin();
        let dir = tempfile::tempdir().expect("a temporary directory for the cluster");
        let owner = run_as();
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))
                .expect("give the cluster folder to the postgres user");
        }
        let data = dir.path().join("data");
        let log = dir.path().join("postgres.log");
        let init = command(&bin.join("initdb"), owner)
            .args(["-D"])
            .arg(&data)
            .args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"])
            .output()
            .expect("run initdb");
        assert!(
            init.status.success(),
            "initdb failed: {}{}",
            String::from_utf8_lossy(&init.stdout),
            String::from_utf8_lossy(&init.stderr)
        );
        let port = super::daemon::free_port();
        let out = File::create(&log).expect("create the server log");
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(&log, Some(uid), Some(gid)).expect("chown the log");
        }
        let err = out.try_clone().expect("share the log file");
        let child = command(&bin.join("postgres"), owner)
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1"])
            .arg("-c")
            .arg(format!("unix_socket_directories={}", dir.path().display()))
            .args(["-c", "fsync=off", "-c", "full_page_writes=off"])
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .expect("start postgres");
        let mut pg = Pg {
            port,
            user: "postgres".into(),
            bin,
            child,
            log,
            _dir: dir,
        };
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok(Some(status)) = pg.child.try_wait() {
                panic!("postgres exited ({status}); its log:\n{}", pg.logs());
            }
            if pg.try_sql("SELECT 1").is_ok() {
                return pg;
            }
            if Instant::now() > deadline {
                panic!(
                    "postgres did not accept connections; its log:\n{}",
                    pg.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Runs `sql` with psql as the superuser; the rows, one per line, fields split by `|`.
    pub fn sql(&self, sql: &str) -> String {
        self.try_sql(sql)
            .unwrap_or_else(|e| panic!("psql {sql:?}: {e}\nserver log:\n{}", self.logs()))
    }

    fn try_sql(&self, sql: &str) -> Result<String, String> {
        let psql = Some(self.bin.join("psql"))
            .filter(|p| p.is_file())
            .unwrap_or_else(|| PathBuf::from("psql"));
        let out = Command::new(psql)
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args([
                "-U",
                &self.user,
                "-d",
                "postgres",
                "-XAtq",
                "-v",
                "ON_ERROR_STOP=1",
            ])
            .args(["-c", sql])
            .env_remove("PGPASSWORD")
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).to_string())
        }
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        // SIGQUIT: immediate shutdown; nothing of a test cluster needs to survive.
        // SAFETY: kill(2) on the child this value started and has not reaped.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGQUIT);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `program`, run as `owner` when given.
fn command(program: &Path, owner: Option<(u32, u32)>) -> Command {
    let mut cmd = Command::new(program);
    if let Some((uid, gid)) = owner {
        cmd.uid(uid).gid(gid);
    }
    cmd
}

/// The postgres user's ids when running as root (PostgreSQL will not run as root).
fn run_as() -> Option<(u32, u32)> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    let name = std::ffi::CString::new("postgres").expect("a C string");
    // SAFETY: getpwnam with a valid C string; the result is read at once, before any other
    // call that could overwrite its static buffer.
    let pw = unsafe { libc::getpwnam(name.as_ptr()) };
    if pw.is_null() {
        panic!("running as root and there is no postgres user to run PostgreSQL as: {INSTALL}");
    }
    // SAFETY: pw is non-null and points at getpwnam's record.
    Some(unsafe { ((*pw).pw_uid, (*pw).pw_gid) })
}

/// The folder holding initdb and postgres: Debian's `/usr/lib/postgresql/<major>/bin` (the
/// newest), else the first folder on PATH that has both.
fn find_bin() -> PathBuf {
    let mut majors: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let major = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((major, bin))
        })
        .collect();
    majors.sort();
    if let Some((_, bin)) = majors.pop() {
        return bin;
    }
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .find(|d| d.join("initdb").is_file() && d.join("postgres").is_file())
        })
        .unwrap_or_else(|| panic!("PostgreSQL's server is missing: {INSTALL}"))
}
