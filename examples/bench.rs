//! Fleet-scale benchmark: rotor (driven through the library, as `rotor apply` does) and a
//! peer written the way users script it today, against the in-process GitHub emulator.
//!
//! `cargo run --release --example bench` prints, per scenario (1 secret -> 1,000
//! repositories and 10 secrets -> 10,000, at 0 and 50 ms latency, limits off and on,
//! time-scaled): wall time, requests per delivered secret, peak concurrency, rate-limit
//! violations, peak memory, and the bound the limits allow. Options:
//! `--only SUBSTRING` runs the scenarios whose name contains it; `--skip-large` leaves out
//! 10 x 10,000; `--takeover` gives the policies `takeover: true` (no secret listings before
//! a rotation: rotor does not check whose the secrets are, as the peer does not).
//!
//! The emulator runs in this process; each measured run is a child process of this one
//! (`bench --child ...`), so its peak memory (VmHWM) is its own.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine as _;
use futures::stream::{self, StreamExt};
use github_emulator::{Emulator, FleetSpec, LimitsSpec, OrgSpec, RepoSpec, DEFAULT_TOKEN};
use secrecy::SecretString;
use serde_json::{json, Value};

const ORG: &str = "acme";
/// The default of `rotor apply --concurrency`.
const APPLY_CONCURRENCY: usize = 100;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Who {
    Rotor,
    Peer,
}

#[derive(Clone, Debug)]
struct Scenario {
    who: Who,
    secrets: usize,
    repos: usize,
    latency_ms: u64,
    /// Time scale of the limits when on; `None`: limits off.
    limits: Option<u32>,
    /// rotor's `--concurrency` (100, its default, unless said); past 100 only with limits
    /// off, as the CLI allows.
    concurrency: usize,
}

impl Scenario {
    fn name(&self) -> String {
        format!(
            "{} {}x{} {}ms {}",
            match self.who {
                Who::Rotor => "rotor",
                Who::Peer => "peer",
            },
            self.secrets,
            self.repos,
            self.latency_ms,
            match self.limits {
                None => "limits-off".to_string(),
                Some(s) => format!("limits-on/{s}"),
            }
        ) + &if self.concurrency == APPLY_CONCURRENCY {
            String::new()
        } else {
            format!(" c{}", self.concurrency)
        }
    }
}

fn repo_name(i: usize) -> String {
    format!("svc-{i:05}")
}

fn fleet(repos: usize, limits: Option<u32>) -> FleetSpec {
    FleetSpec {
        orgs: vec![OrgSpec {
            name: ORG.into(),
            id: None,
            repos: (1..=repos).map(|i| RepoSpec::new(&repo_name(i))).collect(),
        }],
        tokens: vec![],
        limits: match limits {
            None => LimitsSpec::off(),
            Some(scale) => LimitsSpec::github(scale),
        },
        ..FleetSpec::default()
    }
}

/// Counts the heap this process holds, so that the child can say which phase holds what
/// (VmHWM alone also counts the allocator's free lists and the binary).
struct Counting;

static HEAP_NOW: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
static HEAP_PEAK: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

