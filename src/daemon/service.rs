//! The daemon's main loop: wires the ledger, audit log, HTTP listener, ticker and token
//! keeper together, then decides what runs, runs passes, and handles signals.
//!
//! How it stays right whatever wakes it:
//! - **Cadence**: due times come from `schedule::next_due` (croner + chrono-tz on the
//!   policy's wall clock) counted from the ledger's last rotation, so DST changes and late
//!   or missed wake-ups never shift or repeat a rotation. On start every policy gets a pass:
//!   overdue ones rotate (catch-up), unconverged ones converge.
//! - **No overlap**: a policy with a pass in flight is never due (`slots`), and each pass
//!   holds the policy's own lock (`try_lock`), so two passes of one policy cannot run.
//! - **Draining**: passes run in a `TaskTracker`; SIGTERM/SIGINT cancels a token that stops
//!   new rotations and pushes, then waits for the tracker (at most `--shutdown-timeout`),
//!   then syncs ledger and audit log.
//!
//! Passes run as local tasks on the loop's thread (a `LocalSet`): they are I/O-bound, and
//! apply's borrowed streams need not be `Send` that way. The HTTP listener and the token
//! keeper run on the runtime's worker threads.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures::stream::{self, StreamExt};
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::alert::{AlertMessage, Alerter};
use super::config::{DaemonConfig, DaemonError};
use super::http;
use super::inbox::Inbound;
use super::shared::Shared;
use super::slots::{AlertNeed, PolicyOutcome, Slots};
use super::ticker::Ticker;
use super::token::keep_token;

mod inbound;
use crate::apply::Report;
use crate::audit::AuditLog;
use crate::context::Context;
use crate::github::Client;
use crate::ledger::Ledger;
use crate::pass::Pass;
use crate::plan::Plan;
use crate::policy::{self, Policy, PolicySet, SourceSpec};
use crate::source::Sources;

/// Longest sleep of the loop when nothing is due (it also wakes on every tick).
const IDLE: Duration = Duration::from_secs(60);

/// One finished pass.
struct PassDone {
    /// Which pass (the API's waiting requests are answered by the pass that took them).
    id: u64,
    policies: Vec<String>,
    plan: Plan,
    report: Report,
    /// The pass panicked (a bug in rotor): it counts as failed for each of its policies,
    /// which are retried with backoff.
    panicked: bool,
}

/// `ROTOR_TEST_PANIC_ONCE=POLICY` makes the first pass of that policy panic, so that tests
/// can show what a panicking pass does to the daemon. Read once; never set in production.
fn panics_once(names: &[String]) -> bool {
    static ARMED: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    static FIRED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    let armed = ARMED.get_or_init(|| std::env::var("ROTOR_TEST_PANIC_ONCE").ok());
    armed.as_ref().is_some_and(|p| names.contains(p))
        && !FIRED.swap(true, std::sync::atomic::Ordering::AcqRel)
}

/// One finished check of the KV-backed sources' versions.
struct PollDone {
    versions: Vec<(String, Result<Option<u64>, String>)>,
}

struct Signals {
    hup: Signal,
    term: Signal,
    int: Signal,
}

impl Signals {
    fn new() -> Result<Signals, DaemonError> {
        let on = |kind| signal(kind).map_err(DaemonError::Signals);
        Ok(Signals {
            hup: on(SignalKind::hangup())?,
            term: on(SignalKind::terminate())?,
            int: on(SignalKind::interrupt())?,
        })
    }
}

/// Runs the daemon until SIGTERM or SIGINT; `Ok` after a clean shutdown.
pub async fn run(
    config: DaemonConfig,
    set: PolicySet,
    github: Client,
    sources: Sources,
) -> Result<(), DaemonError> {
    tokio::task::LocalSet::new()
        .run_until(run_local(config, set, github, sources))
        .await
}

