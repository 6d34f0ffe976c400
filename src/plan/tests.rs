//! Planner tests: pure inputs in, actions and reasons out.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};

use super::*;
use crate::ledger::{Entry, LedgerState, PushRecord, RotationRecord};
use crate::model::{Repo, SecretMeta, SecretScope};
use crate::policy::*;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap()
}

fn policy(source: SourceSpec, schedule: Option<Schedule>) -> Policy {
    Policy {
        name: "p".into(),
        description: None,
        owner: None,
        source,
        secrets: BTreeMap::from([("TOKEN".to_string(), "value".to_string())]),
        targets: vec![TargetSpec::OrgRepos {
            org: "acme".into(),
            selector: RepoSelector {
                include: vec!["svc-*".into()],
                ..Default::default()
            },
            environment: None,
            app: App::Actions,
        }],
        schedule,
        verify: None,
        rollout: None,
        takeover: false,
        from_keys: None,
        file: "p.yaml".into(),
    }
}

fn stored() -> SourceSpec {
    SourceSpec::Generate {
        length: 32,
        charset: Charset::Hex,
        prefix: None,
        store: Some(KvRef {
            mount: "secret".into(),
            path: "p".into(),
            key: None,
        }),
    }
}

fn unstored() -> SourceSpec {
    SourceSpec::Generate {
        length: 32,
        charset: Charset::Hex,
        prefix: None,
        store: None,
    }
}

fn repos(names: &[&str]) -> Listings {
    let repos = names
        .iter()
        .enumerate()
        .map(|(i, n)| Repo {
            id: i as u64 + 1,
            name: n.to_string(),
            full_name: format!("acme/{n}"),
            archived: false,
            disabled: false,
            private: true,
            visibility: Some("private".into()),
            topics: vec![],
        })
        .collect();
    Listings {
        orgs: BTreeMap::from([("acme".to_string(), Ok(repos))]),
    }
}

fn scope(repo: &str) -> SecretScope {
    SecretScope::Repo {
        owner: "acme".into(),
        repo: repo.into(),
        app: App::Actions,
    }
}

fn ledger_with(
    version: u64,
    rotated_at: DateTime<Utc>,
    pushed: &[(&str, u64, DateTime<Utc>)],
) -> LedgerState {
    let mut l = LedgerState::default();
    l.apply(&Entry::Rotation(RotationRecord {
        policy: "p".into(),
        version,
        at: rotated_at,
        reason: "initial".into(),
        total_rotations: None,
        expires_at: None,
    }));
    for (repo, v, at) in pushed {
        l.apply(&Entry::Push(PushRecord {
            policy: "p".into(),
            scope: scope(repo),
            secret: "TOKEN".into(),
            version: *v,
            key_id: "k".into(),
            at: *at,
            outcome: "created".into(),
        }));
    }
    l
}

fn observed(
    listings: Listings,
    version: Option<u64>,
    secrets: &[(&str, DateTime<Utc>)],
) -> Observed {
    let mut o = Observed {
        listings,
        ..Default::default()
    };
    o.source_versions.insert("p".into(), Ok(version));
    for (repo, updated) in secrets {
        o.secrets.insert(
            scope(repo).key(),
            Ok(vec![SecretMeta {
                name: "TOKEN".into(),
                created_at: *updated,
                updated_at: *updated,
                visibility: None,
            }]),
        );
    }
    o
}

fn actions(plan: &Plan) -> Vec<(String, Action)> {
    plan.policies[0]
        .targets
        .iter()
        .flat_map(|t| {
            t.secrets
                .iter()
                .map(move |s| (t.target.to_string(), s.action))
        })
        .collect()
}

fn set(p: Policy) -> PolicySet {
    PolicySet { policies: vec![p] }
}

#[test]
fn a_source_without_a_version_rotates_initially_and_creates_every_target() {
    let p = policy(stored(), None);
    let plan = plan(
        &set(p),
        &observed(repos(&["svc-a", "svc-b", "web"]), None, &[]),
        &LedgerState::default(),
        now(),
        &PlanOptions::default(),
    );
    assert_eq!(plan.policies[0].rotate, Some(RotateReason::Initial));
    assert_eq!(
        actions(&plan),
        vec![
            ("acme/svc-a".into(), Action::Create),
            ("acme/svc-b".into(), Action::Create)
        ]
    );
}

#[test]
fn targets_at_the_current_version_are_unchanged_and_nothing_rotates() {
    let t = now() - chrono::Duration::days(1);
    let ledger = ledger_with(3, t, &[("svc-a", 3, t), ("svc-b", 3, t)]);
    let o = observed(
        repos(&["svc-a", "svc-b"]),
        Some(3),
        &[("svc-a", t), ("svc-b", t)],
    );
    let plan = plan(
        &set(policy(stored(), None)),
        &o,
        &ledger,
        now(),
        &PlanOptions::default(),
    );
    assert_eq!(plan.policies[0].rotate, None);
    assert!(actions(&plan).iter().all(|(_, a)| *a == Action::Unchanged));
    assert!(!plan.policies[0].has_work());
}

