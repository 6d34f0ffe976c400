//! How long apply will take within GitHub's budget: the requests and points a plan needs,
//! and the least time each limit allows for them. Pure, like the rest of planning.

use std::collections::BTreeSet;

use super::model::{Budget, Estimate, Plan, PollSettings};
use crate::ledger::LedgerState;

/// Estimates `plan` under `budget`; keys already in `ledger` cost nothing.
pub fn estimate(plan: &Plan, ledger: &LedgerState, budget: &Budget) -> Estimate {
    let mut writes = 0u64;
    let mut scopes = BTreeSet::new();
    for p in plan.policies.iter().filter(|p| p.problem.is_none()) {
        for t in p.targets.iter().filter(|t| t.needs_push()) {
            writes += t.secrets.iter().filter(|s| s.action.writes()).count() as u64;
            if ledger.key(&t.scope).is_none() {
                scopes.insert(t.scope.key());
            }
        }
    }
    let key_fetches = scopes.len() as u64;
    // Verification: per run a dispatch (a write), a default-branch read and polls until the
    // timeout at most, paced by the governor like every other request.
    let poll = PollSettings::default();
    let (mut verification_runs, mut verification_requests, mut verification_points) = (0, 0, 0);
    for p in plan.policies.iter().filter(|p| p.problem.is_none()) {
        let Some(t) = p.txn.as_ref().filter(|t| t.workflow.is_some()) else {
            continue;
        };
        let runs = (t.waves.verify_canary.len() + t.waves.verify_rest.len()) as u64;
        let polls = poll.polls_for(std::time::Duration::from_secs(
            t.timeout_secs.unwrap_or(900),
        ));
        verification_runs += runs;
        verification_requests += runs * (2 + polls);
        verification_points += runs * (5 + 1 + polls);
    }
    let requests = writes + key_fetches + verification_requests;
    let points = key_fetches + 5 * writes + verification_points;
    let scale = f64::from(budget.time_scale.max(1));
    let mut bounds: Vec<(&'static str, f64)> = Vec::new();
    let rounds = requests.div_ceil(budget.max_concurrency.max(1) as u64);
    bounds.push(("concurrency", rounds as f64 * budget.latency.as_secs_f64()));
    if let Some(ppm) = budget.points_per_minute.filter(|p| *p > 0) {
        // A sliding minute: the first minute's points go at once, then a minute per budget.
        let minutes = points.div_ceil(ppm).saturating_sub(1);
        bounds.push(("points", minutes as f64 * 60.0 / scale));
    }
    if let Some((remaining, limit, to_reset)) = budget.primary {
        if requests > remaining && limit > 0 {
            let more_hours = (requests - remaining - 1) / limit;
            let secs = to_reset.max(0.0) + more_hours as f64 * 3600.0 / scale;
            bounds.push(("primary", secs));
        }
    }
    if !budget.min_write_gap.is_zero() && writes > 1 {
        bounds.push((
            "write_gap",
            (writes - 1) as f64 * budget.min_write_gap.as_secs_f64(),
        ));
    }
    let (bound_by, seconds) =
        bounds.into_iter().fold(
            ("concurrency", 0.0),
            |best, b| if b.1 > best.1 { b } else { best },
        );
    Estimate {
        writes,
        key_fetches,
        verification_runs,
        verification_requests,
        requests,
        points,
        seconds,
        bound_by,
        points_per_minute: budget.points_per_minute.filter(|p| *p > 0),
    }
}

/// `1h05m`, `4m00s`, `12s`, `0.4s`.
pub fn human_secs(secs: f64) -> String {
    if secs < 10.0 {
        return format!("{secs:.1}s");
    }
    let s = secs.round() as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

impl Estimate {
    /// One line for the text plan.
    pub fn describe(&self) -> String {
        let within = match self.points_per_minute {
            Some(p) => format!("within {p} points a minute"),
            None => "with no points budget".to_string(),
        };
        let runs = if self.verification_runs > 0 {
            format!(
                " and {} verification run(s) (at most {} request(s) to dispatch and poll them)",
                self.verification_runs, self.verification_requests
            )
        } else {
            String::new()
        };
        let plus = if self.verification_runs > 0 {
            ", plus the runs' own duration"
        } else {
            ""
        };
        format!(
            "Estimate: {} write(s) and {} key fetch(es){runs} = {} request(s), {} point(s); at least {} {within} (bound by {}){plus}.",
            self.writes,
            self.key_fetches,
            self.requests,
            self.points,
            human_secs(self.seconds),
            self.bound_by.replace('_', " "),
        )
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::model::SecretScope;
    use crate::plan::model::{PolicyPlan, SecretPlan, TargetPlan};
    use crate::plan::Action;
    use crate::policy::App;

    fn plan(repos: usize, secrets: usize) -> Plan {
        let targets = (0..repos)
            .map(|i| {
                let scope = SecretScope::Repo {
                    owner: "acme".into(),
                    repo: format!("svc-{i}"),
                    app: App::Actions,
                };
                TargetPlan {
                    target: scope.key().into(),
                    scope: scope.into(),
                    access: None,
                    problem: None,
                    secrets: (0..secrets)
                        .map(|s| SecretPlan {
                            name: format!("S{s}").into(),
                            field: "value".into(),
                            action: Action::Rotate,
                            reason: "".into(),
                        })
                        .collect(),
                }
            })
            .collect();
        Plan {
            generated_at: None,
            policies: vec![PolicyPlan {
                policy: "p".into(),
                owner: None,
                source: String::new(),
                rotate: None,
                version: Some(1),
                last_rotated_at: None,
                next_due: None,
                expires_at: None,
                vault_targets: Vec::new(),
                problem: None,
                targets,
                txn: None,
            }],
            estimate: None,
            warnings: Vec::new(),
        }
    }

    #[test]
    fn a_thousand_writes_are_bound_by_the_points_budget() {
        let e = estimate(&plan(1_000, 1), &LedgerState::default(), &Budget::default());
        assert_eq!(
            (e.writes, e.key_fetches, e.requests, e.points),
            (1_000, 1_000, 2_000, 6_000)
        );
        // 6,000 points at 900 a minute: the first 900 at once, then six more minutes.
        assert_eq!((e.bound_by, e.seconds), ("points", 360.0));
        assert!(e
            .describe()
            .contains("at least 6m00s within 900 points a minute"));
    }

    #[test]
    fn without_limits_concurrency_binds_and_a_spent_primary_budget_waits_for_resets() {
        let off = Budget {
            points_per_minute: None,
            latency: Duration::from_millis(50),
            ..Budget::default()
        };
        let e = estimate(&plan(1_000, 1), &LedgerState::default(), &off);
        assert_eq!(e.bound_by, "concurrency");
        assert!((e.seconds - 1.0).abs() < 1e-9, "{}", e.seconds);
        let spent = Budget {
            primary: Some((100, 5_000, 1_800.0)),
            ..off
        };
        let e = estimate(&plan(10_000, 1), &LedgerState::default(), &spent);
        // 20,000 requests: 100 now, 5,000 after the reset in 30 min, then 3 more hours.
        assert_eq!(e.bound_by, "primary");
        assert_eq!(e.seconds, 1_800.0 + 3.0 * 3_600.0);
    }
}