async fn run_local(
    config: DaemonConfig,
    set: PolicySet,
    github: Client,
    sources: Sources,
) -> Result<(), DaemonError> {
    let ledger = Ledger::open(&config.state_dir)?;
    let audit = AuditLog::open(&config.audit_log)?;
    let alerter = config
        .alert_webhook
        .clone()
        .map(Alerter::new)
        .transpose()
        .map_err(DaemonError::Settings)?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| DaemonError::Listen {
            addr: config.listen,
            source,
        })?;
    let local = listener
        .local_addr()
        .map_err(|source| DaemonError::Listen {
            addr: config.listen,
            source,
        })?;
    let mut signals = Signals::new()?;

    let mut ctx =
        Context::new(github, sources, ledger, config.concurrency.max(1)).with_audit(audit);
    ctx.verify_poll = config.verify_poll;
    let shared = Arc::new(Shared::new(ctx, alerter));
    shared.set_policies(&set);

    let http_stop = CancellationToken::new();
    let (inbox, mut inbox_rx) = mpsc::unbounded_channel::<Inbound>();
    let router = http::router(
        Arc::clone(&shared),
        http::Routes {
            webhook_secret: config.webhook_secret.clone(),
            api_token: config.api_token.clone(),
            inbox,
        },
    );
    let until = http_stop.clone().cancelled_owned();
    let server = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(until)
            .await
    });
    tracing::info!(listen = %local, policies = set.policies.len(), audit = %config.audit_log.display(), "rotor daemon started");

    let tracker = TaskTracker::new();
    let wake = Arc::new(Notify::new());
    let mut ticker = Ticker::start(Arc::clone(&wake)).await;
    if shared.ctx.sources.vault().is_some() {
        tracker.spawn(keep_token(Arc::clone(&shared)));
    }

    let mut lp = Loop {
        shared: Arc::clone(&shared),
        tracker: tracker.clone(),
        slots: Slots::new(&set),
        guards: HashMap::new(),
        polling: false,
        vault_seen: None,
        config: config.clone(),
        forced: BTreeSet::new(),
        waiters: inbound::Waiters::default(),
        next_pass: 0,
    };
    let (focus_tx, mut focus_rx) = mpsc::unbounded_channel::<inbound::FocusDone>();
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<PassDone>();
    let (poll_tx, mut poll_rx) = mpsc::unbounded_channel::<PollDone>();
    let mut poll_timer = tokio::time::interval_at(
        tokio::time::Instant::now() + config.vault_poll_interval,
        config.vault_poll_interval,
    );
    poll_timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    loop {
        let now = Utc::now();
        lp.vault_back();
        lp.alert_unconverged(now);
        let due = lp.slots.take_due(now);
        if !due.is_empty() {
            lp.spawn_pass(due, done_tx.clone());
        }
        lp.publish();
        let wait = lp
            .slots
            .next_wake(now)
            .map(|t| (t - now).to_std().unwrap_or(Duration::ZERO))
            .unwrap_or(IDLE)
            .min(IDLE);
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
            Some(done) = done_rx.recv() => lp.finish_pass(done),
            Some(msg) = inbox_rx.recv() => lp.inbound(msg, focus_tx.clone()),
            Some(f) = focus_rx.recv() => lp.finish_focus(f),
            Some(poll) = poll_rx.recv() => lp.finish_poll(poll),
            _ = poll_timer.tick() => lp.spawn_poll(poll_tx.clone()),
            _ = signals.hup.recv() => lp.reload(),
            _ = signals.term.recv() => {
                tracing::info!("SIGTERM: finishing in-flight pushes, starting nothing new");
                break;
            }
            _ = signals.int.recv() => {
                tracing::info!("SIGINT: finishing in-flight pushes, starting nothing new");
                break;
            }
        }
    }

    // Drain: stop starting work, let what runs finish (bounded), then flush.
    shared.status().shutting_down = true;
    shared.ctx.stop.cancel();
    ticker.stop().await;
    tracker.close();
    if tokio::time::timeout(config.shutdown_timeout, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            timeout_secs = config.shutdown_timeout.as_secs(),
            "work still running after the shutdown timeout is abandoned; the next start converges it"
        );
    }
    match shared.ctx.ledger.lock() {
        Ok(mut l) => {
            if let Err(e) = l.sync() {
                tracing::error!(error = %e, "syncing the ledger failed");
            }
        }
        Err(_) => tracing::error!("the ledger lock is poisoned; its records are already written"),
    }
    if let Some(Err(e)) = shared.ctx.audit.as_ref().map(AuditLog::sync) {
        tracing::error!(error = %e, "syncing the audit log failed");
    }
    http_stop.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(2), server).await;
    tracing::info!("rotor daemon stopped");
    Ok(())
}

