//! Whole-path syncs made concrete for one pass: each policy with `secrets: { from_keys }`
//! gets one secret per selected key of its KV path's current version, named by its
//! template. The value is read to learn the key names and dropped at once; names GitHub
//! would refuse, and keys whose names collide, are reported per key and left out.

use std::collections::BTreeMap;

use futures::{stream, StreamExt};

use crate::model::plan::{Plan, PlanWarning};
use crate::policy::{Policy, PolicySet, SourceSpec};
use crate::source::Sources;

/// A policy set with its whole-path syncs filled in, and what filling them in found.
pub struct Expanded {
    pub set: PolicySet,
    /// A policy whose keys could not be read: its plan's problem.
    problems: BTreeMap<String, String>,
    warnings: Vec<PlanWarning>,
}

impl Expanded {
    /// Puts what expansion found into the plan made from `self.set`.
    pub fn finish(&self, plan: &mut Plan) {
        for pp in &mut plan.policies {
            if let Some(p) = self.problems.get(&pp.policy) {
                if pp.problem.is_none() {
                    pp.problem = Some(p.clone());
                    pp.targets.clear();
                    pp.txn = None;
                }
            }
        }
        plan.warnings.extend(self.warnings.iter().cloned());
    }
}

/// `None` when no policy of `set` syncs a whole path (use `set` as it is).
pub async fn expand(set: &PolicySet, sources: &Sources, concurrency: usize) -> Option<Expanded> {
    if set.policies.iter().all(|p| p.from_keys.is_none()) {
        return None;
    }
    let keys: BTreeMap<String, Result<Option<Vec<String>>, String>> =
        stream::iter(set.policies.iter().filter(|p| p.from_keys.is_some()))
            .map(|p| async move { (p.name.clone(), key_names(p, sources).await) })
            .buffer_unordered(concurrency.max(1))
            .collect()
            .await;
    let mut out = Expanded {
        set: set.clone(),
        problems: BTreeMap::new(),
        warnings: Vec::new(),
    };
    for p in &mut out.set.policies {
        match keys.get(&p.name) {
            None => {}
            // No version yet: the plan says so (the source holds no version).
            Some(Ok(None)) => {}
            Some(Ok(Some(names))) => out.warnings.extend(fill(p, names)),
            Some(Err(e)) => {
                out.problems.insert(
                    p.name.clone(),
                    format!("reading the keys of the source failed: {e}"),
                );
            }
        }
    }
    Some(out)
}

/// The key names of the current version of `p`'s KV path (`None`: no version yet).
async fn key_names(p: &Policy, sources: &Sources) -> Result<Option<Vec<String>>, String> {
    let Some(version) = sources
        .current_version(&p.source)
        .await
        .map_err(|e| e.to_string())?
    else {
        return Ok(None);
    };
    let value = sources
        .read(&p.source, version)
        .await
        .map_err(|e| e.to_string())?;
    // Only the names leave this function; the values are dropped (and zeroed) here.
    Ok(Some(value.fields.keys().cloned().collect()))
}

/// Fills `p.secrets` from the key names; a warning per key left out.
fn fill(p: &mut Policy, names: &[String]) -> Vec<PlanWarning> {
    let (Some(f), SourceSpec::VaultKv(kv)) = (&p.from_keys, &p.source) else {
        return Vec::new();
    };
    let warn = |secret: Option<String>, message: String| PlanWarning {
        policy: p.name.clone(),
        target: String::new(),
        secret,
        message,
    };
    let mut warnings = Vec::new();
    let mut secrets: BTreeMap<String, String> = BTreeMap::new();
    let mut by_upper: BTreeMap<String, String> = BTreeMap::new();
    let mut selected = 0;
    for key in names.iter().filter(|k| f.selects(k)) {
        selected += 1;
        let name = f.name.render(key, &kv.mount, &kv.path);
        if let Err(e) = crate::policy::names::check_secret_name(&name) {
            warnings.push(warn(
                Some(name.clone()),
                format!(
                    "key \"{key}\" of {}/{} is not synced: {e} (name template \"{}\")",
                    kv.mount, kv.path, f.name.text
                ),
            ));
            continue;
        }
        match by_upper.get(&name.to_ascii_uppercase()) {
            Some(first) => warnings.push(warn(
                Some(name.clone()),
                format!(
                    "key \"{key}\" of {}/{} is not synced: its name {name} is key \"{first}\"'s too (GitHub ignores case)",
                    kv.mount, kv.path
                ),
            )),
            None => {
                by_upper.insert(name.to_ascii_uppercase(), key.clone());
                secrets.insert(name, key.clone());
            }
        }
    }
    if selected == 0 {
        warnings.push(warn(
            None,
            format!(
                "from_keys \"{}\" selects none of the {} key(s) of {}/{}: nothing is synced",
                f.keys.join(", "),
                names.len(),
                kv.mount,
                kv.path
            ),
        ));
    }
    p.secrets = secrets;
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::policy::KvRef;
    use crate::model::template::{FromKeys, NameTemplate};

    fn policy(keys: &[&str], template: &str) -> Policy {
        Policy {
            name: "p".into(),
            description: None,
            owner: None,
            source: SourceSpec::VaultKv(KvRef {
                mount: "secret".into(),
                path: "ci/app".into(),
                key: None,
            }),
            secrets: BTreeMap::new(),
            from_keys: Some(
                FromKeys::new(
                    keys.iter().map(|k| k.to_string()).collect(),
                    NameTemplate::parse(template).unwrap(),
                )
                .unwrap(),
            ),
            targets: Vec::new(),
            schedule: None,
            verify: None,
            rollout: None,
            takeover: false,
            file: "p.yaml".into(),
        }
    }

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn every_selected_key_becomes_a_secret_and_refused_names_are_reported_per_key() {
        let mut p = policy(&["*", "!legacy"], "APP_{{ key | upper }}");
        let w = fill(
            &mut p,
            // In the order a KV read gives them (sorted).
            &names(&["Db_Password", "api-key", "db_password", "legacy", "token"]),
        );
        assert_eq!(
            p.secrets,
            BTreeMap::from([
                ("APP_DB_PASSWORD".to_string(), "Db_Password".to_string()),
                ("APP_TOKEN".to_string(), "token".to_string()),
            ])
        );
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(
            w[0].message.contains("key \"api-key\"")
                && w[0].message.contains("A-Z, a-z, 0-9 and _")
        );
        assert!(
            w[1].message.contains("key \"db_password\"")
                && w[1].message.contains("\"Db_Password\"'s too")
        );
    }

    #[test]
    fn a_selection_matching_no_key_says_so() {
        let mut p = policy(&["db_*"], "{{ key | upper }}");
        let w = fill(&mut p, &names(&["token"]));
        assert!(p.secrets.is_empty());
        assert!(
            w[0].message.contains("selects none of the 1 key(s)"),
            "{w:?}"
        );
    }
}
