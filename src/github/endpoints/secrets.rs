//! Secrets of a scope: its public key, the secrets' names, writing one, and the
//! repositories a `selected` organization secret is shared with.

use reqwest::Method;
use serde::{Deserialize, Serialize};

use crate::github::client::Client;
use crate::github::error::{ErrorKind, GitHubError};
use crate::github::transport::Reply;
use crate::github::{listing, routes};
use crate::model::{App, OrgAccess, PublicKey, PutOutcome, SecretMeta, SecretScope, Visibility};

/// What an accepted secret PUT returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutReceipt {
    /// 201 created or 204 updated.
    pub outcome: PutOutcome,
    /// GitHub's `x-github-request-id` for the request, when it sent one.
    pub request_id: Option<String>,
}

type Result<T> = std::result::Result<T, GitHubError>;

impl Client {
    /// `GET {scope}/secrets/public-key`: the key values for this scope must be sealed with.
    ///
    /// The key is checked before it is handed on (see [`crate::seal::check_public_key`]):
    /// an unusable one is a `Decode` error, so that nothing (a rotation of the source, the
    /// ledger's key cache) comes to depend on it. The error never quotes the key id, which
    /// may hold terminal escapes.
    pub async fn public_key(&self, scope: &SecretScope) -> Result<PublicKey> {
        let path = routes::secrets(&Method::GET, scope)?;
        let path = format!("{path}/public-key");
        let key: PublicKey = self.transport().get_json(&path).await?;
        crate::seal::check_public_key(&key.key_id, &key.key).map_err(|e| {
            GitHubError::local(
                crate::github::ErrorKind::Decode,
                Method::GET,
                path.clone(),
                format!("GitHub answered with an unusable public key: {e}"),
            )
        })?;
        Ok(key)
    }

    /// `GET {scope}/secrets?per_page=100`, every page: names and timestamps, never values.
    pub async fn list_secrets(&self, scope: &SecretScope) -> Result<Vec<SecretMeta>> {
        #[derive(Deserialize)]
        struct Page {
            secrets: Vec<SecretMeta>,
        }
        let path = routes::secrets(&Method::GET, scope)?;
        listing::paginate(self.transport(), format!("{path}?per_page=100"), |body| {
            serde_json::from_slice::<Page>(body).map(|p| p.secrets)
        })
        .await
    }

    /// `PUT {scope}/secrets/{name}`: creates (201) or updates (204) a secret.
    ///
    /// `encrypted_value` is the base64 sealed box made with the scope's public key, whose id
    /// is `key_id`. Organization scopes need `access` (their visibility, and the repository
    /// ids for `selected`); other scopes must pass `None`.
    ///
    /// Idempotent: sending the same body twice leaves the secret in the same state, which
    /// is why a timeout or 5xx is retried (the retry may report `Updated` where the lost
    /// first attempt had created the secret).
    pub async fn put_secret(
        &self,
        scope: &SecretScope,
        name: &str,
        encrypted_value: &str,
        key_id: &str,
        access: Option<&OrgAccess>,
    ) -> Result<PutOutcome> {
        self.put_secret_with_meta(scope, name, encrypted_value, key_id, access)
            .await
            .map(|r| r.outcome)
    }

