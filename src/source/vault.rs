//! Vault / OpenBao: KV v2 reads and check-and-set writes, dynamic reads, health.
//!
//! KV v2 goes through `vaultrs`; what it lacks (a generic read that keeps the lease id, a
//! health check OpenBao answers) is plain HTTP with the same address, TLS roots, namespace
//! and token. Neither the settings nor the client are ever logged: `vaultrs`' own settings
//! print the token in their `Debug`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use reqwest::{StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value};
use vaultrs::api::kv2::requests::SetSecretRequestOptions;
use vaultrs::client::{VaultClient, VaultClientSettingsBuilder};
use vaultrs::error::ClientError;
use vaultrs::kv2;
use zeroize::{Zeroize, Zeroizing};

use super::auth::AppRole;
use super::error::{describe_chain, SourceError};

/// Upper bound for one request to Vault, from connecting to the last byte of the answer.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Upper bound for opening the connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How to reach Vault (from `VAULT_ADDR`, `VAULT_TOKEN`, `VAULT_NAMESPACE`, `VAULT_CACERT`,
/// and for AppRole `VAULT_ROLE_ID` with `VAULT_SECRET_ID` or `VAULT_SECRET_ID_FILE`).
#[derive(Debug, Clone)]
pub struct VaultConfig {
    /// Base address, e.g. `https://vault.example.com:8200`.
    pub addr: String,
    /// The token to start with; empty when rotor logs in with `approle` first.
    pub token: SecretString,
    /// Enterprise / OpenBao namespace, sent as `X-Vault-Namespace`.
    pub namespace: Option<String>,
    /// PEM file with CA certificates trusted for an `https` address, in addition to the
    /// system's roots.
    pub cacert: Option<PathBuf>,
    /// AppRole credentials: rotor logs in with them when it has no token, and again when
    /// its token can no longer be renewed.
    pub approle: Option<AppRole>,
}

impl VaultConfig {
    /// Reads `VAULT_ADDR`, `VAULT_TOKEN`, `VAULT_NAMESPACE`, `VAULT_CACERT` and the AppRole
    /// variables (`VAULT_ROLE_ID`, `VAULT_SECRET_ID` or `VAULT_SECRET_ID_FILE`,
    /// `VAULT_APPROLE_MOUNT`). `None` unless the address and a credential (a token, or a
    /// complete AppRole) are set (and not empty); `missing_from_env` says what is absent.
    pub fn from_env() -> Option<VaultConfig> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// As `from_env`, with the variables looked up through `get`.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Option<VaultConfig> {
        let get = |name: &str| get(name).filter(|v| !v.is_empty());
        let addr = get("VAULT_ADDR")?;
        let approle = AppRole::from_lookup(&get);
        let token = match (get("VAULT_TOKEN"), &approle) {
            (Some(t), _) => SecretString::from(t),
            (None, Some(_)) => SecretString::from(""),
            (None, None) => return None,
        };
        Some(VaultConfig {
            addr,
            token,
            namespace: get("VAULT_NAMESPACE"),
            cacert: get("VAULT_CACERT").map(PathBuf::from),
            approle,
        })
    }

    /// Which of the required variables `from_lookup` found missing, in words
    /// (`"VAULT_TOKEN is not set"`), or `None` when both are there.
    pub fn missing_from_lookup(get: impl Fn(&str) -> Option<String>) -> Option<String> {
        let unset = |name: &str| get(name).is_none_or(|v| v.is_empty());
        if !unset("VAULT_ROLE_ID") && unset("VAULT_TOKEN") {
            let secret_missing = unset("VAULT_SECRET_ID") && unset("VAULT_SECRET_ID_FILE");
            return match (unset("VAULT_ADDR"), secret_missing) {
                (true, true) => Some(
                    "VAULT_ADDR is not set, and VAULT_ROLE_ID needs VAULT_SECRET_ID or VAULT_SECRET_ID_FILE"
                        .to_string(),
                ),
                (true, false) => Some("VAULT_ADDR is not set".to_string()),
                (false, true) => Some(
                    "VAULT_ROLE_ID is set but neither VAULT_SECRET_ID nor VAULT_SECRET_ID_FILE is"
                        .to_string(),
                ),
                (false, false) => None,
            };
        }
        match (unset("VAULT_ADDR"), unset("VAULT_TOKEN")) {
            (true, true) => Some("VAULT_ADDR and VAULT_TOKEN are not set".to_string()),
            (true, false) => Some("VAULT_ADDR is not set".to_string()),
            (false, true) => Some("VAULT_TOKEN is not set".to_string()),
            (false, false) => None,
        }
    }

    /// `missing_from_lookup` over the process environment.
    pub fn missing_from_env() -> Option<String> {
        Self::missing_from_lookup(|name| std::env::var(name).ok())
    }
}

