//! `SourceValue`: what a source yields, one version of a policy's value as secrets.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use secrecy::SecretString;

/// One version of a policy's value: its fields, as secrets.
/// Deliberately no derived `Debug`/`Serialize`: the manual `Debug` prints field names only.
pub struct SourceValue {
    pub version: u64,
    /// Shared, not copied: the sealer thread holds the same map (one plaintext copy).
    pub fields: Arc<BTreeMap<String, SecretString>>,
    /// For a dynamic engine's credentials: their lease (the id is not secret).
    pub lease: Option<Lease>,
}

/// A dynamic credential's lease as Vault issued it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub id: String,
    /// TTL in seconds.
    pub duration_secs: u64,
    pub renewable: bool,
}

impl fmt::Debug for SourceValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SourceValue")
            .field("version", &self.version)
            .field("fields", &self.fields.keys().collect::<Vec<_>>())
            .field("lease", &self.lease)
            .finish()
    }
}