    /// As [`Client::put_secret`], also returning GitHub's `x-github-request-id` (for audit
    /// records).
    pub async fn put_secret_with_meta(
        &self,
        scope: &SecretScope,
        name: &str,
        encrypted_value: &str,
        key_id: &str,
        access: Option<&OrgAccess>,
    ) -> Result<PutReceipt> {
        #[derive(Serialize)]
        struct Body<'a> {
            encrypted_value: &'a str,
            key_id: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            visibility: Option<&'static str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            selected_repository_ids: Option<&'a [u64]>,
        }
        let method = Method::PUT;
        let path = routes::secret(&method, scope, name)?;
        let (visibility, selected_repository_ids) = match (scope, access) {
            (SecretScope::Org { .. }, Some(a)) => (
                Some(a.visibility.as_str()),
                (a.visibility == Visibility::Selected)
                    .then_some(a.selected_repository_ids.as_slice()),
            ),
            (SecretScope::Org { .. }, None) => {
                let msg = "an organization secret needs its visibility";
                return Err(GitHubError::invalid_input(&method, path, msg));
            }
            (_, Some(_)) => {
                let msg = "visibility applies only to organization secrets";
                return Err(GitHubError::invalid_input(&method, path, msg));
            }
            (_, None) => (None, None),
        };
        let body = Body {
            encrypted_value,
            key_id,
            visibility,
            selected_repository_ids,
        };
        let reply = self
            .transport()
            .send_json(method.clone(), &path, &body)
            .await?;
        let outcome = match reply.status.as_u16() {
            201 => PutOutcome::Created,
            204 => PutOutcome::Updated,
            _ => return Err(unexpected_success(method, path, &reply)),
        };
        let request_id = reply
            .headers
            .get("x-github-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        Ok(PutReceipt {
            outcome,
            request_id,
        })
    }

    /// `PUT /orgs/{org}/{app}/secrets/{name}/repositories`: replaces the set of repositories
    /// that may use a `selected` organization secret (409 if its visibility is not `selected`).
    pub async fn set_selected_repos(
        &self,
        org: &str,
        app: App,
        name: &str,
        ids: &[u64],
    ) -> Result<()> {
        #[derive(Serialize)]
        struct Body<'a> {
            selected_repository_ids: &'a [u64],
        }
        let path = routes::selected_repos(&Method::PUT, org, app, name)?;
        self.transport()
            .send_json(
                Method::PUT,
                &path,
                &Body {
                    selected_repository_ids: ids,
                },
            )
            .await?;
        Ok(())
    }

    /// `PUT /orgs/{org}/{app}/secrets/{name}/repositories/{repo_id}` (`add`) or `DELETE`
    /// it: one repository joins or leaves a `selected` organization secret (409 if its
    /// visibility is not `selected`). Both are idempotent on GitHub.
    pub async fn set_selected_repo(
        &self,
        org: &str,
        app: App,
        name: &str,
        repo_id: u64,
        add: bool,
    ) -> Result<()> {
        let method = if add { Method::PUT } else { Method::DELETE };
        let base = routes::selected_repos(&method, org, app, name)?;
        let path = format!("{base}/{repo_id}");
        let transport = self.transport();
        let url = transport.url_for(&method, &path)?;
        transport.send(method, url, None).await?;
        Ok(())
    }

    /// `GET /orgs/{org}/{app}/secrets/{name}/repositories`, every page: the ids of the
    /// repositories a `selected` organization secret is shared with.
    pub async fn list_selected_repos(&self, org: &str, app: App, name: &str) -> Result<Vec<u64>> {
        #[derive(Deserialize)]
        struct Page {
            total_count: usize,
            repositories: Vec<Id>,
        }
        #[derive(Deserialize)]
        struct Id {
            id: u64,
        }
        let path = routes::selected_repos(&Method::GET, org, app, name)?;
        // GitHub declares no `Link` header here: pages are asked for by number.
        let mut ids = Vec::new();
        for page in 1.. {
            let p: Page = self
                .transport()
                .get_json(&format!("{path}?per_page=100&page={page}"))
                .await?;
            let got = p.repositories.len();
            ids.extend(p.repositories.into_iter().map(|r| r.id));
            if got == 0 || ids.len() >= p.total_count {
                break;
            }
        }
        ids.sort_unstable();
        ids.dedup();
        Ok(ids)
    }
}

fn unexpected_success(method: Method, path: String, reply: &Reply) -> GitHubError {
    let mut err = GitHubError::decode(
        method,
        path,
        reply.status,
        &reply.headers,
        "GitHub documents only 201 (created) and 204 (updated) here".to_string(),
    );
    err.kind = ErrorKind::UnexpectedStatus;
    err
}
