//! A vendor's provisioning job, with rotor as a library: provisions the vendor's credential
//! into every repository of every installation of its GitHub App, against the emulator.
//!
//! `cargo run --example partner` (CI runs it through `scripts/test`). It starts an
//! emulator with three customer organizations — one installation on all repositories,
//! one on two selected repositories, one on all — asks the App for its installations,
//! builds one policy in code (no YAML) targeting each installation's organization, applies
//! it as the App, and checks that every reachable repository, and no other, decrypts to
//! the same credential. Exit code 0 when all is right.

use std::process::ExitCode;

use github_emulator::{App, AppKeyPair, AppSpec, Emulator, FleetSpec, InstallationSpec, Scope};
use rotor::sdk::{PolicyBuilder, Rotor};

const APP_ID: u64 = 777_001;

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("partner: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    // The customers, and the vendor's App installed in their organizations.
    let key = AppKeyPair::generate();
    let mut fleet = FleetSpec::generate(&["acme", "globex", "initech"], 4);
    fleet.apps = vec![AppSpec {
        id: APP_ID,
        client_id: Some("Iv23liVENDOR".into()),
        slug: Some("vendor-ci".into()),
        public_key: key.public_pem.clone(),
        token_lifetime_secs: 3600,
        installations: vec![
            InstallationSpec::all("acme"),
            InstallationSpec::all("globex").selected(&["svc-0001", "svc-0003"]),
            InstallationSpec::all("initech"),
        ],
    }];
    let emulator = Emulator::try_new(fleet)?;
    let server = emulator.serve("127.0.0.1:0".parse()?).await?;
    let state = tempfile::tempdir()?;

    // The vendor's side: rotor as the App.
    let rotor = Rotor::builder()
        .api_url(&server.url)
        .github_app(&APP_ID.to_string(), key.private_pem.clone())
        .state_dir(state.path())
        .build()?;
    let installations = rotor.installations().await?;
    let mut policy = PolicyBuilder::new("vendor-credential")
        .owner("integrations@vendor.example")
        .generate(48)
        .secret("VENDOR_CI_TOKEN", "value");
    for i in &installations {
        let account = i
            .account
            .as_ref()
            .ok_or("an installation without an account")?;
        println!(
            "installation {} on {} ({} repositories)",
            i.id, account.login, i.repository_selection
        );
        policy = policy.org(&account.login);
    }
    let policy = policy.build()?;

    let plan = rotor.plan(std::slice::from_ref(&policy)).await;
    let targets: usize = plan.policies.iter().map(|p| p.targets.len()).sum();
    println!("plan: {targets} repositories to provision");
    let report = rotor.apply(std::slice::from_ref(&policy)).await;
    println!(
        "applied: {} pushed, {} failed",
        report.summary.pushed, report.summary.failed
    );
    for f in report.policies.iter().flat_map(|p| &p.failures) {
        println!("  failed {}: {}", f.target, f.message);
    }

    // Every repository an installation reaches holds the one credential; no other does.
    let mut values = std::collections::BTreeSet::new();
    let mut reached = 0;
    for (org, repos) in [
        (
            "acme",
            &["svc-0001", "svc-0002", "svc-0003", "svc-0004"][..],
        ),
        ("globex", &["svc-0001", "svc-0003"][..]),
        (
            "initech",
            &["svc-0001", "svc-0002", "svc-0003", "svc-0004"][..],
        ),
    ] {
        for repo in repos {
            let scope = Scope::Repo {
                owner: org.into(),
                repo: repo.to_string(),
                app: App::Actions,
            };
            let value = emulator
                .decrypted(&scope, "VENDOR_CI_TOKEN")
                .ok_or_else(|| format!("{org}/{repo} has no VENDOR_CI_TOKEN"))?;
            values.insert(value);
            reached += 1;
        }
    }
    for repo in ["svc-0002", "svc-0004"] {
        let scope = Scope::Repo {
            owner: "globex".into(),
            repo: repo.into(),
            app: App::Actions,
        };
        if emulator.decrypted(&scope, "VENDOR_CI_TOKEN").is_some() {
            return Err(
                format!("globex/{repo} is not in the installation but got the credential").into(),
            );
        }
    }
    if values.len() != 1 || report.summary.failed != 0 || report.summary.pushed != reached {
        return Err(format!(
            "{} distinct values, {} pushed for {reached} repositories, {} failed",
            values.len(),
            report.summary.pushed,
            report.summary.failed
        )
        .into());
    }
    println!(
        "ok: {reached} repositories across {} installations hold the same credential, decrypted by the emulator",
        installations.len()
    );
    Ok(())
}
