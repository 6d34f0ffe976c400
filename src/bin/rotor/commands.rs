//! The subcommands: each loads what it needs, calls the library, prints, and returns an
//! exit code.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use super::args::{
    CommonArgs, Output, PlanArgs, PolicyArgs, RollbackArgs, RotateArgs, RunArgs, RunDaemonArgs,
    StatusArgs, ValidateArgs,
};
use super::exit;
use rotor::apply::Report;
use rotor::audit::AuditLog;
use rotor::context::Context;
use rotor::ledger::{Ledger, LedgerState};
use rotor::pass::{plan_with_state, Pass};
use rotor::plan::{self, Plan};
use rotor::policy::{self, PolicySet};

/// Load the policies, printing every diagnostic to stderr.
pub(crate) fn load(args: &PolicyArgs) -> Result<PolicySet, u8> {
    let dir = &args.policies;
    match policy::load_dir_with(dir, &args.source_rules()) {
        Ok(set) => Ok(set),
        Err(diags) => {
            for d in &diags {
                eprintln!("{d}");
            }
            eprintln!(
                "{} error(s) in policies under {}",
                diags.len(),
                dir.display()
            );
            Err(exit::BAD_INPUT)
        }
    }
}

pub async fn validate(v: &ValidateArgs) -> u8 {
    let args = &v.policy_dir;
    if v.online {
        return validate_online(v).await;
    }
    match load(args) {
        Ok(set) => {
            println!(
                "{} polic{} valid in {}",
                set.policies.len(),
                if set.policies.len() == 1 { "y" } else { "ies" },
                args.policies.display()
            );
            exit::OK
        }
        Err(code) => code,
    }
}

/// `rotor validate --online`: the offline checks, then Vault's and GitHub's answers.
async fn validate_online(v: &ValidateArgs) -> u8 {
    let dir = &v.policy_dir.policies;
    let located = match policy::load_dir_located(dir, &v.policy_dir.source_rules()) {
        Ok(l) => l,
        Err(diags) => {
            for d in &diags {
                eprintln!("{d}");
            }
            eprintln!(
                "{} error(s) in policies under {}",
                diags.len(),
                dir.display()
            );
            return exit::BAD_INPUT;
        }
    };
    let (github, sources) = match super::settings::connect_tuned(|_| {}) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return exit::BAD_INPUT;
        }
    };
    let ledger = Ledger::read_state(&v.state_dir).unwrap_or_default();
    let diags = rotor::online::check(&located, &github, &sources, &ledger, 16).await;
    if diags.is_empty() {
        println!(
            "{} polic{} valid in {}; Vault and GitHub would accept {}",
            located.len(),
            if located.len() == 1 { "y" } else { "ies" },
            dir.display(),
            if located.len() == 1 { "it" } else { "them" }
        );
        return exit::OK;
    }
    for d in &diags {
        eprintln!("{d}");
    }
    eprintln!(
        "{} problem(s) found online for the policies under {}",
        diags.len(),
        dir.display()
    );
    exit::BAD_INPUT
}

/// Keep only the named policy; an unknown name is bad input.
fn select(mut set: PolicySet, only: Option<&str>) -> Result<PolicySet, u8> {
    if let Some(name) = only {
        if set.get(name).is_none() {
            eprintln!("no policy named {name:?}");
            return Err(exit::BAD_INPUT);
        }
        set.policies.retain(|p| p.name == name);
    }
    Ok(set)
}

struct Prepared {
    set: PolicySet,
    github: rotor::github::Client,
    sources: rotor::source::Sources,
}

/// Loads the policies and connects, with the limit flags and the listing cache in the
/// state folder.
fn prepare(common: &CommonArgs, only: Option<&str>) -> Result<Prepared, u8> {
    let set = select(load(&common.policy_dir)?, only)?;
    let (github, sources) = super::settings::connect_tuned(|c| {
        common.limits.apply_to(c);
        if c.limits == rotor::github::Limits::Off {
            // No published limit to keep to (GitHub Enterprise Server's default): the
            // requests in flight follow --concurrency, past GitHub's 100 if asked.
            c.max_concurrency = common.concurrency.max(1);
        }
        c.listing_cache = Some(common.state_dir.join(LISTING_CACHE));
    })
    .map_err(|e| {
        eprintln!("{e}");
        exit::BAD_INPUT
    })?;
    Ok(Prepared {
        set,
        github,
        sources,
    })
}

