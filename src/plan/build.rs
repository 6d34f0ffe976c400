//! The planner: decides, per policy, whether the source rotates, and per target and secret
//! what apply does. A pure function of its inputs.

use chrono::{DateTime, Utc};

use super::model::*;
use super::resolve::resolve;
use crate::ledger::LedgerState;
use crate::model::SecretMeta;
use crate::policy::{Policy, PolicySet, SourceSpec};
use crate::schedule::next_due;

/// How much later than rotor's own push GitHub's `updated_at` may be before it counts as a
/// change made outside rotor (allows for clock skew between rotor and GitHub).
pub const DRIFT_TOLERANCE_SECS: i64 = 60;

/// The version targets should hold: the source's for stored values, the ledger's otherwise.
pub fn current_version(
    policy: &Policy,
    ledger: &LedgerState,
    observed_source: Option<&Result<Option<u64>, String>>,
) -> Result<Option<u64>, String> {
    if policy.source.is_stored() {
        match observed_source {
            Some(Ok(v)) => Ok(*v),
            Some(Err(e)) => Err(e.clone()),
            None => Err("the source was not read".into()),
        }
    } else {
        Ok(ledger.policies.get(&policy.name).and_then(|p| p.version))
    }
}

/// When the policy last rotated: the later of the ledger's rotation record and the time the
/// source's current version was written (`source_written`, for KV-stored values). A rotation
/// interrupted after writing its new version but before recording it (a crash) still
/// counts, so it is not made a second time.
pub fn last_rotation(
    policy: &Policy,
    ledger: &LedgerState,
    source_written: Option<DateTime<Utc>>,
) -> Option<DateTime<Utc>> {
    let recorded = ledger.policies.get(&policy.name).and_then(|p| p.rotated_at);
    let written = source_written.filter(|_| policy.source.is_stored());
    recorded.max(written)
}

/// The rotation decision that needs no target state: forced, initial, due or max_age,
/// counting from the ledger's last rotation record.
pub fn decide_rotation(
    policy: &Policy,
    ledger: &LedgerState,
    current: Option<u64>,
    now: DateTime<Utc>,
    forced: bool,
) -> Option<RotateReason> {
    let last = ledger.policies.get(&policy.name).and_then(|p| p.rotated_at);
    decide_rotation_since(policy, last, current, now, forced)
}

/// As `decide_rotation`, counting from `last` (see `last_rotation`).
pub fn decide_rotation_since(
    policy: &Policy,
    last: Option<DateTime<Utc>>,
    current: Option<u64>,
    now: DateTime<Utc>,
    forced: bool,
) -> Option<RotateReason> {
    if !policy.source.mints() {
        return None;
    }
    if forced {
        return Some(RotateReason::Forced);
    }
    if current.is_none() {
        return Some(RotateReason::Initial);
    }
    let last = last?;
    let schedule = policy.schedule.as_ref()?;
    let due = next_due(&policy.name, schedule, last)?;
    if due > now {
        return None;
    }
    let by_age = schedule
        .max_age
        .and_then(|d| chrono::Duration::from_std(d).ok())
        .is_some_and(|d| last.checked_add_signed(d) == Some(due));
    Some(if by_age {
        RotateReason::MaxAge { due_at: due }
    } else {
        RotateReason::Due { due_at: due }
    })
}

fn describe_source(spec: &SourceSpec) -> String {
    match spec {
        SourceSpec::Generate { store: None, .. } => "generate (not stored)".into(),
        SourceSpec::Generate {
            store: Some(kv), ..
        } => {
            format!("generate -> vault kv {}/{}", kv.mount, kv.path)
        }
        SourceSpec::VaultKv(kv) => format!("vault kv {}/{}", kv.mount, kv.path),
        SourceSpec::VaultRead { path, params } if params.is_empty() => format!("vault read {path}"),
        SourceSpec::VaultRead { path, .. } => format!("vault write {path}"),
        SourceSpec::GithubRunnerToken { owner, repo } => match repo {
            Some(r) => format!("github runner token for {owner}/{r}"),
            None => format!("github runner token for org {owner}"),
        },
    }
}

