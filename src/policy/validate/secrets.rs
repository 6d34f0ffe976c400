//! The `secrets` section: GitHub secret names and the source field each comes from.

use std::collections::BTreeMap;

use serde_saphyr::Spanned;

use super::common::{pos, Sink};
use crate::model::template::{FromKeys, NameTemplate, DEFAULT_TEMPLATE};
use crate::policy::model::SourceSpec;
use crate::policy::names;
use crate::policy::raw::RawMap;
use crate::policy::yaml::Pos;

pub(super) fn check_secrets(
    s: &mut Sink,
    map: Spanned<RawMap>,
    source: Option<&SourceSpec>,
) -> Vec<(String, String, Pos)> {
    let at = pos(&map);
    if map.value.0.is_empty() {
        s.err(
            at,
            "E0303",
            "secrets is empty: map at least one GitHub secret name to a source field",
        );
        return Vec::new();
    }
    let known = source.and_then(SourceSpec::known_fields);
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    let mut out = Vec::new();
    for (name, field) in map.value.0 {
        let n_at = pos(&name);
        let mut ok = true;
        if let Err(m) = names::check_secret_name(&name.value) {
            s.err(n_at, "E0301", m);
            ok = false;
        }
        let upper = name.value.to_ascii_uppercase();
        if let Some(first) = seen.get(&upper) {
            s.err(
                n_at,
                "E0304",
                format!(
                    "secret names \"{first}\" and \"{}\" are the same to GitHub, which ignores case: keep one",
                    name.value
                ),
            );
            ok = false;
        } else {
            seen.insert(upper, name.value.clone());
        }
        if field.value.is_empty() {
            s.err(
                pos(&field),
                "E0302",
                "source field is empty: name the field the value comes from",
            );
            ok = false;
        } else if let (Some(known), Some(src)) = (&known, source) {
            if !known.contains(&field.value) {
                let yields = known
                    .iter()
                    .map(|k| format!("\"{k}\""))
                    .collect::<Vec<_>>()
                    .join(", ");
                let what = match src {
                    SourceSpec::Generate { .. } => "generate".to_string(),
                    SourceSpec::VaultKv(kv) => {
                        format!("vault_kv with key \"{}\"", kv.key.as_deref().unwrap_or(""))
                    }
                    SourceSpec::VaultRead { .. } => "vault_read".to_string(),
                    SourceSpec::GithubRunnerToken { .. } => "github_runner_token".to_string(),
                };
                s.err(
                    pos(&field),
                    "E0302",
                    format!(
                        "field \"{}\" cannot come from {what}: it yields only {yields}",
                        field.value
                    ),
                );
                ok = false;
            }
        }
        if ok {
            out.push((name.value, field.value, n_at));
        }
    }
    out
}

/// Whether `secrets:` is a whole-path sync (`{ from_keys: ..., name: ... }`). A secret
/// literally named `from_keys` must then be written `FROM_KEYS`.
pub(super) fn is_from_keys(map: &RawMap) -> bool {
    map.0.iter().any(|(k, _)| k.value == "from_keys")
}

/// `secrets: { from_keys: "GLOB, !GLOB", name: TEMPLATE }` with a `vault_kv` source: the
/// selection and template, and the glob (upper case) every name it makes matches, for the
/// set-wide check of doubled names.
pub(super) fn check_from_keys(
    s: &mut Sink,
    map: Spanned<RawMap>,
    source: Option<&SourceSpec>,
) -> Option<(FromKeys, String, Pos)> {
    let mut keys: Option<(Vec<String>, Pos)> = None;
    let mut template: Option<(String, Pos)> = None;
    for (k, v) in map.value.0 {
        match k.value.as_str() {
            "from_keys" => {
                let globs: Vec<String> = v
                    .value
                    .split(',')
                    .map(|g| g.trim().to_string())
                    .filter(|g| !g.is_empty())
                    .collect();
                if globs.is_empty() {
                    s.err(
                        pos(&v),
                        "E0305",
                        "from_keys is empty: write \"*\" for every key, or globs such as \"db_*, !db_admin\"",
                    );
                    return None;
                }
                keys = Some((globs, pos(&v)));
            }
            "name" => template = Some((v.value.clone(), pos(&v))),
            other => {
                s.err(
                    pos(&k),
                    "E0305",
                    format!(
                        "with from_keys, secrets holds only from_keys and name, not \"{other}\": sync the whole path, or map names to fields in a policy of their own"
                    ),
                );
                return None;
            }
        }
    }
    let (keys, keys_at) = keys?;
    let kv = match source {
        Some(SourceSpec::VaultKv(kv)) if kv.key.is_none() => kv,
        Some(SourceSpec::VaultKv(_)) => {
            s.err(
                keys_at,
                "E0305",
                "from_keys takes every key of the path, but the vault_kv source names one key: drop key: from the source",
            );
            return None;
        }
        Some(_) => {
            s.err(
                keys_at,
                "E0305",
                "from_keys reads the keys of a KV path: it needs a vault_kv source",
            );
            return None;
        }
        // The source's own mistake is reported already.
        None => return None,
    };
    let (text, name_at) = template.unwrap_or_else(|| (DEFAULT_TEMPLATE.to_string(), keys_at));
    let name = match NameTemplate::parse(&text) {
        Ok(t) => t,
        Err(e) => {
            s.err(name_at, "E0305", format!("name template \"{text}\": {e}"));
            return None;
        }
    };
    // A key of plain letters must give a name GitHub takes: what is left is the key's own.
    let sample = name.render("K", &kv.mount, &kv.path);
    if let Err(e) = names::check_secret_name(&sample) {
        s.err(
            name_at,
            "E0305",
            format!("name template \"{text}\" gives \"{sample}\" for a key \"K\": {e}"),
        );
        return None;
    }
    let pattern = name.pattern(&kv.mount, &kv.path);
    match FromKeys::new(keys, name) {
        Ok(f) => Some((f, pattern, keys_at)),
        Err(e) => {
            s.err(keys_at, "E0305", format!("from_keys: {e}"));
            None
        }
    }
}
