//! Runs the real `rotor` binary against the test's emulator and OpenBao, in its own
//! temporary folder (policies, ledger), capturing exit code, stdout and stderr.

use std::path::{Path, PathBuf};
use std::process::Output;

use tempfile::TempDir;

pub struct Workspace {
    pub dir: TempDir,
    pub github_url: String,
    pub token: String,
    pub vault: Option<(String, String)>,
    pub extra_env: Vec<(String, String)>,
}

/// The result of one rotor invocation.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    /// Panic with both streams unless the exit code is `code`.
    pub fn expect_code(self, code: i32) -> Run {
        assert_eq!(
            self.code, code,
            "rotor exited {} (expected {code})\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        );
        self
    }
}

impl Workspace {
    pub fn new(github_url: &str, token: &str, vault: Option<(String, String)>) -> Workspace {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("policies")).expect("policies dir");
        Workspace {
            dir,
            github_url: github_url.to_string(),
            token: token.to_string(),
            vault,
            extra_env: Vec::new(),
        }
    }

    pub fn policies(&self) -> PathBuf {
        self.dir.path().join("policies")
    }

    pub fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    pub fn write_policy(&self, file: &str, yaml: &str) {
        std::fs::write(self.policies().join(file), yaml).expect("write policy");
    }

    pub fn remove_policy(&self, file: &str) {
        std::fs::remove_file(self.policies().join(file)).expect("remove policy");
    }

    /// Run `rotor ARGS --policies ... --state-dir ...` (the folder flags are added for
    /// the commands that take them).
    pub async fn run(&self, args: &[&str]) -> Run {
        let out = self
            .command(args)
            .output()
            .await
            .expect("run the rotor binary");
        Run::from(out)
    }

    /// The `rotor ARGS` command with this workspace's folders, GitHub, Vault and extra
    /// environment (and nothing else from the test's environment).
    pub fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_rotor"));
        cmd.args(args)
            .current_dir(self.dir.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("ROTOR_POLICIES", self.policies())
            .env("ROTOR_STATE_DIR", self.state())
            .env("GITHUB_API_URL", &self.github_url)
            .env("GITHUB_TOKEN", &self.token)
            .env(
                "RUST_LOG",
                std::env::var("ROTOR_TEST_LOG").unwrap_or_else(|_| "warn".into()),
            );
        if let Some((addr, token)) = &self.vault {
            cmd.env("VAULT_ADDR", addr).env("VAULT_TOKEN", token);
        }
        for (k, v) in &self.extra_env {
            cmd.env(k, v);
        }
        cmd
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}