/// The file in the state folder where repository listings are kept with their ETags.
pub const LISTING_CACHE: &str = "listings.json";

/// The budget apply will run within: the client's governor settings and the last
/// `x-ratelimit-*` headers the listing brought back.
fn budget(github: &rotor::github::Client, concurrency: usize) -> plan::Budget {
    let s = github.governor_settings();
    let primary = github
        .last_rate_limit()
        .filter(|_| s.follow_primary)
        .map(|r| {
            let to_reset = (r.reset - Utc::now()).num_milliseconds().max(0) as f64 / 1000.0;
            (r.remaining, r.limit, to_reset)
        });
    plan::Budget {
        points_per_minute: s.points_per_minute,
        max_concurrency: s.max_concurrency.min(concurrency.max(1)),
        min_write_gap: s.min_write_gap,
        primary,
        time_scale: s.time_scale,
        ..plan::Budget::default()
    }
}

async fn make_plan(
    p: &Prepared,
    ledger: &LedgerState,
    force: &BTreeSet<String>,
    concurrency: usize,
) -> Plan {
    let mut plan = plan_with_state(&p.set, &p.github, &p.sources, ledger, force, concurrency).await;
    plan.estimate = Some(plan::estimate(
        &plan,
        ledger,
        &budget(&p.github, concurrency),
    ));
    plan
}

pub async fn plan(plan_args: &PlanArgs) -> u8 {
    let args = &plan_args.run;
    // With --detailed-exitcode, 2 means "changes pending": bad input becomes 3.
    let bad_input = |code: u8| {
        if plan_args.detailed_exitcode && code == exit::BAD_INPUT {
            exit::DETAILED_BAD_INPUT
        } else {
            code
        }
    };
    let p = match prepare(&args.common, args.policy.as_deref()) {
        Ok(p) => p,
        Err(code) => return bad_input(code),
    };
    let ledger = match Ledger::read_state(&args.common.state_dir) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return exit::FAILED;
        }
    };
    warn_workflow_token();
    let plan = make_plan(&p, &ledger, &BTreeSet::new(), args.common.concurrency).await;
    match args.common.output {
        Output::Text => print!("{}", plan.to_text()),
        Output::Json => println!("{}", plan.to_json()),
        Output::Markdown => print!("{}", plan.to_markdown()),
    }
    if super::actions::in_actions() {
        for a in super::actions::plan_annotations(&plan) {
            eprintln!("{a}");
        }
    }
    if !plan_args.detailed_exitcode {
        exit::OK
    } else if plan.has_problems() {
        exit::FAILED
    } else if plan.has_changes() {
        exit::CHANGES
    } else {
        exit::OK
    }
}

/// In GitHub Actions, says plainly (and as a workflow annotation) that the workflow's own
/// `GITHUB_TOKEN` cannot write secrets, before a bare 403 would.
fn warn_workflow_token() {
    if let Some(why) = super::actions::workflow_token_explanation() {
        eprintln!("warning: {why}");
        eprintln!(
            "{}",
            super::actions::annotation("warning", "rotor: credentials", &why)
        );
    }
}

pub async fn apply(args: &RunArgs) -> u8 {
    run_apply(&args.common, args.policy.as_deref(), BTreeSet::new(), None).await
}

pub async fn rotate(args: &RotateArgs) -> u8 {
    let force = BTreeSet::from([args.name.clone()]);
    run_apply(&args.common, Some(&args.name), force, None).await
}

/// `rotor rollback NAME [--to VERSION]`: the write-back at the source, then an apply of
/// that policy. Refused (2) for values stored nowhere or a version that cannot be used.
pub async fn rollback(args: &RollbackArgs) -> u8 {
    run_apply(
        &args.common,
        Some(&args.name),
        BTreeSet::new(),
        Some(args.to),
    )
    .await
}

