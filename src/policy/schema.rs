//! The policy format as a JSON Schema (draft 2020-12), for editors (`rotor schema`, and the
//! committed `policy.schema.json`). It describes the shape — fields, types, allowed words —
//! and leaves the rest (globs, cron, cross-field rules) to `rotor validate`, which says
//! more. A test holds its field names equal to the policy types' own (`raw.rs`), so the two
//! cannot drift apart.

use serde_json::{json, Value};

fn string(description: &str) -> Value {
    json!({ "type": "string", "description": description })
}

fn words(description: &str, words: &[&str]) -> Value {
    json!({ "type": "string", "enum": words, "description": description })
}

fn strings(description: &str) -> Value {
    json!({ "type": "array", "items": { "type": "string" }, "description": description })
}

fn object(description: &str, required: &[&str], properties: Value) -> Value {
    json!({
        "type": "object",
        "description": description,
        "additionalProperties": false,
        "required": required,
        "properties": properties,
    })
}

/// The schema of a policy file: one policy, or a list of them.
pub fn schema() -> Value {
    let kv = object(
        "A Vault KV v2 location.",
        &["mount", "path"],
        json!({
            "mount": string("The KV v2 mount, e.g. secret."),
            "path": string("The path under the mount, e.g. ci/npm (no surrounding /)."),
            "key": string("One field of the secret (vault_kv: only that field; store: where the value goes, default value; vault_kv target: default token)."),
        }),
    );
    let source = json!({
        "type": "object",
        "description": "Where the value comes from: exactly one of generate, vault_kv, vault_read, github_runner_token.",
        "additionalProperties": false,
        "minProperties": 1,
        "maxProperties": 1,
        "properties": {
            "generate": object(
                "rotor generates the value on each rotation.",
                &["length"],
                json!({
                    "length": { "type": "integer", "minimum": 16, "maximum": 4096, "description": "Random characters (the prefix comes on top)." },
                    "charset": words("The characters drawn from (default alphanumeric).", &["alphanumeric", "hex", "base64url", "printable", "custom"]),
                    "alphabet": string("With charset: custom, the characters to draw from (at least 2 distinct)."),
                    "prefix": string("Text put before the random part, e.g. tok_."),
                    "store": object("Keep each fresh value as a new KV v2 version (check-and-set).", &["vault_kv"], json!({ "vault_kv": { "$ref": "#/$defs/kv" } })),
                }),
            ),
            "vault_kv": { "$ref": "#/$defs/kv", "description": "Vault KV v2 holds the value; every new version is pushed." },
            "vault_read": object(
                "A dynamic engine path read (or, with params, written) for fresh credentials on each rotation.",
                &["path"],
                json!({
                    "path": string("The engine path, e.g. database/creds/app."),
                    "params": { "type": "object", "description": "Sent as the body of a write (pki/issue/ROLE, ssh/creds/ROLE).", "additionalProperties": { "type": ["string", "number", "boolean"] } },
                }),
            ),
            "github_runner_token": object(
                "A self-hosted runner registration token (one hour), written to vault_kv targets.",
                &[],
                json!({
                    "org": string("The organization whose runners register with it."),
                    "repo": string("owner/name: a repository's runners instead."),
                }),
            ),
        },
    });
    let target = object(
        "Where the secrets go: a repository (repo), an organization's repositories or one organization secret (org), or a Vault KV path (vault_kv, for a runner token).",
        &[],
        json!({
            "repo": string("owner/name: one repository."),
            "org": string("An organization: its repositories, or with scope: organization one organization secret."),
            "repos": strings("Repository name globs; a leading ! excludes (with visibility: selected, the repositories that may use the organization secret)."),
            "topics": strings("Topics a repository must all carry."),
            "repo_visibility": { "type": "array", "items": { "enum": ["public", "private", "internal"] }, "description": "Repository visibilities to select." },
            "include_archived": { "type": "boolean", "description": "Archived repositories are skipped unless true." },
            "include_disabled": { "type": "boolean", "description": "Disabled repositories are skipped unless true." },
            "environment": string("An environment secret instead of a repository secret."),
            "app": words("Whose secrets (default actions).", &["actions", "dependabot", "codespaces"]),
            "scope": words("repository (default) or organization (with org: one organization secret).", &["repository", "organization"]),
            "visibility": words("With scope: organization, which repositories may use the secret.", &["all", "private", "selected"]),
            "vault_kv": { "$ref": "#/$defs/kv", "description": "A Vault KV path (for a github_runner_token source)." },
        }),
    );
    let schedule = object(
        "When the policy turns over.",
        &[],
        json!({
            "cron": string("A 5-field cron expression (6 with seconds first, or @daily ...), in timezone."),
            "every": string("An interval instead of cron: 90s, 15m, 12h, 30d."),
            "timezone": string("IANA time zone of cron (default UTC)."),
            "jitter": string("Random delay added to each due time, fixed per rotation."),
            "max_age": string("Rotate when older than this, even if a cron slot was missed."),
        }),
    );
    let verify = object(
        "Workflow runs that prove a new value works before the rotation counts.",
        &["workflow"],
        json!({
            "workflow": { "type": ["string", "integer"], "description": "A file name in .github/workflows/ or a numeric workflow id." },
            "ref": string("Branch or tag (default the repository's default branch)."),
            "inputs": { "type": "object", "description": "Workflow inputs: names to scalars (at most 25).", "additionalProperties": { "type": ["string", "number", "boolean"] } },
            "timeout": string("Per run, from dispatch to conclusion (30s..6h)."),
            "repos": strings("Which repositories run it (globs); needed for organization secrets."),
        }),
    );
    let rollout = object(
        "Canary targets first, and what a failed verification does.",
        &["canary"],
        json!({
            "canary": { "type": ["integer", "string", "array"], "items": { "type": "string" }, "description": "A count, a percentage (\"5%\") or repository globs." },
            "on_failure": words("rollback (default) pushes the previous value back; halt stops.", &["rollback", "halt"]),
        }),
    );
    let policy = object(
        "One rotor policy (format version 1).",
        &["version", "name", "source", "targets"],
        json!({
            "version": { "const": 1, "description": "Format version; must be 1." },
            "name": { "type": "string", "pattern": "^[a-z0-9][a-z0-9-]*$", "description": "Unique across the set; a-z, 0-9 and -." },
            "description": string("What the secret is for."),
            "owner": string("Who owns it; shown in plans, audit records and alerts."),
            "source": { "$ref": "#/$defs/source" },
            "secrets": { "type": "object", "description": "GitHub secret name -> field of the source (not with github_runner_token). Or, with a vault_kv source, a whole-path sync: {from_keys: \"*\" (comma-separated globs on the KV keys, a leading ! excludes), name: \"{{ key | upper }}\" (a template of key, path, name, mount with the filters upper, lower, snake)}.", "additionalProperties": { "type": "string" } },
            "targets": { "type": "array", "minItems": 1, "items": { "$ref": "#/$defs/target" } },
            "schedule": { "$ref": "#/$defs/schedule" },
            "verify": { "$ref": "#/$defs/verify" },
            "rollout": { "$ref": "#/$defs/rollout" },
            "takeover": { "type": "boolean", "description": "Overwrite a secret of the same name that rotor did not write (there before its first push, or changed since); without it such a secret is a conflict and left alone. Default false." },
        }),
    );
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "policy.schema.json",
        "title": "rotor policy file",
        "description": "One rotor policy, or a list of them. rotor validate checks more than this schema can say.",
        "oneOf": [
            { "$ref": "#/$defs/policy" },
            { "type": "array", "minItems": 1, "items": { "$ref": "#/$defs/policy" } },
        ],
        "$defs": {
            "policy": policy,
            "source": source,
            "kv": kv,
            "target": target,
            "schedule": schedule,
            "verify": verify,
            "rollout": rollout,
        },
    })
}

