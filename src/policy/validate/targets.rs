//! The `targets` section: repositories, environments, repositories of an org, and
//! organization secrets with their selection of repositories.

use serde_saphyr::Spanned;

use super::common::{check_repo_globs, pos, Sink};
use crate::policy::model::{App, RepoSelector, RepoVisibility, TargetSpec, Visibility};
use crate::policy::names;
use crate::policy::raw::RawTarget;
use crate::policy::yaml::Pos;

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

pub(super) fn check_target(s: &mut Sink, t: Spanned<RawTarget>) -> Option<TargetSpec> {
    let at = pos(&t);
    let start = s.count();
    let mut t = t.value;
    if let Some(kv) = t.vault_kv.take() {
        // A Vault KV path (a runner token's place): nothing of a GitHub target goes with it.
        let github_fields = [
            ("repo", t.repo.as_ref().map(pos)),
            ("org", t.org.as_ref().map(pos)),
            ("environment", t.environment.as_ref().map(pos)),
            ("app", t.app.as_ref().map(pos)),
            ("scope", t.scope.as_ref().map(pos)),
            ("visibility", t.visibility.as_ref().map(pos)),
        ];
        for (field, p) in github_fields.into_iter().chain(selection_fields(&t)) {
            if let Some(p) = p {
                s.err(
                    p,
                    "E0406",
                    format!("{field} is not allowed on a vault_kv target"),
                );
            }
        }
        let kv = super::source::check_kv(s, "vault_kv", kv, Some("token"));
        return (s.count() == start)
            .then_some(kv)
            .flatten()
            .map(TargetSpec::VaultKv);
    }

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
        let globs = repos.value.iter().map(|g| (g.value.as_str(), pos(g)));
        if let Some((include, exclude)) = check_repo_globs(s, globs) {
            sel.include = include;
            sel.exclude = exclude;
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