async fn run_apply(
    common: &super::args::CommonArgs,
    only: Option<&str>,
    force: BTreeSet<String>,
    rollback: Option<Option<u64>>,
) -> u8 {
    let p = match prepare(common, only) {
        Ok(p) => p,
        Err(code) => return code,
    };
    warn_workflow_token();
    let ledger = match Ledger::open(&common.state_dir) {
        Ok(l) => l,
        Err(e @ rotor::ledger::journal::LedgerError::Locked { .. }) if rollback.is_none() => {
            // A daemon holds the ledger: ask it, through its control API.
            return match std::env::var("ROTOR_API_URL")
                .ok()
                .filter(|u| !u.is_empty())
            {
                Some(url) => {
                    let names: Vec<String> =
                        p.set.policies.iter().map(|p| p.name.clone()).collect();
                    super::remote::run(&url, &names, !force.is_empty(), common.output).await
                }
                None => {
                    eprintln!(
                        "{e}; to go through a running daemon instead, set ROTOR_API_URL (and ROTOR_API_TOKEN_FILE)"
                    );
                    exit::FAILED
                }
            };
        }
        Err(e) => {
            eprintln!("{e}");
            return exit::FAILED;
        }
    };
    let audit = match AuditLog::open(&common.audit_path()) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return exit::FAILED;
        }
    };
    let mut ctx = Context::new(p.github, p.sources, ledger, common.concurrency).with_audit(audit);
    ctx.verify_poll = common.poll_settings();
    if let (Some(to), Some(name)) = (rollback, only) {
        let Some(policy) = p.set.get(name) else {
            eprintln!("rotor rollback: no policy named `{name}`");
            return exit::BAD_INPUT;
        };
        match rotor::rollback::start(&ctx, policy, to).await {
            Ok(r) => eprintln!(
                "rolling `{name}` back to version {}: written back at the source as version {} (was {}); pushing it",
                r.to, r.restored_as, r.from
            ),
            Err(e @ rotor::rollback::RollbackError::Refused(_)) => {
                eprintln!("rotor rollback: {e}");
                return exit::BAD_INPUT;
            }
            Err(e) => {
                eprintln!("rotor rollback: {e}");
                return exit::FAILED;
            }
        }
    }
    // Planned on a snapshot of the ledger's state (no copy: at 100,000 targets a copy is
    // ~50 MB); the public keys apply needs start arriving while the listing does.
    let pass = Pass::new(&ctx);
    let mut plan = pass.plan(&p.set, &force).await;
    let state = ctx
        .ledger
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .snapshot();
    plan.estimate = Some(plan::estimate(
        &plan,
        &state,
        &budget(&ctx.github, common.concurrency),
    ));
    drop(state);
    match common.output {
        Output::Text => print!("{}", plan.to_text()),
        Output::Markdown => print!("{}", plan.to_markdown()),
        Output::Json => {}
    }
    let progress = super::progress::for_stderr();
    let report = pass
        .apply_with_progress(&p.set, &plan, progress.as_ref())
        .await;
    if super::actions::in_actions() {
        for a in super::actions::plan_annotations(&plan)
            .into_iter()
            .chain(super::actions::report_annotations(&report))
        {
            eprintln!("{a}");
        }
        super::actions::write_summary(&super::actions::summary_markdown(&report));
    }
    match common.output {
        Output::Text | Output::Markdown => print!("{}", render_report(&report)),
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "plan": plan, "report": report }))
                .expect("reports serialize")
        ),
    }
    if report.all_done() {
        exit::OK
    } else {
        exit::FAILED
    }
}

/// `rotor run`: the daemon, until SIGTERM/SIGINT (exit 0). Policies or settings that do not
/// load are bad input (2); a ledger held by another rotor, or a port in use, is 1.
pub async fn run_daemon(args: &RunDaemonArgs) -> u8 {
    let p = match prepare(&args.common, None) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let (alert_webhook, webhook_secret, api_token) = match (
        args.alert_webhook(),
        args.webhook_secret(),
        args.api_token(),
    ) {
        (Ok(a), Ok(w), Ok(t)) => (a, w, t),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
            eprintln!("rotor run: {e}");
            return exit::BAD_INPUT;
        }
    };
    let config = rotor::daemon::DaemonConfig {
        policies_dir: args.common.policy_dir.policies.clone(),
        source_rules: args.common.policy_dir.source_rules(),
        state_dir: args.common.state_dir.clone(),
        audit_log: args.common.audit_path(),
        concurrency: args.common.concurrency,
        listen: args.listen,
        shutdown_timeout: args.shutdown_timeout,
        vault_poll_interval: args.vault_poll_interval,
        retry_backoff: args.retry_backoff,
        alert_webhook,
        alert_after: args.alert_after,
        verify_poll: args.common.poll_settings(),
        webhook_secret,
        api_token,
    };
    match rotor::daemon::run(config, p.set, p.github, p.sources).await {
        Ok(()) => exit::OK,
        Err(e) => {
            eprintln!("rotor run: {e}");
            tracing::error!(error = %e, "the daemon could not start");
            exit::FAILED
        }
    }
}

