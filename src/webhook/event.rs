//! The events rotor acts on, read from a delivery's `X-GitHub-Event` and body, and what
//! each asks of rotor.

use serde_json::Value;

/// A repository an event names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RepoRef {
    pub owner: String,
    pub name: String,
    pub id: Option<u64>,
}

/// An event, reduced to what rotor reads of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Ping,
    /// `installation`: `created`, `deleted`, `suspend`, `unsuspend`,
    /// `new_permissions_accepted`. `repos`: the repositories it reaches, when listed.
    Installation {
        action: String,
        installation_id: u64,
        account: String,
        repos: Vec<RepoRef>,
    },
    /// `installation_repositories`: `added`, `removed`.
    InstallationRepositories {
        action: String,
        installation_id: u64,
        account: String,
        added: Vec<RepoRef>,
        removed: Vec<RepoRef>,
    },
    /// `repository` with its action; `previous_owner` for a transfer.
    Repository {
        action: String,
        repo: RepoRef,
        previous_owner: Option<String>,
    },
    /// An event rotor does not act on (answered 2xx and ignored).
    Other {
        event: String,
        action: Option<String>,
    },
}

/// What an event asks of rotor.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Work {
    /// Owners whose cached listings (and App installation) are out of date.
    pub invalidate: Vec<String>,
    /// Repositories to bring in line with the policies: their secrets pushed where a
    /// policy selects them, their place in `selected` organization secrets kept right.
    pub reconcile: Vec<RepoRef>,
    /// Whether a repository that no longer matches leaves `selected` organization secrets
    /// (false for a creation: it was in none).
    pub may_withdraw: bool,
    /// Repositories gone from rotor's reach (removed from the installation, deleted):
    /// dropped from the `selected` organization secrets rotor keeps.
    pub withdraw: Vec<RepoRef>,
    /// Owners whose every policy should run a normal pass (an installation came back
    /// without saying which repositories it reaches).
    pub owner_passes: Vec<String>,
}

impl Work {
    pub fn is_empty(&self) -> bool {
        self.invalidate.is_empty()
            && self.reconcile.is_empty()
            && self.withdraw.is_empty()
            && self.owner_passes.is_empty()
    }
}

fn text(v: &Value, path: &[&str]) -> Option<String> {
    let mut v = v;
    for p in path {
        v = v.get(p)?;
    }
    v.as_str().map(str::to_string)
}

fn number(v: &Value, path: &[&str]) -> Option<u64> {
    let mut v = v;
    for p in path {
        v = v.get(p)?;
    }
    v.as_u64()
}

/// A repository item of a payload: `full_name` (`owner/name`), else `owner.login` and
/// `name`, else `name` under `default_owner`.
fn repo_ref(v: &Value, default_owner: &str) -> Option<RepoRef> {
    let id = v.get("id").and_then(Value::as_u64);
    if let Some((owner, name)) = v
        .get("full_name")
        .and_then(Value::as_str)
        .and_then(|f| f.split_once('/'))
    {
        return Some(RepoRef {
            owner: owner.to_string(),
            name: name.to_string(),
            id,
        });
    }
    let name = v.get("name")?.as_str()?.to_string();
    let owner = text(v, &["owner", "login"]).unwrap_or_else(|| default_owner.to_string());
    Some(RepoRef { owner, name, id })
}

fn repo_list(v: Option<&Value>, owner: &str) -> Vec<RepoRef> {
    v.and_then(Value::as_array)
        .map(|items| items.iter().filter_map(|i| repo_ref(i, owner)).collect())
        .unwrap_or_default()
}

impl Event {
    /// Reads `event` (the `X-GitHub-Event` header) with its parsed body. A body that lacks
    /// what the event needs is `Err` with what is missing.
    pub fn parse(event: &str, body: &Value) -> Result<Event, String> {
        let action = text(body, &["action"]);
        let account = || {
            text(body, &["installation", "account", "login"])
                .ok_or_else(|| "installation.account.login is missing".to_string())
        };
        let installation_id = || {
            number(body, &["installation", "id"])
                .ok_or_else(|| "installation.id is missing".to_string())
        };
        Ok(match event {
            "ping" => Event::Ping,
            "installation" => {
                let account = account()?;
                Event::Installation {
                    action: action.ok_or("action is missing")?,
                    installation_id: installation_id()?,
                    repos: repo_list(body.get("repositories"), &account),
                    account,
                }
            }
            "installation_repositories" => {
                let account = account()?;
                Event::InstallationRepositories {
                    action: action.ok_or("action is missing")?,
                    installation_id: installation_id()?,
                    added: repo_list(body.get("repositories_added"), &account),
                    removed: repo_list(body.get("repositories_removed"), &account),
                    account,
                }
            }
            "repository" => {
                let repo = body
                    .get("repository")
                    .and_then(|r| repo_ref(r, ""))
                    .filter(|r| !r.owner.is_empty())
                    .ok_or("repository.full_name is missing")?;
                Event::Repository {
                    action: action.ok_or("action is missing")?,
                    previous_owner: text(body, &["changes", "owner", "from", "user", "login"])
                        .or_else(|| {
                            text(body, &["changes", "owner", "from", "organization", "login"])
                        }),
                    repo,
                }
            }
            other => Event::Other {
                event: other.to_string(),
                action,
            },
        })
    }

