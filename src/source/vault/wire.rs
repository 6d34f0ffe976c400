//! What every Vault request shares: turning decoded bodies into secrets and wiping what is
//! left of them, serializing values for a write, and mapping `vaultrs` and HTTP errors to
//! `SourceError`s that carry Vault's messages but never a body.

use std::collections::BTreeMap;

use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value};
use vaultrs::error::ClientError;
use zeroize::{Zeroize, Zeroizing};

use crate::source::error::{describe_chain, SourceError};

/// Vault's error body: `{"errors": ["..."]}`.
#[derive(serde::Deserialize)]
struct ErrorBody {
    #[serde(default)]
    errors: Vec<String>,
}

/// Serializes the fields for a KV v2 write. The only place stored values are exposed; it
/// has no `Debug`, and lives only for the call.
pub(super) struct Exposed<'a>(pub(super) &'a BTreeMap<String, SecretString>);

impl Serialize for Exposed<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, value) in self.0 {
            map.serialize_entry(name, value.expose_secret())?;
        }
        map.end()
    }
}

/// Wraps every field of a JSON map in a secret, wiping the decoded strings behind it.
pub(super) fn into_secrets(map: Map<String, Value>) -> BTreeMap<String, SecretString> {
    map.into_iter()
        .map(|(name, value)| (name, into_secret(value)))
        .collect()
}

pub(super) fn into_secret(value: Value) -> SecretString {
    match value {
        Value::String(text) => {
            let text = Zeroizing::new(text);
            SecretString::from(text.as_str())
        }
        mut other => {
            let text = Zeroizing::new(other.to_string());
            wipe(&mut other);
            SecretString::from(text.as_str())
        }
    }
}

/// Zeroes every string inside a JSON value.
pub(super) fn wipe(value: &mut Value) {
    match value {
        Value::String(s) => s.zeroize(),
        Value::Array(items) => items.iter_mut().for_each(wipe),
        Value::Object(map) => map.values_mut().for_each(wipe),
        _ => {}
    }
}

/// A `vaultrs` error as a `SourceError`, keeping the status code and Vault's messages.
pub(super) fn vault_error(op: &'static str, path: String, err: &ClientError) -> SourceError {
    let (status, message) = match err {
        ClientError::APIError { code, errors } => (
            Some(*code),
            if errors.is_empty() {
                reason(*code)
            } else {
                tidy(errors)
            },
        ),
        ClientError::RestClientError {
            source: rustify_error,
        } => match server_status(rustify_error) {
            Some(code) => (Some(code), reason(code)),
            None => (None, describe_chain(err)),
        },
        other => (None, describe_chain(other)),
    };
    SourceError::Vault {
        op,
        path,
        status,
        message,
    }
}

/// The status of a server error whose body `vaultrs` could not parse as Vault's error body
/// (a 404 on a deleted KV version carries metadata instead). The body is not kept.
fn server_status(err: &rustify::errors::ClientError) -> Option<u16> {
    match err {
        rustify::errors::ClientError::ServerResponseError { code, .. } => Some(*code),
        _ => None,
    }
}

/// Vault's error messages on one line. The server wraps some in a multi-line list
/// ("1 error occurred:\n\n\t* permission denied\n\n"); only the items are kept.
fn tidy(errors: &[String]) -> String {
    let mut items: Vec<&str> = Vec::new();
    for error in errors {
        for line in error.lines().map(str::trim) {
            let is_header = line.ends_with("occurred:")
                && line
                    .split_whitespace()
                    .next()
                    .is_some_and(|n| n.parse::<u32>().is_ok());
            if line.is_empty() || is_header {
                continue;
            }
            items.push(line.strip_prefix("* ").unwrap_or(line));
        }
    }
    items.join("; ")
}

fn reason(code: u16) -> String {
    StatusCode::from_u16(code)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("error")
        .to_lowercase()
}

pub(super) fn request_error(op: &'static str, path: &str, err: &reqwest::Error) -> SourceError {
    SourceError::Vault {
        op,
        path: path.to_string(),
        status: err.status().map(|s| s.as_u16()),
        message: describe_chain(err),
    }
}

/// Reads a Vault answer's body into a wiped buffer, refusing one over
/// `net::VAULT_MAX_BODY` (no answer of Vault is that large).
pub(super) async fn read_body(
    response: reqwest::Response,
    op: &'static str,
    path: &str,
) -> Result<zeroize::Zeroizing<Vec<u8>>, SourceError> {
    let status = response.status().as_u16();
    crate::net::read_capped(response, crate::net::VAULT_MAX_BODY)
        .await
        .map_err(|e| match e {
            crate::net::ReadError::Http(e) => request_error(op, path, &e),
            crate::net::ReadError::TooLarge(t) => SourceError::Vault {
                op,
                path: path.to_string(),
                status: Some(status),
                message: t.to_string(),
            },
        })
}

/// An error status with Vault's messages from the body, if it has the usual shape.
pub(super) fn status_error(
    op: &'static str,
    path: &str,
    status: StatusCode,
    body: &[u8],
) -> SourceError {
    let errors = serde_json::from_slice::<ErrorBody>(body)
        .map(|b| b.errors)
        .unwrap_or_default();
    SourceError::Vault {
        op,
        path: path.to_string(),
        status: Some(status.as_u16()),
        message: if errors.is_empty() {
            reason(status.as_u16())
        } else {
            tidy(&errors)
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_string_values_become_their_json_text() {
        let map =
            serde_json::json!({"s": "text", "n": 42, "b": true, "o": {"k": [1, "x"]}, "z": null});
        let Value::Object(map) = map else {
            unreachable!()
        };
        let secrets = into_secrets(map);
        let shown: BTreeMap<&str, &str> = secrets
            .iter()
            .map(|(k, v)| (k.as_str(), v.expose_secret()))
            .collect();
        assert_eq!(shown["s"], "text");
        assert_eq!(shown["n"], "42");
        assert_eq!(shown["b"], "true");
        assert_eq!(shown["o"], r#"{"k":[1,"x"]}"#);
        assert_eq!(shown["z"], "null");
    }

    #[test]
    fn vault_error_lists_become_one_line() {
        let errors = vec!["1 error occurred:\n\n\t* permission denied\n\n".to_string()];
        assert_eq!(tidy(&errors), "permission denied");
        let errors = vec![
            "2 errors occurred:\n\t* a\n\t* b\n".to_string(),
            "check-and-set parameter did not match the current version".to_string(),
        ];
        assert_eq!(
            tidy(&errors),
            "a; b; check-and-set parameter did not match the current version"
        );
    }

    #[test]
    fn stored_values_are_serialized_as_plain_strings() {
        let mut fields = BTreeMap::new();
        fields.insert("value".to_string(), SecretString::from("v\"1"));
        let json = serde_json::to_string(&Exposed(&fields)).unwrap();
        assert_eq!(json, r#"{"value":"v\"1"}"#);
    }
}
