//! Vault login that lasts: AppRole login, token lookup and renewal, and a new login when a
//! token can no longer be renewed. Tokens and secret ids stay in `SecretString`s; answers
//! that repeat a token are wiped unread.

use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;

use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};
use zeroize::Zeroizing;

use super::error::SourceError;
use super::vault::{into_secret, request_error, status_error, wipe, Vault};

/// Where the default AppRole auth method is mounted.
pub const DEFAULT_APPROLE_MOUNT: &str = "approle";

/// AppRole credentials. The secret id is read again from its file at each login, so a file
/// that another process rotates (Vault Agent, a Kubernetes secret) keeps working.
#[derive(Clone)]
pub struct AppRole {
    /// Mount of the auth method (`VAULT_APPROLE_MOUNT`, default `approle`).
    pub mount: String,
    pub role_id: SecretString,
    pub secret_id: SecretId,
}

/// Where the AppRole secret id comes from.
#[derive(Clone)]
pub enum SecretId {
    /// `VAULT_SECRET_ID`.
    Value(SecretString),
    /// `VAULT_SECRET_ID_FILE`: the file's content, without surrounding whitespace.
    File(PathBuf),
}

impl fmt::Debug for AppRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secret_id = match &self.secret_id {
            SecretId::Value(_) => "[from VAULT_SECRET_ID]".to_string(),
            SecretId::File(path) => format!("[from file {}]", path.display()),
        };
        f.debug_struct("AppRole")
            .field("mount", &self.mount)
            .field("secret_id", &secret_id)
            .finish_non_exhaustive()
    }
}

impl AppRole {
    /// `VAULT_ROLE_ID` with `VAULT_SECRET_ID` (preferred) or `VAULT_SECRET_ID_FILE`, and
    /// `VAULT_APPROLE_MOUNT`; `None` unless a role id and one of the secret id variables
    /// are set. `get` treats empty variables as unset.
    pub(super) fn from_lookup(get: &impl Fn(&str) -> Option<String>) -> Option<AppRole> {
        let role_id = SecretString::from(get("VAULT_ROLE_ID")?);
        let secret_id = match (get("VAULT_SECRET_ID"), get("VAULT_SECRET_ID_FILE")) {
            (Some(v), _) => SecretId::Value(SecretString::from(v)),
            (None, Some(path)) => SecretId::File(PathBuf::from(path)),
            (None, None) => return None,
        };
        Some(AppRole {
            mount: get("VAULT_APPROLE_MOUNT")
                .map(|m| m.trim_matches('/').to_string())
                .unwrap_or_else(|| DEFAULT_APPROLE_MOUNT.to_string()),
            role_id,
            secret_id,
        })
    }

    fn secret_id(&self) -> Result<SecretString, SourceError> {
        match &self.secret_id {
            SecretId::Value(v) => Ok(v.clone()),
            SecretId::File(path) => {
                let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
                    SourceError::InvalidConfig {
                        setting: "VAULT_SECRET_ID_FILE",
                        message: format!("{}: {e}", path.display()),
                    }
                })?);
                let id = text.trim();
                if id.is_empty() {
                    return Err(SourceError::InvalidConfig {
                        setting: "VAULT_SECRET_ID_FILE",
                        message: format!("{} is empty", path.display()),
                    });
                }
                Ok(SecretString::from(id))
            }
        }
    }
}

/// What Vault says about the token in use (`auth/token/lookup-self`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenInfo {
    /// Whether the token expires at all (a root token does not).
    pub expires: bool,
    /// Time left, in whole seconds as Vault counts them (zero in a token's last second).
    pub ttl: Duration,
    /// The TTL the token was created with (what a renewal asks for again).
    pub creation_ttl: Duration,
    pub renewable: bool,
}

/// What `refresh_token` found and did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenAction {
    /// The token has no TTL: nothing to do, ever.
    NeverExpires,
    /// The token has enough time left.
    Valid,
    /// The token was renewed.
    Renewed,
    /// A new token was obtained with AppRole.
    LoggedIn,
    /// The token will expire and cannot be renewed (or no further), and there is no AppRole
    /// to log in with: Vault requests will fail once it expires.
    CannotRenew,
}