#[test]
fn a_new_source_version_syncs_only_the_targets_behind_it() {
    let t = now() - chrono::Duration::days(1);
    let ledger = ledger_with(3, t, &[("svc-a", 4, t), ("svc-b", 3, t)]);
    let o = observed(
        repos(&["svc-a", "svc-b"]),
        Some(4),
        &[("svc-a", t), ("svc-b", t)],
    );
    let plan = plan(
        &set(policy(stored(), None)),
        &o,
        &ledger,
        now(),
        &PlanOptions::default(),
    );
    assert_eq!(plan.policies[0].rotate, None);
    assert_eq!(
        actions(&plan),
        vec![
            ("acme/svc-a".into(), Action::Unchanged),
            ("acme/svc-b".into(), Action::Sync)
        ]
    );
}

fn plan_one(p: Policy, o: &Observed, ledger: &LedgerState) -> Plan {
    plan(&set(p), o, ledger, now(), &PlanOptions::default())
}

fn reasons(plan: &Plan) -> Vec<String> {
    plan.policies[0]
        .targets
        .iter()
        .flat_map(|t| t.secrets.iter().map(|s| s.reason.to_string()))
        .collect()
}

fn taking_over(source: SourceSpec, schedule: Option<Schedule>) -> Policy {
    Policy {
        takeover: true,
        ..policy(source, schedule)
    }
}

fn claimed(mut l: LedgerState, repo: &str, at: DateTime<Utc>) -> LedgerState {
    l.apply(&Entry::Claim(crate::ledger::ClaimRecord {
        policy: "p".into(),
        scope: scope(repo),
        secrets: vec!["token".into()],
        version: Some(4),
        at,
    }));
    l
}

#[test]
fn a_secret_changed_outside_rotor_since_its_push_is_a_conflict_and_left_alone() {
    let t = now() - chrono::Duration::days(1);
    let ledger = ledger_with(3, t, &[("svc-a", 3, t)]);
    let o = observed(
        repos(&["svc-a"]),
        Some(3),
        &[("svc-a", t + chrono::Duration::hours(2))],
    );
    let plan = plan_one(policy(stored(), None), &o, &ledger);
    assert_eq!(
        actions(&plan),
        vec![("acme/svc-a".into(), Action::Conflict)]
    );
    assert!(
        reasons(&plan)[0].contains("changed outside rotor"),
        "{:?}",
        reasons(&plan)
    );
    assert!(reasons(&plan)[0].contains("takeover: true"));
    assert!(
        !plan.policies[0].has_work(),
        "a conflict is not work for apply"
    );
    assert!(!plan.has_changes() && plan.has_problems());
    assert_eq!(plan.counts().conflict, 1);
    assert!(
        plan.to_text().contains("! acme/svc-a  TOKEN"),
        "{}",
        plan.to_text()
    );

    // Within the clock-skew allowance it is rotor's own write.
    let o = observed(
        repos(&["svc-a"]),
        Some(3),
        &[(
            "svc-a",
            t + chrono::Duration::seconds(crate::plan::build::DRIFT_TOLERANCE_SECS),
        )],
    );
    let plan = plan_one(policy(stored(), None), &o, &ledger);
    assert_eq!(
        actions(&plan),
        vec![("acme/svc-a".into(), Action::Unchanged)]
    );
}

#[test]
fn with_takeover_a_secret_changed_outside_rotor_is_drift_and_written_again() {
    let t = now() - chrono::Duration::days(1);
    let ledger = ledger_with(3, t, &[("svc-a", 3, t)]);
    let o = observed(
        repos(&["svc-a"]),
        Some(3),
        &[("svc-a", t + chrono::Duration::hours(2))],
    );
    let plan = plan_one(taking_over(stored(), None), &o, &ledger);
    assert_eq!(actions(&plan), vec![("acme/svc-a".into(), Action::Drift)]);
    assert!(reasons(&plan)[0].contains("taking over"));
    assert!(plan.policies[0].has_work());
}

#[test]
fn a_secret_there_before_rotor_ever_wrote_it_is_a_conflict_unless_taken_over() {
    let t = now() - chrono::Duration::days(1);
    let ledger = ledger_with(3, t, &[]);
    let o = observed(repos(&["svc-a", "svc-b"]), Some(3), &[("svc-a", t)]);
    let plan = plan_one(policy(stored(), None), &o, &ledger);
    assert_eq!(
        actions(&plan),
        vec![
            ("acme/svc-a".into(), Action::Conflict),
            ("acme/svc-b".into(), Action::Create)
        ]
    );
    assert!(reasons(&plan)[0].contains("rotor never wrote it"));

    let plan = plan_one(taking_over(stored(), None), &o, &ledger);
    assert_eq!(
        actions(&plan),
        vec![
            ("acme/svc-a".into(), Action::Sync),
            ("acme/svc-b".into(), Action::Create)
        ]
    );
}

