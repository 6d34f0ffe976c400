//! The policy file as written: serde types that mirror the YAML format (v1) field for field.
//!
//! Every field is optional here, wrapped in `Spanned` so that `validate` can point at it,
//! and so that one missing field does not hide the other problems of a policy. Unknown
//! fields are refused by serde (`deny_unknown_fields`). No enums with internal tags,
//! untagged enums or `flatten` are used: they lose positions.

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_saphyr::Spanned;

/// The content of one file: one policy mapping, or a list of them.
#[derive(Debug)]
pub enum RawFile {
    One(Box<RawPolicy>),
    Many(Vec<Spanned<RawPolicy>>),
}

impl<'de> Deserialize<'de> for RawFile {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct FileVisitor;
        impl<'de> Visitor<'de> for FileVisitor {
            type Value = RawFile;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a policy mapping or a list of policies")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawFile, A::Error> {
                RawPolicy::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(|p| RawFile::One(Box::new(p)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawFile, A::Error> {
                let mut policies = Vec::new();
                while let Some(p) = seq.next_element::<Spanned<RawPolicy>>()? {
                    policies.push(p);
                }
                Ok(RawFile::Many(policies))
            }
        }
        d.deserialize_any(FileVisitor)
    }
}

/// One policy, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPolicy {
    /// Format version; must be 1.
    pub version: Option<Spanned<i64>>,
    /// Unique across the set; `[a-z0-9-]`.
    pub name: Option<Spanned<String>>,
    pub description: Option<Spanned<String>>,
    /// Free text shown in plans and audit records.
    pub owner: Option<Spanned<String>>,
    /// Exactly one of `generate`, `vault_kv`, `vault_read`.
    pub source: Option<Spanned<RawSource>>,
    /// GitHub secret name -> field of the source.
    pub secrets: Option<Spanned<RawMap>>,
    pub targets: Option<Spanned<Vec<Spanned<RawTarget>>>>,
    pub schedule: Option<Spanned<RawSchedule>>,
}

/// `source:`: exactly one of its fields must be set.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSource {
    pub generate: Option<Spanned<RawGenerate>>,
    pub vault_kv: Option<Spanned<RawKv>>,
    pub vault_read: Option<Spanned<RawRead>>,
}

/// `source.generate`: rotor makes the value.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGenerate {
    /// 16..4096 characters (not counting `prefix`).
    pub length: Option<Spanned<i64>>,
    /// `alphanumeric` (default) | `hex` | `base64url` | `printable` | `custom`.
    pub charset: Option<Spanned<String>>,
    /// With `charset: custom`: the characters to draw from.
    pub alphabet: Option<Spanned<String>>,
    /// Written before the random part.
    pub prefix: Option<Spanned<String>>,
    /// Where each fresh value is kept as a new version.
    pub store: Option<Spanned<RawStore>>,
}

/// `source.generate.store`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStore {
    pub vault_kv: Option<Spanned<RawKv>>,
}

/// A KV v2 location: `{ mount, path, key? }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKv {
    pub mount: Option<Spanned<String>>,
    pub path: Option<Spanned<String>>,
    pub key: Option<Spanned<String>>,
}

/// `source.vault_read`: a dynamic secrets engine path.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRead {
    pub path: Option<Spanned<String>>,
}

/// One entry of `targets`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTarget {
    /// `owner/name`: one repository.
    pub repo: Option<Spanned<String>>,
    /// An organization: its repositories, or (with `scope: organization`) one org secret.
    pub org: Option<Spanned<String>>,
    /// Repository name globs; a leading `!` excludes.
    pub repos: Option<Spanned<Vec<Spanned<String>>>>,
    /// Topics a repository must all carry.
    pub topics: Option<Spanned<Vec<Spanned<String>>>>,
    /// `public` | `private` | `internal`: repository visibilities to select.
    pub repo_visibility: Option<Spanned<Vec<Spanned<String>>>>,
    pub include_archived: Option<Spanned<bool>>,
    pub include_disabled: Option<Spanned<bool>>,
    /// An environment secret instead of a repository secret.
    pub environment: Option<Spanned<String>>,
    /// `actions` (default) | `dependabot` | `codespaces`.
    pub app: Option<Spanned<String>>,
    /// `repository` (default) | `organization` (only with `org`).
    pub scope: Option<Spanned<String>>,
    /// Organization secret visibility: `all` | `private` | `selected`.
    pub visibility: Option<Spanned<String>>,
}

/// `schedule:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSchedule {
    pub cron: Option<Spanned<String>>,
    pub every: Option<Spanned<String>>,
    pub timezone: Option<Spanned<String>>,
    pub jitter: Option<Spanned<String>>,
    pub max_age: Option<Spanned<String>>,
}

/// A string-keyed mapping that keeps the position of every key and value, in file order.
#[derive(Debug, Default)]
pub struct RawMap(pub Vec<(Spanned<String>, Spanned<String>)>);

impl<'de> Deserialize<'de> for RawMap {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct MapVisitor;
        impl<'de> Visitor<'de> for MapVisitor {
            type Value = RawMap;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping of secret names to source fields")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawMap, A::Error> {
                let mut entries = Vec::new();
                while let Some(k) = map.next_key::<Spanned<String>>()? {
                    let v = map.next_value::<Spanned<String>>()?;
                    entries.push((k, v));
                }
                Ok(RawMap(entries))
            }
        }
        d.deserialize_map(MapVisitor)
    }
}
