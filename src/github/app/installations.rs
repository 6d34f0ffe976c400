//! The App's installations: which one serves each owner (looked up once per run), and
//! their tokens, cached until shortly before they expire and minted again then.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use reqwest::header::HeaderValue;
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::jwt::sensitive_bearer;
use crate::github::error::{ErrorKind, GitHubError};
use crate::github::transport::Transport;
use crate::github::{headers, routes};
use crate::model::Installation;

/// What rotor asks of an installation token, at most: the secrets of every scope it
/// writes, `actions` for verification runs (dispatch, runs, jobs, logs), and `metadata`
/// for listings. A token is minted with these, lowered to what the installation grants;
/// every other permission the App may hold (contents, administration, ...) is left out.
pub const WANTED_PERMISSIONS: &[(&str, &str)] = &[
    ("secrets", "write"),
    ("environments", "write"),
    ("organization_secrets", "write"),
    ("dependabot_secrets", "write"),
    ("codespaces_secrets", "write"),
    ("actions", "write"),
    ("organization_self_hosted_runners", "write"),
    ("metadata", "read"),
];

/// The body of a token request for an installation granting `granted`: each wanted
/// permission the installation has, at the lower of the two levels. An installation whose
/// permissions rotor does not know (or that grants none of these) gets `{}`, GitHub's
/// "everything the installation has", rather than a request GitHub would refuse.
pub(crate) fn token_request(granted: Option<&BTreeMap<String, String>>) -> serde_json::Value {
    fn rank(level: &str) -> u8 {
        match level {
            "read" => 1,
            "write" => 2,
            "admin" => 3,
            _ => 0,
        }
    }
    let Some(granted) = granted.filter(|g| !g.is_empty()) else {
        return serde_json::json!({});
    };
    let mut permissions = serde_json::Map::new();
    for (name, wanted) in WANTED_PERMISSIONS {
        if let Some(has) = granted.get(*name) {
            let level = if rank(has) < rank(wanted) {
                has.as_str()
            } else {
                wanted
            };
            if rank(level) > 0 {
                permissions.insert(name.to_string(), serde_json::Value::from(level));
            }
        }
    }
    if permissions.is_empty() {
        return serde_json::json!({});
    }
    serde_json::json!({ "permissions": permissions })
}

/// The most an installation token is refreshed ahead of its expiry.
pub const MAX_REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);

/// Whom a request path belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Principal {
    /// App endpoints: `/app/...`, `/orgs/{org}/installation`, `/repos/{o}/{r}/installation`,
    /// and anything that names no owner.
    App,
    /// `/orgs/{org}/...` or `/repos/{owner}/{repo}/...`.
    Owner { owner: String, repo: Option<String> },
    /// `/installation/...`: the installation named by [`AS_INSTALLATION`].
    Installation(u64),
}

tokio::task_local! {
    /// The installation whose token `/installation/...` requests carry (their path names
    /// none). Set around such a call with `AS_INSTALLATION.scope(id, fut)`.
    pub(crate) static AS_INSTALLATION: u64;
}

impl Principal {
    /// Reads the principal from a request path (relative to the API base, query allowed).
    pub(crate) fn for_path(path: &str) -> Principal {
        let path = path.split('?').next().unwrap_or("");
        let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        match segs.as_slice() {
            ["app", ..] | ["orgs", _, "installation"] | ["users", _, "installation"] => {
                Principal::App
            }
            ["repos", _, _, "installation"] => Principal::App,
            ["installation", ..] => match AS_INSTALLATION.try_with(|id| *id) {
                Ok(id) => Principal::Installation(id),
                Err(_) => Principal::App,
            },
            ["orgs", org, ..] if !org.is_empty() => Principal::Owner {
                owner: org.to_ascii_lowercase(),
                repo: None,
            },
            ["repos", owner, repo, ..] if !owner.is_empty() => Principal::Owner {
                owner: owner.to_ascii_lowercase(),
                repo: Some(repo.to_string()),
            },
            _ => Principal::App,
        }
    }
}

/// An installation token and when to stop using it.
struct CachedToken {
    header: HeaderValue,
    refresh_at: Instant,
}

/// What a lookup of an owner's installation found (kept for the whole run).
#[derive(Clone)]
pub(super) enum Lookup {
    Found(Installation),
    Missing(String),
}

type Slot<T> = Arc<tokio::sync::Mutex<Option<T>>>;

pub(super) fn local_error(
    method: Method,
    path: &str,
    kind: ErrorKind,
    message: String,
) -> GitHubError {
    GitHubError::local(kind, method, path.to_string(), message)
}

/// The installations and tokens learnt with the App's JWT.
#[derive(Default)]
pub(super) struct Installations {
    owners: Mutex<HashMap<String, Slot<Lookup>>>,
    tokens: Mutex<HashMap<u64, Slot<CachedToken>>>,
    /// What each installation looked up grants (its `permissions`).
    granted: Mutex<HashMap<u64, BTreeMap<String, String>>>,
    /// Tokens minted so far (for logs and tests).
    minted: AtomicU64,
}