#[test]
fn a_rotation_leaves_a_conflicting_target_alone_and_rotates_the_rest() {
    let t = now() - chrono::Duration::days(40);
    let ledger = ledger_with(3, t, &[("svc-a", 3, t), ("svc-b", 3, t)]);
    let o = observed(
        repos(&["svc-a", "svc-b", "svc-c"]),
        Some(3),
        &[
            ("svc-a", t),
            ("svc-b", now() - chrono::Duration::days(1)),
            ("svc-c", t),
        ],
    );
    let daily = Schedule {
        cadence: Some(Cadence::Every(Duration::from_secs(86_400))),
        timezone: "UTC".into(),
        jitter: None,
        max_age: None,
    };
    let plan = plan_one(policy(stored(), Some(daily.clone())), &o, &ledger);
    assert!(plan.policies[0].rotate.is_some());
    assert_eq!(
        actions(&plan),
        vec![
            ("acme/svc-a".into(), Action::Rotate),
            ("acme/svc-b".into(), Action::Conflict),
            ("acme/svc-c".into(), Action::Conflict)
        ]
    );
    let plan = plan_one(taking_over(stored(), Some(daily)), &o, &ledger);
    assert!(actions(&plan).iter().all(|(_, a)| *a == Action::Rotate));
}

#[test]
fn an_unstored_value_rotating_for_every_target_still_leaves_a_conflict_alone() {
    let t = now() - chrono::Duration::days(1);
    // svc-b was never written; svc-a holds someone else's secret.
    let ledger = ledger_with(3, t, &[]);
    let mut o = observed(repos(&["svc-a", "svc-b"]), Some(3), &[("svc-a", t)]);
    o.secrets.insert(scope("svc-b").key(), Ok(vec![]));
    let plan = plan_one(policy(unstored(), None), &o, &ledger);
    assert_eq!(plan.policies[0].rotate, Some(RotateReason::Unconvergeable));
    assert_eq!(
        actions(&plan),
        vec![
            ("acme/svc-a".into(), Action::Conflict),
            ("acme/svc-b".into(), Action::Create)
        ]
    );
}

#[test]
fn a_claim_explains_rotors_own_unrecorded_push() {
    // The process claimed svc-a, pushed version 4 and died before recording the push.
    let t = now() - chrono::Duration::days(1);
    let claim_at = now() - chrono::Duration::minutes(5);
    let ledger = claimed(ledger_with(3, t, &[("svc-a", 3, t)]), "svc-a", claim_at);
    let updated = claim_at + chrono::Duration::seconds(1);
    let o = observed(repos(&["svc-a"]), Some(4), &[("svc-a", updated)]);
    let plan = plan_one(policy(stored(), None), &o, &ledger);
    assert_eq!(actions(&plan), vec![("acme/svc-a".into(), Action::Sync)]);

    // Likewise for a first push that was never recorded.
    let ledger = claimed(ledger_with(3, t, &[]), "svc-a", claim_at);
    let plan = plan_one(policy(stored(), None), &o, &ledger);
    assert_eq!(actions(&plan), vec![("acme/svc-a".into(), Action::Sync)]);
    assert!(
        reasons(&plan)[0].contains("not recorded"),
        "{:?}",
        reasons(&plan)
    );

    // A change well after the claim is still someone else's.
    let later = claim_at + chrono::Duration::minutes(3);
    let o = observed(repos(&["svc-a"]), Some(4), &[("svc-a", later)]);
    let plan = plan_one(policy(stored(), None), &o, &ledger);
    assert_eq!(
        actions(&plan),
        vec![("acme/svc-a".into(), Action::Conflict)]
    );
}

#[test]
fn a_claim_is_settled_by_the_push_after_it_and_survives_compaction_until_then() {
    let t = now() - chrono::Duration::days(1);
    let open = claimed(
        ledger_with(3, t, &[("svc-a", 3, t)]),
        "svc-a",
        t + chrono::Duration::hours(1),
    );
    let target = open.target("p", &scope("svc-a"), "TOKEN").expect("record");
    assert_eq!(target.claimed, Some(t + chrono::Duration::hours(1)));
    assert_eq!(target.last_written(), Some(t + chrono::Duration::hours(1)));
    // Compaction keeps an open claim.
    let mut replayed = LedgerState::default();
    for e in open.to_entries() {
        replayed.apply(&e);
    }
    assert_eq!(
        replayed
            .target("p", &scope("svc-a"), "TOKEN")
            .and_then(|t| t.claimed),
        Some(t + chrono::Duration::hours(1))
    );
    // The push it announced settles it.
    let mut settled = open.clone();
    settled.apply(&Entry::Push(PushRecord {
        policy: "p".into(),
        scope: scope("svc-a"),
        secret: "TOKEN".into(),
        version: 4,
        key_id: "k".into(),
        at: t + chrono::Duration::hours(1) + chrono::Duration::seconds(1),
        outcome: "updated".into(),
    }));
    let target = settled
        .target("p", &scope("svc-a"), "TOKEN")
        .expect("record");
    assert_eq!(target.claimed, None);
    // An older claim replayed later changes nothing.
    let stale = claimed(settled.clone(), "svc-a", t);
    assert_eq!(stale, settled);
}

