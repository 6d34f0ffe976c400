//! Verification benchmark: one transactional rotation whose canary wave is 100 repositories,
//! each dispatching a verification workflow, against the in-process GitHub emulator with
//! GitHub's rate limits on. It measures how long rotor takes to learn that every run
//! concluded, against the runs' own duration (queue delay plus run time, which the emulator
//! keeps exactly), and what the waiting costs in requests.
//!
//! `cargo run --release --example verify_bench` runs four settings: the default polling
//! (5 s, doubling to 30 s), a tight one (1 s to 5 s), the default with 50 ms of latency per
//! request, and the default with the limits off (what polling alone costs). Options: `--repos N` (100), `--run SECONDS` (30: 2 s queued, the rest in
//! progress).

use std::time::{Duration, Instant};

use github_emulator::{Emulator, FleetSpec, LimitsSpec, OrgSpec, RepoSpec, WorkflowSpec};
use rotor::model::plan::PollSettings;
use secrecy::SecretString;

const ORG: &str = "acme";
const WORKFLOW: &str = "verify-secrets.yml";
const QUEUED: Duration = Duration::from_secs(2);

struct Setting {
    name: &'static str,
    poll: PollSettings,
    latency_ms: u64,
    /// GitHub's rate limits (the emulator's, and rotor's governor) on.
    limits: bool,
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let repos: usize = arg(&args, "--repos")
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let run_secs: u64 = arg(&args, "--run")
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let run = Duration::from_secs(run_secs.max(3));
    let settings = [
        Setting {
            name: "poll 5s..30s, 0 ms",
            poll: PollSettings::default(),
            latency_ms: 0,
            limits: true,
        },
        Setting {
            name: "poll 1s..5s, 0 ms",
            poll: PollSettings {
                initial: Duration::from_secs(1),
                max: Duration::from_secs(5),
            },
            latency_ms: 0,
            limits: true,
        },
        Setting {
            name: "poll 5s..30s, 50 ms",
            poll: PollSettings::default(),
            latency_ms: 50,
            limits: true,
        },
        Setting {
            name: "poll 5s..30s, no limits",
            poll: PollSettings::default(),
            latency_ms: 0,
            limits: false,
        },
    ];
    println!(
        "verification of {repos} canary repositories; each run: {}s queued + {}s in progress = {}s of its own",
        QUEUED.as_secs(),
        (run - QUEUED).as_secs(),
        run.as_secs()
    );
    println!(
        "{:<24} {:>8} {:>9} {:>10} {:>8} {:>9} {:>9} {:>9} {:>9} {:>8} {:>5}",
        "setting",
        "apply_s",
        "verify_s",
        "disp_span",
        "floor_s",
        "overhead",
        "lag_mean",
        "lag_max",
        "run_gets",
        "req/run",
        "429s"
    );
    for s in &settings {
        let row = measure(repos, run, s).await;
        println!(
            "{:<24} {:>8.1} {:>9.1} {:>9.1}s {:>8.1} {:>8.1}s {:>8.1}s {:>8.1}s {:>9} {:>8.1} {:>5}",
            s.name,
            row.apply_s,
            row.verify_s,
            row.dispatch_span_s,
            row.dispatch_span_s + run.as_secs_f64(),
            row.verify_s - row.dispatch_span_s - run.as_secs_f64(),
            row.lag_mean_s,
            row.lag_max_s,
            row.run_gets,
            row.verify_requests as f64 / repos as f64,
            row.limited
        );
        assert_eq!(
            row.dispatches, repos,
            "{}: one dispatch per repository",
            s.name
        );
        assert!(row.committed, "{}: the transaction did not commit", s.name);
    }
    println!(
        "verify_s: first dispatch to the last request of the verification; disp_span: first \
         to last dispatch (GitHub's 900 points a minute: the pushes and the dispatches cost 5 \
         points each); floor_s: the last dispatch plus the runs' own {}s, the soonest the last \
         run can be known concluded; overhead: verify_s minus floor_s; lag: per run, rotor's last look minus its conclusion (polling); \
         req/run: dispatch, run and job requests per verified repository; 429s: requests the \
         emulator's limits refused.",
        run.as_secs()
    );
}

struct Row {
    apply_s: f64,
    /// First to last dispatch: spread by the points budget (a dispatch costs 5 points).
    dispatch_span_s: f64,
    /// Per run: rotor's last look at it minus the moment it concluded (its dispatch plus
    /// its own duration). The cost of polling.
    lag_mean_s: f64,
    lag_max_s: f64,
    verify_s: f64,
    dispatches: usize,
    run_gets: usize,
    verify_requests: usize,
    limited: u64,
    committed: bool,
}

