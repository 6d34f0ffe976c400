//! GitHub's rules for secret writes: names, request bodies, `encrypted_value` as padded
//! base64, and the 48 KB limit on decrypted values. Messages never echo a value.

use serde_json::{Map, Value};

use crate::scope::Scope;
use crate::scope::{App, Visibility};

use super::auth::ApiVersion;
use super::errors::ApiError;

/// "Secrets are limited to 48 KB in size", read as 48 × 1024 bytes of plaintext.
pub(crate) const MAX_SECRET_BYTES: usize = 48 * 1024;

/// Checks a secret name and returns it upper-cased, as GitHub stores it:
/// only `[A-Za-z0-9_]`, not starting with a digit, not starting with `GITHUB_` (any case).
pub(crate) fn secret_name(raw: &str) -> Result<String, ApiError> {
    let field = |msg: &str| ApiError::validation("Secret", "name", "invalid", msg);
    if raw.is_empty() || !raw.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(field(
            "Secret names can only contain alphanumeric characters ([a-z], [A-Z], [0-9]) or underscores (_). Spaces are not allowed.",
        ));
    }
    if raw.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(field("Secret names must not start with a number."));
    }
    let upper = raw.to_ascii_uppercase();
    if upper.starts_with("GITHUB_") {
        return Err(field(
            "Secret names must not start with the GITHUB_ prefix.",
        ));
    }
    Ok(upper)
}

/// Parses a JSON request body that must be an object: 400 `Problems parsing JSON` when it
/// is not JSON at all, 422 when it is JSON but not an object.
pub(crate) fn json_object(bytes: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(ApiError::invalid_request(format!(
            "For 'links/0/schema', {} is not an object.",
            describe(&other)
        ))),
        Err(_) => Err(ApiError::bad_json()),
    }
}

/// A short, value-free description of a JSON value for error messages.
fn describe(v: &Value) -> &'static str {
    match v {
        Value::Null => "nil",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

pub(crate) fn not_supplied(field: &str) -> ApiError {
    ApiError::invalid_request(format!("\"{field}\" wasn't supplied."))
}

pub(crate) fn wrong_type(field: &str, v: &Value, expected: &str) -> ApiError {
    ApiError::invalid_request(format!(
        "For 'properties/{field}', {} is not {expected}.",
        describe(v)
    ))
}

/// The body of a workflow dispatch: `ref` (required), `inputs` (at most 25, text values),
/// `return_run_details`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DispatchBody {
    pub git_ref: String,
    pub inputs: std::collections::BTreeMap<String, String>,
    pub return_run_details: bool,
}

/// The most `inputs` a dispatch may carry.
pub(crate) const MAX_DISPATCH_INPUTS: usize = 25;

pub(crate) fn dispatch_body(body: &Map<String, Value>) -> Result<DispatchBody, ApiError> {
    let git_ref = match body.get("ref") {
        None | Some(Value::Null) => return Err(not_supplied("ref")),
        Some(Value::String(r)) => r.clone(),
        Some(other) => return Err(wrong_type("ref", other, "a string")),
    };
    let mut inputs = std::collections::BTreeMap::new();
    match body.get("inputs") {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            if map.len() > MAX_DISPATCH_INPUTS {
                return Err(ApiError::invalid_request(format!(
                    "For 'properties/inputs', {} properties is more than the maximum of {MAX_DISPATCH_INPUTS}.",
                    map.len()
                )));
            }
            for (k, v) in map {
                match v {
                    Value::String(s) => {
                        inputs.insert(k.clone(), s.clone());
                    }
                    other => return Err(wrong_type(&format!("inputs/{k}"), other, "a string")),
                }
            }
        }
        Some(other) => return Err(wrong_type("inputs", other, "an object")),
    }
    let return_run_details = match body.get("return_run_details") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => return Err(wrong_type("return_run_details", other, "a boolean")),
    };
    Ok(DispatchBody {
        git_ref,
        inputs,
        return_run_details,
    })
}

