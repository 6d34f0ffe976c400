//! README's first command, `rotor sandbox`, run as a newcomer would (from an empty folder,
//! on the embedded example policies and fleet): every value the emulator decrypted matches
//! its source, and the example transaction (payments-deploy-token: canary, verification
//! runs, commit) went through.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sandbox_rotates_the_example_policies_and_verifies_the_transactional_one() {
    let empty = tempfile::tempdir().expect("a folder");
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_rotor"))
        .arg("sandbox")
        .current_dir(empty.path())
        .env_remove("ROTOR_POLICIES")
        .env_remove("ROTOR_STATE_DIR")
        // An operator's own settings in the shell: the sandbox keeps them from its children
        // (with them, its rotor would log in as this App, refuse every example policy, and
        // send AppRole credentials to the dev server).
        .env("GITHUB_APP_ID", "12345")
        .env("GITHUB_APP_PRIVATE_KEY_FILE", "/nonexistent/app.pem")
        .env("VAULT_ROLE_ID", "operator-role")
        .env("VAULT_SECRET_ID", "operator-secret-id")
        .env("ROTOR_ALLOWED_SOURCES", "nothing/*")
        .env("RUST_LOG", "warn")
        .output()
        .await
        .expect("run rotor sandbox (bao must be on PATH: scripts/test puts .venv/bin there)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("23 secrets pushed, 23 decrypted by the emulator to exactly the value their source holds, 0 wrong; 0 of 5 commands failed."),
        "{stdout}"
    );
    assert!(
        stdout.contains("transaction: policy payments-deploy-token version 1: committed"),
        "{stdout}"
    );
    for (repo, wave) in [
        ("payments-api", "canary"),
        ("payments-web", "fleet"),
        ("payments-worker", "fleet"),
    ] {
        assert!(
            stdout
                .lines()
                .any(|l| l.contains(&format!("verify acme/{repo} ({wave}): run"))
                    && l.ends_with(" success")),
            "{repo}: {stdout}"
        );
    }
}
