//! A small OpenAPI 3.0 response validator: finds an operation by method and concrete path,
//! checks the status is documented, the documented headers, and the JSON body against the
//! response schema.
//!
//! Supported schema keywords: `$ref` (any local pointer: components/schemas, responses,
//! headers), `type` (object, array, string, integer, number, boolean) with `nullable`,
//! `required`, `properties`, `additionalProperties` (when a schema or `false`), `items`,
//! `enum`, `oneOf` / `anyOf` / `allOf`, `format` (`date-time`: RFC 3339; `uri`: has a
//! scheme), `minimum` / `maximum`, `maxLength`. Everything else (`pattern`, `examples`,
//! `maxProperties`, `x-github-*`) is ignored. Every failure names the JSON pointer of the
//! node and the rule it broke.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;

/// A published OpenAPI description, parsed.
pub struct Spec {
    pub root: Value,
}

/// One broken rule: where (a JSON pointer into the body, or `header:<name>`, or `status`)
/// and which rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub pointer: String,
    pub rule: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = if self.pointer.is_empty() {
            "(root)"
        } else {
            &self.pointer
        };
        write!(f, "{at}: {}", self.rule)
    }
}

/// What the description says about one method and path.
pub struct Operation<'a> {
    /// The path template, e.g. `/repos/{owner}/{repo}/actions/secrets/{secret_name}`.
    pub template: &'a str,
    pub op: &'a Value,
}

/// Whether a concrete path (no query) fits a template: `{x}` takes one non-empty segment.
pub fn template_matches(template: &str, path: &str) -> bool {
    let t: Vec<&str> = template.split('/').collect();
    let p: Vec<&str> = path.split('/').collect();
    t.len() == p.len()
        && t.iter().zip(&p).all(|(t, p)| {
            if t.starts_with('{') && t.ends_with('}') {
                !p.is_empty()
            } else {
                t == p
            }
        })
}

fn literal_segments(template: &str) -> usize {
    template.split('/').filter(|s| !s.starts_with('{')).count()
}

impl Spec {
    pub fn from_str(text: &str) -> Self {
        let root: Value = serde_json::from_str(text).expect("the description is JSON");
        assert!(
            root["openapi"]
                .as_str()
                .is_some_and(|v| v.starts_with("3.0")),
            "an OpenAPI 3.0 description"
        );
        Spec { root }
    }

