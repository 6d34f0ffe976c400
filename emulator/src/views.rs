//! The JSON shapes GitHub answers with: repositories, environments, secrets, public keys.

use base64::Engine as _;
use serde_json::{json, Value};

use crate::scope::Scope;
use crate::scope::Visibility;

use super::auth::{ApiVersion, BaseUrl};
use super::fleet::RepoVisibility;
use super::state::{rfc3339, EnvState, OrgState, RepoState, SecretEntry};

pub(crate) fn node_id(kind: &str, id: u64) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("0{}:{kind}{id}", kind.len()))
}

/// The organization as a `simple-user` owner object.
pub(crate) fn owner_json(org: &OrgState, base: &BaseUrl) -> Value {
    account_json(&org.login, org.id, "Organization", base)
}

/// An account as `simple-user` describes it; `kind` is `Organization` or `User`.
pub(crate) fn account_json(login: &str, id: u64, kind: &str, base: &BaseUrl) -> Value {
    let api = base.api();
    let u = format!("{api}/users/{login}");
    let repos_url = match kind {
        "Organization" => format!("{api}/orgs/{login}/repos"),
        _ => format!("{u}/repos"),
    };
    json!({
        "login": login,
        "id": id,
        "node_id": node_id(kind, id),
        "avatar_url": format!("{}/avatars/{login}", base.origin),
        "gravatar_id": "",
        "url": u,
        "html_url": format!("{}/{login}", base.origin),
        "followers_url": format!("{u}/followers"),
        "following_url": format!("{u}/following{{/other_user}}"),
        "gists_url": format!("{u}/gists{{/gist_id}}"),
        "starred_url": format!("{u}/starred{{/owner}}{{/repo}}"),
        "subscriptions_url": format!("{u}/subscriptions"),
        "organizations_url": format!("{u}/orgs"),
        "repos_url": repos_url,
        "events_url": format!("{u}/events{{/privacy}}"),
        "received_events_url": format!("{u}/received_events"),
        "type": kind,
        "user_view_type": "public",
        "site_admin": false
    })
}

/// `GET /orgs/{org}`: the `organization-full` fields clients read.
pub(crate) fn org_json(org: &OrgState, base: &BaseUrl, public_repos: usize) -> Value {
    let api = base.api();
    let login = &org.login;
    let u = format!("{api}/orgs/{login}");
    json!({
        "login": login,
        "id": org.id,
        "node_id": node_id("Organization", org.id),
        "url": u,
        "repos_url": format!("{u}/repos"),
        "events_url": format!("{u}/events"),
        "hooks_url": format!("{u}/hooks"),
        "issues_url": format!("{u}/issues"),
        "members_url": format!("{u}/members{{/member}}"),
        "public_members_url": format!("{u}/public_members{{/member}}"),
        "avatar_url": format!("{}/avatars/{login}", base.origin),
        "description": null,
        "name": login,
        "html_url": format!("{}/{login}", base.origin),
        "type": "Organization",
        "public_repos": public_repos,
        "public_gists": 0,
        "followers": 0,
        "following": 0,
        "has_organization_projects": true,
        "has_repository_projects": true,
        "created_at": "2020-01-01T00:00:00Z",
        "updated_at": "2020-01-01T00:00:00Z",
        "archived_at": null
    })
}

/// The user of token number `id` as `simple-user` describes it (a run's `actor`).
pub(crate) fn simple_user_json(id: u64, base: &BaseUrl) -> Value {
    account_json(&format!("emulator-user-{id}"), id, "User", base)
}

/// `GET /user` for token number `id`.
pub(crate) fn user_json(id: u64, base: &BaseUrl) -> Value {
    let api = base.api();
    let login = format!("emulator-user-{id}");
    let u = format!("{api}/users/{login}");
    json!({
        "login": login,
        "id": id,
        "node_id": node_id("User", id),
        "avatar_url": format!("{}/avatars/{login}", base.origin),
        "gravatar_id": "",
        "url": u,
        "html_url": format!("{}/{login}", base.origin),
        "repos_url": format!("{u}/repos"),
        "organizations_url": format!("{u}/orgs"),
        "type": "User",
        "site_admin": false,
        "name": login,
        "created_at": "2020-01-01T00:00:00Z",
        "updated_at": "2020-01-01T00:00:00Z"
    })
}