unsafe impl std::alloc::GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        use std::sync::atomic::Ordering::Relaxed;
        let p = unsafe { std::alloc::System.alloc(layout) };
        if !p.is_null() {
            let now = HEAP_NOW.fetch_add(layout.size(), Relaxed) + layout.size();
            HEAP_PEAK.fetch_max(now, Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        HEAP_NOW.fetch_sub(layout.size(), std::sync::atomic::Ordering::Relaxed);
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new: usize) -> *mut u8 {
        use std::sync::atomic::Ordering::Relaxed;
        let p = unsafe { std::alloc::System.realloc(ptr, layout, new) };
        if !p.is_null() {
            if new >= layout.size() {
                let now = HEAP_NOW.fetch_add(new - layout.size(), Relaxed) + new - layout.size();
                HEAP_PEAK.fetch_max(now, Relaxed);
            } else {
                HEAP_NOW.fetch_sub(layout.size() - new, Relaxed);
            }
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Heap held now and at its peak so far, in MB, as `"now/peak"`.
fn heap_mb() -> String {
    use std::sync::atomic::Ordering::Relaxed;
    let mb = |b: usize| b as f64 / 1048576.0;
    format!(
        "{:.1}/{:.1}",
        mb(HEAP_NOW.load(Relaxed)),
        mb(HEAP_PEAK.load(Relaxed))
    )
}

/// Peak resident memory of this process (VmHWM), in MB.
fn vm_hwm_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

// ---- the child: one measured run -----------------------------------------------------------

fn write_policies(dir: &Path, secrets: usize) {
    std::fs::create_dir_all(dir).expect("policy folder");
    // Set by the parent for `--takeover`; its children inherit it.
    let takeover = if std::env::var_os("ROTOR_BENCH_TAKEOVER").is_some() {
        "takeover: true\n"
    } else {
        ""
    };
    for s in 1..=secrets {
        let yaml = format!(
            "version: 1\nname: secret-{s}\nsource:\n  generate: {{ length: 32, charset: alphanumeric }}\nsecrets:\n  SECRET_{s}: value\ntargets:\n  - org: {ORG}\n    repos: [\"svc-*\"]\n{takeover}"
        );
        std::fs::write(dir.join(format!("secret-{s}.yaml")), yaml).expect("write policy");
    }
}

/// rotor through its library, as `rotor apply` (first run) or `rotor rotate` (steady) does:
/// observe, plan, estimate, apply with the ledger in `state`.
async fn child_rotor(
    url: &str,
    state: &Path,
    secrets: usize,
    limits: Option<u32>,
    force: bool,
    concurrency: usize,
) -> Value {
    use rotor::apply::Applier;
    use rotor::context::Context;
    use rotor::github::{Client, GitHubConfig, Limits};
    use rotor::ledger::Ledger;

    let policies = state.join("policies");
    write_policies(&policies, secrets);
    let set = rotor::policy::load_dir(&policies).unwrap_or_else(|d| panic!("policies: {d:?}"));
    let config = GitHubConfig {
        api_url: url.to_string(),
        token: Some(SecretString::from(DEFAULT_TOKEN)),
        limits: if limits.is_some() {
            Limits::GitHub
        } else {
            Limits::Off
        },
        time_scale: limits.unwrap_or(1),
        listing_cache: Some(state.join("listings.json")),
        // As `rotor apply` does: with limits off, requests in flight follow --concurrency.
        max_concurrency: if limits.is_some() {
            GitHubConfig::default().max_concurrency
        } else {
            concurrency
        },
        ..GitHubConfig::default()
    };
    let github = Client::new(config).expect("client");
    let sources = rotor::source::Sources::new(None).expect("sources");
    let started = Instant::now();
    let mut heap = vec![format!("start {}", heap_mb())];
    let ledger = Ledger::open(&state.join("ledger")).expect("ledger");
    heap.push(format!("ledger {}", heap_mb()));
    let ledger_state = ledger.state();
    let force: std::collections::BTreeSet<String> = if force {
        set.policies.iter().map(|p| p.name.clone()).collect()
    } else {
        Default::default()
    };
    let now = chrono::Utc::now();
    // As `rotor apply` does: the keys apply needs are fetched while the listing arrives.
    let prefetched = rotor::apply::KeyPrefetch::new();
    let observed = rotor::observe::observe_with(
        &set,
        &github,
        &sources,
        ledger_state,
        now,
        &force,
        concurrency,
        Some(&prefetched),
        None,
    )
    .await;
    let observe_s = started.elapsed().as_secs_f64();
    heap.push(format!("observe {}", heap_mb()));
    let plan_started = Instant::now();
    let opts = rotor::plan::PlanOptions {
        force: force.clone(),
        ..Default::default()
    };
    let plan = rotor::plan::plan(&set, &observed, ledger_state, now, &opts);
    let plan_ms = plan_started.elapsed().as_secs_f64() * 1000.0;
    heap.push(format!("plan {}", heap_mb()));
    drop(observed);
    let ctx = Context::new(github, sources, ledger, concurrency);
    let report = Applier::new(&ctx)
        .with_prefetched(&prefetched)
        .apply(&set, &plan)
        .await;
    let wall = started.elapsed();
    heap.push(format!("apply {}", heap_mb()));
    let g = ctx.github.governor_stats();
    json!({
        "wall_s": wall.as_secs_f64(),
        "plan_ms": plan_ms,
        "observe_s": observe_s,
        "delivered": report.summary.pushed,
        "failed": report.summary.failed,
        "hwm_mb": vm_hwm_mb(),
        "heap_mb": heap.join(", "),
        "waited_points_s": g.waited_points.as_secs_f64(),
        "waited_primary_s": g.waited_primary.as_secs_f64(),
    })
}

/// What users script today (the pattern of google's secrets-sync-action): list the
/// repositories, then per repository and secret one public-key GET and one PUT, ten at a
/// time, no retries, no cache.
async fn child_peer(url: &str, secrets: usize) -> Value {
    let http = reqwest::Client::builder()
        .user_agent("peer-script")
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    let get = |u: String| {
        http.get(u)
            .bearer_auth(DEFAULT_TOKEN)
            .header("accept", "application/vnd.github+json")
            .header("x-github-api-version", "2022-11-28")
    };
    let started = Instant::now();
    let mut repos: Vec<String> = Vec::new();
    let mut next = Some(format!("{url}/orgs/{ORG}/repos?per_page=100"));
    while let Some(u) = next.take() {
        let resp = get(u).send().await.expect("listing");
        next = resp
            .headers()
            .get("link")
            .and_then(|l| l.to_str().ok())
            .and_then(|l| {
                l.split(", ").find_map(|part| {
                    let (u, rel) = part.split_once("; ")?;
                    (rel == "rel=\"next\"").then(|| u.trim_matches(['<', '>']).to_string())
                })
            });
        let page: Vec<Value> = resp.json().await.expect("listing JSON");
        repos.extend(
            page.iter()
                .filter_map(|r| r["name"].as_str().map(String::from)),
        );
    }
    let work: Vec<(String, usize)> = repos
        .iter()
        .flat_map(|r| (1..=secrets).map(move |s| (r.clone(), s)))
        .collect();
    let results: Vec<bool> = stream::iter(work)
        .map(|(repo, s)| {
            let http = http.clone();
            let get = &get;
            async move {
                let base = format!("{url}/repos/{ORG}/{repo}/actions/secrets");
                let Ok(resp) = get(format!("{base}/public-key")).send().await else {
                    return false;
                };
                if !resp.status().is_success() {
                    return false;
                }
                let Ok(key) = resp.json::<Value>().await else {
                    return false;
                };
                let b64 = base64::engine::general_purpose::STANDARD;
                let Some(pk) = key["key"]
                    .as_str()
                    .and_then(|k| b64.decode(k).ok())
                    .and_then(|b| crypto_box::PublicKey::from_slice(&b).ok())
                else {
                    return false;
                };
                let value = format!("peer-value-{s}");
                let Ok(sealed) = pk.seal(&mut crypto_box::aead::OsRng, value.as_bytes()) else {
                    return false;
                };
                let body = json!({"encrypted_value": b64.encode(sealed), "key_id": key["key_id"]});
                http.put(format!("{base}/SECRET_{s}"))
                    .bearer_auth(DEFAULT_TOKEN)
                    .header("accept", "application/vnd.github+json")
                    .header("x-github-api-version", "2022-11-28")
                    .json(&body)
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success())
            }
        })
        .buffer_unordered(10)
        .collect()
        .await;
    json!({
        "wall_s": started.elapsed().as_secs_f64(),
        "delivered": results.iter().filter(|ok| **ok).count(),
        "failed": results.iter().filter(|ok| !**ok).count(),
        "hwm_mb": vm_hwm_mb(),
    })
}

/// `plan` alone, for `repos` x `secrets`, once the listing is in hand (no I/O).
fn child_plan(repos: usize, secrets: usize) -> Value {
    let dir = tempfile::tempdir().expect("temp dir");
    write_policies(dir.path(), secrets);
    let set = rotor::policy::load_dir(dir.path()).unwrap_or_else(|d| panic!("policies: {d:?}"));
    let listing: Vec<rotor::model::Repo> = (1..=repos)
        .map(|i| rotor::model::Repo {
            id: 100_000 + i as u64,
            name: repo_name(i),
            full_name: format!("{ORG}/{}", repo_name(i)),
            archived: false,
            disabled: false,
            private: false,
            visibility: Some("public".into()),
            topics: vec![],
        })
        .collect();
    let observed = rotor::plan::Observed {
        listings: rotor::plan::Listings {
            orgs: BTreeMap::from([(ORG.to_string(), Ok(listing))]),
        },
        ..Default::default()
    };
    let ledger = rotor::ledger::LedgerState::default();
    let now = chrono::Utc::now();
    let started = Instant::now();
    let plan = rotor::plan::plan(&set, &observed, &ledger, now, &Default::default());
    let plan_s = started.elapsed().as_secs_f64();
    let est = rotor::plan::estimate(&plan, &ledger, &rotor::plan::Budget::default());
    json!({
        "plan_s": plan_s,
        "estimate_s": started.elapsed().as_secs_f64() - plan_s,
        "writes": est.writes,
        "estimate": est.describe(),
        "hwm_mb": vm_hwm_mb(),
    })
}

async fn child(args: &[String]) {
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
            .unwrap_or_default()
    };
    let num = |name: &str| arg(name).parse::<usize>().unwrap_or(0);
    let limits = arg("--limits").parse::<u32>().ok();
    let out = match arg("--child").as_str() {
        "rotor" => {
            let state = PathBuf::from(arg("--state"));
            child_rotor(
                &arg("--url"),
                &state,
                num("--secrets"),
                limits,
                arg("--force") == "1",
                // `rotor apply`'s default --concurrency unless the scenario says otherwise
                // (BENCH_CONCURRENCY overrides both).
                std::env::var("BENCH_CONCURRENCY")
                    .ok()
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(match num("--concurrency") {
                        0 => APPLY_CONCURRENCY,
                        n => n,
                    }),
            )
            .await
        }
        "peer" => child_peer(&arg("--url"), num("--secrets")).await,
        "plan" => child_plan(num("--repos"), num("--secrets")),
        other => panic!("unknown child {other:?}"),
    };
    println!("{out}");
}

// ---- the parent: emulator, children, table -------------------------------------------------

async fn run_child(args: &[String]) -> Value {
    let exe = std::env::current_exe().expect("own path");
    let out = tokio::process::Command::new(exe)
        .args(args)
        .stderr(std::process::Stdio::inherit())
        .output()
        .await
        .expect("run child");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().last().unwrap_or("");
    serde_json::from_str(line).unwrap_or_else(|e| panic!("child {args:?} said {text:?}: {e}"))
}

struct Row {
    name: String,
    phase: &'static str,
    wall_s: f64,
    delivered: u64,
    failed: u64,
    requests: u64,
    charged: u64,
    peak: u64,
    secondary: u64,
    primary: u64,
    hwm_mb: f64,
    bound_s: Option<f64>,
    note: String,
}

fn print_header() {
    println!(
        "| scenario | run | wall s | delivered | failed | req/secret | charged/secret | peak conc | 2nd-limit hits | primary hits | peak MB | bound s | wall/bound | note |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
}

fn print_row(r: &Row) {
    let per = |n: u64| {
        if r.delivered == 0 {
            "-".to_string()
        } else {
            format!("{:.3}", n as f64 / r.delivered as f64)
        }
    };
    let (bound, ratio) = match r.bound_s {
        Some(b) if b > 0.0 => (format!("{b:.2}"), format!("{:.2}", r.wall_s / b)),
        _ => ("-".into(), "-".into()),
    };
    println!(
        "| {} | {} | {:.2} | {} | {} | {} | {} | {} | {} | {} | {:.1} | {} | {} | {} |",
        r.name,
        r.phase,
        r.wall_s,
        r.delivered,
        r.failed,
        per(r.requests),
        per(r.charged),
        r.peak,
        r.secondary,
        r.primary,
        r.hwm_mb,
        bound,
        ratio,
        r.note
    );
}

/// The least time the limits allow for the requests the emulator saw: listing pages one
/// after another (all at once when re-listing from cached links), the rest 100 at a time,
/// and (limits on) the points and primary windows.
fn bound(sc: &Scenario, c: &github_emulator::Counters, relisted: bool) -> Option<f64> {
    let lat = sc.latency_ms as f64 / 1000.0;
    let pages = c.route("GET /orgs/{org}/repos");
    let others = c.total - pages;
    // Re-listing from cached links: every page at once. A first listing: page 1 (whose
    // `Link: rel="last"` tells how many there are), then all the others at once.
    let listing = if relisted || pages <= 1 {
        (pages as f64 / 100.0).ceil() * lat
    } else {
        (1.0 + ((pages - 1) as f64 / 100.0).ceil()) * lat
    };
    // Requests in flight at once: the scenario's (past GitHub's 100 only with limits off).
    let width = if sc.who == Who::Rotor && sc.limits.is_none() {
        sc.concurrency.max(1) as f64
    } else {
        100.0
    };
    let concurrency = listing + (others as f64 / width).ceil() * lat;
    let Some(scale) = sc.limits else {
        return (lat > 0.0).then_some(concurrency);
    };
    let scale = f64::from(scale);
    let reads: u64 = c
        .by_route
        .iter()
        .filter(|(k, _)| k.starts_with("GET "))
        .map(|(_, v)| v)
        .sum();
    let points = reads + 5 * (c.total - reads);
    let points_bound = ((points as f64 / 900.0).ceil() - 1.0).max(0.0) * 60.0 / scale;
    let charged = c.total - c.by_status.get(&304).copied().unwrap_or(0);
    // Full primary windows, then the last window's requests at the points rate.
    let windows = ((charged as f64 / 5000.0).ceil() - 1.0).max(0.0);
    let last_points = points as f64 * (1.0 - windows * 5000.0 / charged.max(1) as f64);
    let primary_bound = windows * 3600.0 / scale
        + if windows > 0.0 {
            ((last_points / 900.0).ceil() - 1.0).max(0.0) * 60.0 / scale
        } else {
            0.0
        };
    // Listing pages come first (plan needs them all), then the budget-bound part.
    let rest = ((others as f64 / 100.0).ceil() * lat)
        .max(points_bound)
        .max(primary_bound);
    Some(listing + rest + lat)
}

async fn measure(sc: &Scenario) -> Vec<Row> {
    let emu = Emulator::new(fleet(sc.repos, sc.limits))
        .with_latency(Duration::from_millis(sc.latency_ms));
    let handle = emu
        .serve("127.0.0.1:0".parse().expect("loopback"))
        .await
        .expect("serve");
    let state = tempfile::tempdir().expect("state dir");
    let phases: &[(&'static str, bool)] = match sc.who {
        Who::Rotor => &[("first", false), ("steady", true)],
        Who::Peer => &[("every", false)],
    };
    let mut rows = Vec::new();
    for (phase, force) in phases {
        emu.reset_counters();
        let mut args: Vec<String> = vec![
            "--child".into(),
            match sc.who {
                Who::Rotor => "rotor".into(),
                Who::Peer => "peer".into(),
            },
            "--url".into(),
            handle.url.clone(),
            "--secrets".into(),
            sc.secrets.to_string(),
            "--state".into(),
            state.path().display().to_string(),
            "--force".into(),
            if *force { "1" } else { "0" }.into(),
            "--concurrency".into(),
            sc.concurrency.to_string(),
        ];
        if let Some(s) = sc.limits {
            args.extend(["--limits".into(), s.to_string()]);
        }
        let out = run_child(&args).await;
        let c = emu.counters();
        let charged = c.total - c.by_status.get(&304).copied().unwrap_or(0);
        let mut note = String::new();
        if let (Some(o), Some(ms)) = (out["observe_s"].as_f64(), out["plan_ms"].as_f64()) {
            note.push_str(&format!("observe {o:.2} s, plan {ms:.0} ms"));
        }
        if let Some(w) = out["waited_points_s"].as_f64().filter(|w| *w > 0.0) {
            note.push_str(&format!("; waited for points {w:.1} s"));
        }
        if let Some(w) = out["waited_primary_s"].as_f64().filter(|w| *w > 0.0) {
            note.push_str(&format!("; waited for resets {w:.1} s"));
        }
        if let Some(h) = out["heap_mb"]
            .as_str()
            .filter(|_| std::env::var_os("BENCH_HEAP").is_some())
        {
            note.push_str(&format!("; heap MB now/peak: {h}"));
        }
        rows.push(Row {
            name: sc.name(),
            phase,
            wall_s: out["wall_s"].as_f64().unwrap_or(f64::NAN),
            delivered: out["delivered"].as_u64().unwrap_or(0),
            failed: out["failed"].as_u64().unwrap_or(0),
            requests: c.total,
            charged,
            peak: c.peak_concurrent,
            secondary: c.secondary_limited,
            primary: c.primary_limited,
            hwm_mb: out["hwm_mb"].as_f64().unwrap_or(f64::NAN),
            bound_s: bound(sc, &c, sc.who == Who::Rotor && *force),
            note,
        });
        print_row(rows.last().expect("row"));
        if std::env::var_os("BENCH_TRACE").is_some() {
            trace(&emu.requests());
        }
        // The next run is the next scheduled rotation: GitHub's points window and primary
        // window from this one have passed by then (GitHub offers no way to read the
        // points window; see docs/scale.md).
        let last = phases.last().map(|p| p.0) == Some(*phase);
        if let Some(scale) = sc.limits.filter(|_| !last) {
            let hour = Duration::from_secs(3_600) / scale;
            tokio::time::sleep(hour + Duration::from_secs(1)).await;
        }
    }
    handle.stop().await;
    rows
}

/// With BENCH_TRACE set: where a run's requests left gaps, on stderr.
fn trace(log: &[github_emulator::RequestRecord]) {
    // Records are logged as requests finish, with the time they arrived.
    let mut log = log.to_vec();
    log.sort_by_key(|r| r.at);
    let log = &log[..];
    let Some(first) = log.first() else { return };
    let mut gaps: Vec<(Duration, Duration)> = log
        .windows(2)
        .map(|w| (w[1].at.saturating_sub(w[0].at), w[0].at - first.at))
        .collect();
    gaps.sort_by_key(|g| std::cmp::Reverse(g.0));
    let last = log.last().map(|r| r.at - first.at).unwrap_or_default();
    eprintln!(
        "  trace: {} requests over {last:?}; largest gaps (gap, at):",
        log.len()
    );
    for (gap, at) in gaps.iter().take(8) {
        eprintln!("    {gap:?} at {at:?}");
    }
    for r in log.iter().take(16) {
        eprintln!(
            "    {:?} {} {} {}",
            r.at - first.at,
            r.method,
            r.path,
            r.status
        );
    }
    let mut per_100ms = BTreeMap::<u128, usize>::new();
    for r in log {
        *per_100ms
            .entry((r.at - first.at).as_millis() / 250)
            .or_default() += 1;
    }
    let line: Vec<String> = per_100ms.values().map(|n| n.to_string()).collect();
    eprintln!("    requests per 250 ms: {}", line.join(" "));
    let mut per_5ms = BTreeMap::<u128, usize>::new();
    for r in log {
        *per_5ms
            .entry((r.at - first.at).as_millis() / 5)
            .or_default() += 1;
    }
    let line: Vec<String> = per_5ms
        .iter()
        .map(|(k, n)| format!("{}:{n}", k * 5))
        .collect();
    eprintln!("    arrivals per 5 ms (ms:count): {}", line.join(" "));
}

fn scenarios(skip_large: bool) -> Vec<Scenario> {
    let mut out = Vec::new();
    let sizes: &[(usize, usize, u32)] = if skip_large {
        &[(1, 1_000, 60)]
    } else {
        // 10 x 10,000 needs 22 hours of GitHub's primary budget: compressed 600-fold.
        &[(1, 1_000, 60), (10, 10_000, 600)]
    };
    for &(secrets, repos, scale) in sizes {
        for latency_ms in [0, 50] {
            for limits in [None, Some(scale)] {
                out.push(Scenario {
                    who: Who::Rotor,
                    secrets,
                    repos,
                    latency_ms,
                    limits,
                    concurrency: APPLY_CONCURRENCY,
                });
                // GitHub Enterprise Server without limits: as many in flight as asked.
                if limits.is_none() && latency_ms > 0 {
                    out.push(Scenario {
                        who: Who::Rotor,
                        secrets,
                        repos,
                        latency_ms,
                        limits,
                        concurrency: 500,
                    });
                }
                // The peer at 50 ms over 110,000 requests would take over nine minutes.
                let peer_too_slow = repos > 1_000 && (latency_ms > 0 || limits.is_some());
                if !peer_too_slow {
                    out.push(Scenario {
                        who: Who::Peer,
                        secrets,
                        repos,
                        latency_ms,
                        limits,
                        concurrency: 10,
                    });
                }
            }
        }
    }
    out
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--child") {
        return child(&args).await;
    }
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .cloned();
    let skip_large = args.iter().any(|a| a == "--skip-large");
    if args.iter().any(|a| a == "--takeover") {
        // Before any thread or child starts: the children read it.
        std::env::set_var("ROTOR_BENCH_TAKEOVER", "1");
    }
    println!(
        "rotor fleet benchmark: emulator in-process on loopback, each run a child process; {} cores",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    );
    println!();
    print_header();
    for sc in scenarios(skip_large) {
        if only.as_deref().is_some_and(|o| !sc.name().contains(o)) {
            continue;
        }
        measure(&sc).await;
    }
    if only.as_deref().is_none_or(|o| "plan".contains(o)) {
        let out = run_child(&[
            "--child".into(),
            "plan".into(),
            "--repos".into(),
            "10000".into(),
            "--secrets".into(),
            "10".into(),
        ])
        .await;
        println!();
        println!(
            "plan, 10 secrets x 10,000 repositories, listing in hand: {:.3} s (estimate {:.4} s), peak {:.1} MB",
            out["plan_s"].as_f64().unwrap_or(f64::NAN),
            out["estimate_s"].as_f64().unwrap_or(f64::NAN),
            out["hwm_mb"].as_f64().unwrap_or(f64::NAN)
        );
        println!("  {}", out["estimate"].as_str().unwrap_or(""));
    }
}
