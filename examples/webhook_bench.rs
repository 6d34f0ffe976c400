//! Provisioning latency through webhooks: `cargo run --release --example webhook_bench`
//! (needs `bao` on PATH: `scripts/test` installs it into `.venv/bin`).
//!
//! An OpenBao dev server, an emulator with 1,000 repositories in `acme` (plus
//! `partner-base`), and `rotor run` in-process with a webhook secret and one policy
//! (`partner-*`, a value generated and stored in Vault). After the first pass, the emulator
//! creates `partner-0000` .. `partner-0099` one after another; each creation delivers a
//! signed `repository.created`. For each, the time from the creation to the secret being
//! decryptable in the new repository is measured, with the requests rotor made to GitHub.
//! Prints p50, p99 and max latency, and the requests per event.

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use github_emulator::{App, Emulator, FleetSpec, RepoSpec, Scope};
use secrecy::SecretString;

const SECRET: &str = "bench-webhook-secret";
const EVENTS: usize = 100;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let work = tempfile::tempdir()?;
    // Vault.
    let vault_port = free_port();
    let token = "bench-root-token";
    let mut bao = Command::new("bao")
        .args([
            "server",
            "-dev",
            &format!("-dev-root-token-id={token}"),
            &format!("-dev-listen-address=127.0.0.1:{vault_port}"),
            "-dev-no-store-token",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| {
            format!("cannot start bao ({e}): run scripts/test once, then PATH=.venv/bin:$PATH")
        })?;
    let vault_addr = format!("http://127.0.0.1:{vault_port}");
    let http = reqwest::Client::new();
    let up = Instant::now();
    while http
        .get(format!("{vault_addr}/v1/sys/health"))
        .send()
        .await
        .map(|r| !r.status().is_success())
        .unwrap_or(true)
    {
        if up.elapsed() > Duration::from_secs(20) {
            let _ = bao.kill();
            return Err("OpenBao did not start within 20 s".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // GitHub.
    let mut fleet = FleetSpec::generate(&["acme"], 1000);
    fleet.orgs[0].repos.push(RepoSpec::new("partner-base"));
    let emulator = Emulator::try_new(fleet)?;
    let server = emulator.serve("127.0.0.1:0".parse()?).await?;

    // rotor run, in-process.
    let policies = work.path().join("policies");
    std::fs::create_dir_all(&policies)?;
    std::fs::write(
        policies.join("partner.yaml"),
        "version: 1\nname: partner\nsource:\n  generate:\n    length: 40\n    store:\n      vault_kv: { mount: secret, path: bench/partner }\nsecrets:\n  PARTNER_TOKEN: value\ntargets:\n  - org: acme\n    repos: [\"partner-*\"]\nschedule:\n  every: 30d\n",
    )?;
    let set = rotor::policy::load_dir(&policies).map_err(|d| format!("{d:?}"))?;
    let listen: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse()?;
    let config = rotor::daemon::DaemonConfig {
        policies_dir: policies.clone(),
        source_rules: Default::default(),
        state_dir: work.path().join("state"),
        audit_log: work.path().join("state").join("audit.jsonl"),
        concurrency: 16,
        listen,
        shutdown_timeout: Duration::from_secs(5),
        vault_poll_interval: Duration::from_secs(3600),
        retry_backoff: Duration::from_secs(15),
        alert_webhook: None,
        alert_after: Duration::from_secs(3600),
        verify_poll: Default::default(),
        webhook_secret: Some(SecretString::from(SECRET)),
        api_token: None,
    };
    let github = rotor::github::Client::new(rotor::github::GitHubConfig {
        api_url: server.url.clone(),
        token: Some(SecretString::from(github_emulator::DEFAULT_TOKEN)),
        ..Default::default()
    })?;
    let sources = rotor::source::Sources::new(Some(rotor::source::VaultConfig {
        addr: vault_addr.clone(),
        token: SecretString::from(token),
        namespace: None,
        cacert: None,
        login: None,
        tls: Default::default(),
    }))?;
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        if let Err(e) = rt.block_on(rotor::daemon::run(config, set, github, sources)) {
            eprintln!("rotor run: {e}");
        }
    });
    let scope = |name: &str| Scope::Repo {
        owner: "acme".into(),
        repo: name.into(),
        app: App::Actions,
    };
    let first = Instant::now();
    while emulator
        .decrypted(&scope("partner-base"), "PARTNER_TOKEN")
        .is_none()
    {
        if first.elapsed() > Duration::from_secs(60) {
            let _ = bao.kill();
            return Err("the first pass did not finish within 60 s".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!(
        "first pass over 1,001 repositories: {:.2} s",
        first.elapsed().as_secs_f64()
    );
    emulator.set_webhook(&format!("http://{listen}/webhooks/github"), SECRET);

    let mut latencies = Vec::with_capacity(EVENTS);
    let mut requests = Vec::with_capacity(EVENTS);
    for i in 0..EVENTS {
        let name = format!("partner-{i:04}");
        let before = emulator.requests().len();
        let t = Instant::now();
        emulator.create_repo("acme", RepoSpec::new(&name))?;
        while emulator.decrypted(&scope(&name), "PARTNER_TOKEN").is_none() {
            if t.elapsed() > Duration::from_secs(30) {
                let _ = bao.kill();
                return Err(format!("{name} was not provisioned within 30 s").into());
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        latencies.push(t.elapsed());
        // The pass's last requests may still be on their way: let them land.
        tokio::time::sleep(Duration::from_millis(30)).await;
        requests.push(emulator.requests().len() - before);
    }
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p).ceil() as usize).saturating_sub(1)];
    let mean_requests = requests.iter().sum::<usize>() as f64 / requests.len() as f64;
    println!("{EVENTS} deliveries (repository.created) into a 1,001-repository organization:");
    println!(
        "  delivery -> secret decryptable: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        latencies.last().unwrap().as_secs_f64() * 1e3
    );
    println!(
        "  GitHub requests per event: mean {mean_requests:.1}, max {}",
        requests.iter().max().unwrap()
    );
    let _ = bao.kill();
    let _ = bao.wait();
    Ok(())
}
