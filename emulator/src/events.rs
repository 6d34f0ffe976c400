//! What the emulator's control routes and methods change, and the webhook each delivers
//! (see `webhooks.rs`): repositories created, deleted or archived, repositories added to
//! or removed from an installation, an App installed or suspended.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde_json::{json, Value};

use super::errors::ApiError;
use super::extract::Params;
use super::fleet::RepoSpec;
use super::server::{Emulator, Shared};
use super::state::{OrgState, RepoState};
use super::webhooks::Delivery;

fn owner_json(org: &OrgState) -> Value {
    json!({ "login": org.login, "id": org.id, "type": "Organization" })
}

fn repo_json(org: &OrgState, r: &RepoState) -> Value {
    let private = r.visibility.as_str() != "public";
    json!({
        "id": r.id,
        "node_id": format!("R_emulated{}", r.id),
        "name": r.name,
        "full_name": format!("{}/{}", org.login, r.name),
        "private": private,
        "visibility": r.visibility.as_str(),
        "owner": owner_json(org),
        "archived": r.archived,
        "disabled": r.disabled,
        "topics": r.topics,
        "default_branch": r.branches.first().cloned().unwrap_or_else(|| "main".into()),
    })
}

fn short_repo_json(org: &OrgState, r: &RepoState) -> Value {
    json!({
        "id": r.id,
        "node_id": format!("R_emulated{}", r.id),
        "name": r.name,
        "full_name": format!("{}/{}", org.login, r.name),
        "private": r.visibility.as_str() != "public",
    })
}

fn sender() -> Value {
    json!({ "login": "emulator-admin", "id": 1, "type": "User" })
}

impl Emulator {
    /// Sends webhook deliveries to `url`, signed with `secret`, from now on.
    pub fn with_webhook(self, url: &str, secret: &str) -> Self {
        self.shared.webhooks.configure(url, secret);
        self
    }

    /// As [`Emulator::with_webhook`], on a running emulator.
    pub fn set_webhook(&self, url: &str, secret: &str) {
        self.shared.webhooks.configure(url, secret);
    }

