//! What rotor logs in to Vault with and what it knows of its token: AppRole credentials
//! (read from the `VAULT_*` variables), the token's state and when to look at it again.
//! Tokens and secret ids stay in `SecretString`s. The requests that log in, look up and
//! renew are the Vault client's (`vault::login`).

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;
use zeroize::Zeroizing;

use super::error::SourceError;

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
    pub(crate) fn from_lookup(get: &impl Fn(&str) -> Option<String>) -> Option<AppRole> {
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

    pub(super) fn secret_id(&self) -> Result<SecretString, SourceError> {
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

/// How rotor logs in to Vault when it has no token, or its token can no longer be renewed.
#[derive(Clone, Debug)]
pub enum Login {
    /// `VAULT_ROLE_ID` with `VAULT_SECRET_ID(_FILE)`.
    AppRole(AppRole),
    /// JWT/OIDC auth (`VAULT_AUTH=jwt` or `VAULT_JWT_ROLE`): a JWT from a file, or inside
    /// GitHub Actions a fresh ID token from the runner at each login.
    Jwt(JwtLogin),
    /// Kubernetes auth (`VAULT_AUTH=kubernetes` or `VAULT_K8S_ROLE`) with the pod's
    /// service account token.
    Kubernetes(KubernetesLogin),
}

/// Where the JWT auth method is mounted by default.
pub const DEFAULT_JWT_MOUNT: &str = "jwt";
/// Where the Kubernetes auth method is mounted by default.
pub const DEFAULT_K8S_MOUNT: &str = "kubernetes";
/// Where a pod's service account token is.
pub const DEFAULT_K8S_TOKEN_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";

/// JWT login settings.
#[derive(Clone)]
pub struct JwtLogin {
    /// `VAULT_JWT_MOUNT` (default `jwt`).
    pub mount: String,
    /// `VAULT_JWT_ROLE`.
    pub role: String,
    pub source: JwtSource,
}

/// Where the JWT comes from.
#[derive(Clone)]
pub enum JwtSource {
    /// `VAULT_JWT_FILE`, read again at each login (a projected token is rotated in place).
    File(PathBuf),
    /// GitHub Actions' ID token endpoint (`ACTIONS_ID_TOKEN_REQUEST_URL` with the bearer
    /// `ACTIONS_ID_TOKEN_REQUEST_TOKEN`), asked for `audience` (`VAULT_JWT_AUDIENCE`) at
    /// each login: an ID token lives minutes.
    Actions {
        url: String,
        token: SecretString,
        audience: Option<String>,
    },
}

impl fmt::Debug for JwtLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let source = match &self.source {
            JwtSource::File(p) => format!("[from file {}]", p.display()),
            JwtSource::Actions { audience, .. } => {
                format!("[GitHub Actions ID token, audience {audience:?}]")
            }
        };
        f.debug_struct("JwtLogin")
            .field("mount", &self.mount)
            .field("role", &self.role)
            .field("jwt", &source)
            .finish()
    }
}

/// Kubernetes login settings.
#[derive(Clone, Debug)]
pub struct KubernetesLogin {
    /// `VAULT_K8S_MOUNT` (default `kubernetes`).
    pub mount: String,
    /// `VAULT_K8S_ROLE`.
    pub role: String,
    /// `VAULT_K8S_TOKEN_PATH` (default the pod's service account token), read at each login.
    pub token_path: PathBuf,
}

/// Reads a token file at login time: its content without surrounding whitespace.
pub(super) fn read_token_file(
    setting: &'static str,
    path: &std::path::Path,
) -> Result<SecretString, SourceError> {
    let text =
        Zeroizing::new(
            std::fs::read_to_string(path).map_err(|e| SourceError::InvalidConfig {
                setting,
                message: format!("{}: {e}", path.display()),
            })?,
        );
    let value = text.trim();
    if value.is_empty() {
        return Err(SourceError::InvalidConfig {
            setting,
            message: format!("{} is empty", path.display()),
        });
    }
    Ok(SecretString::from(value))
}

