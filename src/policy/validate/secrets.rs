//! The `secrets` section: GitHub secret names and the source field each comes from.

use std::collections::BTreeMap;

use serde_saphyr::Spanned;

use super::common::{pos, Sink};
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
