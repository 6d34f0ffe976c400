//! Why a source could not yield or store a value: what failed and where, never the value.

use std::error::Error as StdError;

/// Errors of the `source` module. No variant carries a secret value, a token or a response
/// body: only operations, paths, field names, versions, status codes and the server's own
/// error messages.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// A policy needs Vault but no Vault settings were given.
    #[error("Vault is not configured: {missing}")]
    NotConfigured { missing: String },

    /// A Vault setting is present but unusable (a malformed address, an unreadable CA file).
    #[error("invalid Vault setting {setting}: {message}")]
    InvalidConfig {
        setting: &'static str,
        message: String,
    },

    /// Vault answered with an error, or could not be reached.
    #[error("Vault {op} {path} failed{}: {message}", status_suffix(*.status))]
    Vault {
        op: &'static str,
        path: String,
        status: Option<u16>,
        message: String,
    },

    /// A check-and-set write found another version than the one expected: someone else
    /// wrote in between. Nothing was written.
    #[error(
        "check-and-set conflict at {mount}/{path}: expected {}, another writer got there first; nothing was written",
        expected_text(*.expected)
    )]
    CasConflict {
        mount: String,
        path: String,
        expected: u64,
    },

    /// A KV v2 path that should hold a value holds no version yet.
    #[error("{mount}/{path} holds no version yet")]
    NoVersion { mount: String, path: String },

    /// The value read has no field of that name.
    #[error("{path} has no field `{field}`")]
    MissingField { path: String, field: String },

    /// A source that keeps no versions (a generator without `store`, a dynamic read) was
    /// asked for one.
    #[error("a {kind} source keeps no versions: there is none to read back")]
    Unversioned { kind: &'static str },

    /// A custom alphabet too small to make a secret from.
    #[error("a custom alphabet needs at least 2 distinct characters, this one has {distinct}")]
    WeakAlphabet { distinct: usize },
}

fn status_suffix(status: Option<u16>) -> String {
    status
        .map(|s| format!(" with status {s}"))
        .unwrap_or_default()
}

fn expected_text(expected: u64) -> String {
    if expected == 0 {
        "no version yet".to_string()
    } else {
        format!("version {expected} to be current")
    }
}

/// The messages of an error and its causes, joined with `: `, for the `message` of a
/// `Vault` error. Stops before any JSON (de)serialization error: serde's messages may quote
/// the offending input, which could be a secret.
pub(crate) fn describe_chain(err: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = next {
        if e.downcast_ref::<serde_json::Error>().is_some() {
            parts.push("the response could not be decoded".to_string());
            break;
        }
        let text = e.to_string();
        if parts.last() != Some(&text) {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_serde_error_in_the_chain_is_not_quoted() {
        #[derive(Debug, thiserror::Error)]
        #[error("decoding failed")]
        struct Outer {
            source: serde_json::Error,
        }
        let inner = serde_json::from_str::<u64>("\"canary-5521\"").unwrap_err();
        assert!(
            inner.to_string().contains("canary-5521"),
            "serde quotes its input"
        );
        let text = describe_chain(&Outer { source: inner });
        assert_eq!(text, "decoding failed: the response could not be decoded");
    }

    #[test]
    fn messages_name_places_and_versions() {
        let e = SourceError::CasConflict {
            mount: "secret".into(),
            path: "ci/token".into(),
            expected: 0,
        };
        assert_eq!(
            e.to_string(),
            "check-and-set conflict at secret/ci/token: expected no version yet, another writer got there first; nothing was written"
        );
        let e = SourceError::Vault {
            op: "read",
            path: "secret/data/x".into(),
            status: Some(403),
            message: "permission denied".into(),
        };
        assert_eq!(
            e.to_string(),
            "Vault read secret/data/x failed with status 403: permission denied"
        );
    }
}