impl Login {
    /// The login method the variables ask for: `VAULT_AUTH` (`approle`, `jwt`,
    /// `kubernetes`) when set, else the first whose role variable is set
    /// (`VAULT_ROLE_ID`, `VAULT_JWT_ROLE`, `VAULT_K8S_ROLE`). `Err` for a method asked for
    /// without what it needs.
    pub fn from_lookup(get: &impl Fn(&str) -> Option<String>) -> Result<Option<Login>, String> {
        let method = match get("VAULT_AUTH") {
            Some(m) => m.trim().to_ascii_lowercase(),
            None if get("VAULT_ROLE_ID").is_some() => "approle".into(),
            None if get("VAULT_JWT_ROLE").is_some() => "jwt".into(),
            None if get("VAULT_K8S_ROLE").is_some() => "kubernetes".into(),
            None => return Ok(None),
        };
        let mount = |name: &str, default: &str| {
            get(name)
                .map(|m| m.trim_matches('/').to_string())
                .unwrap_or_else(|| default.to_string())
        };
        match method.as_str() {
            "approle" => AppRole::from_lookup(get).map(Login::AppRole).map(Some).ok_or_else(|| {
                "VAULT_AUTH=approle needs VAULT_ROLE_ID and VAULT_SECRET_ID or VAULT_SECRET_ID_FILE".to_string()
            }),
            "jwt" | "oidc" => {
                let role = get("VAULT_JWT_ROLE").ok_or("VAULT_AUTH=jwt needs VAULT_JWT_ROLE")?;
                let source = match (get("VAULT_JWT_FILE"), get("ACTIONS_ID_TOKEN_REQUEST_URL"), get("ACTIONS_ID_TOKEN_REQUEST_TOKEN")) {
                    (Some(file), _, _) => JwtSource::File(PathBuf::from(file)),
                    (None, Some(url), Some(token)) => JwtSource::Actions {
                        url,
                        token: SecretString::from(token),
                        audience: get("VAULT_JWT_AUDIENCE"),
                    },
                    _ => return Err("VAULT_JWT_ROLE needs VAULT_JWT_FILE, or GitHub Actions' ACTIONS_ID_TOKEN_REQUEST_URL and ACTIONS_ID_TOKEN_REQUEST_TOKEN (a job with `permissions: id-token: write`)".into()),
                };
                Ok(Some(Login::Jwt(JwtLogin {
                    mount: mount("VAULT_JWT_MOUNT", DEFAULT_JWT_MOUNT),
                    role,
                    source,
                })))
            }
            "kubernetes" | "k8s" => {
                let role = get("VAULT_K8S_ROLE").ok_or("VAULT_AUTH=kubernetes needs VAULT_K8S_ROLE")?;
                Ok(Some(Login::Kubernetes(KubernetesLogin {
                    mount: mount("VAULT_K8S_MOUNT", DEFAULT_K8S_MOUNT),
                    role,
                    token_path: PathBuf::from(
                        get("VAULT_K8S_TOKEN_PATH").unwrap_or_else(|| DEFAULT_K8S_TOKEN_PATH.to_string()),
                    ),
                })))
            }
            other => Err(format!("VAULT_AUTH={other} is not one of approle, jwt, kubernetes")),
        }
    }

    /// The method's name, for logs.
    pub fn name(&self) -> &'static str {
        match self {
            Login::AppRole(_) => "AppRole",
            Login::Jwt(_) => "JWT",
            Login::Kubernetes(_) => "Kubernetes",
        }
    }

    /// Where its auth method is mounted.
    pub fn mount(&self) -> &str {
        match self {
            Login::AppRole(a) => &a.mount,
            Login::Jwt(j) => &j.mount,
            Login::Kubernetes(k) => &k.mount,
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
pub(super) const NEVER_EXPIRES_CHECK: Duration = Duration::from_secs(300);
const MIN_CHECK: Duration = Duration::from_millis(250);

impl TokenState {
    pub(super) fn new(action: TokenAction, ttl: Duration, full: Duration) -> TokenState {
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

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    fn vars<'a>(v: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            v.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, x)| x.to_string())
        }
    }

    #[test]
    fn the_login_method_comes_from_vault_auth_or_the_role_variable() {
        let jwt = Login::from_lookup(&vars(&[("VAULT_JWT_ROLE", "r"), ("VAULT_JWT_FILE", "/t")]))
            .unwrap()
            .unwrap();
        assert!(matches!(&jwt, Login::Jwt(j) if j.mount == "jwt" && j.role == "r"));
        let actions = Login::from_lookup(&vars(&[
            ("VAULT_AUTH", "jwt"),
            ("VAULT_JWT_ROLE", "r"),
            ("ACTIONS_ID_TOKEN_REQUEST_URL", "http://x"),
            ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "t"),
            ("VAULT_JWT_AUDIENCE", "vault"),
        ]))
        .unwrap()
        .unwrap();
        assert!(
            matches!(&actions, Login::Jwt(JwtLogin { source: JwtSource::Actions { audience: Some(a), .. }, .. }) if a == "vault")
        );
        assert!(
            !format!("{actions:?}").contains("\"t\""),
            "no request token in Debug"
        );
        let k8s = Login::from_lookup(&vars(&[("VAULT_K8S_ROLE", "r")]))
            .unwrap()
            .unwrap();
        assert!(
            matches!(&k8s, Login::Kubernetes(k) if k.mount == "kubernetes"
            && k.token_path == std::path::Path::new(DEFAULT_K8S_TOKEN_PATH))
        );
        assert!(Login::from_lookup(&vars(&[("VAULT_JWT_ROLE", "r")]))
            .unwrap_err()
            .contains("VAULT_JWT_FILE"));
        assert!(Login::from_lookup(&vars(&[("VAULT_AUTH", "ldap")])).is_err());
        assert!(Login::from_lookup(&vars(&[])).unwrap().is_none());
    }

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