/// `^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{4})$`
pub(crate) fn is_padded_base64(s: &str) -> bool {
    let b = s.as_bytes();
    if b.is_empty() || !b.len().is_multiple_of(4) {
        return false;
    }
    let alpha = |c: u8| c.is_ascii_alphanumeric() || c == b'+' || c == b'/';
    let (body, last) = b.split_at(b.len() - 4);
    body.iter().all(|&c| alpha(c))
        && match last {
            [a, b, b'=', b'='] => alpha(*a) && alpha(*b),
            [a, b, c, b'='] => alpha(*a) && alpha(*b) && alpha(*c),
            [a, b, c, d] => alpha(*a) && alpha(*b) && alpha(*c) && alpha(*d),
            _ => false,
        }
}

/// A checked secret PUT body.
#[derive(Debug, Default)]
pub(crate) struct PutBody {
    /// The sealed box, base64-decoded.
    pub sealed: Option<Vec<u8>>,
    pub key_id: Option<String>,
    /// Organization secrets only.
    pub visibility: Option<Visibility>,
    /// Organization secrets only.
    pub selected_repository_ids: Option<Vec<u64>>,
}

fn string_field(obj: &Map<String, Value>, field: &str) -> Result<Option<String>, ApiError> {
    match obj.get(field) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(wrong_type(field, other, "a string")),
    }
}

/// Checks a secret PUT body against the endpoint's schema.
///
/// Required fields: repository and environment secrets `encrypted_value` and `key_id`
/// (Dependabot and Codespaces repository schemas mark none, but nothing can be stored
/// without them); organization Actions secrets `encrypted_value`, `key_id`, `visibility`;
/// organization Dependabot and Codespaces secrets `visibility` (with `key_id` whenever
/// `encrypted_value` is sent).
pub(crate) fn put_body(
    obj: &Map<String, Value>,
    scope: &Scope,
    version: ApiVersion,
) -> Result<PutBody, ApiError> {
    let encrypted = string_field(obj, "encrypted_value")?;
    let key_id = string_field(obj, "key_id")?;
    let mut body = PutBody {
        key_id,
        ..Default::default()
    };
    match scope {
        Scope::Org { app, .. } => {
            if *app == App::Actions {
                if encrypted.is_none() {
                    return Err(not_supplied("encrypted_value"));
                }
                if body.key_id.is_none() {
                    return Err(not_supplied("key_id"));
                }
            }
            body.visibility = Some(match obj.get("visibility") {
                None => return Err(not_supplied("visibility")),
                Some(Value::String(s)) if s == "all" => Visibility::All,
                Some(Value::String(s)) if s == "private" => Visibility::Private,
                Some(Value::String(s)) if s == "selected" => Visibility::Selected,
                Some(Value::String(_)) => {
                    return Err(ApiError::invalid_request(
                        "For 'properties/visibility', the value is not one of [\"all\", \"private\", \"selected\"].",
                    ))
                }
                Some(other) => return Err(wrong_type("visibility", other, "a string")),
            });
            if let Some(ids) = obj.get("selected_repository_ids") {
                body.selected_repository_ids = Some(repository_ids(ids, *app, version)?);
            }
            if encrypted.is_some() && body.key_id.is_none() {
                return Err(not_supplied("key_id"));
            }
        }
        Scope::Repo { .. } | Scope::Environment { .. } => {
            if encrypted.is_none() {
                return Err(not_supplied("encrypted_value"));
            }
            if body.key_id.is_none() {
                return Err(not_supplied("key_id"));
            }
        }
    }
    if let Some(text) = encrypted {
        if !is_padded_base64(&text) {
            return Err(ApiError::invalid_request(
                "For 'properties/encrypted_value', the value does not match /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{4})$/.",
            ));
        }
        use base64::Engine as _;
        // The pattern allows non-zero trailing bits, which no encoder emits; such a value
        // cannot be a sealed box and fails to decrypt below.
        let sealed = base64::engine::general_purpose::STANDARD
            .decode(text.as_bytes())
            .unwrap_or_default();
        body.sealed = Some(sealed);
    }
    Ok(body)
}