/// The loop's own state (only the loop task touches it).
struct Loop {
    shared: Arc<Shared>,
    tracker: TaskTracker,
    slots: Slots,
    /// One lock per policy name, held by the pass that runs it.
    guards: HashMap<String, Arc<tokio::sync::Mutex<()>>>,
    polling: bool,
    /// Vault's state as the loop last saw it.
    vault_seen: Option<bool>,
    config: DaemonConfig,
    /// Policies the control API asked to rotate: their next pass forces a rotation.
    forced: BTreeSet<String>,
    /// The control API's requests waiting for a pass.
    waiters: inbound::Waiters,
    next_pass: u64,
}

/// One pass: plan, then apply. Planning has no side effects: a shutdown may cut it short.
async fn run_pass(
    shared: Arc<Shared>,
    set: PolicySet,
    names: Vec<String>,
    force: BTreeSet<String>,
) -> (Plan, Report) {
    if panics_once(&names) {
        panic!("ROTOR_TEST_PANIC_ONCE: this pass panics on purpose");
    }
    let pass = Pass::new(&shared.ctx);
    let plan = tokio::select! {
        biased;
        _ = shared.ctx.stop.cancelled() => None,
        p = pass.plan(&set, &force) => Some(p),
    };
    match plan {
        Some(plan) => {
            let report = pass.apply(&set, &plan).await;
            (plan, report)
        }
        None => (
            Plan::default(),
            Report {
                interrupted: true,
                ..Default::default()
            },
        ),
    }
}

impl Loop {
    /// Starts one pass for the due policies (one pass shares repository listings).
    fn spawn_pass(&mut self, due: Vec<Policy>, done: mpsc::UnboundedSender<PassDone>) {
        let mut held = Vec::new();
        let mut set = PolicySet::default();
        for p in due {
            let guard = Arc::clone(self.guards.entry(p.name.clone()).or_default());
            match guard.try_lock_owned() {
                Ok(g) => {
                    held.push(g);
                    set.policies.push(p);
                }
                Err(_) => {
                    tracing::error!(policy = %p.name, "a pass of this policy still runs; not starting another");
                    if let Some(slot) = self.slots.slots.get_mut(&p.name) {
                        slot.in_flight = false;
                        slot.next_run = Some(Utc::now() + chrono::Duration::seconds(1));
                    }
                }
            }
        }
        if set.policies.is_empty() {
            return;
        }
        let names: Vec<String> = set.policies.iter().map(|p| p.name.clone()).collect();
        let force: BTreeSet<String> = names
            .iter()
            .filter(|n| self.forced.remove(*n))
            .cloned()
            .collect();
        self.next_pass += 1;
        let id = self.next_pass;
        self.waiters.claim(id, &names);
        tracing::info!(policies = ?names, forced = ?force, "pass starting");
        let shared = Arc::clone(&self.shared);
        self.tracker.spawn_local(async move {
            // The guards are held out here, so that a pass that panics still lets go of
            // its policies' slots (and the daemon hears of it).
            let _held = held;
            let inner =
                tokio::task::spawn_local(run_pass(Arc::clone(&shared), set, names.clone(), force));
            let (plan, report, panicked) = match inner.await {
                Ok((plan, report)) => (plan, report, false),
                Err(e) => {
                    if e.is_panic() {
                        tracing::error!(
                            policies = ?names,
                            "the pass panicked (a bug in rotor: please report it with the panic \
                             message above); its policies count as failed and are retried"
                        );
                    }
                    (
                        Plan::default(),
                        Report {
                            interrupted: !e.is_panic(),
                            ..Default::default()
                        },
                        e.is_panic(),
                    )
                }
            };
            let _ = done.send(PassDone {
                id,
                policies: names,
                plan,
                report,
                panicked,
            });
        });
    }

