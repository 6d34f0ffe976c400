//! The `verify` section: the workflow dispatched to prove a new value works (file or id, ref,
//! inputs, timeout), and which repositories run it; checked against the policy's targets.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_saphyr::Spanned;

use super::common::{check_repo_globs, pos, Sink};
use crate::policy::duration::parse_duration;
use crate::policy::model::{App, TargetSpec, Verify, WorkflowRef};
use crate::policy::names;
use crate::policy::raw::{PlainKind, RawValue, RawVerify};
use crate::policy::yaml::Pos;

/// GitHub accepts at most this many `workflow_dispatch` inputs.
pub(super) const MAX_INPUTS: usize = 25;
/// A run's timeout when `timeout` is not written.
pub(super) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// Shorter than this, a run would rarely get queued, start and conclude in time.
const MIN_TIMEOUT: Duration = Duration::from_secs(30);
/// A GitHub Actions job runs at most 6 hours; a run cannot take longer.
const MAX_TIMEOUT: Duration = Duration::from_secs(6 * 3600);

/// Check `verify`. `targets` is the policy's targets when every one of them passed its own
/// checks (`None` otherwise: the checks against the targets would guess).
pub(super) fn check_verify(
    s: &mut Sink,
    v: Spanned<RawVerify>,
    targets: Option<&[TargetSpec]>,
) -> Option<Verify> {
    let at = pos(&v);
    let start = s.count();
    let RawVerify {
        workflow,
        git_ref,
        inputs,
        timeout,
        repos,
    } = v.value;

    let workflow = match workflow {
        None => {
            s.err(
                at,
                "E0005",
                "missing field \"workflow\" in verify: the workflow to dispatch, a file name such as verify-secrets.yml or a numeric id",
            );
            None
        }
        Some(w) => check_workflow(s, &w),
    };

    if let Some(r) = &git_ref {
        if let Err(m) = names::check_git_ref(&r.value) {
            s.err(pos(r), "E0602", m);
        }
    }

    let inputs = inputs.map(|i| check_inputs(s, i)).unwrap_or_default();

    let timeout = match &timeout {
        None => Some(DEFAULT_TIMEOUT),
        Some(t) => match parse_duration(&t.value) {
            Err(m) => {
                s.err(pos(t), "E0503", m);
                None
            }
            Ok(d) if d < MIN_TIMEOUT => {
                s.err(
                    pos(t),
                    "E0604",
                    format!("timeout {} is too short: at least 30s, for a run to be queued, start and conclude", t.value),
                );
                None
            }
            Ok(d) if d > MAX_TIMEOUT => {
                s.err(
                    pos(t),
                    "E0604",
                    format!("timeout {} is too long: a GitHub Actions job runs at most 6h, so write at most 6h", t.value),
                );
                None
            }
            Ok(d) => Some(d),
        },
    };

    let repos_missing = repos.is_none();
    let repos = match &repos {
        None => Vec::new(),
        Some(r) if r.value.is_empty() => {
            s.err(
                pos(r),
                "E0605",
                "verify.repos is empty: list the repositories that run the workflow, or omit repos to run it in every repository a repository target writes to",
            );
            Vec::new()
        }
        Some(r) => {
            let globs = r.value.iter().map(|g| (g.value.as_str(), pos(g)));
            check_repo_globs(s, globs);
            r.value.iter().map(|g| g.value.clone()).collect()
        }
    };

    if let Some(targets) = targets {
        check_against_targets(s, at, repos_missing, targets);
    }

    if s.count() > start {
        return None;
    }
    Some(Verify {
        workflow: workflow?,
        git_ref: git_ref.map(|r| r.value),
        inputs,
        timeout: timeout?,
        repos,
    })
}