    /// The copy kept beside these tests (`tests/data/openapi-subset.json`).
    pub fn load() -> Self {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/openapi-subset.json"
        );
        Self::from_str(&std::fs::read_to_string(path).expect("read the description"))
    }

    /// Follows `$ref`s until a node that is not one.
    pub fn deref<'a>(&'a self, mut node: &'a Value) -> &'a Value {
        for _ in 0..32 {
            match node.get("$ref").and_then(Value::as_str) {
                Some(r) => {
                    let pointer = r.strip_prefix('#').expect("only local $refs");
                    node = self
                        .root
                        .pointer(pointer)
                        .unwrap_or_else(|| panic!("$ref {r} resolves"));
                }
                None => return node,
            }
        }
        panic!("a $ref cycle")
    }

    /// The operation for `method` (any case) and a concrete `path` (a query is ignored);
    /// when several templates fit, the one with the most literal segments (`public-key`
    /// before `{secret_name}`).
    pub fn operation(&self, method: &str, path: &str) -> Option<Operation<'_>> {
        let path = path.split('?').next().unwrap_or(path);
        let method = method.to_ascii_lowercase();
        let paths = self.root["paths"].as_object()?;
        paths
            .iter()
            .filter(|(t, _)| template_matches(t, path))
            .filter_map(|(t, item)| item.get(&method).map(|op| (t.as_str(), op)))
            .max_by_key(|(t, _)| literal_segments(t))
            .map(|(template, op)| Operation { template, op })
    }

    /// Every `(METHOD, template)` the description has.
    pub fn operations(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (t, item) in self.root["paths"].as_object().into_iter().flatten() {
            for m in ["get", "put", "post", "patch", "delete"] {
                if item.get(m).is_some() {
                    out.push((m.to_ascii_uppercase(), t.clone()));
                }
            }
        }
        out
    }

    /// The response object documented for `status` (or `default`), `$ref`s followed.
    pub fn response<'a>(&'a self, op: &Operation<'a>, status: u16) -> Option<&'a Value> {
        let responses = op.op.get("responses")?;
        responses
            .get(status.to_string())
            .or_else(|| responses.get("default"))
            .map(|r| self.deref(r))
    }

    /// Checks one answer. `headers` are keyed by lower-case name.
    pub fn check(
        &self,
        method: &str,
        path: &str,
        status: u16,
        headers: &BTreeMap<String, String>,
        body: &[u8],
    ) -> Result<(), Vec<Violation>> {
        let Some(op) = self.operation(method, path) else {
            return Err(vec![v("", format!("no operation {method} {path}"))]);
        };
        let Some(resp) = self.response(&op, status) else {
            let documented: Vec<&String> = op.op["responses"]
                .as_object()
                .map(|m| m.keys().collect())
                .unwrap_or_default();
            return Err(vec![v(
                "status",
                format!(
                    "{status} is not a documented response of {method} {} (documented: {documented:?})",
                    op.template
                ),
            )]);
        };
        let mut errs = Vec::new();
        self.check_headers(resp, status, headers, &mut errs);
        match resp.pointer("/content/application~1json/schema") {
            // Some error responses are documented by a description only (the 409s of the
            // selected-repositories routes): GitHub still sends its error body there, so
            // an error answer may carry a `basic-error` body. Success and redirect answers
            // without documented content must be empty.
            None if status >= 400 && !body.iter().all(u8::is_ascii_whitespace) => {
                match serde_json::from_slice::<Value>(body) {
                    Err(e) => errs.push(v("", format!("the error body is not JSON ({e})"))),
                    Ok(value) => {
                        let basic = serde_json::json!({"$ref": "#/components/schemas/basic-error"});
                        self.validate(&basic, &value, "", &mut errs);
                    }
                }
            }
            None => {
                if !body.iter().all(u8::is_ascii_whitespace) {
                    errs.push(v(
                        "",
                        format!(
                            "the description documents no body for {status}, but one came: {}",
                            String::from_utf8_lossy(body)
                        ),
                    ));
                }
            }
            Some(schema) => match serde_json::from_slice::<Value>(body) {
                Err(e) => errs.push(v("", format!("the body is not JSON ({e})"))),
                Ok(value) => self.validate(schema, &value, "", &mut errs),
            },
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(errs)
        }
    }

    fn check_headers(
        &self,
        resp: &Value,
        status: u16,
        headers: &BTreeMap<String, String>,
        errs: &mut Vec<Violation>,
    ) {
        for (name, h) in resp
            .get("headers")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            let h = self.deref(h);
            let lname = name.to_ascii_lowercase();
            let at = format!("header:{lname}");
            match headers.get(&lname) {
                None => {
                    // A redirect without `Location` is no redirect, whether or not the
                    // description marks it required.
                    let redirect = (300..400).contains(&status) && lname == "location";
                    if h["required"] == Value::Bool(true) || redirect {
                        errs.push(v(&at, "required header is missing".into()));
                    }
                }
                Some(value) => {
                    if h.pointer("/schema/type").and_then(Value::as_str) == Some("integer")
                        && value.trim().parse::<i64>().is_err()
                    {
                        errs.push(v(&at, format!("type: expected integer, got {value:?}")));
                    }
                }
            }
        }
    }

    /// Validates `value` against `schema`, adding each broken rule to `errs`.
    pub fn validate(&self, schema: &Value, value: &Value, at: &str, errs: &mut Vec<Violation>) {
        let s = self.deref(schema);
        if value.is_null() {
            if s["nullable"] == Value::Bool(true) {
                return;
            }
            if s.get("type").is_some() {
                errs.push(v(
                    at,
                    "nullable: null where the schema is not nullable".into(),
                ));
                return;
            }
        }
        if let Some(t) = s.get("type").and_then(Value::as_str) {
            let ok = match t {
                "object" => value.is_object(),
                "array" => value.is_array(),
                "string" => value.is_string(),
                "integer" => value.is_i64() || value.is_u64(),
                "number" => value.is_number(),
                "boolean" => value.is_boolean(),
                other => panic!("unknown type {other} in the description"),
            };
            if !ok {
                errs.push(v(at, format!("type: expected {t}, got {}", kind(value))));
                return;
            }
        }
        if let Some(options) = s.get("enum").and_then(Value::as_array) {
            if !options.contains(value) {
                errs.push(v(at, format!("enum: {value} is not one of {options:?}")));
            }
        }
        self.combinators(s, value, at, errs);
        match value {
            Value::Object(map) => self.object(s, map, at, errs),
            Value::Array(items) => {
                if let Some(item) = s.get("items") {
                    for (i, x) in items.iter().enumerate() {
                        self.validate(item, x, &format!("{at}/{i}"), errs);
                    }
                }
            }
            Value::String(text) => string(s, text, at, errs),
            Value::Number(n) => {
                let x = n.as_f64().unwrap_or(f64::NAN);
                if let Some(min) = s.get("minimum").and_then(Value::as_f64) {
                    if x < min {
                        errs.push(v(at, format!("minimum: {x} < {min}")));
                    }
                }
                if let Some(max) = s.get("maximum").and_then(Value::as_f64) {
                    if x > max {
                        errs.push(v(at, format!("maximum: {x} > {max}")));
                    }
                }
            }
            _ => {}
        }
    }

    fn combinators(&self, s: &Value, value: &Value, at: &str, errs: &mut Vec<Violation>) {
        if let Some(all) = s.get("allOf").and_then(Value::as_array) {
            for sub in all {
                self.validate(sub, value, at, errs);
            }
        }
        for (kw, exactly_one) in [("oneOf", true), ("anyOf", false)] {
            let Some(alts) = s.get(kw).and_then(Value::as_array) else {
                continue;
            };
            let results: Vec<Vec<Violation>> = alts
                .iter()
                .map(|alt| {
                    let mut e = Vec::new();
                    self.validate(alt, value, at, &mut e);
                    e
                })
                .collect();
            let matching = results.iter().filter(|e| e.is_empty()).count();
            let ok = if exactly_one {
                matching == 1
            } else {
                matching >= 1
            };
            if !ok {
                let why: Vec<String> = results
                    .iter()
                    .enumerate()
                    .map(|(i, e)| match e.first() {
                        Some(first) => format!("[{i}] {first}"),
                        None => format!("[{i}] matches"),
                    })
                    .collect();
                errs.push(v(
                    at,
                    format!(
                        "{kw}: {matching} of {} alternatives match ({})",
                        alts.len(),
                        why.join("; ")
                    ),
                ));
            }
        }
    }

    fn object(
        &self,
        s: &Value,
        map: &serde_json::Map<String, Value>,
        at: &str,
        errs: &mut Vec<Violation>,
    ) {
        for name in s
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = name.as_str().unwrap_or_default();
            if !map.contains_key(name) {
                errs.push(v(
                    &format!("{at}/{}", escape(name)),
                    "required: the property is missing".into(),
                ));
            }
        }
        let props = s.get("properties").and_then(Value::as_object);
        for (name, x) in map {
            let here = format!("{at}/{}", escape(name));
            match props.and_then(|p| p.get(name)) {
                Some(sub) => self.validate(sub, x, &here, errs),
                None => match s.get("additionalProperties") {
                    Some(Value::Bool(false)) => errs.push(v(
                        &here,
                        "additionalProperties: false, and the property is not listed".into(),
                    )),
                    Some(sub @ Value::Object(_)) => self.validate(sub, x, &here, errs),
                    _ => {}
                },
            }
        }
    }
}