    fn finish_pass(&mut self, done: PassDone) {
        self.waiters.answer(&done);
        let now = Utc::now();
        type Times = (Option<chrono::DateTime<Utc>>, Option<chrono::DateTime<Utc>>);
        // Per policy: its last rotation, and when a lease it holds is next due for renewal.
        let recorded: HashMap<String, Times> = {
            let mut ledger = self
                .shared
                .ctx
                .ledger
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            match ledger.compact_if_large() {
                Ok(true) => tracing::info!("compacted the ledger journal"),
                Ok(false) => {}
                Err(e) => {
                    tracing::error!(error = %e, "compacting the ledger failed; it stays as it was")
                }
            }
            done.policies
                .iter()
                .map(|n| {
                    let p = ledger.state().policies.get(n);
                    (
                        n.clone(),
                        (
                            p.and_then(|p| p.rotated_at),
                            p.and_then(|p| p.txn.next_renewal(now)),
                        ),
                    )
                })
                .collect()
        };
        for name in &done.policies {
            let pp = done.plan.policies.iter().find(|p| &p.policy == name);
            let pr = done.report.policies.iter().find(|p| &p.policy == name);
            let mut outcome = if done.panicked {
                PolicyOutcome::panicked()
            } else {
                PolicyOutcome::from_pass(pp, pr)
            };
            let (rotated_at, renew_at) = recorded.get(name).copied().unwrap_or_default();
            let last = rotated_at.max(pp.and_then(|p| p.last_rotated_at));
            let Some(slot) = self.slots.slots.get_mut(name) else {
                continue; // removed by a reload while its pass ran
            };
            let alert = slot.finish(&mut outcome, last, now, self.config.retry_backoff);
            // A renewable lease a target relies on is renewed by a pass at half its term.
            if let Some(at) = renew_at {
                slot.next_run = Some(slot.next_run.map_or(at, |t| t.min(at)));
            }
            let (next_run, unconverged) = (slot.next_run, slot.unconverged);
            let owner = slot.policy.owner.clone();
            if let Some(p) = self.shared.status().policies.get_mut(name) {
                p.record(&outcome, now);
            }
            if outcome.converged {
                tracing::info!(
                    policy = %name, rotated = outcome.rotated, created = outcome.created, updated = outcome.updated,
                    version = outcome.version, next_run = next_run.map(|t| t.to_rfc3339()), "pass converged"
                );
            } else {
                tracing::warn!(
                    policy = %name, rotated = outcome.rotated, failed = outcome.failed, unconverged,
                    error = outcome.error.as_deref().unwrap_or(""), retry_at = next_run.map(|t| t.to_rfc3339()),
                    "pass left work undone; retrying at the same source version"
                );
            }
            if let Some(need) = alert {
                self.alert(need, owner);
            }
        }
    }

    /// Checks the versions of KV-backed sources (one check at a time).
    fn spawn_poll(&mut self, done: mpsc::UnboundedSender<PollDone>) {
        if self.polling || self.shared.ctx.sources.vault().is_none() {
            return;
        }
        let specs: Vec<(String, SourceSpec)> = self
            .slots
            .slots
            .values()
            .filter(|s| s.policy.source.is_stored() && !s.in_flight)
            .map(|s| (s.policy.name.clone(), s.policy.source.clone()))
            .collect();
        if specs.is_empty() {
            return;
        }
        self.polling = true;
        let shared = Arc::clone(&self.shared);
        self.tracker.spawn_local(async move {
            let check = stream::iter(specs)
                .map(|(name, spec)| {
                    let shared = &shared;
                    async move {
                        let v = shared
                            .ctx
                            .sources
                            .current_version(&spec)
                            .await
                            .map_err(|e| e.to_string());
                        (name, v)
                    }
                })
                .buffer_unordered(8)
                .collect::<Vec<_>>();
            let versions = tokio::select! {
                _ = shared.ctx.stop.cancelled() => return,
                v = check => v,
            };
            let _ = done.send(PollDone { versions });
        });
    }