impl Installations {
    /// How many installation tokens this process has minted.
    pub(super) fn tokens_minted(&self) -> u64 {
        self.minted.load(Ordering::Relaxed)
    }

    /// Forgets the token used for `path` (GitHub answered 401 with it). True when there
    /// was one to forget, i.e. a retry with a fresh token makes sense.
    pub(super) fn forget_token(&self, path: &str) -> bool {
        let id = match Principal::for_path(path) {
            Principal::Installation(id) => Some(id),
            Principal::Owner { owner, .. } => {
                let owners = self.owners.lock().unwrap_or_else(|p| p.into_inner());
                owners.get(&owner).and_then(|slot| match slot.try_lock() {
                    Ok(g) => match g.as_ref() {
                        Some(Lookup::Found(i)) => Some(i.id),
                        _ => None,
                    },
                    Err(_) => None,
                })
            }
            Principal::App => None,
        };
        let Some(id) = id else { return false };
        let slot = self
            .tokens
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
            .cloned();
        match slot {
            Some(slot) => match slot.try_lock() {
                Ok(mut g) => {
                    *g = None;
                    true
                }
                // Someone is minting a new one right now.
                Err(_) => true,
            },
            None => false,
        }
    }

    /// Forgets the lookup of `owner` (and the token of the installation it found).
    pub(super) fn forget_owner(&self, owner: &str) {
        let slot = self
            .owners
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&owner.to_ascii_lowercase());
        let id = slot.and_then(|s| match s.try_lock() {
            Ok(g) => match g.as_ref() {
                Some(Lookup::Found(i)) => Some(i.id),
                _ => None,
            },
            Err(_) => None,
        });
        if let Some(id) = id {
            self.tokens
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&id);
        }
    }

    /// The installation of `owner` (looked up once per run; "not installed" is kept too).
    pub(super) async fn installation(
        &self,
        transport: &Transport,
        issuer: &str,
        owner: &str,
        repo: Option<&str>,
    ) -> Result<Lookup, GitHubError> {
        let slot = {
            let mut owners = self.owners.lock().unwrap_or_else(|p| p.into_inner());
            owners
                .entry(owner.to_ascii_lowercase())
                .or_default()
                .clone()
        };
        let mut guard = slot.lock().await;
        if let Some(found) = guard.as_ref() {
            return Ok(found.clone());
        }
        let found = Box::pin(find_installation(transport, owner, repo)).await?;
        let lookup = match found {
            Some(i) if i.suspended_at.is_some() => Lookup::Missing(format!(
                "the GitHub App's installation {} on {owner} is suspended",
                i.id
            )),
            Some(i) => {
                self.granted
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(i.id, i.permissions.clone());
                Lookup::Found(i)
            }
            None => Lookup::Missing(format!(
                "the GitHub App (iss {}) is not installed on {owner}: install it there, or remove {owner} from the policies",
                issuer
            )),
        };
        *guard = Some(lookup.clone());
        Ok(lookup)
    }

    /// A current token for installation `id`: the cached one, or a new one. Requests for
    /// one installation wait for a single mint rather than each minting their own.
    pub(super) async fn installation_header(
        &self,
        transport: &Transport,
        id: u64,
    ) -> Result<(HeaderValue, Instant), GitHubError> {
        let slot = {
            let mut tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
            tokens.entry(id).or_default().clone()
        };
        let mut guard = slot.lock().await;
        if let Some(t) = guard.as_ref() {
            if Instant::now() < t.refresh_at {
                return Ok((t.header.clone(), t.refresh_at));
            }
        }
        let request = token_request(
            self.granted
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&id),
        );
        let minted = Box::pin(mint_token(transport, id, &request)).await?;
        let header = sensitive_bearer(minted.token.expose_secret()).map_err(|_| {
            local_error(
                Method::POST,
                &minted.path,
                ErrorKind::Decode,
                "the installation token is not a valid header value".into(),
            )
        })?;
        let refresh_at = Instant::now()
            + minted
                .lifetime
                .saturating_sub(refresh_margin(minted.lifetime));
        self.minted.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(
            installation = id,
            lifetime_ms = minted.lifetime.as_millis() as u64,
            "minted an installation token"
        );
        *guard = Some(CachedToken {
            header: header.clone(),
            refresh_at,
        });
        Ok((header, refresh_at))
    }
}

/// How long before expiry a token is replaced: a fifth of its life, at most five minutes.
pub fn refresh_margin(lifetime: Duration) -> Duration {
    (lifetime / 5).min(MAX_REFRESH_MARGIN)
}