/// A connected Vault / OpenBao client. Its `Debug` shows the address only.
///
/// The token can change while the client is shared (an AppRole login replaces it), so it
/// and the `vaultrs` client built around it sit behind locks held only to clone them.
pub struct Vault {
    kv: RwLock<Arc<VaultClient>>,
    pub(super) http: reqwest::Client,
    base: Url,
    token: RwLock<SecretString>,
    pub(super) namespace: Option<String>,
    /// The settings, kept to build the `vaultrs` client again around a new token.
    config: VaultConfig,
    /// Serializes logins, so that many requests finding no token log in once.
    pub(super) login_lock: tokio::sync::Mutex<()>,
    /// Successful AppRole logins so far.
    pub(super) logins: std::sync::atomic::AtomicU64,
    /// Token replacements so far.
    token_generation: std::sync::atomic::AtomicU64,
}

impl fmt::Debug for Vault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Vault")
            .field("addr", &self.base.as_str())
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

impl Vault {
    /// Builds the clients. Does no I/O except reading the CA file; call `health` to know
    /// whether Vault answers.
    pub fn new(config: &VaultConfig) -> Result<Vault, SourceError> {
        let addr = config.addr.trim().trim_end_matches('/');
        let base = Url::parse(addr).map_err(|e| SourceError::InvalidConfig {
            setting: "VAULT_ADDR",
            message: format!("{addr:?} is not a URL: {e}"),
        })?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(SourceError::InvalidConfig {
                setting: "VAULT_ADDR",
                message: format!("{addr:?} is not an http or https URL"),
            });
        }
        let https = base.scheme() == "https";
        let kv = build_kv(config, addr, https, &config.token)?;

