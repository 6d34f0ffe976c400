//! GitHub Apps in the emulator: the fleet's `apps:` section, RS256 JWTs checked against
//! each App's public key with GitHub's `iat`/`exp` rules, installations per organization,
//! and installation tokens that expire, see only their repositories and carry permissions.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
use aws_lc_rs::signature::KeyPair as _;
use axum::http::{header, HeaderMap};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use crypto_box::aead::rand_core::RngCore as _;
use crypto_box::aead::OsRng;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::auth::{Access, Caller};
use super::errors::{ApiError, FleetError};

/// Installation tokens live an hour on GitHub.
pub const DEFAULT_TOKEN_LIFETIME_SECS: u64 = 3_600;
/// GitHub refuses a JWT whose `exp` is more than ten minutes ahead.
pub const MAX_JWT_AHEAD_SECS: i64 = 600;

/// A GitHub App the emulator knows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppSpec {
    /// The numeric app id (a JWT's `iss` may be it, as a number or a string).
    pub id: u64,
    /// The client id (`Iv23...`), also accepted as `iss`. Default: `Iv1.emulator<id>`.
    #[serde(default)]
    pub client_id: Option<String>,
    /// The App's slug. Default: `app-<id>`.
    #[serde(default)]
    pub slug: Option<String>,
    /// The App's RSA public key, PEM (`BEGIN PUBLIC KEY` or `BEGIN RSA PUBLIC KEY`).
    pub public_key: String,
    /// Seconds an installation token lives (GitHub: 3600).
    #[serde(default = "default_lifetime")]
    pub token_lifetime_secs: u64,
    /// Where it is installed.
    #[serde(default)]
    pub installations: Vec<InstallationSpec>,
}

fn default_lifetime() -> u64 {
    DEFAULT_TOKEN_LIFETIME_SECS
}

/// One installation of an App on an organization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstallationSpec {
    /// Installation id; assigned when absent.
    #[serde(default)]
    pub id: Option<u64>,
    /// The organization it is installed on.
    pub org: String,
    /// `all` (default) or `selected`.
    #[serde(default)]
    pub repository_selection: RepositorySelection,
    /// With `selected`: the repository names it may reach.
    #[serde(default)]
    pub repositories: Vec<String>,
    /// Permission -> `read` / `write`. Absent: what rotor needs, all `write`
    /// ([`default_permissions`]). `metadata: read` is always granted.
    #[serde(default)]
    pub permissions: Option<BTreeMap<String, String>>,
    /// A suspended installation mints no tokens (403).
    #[serde(default)]
    pub suspended: bool,
}

impl InstallationSpec {
    /// An installation on `org` reaching every repository, with rotor's permissions.
    pub fn all(org: &str) -> Self {
        InstallationSpec {
            id: None,
            org: org.to_string(),
            repository_selection: RepositorySelection::All,
            repositories: Vec::new(),
            permissions: None,
            suspended: false,
        }
    }

    /// Only these repositories (by name).
    pub fn selected(mut self, repos: &[&str]) -> Self {
        self.repository_selection = RepositorySelection::Selected;
        self.repositories = repos.iter().map(|r| r.to_string()).collect();
        self
    }

