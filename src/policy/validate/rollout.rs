//! The `rollout` section: which targets get a new value first (`canary`), what a failed
//! verification does (`on_failure`), and whether a rollback could work for the source.

use serde_saphyr::Spanned;

use super::common::{check_repo_globs, pos, Sink};
use crate::policy::model::{Canary, OnFailure, Rollout, SourceSpec};
use crate::policy::raw::{PlainKind, RawRollout, RawValue};
use crate::policy::yaml::Pos;

const CANARY_FORMS: &str =
    "write a count (canary: 3), a percentage (canary: 5%) or a list of repository globs (canary: [\"payments-api\"])";

pub(super) fn check_rollout(s: &mut Sink, r: Spanned<RawRollout>) -> Option<Rollout> {
    let at = pos(&r);
    let start = s.count();
    let RawRollout { canary, on_failure } = r.value;
    let canary = match canary {
        None => {
            s.err(
                at,
                "E0005",
                format!("missing field \"canary\" in rollout: the targets that get a new value first; {CANARY_FORMS}; canary: 100% verifies every target in one wave"),
            );
            None
        }
        Some(c) => check_canary(s, &c),
    };
    let on_failure = match &on_failure {
        None => Some(OnFailure::default()),
        Some(o) => parse_on_failure(&o.value).or_else(|| {
            s.err(
                pos(o),
                "E0007",
                format!("on_failure \"{}\" is not one of rollback, halt", o.value),
            );
            None
        }),
    };
    if s.count() > start {
        return None;
    }
    Some(Rollout {
        canary: canary?,
        on_failure: on_failure?,
    })
}

fn parse_on_failure(word: &str) -> Option<OnFailure> {
    match word {
        "rollback" => Some(OnFailure::Rollback),
        "halt" => Some(OnFailure::Halt),
        _ => None,
    }
}

/// A count of at least 1, a percentage 1%..100% (`5%` parses as a string), or a non-empty
/// list of repository globs (a leading `!` excludes).
fn check_canary(s: &mut Sink, c: &Spanned<RawValue>) -> Option<Canary> {
    let at = pos(c);
    let refuse = |s: &mut Sink, what: String| -> Option<Canary> {
        s.err(at, "E0701", format!("{what}: {CANARY_FORMS}"));
        None
    };
    match &c.value {
        RawValue::Plain {
            kind: PlainKind::Int(n),
            ..
        } => match usize::try_from(*n) {
            Ok(n) if n >= 1 => Some(Canary::Count(n)),
            _ => refuse(s, format!("canary {n} is not a count of at least 1")),
        },
        RawValue::Str(text) => {
            if let Some(digits) = text.strip_suffix('%') {
                let share = (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
                    .then(|| digits.parse::<u8>().ok())
                    .flatten()
                    .filter(|p| (1..=100).contains(p));
                match share {
                    Some(p) => Some(Canary::Percent(p)),
                    None => refuse(
                        s,
                        format!(
                            "canary \"{}\" is not a percentage from 1% to 100%",
                            text.escape_debug()
                        ),
                    ),
                }
            } else if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
                match text.parse::<usize>() {
                    Ok(n) if n >= 1 => Some(Canary::Count(n)),
                    _ => refuse(s, format!("canary \"{text}\" is not a count of at least 1")),
                }
            } else {
                refuse(
                    s,
                    format!(
                        "canary \"{}\" is neither a count nor a percentage",
                        text.escape_debug()
                    ),
                )
            }
        }
        RawValue::List(items) if items.is_empty() => refuse(
            s,
            "canary is an empty list, which selects no repository".to_string(),
        ),
        RawValue::List(items) => {
            let start = s.count();
            let mut globs = Vec::new();
            for item in items {
                match item.value.scalar_text() {
                    Some(g) => globs.push((g, pos(item))),
                    None => s.err(
                        pos(item),
                        "E0701",
                        format!(
                            "canary glob is {}: list repository names or patterns such as payments-*",
                            item.value.kind()
                        ),
                    ),
                }
            }
            let written: Vec<String> = globs.iter().map(|(g, _)| g.to_string()).collect();
            check_repo_globs(s, globs);
            (s.count() == start).then_some(Canary::Repos(written))
        }
        other => refuse(s, format!("canary is {}", other.kind())),
    }
}

/// With `verify`, a failed verification rolls back unless `on_failure: halt`: that needs the
/// previous value, which a stored source keeps (KV v2 versions). `generate` without `store`
/// keeps it nowhere (GitHub never returns a value); `vault_read`'s previous credential is
/// still valid (its lease is revoked only after a successful rotation) but rotor never holds
/// its value, so it cannot push it back either. Such a policy must say `on_failure: halt`.
pub(super) fn check_recoverable(
    s: &mut Sink,
    source: &SourceSpec,
    verify_at: Pos,
    rollout: Option<&Spanned<RawRollout>>,
) {
    if source.is_stored() {
        return;
    }
    let written = rollout.and_then(|r| r.value.on_failure.as_ref());
    let (at, rollback) = match (written, rollout) {
        (Some(o), _) => match parse_on_failure(&o.value) {
            Some(OnFailure::Rollback) => (pos(o), "on_failure: rollback"),
            // halt, or a word check_rollout refuses.
            _ => return,
        },
        (None, Some(r)) => (pos(r), "on_failure defaults to rollback, which"),
        (None, None) => (
            verify_at,
            "a failed verification rolls back by default, which",
        ),
    };
    let (why, fix) = match source {
        SourceSpec::VaultRead { .. } => (
            "vault_read's previous credential stays valid (its lease is revoked only after a successful rotation), but rotor never keeps its value, so it cannot push it back",
            "set rollout.on_failure: halt",
        ),
        _ => (
            "generate without store keeps the previous value nowhere (GitHub never returns a secret), so it cannot be pushed back",
            "set rollout.on_failure: halt, or add store to generate",
        ),
    };
    s.err(
        at,
        "E0702",
        format!("{rollback} cannot restore the previous value: {why}; {fix}"),
    );
}
