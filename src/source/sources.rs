//! The facade the rest of rotor uses: one policy's `SourceSpec` in, versions and values out.

use std::collections::BTreeMap;
use std::fmt;

use secrecy::SecretString;

use super::error::SourceError;
use super::generate::generate;
use super::value::SourceValue;
use super::vault::{KvVersionInfo, Vault, VaultConfig};
use crate::policy::{KvRef, SourceSpec};

/// The field a generated value is known by, in policies and in `SourceValue`.
pub const GENERATED_FIELD: &str = "value";

/// Every source rotor can read: the generator always, Vault when configured.
pub struct Sources {
    vault: Option<Vault>,
    /// Why there is no Vault, in words, for `NotConfigured`.
    missing: String,
}

impl fmt::Debug for Sources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sources")
            .field("vault", &self.vault)
            .finish()
    }
}

impl Sources {
    /// Builds the sources. Without Vault settings, generator-only policies still work and
    /// every Vault-backed one fails with `NotConfigured`, naming the missing variable.
    /// Does no network I/O (see `health`).
    pub fn new(vault: Option<VaultConfig>) -> Result<Self, SourceError> {
        let missing = match &vault {
            Some(_) => String::new(),
            None => VaultConfig::missing_from_env()
                .unwrap_or_else(|| "no Vault settings were given".to_string()),
        };
        let vault = vault.as_ref().map(Vault::new).transpose()?;
        Ok(Sources { vault, missing })
    }

    /// The Vault client, if configured.
    pub fn vault(&self) -> Option<&Vault> {
        self.vault.as_ref()
    }

    fn need_vault(&self) -> Result<&Vault, SourceError> {
        self.vault
            .as_ref()
            .ok_or_else(|| SourceError::NotConfigured {
                missing: self.missing.clone(),
            })
    }

    /// The version the source holds now: KV-backed sources (`vault_kv`, `generate` with
    /// `store`) read metadata; `None` when the path has no version yet, and always `None`
    /// for `generate` without `store` and `vault_read` (rotor counts those versions itself).
    pub async fn current_version(&self, spec: &SourceSpec) -> Result<Option<u64>, SourceError> {
        match kv_of(spec) {
            Some(kv) => {
                self.need_vault()?
                    .current_version(&kv.mount, &kv.path)
                    .await
            }
            None => Ok(None),
        }
    }

    /// As `current_version`, with the time the current version was written (KV metadata):
    /// the planner counts a version written after the ledger's last rotation record as that
    /// rotation (a rotation interrupted between the write and its record).
    pub async fn current_version_info(
        &self,
        spec: &SourceSpec,
    ) -> Result<Option<KvVersionInfo>, SourceError> {
        match kv_of(spec) {
            Some(kv) => {
                self.need_vault()?
                    .current_version_meta(&kv.mount, &kv.path)
                    .await
            }
            None => Ok(None),
        }
    }

    /// Reads one version of a KV-backed source. For `generate` with `store` the stored field
    /// (`store.vault_kv.key`, default `value`) comes back as `value`; for `vault_kv` with
    /// `key` only that field comes back, otherwise every field of the version.
    pub async fn read(&self, spec: &SourceSpec, version: u64) -> Result<SourceValue, SourceError> {
        match spec {
            SourceSpec::Generate {
                store: Some(kv), ..
            } => {
                let mut fields = self.read_kv(kv, version).await?;
                let stored = take_field(&mut fields, kv, store_key(kv))?;
                Ok(SourceValue {
                    version,
                    fields: BTreeMap::from([(GENERATED_FIELD.to_string(), stored)]).into(),
                    lease: None,
                })
            }
            SourceSpec::VaultKv(kv) => {
                let mut fields = self.read_kv(kv, version).await?;
                if let Some(key) = &kv.key {
                    let only = take_field(&mut fields, kv, key)?;
                    fields = BTreeMap::from([(key.clone(), only)]);
                }
                Ok(SourceValue {
                    version,
                    fields: fields.into(),
                    lease: None,
                })
            }
            SourceSpec::Generate { store: None, .. } => {
                Err(SourceError::Unversioned { kind: "generate" })
            }
            SourceSpec::VaultRead { .. } => Err(SourceError::Unversioned { kind: "vault_read" }),
            SourceSpec::GithubRunnerToken { .. } => Err(SourceError::Unversioned {
                kind: "github_runner_token",
            }),
        }
    }