/// The outcome of one `refresh_token` step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenState {
    pub action: TokenAction,
    /// Time left on the token after the step (`None`: it never expires).
    pub ttl: Option<Duration>,
    /// When to call `refresh_token` again.
    pub check_again_in: Duration,
}

/// How often to look at a token that never expires (it may still be revoked).
const NEVER_EXPIRES_CHECK: Duration = Duration::from_secs(300);
const MIN_CHECK: Duration = Duration::from_millis(250);

impl TokenState {
    fn new(action: TokenAction, ttl: Duration, full: Duration) -> TokenState {
        // Look again a third of the way through the token's life, and at least twice
        // before the time left runs out.
        let check = (full / 3)
            .min(ttl / 2)
            .clamp(MIN_CHECK, NEVER_EXPIRES_CHECK);
        TokenState {
            action,
            ttl: Some(ttl),
            check_again_in: check,
        }
    }
}

impl Vault {
    /// Successful AppRole logins since this client was built.
    pub fn logins(&self) -> u64 {
        self.logins.load(Ordering::Relaxed)
    }

    /// Logs in with AppRole when there is no token yet (concurrent callers log in once).
    /// Without AppRole there is nothing to do.
    pub(super) async fn ensure_token(&self) -> Result<(), SourceError> {
        if self.has_token() || self.approle().is_none() {
            return Ok(());
        }
        let _guard = self.login_lock.lock().await;
        if self.has_token() {
            return Ok(());
        }
        self.login_locked().await.map(|_| ())
    }

    /// Logs in again after a request was refused with the token of `generation`, unless
    /// another request already replaced that token.
    pub(super) async fn login_again(&self, generation: u64) -> Result<(), SourceError> {
        let _guard = self.login_lock.lock().await;
        if self.token_generation() != generation {
            return Ok(());
        }
        self.login_locked().await.map(|_| ())
    }

    /// Logs in with AppRole (`POST /v1/auth/{mount}/login`) and uses the new token from now
    /// on. Returns the token's TTL.
    pub async fn login(&self) -> Result<Duration, SourceError> {
        let _guard = self.login_lock.lock().await;
        self.login_locked().await
    }

    async fn login_locked(&self) -> Result<Duration, SourceError> {
        let approle = self.approle().ok_or_else(|| SourceError::InvalidConfig {
            setting: "VAULT_ROLE_ID",
            message: "no AppRole credentials to log in with".to_string(),
        })?;
        let path = format!("auth/{}/login", approle.mount);
        let secret_id = approle.secret_id()?;
        let body = Zeroizing::new(
            serde_json::to_vec(&json!({
                "role_id": approle.role_id.expose_secret(),
                "secret_id": secret_id.expose_secret(),
            }))
            .expect("a JSON object serializes"),
        );
        let mut answer = self
            .send_json(Method::POST, "login", &path, Some(body.to_vec()), false)
            .await?;
        let token = answer
            .pointer_mut("/auth/client_token")
            .map(Value::take)
            .filter(|t| t.as_str().is_some_and(|s| !s.is_empty()))
            .map(into_secret);
        let ttl = lease_ttl(&answer);
        wipe(&mut answer);
        let token = token.ok_or_else(|| SourceError::Vault {
            op: "login",
            path: path.clone(),
            status: None,
            message: "the answer holds no token".to_string(),
        })?;
        self.set_token(token)?;
        self.logins.fetch_add(1, Ordering::Relaxed);
        tracing::info!(mount = %approle.mount, ttl_secs = ttl.as_secs(), "logged in to Vault with AppRole");
        Ok(ttl)
    }

    /// `GET /v1/auth/token/lookup-self`: the token's TTL and whether it renews.
    pub async fn lookup_token(&self) -> Result<TokenInfo, SourceError> {
        let mut answer = self
            .send_json(
                Method::GET,
                "token lookup",
                "auth/token/lookup-self",
                None,
                true,
            )
            .await?;
        let secs = |name: &str| {
            answer
                .pointer(&format!("/data/{name}"))
                .and_then(Value::as_u64)
                .map(Duration::from_secs)
                .unwrap_or_default()
        };
        let info = TokenInfo {
            expires: answer
                .pointer("/data/expire_time")
                .is_some_and(|t| !t.is_null())
                || !secs("ttl").is_zero(),
            ttl: secs("ttl"),
            creation_ttl: secs("creation_ttl"),
            renewable: answer
                .pointer("/data/renewable")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        };
        wipe(&mut answer);
        Ok(info)
    }