#[test]
fn a_secret_deleted_outside_rotor_is_created_again() {
    let t = now() - chrono::Duration::days(1);
    let ledger = ledger_with(3, t, &[("svc-a", 3, t)]);
    let mut o = observed(repos(&["svc-a"]), Some(3), &[]);
    o.secrets.insert(scope("svc-a").key(), Ok(vec![]));
    let plan = plan(
        &set(policy(stored(), None)),
        &o,
        &ledger,
        now(),
        &PlanOptions::default(),
    );
    assert_eq!(actions(&plan), vec![("acme/svc-a".into(), Action::Create)]);
}

#[test]
fn a_passed_cadence_slot_rotates_with_reason_due() {
    let last = now() - chrono::Duration::days(31);
    let schedule = Schedule {
        cadence: Some(Cadence::Every(Duration::from_secs(30 * 86400))),
        timezone: "UTC".into(),
        jitter: None,
        max_age: None,
    };
    let ledger = ledger_with(1, last, &[("svc-a", 1, last)]);
    let plan = plan(
        &set(policy(stored(), Some(schedule))),
        &observed(repos(&["svc-a"]), Some(1), &[]),
        &ledger,
        now(),
        &PlanOptions::default(),
    );
    assert!(matches!(
        plan.policies[0].rotate,
        Some(RotateReason::Due { .. })
    ));
    assert_eq!(actions(&plan), vec![("acme/svc-a".into(), Action::Rotate)]);
}

#[test]
fn max_age_rotates_when_it_comes_first() {
    let last = now() - chrono::Duration::days(36);
    let schedule = Schedule {
        cadence: Some(Cadence::Every(Duration::from_secs(90 * 86400))),
        timezone: "UTC".into(),
        jitter: None,
        max_age: Some(Duration::from_secs(35 * 86400)),
    };
    let ledger = ledger_with(1, last, &[("svc-a", 1, last)]);
    let plan = plan(
        &set(policy(stored(), Some(schedule))),
        &observed(repos(&["svc-a"]), Some(1), &[]),
        &ledger,
        now(),
        &PlanOptions::default(),
    );
    assert!(matches!(
        plan.policies[0].rotate,
        Some(RotateReason::MaxAge { .. })
    ));
}

#[test]
fn an_unstored_value_rotates_again_for_every_target_when_one_target_lacks_it() {
    let t = now() - chrono::Duration::hours(1);
    let ledger = ledger_with(2, t, &[("svc-a", 2, t)]);
    let o = observed(repos(&["svc-a", "svc-b"]), None, &[("svc-a", t)]);
    let plan = plan(
        &set(policy(unstored(), None)),
        &o,
        &ledger,
        now(),
        &PlanOptions::default(),
    );
    assert_eq!(plan.policies[0].rotate, Some(RotateReason::Unconvergeable));
    assert_eq!(
        actions(&plan),
        vec![
            ("acme/svc-a".into(), Action::Rotate),
            ("acme/svc-b".into(), Action::Create)
        ]
    );
}

#[test]
fn forcing_a_policy_rotates_it_even_when_not_due() {
    let t = now() - chrono::Duration::hours(1);
    let ledger = ledger_with(2, t, &[("svc-a", 2, t)]);
    let opts = PlanOptions {
        force: ["p".to_string()].into(),
        ..Default::default()
    };
    let plan = plan(
        &set(policy(stored(), None)),
        &observed(repos(&["svc-a"]), Some(2), &[]),
        &ledger,
        now(),
        &opts,
    );
    assert_eq!(plan.policies[0].rotate, Some(RotateReason::Forced));
}

#[test]
fn a_source_that_cannot_be_read_is_a_policy_problem_not_a_rotation() {
    let mut o = observed(repos(&["svc-a"]), None, &[]);
    o.source_versions
        .insert("p".into(), Err("connection refused".into()));
    let plan = plan(
        &set(policy(stored(), None)),
        &o,
        &LedgerState::default(),
        now(),
        &PlanOptions::default(),
    );
    assert!(plan.policies[0]
        .problem
        .as_deref()
        .unwrap()
        .contains("connection refused"));
    assert_eq!(plan.policies[0].rotate, None);
}

