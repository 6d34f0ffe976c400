//! Set-wide checks: policy names are unique, and no two writes put the same secret name on
//! the same target (E0407).
//!
//! Overlap is decided from the policies alone, with no listing of repositories: two targets
//! overlap when they are the same repository (or environment), the same organization secret
//! (same org and app, whatever its visibility), or the same organization selection written
//! identically; and a `repo:` target overlaps an org target of the same owner whose globs
//! select its name. Topic and visibility filters are not consulted (they depend on the
//! repository), so such an overlap is reported even when a filter might leave it out: an
//! explicit `!name` exclude settles it.

use std::collections::BTreeMap;
use std::path::Path;

use super::diag::Diagnostic;
use super::glob::NameMatcher;
use super::model::{App, TargetSpec};
use super::validate::Checked;
use super::yaml::Pos;

/// Run the set-wide checks over `checked` (in file order, then position order).
pub fn check_set(checked: &[Checked], diags: &mut Vec<Diagnostic>) {
    check_names(checked, diags);
    check_overlaps(checked, diags);
}

fn check_names(checked: &[Checked], diags: &mut Vec<Diagnostic>) {
    let mut first: BTreeMap<&str, (&Path, Pos)> = BTreeMap::new();
    for c in checked {
        let Some((name, at)) = &c.name else { continue };
        match first.get(name.as_str()) {
            Some((file, p)) => diags.push(Diagnostic::at(
                &c.file,
                at.line,
                at.col,
                "E0103",
                format!(
                    "policy name \"{name}\" is already used at {}:{}:{}",
                    file.display(),
                    p.line,
                    p.col
                ),
            )),
            None => {
                first.insert(name, (&c.file, *at));
            }
        }
    }
}

/// One secret name written to one target by one policy.
struct Write<'a> {
    secret: &'a str,
    /// `secret` is a glob of the names a whole-path sync makes.
    pattern: bool,
    target: &'a TargetSpec,
    policy: &'a str,
    file: &'a Path,
    at: Pos,
}

fn check_overlaps(checked: &[Checked], diags: &mut Vec<Diagnostic>) {
    let mut writes: Vec<Write> = Vec::new();
    for c in checked {
        let policy = c
            .name
            .as_ref()
            .map(|(n, _)| n.as_str())
            .unwrap_or("(unnamed)");
        for (target, at) in &c.targets {
            let names = c.secrets.iter().map(|(n, _)| (n, false));
            let patterns = c.patterns.iter().map(|(p, _)| (p, true));
            for (secret, pattern) in names.chain(patterns) {
                writes.push(Write {
                    secret,
                    pattern,
                    target,
                    policy,
                    file: &c.file,
                    at: *at,
                });
            }
        }
    }
    for (i, later) in writes.iter().enumerate() {
        let earlier = writes[..i]
            .iter()
            .filter(|w| names_meet(w, later))
            .find_map(|w| overlap(w.target, later.target).map(|how| (w, how)));
        let Some((first, how)) = earlier else {
            continue;
        };
        let there = format!(
            "policy \"{}\" writes it at {}:{}:{}",
            first.policy,
            first.file.display(),
            first.at.line,
            first.at.col
        );
        let later_secret = if later.pattern || first.pattern {
            let (p, other) = if later.pattern {
                (later, first)
            } else {
                (first, later)
            };
            if other.pattern {
                format!("\"{}\" (names made by from_keys in both)", p.secret)
            } else {
                format!(
                    "\"{}\" (which from_keys may make as {})",
                    other.secret, p.secret
                )
            }
        } else {
            format!("\"{}\"", later.secret)
        };
        let message = match how {
            How::Same => format!("secret {} is written twice to {}: {there}", later_secret, describe(later.target)),
            How::Selected { repo } => format!(
                "secret {} is written twice to repository {}: {there}, and the org target's repos select it \
                 (exclude it there with \"!{}\", or drop one)",
                later_secret,
                repo,
                repo.rsplit('/').next().unwrap_or(&repo),
            ),
        };
        diags.push(Diagnostic::at(
            later.file,
            later.at.line,
            later.at.col,
            "E0407",
            message,
        ));
    }
}