    /// `POST /v1/auth/token/renew-self` asking for `increment` more; returns the TTL Vault
    /// granted (less than asked when the token's maximum TTL is near).
    pub async fn renew_token(&self, increment: Duration) -> Result<Duration, SourceError> {
        let body =
            serde_json::to_vec(&json!({ "increment": format!("{}s", increment.as_secs().max(1)) }))
                .expect("a JSON object serializes");
        let mut answer = self
            .send_json(
                Method::POST,
                "token renew",
                "auth/token/renew-self",
                Some(body),
                true,
            )
            .await?;
        let ttl = lease_ttl(&answer);
        wipe(&mut answer);
        Ok(ttl)
    }

    /// One step of keeping the token alive; call it again after `check_again_in`.
    ///
    /// A token with two thirds of its life or less left is renewed for its full TTL again.
    /// When Vault grants less (the token's maximum TTL is near), or refuses the renewal or
    /// the token, rotor logs in again with AppRole if it can. Without AppRole a token that
    /// cannot be renewed any more is reported (`CannotRenew`) and used until it expires.
    pub async fn refresh_token(&self) -> Result<TokenState, SourceError> {
        let can_login = self.approle().is_some();
        if !self.has_token() && can_login {
            return self.login_state().await;
        }
        let info = match self.lookup_token().await {
            Ok(info) => info,
            Err(SourceError::Vault {
                status: Some(403), ..
            }) if can_login => return self.login_state().await,
            Err(e) => return Err(e),
        };
        if !info.expires {
            return Ok(TokenState {
                action: TokenAction::NeverExpires,
                ttl: None,
                check_again_in: NEVER_EXPIRES_CHECK,
            });
        }
        let full = if info.creation_ttl.is_zero() {
            info.ttl.max(Duration::from_secs(1))
        } else {
            info.creation_ttl
        };
        if info.ttl > full * 2 / 3 {
            return Ok(TokenState::new(TokenAction::Valid, info.ttl, full));
        }
        if info.renewable {
            match self.renew_token(full).await {
                Ok(ttl) if ttl >= full => {
                    tracing::debug!(ttl_secs = ttl.as_secs(), "renewed the Vault token");
                    return Ok(TokenState::new(TokenAction::Renewed, ttl, full));
                }
                // Less than asked: the token's maximum TTL is near. With AppRole, log in
                // again now; a plain token is used for as long as it lasts.
                Ok(ttl) if !can_login && ttl > info.ttl => {
                    tracing::warn!(
                        ttl_secs = ttl.as_secs(),
                        "the Vault token nears its maximum TTL"
                    );
                    return Ok(TokenState::new(TokenAction::Renewed, ttl, full));
                }
                Ok(ttl) if !can_login => {
                    tracing::warn!(
                        ttl_secs = ttl.as_secs(),
                        "the Vault token reached its maximum TTL and cannot be renewed further"
                    );
                    return Ok(TokenState::new(TokenAction::CannotRenew, ttl, full));
                }
                Ok(_) => {}
                Err(e) if !can_login => return Err(e),
                Err(e) => {
                    tracing::warn!(error = %e, "renewing the Vault token failed; logging in again")
                }
            }
        } else if !can_login {
            tracing::warn!(
                ttl_secs = info.ttl.as_secs(),
                "the Vault token is not renewable and will expire"
            );
            return Ok(TokenState::new(TokenAction::CannotRenew, info.ttl, full));
        }
        self.login_state().await
    }

    async fn login_state(&self) -> Result<TokenState, SourceError> {
        let ttl = self.login().await?;
        if ttl.is_zero() {
            return Ok(TokenState {
                action: TokenAction::LoggedIn,
                ttl: None,
                check_again_in: NEVER_EXPIRES_CHECK,
            });
        }
        Ok(TokenState::new(TokenAction::LoggedIn, ttl, ttl))
    }

