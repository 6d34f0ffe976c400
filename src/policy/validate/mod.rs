//! Checks one raw policy and builds its validated `Policy`, reporting every problem found.
//!
//! A problem in one part (say the source) does not stop the checks of the others (secrets,
//! targets, schedule, verify, rollout), so a user sees everything wrong with a policy at once. What the
//! set-wide checks need (name, secret names, targets) is kept even when the policy as a
//! whole is invalid.

mod common;
mod rollout;
mod runner;
mod schedule;
mod secrets;
mod source;
mod targets;
mod verify;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use common::{pos, Sink};
use rollout::{check_recoverable, check_rollout};
use schedule::check_schedule;
use secrets::{check_from_keys, check_secrets, is_from_keys};
use source::check_source;
use targets::check_target;
use verify::check_verify;

use super::diag::Diagnostic;
use super::model::{Policy, TargetSpec};
use super::names;
use super::raw::RawPolicy;
use super::yaml::{Located, Pos};

/// One policy after its own checks, with what the set-wide checks need.
#[derive(Debug)]
pub struct Checked {
    pub file: PathBuf,
    /// The name as written (even if invalid), with its position.
    pub name: Option<(String, Pos)>,
    /// Secret names that passed their own checks, with positions.
    pub secrets: Vec<(String, Pos)>,
    /// For a whole-path sync: a glob (upper case) of the names it makes, with its position.
    pub patterns: Vec<(String, Pos)>,
    /// Targets that passed their own checks, with positions.
    pub targets: Vec<(TargetSpec, Pos)>,
    /// Where the policy and its `source` are written.
    pub at: Pos,
    pub source_at: Option<Pos>,
    /// The whole policy, when nothing in it was wrong.
    pub policy: Option<Policy>,
}

/// Check one policy of `file`; push every problem into `diags`.
pub fn check_policy(
    file: &Path,
    located: Located,
    rules: &crate::policy::sources::SourceRules,
    diags: &mut Vec<Diagnostic>,
) -> Checked {
    let mut s = Sink { file, diags, rules };
    let start = s.count();
    let at = located.at;
    let raw: RawPolicy = located.policy;

    match &raw.version {
        None => s.err(at, "E0005", "missing field \"version\": write version: 1"),
        Some(v) if v.value != 1 => s.err(
            pos(v),
            "E0101",
            format!("version {} is not supported: write version: 1", v.value),
        ),
        Some(_) => {}
    }

    let name = match &raw.name {
        None => {
            s.err(
                at,
                "E0005",
                "missing field \"name\": every policy needs a unique name of a-z, 0-9 and -",
            );
            None
        }
        Some(n) => {
            if let Err(m) = names::check_policy_name(&n.value) {
                s.err(pos(n), "E0102", m);
            }
            Some((n.value.clone(), pos(n)))
        }
    };

    // A runner token policy (even one whose source has a mistake) has no `secrets`.
    let runner_source = raw
        .source
        .as_ref()
        .is_some_and(|src| src.value.github_runner_token.is_some());
    let source_at = raw.source.as_ref().map(pos);
    let source = match raw.source {
        None => {
            s.err(
                at,
                "E0005",
                "missing field \"source\": set one of generate, vault_kv, vault_read",
            );
            None
        }
        Some(src) => check_source(&mut s, src),
    };

    let secrets_at = raw.secrets.as_ref().map(pos);
    let mut from_keys = None;
    let mut patterns: Vec<(String, Pos)> = Vec::new();
    let secrets = match raw.secrets {
        // A runner token goes to its vault_kv targets' key; `secrets` must be absent.
        None if runner_source => Vec::new(),
        Some(_) if runner_source => Vec::new(),
        None => {
            s.err(
                at,
                "E0005",
                "missing field \"secrets\": map GitHub secret names to source fields",
            );
            Vec::new()
        }
        Some(map) if is_from_keys(&map.value) => {
            if let Some((f, pattern, at)) = check_from_keys(&mut s, map, source.as_ref()) {
                from_keys = Some(f);
                patterns.push((pattern, at));
            }
            Vec::new()
        }
        Some(map) => check_secrets(&mut s, map, source.as_ref()),
    };

    let mut targets = Vec::new();
    // Whether every target passed its own checks (the checks of verify against them need all).
    let mut all_targets = false;
    match raw.targets {
        None => s.err(
            at,
            "E0005",
            "missing field \"targets\": list where the secrets go",
        ),
        Some(list) if list.value.is_empty() => s.err(
            pos(&list),
            "E0401",
            "target list is empty: list at least one repo or org",
        ),
        Some(list) => {
            let n = list.value.len();
            for t in list.value {
                let t_at = pos(&t);
                if let Some(spec) = check_target(&mut s, t) {
                    targets.push((spec, t_at));
                }
            }
            all_targets = targets.len() == n;
        }
    }

    let schedule_at = raw.schedule.as_ref().map(pos);
    let schedule = raw.schedule.and_then(|sch| check_schedule(&mut s, sch));
    runner::check_runner_policy(
        &mut s,
        at,
        source.as_ref(),
        secrets_at.filter(|_| runner_source),
        &targets,
        schedule.as_ref(),
        schedule_at,
    );

    if let (Some(source), Some(v)) = (&source, &raw.verify) {
        check_recoverable(&mut s, source, pos(v), raw.rollout.as_ref());
    }
    let specs: Vec<TargetSpec> = targets.iter().map(|(t, _)| t.clone()).collect();
    let verify = raw
        .verify
        .and_then(|v| check_verify(&mut s, v, all_targets.then_some(specs.as_slice())));
    let rollout = raw.rollout.and_then(|r| check_rollout(&mut s, r));

    let policy = if s.count() == start {
        // Nothing was reported, so every part is present and valid.
        match (&name, source) {
            (Some((n, _)), Some(source)) => Some(Policy {
                name: n.clone(),
                description: raw.description.map(|d| d.value),
                owner: raw.owner.map(|o| o.value),
                source,
                secrets: secrets
                    .iter()
                    .map(|(n, f, _)| (n.clone(), f.clone()))
                    .collect(),
                targets: specs,
                schedule,
                verify,
                rollout,
                takeover: raw.takeover.is_some_and(|t| t.value),
                from_keys,
                file: file.to_path_buf(),
            }),
            _ => None,
        }
    } else {
        None
    };

    Checked {
        file: file.to_path_buf(),
        name,
        secrets: secrets.iter().map(|(n, _, p)| (n.clone(), *p)).collect(),
        patterns,
        targets,
        at,
        source_at,
        policy,
    }
}