#[test]
fn a_failed_listing_marks_the_target_with_githubs_message() {
    let t = now() - chrono::Duration::hours(1);
    let ledger = ledger_with(2, t, &[]);
    let mut o = observed(repos(&["svc-a"]), Some(2), &[]);
    o.secrets
        .insert(scope("svc-a").key(), Err("404 Not Found".into()));
    let plan = plan(
        &set(policy(stored(), None)),
        &o,
        &ledger,
        now(),
        &PlanOptions::default(),
    );
    assert_eq!(
        plan.policies[0].targets[0].problem.as_deref(),
        Some("404 Not Found")
    );
    assert!(plan.to_text().contains("404 Not Found"));
}

#[test]
fn the_same_inputs_give_the_same_plan() {
    let o = observed(repos(&["svc-a", "svc-b"]), None, &[]);
    let a = plan(
        &set(policy(stored(), None)),
        &o,
        &LedgerState::default(),
        now(),
        &PlanOptions::default(),
    );
    let b = plan(
        &set(policy(stored(), None)),
        &o,
        &LedgerState::default(),
        now(),
        &PlanOptions::default(),
    );
    assert_eq!(a.to_json(), b.to_json());
}

fn every_30d() -> Schedule {
    Schedule {
        cadence: Some(Cadence::Every(Duration::from_secs(30 * 86400))),
        timezone: "UTC".into(),
        jitter: None,
        max_age: None,
    }
}

/// A crash between writing the new KV version and recording the rotation in the ledger
/// leaves the source one version ahead: that version is the rotation, not a reason for
/// another one, and the targets converge to it.
#[test]
fn a_source_version_written_after_the_ledger_record_counts_as_the_rotation_and_is_not_made_again() {
    let recorded = now() - chrono::Duration::days(40);
    let written = now() - chrono::Duration::minutes(5);
    let ledger = ledger_with(
        1,
        recorded,
        &[("svc-a", 1, recorded), ("svc-b", 1, recorded)],
    );
    let mut o = observed(
        repos(&["svc-a", "svc-b"]),
        Some(2),
        &[("svc-a", recorded), ("svc-b", recorded)],
    );
    o.source_written.insert("p".into(), written);
    let plan = plan(
        &set(policy(stored(), Some(every_30d()))),
        &o,
        &ledger,
        now(),
        &PlanOptions::default(),
    );
    let pp = &plan.policies[0];
    assert_eq!(
        pp.rotate, None,
        "the interrupted rotation already made version 2"
    );
    assert_eq!(pp.version, Some(2));
    assert_eq!(pp.last_rotated_at, Some(written));
    assert_eq!(pp.next_due, Some(written + chrono::Duration::days(30)));
    assert_eq!(
        actions(&plan),
        vec![
            ("acme/svc-a".into(), Action::Sync),
            ("acme/svc-b".into(), Action::Sync)
        ]
    );
}

#[test]
fn a_stored_version_the_ledger_never_recorded_is_not_rotated_again_before_it_is_due() {
    let written = now() - chrono::Duration::days(1);
    let mut o = observed(repos(&["svc-a"]), Some(1), &[]);
    o.source_written.insert("p".into(), written);
    let plan = plan(
        &set(policy(stored(), Some(every_30d()))),
        &o,
        &LedgerState::default(),
        now(),
        &PlanOptions::default(),
    );
    assert_eq!(plan.policies[0].rotate, None);
    assert_eq!(actions(&plan), vec![("acme/svc-a".into(), Action::Create)]);
}

#[test]
fn an_old_source_version_does_not_hide_a_due_rotation() {
    let last = now() - chrono::Duration::days(40);
    let ledger = ledger_with(1, last, &[("svc-a", 1, last)]);
    let mut o = observed(repos(&["svc-a"]), Some(1), &[]);
    o.source_written
        .insert("p".into(), last - chrono::Duration::seconds(1));
    let plan = plan(
        &set(policy(stored(), Some(every_30d()))),
        &o,
        &ledger,
        now(),
        &PlanOptions::default(),
    );
    assert!(matches!(
        plan.policies[0].rotate,
        Some(RotateReason::Due { .. })
    ));
}

#[test]
fn a_write_time_is_ignored_for_a_value_that_is_not_stored() {
    let last = now() - chrono::Duration::days(40);
    let ledger = ledger_with(1, last, &[("svc-a", 1, last)]);
    let mut o = observed(repos(&["svc-a"]), None, &[]);
    o.source_written.insert("p".into(), now());
    let plan = plan(
        &set(policy(unstored(), Some(every_30d()))),
        &o,
        &ledger,
        now(),
        &PlanOptions::default(),
    );
    assert!(matches!(
        plan.policies[0].rotate,
        Some(RotateReason::Due { .. })
    ));
}

// Transactions (verify / rollout).

fn transactional(source: SourceSpec) -> Policy {
    let mut p = policy(source, None);
    p.rollout = Some(crate::model::policy::Rollout {
        canary: crate::model::policy::Canary::Count(1),
        on_failure: crate::model::policy::OnFailure::Rollback,
    });
    p
}

