//! Vault / OpenBao: KV v2 reads and check-and-set writes, dynamic reads, health.
//!
//! KV v2 goes through `vaultrs`; what it lacks (a generic read that keeps the lease id, a
//! health check OpenBao answers) is plain HTTP with the same address, TLS roots, namespace
//! and token. Neither the settings nor the client are ever logged: `vaultrs`' own settings
//! print the token in their `Debug`.
//!
//! This file holds the client and its plumbing (building it, the token, requests, logging in
//! again when refused); its requests sit in `kv` (KV v2), `dynamic` (generic reads with
//! lease ids) and `login` (AppRole login, token lookup and renewal), the settings in
//! `config`, and what they share (wiping bodies, mapping errors) in `wire`. The children
//! use this file; it uses none of them but `config` and `wire`.

mod config;
mod dynamic;
mod kv;
mod lease;
mod login;
mod wire;

use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use reqwest::Url;
use secrecy::{ExposeSecret, SecretString};
use vaultrs::client::{VaultClient, VaultClientSettingsBuilder};
use zeroize::Zeroizing;

use super::auth::Login;
use super::error::{describe_chain, SourceError};
use wire::{request_error, status_error};

pub use config::{VaultConfig, VaultTls};
pub use lease::LeaseLookup;

/// Upper bound for one request to Vault, from connecting to the last byte of the answer.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Upper bound for opening the connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A connected Vault / OpenBao client. Its `Debug` shows the address only.
///
/// The token can change while the client is shared (an AppRole login replaces it), so it
/// and the `vaultrs` client built around it sit behind locks held only to clone them.
pub struct Vault {
    kv: RwLock<Arc<VaultClient>>,
    http: reqwest::Client,
    base: Url,
    token: RwLock<SecretString>,
    namespace: Option<String>,
    /// The settings, kept to build the `vaultrs` client again around a new token.
    config: VaultConfig,
    /// Serializes logins, so that many requests finding no token log in once.
    login_lock: tokio::sync::Mutex<()>,
    /// Successful AppRole logins so far.
    logins: std::sync::atomic::AtomicU64,
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
        warn_about_transport(config, &base);
        let http = build_http(config, https)?;
        let kv = build_kv(config, addr, &http, &config.token)?;

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

    /// How rotor logs in, when configured (AppRole, JWT, Kubernetes).
    pub fn login_method(&self) -> Option<&Login> {
        self.config.login.as_ref()
    }

    /// Whether a token is held (an AppRole-only setup has none until it logs in).
    pub fn has_token(&self) -> bool {
        !self.token().expose_secret().is_empty()
    }

    /// The token as a header value marked sensitive (kept out of any `Debug` of the request
    /// and out of HTTP/2's header compression tables). An unusable token goes as empty, and
    /// Vault refuses it.
    fn token_header(&self) -> reqwest::header::HeaderValue {
        let mut value = reqwest::header::HeaderValue::from_str(self.token().expose_secret())
            .unwrap_or_else(|_| reqwest::header::HeaderValue::from_static(""));
        value.set_sensitive(true);
        value
    }

