//! GitHub App authentication: RS256 JWTs for the App itself, the installation of each
//! owner, and installation tokens cached until shortly before they expire.
//!
//! One App may be installed on many organizations. Each installation has its own token;
//! requests are routed to the right one by the owner in their path (`/repos/{owner}/...`,
//! `/orgs/{org}/...`). Tokens are minted on first use, shared by every request for that
//! installation, and minted again when little of their life is left (a fifth of it, at
//! most five minutes), so a long run never sends an expired token. Should GitHub still
//! answer 401 (clocks disagree), the client drops the token and retries once.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::header::HeaderValue;
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::error::{ErrorKind, GitHubError};
use super::headers;
use super::routes;
use super::transport::{Authorizer, Transport};
use crate::model::Installation;

/// The error wording lives with the errors; kept here for callers of the old path.
pub use super::error::{explain, permissions_for};
pub use super::identity::{AuthIdentity, Authorization};

/// How rotor identifies itself as a GitHub App: `GITHUB_APP_ID` (or `GITHUB_APP_CLIENT_ID`)
/// and `GITHUB_APP_PRIVATE_KEY_FILE`.
pub struct AppConfig {
    /// The JWT's `iss`: the App's client id (GitHub recommends it) or its numeric app id.
    pub issuer: String,
    pub key: AppKey,
}

/// Where the App's private key (PEM, PKCS#1 as GitHub hands it out, or PKCS#8) is.
pub enum AppKey {
    File(PathBuf),
    Pem(SecretString),
}

impl std::fmt::Debug for AppConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let key = match &self.key {
            AppKey::File(p) => format!("file {}", p.display()),
            AppKey::Pem(_) => "<redacted PEM>".to_string(),
        };
        f.debug_struct("AppConfig")
            .field("issuer", &self.issuer)
            .field("key", &key)
            .finish()
    }
}

/// The App's key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum AppKeyError {
    #[error("cannot read the GitHub App private key {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the GitHub App private key{} is not an RSA private key in PEM form: {reason}", .path.as_ref().map(|p| format!(" {}", p.display())).unwrap_or_default())]
    Invalid {
        path: Option<PathBuf>,
        reason: String,
    },
    #[error("the GitHub App id is empty")]
    NoIssuer,
}

/// The JWT's lifetime: GitHub refuses an `exp` more than 10 minutes ahead; 9 leaves margin.
pub const JWT_LIFETIME: Duration = Duration::from_secs(9 * 60);
/// How far `iat` is set in the past, against clock drift (GitHub's advice: 60 s).
pub const JWT_BACKDATE: Duration = Duration::from_secs(60);
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
enum Lookup {
    Found(Installation),
    Missing(String),
}

type Slot<T> = Arc<tokio::sync::Mutex<Option<T>>>;

/// GitHub App credentials and the installations and tokens learnt with them.
pub struct AppAuth {
    issuer: String,
    key: EncodingKey,
    jwt: Mutex<Option<(HeaderValue, i64)>>,
    owners: Mutex<HashMap<String, Slot<Lookup>>>,
    tokens: Mutex<HashMap<u64, Slot<CachedToken>>>,
    /// Tokens minted so far (for logs and tests).
    minted: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for AppAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppAuth")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct Claims<'a> {
    iat: i64,
    exp: i64,
    iss: Issuer<'a>,
}

/// A numeric app id is sent as a JSON number, a client id as a string.
#[derive(Serialize)]
#[serde(untagged)]
enum Issuer<'a> {
    Id(u64),
    ClientId(&'a str),
}

fn sensitive_bearer(token: &str) -> Result<HeaderValue, ()> {
    let mut v = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| ())?;
    v.set_sensitive(true);
    Ok(v)
}

fn local_error(method: Method, path: &str, kind: ErrorKind, message: String) -> GitHubError {
    GitHubError::local(kind, method, path.to_string(), message)
}