fn txn_rec(version: u64, previous: u64, state: crate::ledger::TxnState) -> Entry {
    Entry::Txn(crate::ledger::TxnRecord {
        policy: "p".into(),
        version,
        previous: Some(previous),
        state,
        at: now(),
        message: None,
        restored_as: None,
        lease: None,
    })
}

#[test]
fn a_due_rotation_of_a_transactional_policy_is_a_transaction_in_waves() {
    let t = now() - chrono::Duration::days(1);
    let ledger = ledger_with(3, t, &[("svc-a", 3, t), ("svc-b", 3, t)]);
    let o = observed(
        repos(&["svc-a", "svc-b"]),
        Some(3),
        &[("svc-a", t), ("svc-b", t)],
    );
    let opts = PlanOptions {
        force: ["p".to_string()].into(),
        ..Default::default()
    };
    let plan = plan(&set(transactional(stored())), &o, &ledger, now(), &opts);
    let txn = plan.policies[0].txn.as_ref().expect("a transaction");
    assert_eq!(
        (txn.version, txn.previous, txn.resume.as_deref()),
        (None, Some(3), None)
    );
    assert_eq!(txn.waves.canary, vec!["acme/svc-a"]);
    assert_eq!(txn.waves.rest, vec!["acme/svc-b"]);
    assert!(
        plan.to_text()
            .contains("wave canary: 1 target(s): acme/svc-a"),
        "{}",
        plan.to_text()
    );
}

#[test]
fn an_open_transaction_resumes_with_its_version_and_state() {
    let t = now() - chrono::Duration::days(1);
    let mut ledger = ledger_with(4, t, &[("svc-a", 4, t), ("svc-b", 3, t)]);
    ledger.apply(&txn_rec(4, 3, crate::ledger::TxnState::Pending));
    ledger.apply(&txn_rec(4, 3, crate::ledger::TxnState::CanaryPushed));
    let o = observed(
        repos(&["svc-a", "svc-b"]),
        Some(4),
        &[("svc-a", t), ("svc-b", t)],
    );
    let plan = plan(
        &set(transactional(stored())),
        &o,
        &ledger,
        now(),
        &PlanOptions::default(),
    );
    let pp = &plan.policies[0];
    assert_eq!(pp.rotate, None, "resuming never mints a second value");
    let txn = pp.txn.as_ref().expect("the open transaction");
    assert_eq!(txn.version, Some(4));
    assert_eq!(txn.previous, Some(3));
    assert_eq!(txn.resume.as_deref(), Some("canary_pushed"));
    assert!(pp.has_work());
}

#[test]
fn a_version_that_failed_verification_is_never_pushed_again() {
    let t = now() - chrono::Duration::days(1);
    let mut ledger = ledger_with(4, t, &[("svc-a", 4, t), ("svc-b", 3, t)]);
    ledger.apply(&txn_rec(4, 3, crate::ledger::TxnState::Pending));
    ledger.apply(&txn_rec(4, 3, crate::ledger::TxnState::Failed));
    ledger.apply(&txn_rec(4, 3, crate::ledger::TxnState::Halted));
    let o = observed(
        repos(&["svc-a", "svc-b"]),
        Some(4),
        &[("svc-a", t), ("svc-b", t)],
    );
    let halted = plan(
        &set(transactional(stored())),
        &o,
        &ledger,
        now(),
        &PlanOptions::default(),
    );
    let problem = halted.policies[0].problem.as_deref().unwrap_or_default();
    assert!(
        problem.contains("version 4 failed verification"),
        "{problem}"
    );
    // A new rotation rolls back to the last good version, not to the failed one.
    let opts = PlanOptions {
        force: ["p".to_string()].into(),
        ..Default::default()
    };
    let rotated = plan(&set(transactional(stored())), &o, &ledger, now(), &opts);
    assert_eq!(
        rotated.policies[0].txn.as_ref().and_then(|t| t.previous),
        Some(3)
    );
}

#[test]
fn a_version_new_to_every_target_is_a_transaction_and_a_held_one_just_converges() {
    let t = now() - chrono::Duration::days(1);
    let kv = SourceSpec::VaultKv(KvRef {
        mount: "secret".into(),
        path: "p".into(),
        key: None,
    });
    let ledger = ledger_with(3, t, &[("svc-a", 3, t), ("svc-b", 3, t)]);
    let o = observed(
        repos(&["svc-a", "svc-b"]),
        Some(5),
        &[("svc-a", t), ("svc-b", t)],
    );
    let plan1 = plan(
        &set(transactional(kv.clone())),
        &o,
        &ledger,
        now(),
        &PlanOptions::default(),
    );
    let txn = plan1.policies[0].txn.as_ref().expect("new version 5");
    assert_eq!((txn.version, txn.previous), (Some(5), Some(3)));
    // svc-b missing version 5 while svc-a holds it: plain convergence, no transaction.
    let ledger = ledger_with(5, t, &[("svc-a", 5, t), ("svc-b", 3, t)]);
    let plan2 = plan(
        &set(transactional(kv)),
        &o,
        &ledger,
        now(),
        &PlanOptions::default(),
    );
    assert_eq!(plan2.policies[0].txn, None);
    // Without verify or rollout there is never a transaction.
    let ledger = ledger_with(3, t, &[("svc-a", 3, t), ("svc-b", 3, t)]);
    let plain = plan(
        &set(policy(stored(), None)),
        &o,
        &ledger,
        now(),
        &PlanOptions::default(),
    );
    assert_eq!(plain.policies[0].txn, None);
}