    /// The current token (a clone; the lock is held only for that).
    fn token(&self) -> SecretString {
        self.token
            .read()
            .map(|t| t.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// Replaces the token, and the `vaultrs` client with one that sends it.
    fn set_token(&self, token: SecretString) -> Result<(), SourceError> {
        let addr = self.config.addr.trim().trim_end_matches('/');
        let kv = build_kv(&self.config, addr, &self.http, &token)?;
        *self.kv.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(kv);
        *self.token.write().unwrap_or_else(|p| p.into_inner()) = token;
        self.token_generation
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        Ok(())
    }

    /// Counts token replacements: a request remembers it to know whether the token it was
    /// refused with has been replaced since.
    fn token_generation(&self) -> u64 {
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
        if !refused || self.login_method().is_none() {
            return first;
        }
        tracing::info!("Vault refused the token; logging in again with AppRole");
        self.login_again(generation).await?;
        request().await
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
                let body = wire::read_body(response, "health", path)
                    .await
                    .unwrap_or_default();
                Err(status_error("health", path, status, &body))
            }
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
            .header("X-Vault-Token", self.token_header());
        if let Some(ns) = self.namespace.as_ref().filter(|_| namespaced) {
            request = request.header("X-Vault-Namespace", ns);
        }
        request.send().await
    }

    /// A request to `/v1/{path}` (with `query`, and a JSON `body` already serialized),
    /// after making sure of a token. The body is copied into the request; the caller
    /// keeps (and wipes) its own buffer.
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        query: Option<&str>,
        body: Option<&[u8]>,
    ) -> Result<reqwest::Response, reqwest::Error> {
        if let Err(e) = self.ensure_token().await {
            tracing::warn!(error = %e, "Vault login failed");
        }
        let mut url = self.url(path);
        url.set_query(query);
        let mut request = self
            .http
            .request(method, url)
            .header("X-Vault-Request", "true")
            .header("X-Vault-Token", self.token_header());
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_vec());
        }
        if let Some(ns) = self.namespace.as_ref() {
            request = request.header("X-Vault-Namespace", ns);
        }
        request.send().await
    }

    /// `POST /v1/{path}` with a JSON body, after making sure of a token.
    async fn post_json<B: serde::Serialize + ?Sized>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<reqwest::Response, reqwest::Error> {
        if let Err(e) = self.ensure_token().await {
            tracing::warn!(error = %e, "Vault login failed");
        }
        let mut request = self
            .http
            .post(self.url(path))
            .header("X-Vault-Request", "true")
            .header("X-Vault-Token", self.token_header())
            .json(body);
        if let Some(ns) = self.namespace.as_ref() {
            request = request.header("X-Vault-Namespace", ns);
        }
        request.send().await
    }

    fn url(&self, path: &str) -> Url {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .expect("checked in new: the address can be a base")
            .pop_if_empty()
            .push("v1")
            .extend(path.split('/').filter(|s| !s.is_empty()));
        url
    }
}

/// The current version of a KV v2 secret and when it was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KvVersionInfo {
    pub version: u64,
    pub created_time: Option<chrono::DateTime<chrono::Utc>>,
}

/// The HTTP client every Vault request goes through (rotor's own and `vaultrs`'): rustls
/// with the system's roots plus `VAULT_CACERT` and `VAULT_CAPATH`, the client certificate of
/// `VAULT_CLIENT_CERT`/`VAULT_CLIENT_KEY`, the timeouts, and redirects followed only to the
/// origin of `VAULT_ADDR` (a redirect elsewhere would carry `X-Vault-Token` there).
fn build_http(config: &VaultConfig, https: bool) -> Result<reqwest::Client, SourceError> {
    let mut http = reqwest::Client::builder()
        .tls_backend_rustls()
        .timeout(REQUEST_TIMEOUT)
        .connect_timeout(CONNECT_TIMEOUT)
        .redirect(crate::net::same_origin_redirects("Vault"));
    if !https {
        // No TLS will happen: skip loading the platform's roots.
        return http.build().map_err(|e| SourceError::InvalidConfig {
            setting: "VAULT_ADDR",
            message: describe_chain(&e),
        });
    }
    if let Some(path) = &config.cacert {
        http = http.tls_certs_merge(read_certs("VAULT_CACERT", path)?);
    }
    if let Some(dir) = &config.tls.capath {
        for path in pem_files("VAULT_CAPATH", dir)? {
            http = http.tls_certs_merge(read_certs("VAULT_CAPATH", &path)?);
        }
    }
    match (&config.tls.client_cert, &config.tls.client_key) {
        (Some(cert), Some(key)) => {
            let mut pem = Zeroizing::new(read_file("VAULT_CLIENT_CERT", cert)?);
            pem.push(b'\n');
            pem.extend_from_slice(&Zeroizing::new(read_file("VAULT_CLIENT_KEY", key)?));
            let identity =
                reqwest::Identity::from_pem(&pem).map_err(|e| SourceError::InvalidConfig {
                    setting: "VAULT_CLIENT_CERT",
                    message: format!(
                        "{} with {}: {}",
                        cert.display(),
                        key.display(),
                        describe_chain(&e)
                    ),
                })?;
            http = http.identity(identity);
        }
        (Some(_), None) => {
            return Err(SourceError::InvalidConfig {
                setting: "VAULT_CLIENT_KEY",
                message: "VAULT_CLIENT_CERT is set but VAULT_CLIENT_KEY is not".to_string(),
            })
        }
        (None, Some(_)) => {
            return Err(SourceError::InvalidConfig {
                setting: "VAULT_CLIENT_CERT",
                message: "VAULT_CLIENT_KEY is set but VAULT_CLIENT_CERT is not".to_string(),
            })
        }
        (None, None) => {}
    }
    http.build().map_err(|e| SourceError::InvalidConfig {
        setting: "VAULT_ADDR",
        message: describe_chain(&e),
    })
}