impl AppAuth {
    /// Reads and checks the App's key.
    pub fn new(config: &AppConfig) -> Result<Self, AppKeyError> {
        let issuer = config.issuer.trim().to_string();
        if issuer.is_empty() {
            return Err(AppKeyError::NoIssuer);
        }
        let (pem, path) = match &config.key {
            AppKey::File(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| AppKeyError::Read {
                    path: path.clone(),
                    source,
                })?;
                (SecretString::from(text), Some(path.clone()))
            }
            AppKey::Pem(pem) => (pem.clone(), None),
        };
        let key = EncodingKey::from_rsa_pem(pem.expose_secret().as_bytes()).map_err(|e| {
            AppKeyError::Invalid {
                path: path.clone(),
                reason: e.to_string(),
            }
        })?;
        let auth = AppAuth {
            issuer,
            key,
            jwt: Mutex::new(None),
            owners: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
            minted: std::sync::atomic::AtomicU64::new(0),
        };
        // Sign once now, so a key that cannot sign fails at start rather than mid-run.
        auth.sign_jwt(Utc::now().timestamp())
            .map_err(|reason| AppKeyError::Invalid { path, reason })?;
        Ok(auth)
    }

    /// The JWT's `iss` as configured.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// How many installation tokens this process has minted.
    pub fn tokens_minted(&self) -> u64 {
        self.minted.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn sign_jwt(&self, now: i64) -> Result<(HeaderValue, i64), String> {
        let iat = now - JWT_BACKDATE.as_secs() as i64;
        let exp = now + JWT_LIFETIME.as_secs() as i64;
        let iss = match self.issuer.parse::<u64>() {
            Ok(id) => Issuer::Id(id),
            Err(_) => Issuer::ClientId(&self.issuer),
        };
        let jwt = jsonwebtoken::encode(
            &Header::new(Algorithm::RS256),
            &Claims { iat, exp, iss },
            &self.key,
        )
        .map_err(|e| e.to_string())?;
        let header =
            sensitive_bearer(&jwt).map_err(|_| "the JWT is not a header value".to_string())?;
        Ok((header, exp))
    }

    /// A JWT for the App endpoints, reused until a minute before it expires.
    pub fn jwt_header(&self) -> Result<HeaderValue, String> {
        let now = Utc::now().timestamp();
        let mut cached = self.jwt.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((header, exp)) = cached.as_ref() {
            if now < exp - 60 {
                return Ok(header.clone());
            }
        }
        let (header, exp) = self.sign_jwt(now)?;
        *cached = Some((header.clone(), exp));
        Ok(header)
    }

    /// The header and identity for a request to `path`, minting what is missing.
    async fn authorization(
        &self,
        transport: &Transport,
        method: &Method,
        path: &str,
    ) -> Result<Authorization, GitHubError> {
        let id = match Principal::for_path(path) {
            Principal::App => {
                let header = self
                    .jwt_header()
                    .map_err(|m| local_error(method.clone(), path, ErrorKind::InvalidInput, m))?;
                return Ok(Authorization {
                    header: Some(header),
                    identity: AuthIdentity::App,
                    valid_until: None,
                });
            }
            Principal::Installation(id) => id,
            Principal::Owner { owner, repo } => {
                match self
                    .installation(transport, &owner, repo.as_deref())
                    .await?
                {
                    Lookup::Found(i) => i.id,
                    Lookup::Missing(why) => {
                        return Err(local_error(method.clone(), path, ErrorKind::NotFound, why))
                    }
                }
            }
        };
        let (header, valid_until) = self.installation_header(transport, id).await?;
        Ok(Authorization {
            header: Some(header),
            identity: AuthIdentity::Installation(id),
            valid_until: Some(valid_until),
        })
    }

    /// The identity a request to `path` is sent as, finding the installation if needed.
    async fn identity_of(
        &self,
        transport: &Transport,
        path: &str,
    ) -> Result<AuthIdentity, GitHubError> {
        Ok(match Principal::for_path(path) {
            Principal::App => AuthIdentity::App,
            Principal::Installation(id) => AuthIdentity::Installation(id),
            Principal::Owner { owner, repo } => {
                match self
                    .installation(transport, &owner, repo.as_deref())
                    .await?
                {
                    Lookup::Found(i) => AuthIdentity::Installation(i.id),
                    Lookup::Missing(_) => AuthIdentity::App,
                }
            }
        })
    }

    /// Forgets the token used for `path` (GitHub answered 401 with it). True when there
    /// was one to forget, i.e. a retry with a fresh token makes sense.
    fn forget_token(&self, path: &str) -> bool {
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

    /// The installation of `owner` (looked up once per run; "not installed" is kept too).
    async fn installation(
        &self,
        transport: &Transport,
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
            Some(i) => Lookup::Found(i),
            None => Lookup::Missing(format!(
                "the GitHub App (iss {}) is not installed on {owner}: install it there, or remove {owner} from the policies",
                self.issuer
            )),
        };
        *guard = Some(lookup.clone());
        Ok(lookup)
    }

    /// The installation of `owner`, or `None` when the App is not installed there.
    /// `repo_hint`: a repository of `owner`, asked about when `owner` is no organization.
    pub(crate) async fn installation_for(
        &self,
        transport: &Transport,
        owner: &str,
        repo_hint: Option<&str>,
    ) -> Result<Option<Installation>, GitHubError> {
        Ok(
            match self.installation(transport, owner, repo_hint).await? {
                Lookup::Found(i) => Some(i),
                Lookup::Missing(_) => None,
            },
        )
    }

    /// A current token for installation `id`: the cached one, or a new one. Requests for
    /// one installation wait for a single mint rather than each minting their own.
    async fn installation_header(
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
        let minted = Box::pin(mint_token(transport, id)).await?;
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
        self.minted
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
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

impl Authorizer for AppAuth {
    fn authorize<'a>(
        &'a self,
        transport: &'a Transport,
        method: &'a Method,
        path: &'a str,
    ) -> BoxFuture<'a, Result<Authorization, GitHubError>> {
        Box::pin(self.authorization(transport, method, path))
    }

    fn identity<'a>(
        &'a self,
        transport: &'a Transport,
        path: &'a str,
    ) -> BoxFuture<'a, Result<AuthIdentity, GitHubError>> {
        Box::pin(self.identity_of(transport, path))
    }

    fn invalidate(&self, path: &str) -> bool {
        self.forget_token(path)
    }

    fn budget_identity(&self) -> AuthIdentity {
        AuthIdentity::App
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
async fn mint_token(transport: &Transport, id: u64) -> Result<Minted, GitHubError> {
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
    let reply = transport
        .send_json(Method::POST, &path, &serde_json::json!({}))
        .await?;
    let bad = |msg: String| {
        GitHubError::decode(
            Method::POST,
            path.clone(),
            reply.status,
            &reply.headers,
            msg,
        )
    };
    let body: Body = serde_json::from_slice(&reply.body).map_err(|e| bad(e.to_string()))?;
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

    #[test]
    fn the_jwt_is_rs256_backdated_a_minute_and_expires_within_ten_minutes() {
        let pair = github_emulator::AppKeyPair::generate();
        let auth = AppAuth::new(&AppConfig {
            issuer: "12345".into(),
            key: AppKey::Pem(pair.private_pem.clone()),
        })
        .expect("a PKCS#8 key");
        let before = Utc::now().timestamp();
        let header = auth.jwt_header().expect("signs");
        assert!(header.is_sensitive());
        let jwt = header
            .to_str()
            .expect("ASCII")
            .trim_start_matches("Bearer ")
            .to_string();
        let key =
            jsonwebtoken::DecodingKey::from_rsa_pem(pair.public_pem.as_bytes()).expect("SPKI");
        let mut validation = jsonwebtoken::Validation::new(Algorithm::RS256);
        validation.required_spec_claims = Default::default();
        validation.validate_exp = false;
        let data = jsonwebtoken::decode::<serde_json::Value>(&jwt, &key, &validation)
            .expect("signed with the App's key");
        let (iat, exp) = (
            data.claims["iat"].as_i64().unwrap(),
            data.claims["exp"].as_i64().unwrap(),
        );
        assert!(
            (before - 61..=before - 59).contains(&iat),
            "iat {iat}, now {before}"
        );
        assert!(
            exp > before && exp <= before + 600,
            "exp {exp}, now {before}"
        );
        assert_eq!(
            data.claims["iss"],
            serde_json::json!(12345),
            "a numeric app id is a number"
        );
        // Reused while young.
        assert_eq!(
            auth.jwt_header().expect("signs").to_str().unwrap(),
            header.to_str().unwrap()
        );
    }

    #[test]
    fn a_key_that_is_not_pem_is_refused_without_echoing_it() {
        let err = AppAuth::new(&AppConfig {
            issuer: "Iv1.abc".into(),
            key: AppKey::Pem(SecretString::from("not-a-key-hunter2")),
        })
        .expect_err("refused");
        assert!(!err.to_string().contains("hunter2"), "{err}");
        let err = AppAuth::new(&AppConfig {
            issuer: " ".into(),
            key: AppKey::Pem(SecretString::from("x")),
        })
        .expect_err("refused");
        assert!(matches!(err, AppKeyError::NoIssuer));
    }
}
