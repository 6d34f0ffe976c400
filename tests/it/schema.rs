//! The policy JSON Schema: `rotor schema` prints what `policy.schema.json` holds, the
//! example policies point editors at it, and every example and valid test policy validates
//! against it while structurally broken ones do not.

use std::path::{Path, PathBuf};

use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A small JSON Schema validator for what the policy schema uses: `$ref` to `#/$defs/`,
/// `type` (one or several), `const`, `enum`, `properties`, `required`,
/// `additionalProperties` (false or a schema), `minProperties`/`maxProperties`, `items`,
/// `minItems`, `minimum`/`maximum`, `pattern` (`^[a-z0-9][a-z0-9-]*$` only), `oneOf`.
fn errors(schema: &Value, root: &Value, v: &Value, at: &str, out: &mut Vec<String>) {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let name = r.trim_start_matches("#/$defs/");
        errors(&root["$defs"][name], root, v, at, out);
    }
    if let Some(t) = schema.get("type") {
        let types: Vec<&str> = match t {
            Value::String(s) => vec![s.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        let is = |ty: &str| match ty {
            "object" => v.is_object(),
            "array" => v.is_array(),
            "string" => v.is_string(),
            "integer" => v.is_i64() || v.is_u64(),
            "number" => v.is_number(),
            "boolean" => v.is_boolean(),
            _ => false,
        };
        if !types.iter().any(|t| is(t)) {
            out.push(format!("{at}: not {types:?}"));
            return;
        }
    }
    if let Some(c) = schema.get("const") {
        if c != v {
            out.push(format!("{at}: not {c}"));
        }
    }
    if let Some(e) = schema.get("enum").and_then(Value::as_array) {
        if !e.contains(v) {
            out.push(format!("{at}: {v} is not one of {e:?}"));
        }
    }
    if let (Some(p), Some(s)) = (schema.get("pattern").and_then(Value::as_str), v.as_str()) {
        assert_eq!(p, "^[a-z0-9][a-z0-9-]*$", "the validator knows one pattern");
        let ok = s
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !ok {
            out.push(format!("{at}: {s:?} does not match {p}"));
        }
    }
    if let Some(n) = v.as_i64() {
        if schema
            .get("minimum")
            .and_then(Value::as_i64)
            .is_some_and(|m| n < m)
            || schema
                .get("maximum")
                .and_then(Value::as_i64)
                .is_some_and(|m| n > m)
        {
            out.push(format!("{at}: {n} out of range"));
        }
    }
    if let Some(obj) = v.as_object() {
        let props = schema.get("properties").and_then(Value::as_object);
        for r in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(r) = r.as_str() {
                if !obj.contains_key(r) {
                    out.push(format!("{at}: missing {r}"));
                }
            }
        }
        if schema
            .get("minProperties")
            .and_then(Value::as_u64)
            .is_some_and(|m| (obj.len() as u64) < m)
            || schema
                .get("maxProperties")
                .and_then(Value::as_u64)
                .is_some_and(|m| (obj.len() as u64) > m)
        {
            out.push(format!("{at}: {} properties", obj.len()));
        }
        for (k, val) in obj {
            match props.and_then(|p| p.get(k)) {
                Some(s) => errors(s, root, val, &format!("{at}.{k}"), out),
                None => match schema.get("additionalProperties") {
                    Some(Value::Bool(false)) => out.push(format!("{at}: unknown field {k}")),
                    Some(s @ Value::Object(_)) => errors(s, root, val, &format!("{at}.{k}"), out),
                    _ => {}
                },
            }
        }
    }
    if let Some(arr) = v.as_array() {
        if schema
            .get("minItems")
            .and_then(Value::as_u64)
            .is_some_and(|m| (arr.len() as u64) < m)
        {
            out.push(format!("{at}: fewer than minItems"));
        }
        if let Some(items) = schema.get("items") {
            for (i, x) in arr.iter().enumerate() {
                errors(items, root, x, &format!("{at}[{i}]"), out);
            }
        }
    }
    if let Some(alts) = schema.get("oneOf").and_then(Value::as_array) {
        let passing = alts
            .iter()
            .filter(|a| {
                let mut e = Vec::new();
                errors(a, root, v, at, &mut e);
                e.is_empty()
            })
            .count();
        if passing != 1 {
            out.push(format!("{at}: matches {passing} of oneOf"));
        }
    }
}

fn validate(schema: &Value, file: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(file).unwrap();
    let v: Value = match serde_saphyr::from_str(&text) {
        Ok(v) => v,
        Err(e) => return vec![format!("not YAML: {e}")],
    };
    let mut out = Vec::new();
    errors(schema, schema, &v, "$", &mut out);
    out
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    v.sort();
    v
}

fn committed() -> Value {
    serde_json::from_str(&std::fs::read_to_string(root().join("policy.schema.json")).unwrap())
        .unwrap()
}

#[test]
fn the_committed_schema_is_what_rotor_schema_prints() {
    let printed = rotor::policy::schema::schema_text();
    let path = root().join("policy.schema.json");
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some_and(|v| v == "1") {
        std::fs::write(&path, &printed).unwrap();
    }
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        printed,
        "policy.schema.json is stale: UPDATE_SNAPSHOTS=1 cargo test --test it schema"
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rotor"))
        .arg("schema")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), printed);
}

#[test]
fn every_example_points_at_the_schema_and_validates_against_it() {
    let schema = committed();
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    for f in yaml_files(&root().join("policies")) {
        let text = std::fs::read_to_string(&f).unwrap();
        assert!(
            text.starts_with("# yaml-language-server: $schema=../policy.schema.json\n"),
            "{}",
            f.display()
        );
        assert_eq!(
            validate(&schema, &f),
            Vec::<String>::new(),
            "{}",
            f.display()
        );
    }
    for f in yaml_files(&root().join("tests/data/policies/valid")) {
        assert_eq!(
            validate(&schema, &f),
            Vec::<String>::new(),
            "{}",
            f.display()
        );
    }
}

#[test]
fn structurally_broken_policies_fail_the_schema_and_the_rest_are_left_to_validate() {
    let schema = committed();
    // Cases whose problem is one of shape (an unknown field, a missing one, a word not
    // allowed, a wrong type, an empty list, two sources): the schema sees it.
    let structural = [
        "bad-words",
        "empty-list",
        "empty-targets",
        "generate-limits",
        "missing-fields",
        "missing-inner-fields",
        "no-source",
        "not-a-policy",
        "two-sources",
    ];
    let dir = root().join("tests/data/policies/broken");
    for case in structural {
        let errs = validate(&schema, &dir.join(format!("{case}.yaml")));
        assert!(!errs.is_empty(), "{case} passes the schema");
    }
    // A semantic problem (a bad glob, a cron, names doubled across policies, fields that
    // do not go together on one kind of target) is rotor
    // validate's: the schema lets such a file through.
    for case in ["overlap", "duplicate-names", "fields-not-allowed"] {
        let errs = validate(&schema, &dir.join(format!("{case}.yaml")));
        assert!(errs.is_empty(), "{case}: {errs:?}");
    }
}

#[test]
fn the_policies_in_docs_policy_md_validate_against_the_schema() {
    let schema = committed();
    let docs = crate::examples::doc_examples();
    assert!(!docs.is_empty());
    for (line, yaml) in docs {
        let v: Value = serde_saphyr::from_str(&yaml).expect("YAML");
        let mut out = Vec::new();
        errors(&schema, &schema, &v, "$", &mut out);
        assert!(out.is_empty(), "docs/policy.md:{line}: {out:?}");
    }
}
