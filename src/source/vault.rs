//! Vault / OpenBao: KV v2 reads and check-and-set writes, dynamic reads.

use secrecy::SecretString;

/// How to reach Vault (from `VAULT_ADDR`, `VAULT_TOKEN`, `VAULT_NAMESPACE`, `VAULT_CACERT`).
#[derive(Debug, Clone)]
pub struct VaultConfig {
    pub addr: String,
    pub token: SecretString,
    pub namespace: Option<String>,
    pub cacert: Option<std::path::PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("vault: {0}")]
    Other(String),
}