/// The schema as `rotor schema` prints it (and `policy.schema.json` holds).
pub fn schema_text() -> String {
    let mut text = serde_json::to_string_pretty(&schema()).expect("JSON serializes");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::de::DeserializeOwned;

    /// The fields a `deny_unknown_fields` type accepts, from serde's own error message.
    fn fields_of<T: DeserializeOwned>() -> Vec<String> {
        let err = match serde_json::from_str::<T>(r#"{"__not_a_field__": 1}"#) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("an unknown field was accepted"),
        };
        let list = err
            .split("expected one of ")
            .nth(1)
            .or_else(|| err.split("expected ").nth(1))
            .unwrap_or("");
        let list = list.replace(" or ", ",");
        let mut out: Vec<String> = list
            .split(',')
            .map(|f| f.trim().trim_matches('`').trim_end_matches(['`', ' ']))
            .map(|f| f.split('`').next().unwrap_or("").to_string())
            .filter(|f| !f.is_empty())
            .collect();
        out.sort();
        out
    }

    fn schema_fields(def: &str, path: &[&str]) -> Vec<String> {
        let s = schema();
        let mut v = &s["$defs"][def];
        for p in path {
            v = &v["properties"][p];
        }
        let mut out: Vec<String> = v["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("{def} {path:?} has properties"))
            .keys()
            .cloned()
            .collect();
        out.sort();
        out
    }

    #[test]
    fn the_schema_has_exactly_the_fields_of_the_policy_types() {
        use crate::policy::raw::*;
        assert_eq!(schema_fields("policy", &[]), fields_of::<RawPolicy>());
        assert_eq!(schema_fields("source", &[]), fields_of::<RawSource>());
        assert_eq!(
            schema_fields("source", &["generate"]),
            fields_of::<RawGenerate>()
        );
        assert_eq!(
            schema_fields("source", &["vault_read"]),
            fields_of::<RawRead>()
        );
        assert_eq!(
            schema_fields("source", &["github_runner_token"]),
            fields_of::<RawRunnerToken>()
        );
        assert_eq!(schema_fields("kv", &[]), fields_of::<RawKv>());
        assert_eq!(schema_fields("target", &[]), fields_of::<RawTarget>());
        assert_eq!(schema_fields("schedule", &[]), fields_of::<RawSchedule>());
        assert_eq!(schema_fields("verify", &[]), fields_of::<RawVerify>());
        assert_eq!(schema_fields("rollout", &[]), fields_of::<RawRollout>());
    }
}