fn string(s: &Value, text: &str, at: &str, errs: &mut Vec<Violation>) {
    match s.get("format").and_then(Value::as_str) {
        Some("date-time") if chrono::DateTime::parse_from_rfc3339(text).is_err() => {
            errs.push(v(
                at,
                format!("format: date-time: {text:?} is not RFC 3339"),
            ));
        }
        Some("uri") if !has_scheme(text) => {
            errs.push(v(at, format!("format: uri: {text:?} has no scheme")));
        }
        _ => {}
    }
    if let Some(max) = s.get("maxLength").and_then(Value::as_u64) {
        let n = text.chars().count() as u64;
        if n > max {
            errs.push(v(at, format!("maxLength: {n} characters > {max}")));
        }
    }
}

/// `scheme:` as RFC 3986 spells it: a letter, then letters, digits, `+`, `-`, `.`.
fn has_scheme(text: &str) -> bool {
    match text.split_once(':') {
        Some((scheme, _)) => {
            let mut chars = scheme.chars();
            chars.next().is_some_and(|c| c.is_ascii_alphabetic())
                && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        }
        None => false,
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// A JSON pointer token (RFC 6901).
fn escape(name: &str) -> String {
    name.replace('~', "~0").replace('/', "~1")
}

fn v(pointer: &str, rule: String) -> Violation {
    Violation {
        pointer: pointer.to_string(),
        rule,
    }
}

/// Panics, listing every broken rule, unless the answer conforms to the description.
/// `headers` are keyed by lower-case name (pass an empty map to skip header checks).
pub fn assert_conforms(
    spec: &Spec,
    method: &str,
    path: &str,
    status: u16,
    headers: &BTreeMap<String, String>,
    body: &[u8],
) {
    if let Err(errs) = spec.check(method, path, status, headers, body) {
        let list: Vec<String> = errs.iter().map(|e| format!("  {e}")).collect();
        panic!(
            "{method} {path} -> {status} does not conform to the published description:\n{}",
            list.join("\n")
        );
    }
}