    /// A request with a JSON answer; the body is wiped after parsing. `with_token` sends the
    /// current token (login does not).
    async fn send_json(
        &self,
        method: Method,
        op: &'static str,
        path: &str,
        body: Option<Vec<u8>>,
        with_token: bool,
    ) -> Result<Value, SourceError> {
        let mut request = self
            .http
            .request(method, self.url(path))
            .header("X-Vault-Request", "true");
        if with_token {
            request = request.header("X-Vault-Token", self.token().expose_secret());
        }
        if let Some(ns) = &self.namespace {
            request = request.header("X-Vault-Namespace", ns);
        }
        if let Some(body) = body {
            request = request
                .header("Content-Type", "application/json")
                .body(Zeroizing::new(body).to_vec());
        }
        let response = request
            .send()
            .await
            .map_err(|e| request_error(op, path, &e))?;
        let status = response.status();
        let bytes = Zeroizing::new(
            response
                .bytes()
                .await
                .map_err(|e| request_error(op, path, &e))?
                .to_vec(),
        );
        if !status.is_success() {
            return Err(status_error(op, path, status, &bytes));
        }
        serde_json::from_slice(&bytes).map_err(|_| SourceError::Vault {
            op,
            path: path.to_string(),
            status: Some(status.as_u16()),
            message: "the answer is not JSON".to_string(),
        })
    }
}


/// How long a login or renewal answer says its token lives (zero when it does not say).
fn lease_ttl(answer: &Value) -> Duration {
    answer
        .pointer("/auth/lease_duration")
        .and_then(Value::as_u64)
        .map(Duration::from_secs)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(k, v)| *k == name && !v.is_empty())
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn approle_needs_a_role_id_and_a_secret_id_from_a_variable_or_a_file() {
        let both = [("VAULT_ROLE_ID", "role"), ("VAULT_SECRET_ID", "sid-canary")];
        let a = AppRole::from_lookup(&lookup(&both)).expect("complete");
        assert_eq!(a.mount, "approle");
        assert!(matches!(a.secret_id, SecretId::Value(_)));
        assert!(!format!("{a:?}").contains("sid-canary"));

        let file = [
            ("VAULT_ROLE_ID", "role"),
            ("VAULT_SECRET_ID_FILE", "/run/secrets/sid"),
            ("VAULT_APPROLE_MOUNT", "/ci-approle/"),
        ];
        let a = AppRole::from_lookup(&lookup(&file)).expect("complete");
        assert_eq!(a.mount, "ci-approle");
        assert!(
            matches!(&a.secret_id, SecretId::File(p) if p == &PathBuf::from("/run/secrets/sid"))
        );

        assert!(AppRole::from_lookup(&lookup(&[("VAULT_ROLE_ID", "role")])).is_none());
        assert!(AppRole::from_lookup(&lookup(&[("VAULT_SECRET_ID", "x")])).is_none());
    }

    #[test]
    fn a_secret_id_file_is_read_trimmed_and_an_empty_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sid");
        std::fs::write(&path, "  sid-1234\n").unwrap();
        let a = AppRole {
            mount: "approle".into(),
            role_id: SecretString::from("r"),
            secret_id: SecretId::File(path.clone()),
        };
        assert_eq!(a.secret_id().unwrap().expose_secret(), "sid-1234");
        std::fs::write(&path, "\n").unwrap();
        assert!(matches!(
            a.secret_id(),
            Err(SourceError::InvalidConfig {
                setting: "VAULT_SECRET_ID_FILE",
                ..
            })
        ));
    }

    #[test]
    fn token_checks_come_a_third_of_the_way_through_its_life_and_before_it_runs_out() {
        let s = TokenState::new(
            TokenAction::Valid,
            Duration::from_secs(3),
            Duration::from_secs(3),
        );
        assert_eq!(s.check_again_in, Duration::from_secs(1));
        let s = TokenState::new(
            TokenAction::Valid,
            Duration::from_secs(1),
            Duration::from_secs(30),
        );
        assert_eq!(s.check_again_in, Duration::from_millis(500));
        let s = TokenState::new(
            TokenAction::Valid,
            Duration::from_secs(86400),
            Duration::from_secs(86400),
        );
        assert_eq!(s.check_again_in, NEVER_EXPIRES_CHECK);
    }
}