    /// Writes `fields` as a new KV v2 version at `kv`, with check-and-set against the
    /// version there now (a writer in between makes this fail, writing nothing). Returns
    /// the new version.
    pub async fn write_kv(
        &self,
        kv: &KvRef,
        fields: &BTreeMap<String, SecretString>,
    ) -> Result<u64, SourceError> {
        let vault = self.need_vault()?;
        let current = vault.current_version(&kv.mount, &kv.path).await?;
        vault
            .write_cas(&kv.mount, &kv.path, fields, current.unwrap_or(0))
            .await
    }

    /// Makes the value for a new rotation.
    ///
    /// - `generate`: a fresh value. With `store`, it is written as a new KV v2 version with
    ///   check-and-set against `expected_current` (`None`: the path must hold no version), and
    ///   the new KV version is the value's version; a concurrent writer makes this fail with
    ///   `CasConflict` and nothing is written. Without `store`, the version is `local_version`.
    /// - `vault_kv`: rotor cannot mint the value; this reads the version Vault holds now
    ///   (`NoVersion` if none).
    /// - `vault_read`: fresh credentials from the dynamic engine; the version is
    ///   `local_version`. The lease is left to Vault's TTLs.
    pub async fn rotate(
        &self,
        spec: &SourceSpec,
        expected_current: Option<u64>,
        local_version: u64,
    ) -> Result<SourceValue, SourceError> {
        match spec {
            SourceSpec::Generate {
                length,
                charset,
                prefix,
                store,
            } => {
                let distinct = charset.alphabet().len();
                if distinct < 2 {
                    return Err(SourceError::WeakAlphabet { distinct });
                }
                let value = generate(*length, charset, prefix.as_deref());
                let Some(kv) = store else {
                    return Ok(SourceValue {
                        version: local_version,
                        fields: BTreeMap::from([(GENERATED_FIELD.to_string(), value)]).into(),
                        lease: None,
                    });
                };
                let vault = self.need_vault()?;
                let key = store_key(kv).to_string();
                let mut stored = BTreeMap::from([(key.clone(), value)]);
                let version = vault
                    .write_cas(&kv.mount, &kv.path, &stored, expected_current.unwrap_or(0))
                    .await?;
                let value = stored.remove(&key).expect("inserted just above");
                Ok(SourceValue {
                    version,
                    fields: BTreeMap::from([(GENERATED_FIELD.to_string(), value)]).into(),
                    lease: None,
                })
            }
            SourceSpec::VaultKv(kv) => {
                let current = self
                    .need_vault()?
                    .current_version(&kv.mount, &kv.path)
                    .await?;
                let version = current.ok_or_else(|| SourceError::NoVersion {
                    mount: kv.mount.clone(),
                    path: kv.path.clone(),
                })?;
                self.read(spec, version).await
            }
            SourceSpec::VaultRead { path, params } => {
                let (fields, lease) = self.need_vault()?.read_dynamic(path, params).await?;
                Ok(SourceValue {
                    version: local_version,
                    fields: fields.into(),
                    lease,
                })
            }
            // Minted by GitHub, not by a source: `apply` does it (see `apply/runner.rs`).
            SourceSpec::GithubRunnerToken { .. } => Err(SourceError::Unversioned {
                kind: "github_runner_token",
            }),
        }
    }

