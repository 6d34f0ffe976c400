//! Checks one raw policy and builds its validated `Policy`, reporting every problem found.
//!
//! A problem in one part (say the source) does not stop the checks of the others (secrets,
//! targets, schedule), so a user sees everything wrong with a policy at once. What the
//! set-wide checks need (name, secret names, targets) is kept even when the policy as a
//! whole is invalid.

mod common;
mod secrets;
mod source;

use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde_saphyr::Spanned;

use common::{pos, Sink};
use secrets::check_secrets;
use source::check_source;

use super::cron::parse_cron;
use super::diag::Diagnostic;
use super::duration::parse_duration;
use super::glob::compile_glob;
use super::model::{
    App, Cadence, Policy, RepoSelector, RepoVisibility, Schedule, TargetSpec, Visibility,
};
use super::names;
use super::raw::{RawPolicy, RawSchedule, RawTarget};
use super::yaml::{Located, Pos};

/// One policy after its own checks, with what the set-wide checks need.
#[derive(Debug)]
pub struct Checked {
    pub file: PathBuf,
    /// The name as written (even if invalid), with its position.
    pub name: Option<(String, Pos)>,
    /// Secret names that passed their own checks, with positions.
    pub secrets: Vec<(String, Pos)>,
    /// Targets that passed their own checks, with positions.
    pub targets: Vec<(TargetSpec, Pos)>,
    /// The whole policy, when nothing in it was wrong.
    pub policy: Option<Policy>,
}

/// Check one policy of `file`; push every problem into `diags`.
pub fn check_policy(file: &Path, located: Located, diags: &mut Vec<Diagnostic>) -> Checked {
    let mut s = Sink { file, diags };
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

    let secrets = match raw.secrets {
        None => {
            s.err(
                at,
                "E0005",
                "missing field \"secrets\": map GitHub secret names to source fields",
            );
            Vec::new()
        }
        Some(map) => check_secrets(&mut s, map, source.as_ref()),
    };

    let mut targets = Vec::new();
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
            for t in list.value {
                let t_at = pos(&t);
                if let Some(spec) = check_target(&mut s, t) {
                    targets.push((spec, t_at));
                }
            }
        }
    }

    let schedule = raw.schedule.and_then(|sch| check_schedule(&mut s, sch));

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
                targets: targets.iter().map(|(t, _)| t.clone()).collect(),
                schedule,
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
        targets,
        policy,
    }
}

/// Target fields in the order a message lists them, with whether they are set.
fn selection_fields(t: &RawTarget) -> Vec<(&'static str, Option<Pos>)> {
    vec![
        ("repos", t.repos.as_ref().map(pos)),
        ("topics", t.topics.as_ref().map(pos)),
        ("repo_visibility", t.repo_visibility.as_ref().map(pos)),
        ("include_archived", t.include_archived.as_ref().map(pos)),
        ("include_disabled", t.include_disabled.as_ref().map(pos)),
    ]
}