fn read_file(setting: &'static str, path: &std::path::Path) -> Result<Vec<u8>, SourceError> {
    std::fs::read(path).map_err(|e| SourceError::InvalidConfig {
        setting,
        message: format!("{}: {e}", path.display()),
    })
}

fn read_certs(
    setting: &'static str,
    path: &std::path::Path,
) -> Result<Vec<reqwest::Certificate>, SourceError> {
    let pem = read_file(setting, path)?;
    reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| SourceError::InvalidConfig {
        setting,
        message: format!("{}: {}", path.display(), describe_chain(&e)),
    })
}

/// The files of `dir` holding PEM certificates (`*.pem`, `*.crt`, and OpenSSL's hashed
/// names `xxxxxxxx.0`), sorted.
fn pem_files(
    setting: &'static str,
    dir: &std::path::Path,
) -> Result<Vec<std::path::PathBuf>, SourceError> {
    let entries = std::fs::read_dir(dir).map_err(|e| SourceError::InvalidConfig {
        setting,
        message: format!("{}: {e}", dir.display()),
    })?;
    let mut files: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            name.ends_with(".pem")
                || name.ends_with(".crt")
                || name
                    .rsplit_once('.')
                    .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        })
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(SourceError::InvalidConfig {
            setting,
            message: format!(
                "{}: no certificate files (*.pem, *.crt) in it",
                dir.display()
            ),
        });
    }
    Ok(files)
}

/// Says loudly what weakens the connection to Vault: a token sent in the clear to another
/// machine, `VAULT_SKIP_VERIFY` (refused: rotor always verifies), and a client key others
/// can read.
fn warn_about_transport(config: &VaultConfig, base: &Url) {
    if crate::net::is_plaintext_remote(base) {
        tracing::warn!(
            origin = %crate::net::origin(base),
            "VAULT_ADDR is http:// to a host that is not this machine: the Vault token and \
             every secret read cross the network unencrypted; use https://"
        );
    }
    if config.tls.skip_verify_requested {
        tracing::warn!(
            "VAULT_SKIP_VERIFY is set: rotor does not turn certificate verification off; \
             trust Vault's CA with VAULT_CACERT or VAULT_CAPATH instead"
        );
    }
    if base.scheme() != "https"
        && (config.cacert.is_some()
            || config.tls.capath.is_some()
            || config.tls.client_cert.is_some())
    {
        tracing::warn!(
            "VAULT_CACERT, VAULT_CAPATH or VAULT_CLIENT_CERT is set but VAULT_ADDR is not \
             https://: they are not used"
        );
    }
    #[cfg(unix)]
    if let Some(key) = &config.tls.client_key {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(key) {
            if meta.permissions().mode() & 0o077 != 0 {
                tracing::warn!(
                    file = %key.display(),
                    "VAULT_CLIENT_KEY can be read by other users of this machine: chmod 600 it"
                );
            }
        }
    }
}

/// The `vaultrs` client for `config`, sending `token`, over `http` (so that it has the same
/// TLS settings and redirect policy as rotor's own requests). Every setting is given
/// explicitly: vaultrs would otherwise fill the blanks from VAULT_* variables of its own
/// choosing (VAULT_SKIP_VERIFY, VAULT_CLIENT_CERT, ...).
fn build_kv(
    config: &VaultConfig,
    addr: &str,
    http: &reqwest::Client,
    token: &SecretString,
) -> Result<VaultClient, SourceError> {
    let mut settings = VaultClientSettingsBuilder::default();
    settings
        .address(addr)
        .token(token.expose_secret())
        .ca_certs(Vec::new())
        .identity(None)
        .verify(true)
        .timeout(Some(REQUEST_TIMEOUT))
        .namespace(config.namespace.clone());
    let settings = settings.build().map_err(|e| SourceError::InvalidConfig {
        setting: "VAULT_ADDR",
        message: e.to_string(),
    })?;
    let mut client = VaultClient::new(settings).map_err(|e| SourceError::InvalidConfig {
        setting: "VAULT_ADDR",
        message: describe_chain(&e),
    })?;
    client.http = rustify::clients::reqwest::Client::new(addr, http.clone());
    Ok(client)
}

/// A mount or path without the slashes around it (`secret/` and `secret` are one mount).
fn trim(s: &str) -> &str {
    s.trim().trim_matches('/')
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn config(addr: &str) -> VaultConfig {
        VaultConfig {
            addr: addr.to_string(),
            token: SecretString::from("hvs.canary-token"),
            namespace: None,
            cacert: None,
            login: None,
            tls: VaultTls::default(),
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
}