        let mut http = reqwest::Client::builder()
            .tls_backend_rustls()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT);
        if !https {
            // No TLS will happen: skip loading the platform's roots (as vaultrs does).
            http = http.tls_certs_only(Vec::new());
        } else if let Some(path) = &config.cacert {
            let pem = std::fs::read(path).map_err(|e| SourceError::InvalidConfig {
                setting: "VAULT_CACERT",
                message: format!("{}: {e}", path.display()),
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                SourceError::InvalidConfig {
                    setting: "VAULT_CACERT",
                    message: format!("{}: {}", path.display(), describe_chain(&e)),
                }
            })?;
            http = http.tls_certs_merge(certs);
        }
        let http = http.build().map_err(|e| SourceError::InvalidConfig {
            setting: "VAULT_ADDR",
            message: describe_chain(&e),
        })?;

        Ok(Vault {
            kv: RwLock::new(Arc::new(kv)),
            http,
            base,
            token: RwLock::new(config.token.clone()),
            namespace: config.namespace.clone(),
            config: config.clone(),
            login_lock: tokio::sync::Mutex::new(()),
            logins: std::sync::atomic::AtomicU64::new(0),
            token_generation: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// The AppRole credentials, when configured.
    pub fn approle(&self) -> Option<&AppRole> {
        self.config.approle.as_ref()
    }

    /// Whether a token is held (an AppRole-only setup has none until it logs in).
    pub fn has_token(&self) -> bool {
        !self.token().expose_secret().is_empty()
    }

    /// The current token (a clone; the lock is held only for that).
    pub(super) fn token(&self) -> SecretString {
        self.token
            .read()
            .map(|t| t.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// Replaces the token, and the `vaultrs` client with one that sends it.
    pub(super) fn set_token(&self, token: SecretString) -> Result<(), SourceError> {
        let addr = self.config.addr.trim().trim_end_matches('/');
        let kv = build_kv(&self.config, addr, self.base.scheme() == "https", &token)?;
        *self.kv.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(kv);
        *self.token.write().unwrap_or_else(|p| p.into_inner()) = token;
        self.token_generation
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        Ok(())
    }

    /// Counts token replacements: a request remembers it to know whether the token it was
    /// refused with has been replaced since.
    pub(super) fn token_generation(&self) -> u64 {
        self.token_generation
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// The `vaultrs` client, after logging in when there is no token yet.
    async fn kv(&self) -> Result<Arc<VaultClient>, SourceError> {
        self.ensure_token().await?;
        Ok(self
            .kv
            .read()
            .map(|k| Arc::clone(&k))
            .unwrap_or_else(|p| Arc::clone(&p.into_inner())))
    }

    /// Runs a request; when Vault refuses the token (403) and AppRole can log in again, logs
    /// in (once for every request refused with the same token) and runs it once more. A
    /// refused request changed nothing, so running it again is safe.
    async fn with_login<T, F, Fut>(&self, request: F) -> Result<T, SourceError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, SourceError>>,
    {
        let generation = self.token_generation();
        let first = request().await;
        let refused = matches!(
            &first,
            Err(SourceError::Vault {
                status: Some(403),
                ..
            })
        );
        if !refused || self.approle().is_none() {
            return first;
        }
        tracing::info!("Vault refused the token; logging in again with AppRole");
        self.login_again(generation).await?;
        request().await
    }

    /// The current version of a KV v2 secret, from its metadata; `None` when the path has
    /// never been written. A token allowed to read `data/` but not `metadata/` still gets an
    /// answer: the version then comes from the envelope of the latest read (the value read
    /// alongside is wiped unused).
    pub async fn current_version(
        &self,
        mount: &str,
        path: &str,
    ) -> Result<Option<u64>, SourceError> {
        Ok(self
            .current_version_meta(mount, path)
            .await?
            .map(|v| v.version))
    }

    /// As `current_version`, with the time the current version was written (from KV
    /// metadata; `None` when Vault does not say).
    pub async fn current_version_meta(
        &self,
        mount: &str,
        path: &str,
    ) -> Result<Option<KvVersionInfo>, SourceError> {
        self.with_login(|| self.current_version_meta_once(mount, path))
            .await
    }

    async fn current_version_meta_once(
        &self,
        mount: &str,
        path: &str,
    ) -> Result<Option<KvVersionInfo>, SourceError> {
        let (mount, path) = (trim(mount), trim(path));
        let kv = self.kv().await?;
        match kv2::read_metadata(kv.as_ref(), mount, path).await {
            Ok(meta) => Ok((meta.current_version > 0).then(|| KvVersionInfo {
                version: meta.current_version,
                created_time: meta
                    .versions
                    .get(&meta.current_version.to_string())
                    .and_then(|v| parse_time(&v.created_time)),
            })),
            Err(ClientError::APIError { code: 404, .. }) => Ok(None),
            Err(ClientError::APIError { code: 403, .. }) => {
                self.latest_version_from_data(mount, path).await
            }
            Err(e) => Err(vault_error(
                "read metadata",
                format!("{mount}/metadata/{path}"),
                &e,
            )),
        }
    }

    /// Reads one version of a KV v2 secret. Each field's value is wrapped in a secret at
    /// once; a value that is not a JSON string becomes its JSON text (`42`, `true`, `{..}`).
    pub async fn read_version(
        &self,
        mount: &str,
        path: &str,
        version: u64,
    ) -> Result<BTreeMap<String, SecretString>, SourceError> {
        self.with_login(|| self.read_version_once(mount, path, version))
            .await
    }

    async fn read_version_once(
        &self,
        mount: &str,
        path: &str,
        version: u64,
    ) -> Result<BTreeMap<String, SecretString>, SourceError> {
        let (mount, path) = (trim(mount), trim(path));
        let where_ = format!("{mount}/data/{path}");
        let kv = self.kv().await?;
        match kv2::read_version::<Value>(kv.as_ref(), mount, path, version).await {
            Ok(Value::Object(map)) => Ok(into_secrets(map)),
            Ok(mut other) => {
                wipe(&mut other);
                Err(SourceError::Vault {
                    op: "read",
                    path: where_,
                    status: None,
                    message: format!("version {version} holds no key/value map"),
                })
            }
            Err(e) => {
                let mut err = vault_error("read", where_, &e);
                if let SourceError::Vault {
                    status: Some(404),
                    message,
                    ..
                } = &mut err
                {
                    *message = format!(
                        "version {version} not found (never written, deleted or destroyed)"
                    );
                }
                Err(err)
            }
        }
    }

    /// Writes `fields` as a new version of a KV v2 secret with check-and-set: the write
    /// happens only if `cas` is the current version (`0`: only if the path holds no
    /// version yet). Returns the new version. A stale `cas` is a `CasConflict`, and nothing
    /// is written. The whole secret is replaced: fields not given are not kept.
    pub async fn write_cas(
        &self,
        mount: &str,
        path: &str,
        fields: &BTreeMap<String, SecretString>,
        cas: u64,
    ) -> Result<u64, SourceError> {
        self.with_login(|| self.write_cas_once(mount, path, fields, cas))
            .await
    }

    async fn write_cas_once(
        &self,
        mount: &str,
        path: &str,
        fields: &BTreeMap<String, SecretString>,
        cas: u64,
    ) -> Result<u64, SourceError> {
        let (mount, path) = (trim(mount), trim(path));
        let where_ = format!("{mount}/data/{path}");
        let cas32 = u32::try_from(cas).map_err(|_| SourceError::Vault {
            op: "write",
            path: where_.clone(),
            status: None,
            message: format!("version {cas} is beyond what check-and-set can express"),
        })?;
        let options = SetSecretRequestOptions { cas: cas32 };
        let kv = self.kv().await?;
        match kv2::set_with_options(kv.as_ref(), mount, path, &Exposed(fields), options).await {
            Ok(meta) => Ok(meta.version),
            Err(ClientError::APIError { code: 400, errors })
                if errors.iter().any(|e| e.contains("check-and-set")) =>
            {
                Err(SourceError::CasConflict {
                    mount: mount.to_string(),
                    path: path.to_string(),
                    expected: cas,
                })
            }
            Err(e) => Err(vault_error("write", where_, &e)),
        }
    }

    /// Reads an arbitrary path (`GET /v1/{path}`), as dynamic secrets engines serve fresh
    /// credentials (`database/creds/app`, `aws/creds/deploy`). Returns the fields of `data`
    /// and the lease id, if the answer carries one.
    pub async fn read_dynamic(
        &self,
        path: &str,
    ) -> Result<(BTreeMap<String, SecretString>, Option<String>), SourceError> {
        self.with_login(|| self.read_dynamic_once(path)).await
    }

    async fn read_dynamic_once(
        &self,
        path: &str,
    ) -> Result<(BTreeMap<String, SecretString>, Option<String>), SourceError> {
        let path = trim(path);
        let response = self
            .get(path)
            .await
            .map_err(|e| request_error("read", path, &e))?;
        let status = response.status();
        let body = Zeroizing::new(
            response
                .bytes()
                .await
                .map_err(|e| request_error("read", path, &e))?
                .to_vec(),
        );
        if !status.is_success() {
            return Err(status_error("read", path, status, &body));
        }
        let envelope: Envelope = serde_json::from_slice(&body).map_err(|_| SourceError::Vault {
            op: "read",
            path: path.to_string(),
            status: Some(status.as_u16()),
            message: "the response is not a Vault secret (JSON with `data`)".to_string(),
        })?;
        match envelope.into_fields() {
            Some(read) => Ok(read),
            None => Err(SourceError::Vault {
                op: "read",
                path: path.to_string(),
                status: Some(status.as_u16()),
                message: "the response holds no data".to_string(),
            }),
        }
    }

    /// Whether Vault answers and is ready to serve: `GET /v1/sys/health` (200, or a standby
    /// that forwards requests). Sent without the namespace: the endpoint is root-only.
    pub async fn health(&self) -> Result<(), SourceError> {
        let path = "sys/health";
        let response = self
            .send_get(path, false)
            .await
            .map_err(|e| request_error("health", path, &e))?;
        let status = response.status();
        match status.as_u16() {
            200 | 429 | 472 | 473 => Ok(()),
            501 | 503 => Err(SourceError::Vault {
                op: "health",
                path: path.to_string(),
                status: Some(status.as_u16()),
                message: if status.as_u16() == 501 {
                    "Vault is not initialized".to_string()
                } else {
                    "Vault is sealed".to_string()
                },
            }),
            _ => {
                let body = Zeroizing::new(
                    response
                        .bytes()
                        .await
                        .map(|b| b.to_vec())
                        .unwrap_or_default(),
                );
                Err(status_error("health", path, status, &body))
            }
        }
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
        let body = Zeroizing::new(
            response
                .bytes()
                .await
                .map(|b| b.to_vec())
                .unwrap_or_default(),
        );
        if status.is_success() {
            Ok(())
        } else {
            Err(status_error("token lookup", path, status, &body))
        }
    }

    /// `GET /v1/{path}` with the token and namespace headers (after logging in, when there
    /// is no token yet: a failed login leaves the request to go without, and be refused).
    async fn get(&self, path: &str) -> Result<reqwest::Response, reqwest::Error> {
        if let Err(e) = self.ensure_token().await {
            tracing::warn!(error = %e, "Vault login failed");
        }
        self.send_get(path, true).await
    }

    async fn send_get(
        &self,
        path: &str,
        namespaced: bool,
    ) -> Result<reqwest::Response, reqwest::Error> {
        let mut request = self
            .http
            .get(self.url(path))
            .header("X-Vault-Request", "true")
            .header("X-Vault-Token", self.token().expose_secret());
        if let Some(ns) = self.namespace.as_ref().filter(|_| namespaced) {
            request = request.header("X-Vault-Namespace", ns);
        }
        request.send().await
    }

    pub(super) fn url(&self, path: &str) -> Url {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .expect("checked in new: the address can be a base")
            .pop_if_empty()
            .push("v1")
            .extend(path.split('/').filter(|s| !s.is_empty()));
        url
    }

    /// The latest version number, read from the envelope of `GET {mount}/data/{path}`.
    async fn latest_version_from_data(
        &self,
        mount: &str,
        path: &str,
    ) -> Result<Option<KvVersionInfo>, SourceError> {
        let where_ = format!("{mount}/data/{path}");
        let response = self
            .get(&where_)
            .await
            .map_err(|e| request_error("read", &where_, &e))?;
        let status = response.status();
        let body = Zeroizing::new(
            response
                .bytes()
                .await
                .map_err(|e| request_error("read", &where_, &e))?
                .to_vec(),
        );
        if status == StatusCode::NOT_FOUND {
            // 404 also answers for a deleted latest version; its metadata still counts.
            return Ok(serde_json::from_slice::<KvEnvelope>(&body)
                .ok()
                .and_then(|e| e.data)
                .map(|d| d.metadata.info())
                .filter(|v| v.version > 0));
        }
        if !status.is_success() {
            return Err(status_error("read", &where_, status, &body));
        }
        let envelope: KvEnvelope =
            serde_json::from_slice(&body).map_err(|_| SourceError::Vault {
                op: "read",
                path: where_.clone(),
                status: Some(status.as_u16()),
                message: "the response is not a KV v2 secret".to_string(),
            })?;
        let mut data = envelope.data.ok_or_else(|| SourceError::Vault {
            op: "read",
            path: where_.clone(),
            status: Some(status.as_u16()),
            message: "the response holds no data".to_string(),
        })?;
        wipe(&mut data.data);
        Ok(Some(data.metadata.info()).filter(|v| v.version > 0))
    }
}

/// The current version of a KV v2 secret and when it was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KvVersionInfo {
    pub version: u64,
    pub created_time: Option<chrono::DateTime<chrono::Utc>>,
}

/// Vault's RFC 3339 time stamps (`2026-11-25T10:00:00.123456789Z`).
fn parse_time(text: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

/// The `vaultrs` client for `config`, sending `token`. Every setting is given explicitly:
/// vaultrs would otherwise fill the blanks from VAULT_* variables of its own choosing
/// (VAULT_SKIP_VERIFY, VAULT_CLIENT_CERT, ...).
fn build_kv(
    config: &VaultConfig,
    addr: &str,
    https: bool,
    token: &SecretString,
) -> Result<VaultClient, SourceError> {
    let mut settings = VaultClientSettingsBuilder::default();
    settings
        .address(addr)
        .token(token.expose_secret())
        .ca_certs(match (&config.cacert, https) {
            (Some(path), true) => vec![path.to_string_lossy().into_owned()],
            _ => Vec::new(),
        })
        .identity(None)
        .verify(true)
        .timeout(Some(REQUEST_TIMEOUT))
        .namespace(config.namespace.clone());
    let settings = settings.build().map_err(|e| SourceError::InvalidConfig {
        setting: "VAULT_ADDR",
        message: e.to_string(),
    })?;
    VaultClient::new(settings).map_err(|e| SourceError::InvalidConfig {
        setting: "VAULT_CACERT",
        message: describe_chain(&e),
    })
}

/// A mount or path without the slashes around it (`secret/` and `secret` are one mount).
fn trim(s: &str) -> &str {
    s.trim().trim_matches('/')
}

/// The generic envelope of a Vault read.
#[derive(serde::Deserialize)]
struct Envelope {
    #[serde(default)]
    lease_id: String,
    data: Option<Map<String, Value>>,
}

impl Envelope {
    /// The fields of `data` as secrets, and the lease id unless empty; `None` without data.
    fn into_fields(self) -> Option<(BTreeMap<String, SecretString>, Option<String>)> {
        let lease_id = Some(self.lease_id).filter(|l| !l.is_empty());
        self.data.map(|map| (into_secrets(map), lease_id))
    }
}

/// The envelope of a KV v2 data read: `data.data` (the value) and `data.metadata`.
#[derive(serde::Deserialize)]
struct KvEnvelope {
    data: Option<KvData>,
}

#[derive(serde::Deserialize)]
struct KvData {
    #[serde(default)]
    data: Value,
    metadata: KvVersion,
}

#[derive(serde::Deserialize)]
struct KvVersion {
    version: u64,
    #[serde(default)]
    created_time: String,
}

impl KvVersion {
    fn info(&self) -> KvVersionInfo {
        KvVersionInfo {
            version: self.version,
            created_time: parse_time(&self.created_time),
        }
    }
}

/// Vault's error body: `{"errors": ["..."]}`.
#[derive(serde::Deserialize)]
struct ErrorBody {
    #[serde(default)]
    errors: Vec<String>,
}

/// Serializes the fields for a KV v2 write. The only place stored values are exposed; it
/// has no `Debug`, and lives only for the call.
struct Exposed<'a>(&'a BTreeMap<String, SecretString>);

impl Serialize for Exposed<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, value) in self.0 {
            map.serialize_entry(name, value.expose_secret())?;
        }
        map.end()
    }
}

