//! Vault login that lasts: AppRole login, token lookup and renewal, and a new login when a
//! token can no longer be renewed. Tokens and secret ids stay in `SecretString`s; answers
//! that repeat a token are wiped unread.

use std::sync::atomic::Ordering;
use std::time::Duration;

use reqwest::Method;
use secrecy::ExposeSecret;
use serde_json::{json, Value};
use zeroize::Zeroizing;

use super::wire::{into_secret, read_body, request_error, status_error, wipe};
use super::Vault;
use crate::source::auth::{
    read_token_file, JwtSource, Login, TokenAction, TokenInfo, TokenState, NEVER_EXPIRES_CHECK,
};
use crate::source::error::SourceError;

impl Vault {
    /// Successful AppRole logins since this client was built.
    pub fn logins(&self) -> u64 {
        self.logins.load(Ordering::Relaxed)
    }

    /// Logs in with AppRole when there is no token yet (concurrent callers log in once).
    /// Without AppRole there is nothing to do.
    pub(super) async fn ensure_token(&self) -> Result<(), SourceError> {
        if self.has_token() || self.login_method().is_none() {
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
        let method = self
            .login_method()
            .ok_or_else(|| SourceError::InvalidConfig {
                setting: "VAULT_AUTH",
                message: "no login method (AppRole, JWT, Kubernetes) to log in with".to_string(),
            })?;
        let path = format!("auth/{}/login", method.mount());
        let body = Zeroizing::new(self.login_body(method).await?);
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
        tracing::info!(method = method.name(), mount = %method.mount(), ttl_secs = ttl.as_secs(), "logged in to Vault");
        Ok(ttl)
    }

    /// The body of the login request of `method`, serialized (the caller wipes it).
    async fn login_body(&self, method: &Login) -> Result<Vec<u8>, SourceError> {
        let body = match method {
            Login::AppRole(approle) => {
                let secret_id = approle.secret_id()?;
                json!({
                    "role_id": approle.role_id.expose_secret(),
                    "secret_id": secret_id.expose_secret(),
                })
            }
            Login::Jwt(jwt) => {
                let token = match &jwt.source {
                    JwtSource::File(path) => read_token_file("VAULT_JWT_FILE", path)?,
                    JwtSource::Actions {
                        url,
                        token,
                        audience,
                    } => {
                        self.actions_id_token(url, token, audience.as_deref())
                            .await?
                    }
                };
                json!({ "role": jwt.role, "jwt": token.expose_secret() })
            }
            Login::Kubernetes(k8s) => {
                let token = read_token_file("VAULT_K8S_TOKEN_PATH", &k8s.token_path)?;
                json!({ "role": k8s.role, "jwt": token.expose_secret() })
            }
        };
        let bytes = serde_json::to_vec(&body).expect("a JSON object serializes");
        let mut body = body;
        wipe(&mut body);
        Ok(bytes)
    }

    /// A fresh ID token from GitHub Actions' runtime (`GET $ACTIONS_ID_TOKEN_REQUEST_URL
    /// &audience=...` with the request token): an ID token lives minutes, so each login asks.
    async fn actions_id_token(
        &self,
        url: &str,
        request_token: &secrecy::SecretString,
        audience: Option<&str>,
    ) -> Result<secrecy::SecretString, SourceError> {
        let op = "ID token request";
        let shown = "ACTIONS_ID_TOKEN_REQUEST_URL";
        let mut url = reqwest::Url::parse(url).map_err(|e| SourceError::InvalidConfig {
            setting: "ACTIONS_ID_TOKEN_REQUEST_URL",
            message: format!("not a URL: {e}"),
        })?;
        if let Some(aud) = audience {
            url.query_pairs_mut().append_pair("audience", aud);
        }
        let mut auth = reqwest::header::HeaderValue::from_str(&format!(
            "Bearer {}",
            request_token.expose_secret()
        ))
        .map_err(|_| SourceError::InvalidConfig {
            setting: "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
            message: "not a valid header value".to_string(),
        })?;
        auth.set_sensitive(true);
        let response = reqwest::Client::builder()
            .timeout(super::REQUEST_TIMEOUT)
            .redirect(crate::net::same_origin_redirects(
                "GitHub Actions' ID token endpoint",
            ))
            .build()
            .map_err(|e| request_error(op, shown, &e))?
            .get(url)
            .header(reqwest::header::AUTHORIZATION, auth)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| request_error(op, shown, &e))?;
        let status = response.status();
        let bytes = read_body(response, op, shown).await?;
        if !status.is_success() {
            return Err(SourceError::Vault {
                op,
                path: shown.to_string(),
                status: Some(status.as_u16()),
                message: "the Actions runtime refused to issue an ID token (does the job have `permissions: id-token: write`?)".to_string(),
            });
        }
        let mut answer: Value = serde_json::from_slice(&bytes).map_err(|_| SourceError::Vault {
            op,
            path: shown.to_string(),
            status: Some(status.as_u16()),
            message: "the answer is not JSON".to_string(),
        })?;
        let token = answer
            .get_mut("value")
            .map(Value::take)
            .filter(|v| v.as_str().is_some_and(|s| !s.is_empty()))
            .map(into_secret);
        wipe(&mut answer);
        token.ok_or_else(|| SourceError::Vault {
            op,
            path: shown.to_string(),
            status: Some(status.as_u16()),
            message: "the answer holds no `value`".to_string(),
        })
    }

    /// `POST /v1/sys/capabilities-self`: what the token may do on each of `paths`
    /// (`read`, `create`, `update`, ..., `root`, `deny`). Changes nothing.
    pub async fn capabilities(
        &self,
        paths: &[String],
    ) -> Result<std::collections::BTreeMap<String, Vec<String>>, SourceError> {
        self.ensure_token().await?;
        let body = serde_json::to_vec(&json!({ "paths": paths })).expect("JSON serializes");
        let answer = self
            .send_json(
                Method::POST,
                "capabilities",
                "sys/capabilities-self",
                Some(body),
                true,
            )
            .await?;
        let mut out = std::collections::BTreeMap::new();
        for p in paths {
            let caps = answer
                .get(p)
                .or_else(|| {
                    answer.pointer(&format!(
                        "/data/{}",
                        p.replace('~', "~0").replace('/', "~1")
                    ))
                })
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|c| c.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            out.insert(p.clone(), caps);
        }
        Ok(out)
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

    /// Whether the token is accepted: `GET /v1/auth/token/lookup-self` (the answer, which
    /// repeats the token, is dropped unread).
    pub async fn check_token(&self) -> Result<(), SourceError> {
        self.with_login(|| self.check_token_once()).await
    }

    async fn check_token_once(&self) -> Result<(), SourceError> {
        let path = "auth/token/lookup-self";
        let response = self
            .get(path)
            .await
            .map_err(|e| request_error("token lookup", path, &e))?;
        let status = response.status();
        let body = read_body(response, "token lookup", path)
            .await
            .unwrap_or_default();
        if status.is_success() {
            Ok(())
        } else {
            Err(status_error("token lookup", path, status, &body))
        }
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
        let can_login = self.login_method().is_some();
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
            request = request.header("X-Vault-Token", self.token_header());
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
        let bytes = read_body(response, op, path).await?;
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