    /// The event's name and action, for logs and metrics (`repository.created`).
    pub fn label(&self) -> String {
        match self {
            Event::Ping => "ping".into(),
            Event::Installation { action, .. } => format!("installation.{action}"),
            Event::InstallationRepositories { action, .. } => {
                format!("installation_repositories.{action}")
            }
            Event::Repository { action, .. } => format!("repository.{action}"),
            Event::Other { event, action } => match action {
                Some(a) => format!("{event}.{a}"),
                None => event.clone(),
            },
        }
    }

    /// What rotor does about it. Unknown events and actions ask nothing.
    pub fn work(&self) -> Work {
        let mut w = Work::default();
        match self {
            Event::Ping | Event::Other { .. } => {}
            Event::Installation {
                action,
                account,
                repos,
                ..
            } => {
                w.invalidate.push(account.clone());
                match action.as_str() {
                    "created" if !repos.is_empty() => w.reconcile.extend(repos.iter().cloned()),
                    "created" | "unsuspend" | "new_permissions_accepted" => {
                        w.owner_passes.push(account.clone())
                    }
                    // deleted, suspend: the installation is out of reach; the listing and
                    // the installation are forgotten, nothing is written.
                    _ => {}
                }
            }
            Event::InstallationRepositories {
                action,
                account,
                added,
                removed,
                ..
            } => {
                if matches!(action.as_str(), "added" | "removed") {
                    w.invalidate.push(account.clone());
                    w.reconcile.extend(added.iter().cloned());
                    w.withdraw.extend(removed.iter().cloned());
                }
            }
            Event::Repository {
                action,
                repo,
                previous_owner,
            } => match action.as_str() {
                "created" => {
                    w.invalidate.push(repo.owner.clone());
                    w.reconcile.push(repo.clone());
                }
                "archived" | "unarchived" | "renamed" | "privatized" | "publicized" | "edited"
                | "transferred" => {
                    w.invalidate.push(repo.owner.clone());
                    if let Some(prev) = previous_owner.as_ref().filter(|p| **p != repo.owner) {
                        w.invalidate.push(prev.clone());
                        w.withdraw.push(RepoRef {
                            owner: prev.clone(),
                            ..repo.clone()
                        });
                    }
                    w.reconcile.push(repo.clone());
                    w.may_withdraw = true;
                }
                "deleted" => {
                    w.invalidate.push(repo.owner.clone());
                    w.withdraw.push(repo.clone());
                }
                _ => {}
            },
        }
        w.invalidate.sort();
        w.invalidate.dedup();
        w
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn each_event_asks_for_its_work() {
        let created = json!({"action": "created", "repository": {"id": 7, "name": "new", "full_name": "acme/new", "owner": {"login": "acme"}}});
        let w = Event::parse("repository", &created).unwrap().work();
        assert_eq!(w.invalidate, ["acme"]);
        assert_eq!(w.reconcile.len(), 1);
        assert_eq!(w.reconcile[0].name, "new");
        assert!(!w.may_withdraw);

        let archived =
            json!({"action": "archived", "repository": {"id": 7, "full_name": "acme/old"}});
        let w = Event::parse("repository", &archived).unwrap().work();
        assert!(w.may_withdraw);

        let added = json!({"action": "added", "installation": {"id": 9, "account": {"login": "globex"}},
            "repository_selection": "selected",
            "repositories_added": [{"id": 1, "name": "a", "full_name": "globex/a"}],
            "repositories_removed": [{"id": 2, "name": "b", "full_name": "globex/b"}]});
        let w = Event::parse("installation_repositories", &added)
            .unwrap()
            .work();
        assert_eq!(w.reconcile[0].name, "a");
        assert_eq!(w.withdraw[0].id, Some(2));

        let suspended =
            json!({"action": "suspend", "installation": {"id": 9, "account": {"login": "globex"}}});
        let w = Event::parse("installation", &suspended).unwrap().work();
        assert_eq!(w.invalidate, ["globex"]);
        assert!(w.reconcile.is_empty() && w.owner_passes.is_empty());

        let unsuspended = json!({"action": "unsuspend", "installation": {"id": 9, "account": {"login": "globex"}}});
        assert_eq!(
            Event::parse("installation", &unsuspended)
                .unwrap()
                .work()
                .owner_passes,
            ["globex"]
        );

        assert!(Event::parse("star", &json!({"action": "created"}))
            .unwrap()
            .work()
            .is_empty());
        assert!(Event::parse("ping", &json!({"zen": "Keep it simple."}))
            .unwrap()
            .work()
            .is_empty());
        assert!(Event::parse("repository", &json!({"action": "created"})).is_err());
    }
}