/// Build the plan. **Pure**: no I/O; the same inputs give the same plan.
pub fn plan(
    set: &PolicySet,
    observed: &Observed,
    ledger: &LedgerState,
    now: DateTime<Utc>,
    opts: &PlanOptions,
) -> Plan {
    let mut shared = crate::intern::Interner::default();
    let policies = set
        .policies
        .iter()
        .map(|p| {
            plan_policy(
                p,
                observed,
                ledger,
                now,
                opts.force.contains(&p.name),
                opts.hold_version,
                &mut shared,
            )
        })
        .collect();
    let mut plan = Plan {
        generated_at: Some(now),
        policies,
        estimate: None,
        warnings: Vec::new(),
    };
    plan.warnings = super::preflight::check(&mut plan, set, observed);
    plan.warnings.extend(super::leases::warnings(set, ledger));
    plan
}

fn plan_policy(
    policy: &Policy,
    observed: &Observed,
    ledger: &LedgerState,
    now: DateTime<Utc>,
    forced: bool,
    hold: bool,
    shared: &mut crate::intern::Interner,
) -> PolicyPlan {
    let written = observed.source_written.get(&policy.name).copied();
    let last_rotated_at = last_rotation(policy, ledger, written);
    let next = match (last_rotated_at, &policy.schedule) {
        (Some(last), Some(s)) => next_due(&policy.name, s, last),
        _ => None,
    };
    let mut pp = PolicyPlan {
        policy: policy.name.clone(),
        owner: policy.owner.clone(),
        source: describe_source(&policy.source),
        rotate: None,
        version: None,
        last_rotated_at,
        next_due: next,
        expires_at: ledger.policies.get(&policy.name).and_then(|p| p.expires_at),
        vault_targets: policy
            .targets
            .iter()
            .filter_map(|t| match t {
                crate::policy::TargetSpec::VaultKv(kv) => Some(format!(
                    "vault kv {}/{} (key {})",
                    kv.mount,
                    kv.path,
                    kv.key.as_deref().unwrap_or("token")
                )),
                _ => None,
            })
            .collect(),
        problem: None,
        targets: Vec::new(),
        txn: None,
    };
    let current = match current_version(policy, ledger, observed.source_versions.get(&policy.name))
    {
        Ok(v) => v,
        Err(e) => {
            pp.problem = Some(format!("reading the source failed: {e}"));
            return pp;
        }
    };
    pp.version = current;
    if !policy.source.mints() && current.is_none() {
        pp.problem = Some("the source holds no version yet: write one to Vault first".into());
        return pp;
    }
    if hold && current.is_none() {
        pp.problem = Some("the policy has no version yet: its own pass makes the first one".into());
        return pp;
    }
    pp.rotate = if hold {
        None
    } else {
        decide_rotation_since(policy, last_rotated_at, current, now, forced)
    };

    let resolved = resolve(policy, &observed.listings);
    let vault_kv_forced = forced && !policy.source.mints();
    for rt in resolved {
        let (target, scope) = shared.scope(&rt.scope);
        let mut tp = TargetPlan {
            target,
            scope,
            access: rt.access.clone(),
            problem: rt.problem.clone(),
            // Exactly as many as the policy has: a first push would reserve room for four.
            secrets: Vec::with_capacity(policy.secrets.len()),
        };
        let existing = match observed.secrets.get(&rt.scope.key()) {
            Some(Ok(list)) => Some(list.as_slice()),
            Some(Err(e)) => {
                if tp.problem.is_none() {
                    tp.problem = Some(e.clone());
                }
                None
            }
            None => None,
        };
        for (name, field) in &policy.secrets {
            let meta = existing.and_then(|l| l.iter().find(|m| m.name.eq_ignore_ascii_case(name)));
            let state = ledger.target(&policy.name, &rt.scope, name);
            let record = state.and_then(|t| t.pushed.as_ref());
            let foreign = meta.and_then(|m| foreign_change(state, m));
            let (action, reason) = match (&pp.rotate, current) {
                _ if foreign.is_some() && !policy.takeover => (
                    Action::Conflict,
                    foreign.clone().unwrap_or_default()
                        + "; not overwritten (set `takeover: true` on the policy to adopt it)",
                ),
                (Some(r), _) => {
                    if let Some(f) = &foreign {
                        (
                            Action::Rotate,
                            format!("{f}; taking over; {}", r.describe()),
                        )
                    } else if record.is_none() && meta.is_none() {
                        (Action::Create, format!("never pushed; {}", r.describe()))
                    } else if existing.is_some() && meta.is_none() {
                        (
                            Action::Create,
                            format!("missing in GitHub; {}", r.describe()),
                        )
                    } else {
                        (Action::Rotate, r.describe())
                    }
                }
                (None, None) => (Action::Create, "no version yet".into()),
                (None, Some(v)) => {
                    let (action, reason) = decide_target(
                        record,
                        meta,
                        foreign.as_deref(),
                        existing.is_some(),
                        v,
                        vault_kv_forced,
                    );
                    let current_ids = observed
                        .selected_repos
                        .get(&(rt.scope.key(), name.to_ascii_uppercase()));
                    match super::access::compare(rt.access.as_ref(), meta, current_ids) {
                        Some(changed) if action == Action::Unchanged => changed,
                        _ => (action, reason),
                    }
                }
            };
            tp.secrets.push(SecretPlan {
                name: shared.str(name),
                field: shared.str(field),
                action,
                reason: shared.str(&reason),
            });
        }
        pp.targets.push(tp);
    }
    pp.targets.shrink_to_fit();

    // Every target that could take a new value holds someone else's secret: a rotation
    // would make a version nobody receives.
    if pp.rotate.is_some()
        && pp
            .targets
            .iter()
            .any(|t| t.problem.is_none() && t.all_in_conflict())
        && pp
            .targets
            .iter()
            .all(|t| t.problem.is_some() || t.all_in_conflict())
    {
        pp.rotate = None;
    }

    // A value that is not stored cannot be pushed again later: any target that needs it
    // makes the whole policy rotate, so that every target ends up with one value.
    if pp.rotate.is_none()
        && !hold
        && !policy.source.is_stored()
        && pp.targets.iter().any(|t| t.needs_value())
    {
        let reason = RotateReason::Unconvergeable;
        for t in &mut pp.targets {
            for s in &mut t.secrets {
                s.action = match s.action {
                    Action::Create => Action::Create,
                    // Left alone whatever else happens.
                    Action::Conflict => continue,
                    _ => Action::Rotate,
                };
                s.reason = shared.str(&reason.describe());
            }
        }
        pp.rotate = Some(reason);
    }
    if pp.problem.is_none() && !hold {
        match super::txn::transaction(policy, ledger, &pp, &observed.listings) {
            Ok(t) => pp.txn = t,
            Err(problem) => pp.problem = Some(problem),
        }
    }
    pp
}