/// `selected_repository_ids`: integers; Dependabot under 2022-11-28 also takes numeric
/// strings (the 2026-03-10 version removed that).
pub(crate) fn repository_ids(
    v: &Value,
    app: App,
    version: ApiVersion,
) -> Result<Vec<u64>, ApiError> {
    let field = "selected_repository_ids";
    let Value::Array(items) = v else {
        return Err(wrong_type(field, v, "an array"));
    };
    let strings_ok = app == App::Dependabot && version == ApiVersion::V2022_11_28;
    items
        .iter()
        .map(|item| match item {
            Value::Number(n) => n.as_u64().ok_or_else(|| {
                ApiError::invalid_request(format!("For 'items', {n} is not a repository id."))
            }),
            Value::String(s) if strings_ok => s.parse::<u64>().map_err(|_| {
                ApiError::invalid_request("For 'items', the string is not a repository id.")
            }),
            other => Err(ApiError::invalid_request(format!(
                "For 'items', {} is not an integer.",
                describe(other)
            ))),
        })
        .collect()
}

/// The body of `PUT .../secrets/{name}/repositories`: `selected_repository_ids` required.
pub(crate) fn set_repositories_body(
    obj: &Map<String, Value>,
    app: App,
    version: ApiVersion,
) -> Result<Vec<u64>, ApiError> {
    match obj.get("selected_repository_ids") {
        None => Err(not_supplied("selected_repository_ids")),
        Some(v) => repository_ids(v, app, version),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secret_names_follow_github_rules_and_are_upper_cased() {
        assert_eq!(secret_name("deploy_token").expect("ok"), "DEPLOY_TOKEN");
        assert_eq!(secret_name("_x1").expect("ok"), "_X1");
        for bad in [
            "1ABC",
            "github_token",
            "GITHUB_X",
            "has-dash",
            "sp ace",
            "ünï",
            "",
        ] {
            let err = secret_name(bad).expect_err(bad);
            assert_eq!(err.status.as_u16(), 422, "{bad}");
        }
        assert!(secret_name("GITHUB").is_ok());
        assert!(secret_name("MY_GITHUB_TOKEN").is_ok());
    }

    #[test]
    fn padded_base64_follows_the_published_pattern() {
        for good in ["AAAA", "AA==", "AAA=", "ab+/cd==", "QUJD"] {
            assert!(is_padded_base64(good), "{good}");
        }
        for bad in [
            "", "A", "AA", "AAA", "A===", "AA=A", "AAAA=", "AA-_", "AA AA==", "=AAA",
        ] {
            assert!(!is_padded_base64(bad), "{bad}");
        }
    }

    #[test]
    fn org_actions_puts_need_value_key_id_and_visibility() {
        let scope = Scope::Org {
            org: "acme".into(),
            app: App::Actions,
        };
        let v = ApiVersion::V2022_11_28;
        let obj = |j: Value| j.as_object().cloned().expect("object");
        let err = put_body(
            &obj(json!({"encrypted_value": "AAAA", "key_id": "1"})),
            &scope,
            v,
        )
        .expect_err("visibility missing");
        assert!(err.message.contains("\"visibility\" wasn't supplied"));
        let ok = put_body(
            &obj(json!({"encrypted_value": "AAAA", "key_id": "1", "visibility": "selected", "selected_repository_ids": [1, 2]})),
            &scope,
            v,
        )
        .expect("valid");
        assert_eq!(ok.selected_repository_ids, Some(vec![1, 2]));
        let dep = Scope::Org {
            org: "acme".into(),
            app: App::Dependabot,
        };
        assert!(put_body(&obj(json!({"visibility": "all"})), &dep, v).is_ok());
        let strings = obj(json!({"visibility": "selected", "selected_repository_ids": ["7"]}));
        assert_eq!(
            put_body(&strings, &dep, v)
                .expect("strings ok")
                .selected_repository_ids,
            Some(vec![7])
        );
        assert!(put_body(&strings, &dep, ApiVersion::V2026_03_10).is_err());
        assert!(put_body(&strings, &scope, v).is_err());
    }

    #[test]
    fn bodies_that_are_not_json_objects_are_refused() {
        assert_eq!(json_object(b"{nope").expect_err("400").status.as_u16(), 400);
        assert_eq!(json_object(b"").expect_err("400").status.as_u16(), 400);
        assert_eq!(json_object(b"[1]").expect_err("422").status.as_u16(), 422);
        assert!(json_object(b"{}").is_ok());
    }
}