/// `GET /orgs/{owner}/installation`, then (for a repository) `GET /repos/{o}/{r}/installation`.
async fn find_installation(
    transport: &Transport,
    owner: &str,
    repo: Option<&str>,
) -> Result<Option<Installation>, GitHubError> {
    let path = routes::path(&Method::GET, &["orgs", owner, "installation"])?;
    match transport.get_json::<Installation>(&path).await {
        Ok(i) => return Ok(Some(i)),
        Err(e) if e.kind == ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let Some(repo) = repo else { return Ok(None) };
    let path = routes::path(&Method::GET, &["repos", owner, repo, "installation"])?;
    match transport.get_json::<Installation>(&path).await {
        Ok(i) => Ok(Some(i)),
        Err(e) if e.kind == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

struct Minted {
    token: SecretString,
    lifetime: Duration,
    path: String,
}

/// `POST /app/installations/{id}/access_tokens`. The lifetime is measured on GitHub's
/// clock (`expires_at` against the response's `Date`), so a skewed local clock does not
/// make rotor keep a token too long.
async fn mint_token(
    transport: &Transport,
    id: u64,
    request: &serde_json::Value,
) -> Result<Minted, GitHubError> {
    #[derive(Deserialize)]
    struct Body {
        token: SecretString,
        expires_at: String,
    }
    let id_text = id.to_string();
    let path = routes::path(
        &Method::POST,
        &["app", "installations", &id_text, "access_tokens"],
    )?;
    let mut reply = transport.send_json(Method::POST, &path, request).await?;
    // The body holds the token: parsed into a secret, then wiped. A parse error's text is
    // not passed on (serde quotes the offending value).
    let parsed = serde_json::from_slice::<Body>(&reply.body);
    zeroize::Zeroize::zeroize(&mut reply.body);
    let bad = |msg: String| {
        GitHubError::decode(
            Method::POST,
            path.clone(),
            reply.status,
            &reply.headers,
            msg,
        )
    };
    let body: Body = parsed.map_err(|e| {
        bad(format!(
            "the token answer is not {{token, expires_at}} (at line {}, column {})",
            e.line(),
            e.column()
        ))
    })?;
    let expires_at = DateTime::parse_from_rfc3339(&body.expires_at)
        .map_err(|e| bad(format!("expires_at is not a time: {e}")))?
        .with_timezone(&Utc);
    let server_now = headers::date(&reply.headers).unwrap_or_else(Utc::now);
    let lifetime = (expires_at - server_now).to_std().unwrap_or(Duration::ZERO);
    Ok(Minted {
        token: body.token,
        lifetime,
        path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_asked_for_every_permission_the_app_holds() {
        let granted: BTreeMap<String, String> = [
            ("secrets", "write"),
            ("environments", "read"),
            ("contents", "write"),
            ("administration", "write"),
            ("metadata", "read"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(
            token_request(Some(&granted)),
            serde_json::json!({"permissions": {
                "secrets": "write", "environments": "read", "metadata": "read"
            }})
        );
        assert_eq!(token_request(None), serde_json::json!({}));
        let none_wanted: BTreeMap<String, String> =
            [("contents".to_string(), "write".to_string())].into();
        assert_eq!(token_request(Some(&none_wanted)), serde_json::json!({}));
    }

    #[test]
    fn paths_name_their_principal() {
        let owner = |o: &str, r: Option<&str>| Principal::Owner {
            owner: o.into(),
            repo: r.map(String::from),
        };
        assert_eq!(Principal::for_path("/app"), Principal::App);
        assert_eq!(
            Principal::for_path("/app/installations/7/access_tokens"),
            Principal::App
        );
        assert_eq!(
            Principal::for_path("/orgs/Acme/installation"),
            Principal::App
        );
        assert_eq!(
            Principal::for_path("/repos/acme/api/installation"),
            Principal::App
        );
        assert_eq!(
            Principal::for_path("/orgs/Acme/actions/secrets?per_page=100"),
            owner("acme", None)
        );
        assert_eq!(
            Principal::for_path("/repos/acme/api/environments/prod/secrets"),
            owner("acme", Some("api"))
        );
        assert_eq!(Principal::for_path("/rate_limit"), Principal::App);
    }

    #[tokio::test]
    async fn installation_paths_take_the_installation_set_around_the_call() {
        let inside = AS_INSTALLATION
            .scope(42, async {
                Principal::for_path("/installation/repositories?page=2")
            })
            .await;
        assert_eq!(inside, Principal::Installation(42));
        assert_eq!(
            Principal::for_path("/installation/repositories"),
            Principal::App
        );
    }

    #[test]
    fn a_token_is_refreshed_a_fifth_of_its_life_early_and_at_most_five_minutes() {
        assert_eq!(
            refresh_margin(Duration::from_secs(3600)),
            Duration::from_secs(300)
        );
        assert_eq!(
            refresh_margin(Duration::from_secs(2)),
            Duration::from_millis(400)
        );
    }
}