/// Wraps every field of a JSON map in a secret, wiping the decoded strings behind it.
fn into_secrets(map: Map<String, Value>) -> BTreeMap<String, SecretString> {
    map.into_iter()
        .map(|(name, value)| (name, into_secret(value)))
        .collect()
}

pub(super) fn into_secret(value: Value) -> SecretString {
    match value {
        Value::String(text) => {
            let text = Zeroizing::new(text);
            SecretString::from(text.as_str())
        }
        mut other => {
            let text = Zeroizing::new(other.to_string());
            wipe(&mut other);
            SecretString::from(text.as_str())
        }
    }
}

/// Zeroes every string inside a JSON value.
pub(super) fn wipe(value: &mut Value) {
    match value {
        Value::String(s) => s.zeroize(),
        Value::Array(items) => items.iter_mut().for_each(wipe),
        Value::Object(map) => map.values_mut().for_each(wipe),
        _ => {}
    }
}

/// A `vaultrs` error as a `SourceError`, keeping the status code and Vault's messages.
fn vault_error(op: &'static str, path: String, err: &ClientError) -> SourceError {
    let (status, message) = match err {
        ClientError::APIError { code, errors } => (
            Some(*code),
            if errors.is_empty() {
                reason(*code)
            } else {
                tidy(errors)
            },
        ),
        ClientError::RestClientError {
            source: rustify_error,
        } => match server_status(rustify_error) {
            Some(code) => (Some(code), reason(code)),
            None => (None, describe_chain(err)),
        },
        other => (None, describe_chain(other)),
    };
    SourceError::Vault {
        op,
        path,
        status,
        message,
    }
}