#[test]
fn an_open_transaction_of_a_value_stored_nowhere_is_abandoned_for_a_new_one() {
    let t = now() - chrono::Duration::days(1);
    let mut ledger = ledger_with(2, t, &[("svc-a", 2, t), ("svc-b", 1, t)]);
    ledger.apply(&txn_rec(2, 1, crate::ledger::TxnState::CanaryPushed));
    let o = observed(
        repos(&["svc-a", "svc-b"]),
        None,
        &[("svc-a", t), ("svc-b", t)],
    );
    let plan = plan(
        &set(transactional(unstored())),
        &o,
        &ledger,
        now(),
        &PlanOptions::default(),
    );
    let txn = plan.policies[0].txn.as_ref().expect("a new transaction");
    assert_eq!((txn.version, txn.abandon), (None, Some(2)));
}

// Dynamic credentials' leases.

fn dynamic() -> SourceSpec {
    SourceSpec::VaultRead {
        path: "database/creds/ci".into(),
        params: BTreeMap::new(),
    }
}

fn issued(version: u64, secs: u64, renewable: bool) -> Entry {
    Entry::Lease(crate::ledger::LeaseRecord {
        version: Some(version),
        lease: Some(crate::ledger::LeaseInfo {
            lease_id: format!("database/creds/ci/l{version}"),
            duration_secs: secs,
            renewable,
            issued_at: now() - chrono::Duration::hours(1),
        }),
        ..crate::ledger::LeaseRecord::new("p", &format!("database/creds/ci/l{version}"), "issued")
    })
}

fn lease_warnings(ledger: &LedgerState, schedule: Schedule) -> Vec<String> {
    let o = observed(repos(&["svc-a"]), None, &[]);
    let p = policy(dynamic(), Some(schedule));
    plan(&set(p), &o, ledger, now(), &PlanOptions::default())
        .warnings
        .into_iter()
        .map(|w| w.message)
        .collect()
}

#[test]
fn a_lease_shorter_than_the_cadence_is_a_plan_warning_that_says_whether_rotor_renews_it() {
    let mut ledger = LedgerState::default();
    // No lease known yet (nothing issued): nothing to say.
    assert!(lease_warnings(&ledger, every_30d()).is_empty());
    ledger.apply(&issued(1, 3600, false));
    let w = lease_warnings(&ledger, every_30d());
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].contains("lasts 1h00m and cannot be renewed"),
        "{}",
        w[0]
    );
    assert!(
        w[0].contains("expired credential from 2026-11-25 12:00:00Z"),
        "{}",
        w[0]
    );
    // The newest lease counts, and a renewable one says rotor renews it.
    ledger.apply(&issued(2, 86400, true));
    let w = lease_warnings(&ledger, every_30d());
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].contains("rotor renews it at half its term"),
        "{}",
        w[0]
    );
    // A lease that outlives the cadence is fine.
    let hourly = Schedule {
        cadence: Some(Cadence::Every(Duration::from_secs(3600))),
        ..every_30d()
    };
    assert!(lease_warnings(&ledger, hourly).is_empty());
}

#[test]
fn a_transaction_whose_first_wave_no_run_would_verify_is_a_problem_not_a_pass() {
    let t = now() - chrono::Duration::days(1);
    let ledger = ledger_with(3, t, &[("svc-a", 3, t), ("svc-b", 3, t)]);
    let o = observed(
        repos(&["svc-a", "svc-b"]),
        Some(3),
        &[("svc-a", t), ("svc-b", t)],
    );
    let with_verify = |repos: &[&str]| {
        let mut p = transactional(stored());
        p.verify = Some(crate::model::policy::Verify {
            workflow: crate::model::policy::WorkflowRef::File("verify.yml".into()),
            git_ref: None,
            inputs: BTreeMap::new(),
            timeout: Duration::from_secs(60),
            repos: repos.iter().map(|r| r.to_string()).collect(),
        });
        p
    };
    let force = PlanOptions {
        force: ["p".to_string()].into(),
        ..Default::default()
    };
    // The canary is svc-a (name order); verify covers only svc-b.
    let bad = plan(&set(with_verify(&["svc-b"])), &o, &ledger, now(), &force);
    let problem = bad.policies[0].problem.as_deref().expect("a problem");
    assert!(
        problem.contains("verify covers none of the canary targets' repositories (acme/svc-a)"),
        "{problem}"
    );
    assert_eq!(bad.policies[0].txn, None);
    // Covered: a transaction, verified in svc-a first.
    let good = plan(&set(with_verify(&["svc-*"])), &o, &ledger, now(), &force);
    let txn = good.policies[0].txn.as_ref().expect("a transaction");
    assert_eq!(txn.waves.verify_canary, vec!["acme/svc-a"]);
    // Nothing to rotate: no transaction, so nothing to complain about.
    let idle = plan(
        &set(with_verify(&["svc-b"])),
        &o,
        &ledger,
        now(),
        &PlanOptions::default(),
    );
    assert_eq!(idle.policies[0].problem, None);
}