    /// Every delivery so far, in the order they were queued.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.shared.webhooks.deliveries()
    }

    /// Sends delivery `guid` again, as GitHub's "Redeliver" does; `false` if there is none.
    pub fn redeliver(&self, guid: &str) -> bool {
        self.shared.webhooks.redeliver(guid)
    }

    /// The installation (of any App) on `org` that reaches `repo`, if any: its id.
    fn installation_reaching(&self, org: &str, repo: &str) -> Option<u64> {
        self.shared.apps.apps.iter().find_map(|a| {
            a.installations()
                .into_iter()
                .find(|i| !i.suspended && i.grant().reaches_repo(org, repo))
                .map(|i| i.id)
        })
    }

    /// A `repository` event with `action` for `org/name` as it is now.
    pub(crate) fn send_repository_event(&self, action: &str, org: &str, name: &str) {
        let installation = self.installation_reaching(org, name);
        let payload = {
            let st = self.shared.state_read();
            let Some(o) = st.org(org) else { return };
            let Some(r) = o.repos.get(&name.to_ascii_lowercase()) else {
                return;
            };
            let mut p = json!({
                "action": action,
                "repository": repo_json(o, r),
                "organization": owner_json(o),
                "sender": sender(),
            });
            if let Some(id) = installation {
                p["installation"] = json!({ "id": id, "node_id": format!("I_emulated{id}") });
            }
            (p, o.id)
        };
        let target = if installation.is_some() {
            "integration"
        } else {
            "organization"
        };
        self.shared
            .webhooks
            .send("repository", payload.0, target, payload.1);
    }

    /// Creates a repository and delivers `repository.created` (when a webhook is set).
    pub fn create_repo(&self, org: &str, repo: RepoSpec) -> Result<u64, crate::FleetError> {
        let name = repo.name.clone();
        let id = self.try_add_repo(org, repo)?;
        self.send_repository_event("created", org, &name);
        Ok(id)
    }

    /// Deletes a repository and delivers `repository.deleted`; `false` if there was none.
    pub fn delete_repo(&self, org: &str, name: &str) -> bool {
        let before = {
            let st = self.shared.state_read();
            st.org(org).and_then(|o| {
                o.repos
                    .get(&name.to_ascii_lowercase())
                    .map(|r| (repo_json(o, r), owner_json(o), o.id))
            })
        };
        let installation = self.installation_reaching(org, name);
        if !self.remove_repo(org, name) {
            return false;
        }
        if let Some((repo, owner, org_id)) = before {
            let mut p = json!({ "action": "deleted", "repository": repo, "organization": owner, "sender": sender() });
            if let Some(id) = installation {
                p["installation"] = json!({ "id": id });
            }
            self.shared
                .webhooks
                .send("repository", p, "organization", org_id);
        }
        true
    }

    /// Archives (or unarchives) a repository and delivers `repository.archived` /
    /// `unarchived`; `false` if there is no such repository.
    pub fn set_archived(&self, org: &str, name: &str, archived: bool) -> bool {
        {
            let mut st = self.shared.state();
            let Some(r) = st.repo_mut(org, name) else {
                return false;
            };
            r.archived = archived;
        }
        self.send_repository_event(if archived { "archived" } else { "unarchived" }, org, name);
        true
    }

    /// Adds `repo` to a `selected` installation and delivers
    /// `installation_repositories.added`; `false` if either does not exist.
    pub fn add_installation_repo(&self, installation_id: u64, repo: &str) -> bool {
        self.change_installation_repo(installation_id, repo, true)
    }

    /// Takes `repo` out of a `selected` installation and delivers
    /// `installation_repositories.removed`.
    pub fn remove_installation_repo(&self, installation_id: u64, repo: &str) -> bool {
        self.change_installation_repo(installation_id, repo, false)
    }

    fn change_installation_repo(&self, installation_id: u64, repo: &str, add: bool) -> bool {
        let Some(app) = self
            .shared
            .apps
            .apps
            .iter()
            .find(|a| a.installations().iter().any(|i| i.id == installation_id))
        else {
            return false;
        };
        let org = app
            .installations()
            .into_iter()
            .find(|i| i.id == installation_id)
            .map(|i| i.org)
            .unwrap_or_default();
        let (item, account) = {
            let st = self.shared.state_read();
            let Some(o) = st.org(&org) else { return false };
            let Some(r) = o.repos.get(&repo.to_ascii_lowercase()) else {
                return false;
            };
            (short_repo_json(o, r), owner_json(o))
        };
        let changed = app.with_installations(|all| {
            let Some(i) = all.iter_mut().find(|i| i.id == installation_id) else {
                return false;
            };
            let has = i.repositories.iter().any(|r| r.eq_ignore_ascii_case(repo));
            match (add, has) {
                (true, false) => i.repositories.push(repo.to_string()),
                (false, true) => i.repositories.retain(|r| !r.eq_ignore_ascii_case(repo)),
                _ => return false,
            }
            true
        });
        if !changed {
            return false;
        }
        let installation = self.installation_payload(app.id, installation_id, &account);
        let (added, removed) = if add {
            (vec![item], vec![])
        } else {
            (vec![], vec![item])
        };
        self.shared.webhooks.send(
            "installation_repositories",
            json!({
                "action": if add { "added" } else { "removed" },
                "installation": installation,
                "repository_selection": "selected",
                "repositories_added": added,
                "repositories_removed": removed,
                "requester": null,
                "sender": sender(),
            }),
            "integration",
            app.id,
        );
        true
    }

    /// Installs App `app_id` on `org` (on every repository, or on `selected` ones) and
    /// delivers `installation.created` listing the repositories it reaches. Returns the new
    /// installation's id; `None` if the App or the organization does not exist, or the App
    /// is installed there already.
    pub fn install_app(&self, app_id: u64, org: &str, selected: Option<&[&str]>) -> Option<u64> {
        let app = self.shared.apps.app(app_id)?;
        if app
            .installations()
            .iter()
            .any(|i| i.org.eq_ignore_ascii_case(org))
        {
            return None;
        }
        let (account, repos) = {
            let st = self.shared.state_read();
            let o = st.org(org)?;
            let repos: Vec<Value> = o
                .repos
                .values()
                .filter(|r| {
                    selected.is_none_or(|s| s.iter().any(|n| n.eq_ignore_ascii_case(&r.name)))
                })
                .map(|r| short_repo_json(o, r))
                .collect();
            (owner_json(o), repos)
        };
        let taken: Vec<u64> = self
            .shared
            .apps
            .apps
            .iter()
            .flat_map(|a| a.installations().into_iter().map(|i| i.id))
            .collect();
        let id = taken.iter().max().copied().unwrap_or(40_000_000) + 1;
        let mut permissions = crate::apps::default_permissions();
        permissions.insert("metadata".into(), "read".into());
        app.with_installations(|all| {
            all.push(crate::apps::InstallationEntry {
                id,
                app_id,
                org: org.to_string(),
                selection: if selected.is_some() {
                    crate::apps::RepositorySelection::Selected
                } else {
                    crate::apps::RepositorySelection::All
                },
                repositories: selected
                    .map(|s| s.iter().map(|r| r.to_string()).collect())
                    .unwrap_or_default(),
                permissions,
                suspended: false,
                created_at: chrono::Utc::now(),
            })
        });
        let mut installation = self.installation_payload(app_id, id, &account);
        installation["repository_selection"] = json!(if selected.is_some() {
            "selected"
        } else {
            "all"
        });
        self.shared.webhooks.send(
            "installation",
            json!({
                "action": "created",
                "installation": installation,
                "repositories": repos,
                "requester": null,
                "sender": sender(),
            }),
            "integration",
            app_id,
        );
        Some(id)
    }

    /// Suspends (or unsuspends) an installation and delivers `installation.suspend` /
    /// `unsuspend`; `false` if there is none.
    pub fn suspend_installation(&self, installation_id: u64, suspended: bool) -> bool {
        for app in &self.shared.apps.apps {
            let org = app.with_installations(|all| {
                all.iter_mut().find(|i| i.id == installation_id).map(|i| {
                    i.suspended = suspended;
                    i.org.clone()
                })
            });
            if let Some(org) = org {
                let account = self
                    .shared
                    .state_read()
                    .org(&org)
                    .map(owner_json)
                    .unwrap_or(Value::Null);
                let installation = self.installation_payload(app.id, installation_id, &account);
                self.shared.webhooks.send(
                    "installation",
                    json!({
                        "action": if suspended { "suspend" } else { "unsuspend" },
                        "installation": installation,
                        "sender": sender(),
                    }),
                    "integration",
                    app.id,
                );
                return true;
            }
        }
        false
    }

    fn installation_payload(&self, app_id: u64, id: u64, account: &Value) -> Value {
        json!({
            "id": id,
            "app_id": app_id,
            "account": account,
            "repository_selection": "selected",
            "target_type": "Organization",
        })
    }
}

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/_emulator/deliveries", get(http_deliveries))
        .route(
            "/_emulator/deliveries/{guid}/redeliver",
            post(http_redeliver),
        )
        .route("/_emulator/repos/{org}/{name}/archive", post(http_archive))
        .route(
            "/_emulator/repos/{org}/{name}/unarchive",
            post(http_unarchive),
        )
        .route("/_emulator/installations/{id}/suspend", post(http_suspend))
        .route(
            "/_emulator/installations/{id}/unsuspend",
            post(http_unsuspend),
        )
        .route(
            "/_emulator/installations/{id}/repositories/{name}",
            put(http_add_installation_repo).delete(http_remove_installation_repo),
        )
}

