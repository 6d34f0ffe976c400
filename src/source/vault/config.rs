//! How to reach Vault: `VaultConfig`, read from the `VAULT_*` variables. No I/O, and no
//! value of it is ever logged (its `Debug` keeps the token and secret id hidden).

use std::path::PathBuf;

use secrecy::SecretString;

use crate::source::auth::Login;

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
    /// How rotor logs in (AppRole, JWT, Kubernetes) when it has no token, and again when
    /// its token can no longer be renewed.
    pub login: Option<Login>,
    /// More TLS settings: a folder of CA certificates, a client certificate for mutual TLS,
    /// and whether `VAULT_SKIP_VERIFY` was asked for (it is refused).
    pub tls: VaultTls,
}

/// `VAULT_CAPATH`, `VAULT_CLIENT_CERT`, `VAULT_CLIENT_KEY` and `VAULT_SKIP_VERIFY`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VaultTls {
    /// A folder of PEM files whose certificates are trusted, like `VAULT_CACERT`.
    pub capath: Option<PathBuf>,
    /// PEM client certificate (chain) sent for mutual TLS; needs `client_key`.
    pub client_cert: Option<PathBuf>,
    /// PEM private key of `client_cert`.
    pub client_key: Option<PathBuf>,
    /// `VAULT_SKIP_VERIFY` was set to a true value. rotor never turns verification off; it
    /// says so loudly instead.
    pub skip_verify_requested: bool,
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
        let login = Login::from_lookup(&get).ok().flatten();
        let token = match (get("VAULT_TOKEN"), &login) {
            (Some(t), _) => SecretString::from(t),
            (None, Some(_)) => SecretString::from(""),
            (None, None) => return None,
        };
        Some(VaultConfig {
            addr,
            token,
            namespace: get("VAULT_NAMESPACE"),
            cacert: get("VAULT_CACERT").map(PathBuf::from),
            login,
            tls: VaultTls {
                capath: get("VAULT_CAPATH").map(PathBuf::from),
                client_cert: get("VAULT_CLIENT_CERT").map(PathBuf::from),
                client_key: get("VAULT_CLIENT_KEY").map(PathBuf::from),
                skip_verify_requested: get("VAULT_SKIP_VERIFY").is_some_and(|v| {
                    !matches!(
                        v.trim().to_ascii_lowercase().as_str(),
                        "0" | "false" | "f" | "no"
                    )
                }),
            },
        })
    }

    /// Which of the required variables `from_lookup` found missing, in words
    /// (`"VAULT_TOKEN is not set"`), or `None` when both are there.
    pub fn missing_from_lookup(get: impl Fn(&str) -> Option<String>) -> Option<String> {
        let unset = |name: &str| get(name).is_none_or(|v| v.is_empty());
        let set = |name: &str| get(name).filter(|v| !v.is_empty());
        if unset("VAULT_TOKEN")
            && (!unset("VAULT_AUTH") || !unset("VAULT_JWT_ROLE") || !unset("VAULT_K8S_ROLE"))
        {
            if let Err(why) = Login::from_lookup(&set) {
                return Some(why);
            }
            if unset("VAULT_ADDR") {
                return Some("VAULT_ADDR is not set".to_string());
            }
            if Login::from_lookup(&set).ok().flatten().is_some() {
                return None;
            }
        }
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

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

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
}