fn check_target(s: &mut Sink, t: Spanned<RawTarget>) -> Option<TargetSpec> {
    let at = pos(&t);
    let start = s.count();
    let t = t.value;

    let app = match &t.app {
        None => Some(App::Actions),
        Some(a) => match a.value.as_str() {
            "actions" => Some(App::Actions),
            "dependabot" => Some(App::Dependabot),
            "codespaces" => Some(App::Codespaces),
            other => {
                s.err(
                    pos(a),
                    "E0007",
                    format!("app \"{other}\" is not one of actions, dependabot, codespaces"),
                );
                None
            }
        },
    };
    let org_scope = match &t.scope {
        None => false,
        Some(sc) => match sc.value.as_str() {
            "repository" => false,
            "organization" => true,
            other => {
                s.err(
                    pos(sc),
                    "E0007",
                    format!("scope \"{other}\" is not one of repository, organization"),
                );
                false
            }
        },
    };
    let environment =
        t.environment
            .as_ref()
            .and_then(|e| match names::check_environment(&e.value) {
                Ok(()) => Some(e.value.clone()),
                Err(m) => {
                    s.err(pos(e), "E0410", m);
                    None
                }
            });
    if let (Some(e), Some(app)) = (&t.environment, app) {
        if app != App::Actions && !(org_scope && t.org.is_some()) {
            s.err(
                pos(e),
                "E0406",
                format!("environment is not allowed with app: {}: environment secrets exist only for actions", app.as_str()),
            );
        }
    }

    let spec = match (&t.repo, &t.org) {
        (None, None) => {
            s.err(
                at,
                "E0402",
                "target names neither repo nor org: set one of them",
            );
            None
        }
        (Some(_), Some(o)) => {
            s.err(
                pos(o),
                "E0402",
                "target names both repo and org: set only one of them",
            );
            None
        }
        (Some(r), None) => {
            let parsed = match names::check_repo(&r.value) {
                Ok((owner, name)) => Some((owner.to_string(), name.to_string())),
                Err(m) => {
                    s.err(pos(r), "E0403", m);
                    None
                }
            };
            if let (true, Some(sc)) = (org_scope, &t.scope) {
                s.err(
                    pos(sc),
                    "E0406",
                    "scope: organization needs org: a repo target holds repository secrets",
                );
            }
            for (field, set) in selection_fields(&t) {
                if let Some(p) = set {
                    s.err(p, "E0406", format!("{field} is not allowed on a repo target: it selects repositories of an org"));
                }
            }
            if let Some(v) = &t.visibility {
                s.err(
                    pos(v),
                    "E0406",
                    "visibility is not allowed on a repo target: it applies to scope: organization",
                );
            }
            parsed.map(|(owner, repo)| TargetSpec::Repo {
                owner,
                repo,
                environment,
                app: app.unwrap_or_default(),
            })
        }
        (None, Some(o)) => {
            if let Err(m) = names::check_org(&o.value) {
                s.err(pos(o), "E0409", m);
            }
            if org_scope {
                check_org_secret(s, at, &t, o.value.clone(), app.unwrap_or_default())
            } else {
                if let Some(v) = &t.visibility {
                    s.err(
                        pos(v),
                        "E0406",
                        "visibility is only allowed with scope: organization: repository secrets have none",
                    );
                }
                if let Some(r) = &t.repos {
                    if r.value.is_empty() {
                        s.err(
                            pos(r),
                            "E0408",
                            "repos is empty: omit repos to select every repository of the org",
                        );
                    }
                }
                check_selector(s, &t).map(|selector| TargetSpec::OrgRepos {
                    org: o.value.clone(),
                    selector,
                    environment,
                    app: app.unwrap_or_default(),
                })
            }
        }
    };
    if s.count() > start {
        None
    } else {
        spec
    }
}

fn check_org_secret(
    s: &mut Sink,
    at: Pos,
    t: &RawTarget,
    org: String,
    app: App,
) -> Option<TargetSpec> {
    if let Some(e) = &t.environment {
        s.err(
            pos(e),
            "E0406",
            "environment is not allowed with scope: organization: an org secret has no environment",
        );
    }
    let visibility = match &t.visibility {
        None => {
            s.err(
                at,
                "E0005",
                "missing field \"visibility\": an organization secret needs visibility all, private or selected",
            );
            return None;
        }
        Some(v) => match v.value.as_str() {
            "all" => Visibility::All,
            "private" => Visibility::Private,
            "selected" => Visibility::Selected,
            other => {
                s.err(
                    pos(v),
                    "E0007",
                    format!("visibility \"{other}\" is not one of all, private, selected"),
                );
                return None;
            }
        },
    };
    if visibility == Visibility::Selected {
        let v_at = t.visibility.as_ref().map(pos).unwrap_or(at);
        match &t.repos {
            None => s.err(
                v_at,
                "E0405",
                "visibility: selected needs repos: the repositories that may use the secret",
            ),
            Some(r) if r.value.is_empty() => s.err(
                pos(r),
                "E0405",
                "visibility: selected needs repos, and this list is empty",
            ),
            Some(_) => {}
        }
        let selector = check_selector(s, t)?;
        Some(TargetSpec::OrgSecret {
            org,
            visibility,
            selector: Some(selector),
            app,
        })
    } else {
        for (field, set) in selection_fields(t) {
            if let Some(p) = set {
                s.err(
                    p,
                    "E0406",
                    format!("{field} is only allowed with visibility: selected (this secret is visible to {} repositories)", visibility.as_str()),
                );
            }
        }
        Some(TargetSpec::OrgSecret {
            org,
            visibility,
            selector: None,
            app,
        })
    }
}

