//! `SourceValue`: what a source yields, one version of a policy's value as secrets.

use std::collections::BTreeMap;
use std::fmt;

use secrecy::SecretString;

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