fn emulator(sh: Arc<Shared>) -> Emulator {
    Emulator { shared: sh }
}

fn done(ok: bool) -> Result<StatusCode, ApiError> {
    if ok {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found())
    }
}

async fn http_deliveries(State(sh): State<Arc<Shared>>) -> Response {
    Json(sh.webhooks.deliveries()).into_response()
}

async fn http_redeliver(
    State(sh): State<Arc<Shared>>,
    params: Params,
) -> Result<StatusCode, ApiError> {
    done(sh.webhooks.redeliver(params.get("guid")?))
}

async fn http_archive(
    State(sh): State<Arc<Shared>>,
    params: Params,
) -> Result<StatusCode, ApiError> {
    done(emulator(sh).set_archived(params.get("org")?, params.get("name")?, true))
}

async fn http_unarchive(
    State(sh): State<Arc<Shared>>,
    params: Params,
) -> Result<StatusCode, ApiError> {
    done(emulator(sh).set_archived(params.get("org")?, params.get("name")?, false))
}

fn installation_id(params: &Params) -> Result<u64, ApiError> {
    params.get("id")?.parse().map_err(|_| ApiError::not_found())
}

async fn http_suspend(
    State(sh): State<Arc<Shared>>,
    params: Params,
) -> Result<StatusCode, ApiError> {
    done(emulator(sh).suspend_installation(installation_id(&params)?, true))
}

async fn http_unsuspend(
    State(sh): State<Arc<Shared>>,
    params: Params,
) -> Result<StatusCode, ApiError> {
    done(emulator(sh).suspend_installation(installation_id(&params)?, false))
}

async fn http_add_installation_repo(
    State(sh): State<Arc<Shared>>,
    params: Params,
) -> Result<StatusCode, ApiError> {
    done(emulator(sh).add_installation_repo(installation_id(&params)?, params.get("name")?))
}

async fn http_remove_installation_repo(
    State(sh): State<Arc<Shared>>,
    params: Params,
) -> Result<StatusCode, ApiError> {
    done(emulator(sh).remove_installation_repo(installation_id(&params)?, params.get("name")?))
}