async fn measure(repos: usize, run: Duration, s: &Setting) -> Row {
    let names: Vec<String> = (1..=repos).map(|i| format!("svc-{i:04}")).collect();
    let fleet = FleetSpec {
        orgs: vec![OrgSpec {
            name: ORG.into(),
            id: None,
            repos: names.iter().map(|n| RepoSpec::new(n)).collect(),
        }],
        tokens: vec![],
        limits: if s.limits {
            LimitsSpec::github(1)
        } else {
            LimitsSpec::off()
        },
        ..FleetSpec::default()
    };
    let emu = Emulator::new(fleet).with_latency(Duration::from_millis(s.latency_ms));
    for n in &names {
        emu.set_workflow(
            ORG,
            n,
            WorkflowSpec::new(WORKFLOW)
                .queue_delay(QUEUED)
                .duration(run - QUEUED)
                .require_set("API_TOKEN"),
        )
        .expect("a workflow");
    }
    let handle = emu
        .serve("127.0.0.1:0".parse().expect("loopback"))
        .await
        .expect("serve");
    let dir = tempfile::tempdir().expect("a state folder");
    let policies = dir.path().join("policies");
    std::fs::create_dir_all(&policies).expect("policy folder");
    std::fs::write(
        policies.join("api.yaml"),
        format!(
            "version: 1\nname: api\nsource:\n  generate: {{ length: 32, charset: alphanumeric }}\n\
             secrets:\n  API_TOKEN: value\ntargets:\n  - org: {ORG}\n    repos: [\"svc-*\"]\n\
             verify:\n  workflow: {WORKFLOW}\n  timeout: 10m\n\
             rollout:\n  canary: {repos}\n  on_failure: halt\n"
        ),
    )
    .expect("write the policy");
    let set = rotor::policy::load_dir(&policies).unwrap_or_else(|d| panic!("policy: {d:?}"));
    let github = rotor::github::Client::new(rotor::github::GitHubConfig {
        api_url: handle.url.clone(),
        token: Some(SecretString::from(github_emulator::DEFAULT_TOKEN)),
        limits: if s.limits {
            rotor::github::Limits::GitHub
        } else {
            rotor::github::Limits::Off
        },
        ..rotor::github::GitHubConfig::default()
    })
    .expect("a client");
    let sources = rotor::source::Sources::new(None).expect("sources");
    let ledger = rotor::ledger::Ledger::open(&dir.path().join("state")).expect("a ledger");
    let mut ctx = rotor::context::Context::new(github, sources, ledger, 100);
    ctx.verify_poll = s.poll;

    let started = Instant::now();
    let pass = rotor::pass::Pass::new(&ctx);
    let (_, report) = pass.run(&set, &Default::default()).await;
    let apply_s = started.elapsed().as_secs_f64();
    let committed = report.policies[0]
        .transaction
        .as_ref()
        .is_some_and(|t| t.state == "committed");

    let log = emu.requests();
    let is_verify = |path: &str| {
        path.contains("/actions/workflows/")
            || path.contains("/actions/runs")
            || path.contains("/actions/jobs/")
    };
    let verify: Vec<_> = log.iter().filter(|r| is_verify(&r.path)).collect();
    let first = verify
        .iter()
        .find(|r| r.method == "POST")
        .map(|r| r.at)
        .unwrap_or_default();
    let last = verify.last().map(|r| r.at).unwrap_or_default();
    // Per repository: when its dispatch arrived, and rotor's last look at its run.
    let repo_of = |path: &str| path.split('/').nth(3).unwrap_or("").to_string();
    let mut dispatched = std::collections::HashMap::new();
    let mut seen = std::collections::HashMap::new();
    for r in &verify {
        if r.method == "POST" {
            dispatched.insert(repo_of(&r.path), r.at);
        } else if r.path.contains("/actions/runs/") {
            seen.insert(repo_of(&r.path), r.at);
        }
    }
    let lags: Vec<f64> = dispatched
        .iter()
        .filter_map(|(repo, at)| {
            let done = *at + run;
            seen.get(repo).map(|s| s.saturating_sub(done).as_secs_f64())
        })
        .collect();
    let last_dispatch = dispatched.values().max().copied().unwrap_or_default();
    let c = emu.counters();
    Row {
        dispatch_span_s: last_dispatch.saturating_sub(first).as_secs_f64(),
        lag_mean_s: lags.iter().sum::<f64>() / lags.len().max(1) as f64,
        lag_max_s: lags.iter().copied().fold(0.0, f64::max),
        apply_s,
        verify_s: last.saturating_sub(first).as_secs_f64(),
        dispatches: verify.iter().filter(|r| r.method == "POST").count(),
        run_gets: verify
            .iter()
            .filter(|r| r.method == "GET" && r.path.contains("/actions/runs"))
            .count(),
        verify_requests: verify.len(),
        limited: c.primary_limited + c.secondary_limited,
        committed,
    }
}