    /// Writes version `previous` of a KV-backed source back as a new version, with
    /// check-and-set against `expected_current`, so that Vault's current version holds the
    /// value the targets hold again after a rollback. Every field of the version is written
    /// (not only the one a policy reads). Returns the new version.
    pub async fn restore(
        &self,
        spec: &SourceSpec,
        previous: u64,
        expected_current: u64,
    ) -> Result<u64, SourceError> {
        let Some(kv) = kv_of(spec) else {
            return Err(SourceError::Unversioned {
                kind: match spec {
                    SourceSpec::VaultRead { .. } => "vault_read",
                    _ => "generate",
                },
            });
        };
        let vault = self.need_vault()?;
        let fields = vault.read_version(&kv.mount, &kv.path, previous).await?;
        vault
            .write_cas(&kv.mount, &kv.path, &fields, expected_current)
            .await
    }

    /// Revokes a dynamic credential's lease (`PUT sys/leases/revoke`).
    pub async fn revoke_lease(&self, lease_id: &str) -> Result<(), SourceError> {
        self.need_vault()?.revoke_lease(lease_id).await
    }

    /// Renews a lease (`PUT sys/leases/renew`); returns the TTL Vault granted, in seconds.
    pub async fn renew_lease(
        &self,
        lease_id: &str,
        increment_secs: u64,
    ) -> Result<u64, SourceError> {
        self.need_vault()?
            .renew_lease(lease_id, increment_secs)
            .await
    }

    /// Checks that Vault, when configured, answers, is unsealed and accepts the token.
    /// Without Vault there is nothing to check.
    pub async fn health(&self) -> Result<(), SourceError> {
        match &self.vault {
            Some(vault) => {
                vault.health().await?;
                vault.check_token().await
            }
            None => Ok(()),
        }
    }

    async fn read_kv(
        &self,
        kv: &KvRef,
        version: u64,
    ) -> Result<BTreeMap<String, SecretString>, SourceError> {
        self.need_vault()?
            .read_version(&kv.mount, &kv.path, version)
            .await
    }
}

/// The KV location a source keeps its versions in, if any.
fn kv_of(spec: &SourceSpec) -> Option<&KvRef> {
    match spec {
        SourceSpec::Generate { store, .. } => store.as_ref(),
        SourceSpec::VaultKv(kv) => Some(kv),
        SourceSpec::VaultRead { .. } | SourceSpec::GithubRunnerToken { .. } => None,
    }
}

/// The KV field a generated value is stored under.
fn store_key(kv: &KvRef) -> &str {
    kv.key.as_deref().unwrap_or(GENERATED_FIELD)
}

fn take_field(
    fields: &mut BTreeMap<String, SecretString>,
    kv: &KvRef,
    key: &str,
) -> Result<SecretString, SourceError> {
    fields.remove(key).ok_or_else(|| SourceError::MissingField {
        path: format!("{}/{}", kv.mount, kv.path),
        field: key.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Charset;
    use secrecy::ExposeSecret;

    fn generate_spec() -> SourceSpec {
        SourceSpec::Generate {
            length: 24,
            charset: Charset::Base64Url,
            prefix: Some("gh_".into()),
            store: None,
        }
    }

    #[tokio::test]
    async fn a_generator_without_store_needs_no_vault_and_takes_the_local_version() {
        let sources = Sources::new(None).unwrap();
        let spec = generate_spec();
        assert_eq!(sources.current_version(&spec).await.unwrap(), None);
        let value = sources.rotate(&spec, None, 7).await.unwrap();
        assert_eq!(value.version, 7);
        let text = value.fields[GENERATED_FIELD].expose_secret();
        assert!(text.starts_with("gh_") && text.len() == 27);
        assert!(matches!(
            sources.read(&spec, 7).await,
            Err(SourceError::Unversioned { kind: "generate" })
        ));
        sources.health().await.unwrap();
    }

    #[tokio::test]
    async fn an_alphabet_of_one_character_is_refused() {
        let sources = Sources::new(None).unwrap();
        let spec = SourceSpec::Generate {
            length: 32,
            charset: Charset::Custom("aaaa".into()),
            prefix: None,
            store: None,
        };
        assert!(matches!(
            sources.rotate(&spec, None, 1).await,
            Err(SourceError::WeakAlphabet { distinct: 1 })
        ));
    }
}