#[test]
fn hold_version_never_rotates_a_due_policy_and_leaves_a_new_one_to_its_own_pass() {
    let t = now() - chrono::Duration::days(40);
    let ledger = ledger_with(3, t, &[("svc-a", 3, t)]);
    let o = observed(repos(&["svc-a", "svc-b"]), Some(3), &[("svc-a", t)]);
    let due = Schedule {
        cadence: Some(Cadence::Every(Duration::from_secs(30 * 86400))),
        timezone: "UTC".into(),
        jitter: None,
        max_age: None,
    };
    let held = PlanOptions {
        hold_version: true,
        ..Default::default()
    };
    let p = plan(
        &set(policy(stored(), Some(due.clone()))),
        &o,
        &ledger,
        now(),
        &held,
    );
    assert_eq!(p.policies[0].rotate, None, "due, but held");
    assert_eq!(
        actions(&p),
        vec![
            ("acme/svc-a".into(), Action::Unchanged),
            ("acme/svc-b".into(), Action::Create)
        ]
    );
    let normal = plan(
        &set(policy(stored(), Some(due))),
        &o,
        &ledger,
        now(),
        &PlanOptions::default(),
    );
    assert!(
        normal.policies[0].rotate.is_some(),
        "without hold it rotates"
    );
    let fresh = plan(
        &set(policy(stored(), None)),
        &observed(repos(&["svc-a"]), None, &[]),
        &LedgerState::default(),
        now(),
        &held,
    );
    assert!(
        fresh.policies[0].problem.is_some(),
        "no version yet: left to its own pass"
    );
}

#[test]
fn the_markdown_plan_matches_its_snapshot_and_says_whether_anything_changes() {
    let t = now() - chrono::Duration::days(1);
    let ledger = ledger_with(3, t, &[("svc-a", 4, t), ("svc-b", 3, t)]);
    // svc-c holds a secret of that name rotor never wrote: a conflict.
    let o = observed(
        repos(&["svc-a", "svc-b", "svc-c"]),
        Some(4),
        &[("svc-a", t), ("svc-b", t), ("svc-c", t)],
    );
    let mut p = policy(stored(), None);
    p.owner = Some("security@example.com".into());
    let plan = plan(&set(p), &o, &ledger, now(), &PlanOptions::default());
    assert!(plan.has_changes() && plan.has_problems());
    assert_eq!(plan.counts().conflict, 1);
    let md = plan.to_markdown();
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/plans/markdown.expected"
    );
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some_and(|v| v == "1") {
        std::fs::write(path, &md).unwrap();
    }
    assert_eq!(
        md,
        std::fs::read_to_string(path).unwrap_or_default(),
        "UPDATE_SNAPSHOTS=1 to rewrite"
    );

    let quiet = ledger_with(4, t, &[("svc-a", 4, t), ("svc-b", 4, t), ("svc-c", 4, t)]);
    let unchanged = super::plan(
        &set(policy(stored(), None)),
        &o,
        &quiet,
        now(),
        &PlanOptions::default(),
    );
    assert!(!unchanged.has_changes());
}

#[test]
fn a_rotation_that_would_reach_no_target_but_conflicts_is_not_made() {
    let t = now() - chrono::Duration::days(1);
    let o = observed(
        repos(&["svc-a", "svc-b"]),
        None,
        &[("svc-a", t), ("svc-b", t)],
    );
    let plan = plan_one(policy(stored(), None), &o, &LedgerState::default());
    assert_eq!(plan.policies[0].rotate, None);
    assert!(actions(&plan).iter().all(|(_, a)| *a == Action::Conflict));
    assert!(!plan.policies[0].has_work());
    // One target that can take it is enough.
    let o = observed(repos(&["svc-a", "svc-b"]), None, &[("svc-a", t)]);
    let plan = plan_one(policy(stored(), None), &o, &LedgerState::default());
    assert_eq!(plan.policies[0].rotate, Some(RotateReason::Initial));
}