    /// Exactly these permissions, e.g. `&[("secrets", "write")]`.
    pub fn permissions(mut self, perms: &[(&str, &str)]) -> Self {
        self.permissions = Some(
            perms
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        self
    }

    pub fn id(mut self, id: u64) -> Self {
        self.id = Some(id);
        self
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RepositorySelection {
    #[default]
    All,
    Selected,
}

impl RepositorySelection {
    pub fn as_str(self) -> &'static str {
        match self {
            RepositorySelection::All => "all",
            RepositorySelection::Selected => "selected",
        }
    }
}

/// The permissions rotor's App needs, all `write` (plus `metadata: read`).
pub fn default_permissions() -> BTreeMap<String, String> {
    [
        "secrets",
        "environments",
        "organization_secrets",
        "dependabot_secrets",
        "codespaces_secrets",
        "actions",
    ]
    .iter()
    .map(|p| (p.to_string(), "write".to_string()))
    .chain([("metadata".to_string(), "read".to_string())])
    .collect()
}

/// An RSA key pair (2048 bits) for an emulated App: the private half as PKCS#8 PEM (what
/// `GITHUB_APP_PRIVATE_KEY_FILE` points at), the public half as SPKI PEM (for `AppSpec`).
pub struct AppKeyPair {
    pub private_pem: SecretString,
    pub public_pem: String,
}

impl AppKeyPair {
    /// A fresh key pair.
    ///
    /// # Panics
    /// If the crypto library cannot make an RSA key (it always can on supported platforms).
    pub fn generate() -> Self {
        let kp = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
            .expect("RSA key generation works");
        let private: Pkcs8V1Der = kp.as_der().expect("an RSA key serializes as PKCS#8");
        let public: PublicKeyX509Der = kp
            .public_key()
            .as_der()
            .expect("an RSA public key serializes as SPKI");
        AppKeyPair {
            private_pem: SecretString::from(pem("PRIVATE KEY", private.as_ref())),
            public_pem: pem("PUBLIC KEY", public.as_ref()),
        }
    }
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Permission levels, ordered.
fn level(s: &str) -> u8 {
    match s {
        "read" => 1,
        "write" => 2,
        "admin" => 3,
        _ => 0,
    }
}

/// What an installation token may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Grant {
    pub installation_id: u64,
    pub app_id: u64,
    /// The organization, lower-case.
    pub org: String,
    /// `None`: every repository of the organization; else lower-case names.
    pub repos: Option<HashSet<String>>,
    pub permissions: BTreeMap<String, String>,
}

impl Grant {
    pub fn reaches_repo(&self, org: &str, repo: &str) -> bool {
        self.org.eq_ignore_ascii_case(org)
            && self
                .repos
                .as_ref()
                .is_none_or(|r| r.contains(&repo.to_ascii_lowercase()))
    }

    pub fn has(&self, permission: &str, at_least: &str) -> bool {
        self.permissions
            .get(permission)
            .is_some_and(|l| level(l) >= level(at_least))
    }
}

/// One installation, as the registry keeps it.
#[derive(Debug, Clone)]
pub(crate) struct InstallationEntry {
    pub id: u64,
    pub app_id: u64,
    pub org: String,
    pub selection: RepositorySelection,
    pub repositories: Vec<String>,
    pub permissions: BTreeMap<String, String>,
    pub suspended: bool,
    pub created_at: DateTime<Utc>,
}

impl InstallationEntry {
    pub fn grant(&self) -> Grant {
        Grant {
            installation_id: self.id,
            app_id: self.app_id,
            org: self.org.to_ascii_lowercase(),
            repos: (self.selection == RepositorySelection::Selected).then(|| {
                self.repositories
                    .iter()
                    .map(|r| r.to_ascii_lowercase())
                    .collect()
            }),
            permissions: self.permissions.clone(),
        }
    }
}

pub(crate) struct AppEntry {
    pub id: u64,
    pub client_id: String,
    pub slug: String,
    key: DecodingKey,
    lifetime: Duration,
    /// Installations change at run time (a test installs, suspends, adds repositories).
    installations: std::sync::RwLock<Vec<InstallationEntry>>,
}

impl AppEntry {
    /// The App's installations as they are now.
    pub fn installations(&self) -> Vec<InstallationEntry> {
        self.installations
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Changes the installations (briefly holding their lock).
    pub fn with_installations<T>(&self, f: impl FnOnce(&mut Vec<InstallationEntry>) -> T) -> T {
        f(&mut self
            .installations
            .write()
            .unwrap_or_else(|p| p.into_inner()))
    }
}

struct Issued {
    grant: Arc<Grant>,
    expires: Instant,
}

/// The Apps of a fleet and the tokens handed out for them.
pub(crate) struct AppRegistry {
    pub apps: Vec<AppEntry>,
    issued: Mutex<HashMap<String, Issued>>,
    /// Tokens handed out per installation id.
    minted: Mutex<BTreeMap<u64, u64>>,
    /// Milliseconds; 0: each App's own lifetime.
    lifetime_override_ms: AtomicU64,
}

const FIRST_INSTALLATION_ID: u64 = 40_000_001;

impl AppRegistry {
    /// Builds the registry; `orgs` are the fleet's organizations with their repositories
    /// (lower-case), to check installations against.
    pub fn build(
        specs: &[AppSpec],
        orgs: &HashMap<String, HashSet<String>>,
    ) -> Result<Self, FleetError> {
        let mut apps = Vec::new();
        let mut app_ids = HashSet::new();
        let taken: HashSet<u64> = specs
            .iter()
            .flat_map(|a| a.installations.iter().filter_map(|i| i.id))
            .collect();
        let mut installation_ids = HashSet::new();
        let mut next_id = FIRST_INSTALLATION_ID;
        let created_at =
            DateTime::from_timestamp(1_577_836_800, 0).expect("2020-01-01 is representable");
        for spec in specs {
            if !app_ids.insert(spec.id) {
                return Err(FleetError::Invalid(format!(
                    "app id {} is used twice",
                    spec.id
                )));
            }
            let key = DecodingKey::from_rsa_pem(spec.public_key.as_bytes()).map_err(|e| {
                FleetError::Invalid(format!(
                    "app {}: public_key is not an RSA public key in PEM form: {e}",
                    spec.id
                ))
            })?;
            let mut installations = Vec::new();
            let mut orgs_seen = HashSet::new();
            for inst in &spec.installations {
                let org = inst.org.to_ascii_lowercase();
                let Some(repos) = orgs.get(&org) else {
                    return Err(FleetError::Invalid(format!(
                        "app {}: organization {} is not in the fleet",
                        spec.id, inst.org
                    )));
                };
                if !orgs_seen.insert(org.clone()) {
                    return Err(FleetError::Invalid(format!(
                        "app {} is installed twice on {}",
                        spec.id, inst.org
                    )));
                }
                for r in &inst.repositories {
                    if !repos.contains(&r.to_ascii_lowercase()) {
                        return Err(FleetError::Invalid(format!(
                            "app {}: repository {}/{r} is not in the fleet",
                            spec.id, inst.org
                        )));
                    }
                }
                let id = match inst.id {
                    Some(id) => id,
                    None => {
                        while taken.contains(&next_id) || installation_ids.contains(&next_id) {
                            next_id += 1;
                        }
                        next_id
                    }
                };
                if !installation_ids.insert(id) {
                    return Err(FleetError::Invalid(format!(
                        "installation id {id} is used twice"
                    )));
                }
                let mut permissions = inst.permissions.clone().unwrap_or_else(default_permissions);
                permissions
                    .entry("metadata".into())
                    .or_insert_with(|| "read".into());
                installations.push(InstallationEntry {
                    id,
                    app_id: spec.id,
                    org: inst.org.clone(),
                    selection: inst.repository_selection,
                    repositories: inst.repositories.clone(),
                    permissions,
                    suspended: inst.suspended,
                    created_at,
                });
            }
            apps.push(AppEntry {
                id: spec.id,
                client_id: spec
                    .client_id
                    .clone()
                    .unwrap_or_else(|| format!("Iv1.emulator{}", spec.id)),
                slug: spec
                    .slug
                    .clone()
                    .unwrap_or_else(|| format!("app-{}", spec.id)),
                key,
                lifetime: Duration::from_secs(spec.token_lifetime_secs),
                installations: std::sync::RwLock::new(installations),
            });
        }
        Ok(AppRegistry {
            apps,
            issued: Mutex::new(HashMap::new()),
            minted: Mutex::new(BTreeMap::new()),
            lifetime_override_ms: AtomicU64::new(0),
        })
    }

    pub fn app(&self, id: u64) -> Option<&AppEntry> {
        self.apps.iter().find(|a| a.id == id)
    }

    /// Every App's installation tokens live this long from now on.
    pub fn set_token_lifetime(&self, d: Duration) {
        let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1);
        self.lifetime_override_ms.store(ms, Ordering::Relaxed);
    }

    fn lifetime(&self, app: &AppEntry) -> Duration {
        match self.lifetime_override_ms.load(Ordering::Relaxed) {
            0 => app.lifetime,
            ms => Duration::from_millis(ms),
        }
    }

    /// Hands out a token for `grant`; returns it with its expiry as GitHub writes it
    /// (whole seconds, rounded down, so a client never believes it lives longer).
    pub fn issue(&self, app: &AppEntry, grant: Grant) -> (String, DateTime<Utc>) {
        let lifetime = self.lifetime(app);
        let mut bytes = [0u8; 27];
        OsRng.fill_bytes(&mut bytes);
        let token = format!(
            "ghs_{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(bytes)
                .replace(['-', '_'], "x")
        );
        let now = Utc::now();
        let expires_at =
            now + chrono::Duration::from_std(lifetime).unwrap_or(chrono::Duration::hours(1));
        let shown = DateTime::from_timestamp(expires_at.timestamp(), 0).unwrap_or(expires_at);
        *self
            .minted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(grant.installation_id)
            .or_default() += 1;
        let mut issued = self.issued.lock().unwrap_or_else(|p| p.into_inner());
        let at = Instant::now();
        issued.retain(|_, t| t.expires + Duration::from_secs(3_600) > at);
        issued.insert(
            token.clone(),
            Issued {
                grant: Arc::new(grant),
                expires: at + lifetime,
            },
        );
        (token, shown)
    }

    /// Revokes a token (`DELETE /installation/token`).
    pub fn revoke(&self, token: &str) {
        self.issued
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(token);
    }

    /// The permissions of the tokens still held, with their installation id.
    pub fn issued_permissions(&self) -> Vec<(u64, BTreeMap<String, String>)> {
        self.issued
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .map(|t| (t.grant.installation_id, t.grant.permissions.clone()))
            .collect()
    }

    /// Tokens handed out so far, per installation id.
    pub fn minted(&self) -> BTreeMap<u64, u64> {
        self.minted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Identifies App callers: a JWT (checked) or an installation token (checked for
    /// expiry). `None`: the credential is neither, and belongs to the fleet's tokens.
    pub fn identify(&self, headers: &HeaderMap) -> Option<Result<Caller, ApiError>> {
        let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
        let (scheme, token) = value.trim().split_once(' ')?;
        let token = token.trim();
        if looks_like_jwt(token) {
            if !scheme.eq_ignore_ascii_case("bearer") {
                return Some(Err(ApiError::unauthorized(
                    "A JSON web token could not be decoded",
                )));
            }
            return Some(self.check_jwt(token, Utc::now().timestamp()));
        }
        if !(scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token")) {
            return None;
        }
        let issued = self.issued.lock().unwrap_or_else(|p| p.into_inner());
        let t = issued.get(token)?;
        if Instant::now() >= t.expires {
            return Some(Err(ApiError::unauthorized("Bad credentials")));
        }
        let grant = t.grant.clone();
        Some(Ok(Caller {
            user_id: grant.installation_id,
            key: format!("installation:{}", grant.installation_id),
            access: Arc::new(Access::Installation(grant)),
        }))
    }

    /// GitHub's JWT rules: RS256 signed by the App's key; `iss` the app id or client id;
    /// `iat` in the past; `exp` in the future, at most ten minutes ahead.
    pub fn check_jwt(&self, token: &str, now: i64) -> Result<Caller, ApiError> {
        let undecodable = || ApiError::unauthorized("A JSON web token could not be decoded");
        let header = jsonwebtoken::decode_header(token).map_err(|_| undecodable())?;
        if header.alg != Algorithm::RS256 {
            return Err(undecodable());
        }
        let payload = token.split('.').nth(1).ok_or_else(undecodable)?;
        let claims: Value = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload.trim_end_matches('='))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(undecodable)?;
        let app = match &claims["iss"] {
            Value::Number(n) => n.as_u64().and_then(|id| self.app(id)),
            Value::String(s) => match s.parse::<u64>() {
                Ok(id) => self.app(id),
                Err(_) => self.apps.iter().find(|a| a.client_id == *s),
            },
            _ => {
                return Err(ApiError::unauthorized(
                    "'Issuer' claim ('iss') must be an Integer",
                ))
            }
        }
        .ok_or_else(|| ApiError::unauthorized("Integration not found"))?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims = HashSet::new();
        jsonwebtoken::decode::<Value>(token, &app.key, &validation).map_err(|_| undecodable())?;
        let iat = claims["iat"].as_i64();
        if iat.is_none_or(|iat| iat > now) {
            return Err(ApiError::unauthorized(
                "'Issued at' claim ('iat') must be an Integer representing a time in the past",
            ));
        }
        let exp = claims["exp"].as_i64();
        match exp {
            Some(exp) if exp > now + MAX_JWT_AHEAD_SECS => {
                return Err(ApiError::unauthorized(
                    "'Expiration time' claim ('exp') is too far in the future",
                ))
            }
            Some(exp) if exp > now => {}
            _ => {
                return Err(ApiError::unauthorized(
                    "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires",
                ))
            }
        }
        Ok(Caller {
            user_id: app.id,
            key: format!("app:{}", app.id),
            access: Arc::new(Access::App { app_id: app.id }),
        })
    }
}

/// Three base64url parts, the first a JSON object: a JWT, not an opaque token.
fn looks_like_jwt(token: &str) -> bool {
    let parts: Vec<&str> = token.split('.').collect();
    parts.len() == 3
        && base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(parts[0].trim_end_matches('='))
            .ok()
            .is_some_and(|b| b.first() == Some(&b'{'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header};
    use secrecy::ExposeSecret;

    fn registry(key: &AppKeyPair) -> AppRegistry {
        let orgs = HashMap::from([("acme".to_string(), HashSet::from(["api".to_string()]))]);
        AppRegistry::build(
            &[AppSpec {
                id: 7,
                client_id: Some("Iv23liTEST".into()),
                slug: None,
                public_key: key.public_pem.clone(),
                token_lifetime_secs: 3600,
                installations: vec![InstallationSpec::all("acme")],
            }],
            &orgs,
        )
        .expect("valid apps")
    }

    fn jwt(key: &AppKeyPair, claims: Value) -> String {
        let enc = EncodingKey::from_rsa_pem(key.private_pem.expose_secret().as_bytes())
            .expect("PKCS#8 PEM");
        jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &enc).expect("signs")
    }

    #[test]
    fn jwts_follow_githubs_iat_and_exp_rules_and_the_apps_key() {
        let key = AppKeyPair::generate();
        let reg = registry(&key);
        let now = 1_800_000_000;
        let ok = |claims: Value| reg.check_jwt(&jwt(&key, claims), now);
        let msg = |r: Result<Caller, ApiError>| r.expect_err("refused").message;

        let caller = ok(serde_json::json!({"iat": now - 60, "exp": now + 540, "iss": 7}))
            .expect("a JWT by the book");
        assert_eq!(caller.key, "app:7");
        assert!(
            ok(serde_json::json!({"iat": now - 60, "exp": now + 600, "iss": "Iv23liTEST"})).is_ok()
        );
        assert!(ok(serde_json::json!({"iat": now - 60, "exp": now + 60, "iss": "7"})).is_ok());
        assert!(msg(ok(
            serde_json::json!({"iat": now - 60, "exp": now + 601, "iss": 7})
        ))
        .contains("too far in the future"));
        assert!(msg(ok(
            serde_json::json!({"iat": now - 700, "exp": now - 100, "iss": 7})
        ))
        .contains("'exp'"));
        assert!(msg(ok(
            serde_json::json!({"iat": now + 30, "exp": now + 300, "iss": 7})
        ))
        .contains("'iat'"));
        assert_eq!(
            msg(ok(
                serde_json::json!({"iat": now - 60, "exp": now + 300, "iss": 8})
            )),
            "Integration not found"
        );

        let other = AppKeyPair::generate();
        let forged = jwt(
            &other,
            serde_json::json!({"iat": now - 60, "exp": now + 300, "iss": 7}),
        );
        assert_eq!(
            reg.check_jwt(&forged, now).expect_err("wrong key").message,
            "A JSON web token could not be decoded"
        );
    }

    #[test]
    fn installation_tokens_expire_and_are_then_bad_credentials() {
        let key = AppKeyPair::generate();
        let reg = registry(&key);
        reg.set_token_lifetime(Duration::from_millis(150));
        let app = reg.app(7).expect("app");
        let (token, _) = reg.issue(app, app.installations()[0].grant());
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            format!("token {token}").parse().expect("header"),
        );
        let caller = reg.identify(&headers).expect("known").expect("valid");
        assert!(caller.access.manages_repo("acme", "api"));
        std::thread::sleep(Duration::from_millis(200));
        let err = reg.identify(&headers).expect("known").expect_err("expired");
        assert_eq!(
            (err.status.as_u16(), err.message.as_str()),
            (401, "Bad credentials")
        );
    }

    #[test]
    fn installations_must_name_fleet_organizations_and_repositories() {
        let key = AppKeyPair::generate();
        let orgs = HashMap::from([("acme".to_string(), HashSet::from(["api".to_string()]))]);
        let spec = |inst: InstallationSpec| AppSpec {
            id: 1,
            client_id: None,
            slug: None,
            public_key: key.public_pem.clone(),
            token_lifetime_secs: 3600,
            installations: vec![inst],
        };
        assert!(AppRegistry::build(&[spec(InstallationSpec::all("globex"))], &orgs).is_err());
        assert!(AppRegistry::build(
            &[spec(InstallationSpec::all("acme").selected(&["web"]))],
            &orgs
        )
        .is_err());
        assert!(AppRegistry::build(
            &[spec(InstallationSpec::all("acme").selected(&["API"]))],
            &orgs
        )
        .is_ok());
    }
}
