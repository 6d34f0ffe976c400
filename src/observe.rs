//! Observation: the network reads the planner needs — source versions, repository
//! listings, existing secrets. The only place besides `apply` that does I/O for a plan.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt};

use crate::github::{Client, SecretScope};
use crate::ledger::LedgerState;
use crate::plan::{self, build::is_stored, Listings, Observed};
use crate::policy::PolicySet;
use crate::source::{KvVersionInfo, Sources};

/// Gather what `plan::plan` needs. Errors are kept per item (GitHub's or Vault's message),
/// so one failing repository or source never hides the others.
///
/// Secrets are listed only for policies that will not rotate: a rotation writes every
/// target anyway, so listing them would cost a request per target for nothing.
pub async fn observe(
    set: &PolicySet,
    github: &Client,
    sources: &Sources,
    ledger: &LedgerState,
    now: DateTime<Utc>,
    force: &BTreeSet<String>,
    concurrency: usize,
) -> Observed {
    let concurrency = concurrency.max(1);
    let source_infos: Vec<(String, Result<Option<KvVersionInfo>, String>)> = stream::iter(
        set.policies.iter().filter(|p| is_stored(&p.source)),
    )
    .map(|p| async move {
        let v = sources
            .current_version_info(&p.source)
            .await
            .map_err(|e| e.to_string());
        (p.name.clone(), v)
    })
    .buffer_unordered(concurrency)
    .collect()
    .await;
    let source_written: BTreeMap<String, DateTime<Utc>> = source_infos
        .iter()
        .filter_map(|(name, r)| Some((name.clone(), r.as_ref().ok()?.as_ref()?.created_time?)))
        .collect();
    let source_versions: BTreeMap<String, Result<Option<u64>, String>> = source_infos
        .into_iter()
        .map(|(name, r)| (name, r.map(|v| v.map(|v| v.version))))
        .collect();

    let orgs = Listings::orgs_needed(&set.policies);
    let listings = Listings {
        orgs: stream::iter(orgs)
            .map(|org| async move {
                let r = github.list_org_repos(&org).await.map_err(|e| e.to_string());
                (org, r)
            })
            .buffer_unordered(concurrency)
            .collect()
            .await,
    };

    let mut scopes: BTreeSet<SecretScope> = BTreeSet::new();
    for p in &set.policies {
        let current = match plan::build::current_version(p, ledger, source_versions.get(&p.name)) {
            Ok(v) => v,
            Err(_) => continue,
        };
        let last = plan::last_rotation(p, ledger, source_written.get(&p.name).copied());
        if plan::decide_rotation_since(p, last, current, now, force.contains(&p.name)).is_some() {
            continue;
        }
        for t in plan::resolve(p, &listings) {
            if t.problem.is_none() {
                scopes.insert(t.scope);
            }
        }
    }
    let secrets = stream::iter(scopes)
        .map(|scope| async move {
            let r = github.list_secrets(&scope).await.map_err(|e| e.to_string());
            (scope.key(), r)
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;

    Observed {
        listings,
        secrets,
        source_versions,
        source_written,
    }
}