/// A repository as listings return it (`minimal-repository` with the selection fields).
/// `manages`: `Some(true)` adds full permissions, `Some(false)` read-only, `None` omits them
/// (anonymous callers).
pub(crate) fn repo_json(
    org: &OrgState,
    repo: &RepoState,
    base: &BaseUrl,
    version: ApiVersion,
    manages: Option<bool>,
) -> Value {
    let api = base.api();
    let full = format!("{}/{}", org.login, repo.name);
    let u = format!("{api}/repos/{full}");
    let host = base.origin.split("://").nth(1).unwrap_or("localhost");
    let created = rfc3339(&repo.created_at);
    let mut v = json!({
        "id": repo.id,
        "node_id": node_id("Repository", repo.id),
        "name": repo.name,
        "full_name": full,
        "private": repo.visibility != RepoVisibility::Public,
        "owner": owner_json(org, base),
        "html_url": format!("{}/{full}", base.origin),
        "description": null,
        "fork": false,
        "url": u,
    });
    let urls = json!({
        "archive_url": format!("{u}/{{archive_format}}{{/ref}}"),
        "assignees_url": format!("{u}/assignees{{/user}}"),
        "blobs_url": format!("{u}/git/blobs{{/sha}}"),
        "branches_url": format!("{u}/branches{{/branch}}"),
        "collaborators_url": format!("{u}/collaborators{{/collaborator}}"),
        "comments_url": format!("{u}/comments{{/number}}"),
        "commits_url": format!("{u}/commits{{/sha}}"),
        "compare_url": format!("{u}/compare/{{base}}...{{head}}"),
        "contents_url": format!("{u}/contents/{{+path}}"),
        "contributors_url": format!("{u}/contributors"),
        "deployments_url": format!("{u}/deployments"),
        "downloads_url": format!("{u}/downloads"),
        "events_url": format!("{u}/events"),
        "forks_url": format!("{u}/forks"),
        "git_commits_url": format!("{u}/git/commits{{/sha}}"),
        "git_refs_url": format!("{u}/git/refs{{/sha}}"),
        "git_tags_url": format!("{u}/git/tags{{/sha}}"),
        "git_url": format!("git://{host}/{full}.git"),
        "issue_comment_url": format!("{u}/issues/comments{{/number}}"),
        "issue_events_url": format!("{u}/issues/events{{/number}}"),
        "issues_url": format!("{u}/issues{{/number}}"),
        "keys_url": format!("{u}/keys{{/key_id}}"),
        "labels_url": format!("{u}/labels{{/name}}"),
        "languages_url": format!("{u}/languages"),
        "merges_url": format!("{u}/merges"),
        "milestones_url": format!("{u}/milestones{{/number}}"),
        "notifications_url": format!("{u}/notifications{{?since,all,participating}}"),
        "pulls_url": format!("{u}/pulls{{/number}}"),
        "releases_url": format!("{u}/releases{{/id}}"),
        "ssh_url": format!("git@{host}:{full}.git"),
        "stargazers_url": format!("{u}/stargazers"),
        "statuses_url": format!("{u}/statuses/{{sha}}"),
        "subscribers_url": format!("{u}/subscribers"),
        "subscription_url": format!("{u}/subscription"),
        "tags_url": format!("{u}/tags"),
        "teams_url": format!("{u}/teams"),
        "trees_url": format!("{u}/git/trees{{/sha}}"),
        "clone_url": format!("{}/{full}.git", base.origin),
        "mirror_url": null,
        "hooks_url": format!("{u}/hooks"),
        "svn_url": format!("{}/{full}", base.origin),
    });
    let rest = json!({
        "homepage": null,
        "language": null,
        "forks_count": 0,
        "stargazers_count": 0,
        "watchers_count": 0,
        "size": 0,
        "default_branch": repo.default_branch(),
        "open_issues_count": 0,
        "is_template": false,
        "topics": repo.topics,
        "has_issues": true,
        "has_projects": true,
        "has_wiki": true,
        "has_pages": false,
        "has_discussions": false,
        "archived": repo.archived,
        "disabled": repo.disabled,
        "visibility": repo.visibility.as_str(),
        "pushed_at": created,
        "created_at": created,
        "updated_at": created,
        "allow_forking": true,
        "web_commit_signoff_required": false,
        "license": null,
        "forks": 0,
        "open_issues": 0,
        "watchers": 0
    });
    for more in [urls, rest] {
        if let (Some(obj), Value::Object(more)) = (v.as_object_mut(), more) {
            obj.extend(more);
        }
    }
    if version == ApiVersion::V2022_11_28 {
        v["has_downloads"] = json!(true);
    }
    if let Some(manages) = manages {
        v["permissions"] = json!({
            "admin": manages, "maintain": manages, "push": manages, "triage": manages, "pull": true
        });
    }
    v
}

/// `GET /repos/{owner}/{repo}`: the listing shape plus `organization` and network counts.
pub(crate) fn full_repo_json(
    org: &OrgState,
    repo: &RepoState,
    base: &BaseUrl,
    version: ApiVersion,
    manages: Option<bool>,
) -> Value {
    let mut v = repo_json(org, repo, base, version, manages);
    v["organization"] = owner_json(org, base);
    v["network_count"] = json!(0);
    v["subscribers_count"] = json!(0);
    v
}

pub(crate) fn environment_json(
    org: &OrgState,
    repo: &RepoState,
    env: &EnvState,
    base: &BaseUrl,
) -> Value {
    let t = rfc3339(&env.created_at);
    json!({
        "id": env.id,
        "node_id": node_id("Environment", env.id),
        "name": env.name,
        "url": format!("{}/repos/{}/{}/environments/{}", base.api(), org.login, repo.name, env.name),
        "html_url": format!("{}/{}/{}/deployments/activity_log?environments_filter={}", base.origin, org.login, repo.name, env.name),
        "created_at": t,
        "updated_at": t,
        "protection_rules": [],
        "deployment_branch_policy": null
    })
}

/// A secret's metadata; organization secrets add `visibility` and, when selected,
/// `selected_repositories_url`. Never the value.
pub(crate) fn secret_json(scope: &Scope, entry: &SecretEntry, base: &BaseUrl) -> Value {
    let mut v = json!({
        "name": entry.name,
        "created_at": rfc3339(&entry.created_at),
        "updated_at": rfc3339(&entry.updated_at),
    });
    if let (Scope::Org { org, app }, Some(access)) = (scope, entry.access.as_ref()) {
        v["visibility"] = json!(access.visibility.as_str());
        if access.visibility == Visibility::Selected {
            v["selected_repositories_url"] = json!(format!(
                "{}/orgs/{org}/{}/secrets/{}/repositories",
                base.api(),
                app.as_str(),
                entry.name
            ));
        }
    }
    v
}

pub(crate) fn public_key_json(key_id: &str, key: &str) -> Value {
    json!({ "key_id": key_id, "key": key })
}