/// Whether GitHub's secret `m` was written by someone other than rotor, and how: it was
/// there before rotor ever wrote it, or GitHub's `updated_at` is later (beyond clock skew)
/// than rotor's last write (a recorded push, or a claim made just before one: a push the
/// process may have made without living to record it).
pub fn foreign_change(
    state: Option<&crate::ledger::TargetState>,
    m: &SecretMeta,
) -> Option<String> {
    let when = m.updated_at.format("%Y-%m-%d %H:%M:%SZ");
    match state.and_then(|t| t.last_written()) {
        None => Some(format!("exists, and rotor never wrote it (updated {when})")),
        Some(w)
            if w.checked_add_signed(chrono::Duration::seconds(DRIFT_TOLERANCE_SECS))
                .is_some_and(|t| m.updated_at > t) =>
        {
            Some(format!(
                "changed outside rotor at {when} (rotor last wrote it at {})",
                w.format("%Y-%m-%d %H:%M:%SZ")
            ))
        }
        Some(_) => None,
    }
}

/// The action for one secret of one target when the policy does not rotate. `foreign`:
/// what `foreign_change` found, when the policy takes such secrets over.
fn decide_target(
    record: Option<&crate::ledger::PushedState>,
    meta: Option<&SecretMeta>,
    foreign: Option<&str>,
    observed: bool,
    version: u64,
    forced: bool,
) -> (Action, String) {
    if let Some(f) = foreign {
        return match record {
            Some(p) if p.version == version => (
                Action::Drift,
                format!("{f}; taking over: pushing version {version} again"),
            ),
            _ => (
                Action::Sync,
                format!("{f}; taking over: pushing version {version}"),
            ),
        };
    }
    match record {
        None => match meta {
            // Written by rotor (a claim) but not recorded: the process died after the PUT.
            Some(_) => (
                Action::Sync,
                format!("a push of rotor's was not recorded; pushing version {version} again"),
            ),
            None => (Action::Create, format!("never pushed; version {version}")),
        },
        Some(_) if observed && meta.is_none() => (
            Action::Create,
            format!("deleted outside rotor; pushing version {version} again"),
        ),
        Some(p) if p.version != version => (
            Action::Sync,
            format!("new source version: {} -> {version}", p.version),
        ),
        Some(_) if forced => (
            Action::Sync,
            format!("forced: pushing version {version} again"),
        ),
        Some(_) => (Action::Unchanged, format!("holds version {version}")),
    }
}