/// Whether two writes may put the same name: equal names (ignoring case, as GitHub), a
/// name a whole-path sync's glob matches, or two such globs written alike.
fn names_meet(a: &Write, b: &Write) -> bool {
    use crate::model::template::pattern_matches;
    match (a.pattern, b.pattern) {
        (false, false) | (true, true) => a.secret.eq_ignore_ascii_case(b.secret),
        (true, false) => pattern_matches(a.secret, b.secret),
        (false, true) => pattern_matches(b.secret, a.secret),
    }
}

enum How {
    /// The same target.
    Same,
    /// A repo target that an org target's globs select (`owner/name`).
    Selected { repo: String },
}

fn eq_opt(a: &Option<String>, b: &Option<String>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
        _ => false,
    }
}

fn overlap(a: &TargetSpec, b: &TargetSpec) -> Option<How> {
    use TargetSpec::*;
    match (a, b) {
        (
            Repo {
                owner: o1,
                repo: r1,
                environment: e1,
                app: a1,
            },
            Repo {
                owner: o2,
                repo: r2,
                environment: e2,
                app: a2,
            },
        ) => (o1.eq_ignore_ascii_case(o2)
            && r1.eq_ignore_ascii_case(r2)
            && eq_opt(e1, e2)
            && a1 == a2)
            .then_some(How::Same),
        (
            OrgRepos {
                org: o1,
                selector: s1,
                environment: e1,
                app: a1,
            },
            OrgRepos {
                org: o2,
                selector: s2,
                environment: e2,
                app: a2,
            },
        ) => (o1.eq_ignore_ascii_case(o2) && s1 == s2 && eq_opt(e1, e2) && a1 == a2)
            .then_some(How::Same),
        (
            OrgSecret {
                org: o1, app: a1, ..
            },
            OrgSecret {
                org: o2, app: a2, ..
            },
        ) => (o1.eq_ignore_ascii_case(o2) && a1 == a2).then_some(How::Same),
        (
            Repo {
                owner,
                repo,
                environment: e1,
                app: a1,
            },
            OrgRepos {
                org,
                selector,
                environment: e2,
                app: a2,
            },
        )
        | (
            OrgRepos {
                org,
                selector,
                environment: e2,
                app: a2,
            },
            Repo {
                owner,
                repo,
                environment: e1,
                app: a1,
            },
        ) => {
            let selected = owner.eq_ignore_ascii_case(org)
                && eq_opt(e1, e2)
                && a1 == a2
                && NameMatcher::new(selector).is_ok_and(|m| m.matches(repo));
            selected.then(|| How::Selected {
                repo: format!("{owner}/{repo}"),
            })
        }
        _ => None,
    }
}

fn app_suffix(app: App) -> String {
    match app {
        App::Actions => String::new(),
        other => format!(" ({})", other.as_str()),
    }
}

/// A short description of a target for messages.
fn describe(t: &TargetSpec) -> String {
    match t {
        TargetSpec::Repo {
            owner,
            repo,
            environment,
            app,
        } => match environment {
            Some(env) => format!(
                "environment {env} of repository {owner}/{repo}{}",
                app_suffix(*app)
            ),
            None => format!("repository {owner}/{repo}{}", app_suffix(*app)),
        },
        TargetSpec::OrgRepos {
            org,
            selector,
            environment,
            app,
        } => {
            let mut globs: Vec<String> = selector.include.clone();
            globs.extend(selector.exclude.iter().map(|g| format!("!{g}")));
            let repos = if globs.is_empty() {
                format!("every repository of {org}")
            } else {
                format!("the repositories of {org} matching {}", globs.join(", "))
            };
            match environment {
                Some(env) => format!("environment {env} in {repos}{}", app_suffix(*app)),
                None => format!("{repos}{}", app_suffix(*app)),
            }
        }
        TargetSpec::OrgSecret { org, app, .. } => {
            format!("the organization secrets of {org}{}", app_suffix(*app))
        }
        TargetSpec::VaultKv(kv) => format!("vault kv {}/{}", kv.mount, kv.path),
    }
}
