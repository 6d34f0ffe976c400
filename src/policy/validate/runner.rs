//! What a `github_runner_token` policy must be: its targets are `vault_kv` paths (and only
//! such a policy may have them), it has no `secrets` map, and its schedule turns the token
//! over before the hour GitHub gives it runs out.

use std::time::Duration;

use super::common::Sink;
use crate::policy::model::{Cadence, Schedule, SourceSpec, TargetSpec};
use crate::policy::yaml::Pos;

/// How long GitHub's runner registration tokens live.
pub const RUNNER_TOKEN_LIFE: Duration = Duration::from_secs(3600);

pub(super) fn check_runner_policy(
    s: &mut Sink,
    at: Pos,
    source: Option<&SourceSpec>,
    secrets_at: Option<Pos>,
    targets: &[(TargetSpec, Pos)],
    schedule: Option<&Schedule>,
    schedule_at: Option<Pos>,
) {
    let runner = matches!(source, Some(SourceSpec::GithubRunnerToken { .. }));
    for (t, p) in targets {
        let kv = matches!(t, TargetSpec::VaultKv(_));
        if runner && !kv {
            s.err(
                *p,
                "E0208",
                "a github_runner_token goes to vault_kv targets only (mount, path, key): runners read it from Vault",
            );
        } else if !runner && kv && source.is_some() {
            s.err(
                *p,
                "E0208",
                "vault_kv targets take a github_runner_token source; other values go to GitHub targets",
            );
        }
    }
    if !runner {
        return;
    }
    if let Some(p) = secrets_at {
        s.err(
            p,
            "E0208",
            "secrets does not apply to github_runner_token: the token goes to the vault_kv targets' key",
        );
    }
    let Some(schedule) = schedule else {
        s.err(
            at,
            "E0506",
            "a github_runner_token needs a schedule shorter than the token's hour, e.g. every: 50m",
        );
        return;
    };
    let p = schedule_at.unwrap_or(at);
    let period = match &schedule.cadence {
        Some(Cadence::Every(d)) => Some(*d),
        Some(Cadence::Cron(expr)) => cron_gap(expr),
        None => None,
    };
    let too_long = |d: Duration| d >= RUNNER_TOKEN_LIFE;
    match (period, schedule.max_age) {
        (Some(d), _) if too_long(d) => s.err(
            p,
            "E0506",
            format!(
                "the cadence ({}s) is not shorter than a runner token's life (3600s): the token would expire before it is replaced",
                d.as_secs()
            ),
        ),
        (None, None) => s.err(
            p,
            "E0506",
            "a github_runner_token needs every (or max_age) shorter than an hour",
        ),
        (_, Some(m)) if too_long(m) => s.err(
            p,
            "E0506",
            "max_age is not shorter than a runner token's life (3600s)",
        ),
        _ => {}
    }
}

/// The longest gap between a cron expression's next few slots (from now), when it parses.
fn cron_gap(expr: &str) -> Option<Duration> {
    let cron = crate::policy::cron::parse_cron(expr).ok()?;
    let mut t = chrono::Utc::now();
    let mut longest = Duration::ZERO;
    for _ in 0..48 {
        let next = cron.find_next_occurrence(&t, false).ok()?;
        longest = longest.max((next - t).to_std().unwrap_or_default());
        t = next;
    }
    Some(longest)
}