/// A file name in `.github/workflows/` (`*.yml` / `*.yaml`, no `/`) or a positive id.
fn check_workflow(s: &mut Sink, w: &Spanned<RawValue>) -> Option<WorkflowRef> {
    const FORMS: &str =
        "write the file name in .github/workflows/ (e.g. verify-secrets.yml) or the workflow's numeric id";
    let at = pos(w);
    let text = match &w.value {
        RawValue::Plain {
            kind: PlainKind::Int(n),
            ..
        } => {
            return match u64::try_from(*n) {
                Ok(id) if id > 0 => Some(WorkflowRef::Id(id)),
                _ => {
                    s.err(
                        at,
                        "E0601",
                        format!("workflow id {n} is not a positive number: {FORMS}"),
                    );
                    None
                }
            };
        }
        RawValue::Str(text) => text,
        other => {
            s.err(
                at,
                "E0601",
                format!("workflow is {}: {FORMS}", other.kind()),
            );
            return None;
        }
    };
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return match text.parse::<u64>() {
            Ok(id) if id > 0 => Some(WorkflowRef::Id(id)),
            _ => {
                s.err(
                    at,
                    "E0601",
                    format!("workflow id \"{text}\" is not a positive number: {FORMS}"),
                );
                None
            }
        };
    }
    let shown = text.escape_debug();
    let problem = if text.is_empty() {
        Some("workflow is empty".to_string())
    } else if text.contains('/') {
        Some(format!(
            "workflow \"{shown}\" holds /: GitHub takes the file name alone, without its folder"
        ))
    } else if text.chars().any(char::is_control) {
        Some(format!("workflow \"{shown}\" holds control characters"))
    } else {
        let stem = text
            .strip_suffix(".yml")
            .or_else(|| text.strip_suffix(".yaml"));
        match stem {
            Some(stem) if !stem.is_empty() => None,
            _ => Some(format!(
                "workflow \"{shown}\" is not a workflow file name ending in .yml or .yaml"
            )),
        }
    };
    match problem {
        Some(p) => {
            s.err(at, "E0601", format!("{p}; {FORMS}"));
            None
        }
        None => Some(WorkflowRef::File(text.clone())),
    }
}

/// A mapping of at most 25 input names to strings, numbers or booleans (kept as written).
fn check_inputs(s: &mut Sink, i: Spanned<RawValue>) -> BTreeMap<String, String> {
    let at = pos(&i);
    let entries = match i.value {
        RawValue::Map(entries) => entries,
        RawValue::Null => return BTreeMap::new(),
        other => {
            s.err(
                at,
                "E0603",
                format!(
                    "inputs is {}: write a mapping of input names to values, e.g. {{ reason: rotation }}",
                    other.kind()
                ),
            );
            return BTreeMap::new();
        }
    };
    if entries.len() > MAX_INPUTS {
        s.err(
            at,
            "E0603",
            format!(
                "inputs has {} entries: a workflow_dispatch takes at most {MAX_INPUTS} inputs",
                entries.len()
            ),
        );
    }
    let mut out = BTreeMap::new();
    for (name, value) in entries {
        let mut ok = true;
        if let Err(m) = names::check_input_name(&name.value) {
            s.err(pos(&name), "E0603", m);
            ok = false;
        }
        let text = match value.value.scalar_text() {
            Some(t) => Some(t.to_string()),
            None => {
                let hint = if matches!(value.value, RawValue::Null) {
                    "write \"\" for an empty string"
                } else {
                    "nested values are not allowed"
                };
                s.err(
                    pos(&value),
                    "E0603",
                    format!(
                        "input \"{}\" is {}, but an input is a string, number or boolean ({hint})",
                        name.value.escape_debug(),
                        value.value.kind()
                    ),
                );
                None
            }
        };
        if let (true, Some(text)) = (ok, text) {
            out.insert(name.value, text);
        }
    }
    out
}

/// What `verify` needs of the targets: a workflow run reads only Actions secrets, and an
/// organization secret is read by the repositories that use it, which `repos` must name.
fn check_against_targets(s: &mut Sink, at: Pos, repos_missing: bool, targets: &[TargetSpec]) {
    let actions = |t: &&TargetSpec| {
        let app = match t {
            TargetSpec::Repo { app, .. }
            | TargetSpec::OrgRepos { app, .. }
            | TargetSpec::OrgSecret { app, .. } => *app,
            TargetSpec::VaultKv(_) => return false,
        };
        app == App::Actions
    };
    if !targets.is_empty() && !targets.iter().any(|t| actions(&t)) {
        s.err(
            at,
            "E0606",
            "verify runs a workflow, which reads only Actions secrets, and no target of this policy is one (Dependabot secrets are read by Dependabot, Codespaces secrets by codespaces): remove verify, or add a target with app: actions",
        );
        return;
    }
    let org_secret = targets.iter().filter(actions).find_map(|t| match t {
        TargetSpec::OrgSecret { org, .. } => Some(org),
        _ => None,
    });
    if let (true, Some(org)) = (repos_missing, org_secret) {
        s.err(
            at,
            "E0605",
            format!("verify needs repos: the organization secret of {org} is read by the repositories that use it; list the ones that run the workflow, e.g. repos: [\"payments-*\"]"),
        );
    }
}