/// The status of a server error whose body `vaultrs` could not parse as Vault's error body
/// (a 404 on a deleted KV version carries metadata instead). The body is not kept.
fn server_status(err: &rustify::errors::ClientError) -> Option<u16> {
    match err {
        rustify::errors::ClientError::ServerResponseError { code, .. } => Some(*code),
        _ => None,
    }
}

/// Vault's error messages on one line. The server wraps some in a multi-line list
/// ("1 error occurred:\n\n\t* permission denied\n\n"); only the items are kept.
fn tidy(errors: &[String]) -> String {
    let mut items: Vec<&str> = Vec::new();
    for error in errors {
        for line in error.lines().map(str::trim) {
            let is_header = line.ends_with("occurred:")
                && line
                    .split_whitespace()
                    .next()
                    .is_some_and(|n| n.parse::<u32>().is_ok());
            if line.is_empty() || is_header {
                continue;
            }
            items.push(line.strip_prefix("* ").unwrap_or(line));
        }
    }
    items.join("; ")
}

fn reason(code: u16) -> String {
    StatusCode::from_u16(code)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("error")
        .to_lowercase()
}

pub(super) fn request_error(op: &'static str, path: &str, err: &reqwest::Error) -> SourceError {
    SourceError::Vault {
        op,
        path: path.to_string(),
        status: err.status().map(|s| s.as_u16()),
        message: describe_chain(err),
    }
}