    fn finish_poll(&mut self, poll: PollDone) {
        self.polling = false;
        let mut error = None;
        for (name, result) in poll.versions {
            match result {
                Ok(version) => {
                    let Some(slot) = self.slots.slots.get_mut(&name) else {
                        continue;
                    };
                    if !slot.in_flight && version.is_some() && version != slot.known_version {
                        tracing::info!(policy = %name, version, "the source holds a new version");
                        slot.run_now = true;
                    }
                }
                Err(e) => error = Some(e),
            }
        }
        let mut status = self.shared.status();
        match error {
            Some(e) => status.set_vault_up(false, Some(&e)),
            None => status.set_vault_up(true, None),
        }
    }

    /// When Vault answers again (whoever noticed: a poll, the token keeper, a readiness
    /// probe), what failed for want of it runs now rather than at its backoff.
    fn vault_back(&mut self) {
        let up = self.shared.status().vault_up;
        if self.vault_seen == Some(false) && up == Some(true) {
            for slot in self
                .slots
                .slots
                .values_mut()
                .filter(|s| s.attempt > 0 && !s.in_flight)
            {
                slot.run_now = true;
            }
        }
        self.vault_seen = up;
    }

    fn reload(&mut self) {
        if let Some(Err(e)) = self.shared.ctx.audit.as_ref().map(AuditLog::reopen) {
            tracing::error!(error = %e, "reopening the audit log failed; writing on to the open file");
        }
        match policy::load_dir_with(&self.config.policies_dir, &self.config.source_rules) {
            Ok(set) => {
                let (added, changed, removed) = self.slots.replace(&set);
                self.shared.set_policies(&set);
                self.shared.status().reloads_ok += 1;
                tracing::info!(
                    policies = set.policies.len(),
                    added,
                    changed,
                    removed,
                    "SIGHUP: policies reloaded"
                );
            }
            Err(diags) => {
                for d in &diags {
                    tracing::error!(diagnostic = %d, "invalid policy");
                }
                self.shared.status().reloads_failed += 1;
                tracing::error!(
                    errors = diags.len(),
                    "SIGHUP: reload rejected; the previous policies stay in force"
                );
            }
        }
    }

    fn alert_unconverged(&mut self, now: chrono::DateTime<Utc>) {
        let mut needs = Vec::new();
        for slot in self.slots.slots.values_mut() {
            if let Some(need) = slot.unconverged_alert(now, self.config.alert_after) {
                needs.push((need, slot.policy.owner.clone()));
            }
        }
        for (need, owner) in needs {
            self.alert(need, owner);
        }
    }

    /// Logs the alert and, with a webhook, sends it.
    fn alert(&self, need: AlertNeed, owner: Option<String>) {
        tracing::warn!(policy = %need.policy, kind = need.kind.as_str(), message = %need.message, "alert");
        if self.shared.alerter.is_none() {
            return;
        }
        let shared = Arc::clone(&self.shared);
        self.tracker.spawn(async move {
            let Some(alerter) = &shared.alerter else { return };
            let message = AlertMessage::new(&need, owner, Utc::now());
            let result = alerter.send(&message).await;
            let outcome = if result.is_ok() { "sent" } else { "failed" };
            *shared.status().alerts.entry((need.kind.as_str(), outcome)).or_default() += 1;
            if let Err(e) = result {
                tracing::warn!(policy = %need.policy, error = %e, "the alert webhook did not take the alert");
            }
        });
    }

    /// Copies the schedule into the status the HTTP listener shows.
    fn publish(&self) {
        let mut status = self.shared.status();
        for (name, slot) in &self.slots.slots {
            if let Some(p) = status.policies.get_mut(name) {
                p.next_due = slot.next_due;
                p.in_flight = slot.in_flight;
                p.unconverged = slot.unconverged;
            }
        }
    }
}