fn check_selector(s: &mut Sink, t: &RawTarget) -> Option<RepoSelector> {
    let start = s.count();
    let mut sel = RepoSelector::default();
    if let Some(repos) = &t.repos {
        for g in &repos.value {
            let (negated, pattern) = match g.value.strip_prefix('!') {
                Some(rest) => (true, rest),
                None => (false, g.value.as_str()),
            };
            match compile_glob(pattern) {
                Err(m) => s.err(pos(g), "E0404", m),
                Ok(_) if negated => sel.exclude.push(pattern.to_string()),
                Ok(_) => sel.include.push(pattern.to_string()),
            }
        }
    }
    if let Some(topics) = &t.topics {
        for topic in &topics.value {
            match names::check_topic(&topic.value) {
                Err(m) => s.err(pos(topic), "E0411", m),
                Ok(()) => sel.topics.push(topic.value.clone()),
            }
        }
    }
    if let Some(vis) = &t.repo_visibility {
        for v in &vis.value {
            match v.value.as_str() {
                "public" => sel.visibility.push(RepoVisibility::Public),
                "private" => sel.visibility.push(RepoVisibility::Private),
                "internal" => sel.visibility.push(RepoVisibility::Internal),
                other => s.err(
                    pos(v),
                    "E0007",
                    format!("repo_visibility \"{other}\" is not one of public, private, internal"),
                ),
            }
        }
    }
    sel.include_archived = t.include_archived.as_ref().is_some_and(|b| b.value);
    sel.include_disabled = t.include_disabled.as_ref().is_some_and(|b| b.value);
    if s.count() > start {
        None
    } else {
        Some(sel)
    }
}

fn check_schedule(s: &mut Sink, sch: Spanned<RawSchedule>) -> Option<Schedule> {
    let at = pos(&sch);
    let start = s.count();
    let RawSchedule {
        cron,
        every,
        timezone,
        jitter,
        max_age,
    } = sch.value;
    if let (Some(_), Some(e)) = (&cron, &every) {
        s.err(
            pos(e),
            "E0502",
            "both cron and every are set: keep one of them",
        );
    }
    if cron.is_none() && every.is_none() && max_age.is_none() {
        s.err(
            at,
            "E0505",
            "schedule sets none of cron, every, max_age: the policy would never rotate on its own",
        );
    }
    let duration = |d: &Option<Spanned<String>>, s: &mut Sink| {
        d.as_ref().and_then(|d| match parse_duration(&d.value) {
            Ok(v) => Some(v),
            Err(m) => {
                s.err(pos(d), "E0503", m);
                None
            }
        })
    };
    let every_d = duration(&every, s);
    let jitter_d = duration(&jitter, s);
    let max_age_d = duration(&max_age, s);
    let cadence = match (&cron, every_d) {
        (Some(c), _) => match parse_cron(&c.value) {
            Ok(_) => Some(Cadence::Cron(c.value.clone())),
            Err(m) => {
                s.err(pos(c), "E0501", m);
                None
            }
        },
        (None, Some(d)) => Some(Cadence::Every(d)),
        (None, None) => None,
    };
    let tz = match &timezone {
        None => "UTC".to_string(),
        Some(tz) => {
            if chrono_tz::Tz::from_str(&tz.value).is_err() {
                let hint = chrono_tz::TZ_VARIANTS
                    .iter()
                    .find(|z| z.name().eq_ignore_ascii_case(&tz.value))
                    .map(|z| format!(": did you mean {}?", z.name()))
                    .unwrap_or_else(|| {
                        ": use an IANA name such as UTC or Europe/Berlin".to_string()
                    });
                s.err(
                    pos(tz),
                    "E0504",
                    format!("unknown time zone \"{}\"{hint}", tz.value),
                );
            }
            tz.value.clone()
        }
    };
    if s.count() > start {
        return None;
    }
    Some(Schedule {
        cadence,
        timezone: tz,
        jitter: jitter_d,
        max_age: max_age_d,
    })
}