fn render_report(r: &Report) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    for p in &r.policies {
        if let Some(e) = &p.error {
            let _ = writeln!(out, "error: policy {}: {e}", p.policy);
        }
        for f in &p.failures {
            let _ = writeln!(
                out,
                "failed: policy {} target {}{}: {}",
                p.policy,
                f.target,
                f.secret
                    .as_deref()
                    .map(|s| format!(" secret {s}"))
                    .unwrap_or_default(),
                f.message
            );
        }
        if let Some(t) = &p.transaction {
            let _ = writeln!(
                out,
                "transaction: policy {} version {}: {}{}",
                p.policy,
                t.version,
                t.state,
                t.restored_as
                    .map(|v| format!(" (previous value restored as version {v})"))
                    .unwrap_or_default()
            );
            for v in &t.verifications {
                let run = match (v.run_id, &v.url) {
                    (Some(id), Some(url)) => format!(" run {id} {url}"),
                    (Some(id), None) => format!(" run {id}"),
                    _ => String::new(),
                };
                let _ = writeln!(
                    out,
                    "  verify {} ({}):{run} {}",
                    v.repo, v.wave, v.conclusion
                );
                if let Some(job) = &v.job {
                    let _ = writeln!(
                        out,
                        "    failed in job {job}{}",
                        v.step
                            .as_deref()
                            .map(|s| format!(", step {s}"))
                            .unwrap_or_default()
                    );
                }
                if let Some(m) = &v.message {
                    let _ = writeln!(out, "    {m}");
                }
                if let Some(x) = &v.excerpt {
                    for line in x.lines() {
                        let _ = writeln!(out, "    | {line}");
                    }
                }
            }
        }
        for l in &p.leases.revoked {
            let _ = writeln!(out, "lease: policy {} revoked {l}", p.policy);
        }
        for l in &p.leases.renewed {
            let _ = writeln!(out, "lease: policy {} renewed {l}", p.policy);
        }
        for l in &p.leases.failed {
            let _ = writeln!(out, "lease: policy {} {l}", p.policy);
        }
    }
    let s = &r.summary;
    let _ = writeln!(
        out,
        "Applied: {} rotated, {} pushed ({} created, {} updated), {} unchanged, {} failed.",
        s.rotated, s.pushed, s.created, s.updated, s.unchanged, s.failed
    );
    if s.access_updated > 0 {
        let _ = writeln!(
            out,
            "Access: {} organization secret(s) got a new list of selected repositories.",
            s.access_updated
        );
    }
    out
}

/// A time shown to the second, or `none` when absent.
fn short_time(t: Option<DateTime<Utc>>, none: &str) -> String {
    t.map_or_else(
        || none.to_string(),
        |t| t.format("%Y-%m-%d %H:%M:%SZ").to_string(),
    )
}

/// One policy as `rotor status` shows it (text and JSON come from the same row).
pub fn status(args: &StatusArgs) -> u8 {
    let state = match Ledger::read_state(&args.state_dir) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return exit::FAILED;
        }
    };
    // Policies give next due times; a missing or broken folder only loses that column.
    let set = policy::load_dir(&args.policies).ok();
    let rows = rotor::ledger::status_rows(&state, set.as_ref());
    match args.output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(&rows).expect("status serializes")
        ),
        Output::Text | Output::Markdown => {
            if rows.is_empty() {
                println!("the ledger in {} is empty", args.state_dir.display());
            }
            for r in &rows {
                println!(
                    "policy {}  version {}  rotated {}  next due {}  targets {}  failing {}",
                    r.policy,
                    r.version.map_or("-".to_string(), |v| v.to_string()),
                    short_time(r.rotated_at, "never"),
                    short_time(r.next_due, "-"),
                    r.targets,
                    r.failing
                );
                for t in &r.target_states {
                    let pushed = t.pushed.as_ref();
                    let mut line = format!(
                        "  {}  {}  version {}  pushed {}  key {}",
                        t.scope.key(),
                        t.secret,
                        pushed.map_or("null".to_string(), |p| p.version.to_string()),
                        short_time(pushed.map(|p| p.at), "never"),
                        pushed.map_or("-", |p| &*p.key_id),
                    );
                    if let Some(f) = &t.failure {
                        line.push_str(&format!("  FAILED: {}", f.message));
                    }
                    println!("{line}");
                }
            }
        }
    }
    exit::OK
}