/// An error status with Vault's messages from the body, if it has the usual shape.
pub(super) fn status_error(op: &'static str, path: &str, status: StatusCode, body: &[u8]) -> SourceError {
    let errors = serde_json::from_slice::<ErrorBody>(body)
        .map(|b| b.errors)
        .unwrap_or_default();
    SourceError::Vault {
        op,
        path: path.to_string(),
        status: Some(status.as_u16()),
        message: if errors.is_empty() {
            reason(status.as_u16())
        } else {
            tidy(&errors)
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn settings_come_from_the_vault_variables() {
        let vars = [
            ("VAULT_ADDR", "https://vault.internal:8200"),
            ("VAULT_TOKEN", "hvs.canary"),
            ("VAULT_NAMESPACE", "ci"),
            ("VAULT_CACERT", "/etc/vault/ca.pem"),
        ];
        let config = VaultConfig::from_lookup(lookup(&vars)).expect("complete settings");
        assert_eq!(config.addr, "https://vault.internal:8200");
        assert_eq!(config.token.expose_secret(), "hvs.canary");
        assert_eq!(config.namespace.as_deref(), Some("ci"));
        assert_eq!(config.cacert, Some(PathBuf::from("/etc/vault/ca.pem")));
        assert!(!format!("{config:?}").contains("hvs.canary"));
        assert_eq!(VaultConfig::missing_from_lookup(lookup(&vars)), None);
    }

    #[test]
    fn without_address_or_token_there_is_no_vault_and_the_missing_one_is_named() {
        let only_addr = [("VAULT_ADDR", "http://127.0.0.1:8200"), ("VAULT_TOKEN", "")];
        assert!(VaultConfig::from_lookup(lookup(&only_addr)).is_none());
        assert_eq!(
            VaultConfig::missing_from_lookup(lookup(&only_addr)).as_deref(),
            Some("VAULT_TOKEN is not set")
        );
        let only_token = [("VAULT_TOKEN", "t")];
        assert_eq!(
            VaultConfig::missing_from_lookup(lookup(&only_token)).as_deref(),
            Some("VAULT_ADDR is not set")
        );
        assert_eq!(
            VaultConfig::missing_from_lookup(lookup(&[])).as_deref(),
            Some("VAULT_ADDR and VAULT_TOKEN are not set")
        );
    }

    fn config(addr: &str) -> VaultConfig {
        VaultConfig {
            addr: addr.to_string(),
            token: SecretString::from("hvs.canary-token"),
            namespace: None,
            cacert: None,
            approle: None,
        }
    }

    #[test]
    fn a_malformed_address_is_refused_without_panicking() {
        for addr in [
            "not a url",
            "ftp://vault:21",
            "vault.internal:8200",
            "mailto:x@y",
        ] {
            let err = Vault::new(&config(addr)).unwrap_err();
            assert!(
                matches!(
                    err,
                    SourceError::InvalidConfig {
                        setting: "VAULT_ADDR",
                        ..
                    }
                ),
                "{addr}: {err}"
            );
        }
    }

    #[test]
    fn an_unreadable_ca_file_is_refused_for_an_https_address() {
        let mut c = config("https://vault.internal:8200");
        c.cacert = Some(PathBuf::from("/nonexistent/ca.pem"));
        let err = Vault::new(&c).unwrap_err();
        assert!(
            matches!(
                err,
                SourceError::InvalidConfig {
                    setting: "VAULT_CACERT",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn urls_keep_a_path_prefix_and_encode_segments() {
        let vault = Vault::new(&config("http://127.0.0.1:8200/prefix/")).unwrap();
        assert_eq!(
            vault.url("/database/creds/my role/").as_str(),
            "http://127.0.0.1:8200/prefix/v1/database/creds/my%20role"
        );
        assert!(!format!("{vault:?}").contains("canary"));
    }

    #[test]
    fn non_string_values_become_their_json_text() {
        let map =
            serde_json::json!({"s": "text", "n": 42, "b": true, "o": {"k": [1, "x"]}, "z": null});
        let Value::Object(map) = map else {
            unreachable!()
        };
        let secrets = into_secrets(map);
        let shown: BTreeMap<&str, &str> = secrets
            .iter()
            .map(|(k, v)| (k.as_str(), v.expose_secret()))
            .collect();
        assert_eq!(shown["s"], "text");
        assert_eq!(shown["n"], "42");
        assert_eq!(shown["b"], "true");
        assert_eq!(shown["o"], r#"{"k":[1,"x"]}"#);
        assert_eq!(shown["z"], "null");
    }

    #[test]
    fn a_dynamic_answer_yields_its_fields_and_its_lease_id() {
        // The shape `database/creds/ROLE` answers with.
        let body = br#"{"request_id":"r","lease_id":"database/creds/app/h8Q2","renewable":true,
            "lease_duration":3600,"data":{"username":"v-app-x1","password":"A1a-pw"},
            "wrap_info":null,"warnings":null,"auth":null}"#;
        let envelope: Envelope = serde_json::from_slice(body).unwrap();
        let (fields, lease) = envelope.into_fields().unwrap();
        assert_eq!(lease.as_deref(), Some("database/creds/app/h8Q2"));
        assert_eq!(fields["username"].expose_secret(), "v-app-x1");
        assert_eq!(fields["password"].expose_secret(), "A1a-pw");

        let empty: Envelope = serde_json::from_slice(br#"{"lease_id":"","data":null}"#).unwrap();
        assert!(empty.into_fields().is_none());
    }

    #[test]
    fn vault_error_lists_become_one_line() {
        let errors = vec!["1 error occurred:\n\n\t* permission denied\n\n".to_string()];
        assert_eq!(tidy(&errors), "permission denied");
        let errors = vec![
            "2 errors occurred:\n\t* a\n\t* b\n".to_string(),
            "check-and-set parameter did not match the current version".to_string(),
        ];
        assert_eq!(
            tidy(&errors),
            "a; b; check-and-set parameter did not match the current version"
        );
    }

    #[test]
    fn stored_values_are_serialized_as_plain_strings() {
        let mut fields = BTreeMap::new();
        fields.insert("value".to_string(), SecretString::from("v\"1"));
        let json = serde_json::to_string(&Exposed(&fields)).unwrap();
        assert_eq!(json, r#"{"value":"v\"1"}"#);
    }
}
