//! Sources: where a policy's value comes from (generator, Vault KV v2, Vault dynamic reads).
//! The only module that speaks to Vault. Values leave it only as `SecretString`.

pub mod auth;
pub mod error;
pub mod generate;
pub mod sources;
pub mod vault;

use std::collections::BTreeMap;
use std::fmt;

use secrecy::SecretString;

pub use auth::{AppRole, SecretId, TokenAction, TokenInfo, TokenState};
pub use error::SourceError;
pub use generate::generate;
pub use sources::{Sources, GENERATED_FIELD};
pub use vault::{KvVersionInfo, Vault, VaultConfig};

/// One version of a policy's value: its fields, as secrets.
/// Deliberately no derived `Debug`/`Serialize`: the manual `Debug` prints field names only.
pub struct SourceValue {
    pub version: u64,
    pub fields: BTreeMap<String, SecretString>,
}

impl fmt::Debug for SourceValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SourceValue")
            .field("version", &self.version)
            .field("fields", &self.fields.keys().collect::<Vec<_>>())
            .finish()
    }
}
