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
    /// GitHub secret name -> field of the source; or `{ from_keys, name }` (a whole-path
    /// sync of a `vault_kv` source).
    pub secrets: Option<Spanned<RawMap>>,
    pub targets: Option<Spanned<Vec<Spanned<RawTarget>>>>,
    pub schedule: Option<Spanned<RawSchedule>>,
    /// Workflow runs that prove a new value works.
    pub verify: Option<Spanned<RawVerify>>,
    /// Canary targets first, and what a failed verification does.
    pub rollout: Option<Spanned<RawRollout>>,
    /// Overwrite secrets of the same name that rotor did not write (default false).
    pub takeover: Option<Spanned<bool>>,
}

/// `source:`: exactly one of its fields must be set.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSource {
    pub generate: Option<Spanned<RawGenerate>>,
    pub vault_kv: Option<Spanned<RawKv>>,
    pub vault_read: Option<Spanned<RawRead>>,
    pub github_runner_token: Option<Spanned<RawRunnerToken>>,
}

/// `source.github_runner_token`: `{ org: acme }` or `{ repo: acme/build-farm }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRunnerToken {
    pub org: Option<Spanned<String>>,
    pub repo: Option<Spanned<String>>,
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
    /// Parameters of an engine that issues on a write (`common_name` for `pki/issue/…`).
    pub params: Option<Spanned<RawValue>>,
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
    /// A Vault KV v2 path (for `github_runner_token`).
    pub vault_kv: Option<Spanned<RawKv>>,
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

/// `verify:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVerify {
    /// A file name in `.github/workflows/` or a numeric workflow id.
    pub workflow: Option<Spanned<RawValue>>,
    /// Branch or tag; default the repository's default branch.
    #[serde(rename = "ref")]
    pub git_ref: Option<Spanned<String>>,
    /// Workflow inputs: a mapping of names to scalars.
    pub inputs: Option<Spanned<RawValue>>,
    /// Per run, from dispatch to conclusion.
    pub timeout: Option<Spanned<String>>,
    /// Repository name globs; a leading `!` excludes.
    pub repos: Option<Spanned<Vec<Spanned<String>>>>,
}

/// `rollout:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRollout {
    /// A count, a percentage (`"5%"`) or a list of repository globs.
    pub canary: Option<Spanned<RawValue>>,
    /// `rollback` (default) | `halt`.
    pub on_failure: Option<Spanned<String>>,
}

/// What kind of plain scalar a [`RawValue::Plain`] is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PlainKind {
    Bool,
    Int(i128),
    Float,
}

/// A value whose shape the validator decides (`canary` is a number, a string or a list):
/// every YAML node is accepted here, so a wrong shape gets a diagnostic of its field
/// instead of stopping the file.
#[derive(Debug)]
pub enum RawValue {
    /// A string scalar (quoted, or plain text that is not a number or boolean).
    Str(String),
    /// A number or boolean, with its text as written (`yaml::parse` sets it from the source).
    Plain {
        kind: PlainKind,
        text: String,
    },
    /// `~`, `null` or nothing.
    Null,
    List(Vec<Spanned<RawValue>>),
    Map(Vec<(Spanned<String>, Spanned<RawValue>)>),
}

impl RawValue {
    /// The kind of node, as a message names it.
    pub fn kind(&self) -> &'static str {
        match self {
            RawValue::Str(_) => "a string",
            RawValue::Plain {
                kind: PlainKind::Bool,
                ..
            } => "a boolean",
            RawValue::Plain {
                kind: PlainKind::Int(_),
                ..
            } => "an integer",
            RawValue::Plain {
                kind: PlainKind::Float,
                ..
            } => "a fractional number",
            RawValue::Null => "empty",
            RawValue::List(_) => "a list",
            RawValue::Map(_) => "a mapping",
        }
    }

    /// The text of a scalar (a string's content, a number or boolean as written).
    pub fn scalar_text(&self) -> Option<&str> {
        match self {
            RawValue::Str(s) | RawValue::Plain { text: s, .. } => Some(s),
            _ => None,
        }
    }
}

impl<'de> Deserialize<'de> for RawValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ValueVisitor;
        impl<'de> Visitor<'de> for ValueVisitor {
            type Value = RawValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a value")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<RawValue, E> {
                Ok(RawValue::Plain {
                    kind: PlainKind::Bool,
                    text: v.to_string(),
                })
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawValue, E> {
                Ok(RawValue::Plain {
                    kind: PlainKind::Int(v.into()),
                    text: v.to_string(),
                })
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawValue, E> {
                Ok(RawValue::Plain {
                    kind: PlainKind::Int(v.into()),
                    text: v.to_string(),
                })
            }
            fn visit_i128<E: de::Error>(self, v: i128) -> Result<RawValue, E> {
                Ok(RawValue::Plain {
                    kind: PlainKind::Int(v),
                    text: v.to_string(),
                })
            }
            fn visit_u128<E: de::Error>(self, v: u128) -> Result<RawValue, E> {
                Ok(RawValue::Plain {
                    kind: PlainKind::Int(i128::try_from(v).unwrap_or(i128::MAX)),
                    text: v.to_string(),
                })
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<RawValue, E> {
                Ok(RawValue::Plain {
                    kind: PlainKind::Float,
                    text: v.to_string(),
                })
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawValue, E> {
                Ok(RawValue::Str(v.to_string()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<RawValue, E> {
                Ok(RawValue::Str(v))
            }
            fn visit_unit<E: de::Error>(self) -> Result<RawValue, E> {
                Ok(RawValue::Null)
            }
            fn visit_none<E: de::Error>(self) -> Result<RawValue, E> {
                Ok(RawValue::Null)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawValue, A::Error> {
                let mut items = Vec::new();
                while let Some(v) = seq.next_element::<Spanned<RawValue>>()? {
                    items.push(v);
                }
                Ok(RawValue::List(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawValue, A::Error> {
                let mut entries = Vec::new();
                while let Some(k) = map.next_key::<Spanned<String>>()? {
                    let v = map.next_value::<Spanned<RawValue>>()?;
                    entries.push((k, v));
                }
                Ok(RawValue::Map(entries))
            }
        }
        d.deserialize_any(ValueVisitor)
    }
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
